-- shop inventory on hand at the as-of instant $1 (SQLite): the twin of inventory_on_hand.sql
-- (same rows). $1 is RFC 3339 text in UTC ('2024-03-02T00:00:00+00:00'), so date($1) is its
-- first 10 characters; event times are stored the same way and compare as text.
WITH snap AS (
    SELECT store_id, product_id, snapshot_date, quantity_on_hand
    FROM (
        SELECT
            s.store_id, s.product_id, s.snapshot_date, s.quantity_on_hand,
            ROW_NUMBER() OVER (
                PARTITION BY s.store_id, s.product_id ORDER BY s.snapshot_date DESC
            ) AS rn
        FROM "shop"."inventory_snapshot" AS s
        WHERE s.snapshot_date < substr($1, 1, 10)
    ) AS r
    WHERE r.rn = 1
),
moves AS (
    SELECT e.store_id, e.product_id, SUM(e.quantity_change) AS quantity
    FROM "shop"."inventory_event" AS e
    LEFT JOIN snap AS sn ON sn.store_id = e.store_id AND sn.product_id = e.product_id
    WHERE e.event_time <= $1
      AND (sn.snapshot_date IS NULL
           OR e.event_time >= date(sn.snapshot_date, '+1 day') || 'T00:00:00+00:00')
    GROUP BY e.store_id, e.product_id
)
SELECT
    COALESCE(sn.store_id, m.store_id) AS store_id,
    COALESCE(sn.product_id, m.product_id) AS product_id,
    COALESCE(sn.quantity_on_hand, 0) + COALESCE(m.quantity, 0) AS quantity_on_hand,
    sn.snapshot_date
FROM snap AS sn
FULL OUTER JOIN moves AS m ON m.store_id = sn.store_id AND m.product_id = sn.product_id
