-- low_value_reachable: Opted in, average order under 25 in the last 365 days (or no order)
WITH aov_365d AS (
    SELECT customer_id, avg(amount) AS aov
    FROM purchased
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '365 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
)
SELECT c.customer_id
FROM customers c
LEFT JOIN aov_365d a ON a.customer_id = c.customer_id
WHERE c.email_opt_in
  AND COALESCE(a.aov, 0) < 25
