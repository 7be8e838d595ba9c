-- fashion_funnel_dach: DACH fashion and beauty fans: viewed, carted and bought fashion
-- in 90 days, opened an e-mail in 30
SELECT c.customer_id
FROM customers c
WHERE c.country IN ('DE', 'AT', 'CH')
  AND array_has_all(c.interests, ['fashion', 'beauty'])
  AND EXISTS (
        SELECT 1 FROM viewed v
        WHERE v.customer_id = c.customer_id
          AND v.category = 'fashion'
          AND v.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
          AND v.ts <= TIMESTAMP '1998-07-01 00:00:00')
  AND EXISTS (
        SELECT 1 FROM added_to_cart a
        WHERE a.customer_id = c.customer_id
          AND a.category = 'fashion'
          AND a.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
          AND a.ts <= TIMESTAMP '1998-07-01 00:00:00')
  AND EXISTS (
        SELECT 1 FROM purchased p
        WHERE p.customer_id = c.customer_id
          AND p.category = 'fashion'
          AND p.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
          AND p.ts <= TIMESTAMP '1998-07-01 00:00:00')
  AND EXISTS (
        SELECT 1 FROM email_opened e
        WHERE e.customer_id = c.customer_id
          AND e.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
          AND e.ts <= TIMESTAMP '1998-07-01 00:00:00')
