-- big_fashion_buyers: Bought fashion, AOV over 100, last 30 days (both about the last 30 days)
SELECT customer_id
FROM purchased
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) FILTER (WHERE category = 'fashion') > 0
   AND avg(amount) > 100
