-- web product shipments known at the as-of instant $1: one row per (session, product) of a
-- package_shipped event, for every product of the order it names. Used by
-- models/web/model.toml (table "product_shipments", the last step of the PURCHASE funnel).
-- The same text runs on PostgreSQL and SQLite.
SELECT DISTINCT e.session_id, oi.product_id, e.created_at
FROM "web"."events" AS e
JOIN "web"."order_items" AS oi ON oi.order_id = e.order_id
WHERE e.event_type = 'package_shipped'
  AND e.created_at <= $1
