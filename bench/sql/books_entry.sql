-- books_entry: First purchase was a book
-- (the category at the earliest purchase; lines of that first order tied on ts: the smallest)
WITH first_purchase AS (
    SELECT customer_id, min(ts) AS first_ts
    FROM purchased
    WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
)
SELECT p.customer_id
FROM purchased p
JOIN first_purchase f
  ON f.customer_id = p.customer_id
 AND f.first_ts = p.ts
GROUP BY p.customer_id
HAVING min(p.category) = 'books'
