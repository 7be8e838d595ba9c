-- fast_converters: First purchase in the calendar month of sign-up
WITH first_purchase AS (
    SELECT customer_id, min(ts) AS first_ts
    FROM purchased
    WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
)
SELECT c.customer_id
FROM customers c
JOIN first_purchase f ON f.customer_id = c.customer_id
WHERE date_trunc('month', f.first_ts) = date_trunc('month', c.signup_ts)
