-- reachable_engaged: Engaged by e-mail (3+ opens in 60 days) or browsing (a view in 7 days),
-- and no defect or refund ticket in the last 90 days
WITH engaged AS (
    SELECT customer_id
    FROM email_opened
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '60 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
    HAVING count(*) >= 3
    UNION
    SELECT customer_id
    FROM viewed
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '7 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
)
SELECT e.customer_id
FROM engaged e
WHERE NOT EXISTS (
        SELECT 1
        FROM ticket_opened t
        WHERE t.customer_id = e.customer_id
          AND t.reason IN ('defect', 'refund')
          AND t.ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
          AND t.ts <= TIMESTAMP '1998-07-01 00:00:00')
