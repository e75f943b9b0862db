-- drill_shops (model `saas`; PostgreSQL): the shops of given users as of T, for the users
-- drill-down (one statement per batch of users: the GraphQL dataloader of User.shops).
--
-- Parameters: $1 = T (timestamptz); $2 = the user ids, a JSON array of strings.
-- Output, one row per (user, shop): owner_user_id, shop_id, created_at (timestamptz),
-- deleted (0/1), plan_id. Unordered (tally orders by created_at, then shop_id in byte
-- order).
--
-- Rules (SEMANTICS §1, §2), the same as user_stages.sql steps 5-8: an event counts when
-- ts <= T and event_time <= T; the shops of a user are the shop_ids of the user's counting
-- user_shop_create events (metadata user_id and shop_id); created_at = the earliest of them;
-- the plan = plan_id of the latest of them (ties: greatest event_id); a shop is deleted
-- when a user_shop_delete with its shop_id counts. The shops table is a dimension and
-- decides nothing here.
WITH
-- Step 1: the requested users.
keys AS (
    SELECT DISTINCT jsonb_array_elements_text(CAST($2 AS jsonb)) AS user_id
),
-- Step 2 (§1 event rows, §2 ownership): their counting shop creations. T is written inline
-- (not in a CTE) so that PostgreSQL plans with its value.
creations AS (
    SELECT
        e.metadata ->> 'user_id' AS owner_user_id,
        e.metadata ->> 'shop_id' AS shop_id,
        e.metadata ->> 'plan_id' AS plan_id,
        e.event_time,
        e.event_id
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_shop_create'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
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
            ORDER BY c.event_time DESC, c.event_id COLLATE "C" DESC
        ) AS rn
    FROM creations AS c
),
-- Step 4 (§2 shop deletion): those shops with a counting user_shop_delete.
deletions AS (
    SELECT DISTINCT e.metadata ->> 'shop_id' AS shop_id
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_shop_delete'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
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
