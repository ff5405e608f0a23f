#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_exposition.sh - what a scraper sees: /metrics in both formats and gzip,
# validated by promtool; the other endpoints; labels; process_* metrics
# compared with the kernel's view of the process. Also run under valgrind
# (test it_exposition_valgrind, CW_WRAPPER=valgrind ...): then connwatch must
# exit 0 on SIGTERM with no memcheck error.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl promtool gzip
cw_tmpdir

cfg=$CW_TMP/connwatch.yml
cat >"$cfg" <<'EOF'
global:
  interval: 1s
  timeout: 500ms
host:
  enabled: true
  interval: 1s
EOF

cw_start_connwatch "$cfg"
cw_wait_ready

# --- text format 0.0.4 -------------------------------------------------------
curl -fsS --max-time $((10 * CW_SLOW)) -D "$CW_TMP/h.txt" -o "$CW_TMP/m.txt" \
    "http://$CW_ADDR/metrics" || cw_fail "GET /metrics failed"
ct=$(cw_header "$CW_TMP/h.txt" Content-Type)
[[ $ct == "text/plain; version=0.0.4; charset=utf-8" ]] ||
    cw_fail "text Content-Type is \"$ct\""
[[ -z $(cw_header "$CW_TMP/h.txt" Content-Encoding) ]] ||
    cw_fail "Content-Encoding set although the client did not ask for gzip"
rc=0
promtool check metrics <"$CW_TMP/m.txt" >"$CW_TMP/promtool.out" 2>&1 || rc=$?
if [[ $rc -ne 0 || -s $CW_TMP/promtool.out ]]; then
    cat "$CW_TMP/promtool.out" >&2
    cw_fail "promtool check metrics exited $rc on the text exposition"
fi
cw_pass "text 0.0.4: $(grep -vc '^#' "$CW_TMP/m.txt") samples, promtool silent"

# --- OpenMetrics by content negotiation ----------------------------------------
curl -fsS --max-time $((10 * CW_SLOW)) -D "$CW_TMP/h.om" -o "$CW_TMP/m.om" \
    -H 'Accept: application/openmetrics-text;version=1.0.0' \
    "http://$CW_ADDR/metrics" || cw_fail "GET /metrics (OpenMetrics) failed"
ct=$(cw_header "$CW_TMP/h.om" Content-Type)
[[ $ct == application/openmetrics-text* && $ct == *version=1.0.0* ]] ||
    cw_fail "OpenMetrics Content-Type is \"$ct\""
[[ $(tail -c 6 "$CW_TMP/m.om") == "# EOF" && $(tail -c 1 "$CW_TMP/m.om" | od -An -c) == *'\n'* ]] ||
    cw_fail "OpenMetrics body does not end with \"# EOF\\n\": $(tail -c 40 "$CW_TMP/m.om" | od -c | tail -3)"
[[ $(grep -c '^# EOF$' "$CW_TMP/m.om") -eq 1 ]] || cw_fail "more than one # EOF line"
# A counter family is declared without _total in OpenMetrics, its sample keeps it.
grep -q '^# TYPE connwatch_host_tcp_segments_retransmitted counter$' "$CW_TMP/m.om" ||
    cw_fail "OpenMetrics counter family connwatch_host_tcp_segments_retransmitted not declared"
grep -q '^connwatch_host_tcp_segments_retransmitted_total[{ ]' "$CW_TMP/m.om" ||
    cw_fail "OpenMetrics sample connwatch_host_tcp_segments_retransmitted_total missing"
cw_pass "OpenMetrics: Content-Type \"$ct\", ends with # EOF"

# The text format is still the answer to a plain Prometheus Accept header.
curl -fsS --max-time $((10 * CW_SLOW)) -D "$CW_TMP/h.prom" -o /dev/null \
    -H 'Accept: text/plain;version=0.0.4;q=0.5,*/*;q=0.1' "http://$CW_ADDR/metrics" ||
    cw_fail "GET /metrics with a text Accept header failed"
ct=$(cw_header "$CW_TMP/h.prom" Content-Type)
[[ $ct == "text/plain; version=0.0.4; charset=utf-8" ]] ||
    cw_fail "Accept: text/plain got Content-Type \"$ct\""

# --- gzip --------------------------------------------------------------------------
curl -fsS --max-time $((10 * CW_SLOW)) -D "$CW_TMP/h.gz" -o "$CW_TMP/m.gz" \
    -H 'Accept-Encoding: gzip' "http://$CW_ADDR/metrics" || cw_fail "GET /metrics (gzip) failed"
[[ $(cw_header "$CW_TMP/h.gz" Content-Encoding) == gzip ]] ||
    cw_fail "no Content-Encoding: gzip in the answer to Accept-Encoding: gzip"
[[ $(od -An -tx1 -N2 "$CW_TMP/m.gz" | tr -d ' ') == 1f8b ]] || cw_fail "gzip body lacks the gzip magic"
gzip -t "$CW_TMP/m.gz" || cw_fail "gzip body does not decompress (gzip -t)"
gzip -dc "$CW_TMP/m.gz" >"$CW_TMP/m.gunzip"
rc=0
promtool check metrics <"$CW_TMP/m.gunzip" >"$CW_TMP/promtool.gz.out" 2>&1 || rc=$?
if [[ $rc -ne 0 || -s $CW_TMP/promtool.gz.out ]]; then
    cat "$CW_TMP/promtool.gz.out" >&2
    cw_fail "promtool check metrics exited $rc on the decompressed gzip body"
fi
gz_size=$(stat -c %s "$CW_TMP/m.gz")
raw_size=$(stat -c %s "$CW_TMP/m.gunzip")
((gz_size < raw_size)) || cw_fail "gzip body ($gz_size B) is not smaller than the text ($raw_size B)"
# Same families as the plain answer (values move, names do not).
diff <(grep '^# TYPE' "$CW_TMP/m.txt") <(grep '^# TYPE' "$CW_TMP/m.gunzip") >&2 ||
    cw_fail "gzip and plain scrapes declare different families"
# One gzip member: curl and browsers read only the first member of a body,
# so a body of two (the cached checks' part, then connwatch's own series)
# would lose its second part there, or fail (curl --compressed: error 23).
python3 - "$CW_TMP/m.gz" <<'PYEOF' || cw_fail "the gzip body is not one gzip member (see above)"
import sys, zlib
data = open(sys.argv[1], "rb").read()
d = zlib.decompressobj(16 + zlib.MAX_WBITS)
text = d.decompress(data)
if d.unused_data or not d.eof:
    print("FAIL: %d bytes after the first gzip member (%d of text in it)" % (len(d.unused_data), len(text)))
    sys.exit(1)
if b"connwatch_build_info{" not in text:
    print("FAIL: the first gzip member lacks connwatch's own series")
    sys.exit(1)
PYEOF
curl -fsS --compressed --max-time $((10 * CW_SLOW)) -o "$CW_TMP/m.curl" "http://$CW_ADDR/metrics" ||
    cw_fail "curl --compressed cannot read /metrics"
grep -q '^connwatch_build_info{' "$CW_TMP/m.curl" || cw_fail "curl --compressed lost connwatch's own series"
cw_pass "gzip: $gz_size B for $raw_size B of text, one member (curl --compressed reads it whole), promtool silent"

# --- other endpoints -------------------------------------------------------------
curl -fsS --max-time $((10 * CW_SLOW)) -o "$CW_TMP/landing.html" "http://$CW_ADDR/" ||
    cw_fail "GET / failed"
grep -q 'href="/metrics"' "$CW_TMP/landing.html" || cw_fail "/ does not link to /metrics"
code=$(cw_http_code /-/healthy)
[[ $code == 200 ]] || cw_fail "/-/healthy answered $code"
code=$(cw_http_code /-/ready)
[[ $code == 200 ]] || cw_fail "/-/ready answered $code after it had been ready"
code=$(cw_http_code /no/such/path)
[[ $code == 404 ]] || cw_fail "unknown path answered $code, not 404"
code=$(cw_http_code -X POST /metrics)
[[ $code == 405 ]] || cw_fail "POST /metrics answered $code, not 405"
code=$(cw_http_code -I /metrics)
[[ $code == 200 ]] || cw_fail "HEAD /metrics answered $code"
cw_pass "/, /-/healthy, /-/ready, 404, 405, HEAD"

# --- series and labels -----------------------------------------------------------
f=$CW_TMP/m.txt
grep -Eq '^connwatch_build_info\{.*version="[^"]+".*\} 1$' "$f" ||
    cw_fail "connwatch_build_info{version=...} 1 missing"
grep -Eq '^connwatch_build_info\{.*revision="[^"]+".*\} 1$' "$f" ||
    cw_fail "connwatch_build_info has no revision label"
# The core's per-check series (connwatch_check_*) carry check="KIND"; the
# kind's own series carry the instance labels (none for the host section).
bad=$(awk '
    /^#/ || NF == 0 { next }
    { name = $1; sub(/\{.*/, "", name) }
    name ~ /^connwatch_check_/ && $0 !~ /[{,]check="[a-z_]+"/ { print }' "$f")
[[ -z $bad ]] || cw_fail "per-check series without a check label:"$'\n'"$bad"
nhost=$(grep -c '^connwatch_host_[a-z_]*[{ ]' "$f" || true)
((nhost >= 20)) || cw_fail "only $nhost connwatch_host_* series"
for state in established syn_sent syn_recv fin_wait1 fin_wait2 time_wait close close_wait \
    last_ack listen closing; do
    cw_metric_in "$f" connwatch_host_tcp_connections "state=\"$state\"" >/dev/null ||
        cw_fail "connwatch_host_tcp_connections{state=\"$state\"} missing"
done
[[ $(cw_metric_in "$f" connwatch_check_success 'check="host"') == 1 ]] ||
    cw_fail "connwatch_check_success{check=\"host\"} is not 1"
nchecks=$(cw_metric_in "$f" connwatch_checks_configured)
ninst=$(grep -c '^connwatch_check_success{' "$f" || true)
cw_cmp "$nchecks" == "$ninst" ||
    cw_fail "connwatch_checks_configured is $nchecks but $ninst checks report success"
[[ $(cw_metric_in "$f" connwatch_config_last_reload_successful) == 1 ]] ||
    cw_fail "connwatch_config_last_reload_successful is not 1"
cw_pass "build_info, check label on every connwatch_check_* series, $nhost host series"

# --- process_* against the kernel's view of the process ------------------------------
for m in process_cpu_seconds_total process_resident_memory_bytes process_virtual_memory_bytes \
    process_open_fds process_max_fds process_start_time_seconds; do
    cw_metric_in "$f" "$m" >/dev/null || cw_fail "$m missing"
done
# Scrape and /proc read back to back.
cw_scrape >"$CW_TMP/p.txt"
fds=$(find "/proc/$CW_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$CW_PID/status")
maxfds=$(awk '/^Max open files/ { print $4 }' "/proc/$CW_PID/limits")
open_fds=$(cw_metric_in "$CW_TMP/p.txt" process_open_fds)
rss=$(cw_metric_in "$CW_TMP/p.txt" process_resident_memory_bytes)
fd_slack=$((CW_SLOW > 1 ? 16 : 4))
awk -v a="$open_fds" -v b="$fds" -v s="$fd_slack" 'BEGIN { d = a - b; exit !(d <= s && d >= -s) }' ||
    cw_fail "process_open_fds $open_fds, but /proc/$CW_PID/fd has $fds entries"
# (valgrind lowers the limit it shows the program, and keeps fds of its own)
if [[ -z $CW_WRAPPER ]]; then
    cw_cmp "$(cw_metric_in "$CW_TMP/p.txt" process_max_fds)" == "$maxfds" ||
        cw_fail "process_max_fds differs from $maxfds in /proc/$CW_PID/limits"
fi
awk -v a="$rss" -v b="$rss_kb" 'BEGIN { b *= 1024; exit !(a >= b * 0.75 && a <= b * 1.25) }' ||
    cw_fail "process_resident_memory_bytes $rss, but VmRSS is $rss_kb kB"
# Start time: boot time + starttime (field 22 of /proc/PID/stat, in clock ticks).
btime=$(awk '/^btime/ { print $2 }' /proc/stat)
ticks=$(getconf CLK_TCK)
start_k=$(sed 's/.*) //' "/proc/$CW_PID/stat" | awk -v b="$btime" -v t="$ticks" '{ printf "%.2f\n", b + $20 / t }')
st=$(cw_metric_in "$CW_TMP/p.txt" process_start_time_seconds)
awk -v a="$st" -v b="$start_k" 'BEGIN { d = a - b; exit !(d <= 1.5 && d >= -1.5) }' ||
    cw_fail "process_start_time_seconds $st, kernel says $start_k"
cw_pass "process_*: open_fds $open_fds (/proc: $fds), rss $rss (VmRSS $rss_kb kB), start $st"

# --- clean exit (under valgrind: no memcheck errors, no definite leaks) -------------------
rc=0
cw_stop || rc=$?
if [[ $rc -ne 0 ]]; then
    if [[ -n $CW_WRAPPER ]]; then
        grep -E '==[0-9]+== ' "$CW_LOG" | tail -n 60 >&2 || true
    fi
    cw_fail "connwatch exited $rc on SIGTERM${CW_WRAPPER:+ under $CW_WRAPPER}"
fi
if [[ -n $CW_WRAPPER ]]; then
    grep -E '==[0-9]+== (ERROR SUMMARY|.*definitely lost)' "$CW_LOG" >&2 || true
fi
cw_pass "exit 0 on SIGTERM after ${CW_STOP_SECONDS}s"
