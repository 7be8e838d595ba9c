-- sale_hunters: Opened two or more 1998 sale e-mails and bought online this year
SELECT customer_id
FROM email_opened
WHERE campaign LIKE '%sale%'
  AND campaign LIKE '%-1998'
  AND ts >= TIMESTAMP '1998-01-01 00:00:00'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) >= 2
INTERSECT
SELECT customer_id
FROM purchased
WHERE channel <> 'store'
  AND ts >= TIMESTAMP '1998-01-01 00:00:00'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
