-- MetricFlow's time spine (one row per day), which its cumulative SQL joins; the bench
-- creates it as mf.time_spine_day (days of the demo calendar) before timing that SQL.
{{ config(schema='mf', alias='time_spine_day') }}
select cast(d as date) as date_day
from generate_series(date '2020-01-01', date '2027-12-31', interval '1 day') as d
