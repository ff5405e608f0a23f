#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_icmp_latency.sh - RTT and jitter of the icmp check against a responder
# that delays its echo replies. The peer namespace turns kernel echo replies
# off; tests/integration/icmp_responder.py (python3 raw sockets, started
# here) answers 10.201.5.1 and fd00:201::1 after 50 ms +- 5 ms and
# 10.201.5.2 and fd00:201::2 after 250 ms +- 5 ms (uniform). connwatch
# probes every 50 ms with a 5 s window (100 probes); the reported
# connwatch_icmp_rtt_avg_seconds must be within 2 ms of the delay, the
# jitter (mean absolute difference of consecutive RTTs; 2J/3 = 3.33 ms for
# a uniform +-J) within 2 ms of 3.33 ms, over a window whose min/max lie in
# the +-J band (plus 2 ms; the responder runs at real-time priority, and a
# window with a late reply of the responder is waited out); the histogram
# buckets must split the replies where the delays put them. A fifth target
# (10.201.5.3) gets every reply twice: received counts each probe once, the
# copies go to connwatch_icmp_duplicates_total, loss stays 0. Two more
# checks of 10.201.5.1: one with histogram_buckets [0.045, 0.06, 0.3]
# (counts in exactly those buckets, no default ones), one with
# histogram: false (no connwatch_icmp_rtt_seconds, the gauges as usual).
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"
# shellcheck source=tests/lib/icmp.sh
. "$CW_SOURCE_ROOT/tests/lib/icmp.sh"
icmp_need_root
cw_require python3
cw_tmpdir
icmp_peer_setup

icmp_peer_addr 10.201.5.1 10.201.5.2 10.201.5.3 fd00:201::1 fd00:201::2
icmp_peer sysctl -qw net.ipv4.icmp_echo_ignore_all=1
icmp_peer sysctl -qw net.ipv6.icmp.echo_ignore_all=1 ||
    cw_skip "kernel without net.ipv6.icmp.echo_ignore_all"

rlog=$CW_TMP/responder.log
# Real-time priority when allowed: the responder's timing is the reference.
rt=()
if command -v chrt >/dev/null 2>&1 && chrt -f 10 true 2>/dev/null; then
    rt=(chrt -f 10)
fi
cw_spawn "$rlog" ip netns exec "$ICMP_PEER" "${rt[@]}" python3 -u \
    "$CW_SOURCE_ROOT/tests/integration/icmp_responder.py" 42 \
    10.201.5.1=50:5 10.201.5.2=250:5 10.201.5.3=5:0:dup fd00:201::1=50:5 fd00:201::2=250:5
rpid=$CW_LAST_PID
for ((i = 0; i < 100; i++)); do
    grep -q ready "$rlog" && break
    kill -0 "$rpid" 2>/dev/null || cw_fail "responder died: $(cat "$rlog")"
    sleep 0.05
done
grep -q ready "$rlog" || cw_fail "responder not ready"

cfg=$CW_TMP/connwatch.yml
cat >"$cfg" <<'YML'
global:
  interval: 1s
  timeout: 1s
services:
  - name: lat
    checks:
      - icmp: {target: 10.201.5.1, probe_interval: 50ms, probe_timeout: 1s, window: 5s}
      - icmp: {target: 10.201.5.2, probe_interval: 50ms, probe_timeout: 1s, window: 5s}
      - icmp: {target: "fd00:201::1", probe_interval: 50ms, probe_timeout: 1s, window: 5s}
      - icmp: {target: "fd00:201::2", probe_interval: 50ms, probe_timeout: 1s, window: 5s}
      - icmp: {target: 10.201.5.3, probe_interval: 50ms, probe_timeout: 1s, window: 5s}
      - icmp: {target: 10.201.5.1, name: own-buckets, probe_interval: 200ms, probe_timeout: 1s,
               window: 5s, histogram_buckets: [0.045, 0.06, 0.3]}
      - icmp: {target: 10.201.5.1, name: no-histogram, probe_interval: 200ms, probe_timeout: 1s,
               window: 5s, histogram: false}
YML
cw_start_connwatch "$cfg"
icmp_wait_window 5 100 20
f=$CW_TMP/scrape.prom
targets=(10.201.5.1 10.201.5.2 fd00:201::1 fd00:201::2)
delays=(50 250 50 250)

# clean_window: true when every target's min/max lie in its +-5 ms band
# (plus 2 ms). On a loaded machine the python responder sometimes answers
# late; connwatch then rightly reports that, so wait for a window without.
clean_window()
{
    local i mn mx
    for i in 0 1 2 3; do
        mn=$(cw_metric_in "$f" connwatch_icmp_rtt_min_seconds "target=\"${targets[$i]}\"") || return 1
        mx=$(cw_metric_in "$f" connwatch_icmp_rtt_max_seconds "target=\"${targets[$i]}\"") || return 1
        awk -v a="$mn" -v b="$mx" -v d="${delays[$i]}" \
            'BEGIN { exit !(a * 1000 >= d - 5 && b * 1000 <= d + 7) }' || return 1
    done
}
start=$(cw_now)
until clean_window; do
    (($(cw_elapsed_ms "$start") < 30000 * CW_SLOW)) ||
        cw_fail "no window without late responder replies in 30 s: $(grep -E 'rtt_(min|max)_seconds\{' "$f" | tr '\n' ' ')"
    cw_note "responder was late in this window; waiting for a clean one"
    sleep 1
    cw_scrape >"$f"
done

check()
{
    local t=$1 d=$2 avg jit mn mx
    avg=$(cw_metric_in "$f" connwatch_icmp_rtt_avg_seconds "target=\"$t\"") || cw_fail "no avg for $t"
    jit=$(cw_metric_in "$f" connwatch_icmp_jitter_seconds "target=\"$t\"") || cw_fail "no jitter for $t"
    mn=$(cw_metric_in "$f" connwatch_icmp_rtt_min_seconds "target=\"$t\"")
    mx=$(cw_metric_in "$f" connwatch_icmp_rtt_max_seconds "target=\"$t\"")
    cw_note "$t: avg $avg jitter $jit min $mn max $mx (delay $d ms +- 5 ms)"
    awk -v a="$avg" -v d="$d" 'BEGIN { x = a * 1000 - d; exit !(x > -2 && x < 2) }' ||
        cw_fail "$t: average RTT $avg s is not within 2 ms of $d ms"
    awk -v j="$jit" 'BEGIN { x = j * 1000 - 10 / 3; exit !(x > -2 && x < 2) }' ||
        cw_fail "$t: jitter $jit s is not within 2 ms of 3.33 ms"
    v=$(cw_metric_in "$f" connwatch_icmp_loss_ratio "target=\"$t\"")
    cw_cmp "$v" "==" 0 || cw_fail "$t: loss $v with a responder answering everything"
}
for i in 0 1 2 3; do
    check "${targets[$i]}" "${delays[$i]}"
done

# histogram: nothing of the 50 ms target at or below 20 ms, about half at
# or below 50 ms; nothing of the 250 ms target at or below 200 ms
le20=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_bucket 'target="10.201.5.1",le="0.02"')
le50=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_bucket 'target="10.201.5.1",le="0.05"')
cnt=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_count 'target="10.201.5.1"')
le200=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_bucket 'target="10.201.5.2",le="0.2"')
awk -v a="$le20" -v b="$le50" -v c="$cnt" -v d="$le200" \
    'BEGIN { exit !(a == 0 && d == 0 && c >= 100 && b >= 0.3 * c && b <= 0.7 * c) }' ||
    cw_fail "histograms: 10.201.5.1 le=0.02 $le20 le=0.05 $le50 count $cnt; 10.201.5.2 le=0.2 $le200"

# histogram_buckets: of the 50 +- 5 ms replies most are at or below 60 ms
# (a loaded machine delays some), none at or below 45 ms but the odd edge
# one, all at or below 300 ms; the bounds are the configured ones
le45=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_bucket 'target="own-buckets",le="0.045"')
le60=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_bucket 'target="own-buckets",le="0.06"')
le300=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_bucket 'target="own-buckets",le="0.3"')
cnt=$(cw_metric_in "$f" connwatch_icmp_rtt_seconds_count 'target="own-buckets"')
nle=$(grep -c '^connwatch_icmp_rtt_seconds_bucket{.*target="own-buckets"' "$f" || true)
awk -v a="$le45" -v b="$le60" -v c="$le300" -v n="$cnt" -v k="$nle" \
    'BEGIN { exit !(k == 4 && n >= 20 && a <= 0.05 * n && b >= 0.5 * n && c == n) }' ||
    cw_fail "histogram_buckets: le=0.045 $le45 le=0.06 $le60 le=0.3 $le300 count $cnt, $nle bucket lines"
if grep -q 'connwatch_icmp_rtt_seconds_[a-z]*{.*target="no-histogram"' "$f"; then
    cw_fail "histogram: false still exports connwatch_icmp_rtt_seconds"
fi
cw_metric_in "$f" connwatch_icmp_rtt_avg_seconds 'target="no-histogram"' >/dev/null ||
    cw_fail "histogram: false lost the avg gauge"
cw_note "own buckets: le=0.045 $le45 le=0.06 $le60 le=0.3 $le300 count $cnt; no-histogram: no histogram"

# every reply to 10.201.5.3 comes twice: counted once, the copy as a duplicate
snt=$(cw_metric_in "$f" connwatch_icmp_packets_sent_total 'target="10.201.5.3"')
rcv=$(cw_metric_in "$f" connwatch_icmp_packets_received_total 'target="10.201.5.3"')
dup=$(cw_metric_in "$f" connwatch_icmp_duplicates_total 'target="10.201.5.3"')
v=$(cw_metric_in "$f" connwatch_icmp_loss_ratio 'target="10.201.5.3"')
cw_note "10.201.5.3 (duplicating): sent $snt received $rcv duplicates $dup loss $v"
awk -v s="$snt" -v r="$rcv" -v d="$dup" -v l="$v" \
    'BEGIN { exit !(r <= s && r >= s - 2 && d >= r - 2 && d <= r && l == 0) }' ||
    cw_fail "duplicates miscounted: sent $snt received $rcv duplicates $dup loss $v"

cw_stop || cw_fail "connwatch exited with status $?"
cw_stop "$rpid" || true
cw_note "responder: $(tr '\n' ' ' <"$rlog")"
cw_pass "avg and jitter within 2 ms at 50 ms and 250 ms, IPv4 and IPv6; histogram_buckets and histogram: false"
