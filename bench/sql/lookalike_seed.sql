-- lookalike_seed: Complete profile (age, gender, income known) and LTV over 1,000
SELECT customer_id
FROM customers
WHERE age IS NOT NULL
  AND gender IS NOT NULL
  AND income IS NOT NULL
  AND ltv > 1000
