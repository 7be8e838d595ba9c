-- category_explorers: Bought in four or more different categories
SELECT customer_id
FROM purchased
WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(DISTINCT category) >= 4
