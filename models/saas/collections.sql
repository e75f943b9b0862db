-- saas collections (PostgreSQL): one row per invoice counting at the as-of instant $1
-- (ds <= date($1) and invoice_timestamp <= $1) with at least one payment counting at $1 (its
-- ds <= date($1): a payment counts from 00:00 UTC of its ds), with its amount and the day it
-- was collected: the ds of its earliest counting payment. Payments carry no amount, so an
-- invoice paid twice is collected once. Used by models/saas/model.toml (table
-- "collections": the collected amount per period, SEMANTICS §2); the SQLite twin is
-- collections.sqlite.sql (same rows).
WITH paid AS (
    SELECT p.invoice_id, MIN(p.ds) AS collected_day, COUNT(DISTINCT p.payment_id) AS payments
    FROM "saas"."payments" AS p
    WHERE p.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
    GROUP BY p.invoice_id
)
SELECT
    i.invoice_id,
    i.user_id,
    i.shop_id,
    i.invoice_amount AS amount,
    i.invoice_timestamp,
    paid.collected_day,
    paid.payments
FROM "saas"."invoices" AS i
JOIN paid ON paid.invoice_id = i.invoice_id
WHERE i.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
  AND i.invoice_timestamp <= CAST($1 AS timestamptz)
