-- stage_history (model `saas`; SQLite 3.39+): every user's lifecycle stage as a
-- function of the as-of instant, one row per interval over which it stays the same.
--
-- tally fills "saas"."tally_stage_history" with the rows of this query (src/saas/history.rs:
-- `INSERT INTO … (<columns>) <this file>`, after every saas load and when the server finds
-- the table stale). It is ONE query, no semicolon; `$1` is the grace period of unpaid
-- invoices in whole seconds (grace_days * 86400); `$2` is 0 for every user, or 1 for only
-- the users listed in "saas"."tally_stage_history_scope" (a load's users, whose rows the
-- loader replaces; see src/saas/history.rs). Instants are text as tally stores
-- them on SQLite (`2024-03-01T10:00:00+00:00`, a fraction when non-zero), so text order is
-- time order; ts becomes `<ts with T>+00:00`, a ds `<ds>T00:00:00+00:00`, and the open end
-- of the last interval is `9999-12-31T23:59:59+00:00`. The PostgreSQL twin is
-- stage_history.sql (same steps, same rows).
--
-- Why it is exact: every row of global_events, payments and invoices starts to count at a
-- fixed instant and counts at every later T (SEMANTICS §1: both its business time and its
-- knowledge time are <= T). So the set of rows counting at T only grows with T, every fact
-- of user_stages.sql is a count over that set, and a user's stage can change only at the
-- instants where one of its rows starts to count (or an unpaid invoice becomes overdue).
-- This file computes, per user, the running counts at each such instant and keeps the
-- instants where the stage or one of its facts changes: the row valid over
-- [valid_from, valid_to) holds what user_stages.sql returns for every T in it (the tests
-- compare the two at every boundary, on SQLite and PostgreSQL).
--
-- The instant a row counts from ("known"):
--   * an event:   GREATEST(event_time, ts as an instant)          (§1 hourly partitions)
--   * a payment:  00:00 UTC of its ds                              (§1 daily partitions)
--   * an invoice: GREATEST(invoice_timestamp, 00:00 UTC of its ds); it is delinquent
--                 from GREATEST(that, invoice_timestamp + grace) (inclusive) until the
--                 first payment with its invoice_id counts        (§2 delinquency)
WITH
-- The rows the build reads: every row ($2 = 0), or ($2 = 1) only the rows of the users in
-- the scope table — their events, every shop deletion (it deletes by shop_id, whoever it
-- names), their payments and invoices, and the payments of their invoices. Each choice is
-- its own UNION ALL branch behind a condition on $2 alone, so the planner skips the other
-- and reads a scoped branch through the user_id / invoice_id / metadata indexes.
source_events AS (
    SELECT e.* FROM "saas"."global_events" AS e WHERE CAST($2 AS INTEGER) = 0
    UNION ALL
    SELECT e.* FROM "saas"."global_events" AS e
    WHERE CAST($2 AS INTEGER) = 1
      AND e.event_type <> 'user_shop_delete'
      AND e.metadata ->> 'user_id' IN (SELECT user_id FROM "saas"."tally_stage_history_scope")
    UNION ALL
    SELECT e.* FROM "saas"."global_events" AS e
    WHERE CAST($2 AS INTEGER) = 1 AND e.event_type = 'user_shop_delete'
),
source_invoices AS (
    SELECT i.* FROM "saas"."invoices" AS i WHERE CAST($2 AS INTEGER) = 0
    UNION ALL
    SELECT i.* FROM "saas"."invoices" AS i
    WHERE CAST($2 AS INTEGER) = 1 AND i.user_id IN (SELECT user_id FROM "saas"."tally_stage_history_scope")
),
-- payments of the users (counts of distinct payments)
source_user_payments AS (
    SELECT y.* FROM "saas"."payments" AS y WHERE CAST($2 AS INTEGER) = 0
    UNION ALL
    SELECT y.* FROM "saas"."payments" AS y
    WHERE CAST($2 AS INTEGER) = 1 AND y.user_id IN (SELECT user_id FROM "saas"."tally_stage_history_scope")
),
-- payments for the users' invoices (whoever paid them)
source_invoice_payments AS (
    SELECT y.* FROM "saas"."payments" AS y WHERE CAST($2 AS INTEGER) = 0
    UNION ALL
    SELECT y.* FROM "saas"."payments" AS y
    WHERE CAST($2 AS INTEGER) = 1
      AND y.invoice_id IN (
          SELECT i.invoice_id FROM "saas"."invoices" AS i
          WHERE i.user_id IN (SELECT user_id FROM "saas"."tally_stage_history_scope")
      )
),
-- Lifecycle events with the instant each counts from and the metadata used.
events AS (
    SELECT
        e.event_type,
        e.event_time,
        e.metadata ->> 'user_id' AS user_id,
        e.metadata ->> 'shop_id' AS shop_id,
        max(e.event_time, replace(e.ts, ' ', 'T') || '+00:00') AS known
    FROM source_events AS e
),
-- §2 existence: each account creation; signup_time at T is the smallest event_time of
-- the creations counting at T (a running minimum below).
creations AS (
    SELECT user_id, known AS at, event_time
    FROM events
    WHERE event_type = 'user_account_creation'
),
-- §2 account deletion: from the first counting deletion of the user on.
deletions AS (
    SELECT user_id, MIN(known) AS at
    FROM events
    WHERE event_type = 'user_delete_account'
    GROUP BY user_id
),
-- §2 shop deletion, by shop_id whoever the event names as user.
shop_deletions AS (
    SELECT shop_id, MIN(known) AS at
    FROM events
    WHERE event_type = 'user_shop_delete'
    GROUP BY shop_id
),
-- §2 shop ownership: the shops of u are the shop_ids of u's creation events; a shop of u
-- counts as created from its first counting creation, and as created and deleted once its
-- deletion counts too.
user_shops AS (
    SELECT
        c.user_id,
        c.created,
        CASE WHEN d.at IS NOT NULL THEN max(c.created, d.at) END AS deleted
    FROM (
        SELECT user_id, shop_id, MIN(known) AS created
        FROM events
        WHERE event_type = 'user_shop_create'
        GROUP BY user_id, shop_id
    ) AS c
    LEFT JOIN shop_deletions AS d ON d.shop_id = c.shop_id
),
-- §2 payments of u: distinct payment_ids with user_id = u, each from its first ds. Only the
-- first two matter (reached CUSTOMER, repeat payer).
user_payments AS (
    SELECT user_id, ds || 'T00:00:00+00:00' AS at
    FROM (
        SELECT user_id, ds, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY ds) AS n
        FROM (
            SELECT user_id, payment_id, MIN(ds) AS ds
            FROM source_user_payments
            GROUP BY user_id, payment_id
        ) AS p
    ) AS p
    WHERE n <= 2
),
-- §2 delinquency: each invoice row is delinquent over [overdue, paid) — overdue once it
-- counts and its grace has passed, paid once a payment with its invoice_id counts; rows
-- paid in time are never delinquent and drop out.
invoice_paid AS (
    SELECT invoice_id, MIN(ds) || 'T00:00:00+00:00' AS paid
    FROM source_invoice_payments
    GROUP BY invoice_id
),
overdue AS (
    SELECT i.user_id, i.overdue, p.paid
    FROM (
        SELECT
            user_id,
            invoice_id,
            max(
                ds || 'T00:00:00+00:00',
                strftime('%Y-%m-%dT%H:%M:%S', substr(invoice_timestamp, 1, 19),
                         '+' || CAST($1 AS INTEGER) || ' seconds')
                    || substr(invoice_timestamp, 20, length(invoice_timestamp) - 25)
                    || '+00:00'
            ) AS overdue
        FROM source_invoices
    ) AS i
    LEFT JOIN invoice_paid AS p ON p.invoice_id = i.invoice_id
    WHERE p.paid IS NULL OR p.paid > i.overdue
),
-- Every change, as increments of the per-user counts at the instant it happens.
deltas (user_id, at, created, signup, deleted, shops, shops_deleted, payments, overdue) AS (
    SELECT user_id, at, 1, event_time, 0, 0, 0, 0, 0 FROM creations
    UNION ALL SELECT user_id, at, 0, NULL, 1, 0, 0, 0, 0 FROM deletions
    UNION ALL SELECT user_id, created, 0, NULL, 0, 1, 0, 0, 0 FROM user_shops
    UNION ALL SELECT user_id, deleted, 0, NULL, 0, 0, 1, 0, 0 FROM user_shops
              WHERE deleted IS NOT NULL
    UNION ALL SELECT user_id, at, 0, NULL, 0, 0, 0, 1, 0 FROM user_payments
    UNION ALL SELECT user_id, overdue, 0, NULL, 0, 0, 0, 0, 1 FROM overdue
    UNION ALL SELECT user_id, paid, 0, NULL, 0, 0, 0, 0, -1 FROM overdue
              WHERE paid IS NOT NULL
),
-- The counts of each user at each change instant (running sums in instant order).
running AS (
    SELECT
        user_id,
        at,
        SUM(SUM(created)) OVER w AS created,
        MIN(MIN(signup)) OVER w AS signup_time,
        SUM(SUM(deleted)) OVER w AS deleted,
        SUM(SUM(shops)) OVER w AS shops,
        SUM(SUM(shops_deleted)) OVER w AS shops_deleted,
        SUM(SUM(payments)) OVER w AS payments,
        SUM(SUM(overdue)) OVER w AS overdue
    FROM deltas
    GROUP BY user_id, at
    WINDOW w AS (PARTITION BY user_id ORDER BY at ROWS UNBOUNDED PRECEDING)
),
-- §2 the facts and the stage (first rule that holds) at each instant the user exists.
states AS (
    SELECT
        user_id,
        at,
        signup_time,
        CASE WHEN deleted > 0 THEN 1 ELSE 0 END AS account_deleted,
        CASE WHEN shops > 0 AND shops_deleted = shops THEN 1 ELSE 0 END AS all_shops_deleted,
        CASE WHEN overdue > 0 THEN 1 ELSE 0 END AS delinquent,
        CASE WHEN shops > 0 THEN 1 ELSE 0 END AS reached_prospect,
        CASE WHEN payments > 0 THEN 1 ELSE 0 END AS reached_customer,
        CASE WHEN payments > 1 THEN 1 ELSE 0 END AS repeat_payer
    FROM running
    WHERE created > 0
),
-- Only the instants where something the stage tables report changes.
changes AS (
    SELECT
        s.*,
        LAG(signup_time) OVER u IS NOT signup_time
        OR LAG(account_deleted) OVER u IS NOT account_deleted
        OR LAG(all_shops_deleted) OVER u IS NOT all_shops_deleted
        OR LAG(delinquent) OVER u IS NOT delinquent
        OR LAG(reached_prospect) OVER u IS NOT reached_prospect
        OR LAG(reached_customer) OVER u IS NOT reached_customer
        OR LAG(repeat_payer) OVER u IS NOT repeat_payer AS changed
    FROM states AS s
    WINDOW u AS (PARTITION BY user_id ORDER BY at)
),
kept AS (
    SELECT
        c.*,
        COALESCE(LEAD(at) OVER (PARTITION BY user_id ORDER BY at), '9999-12-31T23:59:59+00:00') AS valid_to
    FROM changes AS c
    WHERE changed
)
SELECT
    user_id,
    at AS valid_from,
    valid_to,
    signup_time,
    CASE
        WHEN account_deleted = 1 OR all_shops_deleted = 1 OR delinquent = 1 THEN 'CHURNED'
        WHEN reached_customer = 1 THEN 'CUSTOMER'
        WHEN reached_prospect = 1 THEN 'PROSPECT'
        ELSE 'LEAD'
    END AS stage,
    CASE
        WHEN account_deleted = 1 THEN 'ACCOUNT_DELETED'
        WHEN all_shops_deleted = 1 THEN 'ALL_SHOPS_DELETED'
        WHEN delinquent = 1 THEN 'DELINQUENT'
    END AS churn_reason,
    account_deleted,
    all_shops_deleted,
    delinquent,
    reached_prospect,
    reached_customer,
    repeat_payer
FROM kept
