-- stages_model (model `saas`; PostgreSQL): the `stages` tables of models/saas/model.toml —
-- every user existing at T with their lifecycle stage, its facts and their plan as of T.
--
-- $1 = T (timestamptz); $2 = the grace period of unpaid invoices in seconds.
--
-- The stage comes from the stage history (stages_at.sql; src/saas/history.rs,
-- docs/SAAS-LIFECYCLE.md) when its status row says it is fresh and built for $2, else from
-- user_stages.sql; both are included below. The choice is made inside this one statement (an uncorrelated EXISTS, evaluated
-- once), so the answer always matches the tables the statement sees. The plan is the same
-- rule as user_stages.sql step 8; a query that does not read it does not compute it.
WITH
usable AS MATERIALIZED (
    SELECT 1 AS ok
    FROM "saas"."tally_stage_history_status" AS st
    WHERE st.id = 1 AND st.fresh = 1 AND st.grace_seconds = CAST($2 AS bigint)
),
-- user_stages step 5: shops with a counting user_shop_delete.
shop_deletions AS NOT MATERIALIZED (
    SELECT DISTINCT e.metadata ->> 'shop_id' AS shop_id
    FROM "saas"."global_events" AS e
    WHERE e.event_type = 'user_shop_delete'
      AND e.event_time <= CAST($1 AS timestamptz)
      AND e.ts <= to_char(CAST($1 AS timestamptz) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
),
-- user_stages step 8: the plan of the user's latest created live shop, else of the latest
-- created shop (ties: later creation event, greatest shop_id, then event_id).
user_plans AS NOT MATERIALIZED (
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
-- The stage and its facts: from the history when usable, else from user_stages.sql. (Not
-- the plan: joined below, outside the UNION ALL, where PostgreSQL can drop the join when a
-- query does not read plan_id.)
stages AS (
    SELECT h.*
    FROM (
-- tally:include sql/saas/stages_at.sql
    ) AS h
    WHERE EXISTS (SELECT 1 FROM usable)
    UNION ALL
    SELECT
        s.user_id,
        s.signup_time,
        s.stage,
        s.churn_reason,
        s.account_deleted,
        s.all_shops_deleted,
        s.delinquent,
        s.reached_prospect,
        s.reached_customer,
        s.repeat_payer
    FROM (
-- tally:include sql/saas/user_stages.sql
    ) AS s
    WHERE NOT EXISTS (SELECT 1 FROM usable)
)
SELECT
    st.user_id,
    st.signup_time,
    st.stage,
    st.churn_reason,
    st.account_deleted,
    st.all_shops_deleted,
    st.delinquent,
    st.reached_prospect,
    st.reached_customer,
    st.repeat_payer,
    up.plan_id
FROM stages AS st
LEFT JOIN user_plans AS up ON up.user_id = st.user_id
