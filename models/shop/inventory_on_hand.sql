-- shop inventory on hand at the as-of instant $1 (PostgreSQL), SEMANTICS §4: per (store,
-- product), the latest inventory_snapshot whose day has ended (snapshot_date + 1 day <= $1: a
-- snapshot is the end of its day) plus the quantity_change of the inventory events after it
-- (event_time >= the next day's 00:00 UTC) and <= $1. A pair without such a snapshot starts
-- from 0. Used by models/shop/model.toml (table "inventory_on_hand"); the SQLite twin is
-- inventory_on_hand.sqlite.sql.
WITH snap AS (
    SELECT DISTINCT ON (s.store_id, s.product_id)
        s.store_id, s.product_id, s.snapshot_date, s.quantity_on_hand
    FROM "shop"."inventory_snapshot" AS s
    WHERE s.snapshot_date < CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
    ORDER BY s.store_id, s.product_id, s.snapshot_date DESC
),
moves AS (
    SELECT e.store_id, e.product_id, SUM(e.quantity_change) AS quantity
    FROM "shop"."inventory_event" AS e
    LEFT JOIN snap AS sn ON sn.store_id = e.store_id AND sn.product_id = e.product_id
    WHERE e.event_time <= CAST($1 AS timestamptz)
      AND (sn.snapshot_date IS NULL
           OR e.event_time >= CAST(sn.snapshot_date + 1 AS timestamp) AT TIME ZONE 'UTC')
    GROUP BY e.store_id, e.product_id
)
SELECT
    COALESCE(sn.store_id, m.store_id) AS store_id,
    COALESCE(sn.product_id, m.product_id) AS product_id,
    CAST(COALESCE(sn.quantity_on_hand, 0) + COALESCE(m.quantity, 0) AS bigint) AS quantity_on_hand,
    sn.snapshot_date
FROM snap AS sn
FULL OUTER JOIN moves AS m ON m.store_id = sn.store_id AND m.product_id = sn.product_id
