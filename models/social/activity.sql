-- social activity: one row per user action (a content event's viewer, an ad event's user),
-- known at the as-of instant $1. Used by models/social/model.toml (table "activity").
-- The same text runs on PostgreSQL and SQLite.
SELECT ce.viewer_id AS user_id, ce.event_time, ce.device_id, 'content' AS source
FROM "social"."content_event" AS ce
WHERE ce.event_time <= $1
UNION ALL
SELECT ae.user_id, ae.event_time, ae.device_id, 'ad' AS source
FROM "social"."ad_event" AS ae
WHERE ae.event_time <= $1
