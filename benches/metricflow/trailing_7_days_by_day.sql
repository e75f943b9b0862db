SELECT
  metric_time__day
  , SUM(net_sales) AS net_sales_trailing_7_days
FROM (
  SELECT
    subq_3.date_day AS metric_time__day
    , subq_1.__net_sales AS net_sales
  FROM "mf"."time_spine_day" subq_3
  INNER JOIN (
    SELECT
      DATE_TRUNC('day', order_time) AS metric_time__day
      , amt - discount AS __net_sales
    FROM "shop"."order_line" order_line_src_10000
  ) subq_1
  ON
    (
      subq_1.metric_time__day <= subq_3.date_day
    ) AND (
      subq_1.metric_time__day > subq_3.date_day - MAKE_INTERVAL(days => 7)
    )
) subq_5
WHERE metric_time__day <= '2026-01-01'
GROUP BY
  metric_time__day
ORDER BY metric_time__day
