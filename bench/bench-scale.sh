#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-scale.sh - connwatch at N = 100, 1,000 and 10,000 checks of each of the
# kinds tcp, icmp, http and https, side by side with the peers on the same
# targets at the same rate, and the goals of issue 14:
#   - connwatch, per kind and N: load time (--config.check), ready time (start
#     to /-/ready), VmRSS and RssAnon once settled (one interval after ready)
#     and per check (over connwatch without checks), then SCRAPES scrapes as
#     Prometheus sends them (its Accept and Accept-Encoding: gzip) one every
#     SCRAPE_GAP s: p50 / p99, series, bytes (plain and gzip), CPU per scrape
#     (CPU over the scrapes minus that of as long a window without), VmRSS
#     after them and the peak (VmHWM);
#   - peers: blackbox_exporter for tcp, http and https (a paced client asks
#     /probe for each target once per interval, as Prometheus would),
#     fping -l and smokeping_prober (N <= SMOKEPING_MAX) for icmp: VmRSS,
#     RssAnon and CPU per probe (ticks over probes answered).
# Targets are realistic and spread: tcp and http on 127.A.B.C (any loopback
# address reaches nginx listening on PORTS ports), names and paths with a
# hashed part; https on 127.0.0.1 with a test CA (the certificate's address),
# paths spread; icmp to 127.A.B.C. Intervals: tcp, http, https 15 s, icmp one
# probe a second (run every 15 s).
#
#   bench/bench-scale.sh                              (everything: ~25 min)
#   KINDS="http https" SIZES="1000" bench/bench-scale.sh
#   PEERS=0 BUILD_DIR=/path/to/other/build bench/bench-scale.sh
#
# Only loopback traffic; it ends only the processes it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-rel}
KINDS=${KINDS:-tcp icmp http https}
SIZES=${SIZES:-100 1000 10000}
PORTS=${PORTS:-10}
INTERVAL=${INTERVAL:-15}
SCRAPES=${SCRAPES:-20}
SCRAPE_GAP=${SCRAPE_GAP:-1}
PEERS=${PEERS:-1}
PEER_SECONDS=${PEER_SECONDS:-30}
SMOKEPING_MAX=${SMOKEPING_MAX:-1000}
BLACKBOX=${BLACKBOX:-prometheus-blackbox-exporter}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"
# shellcheck source=tests/lib/certs.sh
. "$ROOT/tests/lib/certs.sh"
# shellcheck source=tests/lib/nginx.sh
. "$ROOT/tests/lib/nginx.sh"

for t in nginx "$BLACKBOX" fping prometheus-smokeping-prober; do
    command -v "$t" >/dev/null 2>&1 || need_install=1
done
[[ -z ${need_install:-} ]] || "$ROOT/packaging/install-deps.sh" bench
cw_require nginx python3 curl openssl
[[ $PEERS == 1 ]] && cw_require "$BLACKBOX" fping prometheus-smokeping-prober
if [[ ! -x $BUILD_DIR/connwatch ]]; then
    [[ -f $BUILD_DIR/build.ninja ]] || meson setup "$BUILD_DIR" "$ROOT" --buildtype=release >/dev/null
    ninja -C "$BUILD_DIR" connwatch >/dev/null
fi
cw_tmpdir
d=$CW_TMP
hz=$(getconf CLK_TCK)
# Prometheus 2.x's scrape request headers.
ACCEPT='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Unprivileged ICMP sockets for smokeping_prober's default mode (restored at the end).
ping_range=$(cat /proc/sys/net/ipv4/ping_group_range)
sysctl -qw net.ipv4.ping_group_range="0 2147483647"

# ---- nginx on PORTS ports, plain and TLS: any path answers 200 -------------------------------
cert_ca "$d" ca 365
cert_sign "$d" localhost ca 30 "DNS:localhost,IP:127.0.0.1" 7001
# A port picked free can be taken by another program before nginx binds it:
# up to five tries with new ports.
for ((try = 0; ; try++)); do
    ports=() tports=() listen=""
    for ((i = 0; i < PORTS; i++)); do
        p=$(cw_free_port)
        ports+=("$p")
        listen+="        listen $p;"$'\n'
    done
    for ((i = 0; i < PORTS; i++)); do
        p=$(cw_free_port)
        tports+=("$p")
        listen+="        listen 127.0.0.1:$p ssl;"$'\n'
    done
    listen+="        ssl_certificate $d/localhost.pem; ssl_certificate_key $d/localhost.key;"
    cw_nginx_ok_conf "$d" 2 off "$listen" >"$d/nginx.conf"
    cw_spawn "$d/nginx.out" nginx -p "$d/nginx" -c "$d/nginx.conf" -g 'daemon off;'
    nginx_pid=$CW_LAST_PID
    up=0
    for ((i = 0; i < 100 && up == 0; i++)); do
        kill -0 "$nginx_pid" 2>/dev/null || break
        up=1
        for p in "${ports[@]}" "${tports[@]}"; do
            (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || up=0
        done
        ((up == 1)) || sleep 0.05
    done
    ((up == 1)) && break
    cw_stop "$nginx_pid" || true
    ((try < 4)) || cw_fail "nginx did not listen on its ports: $(tail -n3 "$d/nginx.out")"
done

# targets KIND N writes N spread targets of KIND, one a line.
targets()
{
    python3 - "$1" "$2" "${ports[*]}" "${tports[*]}" <<'EOF'
import sys
kind, n = sys.argv[1], int(sys.argv[2])
ports, tports = sys.argv[3].split(), sys.argv[4].split()
for i in range(n):
    # The second octet is hashed (spread names); the last two are i + 1, so
    # that no two targets are the same.
    h = (i * 2654435761) & 0xffffffff
    a, b, c = 1 + (h >> 24) % 254, (i + 1) >> 8, (i + 1) & 255
    if kind == "tcp":
        print("127.%d.%d.%d:%s" % (a, b, c, ports[i % len(ports)]))
    elif kind == "icmp":
        print("127.%d.%d.%d" % (a, b, c))
    elif kind == "http":
        print("http://127.%d.%d.%d:%s/api/v1/%08x/health" % (a, b, c, ports[i % len(ports)], h))
    else:
        print("https://127.0.0.1:%s/api/v1/%08x/health/%d" % (tports[i % len(tports)], h, i))
EOF
}

# config KIND FILE TARGETS writes connwatch's configuration.
config()
{
    local kind=$1 t
    {
        echo "global: {interval: ${INTERVAL}s, timeout: 5s, max_concurrent_checks: 64}"
        echo "host: {enabled: false}"
        echo "services:"
        echo "  - name: scale"
        echo "    checks:"
        while read -r t; do
            case $kind in
            tcp) echo "      - tcp: {target: \"$t\"}" ;;
            icmp) echo "      - icmp: {target: \"$t\", probe_interval: 1s}" ;;
            http) echo "      - http: {url: \"$t\"}" ;;
            https) echo "      - http: {url: \"$t\", ca_file: \"$d/ca.pem\"}" ;;
            esac
        done <"$3"
    } >"$2"
}

# ---- connwatch --------------------------------------------------------------------------------
results=$d/results
: >"$results"
# connwatch without checks: the base of the per-check figures.
printf 'host: {enabled: false}\n' >"$d/empty.yml"
cw_start_connwatch "$d/empty.yml"
cw_wait_ready 60
sleep 2
base_rss=$(kb "$CW_PID" VmRSS) base_anon=$(kb "$CW_PID" RssAnon)
cw_stop

for kind in $KINDS; do
    for n in $SIZES; do
        targets "$kind" "$n" >"$d/t-$kind-$n"
        config "$kind" "$d/c-$kind-$n.yml" "$d/t-$kind-$n"
        t0=$(cw_now)
        "$BUILD_DIR/connwatch" --config.check --config.file="$d/c-$kind-$n.yml" >/dev/null 2>&1 ||
            cw_fail "$kind $n: --config.check failed"
        load_ms=$(cw_elapsed_ms "$t0")
        t0=$(cw_now)
        cw_start_connwatch "$d/c-$kind-$n.yml"
        cw_wait_ready 120
        ready_ms=$(cw_elapsed_ms "$t0")
        # Settled: every check has run and published at least once.
        sleep $((INTERVAL + 3))
        rss=$(kb "$CW_PID" VmRSS) anon=$(kb "$CW_PID" RssAnon)
        # Background CPU over as long a window as the scrapes take.
        span=$(awk -v s="$SCRAPES" -v g="$SCRAPE_GAP" 'BEGIN { print s * g }')
        c0=$(ticks "$CW_PID")
        sleep "$span"
        idle_ticks=$(($(ticks "$CW_PID") - c0))
        : >"$d/lat"
        c0=$(ticks "$CW_PID")
        for ((i = 0; i < SCRAPES; i++)); do
            curl -s -o /dev/null -H "Accept: $ACCEPT" -H 'Accept-Encoding: gzip' \
                -w '%{time_total} %{size_download}\n' "http://$CW_ADDR/metrics" >>"$d/lat" || true
            sleep "$SCRAPE_GAP"
        done
        scrape_ticks=$(($(ticks "$CW_PID") - c0))
        rss2=$(kb "$CW_PID" VmRSS) hwm=$(kb "$CW_PID" VmHWM)
        curl -s "http://$CW_ADDR/metrics" >"$d/m-$kind-$n"
        ok=$(grep -c '^connwatch_check_success{.*} 1$' "$d/m-$kind-$n" || true)
        series=$(grep -vc '^#' "$d/m-$kind-$n" || true)
        bytes=$(wc -c <"$d/m-$kind-$n")
        cw_stop
        sort -n "$d/lat" | awk -v n="$n" -v kind="$kind" -v loadms="$load_ms" -v ready="$ready_ms" \
            -v rss="$rss" -v anon="$anon" -v brss="$base_rss" -v banon="$base_anon" -v rss2="$rss2" \
            -v hwm="$hwm" -v series="$series" -v bytes="$bytes" -v ok="$ok" -v hz="$hz" \
            -v st="$scrape_ticks" -v it="$idle_ticks" -v scrapes="$SCRAPES" '
            { v[NR] = $1; gz += $2 }
            END {
                cpu = (st - it) / hz / scrapes * 1000; if (cpu < 0) cpu = 0
                printf "connwatch %s %d %d %d %.1f %.1f %.2f %.2f %.1f %.1f %.2f %.2f %d %d %d %.2f %.3f %d\n",
                    kind, n, loadms, ready, rss / 1024, anon / 1024, (rss - brss) / n, (anon - banon) / n,
                    rss2 / 1024, hwm / 1024, v[int(NR * 0.5 + 0.5)] * 1000, v[int(NR * 0.99 + 0.5)] * 1000,
                    series, bytes, gz / NR, cpu, cpu * 1000 / (series ? series : 1), ok
            }' >>"$results"
        cw_note "$(tail -n1 "$results")"
        ((ok == n)) || echo "$kind $n: only $ok of $n checks succeeding, the figures are not comparable" >>"$d/warnings"
    done
done

# ---- peers ------------------------------------------------------------------------------------
cat >"$d/blackbox.yml" <<EOF
modules:
  tcp: {prober: tcp, timeout: 5s, tcp: {preferred_ip_protocol: ip4}}
  http: {prober: http, timeout: 5s, http: {preferred_ip_protocol: ip4}}
  https:
    prober: http
    timeout: 5s
    http: {preferred_ip_protocol: ip4, tls_config: {ca_file: "$d/ca.pem"}}
EOF

# peer_row NAME KIND N PID PROBES T0TICKS: one result line after a window.
peer_row()
{
    local cpu
    cpu=$(awk -v t=$(($(ticks "$4") - $6)) -v hz="$hz" -v p="$5" \
        'BEGIN { printf "%.1f", (p > 0 ? t / hz * 1e6 / p : 0) }')
    echo "$1 $2 $3 $(mib "$(kb "$4" VmRSS)") $(mib "$(kb "$4" RssAnon)") $(mib "$(kb "$4" VmHWM)") $5 $cpu" >>"$results"
    cw_note "$(tail -n1 "$results")"
}

if [[ $PEERS == 1 ]]; then
    for kind in $KINDS; do
        for n in $SIZES; do
            [[ -s $d/t-$kind-$n ]] || targets "$kind" "$n" >"$d/t-$kind-$n"
            if [[ $kind == icmp ]]; then
                # fping in loop mode: one probe a second to each target (-i:
                # the gap between two sends, 1000/N ms, or fping's 10 ms
                # default caps it at 100 probes a second).
                cw_spawn "$d/fping-$n.log" fping -l -q -Q "$PEER_SECONDS" -p 1000 -t 1000 \
                    -i "$(awk -v n="$n" 'BEGIN { v = 1000 / n; printf "%g", v < 1 ? v : 1 }')" \
                    -f "$d/t-$kind-$n"
                pid=$CW_LAST_PID
                sleep 5
                c0=$(ticks "$pid")
                sleep "$PEER_SECONDS"
                peer_row fping icmp "$n" "$pid" $((n * PEER_SECONDS)) "$c0"
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                cw_forget_pid "$pid"
                ((n <= SMOKEPING_MAX)) || continue
                port=$(cw_free_port)
                # shellcheck disable=SC2046
                cw_spawn "$d/smokeping-$n.log" prometheus-smokeping-prober \
                    --web.listen-address="127.0.0.1:$port" -i 1s $(cat "$d/t-$kind-$n")
                pid=$CW_LAST_PID
                cw_wait_http "http://127.0.0.1:$port/metrics" 120
                sleep 5
                c0=$(ticks "$pid")
                for ((i = 0; i < PEER_SECONDS / INTERVAL; i++)); do
                    sleep "$INTERVAL"
                    curl -s -o /dev/null -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" || true
                done
                peer_row smokeping_prober icmp "$n" "$pid" $((n * PEER_SECONDS / INTERVAL * INTERVAL)) "$c0"
                cw_stop "$pid" || true
                continue
            fi
            port=$(cw_free_port)
            cw_spawn "$d/blackbox-$kind-$n.log" "$BLACKBOX" --config.file="$d/blackbox.yml" \
                --web.listen-address="127.0.0.1:$port"
            pid=$CW_LAST_PID
            cw_wait_http "http://127.0.0.1:$port/-/healthy" 30
            cw_spawn "$d/drive-$kind-$n.log" python3 "$ROOT/bench/probe_driver.py" "$port" "$kind" \
                "$(awk -v n="$n" -v i="$INTERVAL" 'BEGIN { print n / i }')" "$d/t-$kind-$n" \
                $((PEER_SECONDS + 5)) "" 32
            dpid=$CW_LAST_PID
            sleep 5
            c0=$(ticks "$pid")
            sleep "$PEER_SECONDS"
            wait "$dpid" 2>/dev/null || true
            cw_forget_pid "$dpid"
            # Probes answered with probe_success 1, as the driver counted them
            # over its PEER_SECONDS + 5 s, scaled to the measured window.
            peer_row blackbox_exporter "$kind" "$n" "$pid" \
                "$(awk -v s="$PEER_SECONDS" '/^succeeded probes:/ { printf "%d", $3 * s / (s + 5) }' \
                    "$d/drive-$kind-$n.log")" "$c0"
            cw_stop "$pid" || true
        done
    done
fi

# ---- report -----------------------------------------------------------------------------------
echo
echo "connwatch ($BUILD_DIR), without checks: VmRSS $(mib "$base_rss") MiB, RssAnon $(mib "$base_anon") MiB"
printf '%-5s %6s %7s %8s %8s %8s %9s %9s %9s %9s %8s %8s %7s %9s %8s %8s %8s %6s\n' \
    kind N load_ms ready_ms RSS_MiB anon_MiB KiB/chk anonKiB/c after_MiB peak_MiB p50_ms p99_ms \
    series bytes gzip cpu_ms us/ser ok
awk '$1 == "connwatch" { printf "%-5s %6d %7d %8d %8.1f %8.1f %9.2f %9.2f %9.1f %9.1f %8.2f %8.2f %7d %9d %8d %8.2f %8.3f %6d\n",
    $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19 }' "$results"
if [[ $PEERS == 1 ]]; then
    echo
    printf '%-18s %-5s %6s %8s %9s %9s %8s %10s\n' peer kind N RSS_MiB anon_MiB peak_MiB probes 'CPU us/pr'
    awk '$1 != "connwatch" { printf "%-18s %-5s %6d %8.1f %9.1f %9.1f %8d %10.1f\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$results"
fi

# The goals of issue 14, from the rows above ("-" where the run had no such row).
echo
echo "goals (issue 14):"
awk '
    $1 == "connwatch" { rss[$2, $3] = $6; kib[$2, $3] = $8; peak[$2, $3] = $11; p99[$2, $3] = $13
                        series[$2, $3] = $14; uss[$2, $3] = $18; steady[$2, $3] = $6 }
    $1 != "connwatch" { prss[$1, $2, $3] = $4 }
    function show(what, have, goal, ok) { printf "  %-62s %-18s %s\n", what, have, (have == "-" ? "" : (ok ? "met" : "NOT MET")) }
    END {
        k = ("tcp", 10000) in kib ? kib["tcp", 10000] : "-"; show("tcp: KiB per check at 10,000 <= 1.5", k, 1.5, k != "-" && k <= 1.5)
        k = ("icmp", 10000) in kib ? kib["icmp", 10000] : "-"; show("icmp: KiB per check at 10,000 <= 1.5", k, 1.5, k != "-" && k <= 1.5)
        k = ("http", 1000) in kib ? kib["http", 1000] : "-"; show("http: KiB per check at 1,000 <= 4", k, 4, k != "-" && k <= 4)
        k = ("icmp", 10000) in peak ? peak["icmp", 10000] : "-"; show("icmp 10,000 at 1 probe/s, peak VmRSS with scrapes < 32 MiB", k, 32, k != "-" && k < 32)
        s = ("smokeping_prober", "icmp", 1000) in prss ? prss["smokeping_prober", "icmp", 1000] : "-"
        k = ("icmp", 1000) in rss ? rss["icmp", 1000] : "-"
        show("icmp 1,000: smokeping_prober VmRSS / connwatch VmRSS >= 9x", (s == "-" || k == "-") ? "-" : sprintf("%.1fx", s / k), 9, s != "-" && k != "-" && s / k >= 9)
        k = ("http", 1000) in peak ? peak["http", 1000] : "-"; show("http 1,000: peak VmRSS < 16 MiB", k, 16, k != "-" && k < 16)
        k = ("https", 1000) in peak ? peak["https", 1000] : "-"; show("https 1,000: peak VmRSS < 20 MiB", k, 20, k != "-" && k < 20)
        k = ("http", 1000) in p99 ? p99["http", 1000] : "-"; show("http 1,000 (27k series): /metrics p99 < 10 ms while publishing", k, 10, k != "-" && k < 10)
        k = ("icmp", 10000) in uss ? uss["icmp", 10000] : "-"; show("icmp 10,000 (390k series): scrape CPU < 0.3 us per series", k, 0.3, k != "-" && k < 0.3)
        split("tcp icmp http https", ks, " ")
        for (j = 1; j <= 4; j++) {
            key = ks[j] SUBSEP 10000
            if (key in peak) show(ks[j] " 10,000: peak VmRSS <= 2x settled VmRSS", sprintf("%.2fx", peak[key] / steady[key]), 2, peak[key] / steady[key] <= 2)
        }
    }' "$results"
echo "(KiB per check: VmRSS and RssAnon over those of connwatch without checks, divided by N)"
[[ ! -s $d/warnings ]] || sed 's/^/WARNING: /' "$d/warnings"
sysctl -qw net.ipv4.ping_group_range="$ping_range"
