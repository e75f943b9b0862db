-- drill_invoices (model `saas`; SQLite 3.38 or later; the twin of drill_invoices.sql): the
-- invoices of given shops as of T, for the users drill-down (the GraphQL dataloader of
-- Shop.invoices).
--
-- Parameters: $1 = T (RFC 3339 text in UTC, as tally stores timestamps); $2 = the shop
-- ids, a JSON array of strings; $3 = the grace period in whole seconds (as in
-- user_stages.sql). Output, one row per invoice_id: shop_id, invoice_id, invoice_timestamp
-- (RFC 3339 text), invoice_amount (double, 2 decimals), ds (text YYYY-MM-DD), delinquent
-- (0/1). Unordered.
--
-- Rules (SEMANTICS §1, §2): an invoice row counts when ds <= date(T) and invoice_timestamp
-- <= T; an invoice restated in several ds partitions is shown from its latest counting
-- partition; it is delinquent when one of its counting rows has invoice_timestamp + grace
-- <= T and no payment for it (same invoice_id, ds <= date(T)) counts — exactly the
-- delinquency user_stages.sql decides stages with.
WITH
-- Step 1 (§1): T, T - grace, date(T) in UTC.
as_of AS (
    SELECT
        CASE WHEN $1 LIKE '%Z' THEN substr($1, 1, length($1) - 1) || '+00:00' ELSE $1 END AS t
),
params AS (
    SELECT
        t,
        strftime('%Y-%m-%dT%H:%M:%S', substr(t, 1, 19), '-' || CAST($3 AS INTEGER) || ' seconds')
            || substr(t, 20, length(t) - 25) || '+00:00' AS due_by,
        substr(t, 1, 10) AS t_ds
    FROM as_of
),
-- Step 2: the requested shops.
keys AS (
    SELECT DISTINCT value AS shop_id FROM json_each($2)
),
-- Step 3 (§1 daily partitions, both cuts): counting invoice rows of those shops, the latest
-- partition first, with the earliest counting invoice_timestamp of the invoice.
counted AS (
    SELECT
        i.shop_id,
        i.invoice_id,
        i.invoice_timestamp,
        i.invoice_amount,
        i.ds,
        ROW_NUMBER() OVER (PARTITION BY i.invoice_id ORDER BY i.ds DESC) AS rn,
        MIN(i.invoice_timestamp) OVER (PARTITION BY i.invoice_id) AS first_timestamp
    FROM "saas"."invoices" AS i
    JOIN keys AS k ON k.shop_id = i.shop_id
    CROSS JOIN params AS p
    WHERE i.ds <= p.t_ds
      AND i.invoice_timestamp <= p.t
),
-- Step 4 (§2 payments count from 00:00 UTC of their ds): invoices with a counting payment.
paid AS (
    SELECT DISTINCT y.invoice_id
    FROM "saas"."payments" AS y
    CROSS JOIN params AS p
    WHERE y.ds <= p.t_ds
      AND y.invoice_id IN (SELECT invoice_id FROM counted)
)
SELECT
    c.shop_id,
    c.invoice_id,
    c.invoice_timestamp,
    ROUND(c.invoice_amount, 2) AS invoice_amount,
    c.ds AS ds,
    CASE WHEN c.first_timestamp <= p.due_by AND paid.invoice_id IS NULL THEN 1 ELSE 0 END
        AS delinquent
FROM counted AS c
CROSS JOIN params AS p
LEFT JOIN paid ON paid.invoice_id = c.invoice_id
WHERE c.rn = 1
