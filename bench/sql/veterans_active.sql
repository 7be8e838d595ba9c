-- veterans_active: In their fourth year or later as customers, bought in the last 90 days
-- (ceil(days since sign-up / 365) > 3 means more than 3 * 365 days)
SELECT c.customer_id
FROM customers c
WHERE c.signup_ts < TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '1095 days'
  AND EXISTS (
        SELECT 1
        FROM purchased p
        WHERE p.customer_id = c.customer_id
          AND p.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
          AND p.ts <= TIMESTAMP '1998-07-01 00:00:00')
