-- flagship_electronics: Bought a flagship electronics product (electronics-000 to -049) in the last 365 days
SELECT DISTINCT customer_id
FROM purchased
WHERE product ~ '^electronics-0[0-4][0-9]$'
  AND ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '365 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
