-- shop customer value: one row per customer with an order line known at the as-of instant
-- $1 (order_time <= $1), with its net sales up to then (amt - discount), orders and first and
-- last order time. Used by models/shop/model.toml (table "customer_value": customer lifetime
-- value, SEMANTICS §4). The same text runs on PostgreSQL and SQLite.
SELECT
    l.customer_id,
    SUM(l.amt - l.discount) AS net_sales,
    COUNT(DISTINCT l.order_id) AS orders,
    MIN(l.order_time) AS first_order_time,
    MAX(l.order_time) AS last_order_time
FROM "shop"."order_line" AS l
WHERE l.order_time <= $1
GROUP BY l.customer_id
