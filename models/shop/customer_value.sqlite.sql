-- shop customer value (SQLite): the twin of customer_value.sql (same rows). $1 is RFC 3339
-- text in UTC ('2024-03-02T00:00:00+00:00'); order times are stored the same way and compare
-- as text; strftime('%s', …) reads both as whole seconds since 1970.
SELECT
    l.customer_id,
    SUM(l.amt - l.discount) AS net_sales,
    COUNT(DISTINCT l.order_id) AS orders,
    MIN(l.order_time) AS first_order_time,
    MAX(l.order_time) AS last_order_time,
    (CAST(strftime('%s', $1) AS INTEGER) - CAST(strftime('%s', MAX(l.order_time)) AS INTEGER)) / 86400
        AS days_since_last_order
FROM "shop"."order_line" AS l
WHERE l.order_time <= $1
GROUP BY l.customer_id
