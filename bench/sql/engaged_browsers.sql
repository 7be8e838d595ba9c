-- engaged_browsers: Fifteen or more views and add-to-carts together in the last 30 days
SELECT customer_id
FROM (
    SELECT customer_id FROM viewed
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
    UNION ALL
    SELECT customer_id FROM added_to_cart
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
) AS browsing
GROUP BY customer_id
HAVING count(*) >= 15
