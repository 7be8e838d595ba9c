-- big_spenders: Spent more than 1,500 in the last 365 days
SELECT customer_id
FROM purchased
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '365 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING sum(amount) > 1500
