-- young_women: Women aged 18 to 29
SELECT customer_id
FROM customers
WHERE gender = 'f'
  AND age BETWEEN 18 AND 29
