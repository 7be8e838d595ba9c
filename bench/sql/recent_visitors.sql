-- recent_visitors: Viewed a product in the last 7 days
SELECT DISTINCT customer_id
FROM viewed
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '7 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
