-- long_tenure_buyers: First and last purchase at least 180 days apart
SELECT customer_id
FROM purchased
WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING max(ts) >= min(ts) + INTERVAL '180 days'
