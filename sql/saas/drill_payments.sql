-- drill_payments (model `saas`; PostgreSQL): the payments of given invoices as of T, for the
-- users drill-down (the GraphQL dataloader of Invoice.payments).
--
-- Parameters: $1 = T (timestamptz); $2 = the invoice ids, a JSON array of strings.
-- Output, one row per (invoice_id, payment_id): invoice_id, payment_id, ds (text YYYY-MM-DD,
-- the earliest counting partition of the payment). Unordered.
--
-- Rule (SEMANTICS §1, §2): a payment counts from 00:00 UTC of its ds (ds <= date(T));
-- payments are distinct payment_ids.
WITH
keys AS (
    SELECT DISTINCT jsonb_array_elements_text(CAST($2 AS jsonb)) AS invoice_id
)
SELECT y.invoice_id, y.payment_id, to_char(MIN(y.ds), 'YYYY-MM-DD') AS ds
FROM "saas"."payments" AS y
JOIN keys AS k ON k.invoice_id = y.invoice_id
WHERE y.ds <= CAST(CAST($1 AS timestamptz) AT TIME ZONE 'UTC' AS date)
GROUP BY y.invoice_id, y.payment_id
