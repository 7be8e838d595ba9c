-- accelerating: Last 90 days' revenue above a quarter of the last 365 days' revenue
SELECT customer_id
FROM purchased
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '365 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING COALESCE(sum(amount) FILTER (WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'), 0)
       > sum(amount) / 4
