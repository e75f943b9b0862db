-- user_details (model `saas`; SQLite 3.38 or later; the twin of user_details.sql): the
-- descriptive columns of user_stages for given users only.
--
-- Parameters: $1 = T (RFC 3339 text in UTC, as tally stores timestamps); $2 = the user
-- ids, a JSON array of strings. Output, one row per requested user: user_id, email,
-- payment_count, shops_created, shops_live, plan_id, plan_invoice_amount.
--
-- Rules: user_stages steps 3, 5, 7, 8, 9b and 11, restricted to the requested users.
WITH
as_of AS (
    SELECT
        CASE WHEN $1 LIKE '%Z' THEN substr($1, 1, length($1) - 1) || '+00:00' ELSE $1 END AS t
),
params AS (
    SELECT
        t,
        replace(substr(t, 1, 19), 'T', ' ') AS t_ts,
        substr(t, 1, 10) AS t_ds
    FROM as_of
),
-- The requested users.
keys AS (
    SELECT DISTINCT value AS user_id FROM json_each($2)
),
-- Their counting lifecycle events (metadata unpacked once).
events AS MATERIALIZED (
    SELECT
        e.event_id,
        e.event_type,
        e.event_time,
        e.metadata ->> 'user_id' AS user_id,
        e.metadata ->> 'shop_id' AS shop_id,
        e.metadata ->> 'plan_id' AS plan_id,
        e.metadata ->> 'email' AS email
    FROM "saas"."global_events" AS e
    CROSS JOIN params AS p
    -- unary + keeps SQLite on the metadata index (a few users' rows), not the
    -- (event_type, event_time) index (every such event up to T)
    WHERE +e.event_type IN ('user_account_creation', 'user_shop_create')
      AND +e.event_time <= p.t
      AND +e.ts <= p.t_ts
      AND e.metadata ->> 'user_id' IN (SELECT user_id FROM keys)
),
-- Step 3: the email of the earliest counting account creation (ties: smallest event_id).
emails AS (
    SELECT user_id, email
    FROM (
        SELECT
            user_id,
            email,
            ROW_NUMBER() OVER (
                PARTITION BY user_id ORDER BY event_time, event_id COLLATE BINARY
            ) AS rn
        FROM events
        WHERE event_type = 'user_account_creation'
    ) AS r
    WHERE r.rn = 1
),
-- Step 5: their shops with a counting user_shop_delete (by shop_id).
shop_deletions AS (
    SELECT DISTINCT e.metadata ->> 'shop_id' AS shop_id
    FROM "saas"."global_events" AS e
    CROSS JOIN params AS p
    -- unary + keeps SQLite on the metadata index (a few users' rows), not the
    -- (event_type, event_time) index (every such event up to T)
    WHERE +e.event_type = 'user_shop_delete'
      AND +e.event_time <= p.t
      AND +e.ts <= p.t_ts
      AND e.metadata ->> 'shop_id' IN (
          SELECT shop_id FROM events WHERE event_type = 'user_shop_create'
      )
),
-- Step 7: distinct shops created and still live.
shop_counts AS (
    SELECT
        c.user_id,
        COUNT(DISTINCT c.shop_id) AS shops_created,
        COUNT(DISTINCT CASE WHEN d.shop_id IS NULL THEN c.shop_id END) AS shops_live
    FROM events AS c
    LEFT JOIN shop_deletions AS d ON d.shop_id = c.shop_id
    WHERE c.event_type = 'user_shop_create'
    GROUP BY c.user_id
),
-- Step 8: the plan of the latest created live shop, else of the latest created shop.
user_plans AS (
    SELECT user_id, plan_id
    FROM (
        SELECT
            c.user_id,
            c.plan_id,
            ROW_NUMBER() OVER (
                PARTITION BY c.user_id
                ORDER BY
                    CASE WHEN d.shop_id IS NULL THEN 0 ELSE 1 END,
                    c.event_time DESC,
                    c.shop_id COLLATE BINARY DESC,
                    c.event_id COLLATE BINARY DESC
            ) AS rn
        FROM events AS c
        LEFT JOIN shop_deletions AS d ON d.shop_id = c.shop_id
        WHERE c.event_type = 'user_shop_create'
    ) AS r
    WHERE r.rn = 1
),
-- Step 9b: distinct payments counting at T (from 00:00 UTC of their ds).
payment_counts AS (
    SELECT y.user_id, COUNT(DISTINCT y.payment_id) AS payment_count
    FROM "saas"."payments" AS y
    CROSS JOIN params AS p
    WHERE y.ds <= p.t_ds
      AND y.user_id IN (SELECT user_id FROM keys)
    GROUP BY y.user_id
),
-- Step 11: each plan's row from its latest partition ts <= T.
plans_at_t AS (
    SELECT plan_id, invoice_amount
    FROM (
        SELECT
            pl.plan_id,
            pl.invoice_amount,
            ROW_NUMBER() OVER (PARTITION BY pl.plan_id ORDER BY pl.ts DESC) AS rn
        FROM "saas"."plans" AS pl
        CROSS JOIN params AS p
        WHERE pl.ts <= p.t_ts
    ) AS r
    WHERE r.rn = 1
)
SELECT
    k.user_id,
    em.email,
    COALESCE(pc.payment_count, 0) AS payment_count,
    COALESCE(sc.shops_created, 0) AS shops_created,
    COALESCE(sc.shops_live, 0) AS shops_live,
    up.plan_id,
    ROUND(pa.invoice_amount, 2) AS plan_invoice_amount
FROM keys AS k
LEFT JOIN emails AS em ON em.user_id = k.user_id
LEFT JOIN payment_counts AS pc ON pc.user_id = k.user_id
LEFT JOIN shop_counts AS sc ON sc.user_id = k.user_id
LEFT JOIN user_plans AS up ON up.user_id = k.user_id
LEFT JOIN plans_at_t AS pa ON pa.plan_id = up.plan_id
