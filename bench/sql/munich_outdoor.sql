-- munich_outdoor: Outdoor fans near Munich (segment near_munich inlined)
SELECT customer_id
FROM customers
WHERE array_has(interests, 'outdoor')
  AND 2 * 6371.0 * asin(sqrt(
          power(sin(radians(lat - 48.137) / 2), 2)
        + cos(radians(48.137)) * cos(radians(lat)) * power(sin(radians(lon - 11.575) / 2), 2)
      )) < 50
