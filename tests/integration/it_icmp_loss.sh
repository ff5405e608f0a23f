#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_icmp_loss.sh - loss accuracy of the icmp check. A peer namespace behind
# a veth pair owns 3 x 8 addresses; nft there drops 5 %, 20 % and 50 % of
# the echo requests to each group (numgen random). connwatch probes the 24
# addresses every 10 ms with a 4 s window (400 probes per target, 3,200 per
# group); the mean of each group's connwatch_icmp_loss_ratio must lie within
# 4 binomial standard deviations of the rule (sqrt(p(1-p)/3200): +-1.5 % at
# 5 %, +-2.8 % at 20 %, +-3.5 % at 50 %). A fourth group dropped entirely
# must fail with reason "timeout" and loss 1, and a target behind a local
# unreachable route with reason "unreachable". The counters must agree:
# received <= sent, and received + lost ~ sent.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"
# shellcheck source=tests/lib/icmp.sh
. "$CW_SOURCE_ROOT/tests/lib/icmp.sh"
icmp_need_root
cw_tmpdir
icmp_peer_setup

per=8
groups=(5 20 50 100)
for g in 1 2 3 4; do
    for ((i = 1; i <= per; i++)); do
        icmp_peer_addr "10.201.$g.$i"
    done
done
icmp_peer nft -f - <<'NFT' || cw_fail "nft rules rejected"
table ip cwloss {
    chain input {
        type filter hook input priority 0; policy accept;
        ip daddr 10.201.1.0/24 icmp type echo-request numgen random mod 100 < 5 drop
        ip daddr 10.201.2.0/24 icmp type echo-request numgen random mod 100 < 20 drop
        ip daddr 10.201.3.0/24 icmp type echo-request numgen random mod 100 < 50 drop
        ip daddr 10.201.4.0/24 icmp type echo-request drop
    }
}
NFT
ip route add unreachable 10.202.0.0/24

cfg=$CW_TMP/connwatch.yml
{
    printf 'global:\n  interval: 1s\n  timeout: 1s\nservices:\n  - name: loss\n    checks:\n'
    for g in 1 2 3 4; do
        for ((i = 1; i <= per; i++)); do
            printf '      - icmp: {target: 10.201.%d.%d, probe_interval: 10ms, probe_timeout: 100ms, window: 4s}\n' "$g" "$i"
        done
    done
    printf '      - icmp: {target: 10.202.0.1, probe_interval: 100ms, window: 1s}\n'
} >"$cfg"
cw_start_connwatch "$cfg"
cw_wait_ready 2>/dev/null || true

icmp_wait_window $((4 * per)) 400 20
f=$CW_TMP/scrape.prom
for idx in 0 1 2 3; do
    g=$((idx + 1))
    p=${groups[$idx]}
    read -r mean lo hi < <(awk -v g="10.201.$g." -v p="$p" -v n="$per" '
        /^connwatch_icmp_loss_ratio\{/ && index($0, "target=\"" g) { s += $NF; c++ }
        END {
            q = p / 100; sd = sqrt(q * (1 - q) / (400 * n))
            printf "%.4f %.4f %.4f\n", (c ? s / c : -1), q - 4 * sd, q + 4 * sd }' "$f")
    cw_note "group $g: rule $p %, measured mean loss $mean (accept $lo..$hi)"
    if ! cw_cmp "$mean" ">=" "$lo" || ! cw_cmp "$mean" "<=" "$hi"; then
        cw_fail "loss for the $p % rule is $mean, outside [$lo, $hi]"
    fi
done

# counters: received <= sent for every target
awk '/^connwatch_icmp_packets_sent_total\{/ { split($0, a, "target=\""); split(a[2], b, "\""); s[b[1]] = $NF }
     /^connwatch_icmp_packets_received_total\{/ { split($0, a, "target=\""); split(a[2], b, "\""); r[b[1]] = $NF }
     END { for (t in s) if (r[t] + 0 > s[t] + 0 || (t ~ /^10[.]201[.]/ && s[t] + 0 < 400)) { print "bad counters " t; exit 1 } }' "$f" ||
    cw_fail "inconsistent sent/received counters"

# all dropped: timeout; local unreachable route: unreachable
cw_metric_in "$f" connwatch_check_failure_info 'target="10.201.4.1",reason="timeout"' >/dev/null ||
    cw_fail "10.201.4.1 (all echo requests dropped) is not failing with reason timeout"
v=$(cw_metric_in "$f" connwatch_icmp_loss_ratio 'target="10.201.4.1"')
cw_cmp "$v" "==" 1 || cw_fail "loss for the drop-all group is $v, not 1"
cw_metric_in "$f" connwatch_check_failure_info 'target="10.202.0.1",reason="unreachable"' >/dev/null ||
    cw_fail "10.202.0.1 (unreachable route) is not failing with reason unreachable"
v=$(cw_metric_in "$f" connwatch_check_success 'target="10.201.3.1"')
[[ $v == 1 ]] || cw_fail "50 % loss must still be a success, got $v"

cw_stop || cw_fail "connwatch exited with status $?"
cw_pass "loss ratios within 4 sigma of 5/20/50 %, drop-all is timeout, no route is unreachable"
