-- ytd_repeat_orders: Three or more orders this year (since 1 January 1998)
SELECT customer_id
FROM purchased
WHERE ts >= TIMESTAMP '1998-01-01 00:00:00'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(DISTINCT order_id) >= 3
