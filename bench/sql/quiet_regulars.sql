-- quiet_regulars: Four or more purchases, but none in the last 60 days
SELECT customer_id
FROM purchased
WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) >= 4
   AND max(ts) < TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '60 days'
