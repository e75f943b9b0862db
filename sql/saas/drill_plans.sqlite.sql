-- drill_plans (model `saas`; SQLite 3.38 or later; the twin of drill_plans.sql): given
-- plans as of T, for the users drill-down (the GraphQL dataloader of Shop.plan).
--
-- Parameters: $1 = T (RFC 3339 text in UTC, as tally stores timestamps); $2 = the plan
-- ids, a JSON array of strings. Output, one row per plan that has a row as of T: plan_id,
-- invoice_amount (double, 2 decimals).
--
-- Rule (SEMANTICS §1 keyed partitions): the plan's row from its latest partition ts <= T.
WITH
params AS (
    SELECT replace(substr($1, 1, 19), 'T', ' ') AS t_ts
),
keys AS (
    SELECT DISTINCT value AS plan_id FROM json_each($2)
)
SELECT r.plan_id, ROUND(r.invoice_amount, 2) AS invoice_amount
FROM (
    SELECT
        pl.plan_id,
        pl.invoice_amount,
        ROW_NUMBER() OVER (PARTITION BY pl.plan_id ORDER BY pl.ts DESC) AS rn
    FROM "saas"."plans" AS pl
    JOIN keys AS k ON k.plan_id = pl.plan_id
    CROSS JOIN params AS p
    WHERE pl.ts <= p.t_ts
) AS r
WHERE r.rn = 1
