-- xmas_gift_buyers_1997: Bought toys or electronics between 15 Nov and 25 Dec 1997 (end exclusive)
SELECT DISTINCT customer_id
FROM purchased
WHERE category IN ('toys', 'electronics')
  AND ts >= TIMESTAMP '1997-11-15 00:00:00'
  AND ts <  TIMESTAMP '1997-12-25 00:00:00'
