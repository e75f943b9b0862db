-- web product page views known at the as-of instant $1: one row per page-view event of a
-- product, with its session. Used by models/web/model.toml (table "product_views": the
-- denominator of productConversionRate, sessions with a page view of the product).
-- The same text runs on PostgreSQL and SQLite.
SELECT e.event_id, e.session_id, e.product_id, e.created_at
FROM "web"."events" AS e
WHERE e.event_type = 'page_view'
  AND e.product_id IS NOT NULL
  AND e.created_at <= $1
