-- interest_aligned: Last purchase in the last 90 days is in one of their stated interests
-- (ties on ts: the largest category is the "last")
WITH ranked AS (
    SELECT customer_id,
           category,
           row_number() OVER (PARTITION BY customer_id ORDER BY ts DESC, category DESC NULLS LAST) AS rn
    FROM purchased
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
)
SELECT c.customer_id
FROM customers c
JOIN ranked r ON r.customer_id = c.customer_id AND r.rn = 1
WHERE array_has(c.interests, r.category)
