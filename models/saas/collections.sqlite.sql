-- saas collections (SQLite): the twin of collections.sql (same rows). $1 is RFC 3339 text in
-- UTC ('2024-03-02T00:00:00+00:00'), so date($1) is its first 10 characters; days (ds) are
-- 'YYYY-MM-DD' text and times RFC 3339 text in UTC, which compare as text.
WITH paid AS (
    SELECT p.invoice_id, MIN(p.ds) AS collected_day, COUNT(DISTINCT p.payment_id) AS payments
    FROM "saas"."payments" AS p
    WHERE p.ds <= substr($1, 1, 10)
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
WHERE i.ds <= substr($1, 1, 10)
  AND i.invoice_timestamp <= $1
