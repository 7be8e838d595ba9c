-- cart_abandoners: Added to cart in the last 14 days, bought nothing in that time
SELECT customer_id
FROM added_to_cart
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '14 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
EXCEPT
SELECT customer_id
FROM purchased
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '14 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
