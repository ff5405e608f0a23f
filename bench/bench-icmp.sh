#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-icmp.sh - connwatch's icmp engine against fping (loop mode) and
# prometheus-smokeping-prober on the same loopback targets, plus loss
# accuracy and RTT bias. Runs in a network namespace of its own (root), so
# all traffic stays on its loopback and a veth pair it makes:
#
#   1. For N in SIZES (1000 10000): N targets 127.1.x.y, 1 probe/s each, for
#      DURATION seconds after a warm-up, one tool after the other: connwatch
#      with interval 1s (one check run per probe) and with interval 15s +
#      probe_interval 1s (one run per scrape interval), fping -l, and
#      smokeping_prober (N <= SMOKEPING_MAX): CPU seconds (utime+stime
#      delta), CPU per probe, RSS (VmRSS, VmHWM), the median over targets of
#      the mean RTT each tool reports, and its loss; for connwatch also the
#      CPU of its engine thread (cw-icmp) alone.
#   2. Loss accuracy: a peer namespace drops 1/5/20/50 % of echo requests
#      (nft numgen, with counters = the truth); connwatch probes 8 targets
#      per level every 10 ms for LOSS_SECONDS; table of configured, dropped
#      by nft, connwatch's window loss ratio, connwatch's counters, fping's.
#   3. RTT bias: ping -i 0.2 and connwatch (200 ms) on the same targets at the
#      same time (loopback, veth peer): mean RTT difference.
#
#   bench/bench-icmp.sh   (BUILD_DIR=build DURATION=60 SIZES="1000 10000" LOSS_SECONDS=20
#                          WARMUP=5 SMOKEPING_MAX=1000 SMOKEPING_START=180 BENCH_RESULTS=FILE)
#   DURATION=15 SIZES=1000 bench/bench-icmp.sh      (a quick run, ~3 min)
#
# It ends only the processes it started; namespaces it made are deleted.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
DURATION=${DURATION:-60}
SIZES=${SIZES:-1000 10000}
LOSS_SECONDS=${LOSS_SECONDS:-20}
WARMUP=${WARMUP:-5}
SMOKEPING_MAX=${SMOKEPING_MAX:-1000}   # largest N smokeping_prober is run with (it starts ~30 pingers/s)
SMOKEPING_START=${SMOKEPING_START:-180} # seconds it may take to serve /metrics
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR

if [[ $(id -u) -ne 0 ]]; then
    echo "bench-icmp.sh needs root (namespaces, raw sockets, nft)" >&2
    exit 2
fi
if [[ -z ${CW_BENCH_NETNS:-} ]]; then
    export CW_BENCH_NETNS=1
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
fi

# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"
export CW_NETNS=1
# shellcheck source=tests/lib/icmp.sh
. "$ROOT/tests/lib/icmp.sh"
cw_require fping ping prometheus-smokeping-prober nft curl python3
[[ -x $BUILD_DIR/connwatch ]] || cw_fail "$BUILD_DIR/connwatch is not built"
cw_tmpdir
# smokeping_prober's default (unprivileged) mode and connwatch's preferred
# one need ICMP datagram sockets; fping uses raw sockets as root.
sysctl -qw net.ipv4.ping_group_range="0 2147483647"

# ---- helpers ----------------------------------------------------------------------------------
tck=$(getconf CLK_TCK)
cpu_s()
{
    sed 's/.*) //' "/proc/$1/stat" | awk -v t="$tck" '{ printf "%.2f\n", ($12 + $13) / t }'
}
status_mib()
{
    awk -v f="$2:" '$1 == f { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}
median()
{
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
        printf "%.6f\n", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# wait_http URL SECONDS: returns 1 when URL does not answer 200 in time.
wait_http()
{
    local start
    start=$(cw_now)
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true) == 200 ]]; do
        (($(cw_elapsed_ms "$start") < $2 * 1000)) || return 1
        sleep 0.2
    done
}
scrape()
{
    curl -fsS --max-time 60 "$1"
}

results=$CW_TMP/results.txt
: >"$results"
row()
{
    printf '%-10s %7s %9s %9s %12s %8s %8s %12s %8s\n' "$@" | tee -a "$results"
}

# ---- 1. CPU, RSS, RTT at N targets -------------------------------------------------------------
run_size()
{
    local n=$1 tf=$CW_TMP/targets-$1.txt cfg=$CW_TMP/cw-$1.yml i pid c0 c1 cpu probes rss hwm
    local rtt loss s0 s1 port log
    for ((i = 0; i < n; i++)); do
        printf '127.1.%d.%d\n' $((i / 250)) $((i % 250 + 1))
    done >"$tf"

    # connwatch, twice: run() every second (interval 1s: one check run per
    # probe), then interval 15s with probe_interval 1s (the engine still
    # probes every second; the core runs the check, i.e. reads the window,
    # at the scrape interval)
    local mode
    for mode in 1s 15s; do
        {
            printf 'global:\n  interval: %s\n  timeout: 1s\n  max_concurrent_checks: 64\n' "$mode"
            printf 'host:\n  enabled: false\nservices:\n  - name: bench\n    checks:\n'
            sed 's/.*/      - icmp: {target: &, probe_interval: 1s}/' "$tf"
        } >"$cfg"
        cw_start_connwatch "$cfg"
        pid=$CW_PID
        sleep "$WARMUP"
        c0=$(cpu_s "$pid")
        local e0 e1 etid
        etid=$(grep -l '^cw-icmp$' /proc/"$pid"/task/*/comm | head -1 | cut -d/ -f5 || true)
        etid=${etid:-$pid}
        e0=$(cpu_s "$pid/task/$etid")
        sleep "$DURATION"
        c1=$(cpu_s "$pid")
        e1=$(cpu_s "$pid/task/$etid")
        rss=$(status_mib "$pid" VmRSS)
        hwm=$(status_mib "$pid" VmHWM)
        scrape "http://$CW_ADDR/metrics" >"$CW_TMP/cw-$n.prom"
        cw_stop "$pid" || true
        probes=$((n * DURATION))
        cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
        rtt=$(awk '/^connwatch_icmp_rtt_avg_seconds\{/ { print $NF }' "$CW_TMP/cw-$n.prom" | median)
        loss=$(awk '/^connwatch_icmp_loss_ratio\{/ { s += $NF; c++ } END { printf "%.4f", c ? s / c : -1 }' "$CW_TMP/cw-$n.prom")
        row "cw-$mode" "$n" "$cpu" "$probes" \
            "$(awk -v c="$cpu" -v p="$probes" 'BEGIN { printf "%.2f", p ? c / p * 1e6 : 0 }')" \
            "$rss" "$hwm" "$(awk -v r="$rtt" 'BEGIN { printf "%.1f", r * 1e6 }')" "$loss"
        echo "  (engine thread cw-icmp alone: $(awk -v a="$e0" -v b="$e1" -v p="$probes" 'BEGIN { printf "%.2f CPU s, %.2f us per probe", b - a, (b - a) / p * 1e6 }'))" | tee -a "$results"
    done

    # fping, loop mode: one summary per DURATION
    log=$CW_TMP/fping-$n.log
    cw_spawn "$log" fping -l -q -Q "$DURATION" -p 1000 -t 1000 \
        -i "$(awk -v n="$n" 'BEGIN { v = 1000 / n; printf "%g", v < 1 ? v : 1 }')" -f "$tf"
    pid=$CW_LAST_PID
    sleep "$WARMUP"
    c0=$(cpu_s "$pid")
    sleep "$DURATION"
    c1=$(cpu_s "$pid")
    rss=$(status_mib "$pid" VmRSS)
    hwm=$(status_mib "$pid" VmHWM)
    sleep 6 # the next summary (covers the measured period)
    cw_stop "$pid" || true
    # last complete summary block
    awk '/^\[/ { blk++ } { b[blk] = b[blk] "\n" $0 } END { k = blk > 1 ? blk - 1 : blk; print b[k] }' "$log" \
        >"$CW_TMP/fping-$n.last"
    probes=$(awk -F'[=/ ,%]+' '/xmt\/rcv/ { for (i = 1; i <= NF; i++) if ($i == "loss") { s += $(i + 1); r += $(i + 2) } }
        END { print s + 0 }' "$CW_TMP/fping-$n.last")
    loss=$(awk -F'[=/ ,%]+' '/xmt\/rcv/ { for (i = 1; i <= NF; i++) if ($i == "loss") { s += $(i + 1); r += $(i + 2) } }
        END { printf "%.4f", s ? 1 - r / s : -1 }' "$CW_TMP/fping-$n.last")
    rtt=$(awk '/min\/avg\/max/ { split($NF, a, "/"); print a[2] / 1000 }' "$CW_TMP/fping-$n.last" | median)
    cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    probes=$((n * DURATION))
    row fping "$n" "$cpu" "$probes" \
        "$(awk -v c="$cpu" -v p="$probes" 'BEGIN { printf "%.2f", c / p * 1e6 }')" \
        "$rss" "$hwm" "$(awk -v r="$rtt" 'BEGIN { printf "%.1f", r * 1e6 }')" "$loss"

    # smokeping_prober in its default mode (unprivileged ICMP sockets), the
    # targets on its command line. It starts its pingers one by one and
    # serves /metrics only after the last one (~50 s for 1,000 on 2 cores;
    # with a config file or --privileged it was slower still), so larger N
    # are skipped unless SMOKEPING_MAX says otherwise.
    if ((n > SMOKEPING_MAX)); then
        row smokeping "$n" "-" "-" "-" "-" "-" "-" "-"
        echo "  (skipped: N > SMOKEPING_MAX=$SMOKEPING_MAX; it would need minutes just to start)" | tee -a "$results"
        return 0
    fi
    port=$(cw_free_port)
    log=$CW_TMP/smokeping-$n.log
    # shellcheck disable=SC2046 # one argument per target
    cw_spawn "$log" prometheus-smokeping-prober --web.listen-address="127.0.0.1:$port" -i 1s \
        $(cat "$tf")
    pid=$CW_LAST_PID
    local t0
    t0=$(cw_now)
    if ! wait_http "http://127.0.0.1:$port/metrics" "$SMOKEPING_START"; then
        row smokeping "$n" "-" "-" "-" "$(status_mib "$pid" VmRSS)" "-" "-" "-"
        echo "  (smokeping_prober did not serve /metrics within $SMOKEPING_START s of its start)" | tee -a "$results"
        cw_stop "$pid" || true
        return 0
    fi
    echo "  (smokeping_prober took $(($(cw_elapsed_ms "$t0") / 1000)) s to start its $n pingers and serve)" | tee -a "$results"
    sleep "$WARMUP"
    s0=$( (scrape "http://127.0.0.1:$port/metrics" || true) | awk '/^smokeping_requests_total\{/ { s += $NF } END { print s + 0 }')
    c0=$(cpu_s "$pid")
    sleep "$DURATION"
    c1=$(cpu_s "$pid")
    rss=$(status_mib "$pid" VmRSS)
    hwm=$(status_mib "$pid" VmHWM)
    scrape "http://127.0.0.1:$port/metrics" >"$CW_TMP/sp-$n.prom" || true
    cw_stop "$pid" || true
    s1=$(awk '/^smokeping_requests_total\{/ { s += $NF } END { print s + 0 }' "$CW_TMP/sp-$n.prom")
    probes=$((s1 - s0))
    rtt=$(awk '/^smokeping_response_duration_seconds_(sum|count)\{/ {
            match($0, /host="[^"]*"/); h = substr($0, RSTART, RLENGTH)
            if ($1 ~ /_sum\{/) s[h] = $NF; else c[h] = $NF }
            END { for (h in s) if (c[h] > 0) print s[h] / c[h] }' "$CW_TMP/sp-$n.prom" | median)
    loss=$(awk '/^smokeping_requests_total\{/ { q += $NF } /^smokeping_response_duration_seconds_count\{/ { r += $NF }
        END { printf "%.4f", q ? 1 - r / q : -1 }' "$CW_TMP/sp-$n.prom")
    cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
    row smokeping "$n" "$cpu" "$probes" \
        "$(awk -v c="$cpu" -v p="$probes" 'BEGIN { printf "%.2f", p ? c / p * 1e6 : 0 }')" \
        "$rss" "$hwm" "$(awk -v r="$rtt" 'BEGIN { printf "%.1f", r * 1e6 }')" "$loss"
}

echo "== CPU, memory and RTT: 1 probe/s per target, ${DURATION} s measured after ${WARMUP} s warm-up" | tee -a "$results"
row tool targets "CPU s" probes "CPU/probe us" "RSS MiB" "HWM MiB" "RTT med us" loss
for n in $SIZES; do
    run_size "$n"
done

# ---- 2. Loss accuracy --------------------------------------------------------------------------
icmp_peer_setup
levels=(1 5 20 50)
per=8
{
    echo "table ip cwloss {"
    echo "  chain input {"
    echo "    type filter hook input priority 0; policy accept;"
    for g in 1 2 3 4; do
        echo "    ip daddr 10.201.$g.0/24 icmp type echo-request counter numgen random mod 100 < ${levels[$((g - 1))]} counter drop"
    done
    echo "  }"
    echo "}"
} >"$CW_TMP/loss.nft"
for g in 1 2 3 4; do
    for ((i = 1; i <= per; i++)); do
        icmp_peer_addr "10.201.$g.$i"
    done
done
icmp_peer nft -f "$CW_TMP/loss.nft"
cfg=$CW_TMP/loss.yml
{
    printf 'global:\n  interval: 1s\n  timeout: 1s\nhost:\n  enabled: false\nservices:\n  - name: loss\n    checks:\n'
    for g in 1 2 3 4; do
        for ((i = 1; i <= per; i++)); do
            printf '      - icmp: {target: 10.201.%d.%d, probe_interval: 10ms, probe_timeout: 100ms, window: %ds}\n' \
                "$g" "$i" "$LOSS_SECONDS"
        done
    done
} >"$cfg"
cw_start_connwatch "$cfg"
sleep $((LOSS_SECONDS + 1))
scrape "http://$CW_ADDR/metrics" >"$CW_TMP/loss.prom"
cw_stop || true
icmp_peer nft list table ip cwloss >"$CW_TMP/nft-cw.txt"
icmp_peer nft reset counters table ip cwloss >/dev/null
# fping on the same targets, same rate and count
for g in 1 2 3 4; do
    for ((i = 1; i <= per; i++)); do
        echo "10.201.$g.$i"
    done
done >"$CW_TMP/loss-targets.txt"
fping -q -p 10 -i 1 -t 100 -c $((LOSS_SECONDS * 100)) -f "$CW_TMP/loss-targets.txt" \
    >"$CW_TMP/fping-loss.txt" 2>&1 || true

echo | tee -a "$results"
echo "== Loss accuracy: $per targets per level, 10 ms probes, ${LOSS_SECONDS} s window ($((LOSS_SECONDS * 100 * per)) probes per level)" | tee -a "$results"
printf '%-10s %14s %16s %18s %12s\n' configured "nft dropped" "cw loss_ratio" "cw 1-recv/sent" "fping loss" | tee -a "$results"
for g in 1 2 3 4; do
    truth=$(awk -v g="10.201.$g.0/24" 'index($0, g) { for (i = 1; i <= NF; i++) if ($i == "packets") c[++k] = $(i + 1) }
        END { printf "%.4f", c[1] ? c[2] / c[1] : -1 }' "$CW_TMP/nft-cw.txt")
    win=$(awk -v g="target=\"10.201.$g." '/^connwatch_icmp_loss_ratio\{/ && index($0, g) { s += $NF; c++ }
        END { printf "%.4f", c ? s / c : -1 }' "$CW_TMP/loss.prom")
    ctr=$(awk -v g="target=\"10.201.$g." 'index($0, g) && /^connwatch_icmp_packets_sent_total\{/ { s += $NF }
        index($0, g) && /^connwatch_icmp_packets_received_total\{/ { r += $NF }
        END { printf "%.4f", s ? 1 - r / s : -1 }' "$CW_TMP/loss.prom")
    fp=$(awk -v g="10.201.$g." 'index($1, g) == 1 && /xmt\/rcv/ { split($5, a, "/"); s += a[1]; r += a[2] }
        END { printf "%.4f", s ? 1 - r / s : -1 }' "$CW_TMP/fping-loss.txt")
    printf '%-10s %14s %16s %18s %12s\n' "${levels[$((g - 1))]} %" "$truth" "$win" "$ctr" "$fp" | tee -a "$results"
done
echo "(nft dropped: the drop rule's counter over the connwatch run; the last in-flight probes count as sent, not yet received)" | tee -a "$results"

# ---- 3. RTT bias against ping -------------------------------------------------------------------
icmp_peer_addr 10.201.9.1
cfg=$CW_TMP/bias.yml
cat >"$cfg" <<'YML'
global:
  interval: 1s
  timeout: 1s
host:
  enabled: false
services:
  - name: bias
    checks:
      - icmp: {target: 127.0.0.1, probe_interval: 200ms, window: 20s}
      - icmp: {target: 10.201.9.1, probe_interval: 200ms, window: 20s}
      - icmp: {target: "::1", probe_interval: 200ms, window: 20s}
YML
cw_start_connwatch "$cfg"
sleep 1
pids=()
for t in 127.0.0.1 10.201.9.1 ::1; do
    cw_spawn "$CW_TMP/ping-$t.txt" ping -q -i 0.2 -c 100 "$t"
    pids+=("$CW_LAST_PID")
done
sleep 21
scrape "http://$CW_ADDR/metrics" >"$CW_TMP/bias.prom"
for p in "${pids[@]}"; do
    wait "$p" || true
    cw_forget_pid "$p"
done
cw_stop || true
echo | tee -a "$results"
echo "== RTT bias vs ping (same target, same 20 s, 5 probes/s each)" | tee -a "$results"
printf '%-12s %14s %14s %12s\n' target "ping avg us" "cw avg us" "bias us" | tee -a "$results"
for t in 127.0.0.1 10.201.9.1 ::1; do
    pavg=$(awk -F'[/ =]+' '/^rtt/ { printf "%.1f", $7 * 1000 }' "$CW_TMP/ping-$t.txt")
    cavg=$(awk -v g="target=\"$t\"" '/^connwatch_icmp_rtt_avg_seconds\{/ && index($0, g) { printf "%.1f", $NF * 1e6 }' "$CW_TMP/bias.prom")
    printf '%-12s %14s %14s %12s\n' "$t" "$pavg" "$cavg" \
        "$(awk -v a="$cavg" -v b="$pavg" 'BEGIN { printf "%+.1f", a - b }')" | tee -a "$results"
done
cp "$results" "${BENCH_RESULTS:-/dev/null}" 2>/dev/null || true
echo
echo "results: $results (copied to \$BENCH_RESULTS when set)"
