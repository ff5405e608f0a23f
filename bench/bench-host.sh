#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-host.sh - what the host check costs per run, against a node_exporter
# scrape (Debian's prometheus-node-exporter, default collectors), side by
# side in one run on this machine:
#   - connwatch with only the host check, every 100 ms, no scrapes for
#     POLL_SECONDS: Δ(utime+stime) / runs = CPU per host run (the daemon's
#     whole cost of a run: scheduling, the /proc reads, the socket count,
#     building and publishing the series);
#   - the same daemon with a 10 min interval: CPU per scrape over SCRAPES
#     sequential scrapes (plain, and gzip as Prometheus asks for it; the
#     body is not decoded: curl 7.88 refuses connwatch's gzip body, two
#     gzip members, which Prometheus reads);
#   - node_exporter: CPU per scrape over the same SCRAPES (it reads the
#     system during the scrape), with its default collectors (tcpstat, the
#     connection states, is off by default) and with tcpstat added, the same
#     work as connwatch's host check;
#   - connwatch idle (10 min interval, no scrapes) for POLL_SECONDS: what the
#     daemon costs doing nothing, part of the per-run figure above;
#   - build/tests/sockcount with no sockets of its own: the socket count
#     alone, one dump of both families against the per-family form (two
#     walks of the kernel's hash tables, the form before issue 14).
# A Prometheus scrape cycle costs connwatch one host run plus one scrape and
# node_exporter one scrape: the ratio of those is the figure. Ends with a
# table. Only loopback traffic; it ends only the processes it started.
#
#   bench/bench-host.sh      (BUILD_DIR=build, SCRAPES=200, POLL_SECONDS=20)
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SCRAPES=${SCRAPES:-200}
POLL_SECONDS=${POLL_SECONDS:-20}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"

NODE_EXPORTER=${NODE_EXPORTER:-prometheus-node-exporter}
cw_require curl "$NODE_EXPORTER"
cw_tmpdir
TICK=$(getconf CLK_TCK)

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
per_ms() { awk -v t="$1" -v n="$2" -v hz="$TICK" 'BEGIN { printf "%.3f", t / hz / n * 1000 }'; }
# scrape_cpu PID URL [CURL ARGS]: CPU ms of PID per scrape over SCRAPES
# sequential scrapes (after 20 warm-up ones); leaves the last body's sample
# count in $CW_TMP/series.
scrape_cpu()
{
    local pid=$1 url=$2 c0 c1 i
    shift 2
    for ((i = 0; i < 20; i++)); do curl -fsS -o /dev/null "$@" "$url"; done
    c0=$(cpu_ticks "$pid")
    for ((i = 0; i < SCRAPES; i++)); do curl -fsS -o "$CW_TMP/last" "$@" "$url"; done
    c1=$(cpu_ticks "$pid")
    curl -fsS "$url" | grep -vc '^#' >"$CW_TMP/series" || true
    per_ms $((c1 - c0)) "$SCRAPES"
}

# ---- node_exporter ----------------------------------------------------------------------------
nport=$(cw_free_port)
cw_spawn "$CW_TMP/ne.log" "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$nport"
ne_pid=$CW_LAST_PID
cw_wait_http "http://127.0.0.1:$nport/metrics"
ne_cpu=$(scrape_cpu "$ne_pid" "http://127.0.0.1:$nport/metrics")
ne_series=$(cat "$CW_TMP/series")
ne_gz=$(scrape_cpu "$ne_pid" "http://127.0.0.1:$nport/metrics" -H 'Accept-Encoding: gzip')
cw_stop "$ne_pid" || true
nport=$(cw_free_port)
cw_spawn "$CW_TMP/ne-tcpstat.log" "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$nport" \
    --collector.tcpstat
ne_pid=$CW_LAST_PID
cw_wait_http "http://127.0.0.1:$nport/metrics"
ne_tcp=$(scrape_cpu "$ne_pid" "http://127.0.0.1:$nport/metrics")
cw_stop "$ne_pid" || true

# ---- connwatch: host runs only ------------------------------------------------------------------
printf 'global: {interval: 100ms, timeout: 100ms}\nhost: {enabled: true}\n' >"$CW_TMP/run.yml"
cw_start_connwatch "$CW_TMP/run.yml"
cw_wait_ready
sleep 2
c0=$(cpu_ticks "$CW_PID")
t0=$(cw_now)
sleep "$POLL_SECONDS"
c1=$(cpu_ticks "$CW_PID")
runs=$(awk -v ms="$(cw_elapsed_ms "$t0")" 'BEGIN { printf "%d", ms / 100 }')
cw_scrape >"$CW_TMP/run.prom"
host_dur=$(cw_metric_in "$CW_TMP/run.prom" connwatch_check_duration_seconds 'check="host"')
run_cpu=$(per_ms $((c1 - c0)) "$runs")
cw_stop || true

# ---- connwatch: scrapes only --------------------------------------------------------------------
printf 'global: {interval: 10m, timeout: 5s}\nhost: {enabled: true}\n' >"$CW_TMP/scrape.yml"
cw_start_connwatch "$CW_TMP/scrape.yml"
cw_wait_ready
cw_cpu=$(scrape_cpu "$CW_PID" "http://$CW_ADDR/metrics")
cw_series=$(cat "$CW_TMP/series")
cw_gz=$(scrape_cpu "$CW_PID" "http://$CW_ADDR/metrics" -H 'Accept-Encoding: gzip')
c0=$(cpu_ticks "$CW_PID")
sleep "$POLL_SECONDS"
c1=$(cpu_ticks "$CW_PID")
idle=$(per_ms $((c1 - c0)) "$runs")
cw_stop || true

# ---- the socket count alone -------------------------------------------------------------------
sc="not built"
if ninja -C "$BUILD_DIR" tests/sockcount >/dev/null 2>&1; then
    sc=$("$BUILD_DIR/tests/sockcount" -n 0 -r 51 2>&1) || true
fi

# ---- report -----------------------------------------------------------------------------------
cw_note "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); established hash: $(
    dmesg 2>/dev/null | sed -n 's/.*TCP established hash table entries: \([0-9]*\).*/\1/p' | head -n 1) buckets"
printf '\n%-40s %14s %14s\n' "" "node_exporter" "connwatch"
printf '%-40s %14s %14s\n' "series per scrape" "$ne_series" "$cw_series"
printf '%-40s %14s %14s\n' "CPU per host run (ms)" "(in scrape)" "$run_cpu"
printf '%-40s %14s %14s\n' "  host check duration, wall (s)" "" "$host_dur"
printf '%-40s %14s %14s\n' "  of which the idle daemon (ms per run)" "" "$idle"
printf '%-40s %14s %14s\n' "CPU per scrape (ms)" "$ne_cpu" "$cw_cpu"
printf '%-40s %14s %14s\n' "CPU per scrape, gzip (ms)" "$ne_gz" "$cw_gz"
printf '%-40s %14s %14s\n' "CPU per scrape, with tcpstat (ms)" "$ne_tcp" ""
awk -v r="$run_cpu" -v c="$cw_cpu" -v g="$cw_gz" -v n="$ne_cpu" -v ng="$ne_gz" -v nt="$ne_tcp" 'BEGIN {
    printf "%-40s %14s %14.3f\n", "CPU per scrape cycle (ms)", n, r + c
    printf "\nratios (node_exporter scrape / connwatch host run + scrape):\n"
    printf "  plain: %.1fx   gzip: %.1fx   with tcpstat: %.1fx   (goal: >= 5x)\n", n / (r + c),
        ng / (r + g), nt / (r + c)
}'
echo "sockcount (no sockets of its own): $sc"
