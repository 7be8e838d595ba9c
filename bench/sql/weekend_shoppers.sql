-- weekend_shoppers: Three or more purchases, all of them on a Saturday or Sunday
-- (day of week in UTC, 0 = Sunday ... 6 = Saturday)
SELECT customer_id
FROM purchased
WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) >= 3
   AND count(*) FILTER (WHERE EXTRACT(DOW FROM ts) BETWEEN 1 AND 5) = 0
