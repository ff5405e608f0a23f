#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_tcp.sh - the tcp check against real sockets and a real network path,
# every failure reason from the kernel that produces it:
#   success      a listener on 127.0.0.1 and one across a veth pair: sane
#                connect time and TCP_INFO rtt;
#   refused      a closed port (the kernel answers RST);
#   timeout      a port whose SYNs the peer namespace drops with nft: the run
#                ends at its deadline (duration <= timeout + margin) and the
#                SYN retransmissions show in connwatch_tcp_retransmits_total;
#   unreachable  a prefix routed "unreachable" (connect fails at once) and a
#                port the peer rejects with ICMP host-unreachable (the error
#                arrives as SO_ERROR);
#   dns          a name that does not resolve (nonexistent.invalid; the test's
#                namespace has no route to any resolver, so nothing leaves it);
# and a fast check keeps its interval while two others time out.
#
# Everything runs in a network namespace of its own (cw_isolate_netns); the
# peer is a second namespace held by a sleep process the test started,
# removed with it. Needs root, ip, nft, nsenter and python3 (else skip).
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

[[ $(id -u) -eq 0 ]] || cw_skip "needs root for network namespaces"
cw_require curl ip nft nsenter unshare python3
cw_isolate_netns "$@"
[[ -n ${CW_NETNS:-} ]] || cw_skip "cannot create a network namespace"
cw_tmpdir

# --- the peer namespace: veth 10.77.0.1 (here) <-> 10.77.0.2 (peer) -------------------
# shellcheck source=tests/lib/peer.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/peer.sh"
cw_peer_netns 10.77.0 cwt
peer=$CW_PEER_PID
# A prefix with no way out: connect() fails at once with EHOSTUNREACH.
ip route add unreachable 10.99.0.0/24

p_local=$(cw_free_port)
p_open=18401
p_drop=18402
p_closed=18403
p_reject=18404
in_peer nft -f - <<EOF
table inet cwtest {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $p_drop drop
        tcp dport $p_reject reject with icmpx type host-unreachable
    }
}
EOF

# Listeners that accept, count and close: one here, one in the peer.
cat >"$CW_TMP/listen.py" <<'EOF'
import os, socket, sys
host, port, count_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(128)
n = 0
while True:
    c, _ = s.accept()
    c.close()
    n += 1
    with open(count_file + ".tmp", "w") as f:
        f.write("%d\n" % n)
    os.replace(count_file + ".tmp", count_file)
EOF
cw_spawn "$CW_TMP/l1.log" python3 "$CW_TMP/listen.py" 127.0.0.1 "$p_local" "$CW_TMP/local.count"
cw_spawn "$CW_TMP/l2.log" nsenter --net="/proc/$peer/ns/net" \
    python3 "$CW_TMP/listen.py" 10.77.0.2 "$p_open" "$CW_TMP/peer.count"
# Wait until both accept (these connections are counted once each).
for ((i = 0; i < 200; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p_local") 2>/dev/null &&
        (exec 3<>"/dev/tcp/10.77.0.2/$p_open") 2>/dev/null && break
    sleep 0.05
done

cat >"$CW_TMP/c.yml" <<EOF
global: {interval: 2s, timeout: 1s}
host: {enabled: false}
services:
  - name: net
    checks:
      - tcp: {target: "127.0.0.1:$p_local", interval: 500ms, timeout: 400ms}
      - tcp: {target: "10.77.0.2:$p_open"}
      - tcp: {target: "10.77.0.2:$p_closed"}
      - tcp: {target: "10.77.0.2:$p_drop", interval: 2s, timeout: 1500ms}
      - tcp: {target: "10.77.0.2:$p_reject"}
      - tcp: {target: "10.99.0.1:80"}
      - tcp: {target: "nonexistent.invalid:80"}
      - tcp: {target: "10.77.0.2:$p_drop", name: drop-short, interval: 1s, timeout: 900ms}
EOF
cw_start_connwatch "$CW_TMP/c.yml"
cw_wait_ready
start_count=$(cat "$CW_TMP/local.count" 2>/dev/null || echo 0)
t0=$(cw_now)
# Two rounds of the 2 s checks, and enough for 1.5 s SYN timeouts to retransmit.
sleep 4.2
end_count=$(cat "$CW_TMP/local.count" 2>/dev/null || echo 0)
elapsed_ms=$(cw_elapsed_ms "$t0")
cw_scrape >"$CW_TMP/m.txt"
m()
{
    cw_metric_in "$CW_TMP/m.txt" "$@" || cw_fail "no series $1{$2}"
}

# --- success ---------------------------------------------------------------------------
for t in "127.0.0.1:$p_local" "10.77.0.2:$p_open"; do
    [[ $(m connwatch_check_success "target=\"$t\"") == 1 ]] || cw_fail "$t: check not successful"
    ct=$(m connwatch_tcp_connect_seconds "target=\"$t\"")
    rtt=$(m connwatch_tcp_rtt_seconds "target=\"$t\"")
    { cw_cmp "$ct" '>' 0 && cw_cmp "$ct" '<' 0.1; } || cw_fail "$t: connect time $ct s not in (0, 0.1)"
    { cw_cmp "$rtt" '>' 0 && cw_cmp "$rtt" '<' 0.1; } || cw_fail "$t: rtt $rtt s not in (0, 0.1)"
    [[ $(m connwatch_tcp_retransmits_total "target=\"$t\"") == 0 ]] ||
        cw_fail "$t: retransmits on a clean path"
    cw_pass "$t: connected in $ct s, rtt $rtt s"
done
[[ -s $CW_TMP/peer.count ]] || cw_fail "the peer listener never accepted a connection"

# --- each failure reason -----------------------------------------------------------------
expect_reason()
{
    local t=$1 reason=$2 n
    [[ $(m connwatch_check_success "target=\"$t\"") == 0 ]] || cw_fail "$t: check did not fail"
    [[ $(m connwatch_check_failure_info "target=\"$t\",reason=\"$reason\"") == 1 ]] ||
        cw_fail "$t: connwatch_check_failure_info{reason=\"$reason\"} is not 1: $(grep "target=\"$t\"" "$CW_TMP/m.txt" | grep failure)"
    n=$(m connwatch_check_failures_total "target=\"$t\",reason=\"$reason\"")
    cw_cmp "$n" '>=' 1 || cw_fail "$t: failures_total{reason=\"$reason\"} is $n"
    for other in refused timeout unreachable dns; do
        [[ $other == "$reason" ]] && continue
        [[ $(m connwatch_check_failures_total "target=\"$t\",reason=\"$other\"") == 0 ]] ||
            cw_fail "$t: also counted as $other"
    done
    cw_pass "$t: $reason ($n failures)"
}
expect_reason "10.77.0.2:$p_closed" refused
expect_reason "10.77.0.2:$p_drop" timeout
expect_reason "drop-short" timeout
expect_reason "10.77.0.2:$p_reject" unreachable
expect_reason "10.99.0.1:80" unreachable
expect_reason "nonexistent.invalid:80" dns
grep -q 'reason=unreachable err="connect to 10.77.0.2 port '"$p_reject"': No route to host"' "$CW_LOG" ||
    cw_fail "the ICMP host-unreachable was not reported as such in the log"
grep -q 'reason=timeout err="connect to 10.77.0.2 port '"$p_drop"': no answer to the SYN' "$CW_LOG" ||
    cw_fail "the timeout detail is not in the log"

# --- timeouts end at the deadline ----------------------------------------------------------
for pair in "10.77.0.2:$p_drop 1.5" "drop-short 0.9"; do
    read -r t limit <<<"$pair"
    d=$(m connwatch_check_duration_seconds "target=\"$t\"")
    margin=$(awk -v s="$CW_SLOW" 'BEGIN { print 0.25 * s }')
    cw_cmp "$d" '>=' "$(awk -v l="$limit" 'BEGIN { print l - 0.05 }')" ||
        cw_fail "$t: run took $d s, before its $limit s deadline"
    cw_cmp "$d" '<=' "$(awk -v l="$limit" -v m="$margin" 'BEGIN { print l + m }')" ||
        cw_fail "$t: run took $d s, past its $limit s deadline"
    cw_pass "$t: timed out after $d s (deadline $limit s)"
done
# With a 1.5 s deadline the SYN is retransmitted once (initial RTO 1 s).
r=$(m connwatch_tcp_retransmits_total "target=\"10.77.0.2:$p_drop\"")
cw_cmp "$r" '>=' 1 || cw_fail "SYN retransmissions not counted (retransmits_total $r)"
cw_pass "SYN retransmits counted: $r"

# --- the fast check kept its pace while the others timed out ---------------------------------
runs=$((end_count - start_count))
want=$(awk -v ms="$elapsed_ms" 'BEGIN { printf "%d\n", ms / 500 * 0.75 }')
((runs >= want)) || cw_fail "fast check: $runs connections in $elapsed_ms ms, expected >= $want"
cw_pass "fast check: $runs connections in $elapsed_ms ms (500 ms interval)"

cw_stop || cw_fail "connwatch exited with status $?"
cw_pass "it_tcp"
