#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-core.sh - connwatch's core against Debian's prometheus-node-exporter,
# side by side on loopback, in one run:
#   - RSS (VmRSS after warm-up, VmHWM after the load) and series per scrape;
#   - CPU per scrape: wrk -t2 -c8 -d10s on each /metrics in turn (plain, then
#     gzip as Prometheus asks for it), CPU = delta(utime+stime) of the
#     exporter / requests served; and CPU per scrape per series;
#   - scrape latency p50/p99 at 8 concurrent scrapers (wrk --latency);
#   - counting TCP states with 50,000 sockets open: connwatch's host check
#     duration against node_exporter's tcpstat collector (in a network
#     namespace of its own when root), and build/tests/sockcount.
# Ends with a table and the issue's targets.
#
#   bench/bench-core.sh            (BUILD_DIR=build, DURATION=10s, SOCKETS=50000)
#
# Only loopback traffic; it ends only the processes it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
DURATION=${DURATION:-10s}
SOCKETS=${SOCKETS:-50000}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"

NODE_EXPORTER=${NODE_EXPORTER:-prometheus-node-exporter}

# ---- helpers ----------------------------------------------------------------------------------
# cpu_ticks PID prints utime+stime of PID in clock ticks.
cpu_ticks()
{
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# status_kb PID FIELD prints a /proc/PID/status field in kB.
status_kb()
{
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# series URL prints the number of samples in one scrape.
series()
{
    curl -fsS --max-time 10 "$1" | grep -vc '^#'
}

# wait_http URL waits until URL answers 200 (20 s at most).
wait_http()
{
    local start
    start=$(cw_now)
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true) == 200 ]]; do
        (($(cw_elapsed_ms "$start") < 20000)) || cw_fail "$1 did not answer 200 within 20 s"
        sleep 0.1
    done
}

# to_ms VALUE-WITH-UNIT (wrk's "123.45us", "1.20ms", "1.01s") prints milliseconds.
to_ms()
{
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f\n", n }'
}

# load NAME PID URL [WRK ARGS...]: wrk on URL while measuring PID's CPU.
# Sets R_reqs R_rps R_cpu_us (per request) R_p50 R_p99 (ms).
load()
{
    local name=$1 pid=$2 url=$3
    shift 3
    local out=$CW_TMP/wrk-$name.txt t0 t1 ticks
    t0=$(cpu_ticks "$pid")
    wrk -t2 -c8 -d"$DURATION" --latency "$@" "$url" >"$out" 2>&1 || {
        cat "$out" >&2
        cw_fail "wrk on $url failed"
    }
    t1=$(cpu_ticks "$pid")
    if grep -q 'Non-2xx' "$out"; then
        cat "$out" >&2
        cw_fail "$name: wrk saw non-2xx answers"
    fi
    R_reqs=$(awk '/requests in/ { print $1 }' "$out")
    R_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    R_p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    R_p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    ticks=$((t1 - t0))
    R_cpu_us=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$R_reqs" \
        'BEGIN { printf "%.1f\n", (n > 0 ? t / hz * 1e6 / n : 0) }')
    printf '  %-26s %8s req  %9s rps  cpu/scrape %9s us  p50 %7s ms  p99 %7s ms\n' \
        "$name" "$R_reqs" "$R_rps" "$R_cpu_us" "$R_p50" "$R_p99" >&2
}

# paced NAME URL: 8 scrapers on keep-alive connections, 10 scrapes/s each
# (a heavy but realistic Prometheus load, far from saturation), for
# DURATION; client-side latency. Sets R_p50 R_p99 (ms).
paced()
{
    local out
    out=$(python3 - "$2" "${DURATION%s}" <<'EOF'
import http.client, sys, threading, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
dur, nthreads, rate = float(sys.argv[2]), 8, 10.0
lat, errors = [], []
def worker(k):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    nxt = time.perf_counter() + k / (rate * nthreads)
    end = time.perf_counter() + dur
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if now < nxt:
            time.sleep(nxt - now)
        t0 = time.perf_counter()
        conn.request("GET", u.path)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            errors.append(r.status)
        lat.append(time.perf_counter() - t0)
        nxt += 1 / rate
ts = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
lat.sort()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
print("%d %.3f %.3f %d" % (len(lat), p(0.50), p(0.99), len(errors)))
EOF
) || cw_fail "paced scrapers on $2 failed"
    read -r R_n R_p50 R_p99 R_err <<<"$out"
    ((R_err == 0)) || cw_fail "$1: $R_err non-200 answers"
    printf '  %-26s %8s req  (8 x 10/s)  p50 %7s ms  p99 %7s ms\n' "$1" "$R_n" "$R_p50" "$R_p99" >&2
}

ratio()
{
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3g\n", a / b }'
}

# ---- the 50,000-socket phase (run in its own network namespace) -------------------------------
# sockets_phase RESULTS: holds SOCKETS loopback sockets open and times how
# each exporter counts them; writes key=value lines to RESULTS.
sockets_phase()
{
    local results=$1 cfg ne_port ne_url i d durs="" ne_durs="" ne_wall="" est ne_est
    cw_tmpdir
    : >"$results"
    cat >"$CW_TMP/hold.py" <<'EOF'
# Opens N loopback sockets (N/2 connections, both ends) and holds them until
# SIGTERM. When one process may not hold them all (RLIMIT_NOFILE hard limit),
# they are spread over child processes; the parent ends exactly its children.
import os, resource, signal, socket, sys
total = int(sys.argv[1]) // 2
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 2 * total + 256
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
except (ValueError, OSError):
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
per_proc = max(1, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 256) // 2)

def hold(n, wfd):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4096)
    port = ls.getsockname()[1]
    keep = []
    for _ in range(n):
        keep.append(socket.create_connection(("127.0.0.1", port)))
        keep.append(ls.accept()[0])
    os.write(wfd, b"%d\n" % len(keep))
    signal.pause()

children = []

def stop(*_):
    for c in children:
        try:
            os.kill(c, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for c in children:
        os.waitpid(c, 0)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
r, w = os.pipe()
left = total
while left > 0:
    n = min(per_proc, left)
    left -= n
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            hold(n, w)
        finally:
            os._exit(1)
    children.append(pid)
os.close(w)

got = 0
with os.fdopen(r, "rb") as f:
    for _ in children:
        line = f.readline()
        if not line:  # a child failed: end the others
            print("a holder process failed", flush=True)
            stop()
        got += int(line)
print("ready", got, "processes", len(children), flush=True)
while True:
    signal.pause()
EOF
    cw_spawn "$CW_TMP/hold.log" python3 "$CW_TMP/hold.py" "$SOCKETS"
    local hold_pid=$CW_LAST_PID start
    start=$(cw_now)
    until grep -q '^ready' "$CW_TMP/hold.log"; do
        kill -0 "$hold_pid" 2>/dev/null || {
            cat "$CW_TMP/hold.log" >&2
            cw_fail "the socket holder died"
        }
        (($(cw_elapsed_ms "$start") < 120000)) || cw_fail "the socket holder took over 120 s"
        sleep 0.2
    done
    echo "held=$(awk '/^ready/ { print $2 }' "$CW_TMP/hold.log")" >>"$results"
    echo "open_ms=$(cw_elapsed_ms "$start")" >>"$results"

    # connwatch: the host check's duration, which is mostly the state count.
    cfg=$CW_TMP/host-1s.yml
    printf 'global: {interval: 1s, timeout: 900ms}\nhost: {enabled: true}\n' >"$cfg"
    cw_start_connwatch "$cfg"
    cw_wait_ready 30
    cw_wait_fresh_runs 1
    for i in 1 2 3 4 5; do
        cw_wait_fresh_runs 1
        d=$(cw_metric connwatch_check_duration_seconds 'check="host"')
        durs+="$d "
    done
    est=$(cw_metric connwatch_host_tcp_connections 'state="established"')
    echo "cw_host_ms=$(tr ' ' '\n' <<<"$durs" | grep . | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f\n", a[int((NR + 1) / 2)] * 1000 }')" >>"$results"
    echo "cw_established=$est" >>"$results"
    cw_stop || cw_fail "connwatch exited non-zero"

    # node_exporter, tcpstat only: its own collector duration and the scrape's wall time.
    ne_port=$(cw_free_port)
    ne_url=http://127.0.0.1:$ne_port/metrics
    cw_spawn "$CW_TMP/ne-tcpstat.log" "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$ne_port" \
        --collector.disable-defaults --collector.tcpstat
    local ne_pid=$CW_LAST_PID
    wait_http "$ne_url"
    for i in 1 2 3 4 5 6; do
        ne_wall+="$(curl -fsS --max-time 60 -o "$CW_TMP/ne.txt" -w '%{time_total}' "$ne_url") "
        ne_durs+="$(cw_metric_in "$CW_TMP/ne.txt" node_scrape_collector_duration_seconds 'collector="tcpstat"') "
    done
    ne_est=$(cw_metric_in "$CW_TMP/ne.txt" node_tcp_connection_states 'state="established"' || echo n/a)
    median_ms()
    {
        tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ a[NR] = $1 } END { printf "%.2f\n", a[int((NR + 1) / 2)] * 1000 }'
    }
    {
        echo "ne_tcpstat_ms=$(median_ms "$ne_durs")"
        echo "ne_scrape_ms=$(median_ms "$ne_wall")"
        echo "ne_established=$ne_est"
    } >>"$results"
    cw_stop "$ne_pid" || true
    cw_stop "$hold_pid" || true

    # sockcount (built by meson on demand: ninja -C build tests/sockcount)
    # opens its own sockets, after ours are closed.
    local sc_bin=""
    ninja -C "$BUILD_DIR" tests/sockcount >/dev/null 2>&1 || true
    for sc_bin in "$BUILD_DIR/tests/sockcount" ""; do
        [[ -n $sc_bin && -x $sc_bin ]] && break
    done
    if [[ -n $sc_bin ]]; then
        local sc
        sc=$("$sc_bin" -n "$SOCKETS" 2>"$CW_TMP/sockcount.err") || {
            cat "$CW_TMP/sockcount.err" >&2
            sc="failed"
        }
        echo "sockcount=$sc" >>"$results"
    else
        echo "sockcount=not built (no $BUILD_DIR/sockcount nor $BUILD_DIR/bench/sockcount)" >>"$results"
    fi
}

if [[ ${1:-} == --sockets-phase ]]; then
    sockets_phase "$2"
    exit 0
fi

# ---- main -----------------------------------------------------------------------------------
"$ROOT/packaging/install-deps.sh" bench
if [[ ! -x $BUILD_DIR/connwatch ]]; then
    if [[ ! -f $BUILD_DIR/build.ninja ]]; then
        meson setup "$BUILD_DIR" "$ROOT"
    fi
    ninja -C "$BUILD_DIR"
fi
cw_require wrk curl python3 "$NODE_EXPORTER"
cw_tmpdir

echo "bench-core: $(nproc) cores, $(uname -r), $("$BUILD_DIR/connwatch" --version), $("$NODE_EXPORTER" --version 2>&1 | head -n 1)" >&2
echo "bench-core: connwatch build type: $(meson introspect --buildoptions "$BUILD_DIR" 2>/dev/null |
    python3 -c 'import json,sys; print(next((o["value"] for o in json.load(sys.stdin) if o["name"] == "buildtype"), "?"))' 2>/dev/null || echo '?')" >&2

# connwatch: the host check at its default interval (15 s).
cfg=$CW_TMP/connwatch.yml
printf 'host:\n  enabled: true\n' >"$cfg"
cw_start_connwatch "$cfg"
cw_pid=$CW_PID
cw_url=http://$CW_ADDR/metrics
cw_wait_ready 30

ne_port=$(cw_free_port)
ne_url=http://127.0.0.1:$ne_port/metrics
cw_spawn "$CW_TMP/node_exporter.log" "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$ne_port"
ne_pid=$CW_LAST_PID
wait_http "$ne_url"

# Warm-up: 50 scrapes each, then the resident set.
for _ in $(seq 50); do
    curl -fsS -o /dev/null "$cw_url"
    curl -fsS -o /dev/null "$ne_url"
done
cw_rss=$(status_kb "$cw_pid" VmRSS)
ne_rss=$(status_kb "$ne_pid" VmRSS)
cw_series=$(series "$cw_url")
ne_series=$(series "$ne_url")
echo "bench-core: series per scrape: connwatch $cw_series, node_exporter $ne_series" >&2

echo "bench-core: wrk -t2 -c8 -d$DURATION --latency, one exporter at a time" >&2
load connwatch "$cw_pid" "$cw_url"
cw_reqs=$R_reqs cw_rps=$R_rps cw_cpu=$R_cpu_us cw_p50=$R_p50 cw_p99=$R_p99
load node_exporter "$ne_pid" "$ne_url"
ne_reqs=$R_reqs ne_rps=$R_rps ne_cpu=$R_cpu_us ne_p50=$R_p50 ne_p99=$R_p99
load connwatch-gzip "$cw_pid" "$cw_url" -H 'Accept-Encoding: gzip'
cwz_cpu=$R_cpu_us cwz_p50=$R_p50 cwz_p99=$R_p99 cwz_rps=$R_rps
load node_exporter-gzip "$ne_pid" "$ne_url" -H 'Accept-Encoding: gzip'
nez_cpu=$R_cpu_us nez_p50=$R_p50 nez_p99=$R_p99 nez_rps=$R_rps
echo "bench-core: paced scrapers, 8 x 10 scrapes/s, $DURATION each" >&2
paced connwatch "$cw_url"
cwp_p50=$R_p50 cwp_p99=$R_p99
paced node_exporter "$ne_url"
nep_p50=$R_p50 nep_p99=$R_p99
cw_hwm=$(status_kb "$cw_pid" VmHWM)
ne_hwm=$(status_kb "$ne_pid" VmHWM)
cw_anon=$(status_kb "$cw_pid" RssAnon)
ne_anon=$(status_kb "$ne_pid" RssAnon)
cw_pss=$(awk '$1 == "Pss:" { print $2 }' "/proc/$cw_pid/smaps_rollup")
ne_pss=$(awk '$1 == "Pss:" { print $2 }' "/proc/$ne_pid/smaps_rollup")

cw_stop "$cw_pid" || cw_note "connwatch exited non-zero"
cw_stop "$ne_pid" || true

# 50,000 sockets: in a network namespace of our own when possible.
results=$CW_TMP/sockets.txt
echo "bench-core: counting TCP states with $SOCKETS sockets open" >&2
if [[ $(id -u) -eq 0 ]] && command -v unshare >/dev/null && command -v ip >/dev/null &&
    unshare --net true 2>/dev/null; then
    sock_where="own network namespace"
    unshare --net -- bash -c 'ip link set lo up && exec bash "$@"' bash "$0" --sockets-phase "$results" ||
        cw_note "the socket phase failed"
else
    sock_where="machine's namespace (not root: no private namespace)"
    bash "$0" --sockets-phase "$results" || cw_note "the socket phase failed"
fi
get()
{
    sed -n "s/^$1=//p" "$results" 2>/dev/null | head -n 1
}

# ---- report -----------------------------------------------------------------------------------
per_series()
{
    awk -v c="$1" -v s="$2" 'BEGIN { printf "%.1f\n", (s > 0 ? c * 1000 / s : 0) }'
}
cw_ps=$(per_series "$cw_cpu" "$cw_series")
ne_ps=$(per_series "$ne_cpu" "$ne_series")
cwz_ps=$(per_series "$cwz_cpu" "$cw_series")
nez_ps=$(per_series "$nez_cpu" "$ne_series")
mib()
{
    awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'
}

echo
printf '%-40s %14s %14s %12s\n' "measure" "connwatch" "node_exporter" "cw/ne"
printf '%-40s %14s %14s %12s\n' "----------------------------------------" "--------------" "--------------" "------------"
row()
{
    printf '%-40s %14s %14s %12s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"
}
row "RSS after warm-up (MiB)" "$(mib "$cw_rss")" "$(mib "$ne_rss")"
row "peak RSS after the load (MiB)" "$(mib "$cw_hwm")" "$(mib "$ne_hwm")"
row "  of which anonymous (MiB)" "$(mib "$cw_anon")" "$(mib "$ne_anon")"
row "  PSS, shared libraries split (MiB)" "$(mib "$cw_pss")" "$(mib "$ne_pss")"
row "series per scrape" "$cw_series" "$ne_series"
row "scrapes served in $DURATION (wrk -t2 -c8)" "$cw_reqs" "$ne_reqs"
row "scrapes/s" "$cw_rps" "$ne_rps"
row "CPU per scrape (us)" "$cw_cpu" "$ne_cpu"
row "CPU per scrape per series (ns)" "$cw_ps" "$ne_ps"
row "latency p50, 8 scrapers (ms)" "$cw_p50" "$ne_p50"
row "latency p99, 8 scrapers (ms)" "$cw_p99" "$ne_p99"
row "paced 8 x 10/s: latency p50 (ms)" "$cwp_p50" "$nep_p50"
row "paced 8 x 10/s: latency p99 (ms)" "$cwp_p99" "$nep_p99"
row "gzip: scrapes/s" "$cwz_rps" "$nez_rps"
row "gzip: CPU per scrape (us)" "$cwz_cpu" "$nez_cpu"
row "gzip: CPU per scrape per series (ns)" "$cwz_ps" "$nez_ps"
row "gzip: latency p50 (ms)" "$cwz_p50" "$nez_p50"
row "gzip: latency p99 (ms)" "$cwz_p99" "$nez_p99"
echo
echo "TCP state count with $(get held) sockets open ($sock_where; opening took $(get open_ms) ms):"
printf '%-40s %14s %14s\n' "" "connwatch" "node_exporter"
printf '%-40s %14s %14s\n' "established seen" "$(get cw_established)" "$(get ne_established)"
printf '%-40s %14s %14s\n' "count time (ms, median)" "$(get cw_host_ms)" "$(get ne_tcpstat_ms)"
printf '%-40s %14s %14s\n' "  measured as" "host check" "tcpstat coll."
printf '%-40s %14s %14s\n' "scrape wall time with the count (ms)" "(cached)" "$(get ne_scrape_ms)"
echo "sockcount: $(get sockcount)"
echo
targets_ok=1
check_target()
{
    if awk "BEGIN { exit !($2) }"; then
        printf '  [met]    %s\n' "$1"
    else
        printf '  [MISSED] %s\n' "$1"
        targets_ok=0
    fi
}
echo "targets (issue 2):"
check_target "connwatch RSS < 4 MiB: $(mib "$cw_rss") MiB" "$cw_rss < 4096"
check_target "CPU per scrape per series >= 20x lower: $(ratio "$ne_ps" "$cw_ps")x" \
    "$cw_ps > 0 && $ne_ps / $cw_ps >= 20"
check_target "scrape p99 < 2 ms at 8 concurrent scrapers (wrk, saturating): $cw_p99 ms" "$cw_p99 < 2"
echo "           (paced, 8 scrapers x 10/s: p99 $cwp_p99 ms)"
[[ $targets_ok -eq 1 ]] && echo "all targets met" || echo "some targets missed"
