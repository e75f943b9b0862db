-- drill_plans (model `saas`; PostgreSQL): given plans as of T, for the users drill-down (the
-- GraphQL dataloader of Shop.plan).
--
-- Parameters: $1 = T (timestamptz); $2 = the plan ids, a JSON array of strings.
-- Output, one row per plan that has a row as of T: plan_id, invoice_amount (double, 2
-- decimals).
--
-- Rule (SEMANTICS §1 keyed partitions): the plan's row from its latest partition ts <= T.
WITH
keys AS (
    SELECT DISTINCT jsonb_array_elements_text(CAST($2 AS jsonb)) AS plan_id
)
SELECT r.plan_id, CAST(ROUND(r.invoice_amount, 2) AS double precision) AS invoice_amount
FROM (
    SELECT
        pl.plan_id,
        pl.invoice_amount,
        ROW_NUMBER() OVER (PARTITION BY pl.plan_id ORDER BY pl.ts DESC) AS rn
    FROM "saas"."plans" AS pl
    JOIN keys AS k ON k.plan_id = pl.plan_id
    WHERE pl.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
) AS r
WHERE r.rn = 1
