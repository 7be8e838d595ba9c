-- americas_send_window: Opted in to e-mail and living in the Americas (west of 30 W)
SELECT customer_id
FROM customers
WHERE email_opt_in
  AND lon < -30
