-- unhappy_customers: Opened a defect or refund ticket in the last 90 days
SELECT DISTINCT customer_id
FROM ticket_opened
WHERE reason IN ('defect', 'refund')
  AND ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
