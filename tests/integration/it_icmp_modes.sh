#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_icmp_modes.sh - the icmp engine's two socket modes and the failure
# reasons in each. In the test's own namespace, net.ipv4.ping_group_range
# starts as "1 0" (no group may open ICMP datagram sockets), so connwatch as
# root must log ip4=raw ip6=raw; with the range opened to every group it
# must log ip4=unprivileged ip6=unprivileged. In both modes: 127.0.0.1, ::1
# and a peer namespace address answer; a peer that routes 10.203.0.0/24 and
# fd00:203::/64 to "unreachable" sends ICMP errors back (raw: parsed from
# the socket; unprivileged: from the error queue) -> reason unreachable;
# a local unreachable route -> unreachable; a name that does not resolve ->
# dns. Last, as user nobody without capabilities and with the range closed,
# no ICMP socket can be opened: the log must say so with the hint, and the
# check must fail with reason internal while the daemon keeps serving.
# /probe?check=icmp answers at once in both modes (an RTT from one probe;
# no route as reason unreachable).
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"
# shellcheck source=tests/lib/icmp.sh
. "$CW_SOURCE_ROOT/tests/lib/icmp.sh"
icmp_need_root
cw_tmpdir
icmp_peer_setup

icmp_peer_addr 10.201.6.1 fd00:201::6
icmp_peer sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
icmp_peer ip route add unreachable 10.203.0.0/24
icmp_peer ip -6 route add unreachable fd00:203::/64
ip route add 10.203.0.0/24 via 10.200.0.2
ip -6 route add fd00:203::/64 via fd00:200::2
ip route add unreachable 10.202.0.0/24

cfg=$CW_TMP/connwatch.yml
cat >"$cfg" <<'YML'
global:
  interval: 1s
  timeout: 1s
probe:
  allow:
    - check: icmp
      targets: ["127.0.0.0/8", "10.202.0.0/24"]
      options: {probe_timeout: 300ms}
services:
  - name: m
    checks:
      - icmp: {target: 127.0.0.1, probe_interval: 100ms, probe_timeout: 1s, window: 1s}
      - icmp: {target: "::1", probe_interval: 100ms, probe_timeout: 1s, window: 1s}
      - icmp: {target: 10.201.6.1, probe_interval: 100ms, probe_timeout: 1s, window: 1s}
      - icmp: {target: "fd00:201::6", probe_interval: 100ms, probe_timeout: 1s, window: 1s}
      - icmp: {target: 10.203.0.1, probe_interval: 100ms, probe_timeout: 300ms, window: 1s}
      - icmp: {target: "fd00:203::1", probe_interval: 100ms, probe_timeout: 300ms, window: 1s}
      - icmp: {target: 10.202.0.1, probe_interval: 100ms, window: 1s}
      - icmp: {target: no-such-host.invalid, probe_interval: 100ms}
YML

# expect_reason TARGET REASON: polls until the target fails with REASON.
expect_reason()
{
    local t=$1 r=$2 start
    start=$(cw_now)
    until cw_metric connwatch_check_failure_info "target=\"$t\",reason=\"$r\"" >/dev/null; do
        (($(cw_elapsed_ms "$start") < 10000 * CW_SLOW)) || cw_fail "$t: no failure with reason $r"
        sleep 0.2
    done
}

# run_mode MODE: starts connwatch, checks the log line and every target.
run_mode()
{
    local mode=$1 t v start
    cw_start_connwatch "$cfg"
    grep -q "msg=\"icmp engine started\" ip4=$mode ip6=$mode" "$CW_LOG" ||
        cw_fail "the log does not say ip4=$mode ip6=$mode: $(grep icmp "$CW_LOG")"
    icmp_wait_window 4 10 20
    for t in 127.0.0.1 ::1 10.201.6.1 fd00:201::6; do
        v=$(cw_metric_in "$CW_TMP/scrape.prom" connwatch_check_success "target=\"$t\"")
        [[ $v == 1 ]] || cw_fail "$mode: $t is not a success"
        # Loss accuracy is it_icmp_loss.sh's business; here a reachable target
        # may lose at most one probe of the ten in its window to a starved
        # core (seen at load average 20), not more. The reachable targets
        # wait 1 s for a reply, not the default 100 ms: in the sanitizer
        # builds under two busy loops 2-3 of ten probes to ::1 exceeded
        # 100 ms (not reproduced in 19 runs alone; a send time taken before
        # a preempted sendto() counts the preemption as RTT). The failure
        # message prints the late/sent/received counters to tell late from
        # lost.
        v=$(cw_metric_in "$CW_TMP/scrape.prom" connwatch_icmp_loss_ratio "target=\"$t\"")
        cw_cmp "$v" "<=" 0.1 || cw_fail "$mode: loss $v to $t ($(grep -E \
            "^connwatch_icmp_(late_replies_total|rtt_max_seconds|packets_(sent|received)_total)\{.*target=\"$t\"" \
            "$CW_TMP/scrape.prom" | sed 's/{.*}//' | tr '\n' ' '))"
    done
    expect_reason 10.203.0.1 unreachable
    expect_reason fd00:203::1 unreachable
    expect_reason 10.202.0.1 unreachable
    expect_reason no-such-host.invalid dns
    v=$(cw_metric connwatch_icmp_unreachable_total 'target="10.203.0.1"')
    cw_cmp "$v" ">" 0 || cw_fail "$mode: no ICMP error counted for 10.203.0.1"
    # /probe: one probe now, answered; and one without a route. (Not an ICMP
    # error from the peer: its kernel sends at most one per second and
    # source, net.ipv4.route.error_cost, already spent on 10.203.0.1.)
    curl -fsS "http://$CW_ADDR/probe?check=icmp&target=127.0.0.9" >"$CW_TMP/probe.prom" ||
        cw_fail "$mode: /probe of 127.0.0.9 failed"
    if [[ $(cw_metric_in "$CW_TMP/probe.prom" connwatch_check_success) != 1 ]] ||
        ! cw_metric_in "$CW_TMP/probe.prom" connwatch_icmp_rtt_avg_seconds >/dev/null; then
        cw_fail "$mode: /probe of 127.0.0.9 has no successful RTT: $(cat "$CW_TMP/probe.prom")"
    fi
    curl -fsS "http://$CW_ADDR/probe?check=icmp&target=10.202.0.7" >"$CW_TMP/probe.prom" ||
        cw_fail "$mode: /probe of 10.202.0.7 failed"
    cw_metric_in "$CW_TMP/probe.prom" connwatch_check_failure_info 'reason="unreachable"' >/dev/null ||
        cw_fail "$mode: /probe of 10.202.0.7 is not unreachable: $(grep -v '^#' "$CW_TMP/probe.prom")"
    cw_stop || cw_fail "connwatch exited with status $?"
    cw_pass "$mode mode: replies, ICMP errors, local unreachable and dns"
}

sysctl -qw net.ipv4.ping_group_range="1 0"
run_mode raw
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
run_mode unprivileged

# Neither mode: nobody, no capabilities, range closed.
sysctl -qw net.ipv4.ping_group_range="1 0"
chmod 755 "$CW_TMP"
chmod 644 "$cfg"
cw_require setpriv
CW_WRAPPER="setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all${CW_WRAPPER:+ $CW_WRAPPER}"
cw_start_connwatch "$cfg"
grep -q 'msg="cannot open an icmp socket".*hint=' "$CW_LOG" ||
    cw_fail "no clear error about ICMP sockets in the log"
expect_reason 127.0.0.1 internal
cw_stop || cw_fail "connwatch exited with status $?"
cw_pass "without any ICMP socket: logged with a hint, checks fail with reason internal"
