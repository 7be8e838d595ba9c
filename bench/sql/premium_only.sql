-- premium_only: Three or more purchases, none under 50
SELECT customer_id
FROM purchased
WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) >= 3
   AND min(amount) >= 50
