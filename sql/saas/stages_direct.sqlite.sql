-- stages_direct (model `saas`; SQLite): the `stages` tables of models/saas/model.toml where
-- tally keeps no state in the database (a database it only reads, with no stage history):
-- every user existing at T with their lifecycle stage, its facts and their plan as of T,
-- computed from the event tables by user_stages (included below; the same rules and the
-- same rows as stages_model's, which reads the stage history when it is fresh).
--
-- $1 = T; $2 = the grace period of unpaid invoices in seconds.
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
    s.repeat_payer,
    s.plan_id
FROM (
-- tally:include sql/saas/user_stages.sqlite.sql
) AS s
