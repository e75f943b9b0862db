-- stages_at (model `saas`; PostgreSQL): the stage of every user existing at T, read from the
-- stage history ("saas"."tally_stage_history", built by stage_history.sql): the row of each
-- user whose interval [valid_from, valid_to) holds T. The same rows and core columns as
-- user_stages.sql (user_id, signup_time, stage, churn_reason and the facts), plus
-- repeat_payer; not the descriptive columns (email, counts, plan).
--
-- $1 = T (timestamptz); $2 = the grace period in seconds, which the history must have been
-- built with (tally checks its status row first and reads user_stages.sql otherwise; the
-- condition here repeats that check, so a mismatched history gives no rows, never wrong ones).
SELECT
    h.user_id,
    h.signup_time,
    h.stage,
    h.churn_reason,
    h.account_deleted,
    h.all_shops_deleted,
    h.delinquent,
    h.reached_prospect,
    h.reached_customer,
    h.repeat_payer
FROM "saas"."tally_stage_history" AS h
WHERE h.valid_from <= CAST($1 AS timestamptz)
  AND CAST($1 AS timestamptz) < h.valid_to
  AND EXISTS (
      SELECT 1 FROM "saas"."tally_stage_history_status" AS st
      WHERE st.id = 1 AND st.grace_seconds = CAST($2 AS bigint)
  )
