-- never_purchased: Browsed the shop but never bought anything
SELECT customer_id FROM viewed    WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
EXCEPT
SELECT customer_id FROM purchased WHERE ts <= TIMESTAMP '1998-07-01 00:00:00'
