-- user_stages (model `saas`; PostgreSQL 15/16): every user existing at T with their
-- lifecycle stage as of T and the facts it is decided from.
--
-- The building block of the saas lifecycle: stageCounts, journey, transitions and the users
-- drill-down all wrap this one query (`SELECT … FROM (<this file>) s WHERE … GROUP BY …`).
--
-- Parameters (nothing else is spliced into the text; the file is ONE query, no semicolon):
--   $1 = T, the as-of instant (timestamptz);
--   $2 = the grace period of unpaid invoices in whole seconds (bigint >= 0; tally binds
--        grace_days * 86400 from the `[saas] grace_days` setting, default 30 days = 2592000).
--        A caller that can bind only $1 may write 2592000 in place of $2.
--
-- Run it by hand in psql (from the repository root):
--
--   \set q `cat sql/saas/user_stages.sql`
--   PREPARE user_stages(timestamptz, bigint) AS :q ;
--   EXECUTE user_stages('2024-06-01T00:00:00Z', 2592000);
--   DEALLOCATE user_stages;
--
-- Output, one row per user whose account creation counts at T (byte order of user_id is NOT
-- guaranteed; wrappers order):
--   user_id            text
--   email              text        from the metadata of the earliest counting account
--                                  creation (ties: smallest event_id)
--   signup_time        timestamptz event_time of the earliest counting account creation
--   stage              text        CHURNED | CUSTOMER | PROSPECT | LEAD (first rule that holds)
--   churn_reason       text        ACCOUNT_DELETED | ALL_SHOPS_DELETED | DELINQUENT, the first
--                                  churn rule that holds, in that order; null unless CHURNED
--   account_deleted    int 0/1     a user_delete_account of the user counts
--   all_shops_deleted  int 0/1     >= 1 shop created and every created shop deleted
--   delinquent         int 0/1     an invoice of the user is delinquent at T
--   reached_prospect   int 0/1     >= 1 shop creation of the user counts
--   reached_customer   int 0/1     >= 1 payment of the user counts
--   repeat_payer       int 0/1     >= 2 distinct payment_ids of the user count
--   payment_count      bigint      distinct payment_id of the user counting at T
--   shops_created      bigint      distinct shops the user created (creation counts at T)
--   shops_live         bigint      of which not deleted at T
--   plan_id            text        the user's plan as of T: the plan_id of the creation event
--                                  of the user's latest created shop that is not deleted,
--                                  else of the latest created shop (ties: greatest shop_id,
--                                  then event_id); null without a shop
--   plan_invoice_amount double     that plan's invoice_amount from the plans row of the latest
--                                  partition ts <= T, rounded to 2 decimals (null if none)
--
-- Rules (docs/SEMANTICS.md §1 and §2), each implemented by the step named:
--   * §1 an event row counts when its partition ts <= T AND its event_time <= T (late-
--     arriving events, ts later than event_time, count only once both hold)   [steps 2-8]
--   * §2 a user exists at T when its user_account_creation counts            [steps 2, 3]
--   * §2 shop ownership comes from the user_shop_create metadata: the shops of u are the
--     shop_ids of u's counting creation events; a shop is deleted when a user_shop_delete
--     with its shop_id counts                                                 [steps 5-7]
--   * §1 daily partitions count when ds <= date(T) (UTC); a payment counts from 00:00 UTC
--     of its ds; a payment of u is a payments row with user_id = u, counted by distinct
--     payment_id                                                                [step 9]
--   * §2 an invoice is delinquent at T when it counts itself (invoice_timestamp <= T and
--     ds <= date(T)), invoice_timestamp + grace <= T (inclusive), and no payment for it
--     (same invoice_id) counts                                                 [step 10]
--   * §1 keyed partitioned rows (plans): the row of the latest partition ts <= T [step 11]
--   * §2 stage = first rule that holds: CHURNED, CUSTOMER, PROSPECT, LEAD; a churned user who
--     pays every delinquent invoice (and has no deletion) is a customer again  [step 12]
--   * the users and shops tables are dimensions and never decide a stage (not read here).
--
-- Shape: no CTE is materialised and the as-of values are written inline as expressions of
-- $1, so PostgreSQL plans each statement with the actual instant (custom plan of the
-- unnamed prepared statement) and inlines every CTE. Each step is one scan (global_events
-- once per event type, through its (event_type, event_time) index or a parallel seq scan;
-- payments and invoices once each) aggregated per user with hash aggregates; the steps meet
-- in hash joins on user_id. email, payment_count, the shop counts and plan_id come from
-- their own steps keyed by user_id and joined last: a wrapper that does not read them
-- (stageCounts, journey, transitions) lets PostgreSQL remove those joins, so steps 3, 7, 8,
-- 9b and 11 do not run.
--
-- Whole-population questions (stageCounts, journey, transitions, the users drill-down) read
-- the stage history instead when it is fresh (stage_history.sql builds it, stages_at.sql
-- reads it; src/saas/history.rs, docs/SAAS-LIFECYCLE.md): this file is the reference the
-- history is tested against, what the semantic layer's `stages` table reads, and the
-- fallback while the history is stale. Its costs:
--
-- tally runs the whole-population wrappers (stageCounts, journey, transitions) with
-- `SET LOCAL jit = off` in their own transaction (src/saas/mod.rs, query_stages): the
-- plan is costed above jit_optimize_above_cost, and JIT compilation with inlining cost more
-- than the query (1.8 s of 2.9 s at 300 000 users). Measured at 300 000 users without JIT,
-- the remaining time is CPU in the per-step scans and hash aggregates (unpaid-invoice
-- anti-join ~0.8 s, account creations ~0.5 s, payments per user ~0.45 s, shops ~0.3 s); a
-- larger work_mem does not help, and NOT EXISTS probes of payments(invoice_id) (the plan
-- PostgreSQL picks with work_mem >= 16MB) are 8x slower than the hash anti-join.
--
-- The SQLite twin is user_stages.sqlite.sql (same steps, same rows).
WITH
-- Step 1 (§1 asOf): T is $1; T - grace, T as an hourly partition string and date(T) are
-- written inline where they are used (see "Shape" above):
--   T - grace      CAST($1 AS timestamptz) - make_interval(secs => CAST($2 AS double precision))
--   T as ts        to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
--   date(T)        CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
-- Step 2 (§1 event rows, §2 existence): users whose account creation counts (ts <= T and
-- event_time <= T); signup_time = the earliest counting creation's event_time.
signups AS (
    SELECT e.metadata ->> 'user_id' AS user_id, MIN(e.event_time) AS signup_time
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_account_creation'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    GROUP BY e.metadata ->> 'user_id'
),
-- Step 3: the email of the earliest counting creation (ties: smallest event_id). A separate
-- step keyed by user_id, so that a wrapper not reading `email` does not compute it.
signup_emails AS (
    SELECT DISTINCT ON (e.metadata ->> 'user_id')
        e.metadata ->> 'user_id' AS user_id,
        e.metadata ->> 'email' AS email
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_account_creation'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    ORDER BY e.metadata ->> 'user_id', e.event_time, e.event_id COLLATE "C"
),
-- Step 4 (§2 account deletion): users whose user_delete_account counts.
account_deletions AS (
    SELECT DISTINCT e.metadata ->> 'user_id' AS user_id
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_delete_account'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
),
-- Step 5 (§2 shop deletion): shops with a counting user_shop_delete (by shop_id, whoever
-- the event names as user).
shop_deletions AS NOT MATERIALIZED (
    SELECT DISTINCT e.metadata ->> 'shop_id' AS shop_id
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_shop_delete'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
),
-- Step 6 (§2 shop ownership, all shops deleted): users with a counting user_shop_create
-- (the shops of u are the shop_ids of u's creation events, from their metadata), and
-- whether every shop they created is deleted — one hash join and one hash aggregate.
user_shops AS (
    SELECT
        e.metadata ->> 'user_id' AS user_id,
        MIN(CASE WHEN d.shop_id IS NULL THEN 0 ELSE 1 END) AS all_shops_deleted
    FROM "saas"."global_events" AS e
    LEFT JOIN shop_deletions AS d ON d.shop_id = e.metadata ->> 'shop_id'
    WHERE e.event_type = 'user_shop_create'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    GROUP BY e.metadata ->> 'user_id'
),
-- Step 7: the exact numbers of distinct shops created and still live. Keyed by user_id and
-- joined last: a wrapper not reading them does not compute them.
user_shop_counts AS (
    SELECT
        e.metadata ->> 'user_id' AS user_id,
        COUNT(DISTINCT e.metadata ->> 'shop_id') AS shops_created,
        COUNT(DISTINCT CASE WHEN d.shop_id IS NULL THEN e.metadata ->> 'shop_id' END)
            AS shops_live
    FROM "saas"."global_events" AS e
    LEFT JOIN shop_deletions AS d ON d.shop_id = e.metadata ->> 'shop_id'
    WHERE e.event_type = 'user_shop_create'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    GROUP BY e.metadata ->> 'user_id'
),
-- Step 8 (plan of the user as of T): the plan (user_shop_create metadata) of the user's
-- latest created live shop, else of the latest created shop; ties: the later creation
-- event, then the greatest shop_id, then event_id. Keyed by user_id: a wrapper not reading
-- plan_id does not compute it.
user_plans AS (
    SELECT DISTINCT ON (e.metadata ->> 'user_id')
        e.metadata ->> 'user_id' AS user_id,
        e.metadata ->> 'plan_id' AS plan_id
    FROM "saas"."global_events" AS e
    LEFT JOIN shop_deletions AS d ON d.shop_id = e.metadata ->> 'shop_id'
    WHERE e.event_type = 'user_shop_create'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    ORDER BY
        e.metadata ->> 'user_id',
        CASE WHEN d.shop_id IS NULL THEN 0 ELSE 1 END,
        e.event_time DESC,
        (e.metadata ->> 'shop_id') COLLATE "C" DESC,
        e.event_id COLLATE "C" DESC
),
-- Step 9 (§1 daily partitions, §2 payments): the payments of each user counting at T (from
-- 00:00 UTC of their ds), as much as stages and the journey need, in one hash aggregate:
-- whether there is one, and whether there are at least two distinct payment_ids.
user_payments AS (
    SELECT
        user_id,
        CASE WHEN MIN(payment_id) < MAX(payment_id) THEN 1 ELSE 0 END AS repeat_payer
    FROM "saas"."payments"
    WHERE ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
    GROUP BY user_id
),
-- Step 9b: the exact number of distinct payments of each user counting at T. Keyed by
-- user_id and joined last: a wrapper not reading payment_count does not compute it.
user_payment_counts AS (
    SELECT user_id, COUNT(DISTINCT payment_id) AS payment_count
    FROM "saas"."payments"
    WHERE ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
    GROUP BY user_id
),
-- Step 10 (§2 delinquency): users with an invoice that counts (ds <= date(T),
-- invoice_timestamp <= T), is overdue (invoice_timestamp + grace <= T, inclusive) and has no
-- counting payment (a payments row with its invoice_id and ds <= date(T)).
delinquent_users AS (
    SELECT DISTINCT i.user_id
    FROM "saas"."invoices" AS i
    WHERE i.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
      AND i.invoice_timestamp <= CAST($1 AS timestamptz)
      AND i.invoice_timestamp
          <= CAST($1 AS timestamptz) - make_interval(secs => CAST($2 AS double precision))
      AND NOT EXISTS (
          SELECT 1
          FROM "saas"."payments" AS y
          WHERE y.invoice_id = i.invoice_id
            AND y.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
      )
),
-- Step 11 (§1 keyed partitions): each plan's row from its latest partition ts <= T.
plans_at_t AS (
    SELECT DISTINCT ON (pl.plan_id) pl.plan_id, pl.invoice_amount
    FROM "saas"."plans" AS pl
    WHERE pl.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
    ORDER BY pl.plan_id, pl.ts DESC
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
SELECT
    f.user_id,
    se.email,
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
    COALESCE(upc.payment_count, 0) AS payment_count,
    COALESCE(usc.shops_created, 0) AS shops_created,
    COALESCE(usc.shops_live, 0) AS shops_live,
    upl.plan_id,
    CAST(ROUND(pa.invoice_amount, 2) AS double precision) AS plan_invoice_amount
FROM facts AS f
LEFT JOIN signup_emails AS se ON se.user_id = f.user_id
LEFT JOIN user_payment_counts AS upc ON upc.user_id = f.user_id
LEFT JOIN user_shop_counts AS usc ON usc.user_id = f.user_id
LEFT JOIN user_plans AS upl ON upl.user_id = f.user_id
LEFT JOIN plans_at_t AS pa ON pa.plan_id = upl.plan_id
