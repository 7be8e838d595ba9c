-- newsletter_fans: Opened six or more newsletters in the last 90 days
SELECT customer_id
FROM email_opened
WHERE campaign LIKE 'newsletter%'
  AND ts >= TIMESTAMP '1998-07-01 00:00:00' - INTERVAL '90 days'
  AND ts <= TIMESTAMP '1998-07-01 00:00:00'
GROUP BY customer_id
HAVING count(*) >= 6
