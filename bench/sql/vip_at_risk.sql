-- vip_at_risk: Likely to churn (score over 0.7) but valuable (LTV over 500)
SELECT customer_id
FROM customers
WHERE churn_score > 0.7
  AND ltv > 500
