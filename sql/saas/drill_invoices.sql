-- drill_invoices (model `saas`; PostgreSQL): the invoices of given shops as of T, for the
-- users drill-down (the GraphQL dataloader of Shop.invoices).
--
-- Parameters: $1 = T (timestamptz); $2 = the shop ids, a JSON array of strings; $3 = the
-- grace period in whole seconds (as in user_stages.sql).
-- Output, one row per invoice_id: shop_id, invoice_id, invoice_timestamp (timestamptz),
-- invoice_amount (double, 2 decimals), ds (text YYYY-MM-DD), delinquent (0/1). Unordered.
--
-- Rules (SEMANTICS §1, §2): an invoice row counts when ds <= date(T) and
-- invoice_timestamp <= T; an invoice restated in several ds partitions is shown from its
-- latest counting partition; it is delinquent when one of its counting rows has
-- invoice_timestamp + grace <= T and no payment for it (same invoice_id, ds <= date(T))
-- counts — exactly the delinquency user_stages.sql decides stages with.
WITH
-- Step 1: the requested shops.
keys AS (
    SELECT DISTINCT jsonb_array_elements_text(CAST($2 AS jsonb)) AS shop_id
),
-- Step 2 (§1 daily partitions, both cuts): counting invoice rows of those shops, the latest
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
    WHERE i.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
      AND i.invoice_timestamp <= CAST($1 AS timestamptz)
),
-- Step 3 (§2 payments count from 00:00 UTC of their ds): invoices with a counting payment.
paid AS (
    SELECT DISTINCT y.invoice_id
    FROM "saas"."payments" AS y
    WHERE y.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
      AND y.invoice_id IN (SELECT invoice_id FROM counted)
)
SELECT
    c.shop_id,
    c.invoice_id,
    c.invoice_timestamp,
    CAST(ROUND(c.invoice_amount, 2) AS double precision) AS invoice_amount,
    to_char(c.ds, 'YYYY-MM-DD') AS ds,
    CASE
        WHEN c.first_timestamp
                 <= CAST($1 AS timestamptz) - make_interval(secs => CAST($3 AS double precision))
             AND paid.invoice_id IS NULL
        THEN 1 ELSE 0
    END AS delinquent
FROM counted AS c
LEFT JOIN paid ON paid.invoice_id = c.invoice_id
WHERE c.rn = 1
