-- frequent_buyers: Five or more purchases in the last 90 days
SELECT customer_id
FROM purchased
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) >= 5
