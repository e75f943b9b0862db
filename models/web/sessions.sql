-- web sessions: one row per session with an event known at the as-of instant $1, its first
-- and last event time (so far) and its number of events. Used by models/web/model.toml
-- (table "sessions"). The same text runs on PostgreSQL and SQLite.
SELECT
    e.session_id,
    MIN(e.user_id) AS user_id,
    MIN(e.created_at) AS started_at,
    MAX(e.created_at) AS ended_at,
    COUNT(*) AS events
FROM "web"."events" AS e
WHERE e.created_at <= $1
GROUP BY e.session_id
