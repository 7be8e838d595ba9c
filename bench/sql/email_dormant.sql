-- email_dormant: Opted in to e-mail, but opened none in the last 180 days
SELECT c.customer_id
FROM customers c
WHERE c.email_opt_in
  AND NOT EXISTS (
        SELECT 1
        FROM email_opened e
        WHERE e.customer_id = c.customer_id
          AND e.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '180 days'
          AND e.ts <= TIMESTAMP '1998-07-01 00:00:00')
