-- near_munich: Lives within 50 km of Munich (haversine, R = 6371 km, Marienplatz 48.137 N 11.575 E)
SELECT customer_id
FROM customers
WHERE 2 * 6371.0 * asin(sqrt(
          power(sin(radians(lat - 48.137) / 2), 2)
        + cos(radians(48.137)) * cos(radians(lat)) * power(sin(radians(lon - 11.575) / 2), 2)
      )) < 50
