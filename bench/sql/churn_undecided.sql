-- churn_undecided: Churn score 0.4 to 0.6, LTV about 500 or more
-- (LTV rounded half away from zero to the hundred is >= 500 exactly when LTV >= 450)
SELECT customer_id
FROM customers
WHERE abs(churn_score - 0.5) <= 0.1
  AND ltv >= 450
