-- thirtysomethings_abroad: Aged 30 to 39, outside Germany, Austria and Switzerland
-- (floor(age / 10) = 3 on an integer age is 30 <= age <= 39)
SELECT customer_id
FROM customers
WHERE age BETWEEN 30 AND 39
  AND country NOT IN ('DE', 'AT', 'CH')
