#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-redis.sh - connwatch's redis check against Debian's
# prometheus-redis-exporter (oliver006/redis_exporter), side by side on one
# redis-server this script starts on loopback with KEYS keys:
#   - memory of each exporter after warm-up: VmRSS, RssAnon, PSS;
#   - commands sent to Redis per poll, the server's time in them and the
#     connections opened (INFO commandstats and total_connections_received:
#     deltas over 100 scrapes of the exporter, over the polls of connwatch's
#     CHECKS checks; the readings' own commands subtracted);
#   - CPU per poll: the exporter polls Redis on each scrape, so its CPU per
#     scrape (wrk, Δutime+stime / requests); connwatch polls on its interval
#     and a scrape only renders the last results, so CPU per poll (a second
#     connwatch with CHECKS checks at 100 ms for 10 s, Δticks / polls) plus
#     CPU per scrape (wrk on its /metrics);
#   - scrape latency p50/p99 (wrk -t1 -c1 --latency): the exporter's includes
#     its round trips to Redis, connwatch's does not.
# Ends with a table and the ratios.
#
#   bench/bench-redis.sh        (BUILD_DIR=build, DURATION=10s, KEYS=20000, CHECKS=50)
#
# Only loopback traffic; it ends only the processes it started (by PID).
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
DURATION=${DURATION:-10s}
KEYS=${KEYS:-20000}
CHECKS=${CHECKS:-50}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"

EXPORTER=${EXPORTER:-prometheus-redis-exporter}

if [[ -x $ROOT/packaging/install-deps.sh ]] && ! command -v "$EXPORTER" >/dev/null; then
    "$ROOT/packaging/install-deps.sh" bench
fi
cw_require redis-server redis-cli wrk curl "$EXPORTER"
[[ -x $BUILD_DIR/connwatch ]] || ninja -C "$BUILD_DIR" connwatch >/dev/null
cw_tmpdir

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
pss_kb() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup"; }
hz=$(getconf CLK_TCK)

wait_http()
{
    local start
    start=$(cw_now)
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true) == 200 ]]; do
        (($(cw_elapsed_ms "$start") < 20000)) || cw_fail "$1 did not answer 200 within 20 s"
        sleep 0.1
    done
}

# cmdstats PORT prints "calls usec ping_calls connections": calls and usec
# summed over INFO commandstats, and INFO stats total_connections_received.
# Between two readings, ours add one INFO call (the first reading's INFO
# stats, run after its commandstats) and two connections: the callers
# subtract them. (redis-cli reading commands from stdin would also send
# COMMAND DOCS, which costs milliseconds: arguments only.)
cmdstats()
{
    { redis-cli -p "$1" INFO commandstats && redis-cli -p "$1" INFO stats; } | tr -d '\r' | awk -F'[:=,]' '
        /^cmdstat_/ { calls += $3; usec += $5; if ($1 == "cmdstat_ping") ping = $3 }
        /^total_connections_received:/ { conns = $2 }
        END { printf "%d %d %d %d\n", calls, usec, ping, conns }'
}

# wrk_run URL prints "requests p50_ms p99_ms".
wrk_run()
{
    wrk -t1 -c1 -d"$DURATION" --latency "$1" >"$CW_TMP/wrk.txt"
    awk '
        / 50%/ { p50 = $2 } / 99%/ { p99 = $2 }
        /requests in/ { req = $1 }
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        END { printf "%d %.3f %.3f\n", req, ms(p50), ms(p99) }' "$CW_TMP/wrk.txt"
}

# ---- the server ---------------------------------------------------------------------------------
rport=$(cw_free_port)
cw_spawn "$CW_TMP/redis.log" redis-server --port "$rport" --bind 127.0.0.1 --save '' \
    --appendonly no --dir "$CW_TMP"
redis_pid=$CW_LAST_PID
for ((i = 0; i < 100; i++)); do
    [[ $(redis-cli -p "$rport" ping 2>/dev/null) == PONG ]] && break
    sleep 0.05
done
{
    for ((i = 0; i < KEYS; i++)); do
        if ((i % 4 == 0)); then
            printf 'SET k:%d v EX 100000\r\n' "$i"
        else
            printf 'SET k:%d v\r\n' "$i"
        fi
    done
} | redis-cli -p "$rport" --pipe >/dev/null
cw_note "redis-server pid $redis_pid port $rport with $KEYS keys"

# ---- redis_exporter ------------------------------------------------------------------------------
eport=$(cw_free_port)
cw_spawn "$CW_TMP/exporter.log" "$EXPORTER" -redis.addr "redis://127.0.0.1:$rport" \
    -web.listen-address "127.0.0.1:$eport"
exp_pid=$CW_LAST_PID
wait_http "http://127.0.0.1:$eport/metrics"
for ((i = 0; i < 50; i++)); do curl -fsS "http://127.0.0.1:$eport/metrics" >/dev/null; done
exp_rss=$(status_kb "$exp_pid" VmRSS)
exp_anon=$(status_kb "$exp_pid" RssAnon)
exp_pss=$(pss_kb "$exp_pid")
exp_series=$(curl -fsS "http://127.0.0.1:$eport/metrics" | grep -vc '^#')

# Commands per poll: 100 sequential scrapes, nothing else talks to Redis.
read -r c0 u0 _ n0 <<<"$(cmdstats "$rport")"
for ((i = 0; i < 100; i++)); do curl -fsS "http://127.0.0.1:$eport/metrics" >/dev/null; done
read -r c1 u1 _ n1 <<<"$(cmdstats "$rport")"
exp_cmds=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", (b - a - 1) / 100 }')
exp_usec=$(awk -v a="$u0" -v b="$u1" 'BEGIN { printf "%.1f", (b - a) / 100 }')
exp_conns=$(awk -v a="$n0" -v b="$n1" 'BEGIN { printf "%.2f", (b - a - 2) / 100 }')
redis-cli -p "$rport" INFO commandstats | tr -d '\r' | grep '^cmdstat' >"$CW_TMP/exp-cmdstats.txt"

t0=$(cpu_ticks "$exp_pid")
read -r exp_req exp_p50 exp_p99 <<<"$(wrk_run "http://127.0.0.1:$eport/metrics")"
t1=$(cpu_ticks "$exp_pid")
exp_cpu_us=$(awk -v t="$((t1 - t0))" -v n="$exp_req" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
cw_stop "$exp_pid" || true

# ---- connwatch -------------------------------------------------------------------------------------
redis-cli -p "$rport" CONFIG RESETSTAT >/dev/null
cat >"$CW_TMP/cw.yml" <<EOF
global: {interval: 1s, timeout: 800ms}
host: {enabled: false}
services:
  - name: cache
    checks:
      - redis: {address: "127.0.0.1:$rport"}
EOF
cw_start_connwatch "$CW_TMP/cw.yml"
cw_pid=$CW_PID
cw_wait_ready
for ((i = 0; i < 50; i++)); do cw_scrape >/dev/null; done
cw_rss=$(status_kb "$cw_pid" VmRSS)
cw_anon=$(status_kb "$cw_pid" RssAnon)
cw_pss=$(pss_kb "$cw_pid")
cw_series=$(cw_scrape | grep -vc '^#')

t0=$(cpu_ticks "$cw_pid")
read -r cw_req cw_p50 cw_p99 <<<"$(wrk_run "http://$CW_ADDR/metrics")"
t1=$(cpu_ticks "$cw_pid")
cw_scrape_us=$(awk -v t="$((t1 - t0))" -v n="$cw_req" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
cw_stop "$cw_pid" || true

# Per poll (CPU, commands, Redis time, connections): CHECKS checks of the
# same server at 100 ms, idle (no scrape); one PING per poll counts them.
{
    echo "global: {interval: 100ms, timeout: 90ms}"
    echo "host: {enabled: false}"
    echo "services:"
    echo "  - name: cache"
    echo "    checks:"
    for ((i = 0; i < CHECKS; i++)); do
        echo "      - redis: {address: \"127.0.0.1:$rport\", name: c$i}"
    done
} >"$CW_TMP/many.yml"
cw_start_connwatch "$CW_TMP/many.yml"
many_pid=$CW_PID
cw_wait_ready
sleep 2
read -r c0 u0 p0 n0 <<<"$(cmdstats "$rport")"
t0=$(cpu_ticks "$many_pid")
sleep "${DURATION%s}"
t1=$(cpu_ticks "$many_pid")
read -r c1 u1 p1 n1 <<<"$(cmdstats "$rport")"
many_polls=$((p1 - p0))
((many_polls > 0)) || cw_fail "connwatch sent no PING in $DURATION"
cw_cmds=$(awk -v a="$c0" -v b="$c1" -v n="$many_polls" 'BEGIN { printf "%.1f", (b - a - 1) / n }')
cw_usec=$(awk -v a="$u0" -v b="$u1" -v n="$many_polls" 'BEGIN { printf "%.1f", (b - a) / n }')
cw_conns=$(awk -v a="$n0" -v b="$n1" -v n="$many_polls" 'BEGIN { printf "%.2f", (b - a - 2) / n }')
redis-cli -p "$rport" INFO commandstats | tr -d '\r' | grep '^cmdstat' >"$CW_TMP/cw-cmdstats.txt"
cw_poll_us=$(awk -v t="$((t1 - t0))" -v n="$many_polls" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')
many_rss=$(status_kb "$many_pid" VmRSS)
cw_stop "$many_pid" || true

cw_cycle_us=$(awk -v a="$cw_poll_us" -v b="$cw_scrape_us" 'BEGIN { printf "%.1f", a + b }')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "n/a" }'; }

cat <<EOF

redis-server 7.0 with $KEYS keys; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)

| measure                                   | connwatch | redis_exporter | ratio |
|-------------------------------------------|-----------|----------------|-------|
| RSS after warm-up (KiB)                   | $cw_rss | $exp_rss | $(ratio "$exp_rss" "$cw_rss") |
| RssAnon: own memory, no shared libs (KiB) | $cw_anon | $exp_anon | $(ratio "$exp_anon" "$cw_anon") |
| PSS: shared pages divided among users (KiB)| $cw_pss | $exp_pss | $(ratio "$exp_pss" "$cw_pss") |
| series per scrape                         | $cw_series | $exp_series | |
| commands sent to Redis per poll           | $cw_cmds | $exp_cmds | $(ratio "$exp_cmds" "$cw_cmds") |
| Redis time in those commands per poll (us)| $cw_usec | $exp_usec | $(ratio "$exp_usec" "$cw_usec") |
| connections opened per poll               | $cw_conns | $exp_conns | |
| CPU per poll of Redis (us)                | $cw_poll_us | (in the scrape) | |
| CPU per scrape (us)                       | $cw_scrape_us | $exp_cpu_us | |
| CPU per poll + scrape (us)                | $cw_cycle_us | $exp_cpu_us | $(ratio "$exp_cpu_us" "$cw_cycle_us") |
| scrape latency p50 / p99 (ms)             | $cw_p50 / $cw_p99 | $exp_p50 / $exp_p99 | $(ratio "$exp_p50" "$cw_p50") / $(ratio "$exp_p99" "$cw_p99") |

connwatch with $CHECKS redis checks at 100 ms: $many_polls polls in $DURATION, RSS $many_rss KiB.
Commands of connwatch since CONFIG RESETSTAT (one check at 1 s, then $CHECKS at 100 ms):
$(sed 's/^/  /' "$CW_TMP/cw-cmdstats.txt")
Commands of redis_exporter over 100 scrapes and its warm-up:
$(sed 's/^/  /' "$CW_TMP/exp-cmdstats.txt")
EOF
