-- signup_anniversary: Signed up in this calendar month of an earlier year
SELECT customer_id
FROM customers
WHERE EXTRACT(MONTH FROM signup_ts) = EXTRACT(MONTH FROM TIMESTAMP '1998-07-01 00:00:00')
  AND signup_ts < date_trunc('year', TIMESTAMP '1998-07-01 00:00:00')
