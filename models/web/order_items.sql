-- web order items with their order's time: an item counts when its order does (created_at
-- <= the as-of instant $1). Used by models/web/model.toml (table "order_items").
-- The same text runs on PostgreSQL and SQLite.
SELECT oi.order_id, oi.product_id, oi.quantity, o.created_at
FROM "web"."order_items" AS oi
JOIN "web"."orders" AS o ON o.order_id = oi.order_id
WHERE o.created_at <= $1
