#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-tcp.sh - the tcp check against Debian's prometheus-blackbox-exporter
# (/probe?module=tcp_connect), at the same rate against the same N loopback
# listeners, one after the other:
#   - connwatch: N tcp checks at a 1 s interval (N probes/s);
#   - blackbox_exporter: a paced client (python, keep-alive, its CPU not
#     counted) asks /probe?module=tcp_connect&target=127.0.0.1:PORT N times
#     a second, round-robin over the same ports: the way Prometheus drives it;
# and reports CPU per probe (delta utime+stime of the exporter / connections
# the listeners accepted during the window), context switches per probe (all
# the exporter's threads, voluntary and not: the cost of handing runs between
# threads), RSS (VmRSS at the end, VmHWM).
#
#   bench/bench-tcp.sh                  (BUILD_DIR=build, N=200, DURATION=30)
#   N=1000 DURATION=60 bench/bench-tcp.sh
#
# Only loopback traffic; it ends only the processes it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
N=${N:-200}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-5}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"

BLACKBOX=${BLACKBOX:-prometheus-blackbox-exporter}
if ! command -v "$BLACKBOX" >/dev/null 2>&1; then
    "$ROOT/packaging/install-deps.sh" bench
fi
cw_require "$BLACKBOX" python3 curl
[[ -x $BUILD_DIR/connwatch ]] || ninja -C "$BUILD_DIR" connwatch
cw_tmpdir

ctx_switches()
{
    cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}
cpu_ticks()
{
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
status_kb()
{
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
accepted()
{
    cat "$CW_TMP/accepts" 2>/dev/null || echo 0
}

# ---- N listeners in one process: accept, count, close ------------------------------------
cat >"$CW_TMP/listen.py" <<'EOF'
import asyncio, os, sys
n, ports_file, count_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
count = 0
async def handle(r, w):
    global count
    count += 1
    w.close()
async def main():
    servers = [await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024) for _ in range(n)]
    with open(ports_file + ".tmp", "w") as f:
        for s in servers:
            f.write("%d\n" % s.sockets[0].getsockname()[1])
    os.replace(ports_file + ".tmp", ports_file)
    while True:
        await asyncio.sleep(0.2)
        with open(count_file + ".tmp", "w") as f:
            f.write("%d\n" % count)
        os.replace(count_file + ".tmp", count_file)
asyncio.run(main())
EOF
cw_spawn "$CW_TMP/listen.log" python3 "$CW_TMP/listen.py" "$N" "$CW_TMP/ports" "$CW_TMP/accepts"
for ((i = 0; i < 200; i++)); do
    [[ -s $CW_TMP/ports ]] && break
    sleep 0.05
done
[[ -s $CW_TMP/ports ]] || cw_fail "the listeners did not start"
mapfile -t ports <"$CW_TMP/ports"

# measure NAME PID: CPU and accepted connections over DURATION seconds.
# Sets R_cpu_us (per probe), R_csw (context switches per probe), R_probes,
# R_rate, R_rss, R_hwm (kB).
measure()
{
    local pid=$2 c0 c1 a0 a1 t0 ms s0 s1
    sleep "$WARMUP"
    s0=$(ctx_switches "$pid")
    c0=$(cpu_ticks "$pid")
    a0=$(accepted)
    t0=$(cw_now)
    sleep "$DURATION"
    c1=$(cpu_ticks "$pid")
    s1=$(ctx_switches "$pid")
    a1=$(accepted)
    ms=$(cw_elapsed_ms "$t0")
    R_probes=$((a1 - a0))
    R_rate=$(awk -v p="$R_probes" -v ms="$ms" 'BEGIN { printf "%.1f\n", p * 1000 / ms }')
    R_cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v p="$R_probes" \
        'BEGIN { printf "%.1f\n", (p > 0) ? (t / hz * 1e6 / p) : 0 }')
    R_cpu_s=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }')
    R_csw=$(awk -v a="$s0" -v b="$s1" -v p="$R_probes" 'BEGIN { printf "%.2f\n", (p > 0) ? (b - a) / p : 0 }')
    R_rss=$(status_kb "$pid" VmRSS)
    R_hwm=$(status_kb "$pid" VmHWM)
    cw_note "$1: $R_probes probes in $ms ms ($R_rate/s), CPU $R_cpu_s s, $R_cpu_us us/probe, $R_csw switches/probe, RSS $R_rss kB"
}

# ---- connwatch ----------------------------------------------------------------------------
{
    echo "global: {interval: 1s, timeout: 1s}"
    echo "host: {enabled: false}"
    echo "services:"
    echo "  - name: bench"
    echo "    checks:"
    for p in "${ports[@]}"; do
        echo "      - tcp: {target: \"127.0.0.1:$p\"}"
    done
} >"$CW_TMP/connwatch.yml"
cw_start_connwatch "$CW_TMP/connwatch.yml"
cw_wait_ready 30
measure connwatch "$CW_PID"
cw_scrape >"$CW_TMP/cw.txt"
ok=$(grep -c '^connwatch_check_success{check="tcp".*} 1$' "$CW_TMP/cw.txt" || true)
cw_note "connwatch: $ok of $N checks succeeding"
cw_cpu=$R_cpu_us cw_csw=$R_csw cw_rate=$R_rate cw_rss=$R_rss cw_hwm=$R_hwm
cw_stop

# ---- blackbox_exporter, driven at the same rate -------------------------------------------
bb_port=$(cw_free_port)
cat >"$CW_TMP/blackbox.yml" <<'EOF'
modules:
  tcp_connect:
    prober: tcp
    timeout: 1s
EOF
cw_spawn "$CW_TMP/blackbox.log" "$BLACKBOX" --config.file="$CW_TMP/blackbox.yml" \
    --web.listen-address="127.0.0.1:$bb_port"
bb_pid=$CW_LAST_PID
for ((i = 0; i < 200; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$bb_port/-/healthy" || true) == 200 ]] && break
    sleep 0.05
done
cw_spawn "$CW_TMP/drive.log" python3 "$ROOT/bench/probe_driver.py" "$bb_port" tcp_connect "$N" \
    "$CW_TMP/ports" $((WARMUP + DURATION + 2)) 127.0.0.1:
measure blackbox_exporter "$bb_pid"
bb_cpu=$R_cpu_us bb_csw=$R_csw bb_rate=$R_rate bb_rss=$R_rss bb_hwm=$R_hwm

# ---- report -------------------------------------------------------------------------------
printf '\n%d loopback listeners, %d probes/s asked, %s s measured (after %s s warm-up)\n' \
    "$N" "$N" "$DURATION" "$WARMUP"
printf '%-20s %12s %14s %14s %12s %12s\n' exporter 'probes/s' 'CPU us/probe' 'switches/probe' 'RSS MiB' 'peak MiB'
for who in connwatch blackbox; do
    if [[ $who == connwatch ]]; then
        set -- "$cw_rate" "$cw_cpu" "$cw_csw" "$cw_rss" "$cw_hwm"
    else
        set -- "$bb_rate" "$bb_cpu" "$bb_csw" "$bb_rss" "$bb_hwm"
    fi
    printf '%-20s %12s %14s %14s %12.1f %12.1f\n' "$who" "$1" "$2" "$3" \
        "$(awk -v k="$4" 'BEGIN { print k / 1024 }')" "$(awk -v k="$5" 'BEGIN { print k / 1024 }')"
done
awk -v a="$cw_cpu" -v b="$bb_cpu" -v r1="$cw_rss" -v r2="$bb_rss" 'BEGIN {
    printf "ratio connwatch/blackbox: CPU per probe %.2f, RSS %.2f\n", a / b, r1 / r2 }'
