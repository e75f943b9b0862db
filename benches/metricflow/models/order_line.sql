-- tally's shop demo table as it is: MetricFlow reads only dbt's manifest (`dbt parse`), so
-- nothing is built; the generated SQL names "shop"."order_line" itself.
{{ config(schema='shop', alias='order_line') }}
select * from shop.order_line
