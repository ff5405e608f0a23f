#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-hostile.sh - the HTTP endpoint under hostile clients: connwatch
# against Debian's prometheus-node-exporter (the same exporter-toolkit web
# layer every Go exporter has), side by side in one run, and optionally an
# older connwatch build (OLD_CONNWATCH=path/to/connwatch) to show the change:
#   1. fresh-connection scrapes at 20/s while 2,000 idle + 300 slowloris
#      connections are held (tests/lib/flood.py, spread 127.x sources):
#      p50/p99/max and failures; the scrape right after the flood stops;
#   2. wrk -t2 -c64 and -c1000 on /metrics with Prometheus's
#      Accept-Encoding: gzip: requests/s and the c1000/c64 ratio, then the
#      next scrape and the CLOSE-WAIT sockets left;
#   3. basic auth (bcrypt cost 10): valid scrapes at 20/s while wrong
#      passwords arrive at 200/s from 50 addresses: p50/p99 of the valid ones.
# Ends with a table of figures and ratios.
#
#   bench/bench-hostile.sh     (BUILD_DIR=build, WRK_SECONDS=10, FLOOD_SECONDS=15)
#
# Only loopback traffic; it ends only the processes it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
WRK_SECONDS=${WRK_SECONDS:-10}
FLOOD_SECONDS=${FLOOD_SECONDS:-15}
OLD_CONNWATCH=${OLD_CONNWATCH:-}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"

NODE_EXPORTER=${NODE_EXPORTER:-prometheus-node-exporter}
FLOOD=$ROOT/tests/lib/flood.py
cw_require wrk curl python3 ss "$NODE_EXPORTER"
cw_tmpdir
ulimit -n "$(ulimit -Hn)"

declare -A R=()

wait_http()
{
    local start
    start=$(cw_now)
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${@:2}" "$1" || true) == 200 ]]; do
        (($(cw_elapsed_ms "$start") < 20000)) || cw_fail "$1 did not answer 200 within 20 s"
        sleep 0.1
    done
}

# start NAME WEB_CONFIG: starts exporter NAME on a free port (sets PORT, PID).
start()
{
    local name=$1 webcfg=$2 bin
    local -a args=()
    PORT=$(cw_free_port)
    [[ -n $webcfg ]] && args+=("--web.config.file=$webcfg")
    case $name in
    connwatch) bin=$BUILD_DIR/connwatch args+=("${CW_AS_ROOT[@]}") ;;
    connwatch-old) bin=$OLD_CONNWATCH ;;
    node_exporter) bin=$NODE_EXPORTER ;;
    esac
    cw_spawn "$CW_TMP/$name.log" "$bin" --web.listen-address="127.0.0.1:$PORT" "${args[@]}"
    PID=$CW_LAST_PID
}

# wrk_rps URL CONNECTIONS prints the 2xx responses per second (wrk counts
# every response in Requests/sec; node_exporter answers 503 past its
# --web.max-requests).
wrk_rps()
{
    wrk -t2 -c"$2" -d"${WRK_SECONDS}s" -H 'Accept-Encoding: gzip' "$1" 2>&1 |
        awk '/requests in/ { n = $1; t = $4 + 0 } /Non-2xx/ { bad = $NF }
             /Requests\/sec/ { rps = $2 } END { if (t > 0 && n > 0) printf "%.0f\n", rps * (n - bad) / n; else print 0 }'
}

field()
{
    python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("%.2f" % v if isinstance(v, float) else v)' "$1" "$2"
}

run_one()
{
    local name=$1 out t0 ms cw i
    start "$name" ""
    wait_http "http://127.0.0.1:$PORT/metrics"
    sleep 1
    cw_note "$name: flood"
    out=$(python3 "$FLOOD" --target "127.0.0.1:$PORT" --idle 2000 --slowloris 300 \
        --duration "$FLOOD_SECONDS" --warmup 3 --timeout 5 --source 127.7)
    for k in requests failed p50_ms p99_ms max_ms after_ms closed_slowloris; do
        put "$name.flood.$k" "$(field "$out" $k)"
    done
    sleep 1
    cw_note "$name: wrk"
    put "$name.c64" "$(wrk_rps "http://127.0.0.1:$PORT/metrics" 64)"
    put "$name.c1000" "$(wrk_rps "http://127.0.0.1:$PORT/metrics" 1000)"
    t0=$(cw_now)
    curl -fsS -o /dev/null --max-time 60 "http://127.0.0.1:$PORT/metrics" || true
    put "$name.after_wrk_ms" "$(cw_elapsed_ms "$t0")"
    cw=$(ss -Htn state close-wait "( sport = :$PORT )" | wc -l)
    put "$name.close_wait" "$cw"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    cw_forget_pid "$PID"

    # Basic auth, bcrypt cost 10.
    python3 -W ignore - "$CW_TMP/web.yml" <<'EOF'
import crypt, sys
h = crypt.crypt("right", crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 10))
open(sys.argv[1], "w").write("basic_auth_users:\n  prom: %s\n" % h)
EOF
    start "$name" "$CW_TMP/web.yml"
    wait_http "http://127.0.0.1:$PORT/metrics" -u prom:right
    cw_note "$name: wrong-password flood"
    out=$(python3 "$FLOOD" --target "127.0.0.1:$PORT" --duration "$FLOOD_SECONDS" --warmup 2 \
        --timeout 20 --auth "Basic cHJvbTpyaWdodA==" --wrong-auth "Basic cHJvbTp3cm9uZw==" \
        --wrong-rate 200 --source 127.8)
    for k in requests failed p50_ms p99_ms max_ms wrong_logins; do
        put "$name.auth.$k" "$(field "$out" $k)"
    done
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    cw_forget_pid "$PID"
}

# put NAME.KEY VALUE records one figure (also on stderr, so that a run cut
# short still shows what it measured).
put()
{
    R[$1]=$2
    cw_note "$1 = $2"
}

names=(connwatch node_exporter)
[[ -n $OLD_CONNWATCH ]] && names+=(connwatch-old)
echo "bench-hostile: $(nproc) cores, $(uname -r), $("$BUILD_DIR/connwatch" --version), $("$NODE_EXPORTER" --version 2>&1 | head -n 1), nofile $(ulimit -n)" >&2
for n in "${names[@]}"; do
    run_one "$n"
done

ratio()
{
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

printf '\n| measure | %s |\n|---|%s\n' "$(IFS='|'; echo "${names[*]}" | sed 's/|/ | /g')" "$(printf -- '---|%.0s' "${names[@]}")"
row()
{
    local label=$1 key=$2 n line
    line="| $label |"
    for n in "${names[@]}"; do
        line+=" ${R[$n.$key]:-} |"
    done
    echo "$line"
}
row "flood: scrapes timed" flood.requests
row "flood: failed scrapes" flood.failed
row "flood: scrape p50 ms" flood.p50_ms
row "flood: scrape p99 ms" flood.p99_ms
row "flood: scrape max ms" flood.max_ms
row "flood: slowloris closed by the server" flood.closed_slowloris
row "flood: first scrape after it, ms" flood.after_ms
row "wrk -c64 req/s (gzip)" c64
row "wrk -c1000 req/s (gzip)" c1000
for n in "${names[@]}"; do
    R[$n.keep]=$(ratio "${R[$n.c1000]}" "${R[$n.c64]}")
done
row "c1000 / c64" keep
row "scrape after wrk -c1000, ms" after_wrk_ms
row "CLOSE-WAIT after wrk" close_wait
row "auth flood: wrong logins sent" auth.wrong_logins
row "auth flood: valid scrapes timed" auth.requests
row "auth flood: valid scrapes failed" auth.failed
row "auth flood: valid p50 ms" auth.p50_ms
row "auth flood: valid p99 ms" auth.p99_ms
echo
echo "ratios connwatch / node_exporter: flood p99 $(ratio "${R[connwatch.flood.p99_ms]}" "${R[node_exporter.flood.p99_ms]}")," \
    "c1000 throughput $(ratio "${R[connwatch.c1000]}" "${R[node_exporter.c1000]}")," \
    "auth-flood p99 $(ratio "${R[connwatch.auth.p99_ms]}" "${R[node_exporter.auth.p99_ms]}")"
