-- win_back_mailing: Win-back audience without the 10% holdout (customer_id ending in 0)
-- (win_back = lapsed and opted in and not vip_at_risk, inlined)
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
  AND c.customer_id % 10 <> 0
