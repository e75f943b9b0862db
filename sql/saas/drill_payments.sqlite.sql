-- drill_payments (model `saas`; SQLite 3.38 or later; the twin of drill_payments.sql): the
-- payments of given invoices as of T, for the users drill-down (the GraphQL dataloader of
-- Invoice.payments).
--
-- Parameters: $1 = T (RFC 3339 text in UTC, as tally stores timestamps); $2 = the invoice
-- ids, a JSON array of strings. Output, one row per (invoice_id, payment_id): invoice_id,
-- payment_id, ds (text YYYY-MM-DD, the earliest counting partition of the payment).
-- Unordered.
--
-- Rule (SEMANTICS §1, §2): a payment counts from 00:00 UTC of its ds (ds <= date(T));
-- payments are distinct payment_ids.
WITH
params AS (
    SELECT substr($1, 1, 10) AS t_ds
),
keys AS (
    SELECT DISTINCT value AS invoice_id FROM json_each($2)
)
SELECT y.invoice_id, y.payment_id, MIN(y.ds) AS ds
FROM "saas"."payments" AS y
JOIN keys AS k ON k.invoice_id = y.invoice_id
CROSS JOIN params AS p
WHERE y.ds <= p.t_ds
GROUP BY y.invoice_id, y.payment_id
