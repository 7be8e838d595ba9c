-- electronics_hesitant_with_ticket: Viewed but did not buy electronics in 30 days, ticket in 180 days
WITH viewers AS (
    SELECT DISTINCT customer_id
    FROM viewed
    WHERE category = 'electronics'
      AND ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
)
SELECT v.customer_id
FROM viewers v
WHERE NOT EXISTS (
        SELECT 1
        FROM purchased p
        WHERE p.customer_id = v.customer_id
          AND p.category = 'electronics'
          AND p.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
          AND p.ts <= TIMESTAMP '1998-07-01 00:00:00')
  AND EXISTS (
        SELECT 1
        FROM ticket_opened t
        WHERE t.customer_id = v.customer_id
          AND t.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '180 days'
          AND t.ts <= TIMESTAMP '1998-07-01 00:00:00')
