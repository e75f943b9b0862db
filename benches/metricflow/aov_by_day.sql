WITH cm_5_cte AS (
  SELECT
    metric_time__day
    , SUM(net_sales) AS net_sales
    , COUNT(DISTINCT orders) AS orders
  FROM (
    SELECT
      DATE_TRUNC('day', order_time) AS metric_time__day
      , amt - discount AS net_sales
      , order_id AS orders
    FROM "shop"."order_line" order_line_src_10000
  ) subq_2
  WHERE metric_time__day <= '2026-01-01'
  GROUP BY
    metric_time__day
)

SELECT
  COALESCE(subq_6.metric_time__day, subq_8.metric_time__day) AS metric_time__day
  , MAX(subq_6.net_sales) AS net_sales
  , MAX(subq_6.orders) AS orders
  , MAX(subq_8.aov) AS aov
FROM (
  SELECT
    metric_time__day
    , net_sales
    , orders
  FROM cm_5_cte
) subq_6
FULL OUTER JOIN (
  SELECT
    metric_time__day
    , CAST(net_sales AS DOUBLE PRECISION) / CAST(NULLIF(orders, 0) AS DOUBLE PRECISION) AS aov
  FROM cm_5_cte
) subq_8
ON
  subq_6.metric_time__day = subq_8.metric_time__day
GROUP BY
  COALESCE(subq_6.metric_time__day, subq_8.metric_time__day)
ORDER BY metric_time__day
