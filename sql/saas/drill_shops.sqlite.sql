-- drill_shops (model `saas`; SQLite 3.38 or later; the twin of drill_shops.sql): the shops
-- of given users as of T, for the users drill-down (the GraphQL dataloader of User.shops).
--
-- Parameters: $1 = T (RFC 3339 text in UTC, as tally stores timestamps); $2 = the user
-- ids, a JSON array of strings. Output, one row per (user, shop): owner_user_id, shop_id,
-- created_at (RFC 3339 text), deleted (0/1), plan_id. Unordered.
--
-- Rules: see drill_shops.sql (the same as user_stages steps 5-8).
WITH
-- Step 1: T and T as an hourly partition string; the requested users.
as_of AS (
    SELECT
        CASE WHEN $1 LIKE '%Z' THEN substr($1, 1, length($1) - 1) || '+00:00' ELSE $1 END AS t
),
params AS (
    SELECT t, replace(substr(t, 1, 19), 'T', ' ') AS t_ts FROM as_of
),
keys AS (
    SELECT DISTINCT value AS user_id FROM json_each($2)
),
-- Step 2 (§1 event rows, §2 ownership): their counting shop creations.
creations AS MATERIALIZED (
    SELECT
        e.metadata ->> 'user_id' AS owner_user_id,
        e.metadata ->> 'shop_id' AS shop_id,
        e.metadata ->> 'plan_id' AS plan_id,
        e.event_time,
        e.event_id
    FROM "saas"."global_events" AS e
    CROSS JOIN params AS p
    -- unary + keeps SQLite on the metadata index (a few users' rows), not the
    -- (event_type, event_time) index (every such event up to T)
    WHERE +e.event_type = 'user_shop_create'
      AND +e.event_time <= p.t
      AND +e.ts <= p.t_ts
      AND e.metadata ->> 'user_id' IN (SELECT user_id FROM keys)
),
-- Step 3: one row per (user, shop): the earliest creation time, the latest creation's plan.
shops AS (
    SELECT
        c.owner_user_id,
        c.shop_id,
        c.plan_id,
        MIN(c.event_time) OVER (PARTITION BY c.owner_user_id, c.shop_id) AS created_at,
        ROW_NUMBER() OVER (
            PARTITION BY c.owner_user_id, c.shop_id
            ORDER BY c.event_time DESC, c.event_id COLLATE BINARY DESC
        ) AS rn
    FROM creations AS c
),
-- Step 4 (§2 shop deletion): those shops with a counting user_shop_delete.
deletions AS (
    SELECT DISTINCT e.metadata ->> 'shop_id' AS shop_id
    FROM "saas"."global_events" AS e
    CROSS JOIN params AS p
    -- unary + keeps SQLite on the metadata index (a few users' rows), not the
    -- (event_type, event_time) index (every such event up to T)
    WHERE +e.event_type = 'user_shop_delete'
      AND +e.event_time <= p.t
      AND +e.ts <= p.t_ts
      AND e.metadata ->> 'shop_id' IN (SELECT shop_id FROM creations)
)
SELECT
    s.owner_user_id,
    s.shop_id,
    s.created_at,
    CASE WHEN d.shop_id IS NULL THEN 0 ELSE 1 END AS deleted,
    s.plan_id
FROM shops AS s
LEFT JOIN deletions AS d ON d.shop_id = s.shop_id
WHERE s.rn = 1
