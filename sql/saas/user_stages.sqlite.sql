-- user_stages (model `saas`; SQLite 3.38 or later): every user existing at T with their
-- lifecycle stage as of T and the facts it is decided from. The twin of user_stages.sql
-- (PostgreSQL): the same steps, byte-identical rows (see that file for the output columns
-- and the rule each step implements).
--
-- Parameters:
--   $1 = T, the as-of instant, RFC 3339 text in UTC as tally stores timestamps
--        ('2024-06-01T00:00:00+00:00', a fraction of a second only when non-zero; a
--        trailing Z is accepted and rewritten to +00:00);
--   $2 = the grace period of unpaid invoices in whole seconds (integer >= 0; default 30 days
--        = 2592000).
--
-- Run it by hand in the sqlite3 shell (with the model databases attached as tally does:
-- ATTACH 'tally.saas.db' AS saas):
--
--   sqlite> .parameter set $1 '2024-06-01T00:00:00+00:00'
--   sqlite> .parameter set $2 2592000
--   sqlite> .read sql/saas/user_stages.sqlite.sql
--
-- SQLite specifics:
--   * timestamps are stored as text RFC 3339 in UTC (2024-03-01T09:30:00+00:00, a fraction
--     only when non-zero), which sorts in time order, so comparisons with T (written the
--     same way) are plain text comparisons;
--   * T - grace is computed on the whole seconds of T ('YYYY-MM-DDTHH:MM:SS', exact) and
--     T's own fraction is put back, so it is written exactly as a stored timestamp would be;
--   * ts partitions compare with T written 'YYYY-MM-DD HH:MM:SS', ds with T's first 10
--     characters (date(T) in UTC); text sorts in byte order (BINARY collation);
--   * JSON is text, parsed on every access: the counting events are unpacked once into a
--     materialised CTE (`events`) that the event steps read;
--   * SQLite does not remove unused LEFT JOINs, so the optional columns (email,
--     payment_count, shop counts, plan) are correlated scalar subqueries, run only when a
--     wrapper reads them;
--   * money is REAL: ROUND(…, 2).
WITH
-- Step 1 (§1 asOf): T, T - grace, T as an hourly partition string, and date(T) in UTC.
as_of AS (
    SELECT
        CASE WHEN $1 LIKE '%Z' THEN substr($1, 1, length($1) - 1) || '+00:00' ELSE $1 END AS t
),
params AS (
    SELECT
        t,
        strftime('%Y-%m-%dT%H:%M:%S', substr(t, 1, 19), '-' || CAST($2 AS INTEGER) || ' seconds')
            || substr(t, 20, length(t) - 25) || '+00:00' AS due_by,
        replace(substr(t, 1, 19), 'T', ' ') AS t_ts,
        substr(t, 1, 10) AS t_ds
    FROM as_of
),
-- The lifecycle events that count at T (ts <= T and event_time <= T), metadata unpacked
-- once: one scan of global_events (SQLite parses JSON text on every access).
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
    WHERE e.event_time <= p.t
      AND e.ts <= p.t_ts
),
-- Step 2 (§1 event rows, §2 existence): users whose account creation counts;
-- signup_time = the earliest counting creation's event_time.
signups AS (
    SELECT user_id, MIN(event_time) AS signup_time
    FROM events
    WHERE event_type = 'user_account_creation'
    GROUP BY user_id
),
-- Step 3: the email of the earliest counting creation (ties: smallest event_id).
signup_emails AS (
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
-- Step 4 (§2 account deletion): users whose user_delete_account counts.
account_deletions AS (
    SELECT DISTINCT user_id
    FROM events
    WHERE event_type = 'user_delete_account'
),
-- Step 5 (§2 shop deletion): shops with a counting user_shop_delete (by shop_id).
shop_deletions AS (
    SELECT DISTINCT shop_id
    FROM events
    WHERE event_type = 'user_shop_delete'
),
-- Step 6 (§2 shop ownership, all shops deleted): users with a counting user_shop_create
-- (the shops of u are the shop_ids of u's creation events), and whether every shop they
-- created is deleted.
user_shops AS (
    SELECT
        e.user_id,
        MIN(CASE WHEN d.shop_id IS NULL THEN 0 ELSE 1 END) AS all_shops_deleted
    FROM events AS e
    LEFT JOIN shop_deletions AS d ON d.shop_id = e.shop_id
    WHERE e.event_type = 'user_shop_create'
    GROUP BY e.user_id
),
-- Step 7: the exact numbers of distinct shops created and still live.
user_shop_counts AS (
    SELECT
        e.user_id,
        COUNT(DISTINCT e.shop_id) AS shops_created,
        COUNT(DISTINCT CASE WHEN d.shop_id IS NULL THEN e.shop_id END) AS shops_live
    FROM events AS e
    LEFT JOIN shop_deletions AS d ON d.shop_id = e.shop_id
    WHERE e.event_type = 'user_shop_create'
    GROUP BY e.user_id
),
-- Step 8 (plan of the user as of T): the plan of the user's latest created live shop, else
-- of the latest created shop; ties: the later creation event, then the greatest shop_id,
-- then event_id.
user_plans AS (
    SELECT user_id, plan_id
    FROM (
        SELECT
            e.user_id,
            e.plan_id,
            ROW_NUMBER() OVER (
                PARTITION BY e.user_id
                ORDER BY
                    CASE WHEN d.shop_id IS NULL THEN 0 ELSE 1 END,
                    e.event_time DESC,
                    e.shop_id COLLATE BINARY DESC,
                    e.event_id COLLATE BINARY DESC
            ) AS rn
        FROM events AS e
        LEFT JOIN shop_deletions AS d ON d.shop_id = e.shop_id
        WHERE e.event_type = 'user_shop_create'
    ) AS r
    WHERE r.rn = 1
),
-- Step 9 (§1 daily partitions, §2 payments): the payments of each user counting at T (from
-- 00:00 UTC of their ds): whether there is one, and whether there are at least two distinct
-- payment_ids.
user_payments AS (
    SELECT
        y.user_id,
        CASE WHEN MIN(y.payment_id) < MAX(y.payment_id) THEN 1 ELSE 0 END AS repeat_payer
    FROM "saas"."payments" AS y
    CROSS JOIN params AS p
    WHERE y.ds <= p.t_ds
    GROUP BY y.user_id
),
-- Step 9b: the exact number of distinct payments of each user counting at T.
user_payment_counts AS (
    SELECT y.user_id, COUNT(DISTINCT y.payment_id) AS payment_count
    FROM "saas"."payments" AS y
    CROSS JOIN params AS p
    WHERE y.ds <= p.t_ds
    GROUP BY y.user_id
),
-- Step 10 (§2 delinquency): users with an invoice that counts (ds <= date(T),
-- invoice_timestamp <= T), is overdue (invoice_timestamp + grace <= T, inclusive) and has no
-- counting payment (a payments row with its invoice_id and ds <= date(T)).
delinquent_users AS (
    SELECT DISTINCT i.user_id
    FROM "saas"."invoices" AS i
    CROSS JOIN params AS p
    WHERE i.ds <= p.t_ds
      AND i.invoice_timestamp <= p.t
      AND i.invoice_timestamp <= p.due_by
      AND NOT EXISTS (
          SELECT 1
          FROM "saas"."payments" AS y
          WHERE y.invoice_id = i.invoice_id
            AND y.ds <= p.t_ds
      )
),
-- Step 11 (§1 keyed partitions): each plan's row from its latest partition ts <= T.
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
),
-- Step 12 (§2 stage rules): the facts of every existing user, then the first rule that holds.
facts AS (
    SELECT
        s.user_id,
        s.signup_time,
        CASE WHEN ad.user_id IS NULL THEN 0 ELSE 1 END AS account_deleted,
        COALESCE(us.all_shops_deleted, 0) AS all_shops_deleted,
        CASE WHEN du.user_id IS NULL THEN 0 ELSE 1 END AS delinquent,
        CASE WHEN us.user_id IS NULL THEN 0 ELSE 1 END AS reached_prospect,
        CASE WHEN up.user_id IS NULL THEN 0 ELSE 1 END AS reached_customer,
        COALESCE(up.repeat_payer, 0) AS repeat_payer
    FROM signups AS s
    LEFT JOIN account_deletions AS ad ON ad.user_id = s.user_id
    LEFT JOIN user_shops AS us ON us.user_id = s.user_id
    LEFT JOIN user_payments AS up ON up.user_id = s.user_id
    LEFT JOIN delinquent_users AS du ON du.user_id = s.user_id
)
-- The output. email, payment_count, the shop counts and the plan are correlated scalar
-- subqueries over their steps (each step is materialised once, on first use, with an
-- automatic index on user_id): a wrapper that does not read them (stageCounts, journey,
-- transitions) does not run steps 3, 7, 8, 9b and 11 at all.
SELECT
    f.user_id,
    (SELECT se.email FROM signup_emails AS se WHERE se.user_id = f.user_id) AS email,
    f.signup_time,
    CASE
        WHEN f.account_deleted = 1 OR f.all_shops_deleted = 1 OR f.delinquent = 1 THEN 'CHURNED'
        WHEN f.reached_customer = 1 THEN 'CUSTOMER'
        WHEN f.reached_prospect = 1 THEN 'PROSPECT'
        ELSE 'LEAD'
    END AS stage,
    CASE
        WHEN f.account_deleted = 1 THEN 'ACCOUNT_DELETED'
        WHEN f.all_shops_deleted = 1 THEN 'ALL_SHOPS_DELETED'
        WHEN f.delinquent = 1 THEN 'DELINQUENT'
    END AS churn_reason,
    f.account_deleted,
    f.all_shops_deleted,
    f.delinquent,
    f.reached_prospect,
    f.reached_customer,
    f.repeat_payer,
    COALESCE(
        (SELECT upc.payment_count FROM user_payment_counts AS upc WHERE upc.user_id = f.user_id),
        0
    ) AS payment_count,
    COALESCE(
        (SELECT usc.shops_created FROM user_shop_counts AS usc WHERE usc.user_id = f.user_id),
        0
    ) AS shops_created,
    COALESCE(
        (SELECT usc.shops_live FROM user_shop_counts AS usc WHERE usc.user_id = f.user_id),
        0
    ) AS shops_live,
    (SELECT upl.plan_id FROM user_plans AS upl WHERE upl.user_id = f.user_id) AS plan_id,
    (
        SELECT ROUND(pa.invoice_amount, 2)
        FROM user_plans AS upl
        JOIN plans_at_t AS pa ON pa.plan_id = upl.plan_id
        WHERE upl.user_id = f.user_id
    ) AS plan_invoice_amount
FROM facts AS f
