#!/bin/sh
# Regenerates the SQL MetricFlow writes for the requests the sql_cost bench compares, from this
# dbt project (a manifest only: nothing is built). Needs dbt-metricflow in a venv, e.g.
#   python3 -m venv /tmp/mfvenv && /tmp/mfvenv/bin/pip install 'dbt-metricflow[dbt-postgres]==0.15.0' 'dbt-core==1.11.16'
#   MF=/tmp/mfvenv/bin sh benches/metricflow/regenerate.sh
# and a PostgreSQL database to name (MF_DBNAME, default tally_mf; it need not hold data).
set -eu
cd "$(dirname "$0")"
MF=${MF:?set MF to the bin folder of the venv holding dbt-metricflow}
export DBT_PROFILES_DIR=.
"$MF/dbt" parse -q
asof="{{ TimeDimension('metric_time', 'day') }} <= '2026-01-01'"
gen() { # out metrics
    "$MF/mf" query --metrics "$2" --group-by metric_time__day --where "$asof" \
        --order metric_time__day --explain 2>&1 |
        sed -n '/^SELECT\|^WITH/,$p' |
        sed "s/\"${MF_DBNAME:-tally_mf}\"\.//g" >"$1"
    grep -q 'SELECT' "$1"
}
gen aov_by_day.sql net_sales,orders,aov
gen trailing_7_days_by_day.sql net_sales_trailing_7_days
gen running_total_by_day.sql net_sales_running_total
rm -rf target logs
