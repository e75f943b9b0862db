-- stages_at (model `saas`; SQLite): the stage of every user existing at T, read from the
-- stage history ("saas"."tally_stage_history", built by stage_history.sqlite.sql): the row of
-- each user whose interval [valid_from, valid_to) holds T. The same rows and core columns as
-- user_stages.sqlite.sql, plus repeat_payer; not the descriptive columns.
--
-- $1 = T as RFC 3339 text in UTC (`Z` or `+00:00`); $2 = the grace period in seconds, which
-- the history must have been built with (see stages_at.sql).
--
-- T (written as stored, `+00:00`) and the status check are expressions of the parameters
-- alone, which SQLite computes once per statement: a one-row subquery of T joined to the
-- history, or an EXISTS over the status (which SQLite turns into a join), would be read
-- again for every row of the history. The comparisons with T of the bare columns let SQLite
-- read only the entries with valid_to > T of the (valid_to, valid_from, stage, user_id)
-- index tally creates on the history (migration/src/tally_state.rs).
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
WHERE h.valid_from <= (CASE WHEN $1 LIKE '%Z' THEN substr($1, 1, length($1) - 1) || '+00:00' ELSE $1 END)
  AND h.valid_to > (CASE WHEN $1 LIKE '%Z' THEN substr($1, 1, length($1) - 1) || '+00:00' ELSE $1 END)
  AND (
      SELECT st.grace_seconds FROM "saas"."tally_stage_history_status" AS st WHERE st.id = 1
  ) = CAST($2 AS INTEGER)
