-- upsell_candidates: Silver or bronze value tier, opted in to e-mail
-- (the tier is the first arm that holds, as in the stage value_tier)
WITH buyers AS (
    SELECT customer_id,
           COALESCE(sum(amount) FILTER (
               WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '365 days'), 0) AS revenue_365d,
           count(*) FILTER (
               WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '365 days') AS purchases_365d
    FROM purchased
    WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
)
SELECT c.customer_id
FROM customers c
JOIN buyers b ON b.customer_id = c.customer_id
WHERE c.email_opt_in
  AND CASE
        WHEN c.ltv > 2000 OR b.revenue_365d > 3000 THEN 'platinum'
        WHEN b.revenue_365d > 1000 THEN 'gold'
        WHEN b.purchases_365d >= 3 THEN 'silver'
        ELSE 'bronze'
      END IN ('silver', 'bronze')
