-- sporty: Interested in sports or the outdoors
SELECT customer_id
FROM customers
WHERE array_has_any(interests, ['sports', 'outdoor'])
