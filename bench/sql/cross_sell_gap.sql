-- cross_sell_gap: Last 30 days: last viewed category differs from last purchased category
-- (ties on ts: the largest category is the "last")
WITH v_last_ts AS (
    SELECT customer_id, max(ts) AS last_ts
    FROM viewed
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
),
v_last AS (
    SELECT v.customer_id, max(v.category) AS category
    FROM viewed v
    JOIN v_last_ts l ON l.customer_id = v.customer_id AND l.last_ts = v.ts
    GROUP BY v.customer_id
),
p_last_ts AS (
    SELECT customer_id, max(ts) AS last_ts
    FROM purchased
    WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '30 days'
      AND ts <= TIMESTAMP '1998-07-01 00:00:00'
    GROUP BY customer_id
),
p_last AS (
    SELECT p.customer_id, max(p.category) AS category
    FROM purchased p
    JOIN p_last_ts l ON l.customer_id = p.customer_id AND l.last_ts = p.ts
    GROUP BY p.customer_id
)
SELECT v_last.customer_id
FROM v_last
JOIN p_last ON p_last.customer_id = v_last.customer_id
WHERE v_last.category <> p_last.category
