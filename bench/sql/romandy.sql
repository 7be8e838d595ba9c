-- romandy: Customers in Geneva or Lausanne (case-insensitive)
SELECT customer_id
FROM customers
WHERE upper(country) = 'CH'
  AND lower(city) IN ('genève', 'lausanne')
