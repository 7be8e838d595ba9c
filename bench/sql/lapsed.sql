-- lapsed: Bought before, but nothing in the last 180 days
-- (a purchase up to now, and the latest one is older than 180 days)
SELECT customer_id
FROM purchased
WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING max(ts) < TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '180 days'
