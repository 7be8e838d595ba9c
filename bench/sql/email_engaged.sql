-- email_engaged: Opened three or more e-mails in the last 60 days
SELECT customer_id
FROM email_opened
WHERE ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '60 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) >= 3
