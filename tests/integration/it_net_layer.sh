#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_net_layer.sh - every kind resolves and connects through one network
# layer (collectors/netconn.c) and classifies socket errors with one table
# (exporter/core/err.c):
#   silent resolver  the system resolver never answers (a UDP socket on
#                    127.0.0.1:53 that swallows queries, made the resolver
#                    of connwatch's own mount namespace): redis, icmp and
#                    mysql checks of a name end within their deadline with
#                    reason dns, skip no run and pile up no lookups;
#   firewall         the same port of a peer namespace rejected by nft
#                    ("reject with icmp type admin-prohibited"), dropped by
#                    the peer, and rejected the same way by this namespace's
#                    own output chain: tcp, tls, http, mysql and redis checks
#                    of each port read the same reason (unreachable, timeout,
#                    unreachable) and count no internal failure, and a port
#                    without a rule connects.
# Runs in network namespaces of its own (cw_isolate_netns, plus a peer held
# by a sleep process the test started); nothing leaves them. Needs root, ip,
# nft, nsenter, unshare, mount and python3 (else skip).
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

[[ $(id -u) -eq 0 ]] || cw_skip "needs root for network namespaces"
cw_require curl ip nft nsenter unshare mount python3
cw_isolate_netns "$@"
[[ -n ${CW_NETNS:-} ]] || cw_skip "cannot create a network namespace"
cw_tmpdir

m()
{
    cw_metric_in "$CW_TMP/m.txt" "$@" || cw_fail "no series $1{$2}"
}
# reason_of SELECTOR prints the reason whose failure_info is 1 ("" if none).
reason_of()
{
    grep -F 'connwatch_check_failure_info{' "$CW_TMP/m.txt" | grep -F "$1" |
        sed -n 's/.*reason="\([a-z_]*\)".* 1$/\1/p' | head -n1
}
# wait_failing SECONDS SELECTOR... scrapes until every selector has a
# failure reason.
wait_failing()
{
    local secs=$1 start sel ok
    shift
    start=$(cw_now)
    while :; do
        cw_scrape >"$CW_TMP/m.txt"
        ok=1
        for sel in "$@"; do
            [[ -n $(reason_of "$sel") ]] || ok=0
        done
        ((ok)) && return 0
        (($(cw_elapsed_ms "$start") < secs * 1000 * CW_SLOW)) ||
            cw_fail "not every check failed within $((secs * CW_SLOW)) s: $(grep failure_info "$CW_TMP/m.txt" | grep ' 1$')"
        sleep 0.2
    done
}

# --- a system resolver that never answers ------------------------------------------------------
cat >"$CW_TMP/swallow.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(sys.argv[1], "w").close()
while True:
    s.recvfrom(4096)
EOF
cw_spawn "$CW_TMP/swallow.log" python3 "$CW_TMP/swallow.py" "$CW_TMP/swallow.ready"
for ((i = 0; i < 200; i++)); do
    [[ -e $CW_TMP/swallow.ready ]] && break
    sleep 0.05
done
[[ -e $CW_TMP/swallow.ready ]] || cw_fail "the silent resolver did not start"
printf 'nameserver 127.0.0.1\n' >"$CW_TMP/resolv.conf"
printf '%s\n' "mount --bind '$CW_TMP/resolv.conf' /etc/resolv.conf || exit 1" 'exec "$@"' \
    >"$CW_TMP/wrap.sh"
timeout=1
cat >"$CW_TMP/silent.yml" <<EOF
global: {interval: 1500ms, timeout: ${timeout}s}
host: {enabled: false}
services:
  - name: silent
    checks:
      - redis: {address: "app.example.net:6379"}
      - icmp: {target: app.example.net}
      - mysql: {address: "app.example.net:3306", user: monitor}
EOF
saved_wrapper=$CW_WRAPPER
CW_WRAPPER="unshare --mount --propagation private -- bash $CW_TMP/wrap.sh $CW_WRAPPER"
cw_start_connwatch "$CW_TMP/silent.yml"
CW_WRAPPER=$saved_wrapper
cw_wait_ready 20
limit=$(awk -v t="$timeout" -v s="$CW_SLOW" 'BEGIN { print t + 0.25 * s }')
# silent_runs WHEN checks the last run of each kind: reason dns, ended
# within the timeout, no run skipped (a run that outlived its deadline
# would have held its worker and made the next ones skip).
silent_runs()
{
    local kind sel r d
    for kind in redis icmp mysql; do
        sel="check=\"$kind\",service=\"silent\""
        r=$(reason_of "$sel")
        [[ $r == dns ]] || cw_fail "$kind ($1): reason '$r' with a silent resolver, want dns"
        d=$(m connwatch_check_duration_seconds "$sel")
        cw_cmp "$d" '<=' "$limit" ||
            cw_fail "$kind ($1): run took $d s with a silent resolver (timeout $timeout s)"
        [[ $(m connwatch_check_runs_skipped_total "$sel") == 0 ]] ||
            cw_fail "$kind ($1): runs were skipped while the resolver was silent"
        cw_pass "$kind ($1): dns after $d s (timeout $timeout s), no run skipped"
    done
}
# The first runs wait for the resolver until their deadline...
wait_failing 10 'check="redis",service="silent"' 'check="icmp",service="silent"' \
    'check="mysql",service="silent"'
silent_runs "first run"
# Each check now has one lookup left running; the next runs must not add more.
threads0=$(awk '$1 == "Threads:" { print $2 }' "/proc/$CW_PID/status")
# ... the next ones find the first lookups still unanswered and fail at once.
sleep 3.2
threads1=$(awk '$1 == "Threads:" { print $2 }' "/proc/$CW_PID/status")
cw_scrape >"$CW_TMP/m.txt"
silent_runs "later runs"
grep -q 'component=redis msg="connection failing" target=app.example.net:6379 reason=dns err="resolve app.example.net: no answer from the resolver within the deadline" service=silent check=redis' "$CW_LOG" ||
    cw_fail "redis: the resolver timeout is not logged with the check's service: $(grep component=redis "$CW_LOG")"
grep -q 'component=icmp msg="cannot resolve target" target=app.example.net error=".*" service=silent check=icmp' "$CW_LOG" ||
    cw_fail "icmp: the resolver failure is not logged with the check's service: $(grep component=icmp "$CW_LOG")"
((threads1 <= threads0 + 2)) || cw_fail "threads grew from $threads0 to $threads1: lookups pile up"
cw_pass "threads $threads0 -> $threads1 while the resolver is silent"
cw_stop || cw_fail "connwatch exited with status $?"

# --- the same firewall rule, the same reason on every kind --------------------------------------
# shellcheck source=tests/lib/peer.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/peer.sh"
cw_peer_netns 10.78.0 cwn

p_open=18501
p_reject=18502
p_drop=18503
p_out=18504
in_peer nft -f - <<EOF
table inet cwtest {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport $p_reject reject with icmp type admin-prohibited
        tcp dport $p_drop drop
    }
}
EOF
nft -f - <<EOF
table inet cwlocal {
    chain output {
        type filter hook output priority 0; policy accept;
        ip daddr 10.78.0.2 tcp dport $p_out reject with icmp type admin-prohibited
    }
}
EOF
# A listener on every port: without its rule, each port would connect.
cat >"$CW_TMP/listen.py" <<'EOF'
import socket, sys, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.78.0.2", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
threading.Event().wait()
EOF
cw_spawn "$CW_TMP/listen.log" nsenter --net="/proc/$CW_PEER_PID/ns/net" \
    python3 "$CW_TMP/listen.py" "$p_open" "$p_reject" "$p_drop" "$p_out"
for ((i = 0; i < 200; i++)); do
    (exec 3<>"/dev/tcp/10.78.0.2/$p_open") 2>/dev/null && break
    sleep 0.05
done

{
    printf '%s\n' 'global: {interval: 1s, timeout: 800ms}' 'host: {enabled: false}' 'services:' \
        '  - name: open' '    checks:' "      - tcp: {target: \"10.78.0.2:$p_open\"}"
    for pair in "reject $p_reject" "drop $p_drop" "outreject $p_out"; do
        read -r svc port <<<"$pair"
        printf '%s\n' "  - name: $svc" '    checks:' \
            "      - tcp: {target: \"10.78.0.2:$port\"}" \
            "      - tls: {target: \"10.78.0.2:$port\"}" \
            "      - http: {url: \"http://10.78.0.2:$port/\"}" \
            "      - mysql: {address: \"10.78.0.2:$port\", user: monitor}" \
            "      - redis: {address: \"10.78.0.2:$port\"}"
    done
} >"$CW_TMP/fw.yml"
cw_start_connwatch "$CW_TMP/fw.yml"
cw_wait_ready
sels=()
for svc in reject drop outreject; do
    for kind in tcp tls http mysql redis; do
        sels+=("check=\"$kind\",service=\"$svc\"")
    done
done
wait_failing 15 "${sels[@]}"
[[ $(m connwatch_check_success 'check="tcp",service="open"') == 1 ]] ||
    cw_fail "the port without a rule does not connect"
cw_pass "10.78.0.2:$p_open without a rule: connected"
for pair in "reject unreachable" "drop timeout" "outreject unreachable"; do
    read -r svc want <<<"$pair"
    seen=""
    for kind in tcp tls http mysql redis; do
        sel="check=\"$kind\",service=\"$svc\""
        r=$(reason_of "$sel")
        seen+=" $kind=$r"
        [[ $r == "$want" ]] || cw_fail "$svc: $kind reads '$r', want $want (all:$seen)"
        n=$(grep -F 'connwatch_check_failures_total{' "$CW_TMP/m.txt" | grep -F "$sel" |
            grep -F 'reason="internal"' | awk '{ print $NF }')
        [[ ${n:-0} == 0 ]] || cw_fail "$svc: $kind counted $n internal failures"
    done
    cw_pass "$svc: the same reason on every kind:$seen"
done
cw_stop || cw_fail "connwatch exited with status $?"
cw_pass "it_net_layer"
