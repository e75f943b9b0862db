-- user_details (model `saas`; PostgreSQL): the descriptive columns of user_stages.sql for
-- given users only — email, payment_count, shops_created, shops_live, plan_id,
-- plan_invoice_amount — so that a page of users does not compute them for every user.
--
-- Parameters: $1 = T (timestamptz); $2 = the user ids, a JSON array of strings.
-- Output, one row per requested user (nulls and zeros for users that do not exist at T):
--   user_id, email, payment_count, shops_created, shops_live, plan_id, plan_invoice_amount.
--
-- The rules are exactly those of user_stages.sql steps 3, 5, 7, 8, 9b and 11 (the same
-- expressions, restricted to the requested users); tests/saas.rs checks that a page of
-- users (user_stages.sql for the stage, this file for the rest) equals user_stages.sql.
WITH
-- The requested users.
keys AS (
    SELECT DISTINCT jsonb_array_elements_text(CAST($2 AS jsonb)) AS user_id
),
-- Step 3: the email of the earliest counting account creation (ties: smallest event_id).
emails AS (
    SELECT DISTINCT ON (e.metadata ->> 'user_id')
        e.metadata ->> 'user_id' AS user_id,
        e.metadata ->> 'email' AS email
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_account_creation'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
      AND e.metadata ->> 'user_id' IN (SELECT user_id FROM keys)
    ORDER BY e.metadata ->> 'user_id', e.event_time, e.event_id COLLATE "C"
),
-- The counting shop creations of those users (metadata unpacked).
creations AS (
    SELECT
        e.metadata ->> 'user_id' AS user_id,
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
-- Step 5: those shops with a counting user_shop_delete (by shop_id).
shop_deletions AS (
    SELECT DISTINCT e.metadata ->> 'shop_id' AS shop_id
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_shop_delete'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
      AND e.metadata ->> 'shop_id' IN (SELECT shop_id FROM creations)
),
-- Step 7: distinct shops created and still live.
shop_counts AS (
    SELECT
        c.user_id,
        COUNT(DISTINCT c.shop_id) AS shops_created,
        COUNT(DISTINCT CASE WHEN d.shop_id IS NULL THEN c.shop_id END) AS shops_live
    FROM creations AS c
    LEFT JOIN shop_deletions AS d ON d.shop_id = c.shop_id
    GROUP BY c.user_id
),
-- Step 8: the plan of the latest created live shop, else of the latest created shop.
user_plans AS (
    SELECT DISTINCT ON (c.user_id) c.user_id, c.plan_id
    FROM creations AS c
    LEFT JOIN shop_deletions AS d ON d.shop_id = c.shop_id
    ORDER BY
        c.user_id,
        CASE WHEN d.shop_id IS NULL THEN 0 ELSE 1 END,
        c.event_time DESC,
        c.shop_id COLLATE "C" DESC,
        c.event_id COLLATE "C" DESC
),
-- Step 9b: distinct payments counting at T (from 00:00 UTC of their ds).
payment_counts AS (
    SELECT y.user_id, COUNT(DISTINCT y.payment_id) AS payment_count
    FROM "saas"."payments" AS y
    WHERE y.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
      AND y.user_id IN (SELECT user_id FROM keys)
    GROUP BY y.user_id
),
-- Step 11: each plan's row from its latest partition ts <= T.
plans_at_t AS (
    SELECT DISTINCT ON (pl.plan_id) pl.plan_id, pl.invoice_amount
    FROM "saas"."plans" AS pl
    WHERE pl.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    ORDER BY pl.plan_id, pl.ts DESC
)
SELECT
    k.user_id,
    em.email,
    COALESCE(pc.payment_count, 0) AS payment_count,
    COALESCE(sc.shops_created, 0) AS shops_created,
    COALESCE(sc.shops_live, 0) AS shops_live,
    up.plan_id,
    CAST(ROUND(pa.invoice_amount, 2) AS double precision) AS plan_invoice_amount
FROM keys AS k
LEFT JOIN emails AS em ON em.user_id = k.user_id
LEFT JOIN payment_counts AS pc ON pc.user_id = k.user_id
LEFT JOIN shop_counts AS sc ON sc.user_id = k.user_id
LEFT JOIN user_plans AS up ON up.user_id = k.user_id
LEFT JOIN plans_at_t AS pa ON pa.plan_id = up.plan_id
