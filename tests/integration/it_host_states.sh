#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_host_states.sh - connwatch_host_tcp_connections{state} is exact: in a
# network namespace of the test's own (only lo), a helper holds IPv4 and IPv6
# loopback sockets in known states (listen, established, close_wait,
# fin_wait2, time_wait, syn_sent behind an nft rule that drops SYNs, and
# syn_recv behind one that drops the handshake's last ACK), and each of the
# eleven states connwatch reports must equal both what the helper made
# (plus connwatch's own listener) and `ss -Htan state S | wc -l` at the same
# moment. Two daemons run side by side, one with connection_states netlink
# (one dump of both families), one with proc. Every request to them comes
# from a client that closes with an RST, so that none leaves a TIME_WAIT
# behind, and the scrapes come after a quiet interval, so that the run being
# read saw no request in flight.
# Needs root (namespace, nft); skipped otherwise. Processes are ended by PID.
set -euo pipefail

export CW_SOURCE_ROOT=${CW_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/lib/common.sh
. "$CW_SOURCE_ROOT/tests/lib/common.sh"
cw_isolate_netns "$@"
[[ -n ${CW_NETNS:-} ]] || cw_skip "needs a network namespace of its own (root)"
cw_require python3 ss nft
cw_tmpdir

sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 2>/dev/null || true
ip -6 addr show dev lo | grep -q '::1' || cw_skip "no ::1 on lo"

synport=$(cw_free_port)
ackport=$(cw_free_port)
# SYNs to synport vanish (the connector stays in SYN_SENT); to ackport the
# client's ACK of the SYN-ACK vanishes (the listener keeps a SYN_RECV request).
nft -f - <<EOF2 || cw_fail "nft rules failed"
table inet cwhost {
  chain input {
    type filter hook input priority 0;
    tcp dport $synport tcp flags syn drop
    tcp dport $ackport tcp flags & (syn | ack | fin | rst) == ack drop
  }
}
EOF2

cat >"$CW_TMP/hold.py" <<'EOF2'
import errno, json, socket, sys, time

synport, ackport = int(sys.argv[1]), int(sys.argv[2])
keep = []
want = {s: 0 for s in ("established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2",
                       "time_wait", "close", "close_wait", "last_ack", "listen", "closing")}

def listener(fam, addr, port=0):
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((addr, port))
    l.listen(64)
    keep.append(l)
    want["listen"] += 1
    return l

def pair(l, fam, addr):
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.connect((addr, l.getsockname()[1]))
    a, _ = l.accept()
    keep.extend((c, a))
    return c, a

for fam, addr, n_est, n_half, n_tw in ((socket.AF_INET, "127.0.0.1", 7, 3, 4),
                                       (socket.AF_INET6, "::1", 5, 2, 3)):
    l = listener(fam, addr)
    listener(fam, addr)  # a second, idle listener
    for _ in range(n_est):
        pair(l, fam, addr)
        want["established"] += 2
    for _ in range(n_half):  # the client half-closes: fin_wait2 / close_wait
        c, a = pair(l, fam, addr)
        c.shutdown(socket.SHUT_WR)
        want["fin_wait2"] += 1
        want["close_wait"] += 1
    for _ in range(n_tw):  # the client closes first: it ends in time_wait
        c, a = pair(l, fam, addr)
        c.shutdown(socket.SHUT_WR)
        a.recv(1)
        a.close()
        time.sleep(0.01)
        c.close()
        keep.remove(c)
        keep.remove(a)
        want["time_wait"] += 1
    for _ in range(2):  # SYNs dropped: syn_sent
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((addr, synport))
        assert err == errno.EINPROGRESS, err
        keep.append(s)
        want["syn_sent"] += 1

# The handshake's last ACK dropped: the client is established, the listener
# holds a request socket (syn_recv), which ss and the kernel's dump report.
la = listener(socket.AF_INET, "127.0.0.1", ackport)
for _ in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", ackport))
    keep.append(s)
    want["established"] += 1
    want["syn_recv"] += 1

time.sleep(0.3)  # FINs acknowledged, TIME_WAITs settled
print(json.dumps(want), flush=True)
time.sleep(3600)  # hold until killed
EOF2

# get.py ADDR PATH: the body of GET PATH, the connection closed with an RST
# (no TIME_WAIT on either side); exit 1 unless the status is 200.
cat >"$CW_TMP/get.py" <<'EOF2'
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)))
s.sendall(b"GET " + sys.argv[2].encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
head, _, body = data.partition(b"\r\n\r\n")
sys.stdout.write(body.decode())
sys.exit(0 if head.split(b" ")[1] == b"200" else 1)
EOF2

ss_name()
{
    case $1 in
    syn_sent) echo syn-sent ;; syn_recv) echo syn-recv ;; fin_wait1) echo fin-wait-1 ;;
    fin_wait2) echo fin-wait-2 ;; time_wait) echo time-wait ;; close) echo closed ;;
    close_wait) echo close-wait ;; last_ack) echo last-ack ;; listen) echo listening ;;
    *) echo "$1" ;;
    esac
}
states="established syn_sent syn_recv fin_wait1 fin_wait2 time_wait close close_wait last_ack listen closing"

declare -A pid addr
for mode in netlink proc; do
    printf 'global: {interval: 500ms, timeout: 500ms}\nhost: {enabled: true, connection_states: %s}\n' \
        "$mode" >"$CW_TMP/$mode.yml"
    cw_start_connwatch "$CW_TMP/$mode.yml"
    pid[$mode]=$CW_PID
    addr[$mode]=$CW_ADDR
    start=$(cw_now)
    until python3 "$CW_TMP/get.py" "$CW_ADDR" /-/ready >/dev/null 2>&1; do
        (($(cw_elapsed_ms "$start") < 20000 * CW_SLOW)) || cw_fail "$mode: not ready within 20 s"
        sleep 0.1
    done
done

cw_spawn "$CW_TMP/hold.out" python3 "$CW_TMP/hold.py" "$synport" "$ackport"
hold_pid=$CW_LAST_PID
start=$(cw_now)
until [[ -s $CW_TMP/hold.out ]]; do
    kill -0 "$hold_pid" 2>/dev/null || cw_fail "the socket holder died: $(cat "$CW_TMP/hold.out")"
    (($(cw_elapsed_ms "$start") < 20000 * CW_SLOW)) || cw_fail "the socket holder did not get ready"
    sleep 0.05
done
want=$(head -n 1 "$CW_TMP/hold.out")

# A quiet interval, so that the last runs saw neither a request nor a change
# in progress; then the states as ss sees them, and the scrapes.
ok=0
for try in 1 2 3; do
    sleep 1.2
    declare -A ssn=()
    for s in $states; do
        ssn[$s]=$(ss -Htan state "$(ss_name "$s")" | wc -l)
    done
    for mode in netlink proc; do
        python3 "$CW_TMP/get.py" "${addr[$mode]}" /metrics >"$CW_TMP/$mode.prom" ||
            cw_fail "$mode: scrape failed"
    done
    bad=""
    for mode in netlink proc; do
        for s in $states; do
            got=$(cw_metric_in "$CW_TMP/$mode.prom" connwatch_host_tcp_connections "state=\"$s\"")
            exp=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$want" "$s")
            [[ $s == listen ]] && exp=$((exp + 2)) # the two daemons' own listeners
            if ! [[ $got == "${ssn[$s]}" && $got == "$exp" ]]; then
                bad+=" $mode $s: connwatch $got, ss ${ssn[$s]}, made $exp;"
            fi
        done
    done
    if [[ -z $bad ]]; then
        ok=1
        break
    fi
    cw_note "try $try:$bad"
done
((ok == 1)) || cw_fail "counts differ:$bad"
line=""
for s in $states; do line+=" $s=${ssn[$s]}"; done
cw_pass "netlink and proc: every state as made and as ss counts it:$line"
