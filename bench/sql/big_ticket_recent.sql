-- big_ticket_recent: Bought an item over 500 in the last 180 days
SELECT DISTINCT customer_id
FROM purchased
WHERE amount > 500
  AND ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '180 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
