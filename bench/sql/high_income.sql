-- high_income: Yearly income above 80,000
SELECT customer_id
FROM customers
WHERE income > 80000
