-- win_back: Lapsed and opted in to e-mail, without the VIPs at risk
-- (lapsed: latest purchase up to now is older than 180 days; vip_at_risk inlined,
--  an unknown score or LTV is "not a VIP")
WITH lapsed AS (
    SELECT customer_id
    FROM purchased
    WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
    HAVING max(ts) < TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '180 days'
)
SELECT c.customer_id
FROM customers c
JOIN lapsed l ON l.customer_id = c.customer_id
WHERE c.email_opt_in
  AND NOT COALESCE(c.churn_score > 0.7 AND c.ltv > 500, FALSE)
