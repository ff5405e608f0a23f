#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-http.sh - the http check against Debian's prometheus-blackbox-exporter
# (/probe?module=http_2xx), at the same rate against the same N URLs served
# by nginx on loopback (PORTS ports, N/PORTS paths each), one exporter after
# the other:
#   - connwatch: N http checks every INTERVAL s (default 15 s: N/15 probes/s),
#     all through its one libcurl multi handle; while it probes, /metrics is
#     scraped once a second and the scrape latency recorded;
#   - blackbox_exporter: a paced client (python, keep-alive, its CPU not
#     counted) asks /probe?module=http_2xx&target=URL for each URL once per
#     INTERVAL, evenly spread: the way Prometheus drives it.
# Reports CPU seconds over the window, CPU per probe (probes counted in
# nginx's access log), RSS at the end and peak (VmHWM), and the ratios.
#
#   bench/bench-http.sh                           (N=1000, INTERVAL=15, DURATION=60)
#   N=100 DURATION=30 bench/bench-http.sh         (quick)
#   HTTPS=1 bench/bench-http.sh                   (TLS 1.3 to nginx, test CA, verified)
#
# Only loopback traffic; it ends only the processes it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
N=${N:-1000}
PORTS=${PORTS:-10}
INTERVAL=${INTERVAL:-15}
DURATION=${DURATION:-60}
WARMUP=${WARMUP:-$INTERVAL}
HTTPS=${HTTPS:-0}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"
# shellcheck source=tests/lib/certs.sh
. "$ROOT/tests/lib/certs.sh"
# shellcheck source=tests/lib/nginx.sh
. "$ROOT/tests/lib/nginx.sh"

BLACKBOX=${BLACKBOX:-prometheus-blackbox-exporter}
if ! command -v "$BLACKBOX" >/dev/null 2>&1 || ! command -v nginx >/dev/null 2>&1; then
    "$ROOT/packaging/install-deps.sh" bench
fi
cw_require "$BLACKBOX" nginx python3 curl openssl
[[ -x $BUILD_DIR/connwatch ]] || ninja -C "$BUILD_DIR" connwatch
cw_tmpdir
d=$CW_TMP

cpu_ticks()
{
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}
status_kb()
{
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
probes_seen()
{
    wc -l <"$d/nginx/access.log" 2>/dev/null || echo 0
}

# ---- nginx: PORTS ports, any path answers 200 ---------------------------------------------
scheme=http
tls_lines=""
ssl_flag=""
if [[ $HTTPS == 1 ]]; then
    scheme=https
    ssl_flag=" ssl"
    cert_ca "$d" ca 365
    cert_sign "$d" localhost ca 30 "DNS:localhost,IP:127.0.0.1" 7001
    tls_lines="ssl_certificate $d/localhost.pem; ssl_certificate_key $d/localhost.key;"
fi
ports=()
listen=""
for ((i = 0; i < PORTS; i++)); do
    p=$(cw_free_port)
    ports+=("$p")
    listen+="        listen 127.0.0.1:$p$ssl_flag;"$'\n'
done
cw_nginx_ok_conf "$d" 1 "$d/nginx/access.log" "$listen        $tls_lines" >"$d/nginx.conf"
cw_spawn "$d/nginx.out" nginx -p "$d/nginx" -c "$d/nginx.conf" -g 'daemon off;'
for p in "${ports[@]}"; do
    wait_port "$p"
done
: >"$d/targets"
for ((i = 0; i < N; i++)); do
    echo "$scheme://127.0.0.1:${ports[i % PORTS]}/t/$i" >>"$d/targets"
done

# measure NAME PID: CPU and probes over DURATION seconds after WARMUP.
measure()
{
    local pid=$2 c0 c1 a0 a1 t0 ms
    sleep "$WARMUP"
    c0=$(cpu_ticks "$pid")
    a0=$(probes_seen)
    t0=$(cw_now)
    sleep "$DURATION"
    c1=$(cpu_ticks "$pid")
    a1=$(probes_seen)
    ms=$(cw_elapsed_ms "$t0")
    R_probes=$((a1 - a0))
    R_rate=$(awk -v p="$R_probes" -v ms="$ms" 'BEGIN { printf "%.1f\n", p * 1000 / ms }')
    R_cpu_s=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }')
    R_cpu_us=$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v p="$R_probes" \
        'BEGIN { printf "%.1f\n", (p > 0) ? (t / hz * 1e6 / p) : 0 }')
    R_rss=$(status_kb "$pid" VmRSS)
    R_hwm=$(status_kb "$pid" VmHWM)
    cw_note "$1: $R_probes probes in $ms ms ($R_rate/s), CPU $R_cpu_s s, $R_cpu_us us/probe, RSS $R_rss kB"
}

# ---- connwatch ----------------------------------------------------------------------------
{
    echo "global: {interval: ${INTERVAL}s, timeout: 5s, max_concurrent_checks: 64}"
    echo "host: {enabled: false}"
    echo "services:"
    echo "  - name: bench"
    echo "    checks:"
    while read -r u; do
        if [[ $HTTPS == 1 ]]; then
            echo "      - http: {url: \"$u\", ca_file: \"$d/ca.pem\"}"
        else
            echo "      - http: {url: \"$u\"}"
        fi
    done <"$d/targets"
} >"$d/connwatch.yml"
cw_start_connwatch "$d/connwatch.yml"
cw_wait_ready 60
measure connwatch "$CW_PID"
cw_anon=$(status_kb "$CW_PID" RssAnon)
# Then, still probing, scrape twice a second for SCRAPES scrapes: curl's
# time_total is the latency (kept out of the CPU window above, since
# Prometheus scrapes every 15 s, not twice a second).
for ((i = 0; i < ${SCRAPES:-40}; i++)); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://$CW_ADDR/metrics" >>"$d/scrape_lat" || true
    sleep 0.5
done
cw_scrape >"$d/cw.txt"
ok=$(grep -c '^connwatch_check_success{check="http".*} 1$' "$d/cw.txt" || true)
series=$(grep -vc '^#' "$d/cw.txt" || true)
cw_note "connwatch: $ok of $N checks succeeding, $series series per scrape"
lat=$(sort -n "$d/scrape_lat" | awk '{ v[NR] = $1 } END {
    printf "%.2f %.2f %.2f %d", v[int(NR * 0.5 + 0.5)] * 1000, v[int(NR * 0.99 + 0.5)] * 1000, v[NR] * 1000, NR }')
read -r lat_p50 lat_p99 lat_max lat_n <<<"$lat"
cw_cpu=$R_cpu_us cw_cpu_s=$R_cpu_s cw_rate=$R_rate cw_rss=$R_rss cw_hwm=$R_hwm
cw_stop

# ---- blackbox_exporter, driven at the same rate -------------------------------------------
bb_port=$(cw_free_port)
cat >"$d/blackbox.yml" <<EOF
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: "$d/ca.pem"
EOF
[[ $HTTPS == 1 ]] || sed -i '/tls_config/,$d' "$d/blackbox.yml"
cw_spawn "$d/blackbox.log" "$BLACKBOX" --config.file="$d/blackbox.yml" \
    --web.listen-address="127.0.0.1:$bb_port"
bb_pid=$CW_LAST_PID
for ((i = 0; i < 200; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$bb_port/-/healthy" || true) == 200 ]] && break
    sleep 0.05
done
cw_spawn "$d/drive.log" python3 "$ROOT/bench/probe_driver.py" "$bb_port" http_2xx \
    "$(awk -v n="$N" -v i="$INTERVAL" 'BEGIN { print n / i }')" "$d/targets" $((WARMUP + DURATION + 2))
drive_pid=$CW_LAST_PID
measure blackbox_exporter "$bb_pid"
bb_cpu=$R_cpu_us bb_cpu_s=$R_cpu_s bb_rate=$R_rate bb_rss=$R_rss bb_hwm=$R_hwm
bb_anon=$(status_kb "$bb_pid" RssAnon)
wait "$drive_pid" 2>/dev/null || true
cw_forget_pid "$drive_pid"
cw_note "blackbox driver: $(cat "$d/drive.log")"

# ---- report -------------------------------------------------------------------------------
printf '\n%d %s URLs on nginx (%d ports), every %s s (%s probes/s asked), %s s measured after %s s warm-up\n' \
    "$N" "$scheme" "$PORTS" "$INTERVAL" "$(awk -v n="$N" -v i="$INTERVAL" 'BEGIN { printf "%.1f", n / i }')" \
    "$DURATION" "$WARMUP"
mib()
{
    awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}
printf '%-20s %10s %10s %14s %10s %10s %10s\n' exporter 'probes/s' 'CPU s' 'CPU us/probe' 'RSS MiB' \
    'peak MiB' 'anon MiB'
printf '%-20s %10s %10s %14s %10s %10s %10s\n' connwatch "$cw_rate" "$cw_cpu_s" "$cw_cpu" \
    "$(mib "$cw_rss")" "$(mib "$cw_hwm")" "$(mib "$cw_anon")"
printf '%-20s %10s %10s %14s %10s %10s %10s\n' blackbox_exporter "$bb_rate" "$bb_cpu_s" "$bb_cpu" \
    "$(mib "$bb_rss")" "$(mib "$bb_hwm")" "$(mib "$bb_anon")"
awk -v a="$cw_cpu" -v b="$bb_cpu" -v r1="$cw_rss" -v r2="$bb_rss" -v n1="$cw_anon" -v n2="$bb_anon" 'BEGIN {
    printf "blackbox/connwatch: CPU per probe %.1fx, RSS %.1fx, anonymous RSS %.1fx\n", b / a, r2 / r1, n2 / n1 }'
printf 'connwatch /metrics while probing (%s series): p50 %s ms, p99 %s ms, max %s ms over %s scrapes\n' \
    "$series" "$lat_p50" "$lat_p99" "$lat_max" "$lat_n"
