-- new_customers: Made their first purchase in the last 30 days (stage lifecycle = 'new':
-- the first arm wins whenever it holds, so only the first purchase matters)
SELECT customer_id
FROM purchased
WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING min(ts) > TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
