-- web product conversion events known at the as-of instant $1, one row per (session,
-- product) event: 'CHECKOUT' for every product of the order a checkout event names,
-- 'ADD_TO_CART' for every add-to-cart event. Used by models/web/model.toml (table
-- "product_conversions"; conversionFilter CHECKOUT / ADD_TO_CART keeps the rows of a kind).
-- The same text runs on PostgreSQL and SQLite.
SELECT e.session_id, oi.product_id, e.created_at, 'CHECKOUT' AS kind
FROM "web"."events" AS e
JOIN "web"."order_items" AS oi ON oi.order_id = e.order_id
WHERE e.event_type = 'checkout'
  AND e.created_at <= $1
UNION ALL
SELECT e.session_id, e.product_id, e.created_at, 'ADD_TO_CART' AS kind
FROM "web"."events" AS e
WHERE e.event_type = 'add_to_cart'
  AND e.product_id IS NOT NULL
  AND e.created_at <= $1
