-- dach: Customers in Germany, Austria or Switzerland
SELECT customer_id
FROM customers
WHERE country IN ('DE', 'AT', 'CH')
