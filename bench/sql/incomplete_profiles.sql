-- incomplete_profiles: Age, gender or income missing, or a blank city
SELECT customer_id
FROM customers
WHERE age IS NULL
   OR gender IS NULL
   OR income IS NULL
   OR length(trim(city)) = 0
