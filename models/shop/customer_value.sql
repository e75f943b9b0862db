-- shop customer value (PostgreSQL): one row per customer with an order line known at the
-- as-of instant $1 (order_time <= $1), with its net sales up to then (amt - discount), orders,
-- first and last order time, and the whole days from its last order to $1 (the recency of
-- the behavioural segments). Used by models/shop/model.toml (table "customer_value":
-- customer lifetime value and segments, SEMANTICS §4); the SQLite twin is
-- customer_value.sqlite.sql (same rows).
SELECT
    l.customer_id,
    SUM(l.amt - l.discount) AS net_sales,
    COUNT(DISTINCT l.order_id) AS orders,
    MIN(l.order_time) AS first_order_time,
    MAX(l.order_time) AS last_order_time,
    CAST(FLOOR(EXTRACT(EPOCH FROM (CAST($1 AS timestamptz) - MAX(l.order_time))) / 86400) AS bigint)
        AS days_since_last_order
FROM "shop"."order_line" AS l
WHERE l.order_time <= CAST($1 AS timestamptz)
GROUP BY l.customer_id
