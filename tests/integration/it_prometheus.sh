#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_prometheus.sh - a real Prometheus (Debian's) scrapes connwatch: its API
# reports up == 1 and has connwatch_host_tcp_connections. Then connwatch's
# host numbers are compared with the kernel: 200 loopback TCP connections
# held open by a helper raise the established count by >= 200 (400 sockets
# in fact: both ends), and TCP counters read from /proc/net/snmp just before
# and just after a scrape bracket connwatch's, idle and after the kernel
# retransmitted over a lossy path (nftables drops a quarter of the data
# segments, never the SYN).
#
# Runs in a network namespace of its own (as root), so that no other process
# on the machine moves the counts. Only loopback traffic.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"

cw_require curl prometheus python3
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

# --- a real Prometheus scrapes connwatch --------------------------------------------
prom_port=$(cw_free_port)
prom=127.0.0.1:$prom_port
cat >"$CW_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: connwatch
    static_configs:
      - targets: ['$CW_ADDR']
EOF
cw_spawn "$CW_TMP/prometheus.log" prometheus \
    --config.file="$CW_TMP/prometheus.yml" \
    --storage.tsdb.path="$CW_TMP/tsdb" \
    --web.listen-address="$prom" \
    --log.level=warn
prom_pid=$CW_LAST_PID

# prom_query PROMQL prints "VALUE COUNT" for an instant query (VALUE of the
# first element, "none" for an empty vector), or nothing while the API is down.
prom_query()
{
    curl -sS --max-time 5 -G --data-urlencode "query=$1" "http://$prom/api/v1/query" 2>/dev/null |
        python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
if d.get("status") != "success":
    sys.exit(0)
r = d["data"]["result"]
print(r[0]["value"][1] if r else "none", len(r))' || true
}

start=$(cw_now)
up="" nconn=""
while (($(cw_elapsed_ms "$start") < 60000)); do
    if ! kill -0 "$prom_pid" 2>/dev/null; then
        cat "$CW_TMP/prometheus.log" >&2
        cw_fail "prometheus exited"
    fi
    up=$(prom_query 'up{job="connwatch"}')
    if [[ $up == "1 1" ]]; then
        nconn=$(prom_query 'count(connwatch_host_tcp_connections{job="connwatch"})')
        [[ -n $nconn && $nconn != none* ]] && break
    fi
    sleep 0.25
done
if [[ $up != "1 1" ]]; then
    tail -n 20 "$CW_TMP/prometheus.log" >&2
    curl -sS --max-time 5 "http://$prom/api/v1/targets" >&2 || true
    cw_fail "prometheus API: up{job=\"connwatch\"} is \"$up\" after 60 s (want 1)"
fi
[[ -n $nconn && $nconn != none* ]] || cw_fail "prometheus has no connwatch_host_tcp_connections after 60 s"
nstates=${nconn%% *}
[[ $nstates == 11 ]] || cw_fail "prometheus stores $nstates connwatch_host_tcp_connections series, want 11 states"
cw_pass "prometheus up == 1 after $(cw_elapsed_ms "$start") ms, $nstates connwatch_host_tcp_connections series"

# What Prometheus stored is what connwatch serves: the build_info labels.
bi=$(curl -sS --max-time 5 -G --data-urlencode 'query=connwatch_build_info' "http://$prom/api/v1/query" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["metric"].get("version","") if r else "")')
[[ -n $bi ]] || cw_fail "prometheus has no connwatch_build_info"
cw_scrape >"$CW_TMP/s0.txt"
grep -q "^connwatch_build_info{.*version=\"$bi\"" "$CW_TMP/s0.txt" ||
    cw_fail "prometheus stored build_info version \"$bi\", connwatch shows otherwise"

# --- counters against /proc/net/snmp ---------------------------------------------------
# snmp_tcp FIELD prints a Tcp: field of /proc/net/snmp.
snmp_tcp()
{
    awk -v f="$1" '$1 == "Tcp:" { if (!h) { for (i = 2; i <= NF; i++) if ($i == f) c = i; h = 1 } else print $c }' \
        /proc/net/snmp
}
# bracket_counters TAG: the value a scrape shows was read by a host run; wait
# for two new runs after reading "before", so that the run shown started
# after it, and read "after" right after the scrape. Sets retr and out.
bracket_counters()
{
    local rb ob ra oa
    rb=$(snmp_tcp RetransSegs)
    ob=$(snmp_tcp OutSegs)
    cw_wait_fresh_runs 2
    cw_scrape >"$CW_TMP/snmp-$1.txt"
    ra=$(snmp_tcp RetransSegs)
    oa=$(snmp_tcp OutSegs)
    retr=$(cw_metric_in "$CW_TMP/snmp-$1.txt" connwatch_host_tcp_segments_retransmitted_total) ||
        cw_fail "connwatch_host_tcp_segments_retransmitted_total missing"
    out=$(cw_metric_in "$CW_TMP/snmp-$1.txt" connwatch_host_tcp_segments_sent_total) ||
        cw_fail "connwatch_host_tcp_segments_sent_total missing"
    if ! cw_cmp "$rb" "<=" "$retr" || ! cw_cmp "$retr" "<=" "$ra"; then
        cw_fail "$1: retransmitted segments $retr not within RetransSegs [$rb, $ra]"
    fi
    if ! cw_cmp "$ob" "<=" "$out" || ! cw_cmp "$out" "<=" "$oa"; then
        cw_fail "$1: sent segments $out not within OutSegs [$ob, $oa]"
    fi
    cw_pass "$1: RetransSegs $rb <= $retr <= $ra; OutSegs $ob <= $out <= $oa"
}
bracket_counters idle
retr_idle=$retr

memtotal=$(awk '/^MemTotal:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo)
mt=$(cw_metric_in "$CW_TMP/snmp-idle.txt" connwatch_host_memory_total_bytes)
cw_cmp "$mt" == "$memtotal" || cw_fail "connwatch_host_memory_total_bytes $mt, /proc/meminfo says $memtotal"

# Make the kernel retransmit for real: drop a quarter of the segments to one
# port on input (a drop on output is a local error that TCP does not count)
# (nftables, in this test's own namespace only) while a client sends to it.
# SYNs pass: a dropped SYN costs 1, 3, 7 ... s of backoff and once made the
# connect outlast its timeout; a data segment lost 6 times in a row (0.25^6)
# still fits the 60 s the server waits.
if [[ -n ${CW_NETNS:-} ]] && command -v nft >/dev/null 2>&1; then
    lossy_port=$(cw_free_port)
    nft -f - <<EOF || cw_fail "cannot install the nftables loss rule"
table inet cwtest {
    chain inp {
        type filter hook input priority 0; policy accept;
        tcp dport $lossy_port tcp flags & syn == 0 numgen random mod 100 < 25 drop
    }
}
EOF
    cat >"$CW_TMP/lossy.py" <<'EOF'
# 60 small writes over the lossy loopback path; the server reads them all.
import socket, sys, threading, time
port = int(sys.argv[1])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(1)
got = []
def serve():
    s, _ = ls.accept()
    n = 0
    while n < 60 * 512:
        b = s.recv(65536)
        if not b:
            break
        n += len(b)
    got.append(n)
t = threading.Thread(target=serve, daemon=True)
t.start()
c = socket.create_connection(("127.0.0.1", port), timeout=30)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(60):
    c.sendall(b"x" * 512)
    time.sleep(0.01)
t.join(60)
c.close()
sys.exit(0 if got and got[0] == 60 * 512 else 1)
EOF
    timeout 90 python3 "$CW_TMP/lossy.py" "$lossy_port" || cw_fail "the transfer over the lossy path failed"
    nft delete table inet cwtest
    bracket_counters lossy
    cw_cmp "$retr" ">" "$retr_idle" ||
        cw_fail "the kernel retransmitted, but connwatch's counter stayed at $retr"
    cw_pass "retransmissions over a 25 % lossy path: $retr_idle -> $retr"
else
    cw_note "no network namespace or no nft: retransmissions not induced"
fi

# --- 200 loopback connections --------------------------------------------------------------
cw_wait_fresh_runs 2
cw_scrape >"$CW_TMP/s1.txt"
est_before=$(cw_metric_in "$CW_TMP/s1.txt" connwatch_host_tcp_connections 'state="established"')

cat >"$CW_TMP/conns.py" <<'EOF'
# One listener and N clients on loopback; every connection stays open until
# this process is killed. Prints "ready PORT" once all are accepted.
import signal, socket, sys
n = int(sys.argv[1])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(n)
port = ls.getsockname()[1]
clients, servers = [], []
for _ in range(n):
    clients.append(socket.create_connection(("127.0.0.1", port)))
    servers.append(ls.accept()[0])
print("ready", port, flush=True)
signal.pause()
EOF
cw_spawn "$CW_TMP/conns.log" python3 "$CW_TMP/conns.py" 200
conns_pid=$CW_LAST_PID
start=$(cw_now)
until grep -q '^ready' "$CW_TMP/conns.log"; do
    if ! kill -0 "$conns_pid" 2>/dev/null; then
        cat "$CW_TMP/conns.log" >&2
        cw_fail "connection helper died"
    fi
    (($(cw_elapsed_ms "$start") < 20000)) || cw_fail "connection helper not ready in 20 s"
    sleep 0.05
done
helper_port=$(awk '/^ready/ { print $2 }' "$CW_TMP/conns.log")
# The kernel's own list: both ends of the helper's connections are established.
helper_est=$(awk -v p="$(printf '%04X' "$helper_port")" '
    NR > 1 && $4 == "01" && ($2 ~ ":" p "$" || $3 ~ ":" p "$") { n++ } END { print n + 0 }' /proc/net/tcp)
((helper_est == 400)) || cw_fail "/proc/net/tcp shows $helper_est established sockets on port $helper_port, want 400"

cw_wait_fresh_runs 2
cw_scrape >"$CW_TMP/s2.txt"
est_after=$(cw_metric_in "$CW_TMP/s2.txt" connwatch_host_tcp_connections 'state="established"')
rise=$(awk -v a="$est_after" -v b="$est_before" 'BEGIN { print a - b }')
cw_note "established: $est_before before, $est_after with the helper's 200 connections open: rise $rise (400 sockets)"
cw_cmp "$rise" ">=" 200 || cw_fail "established rose by $rise only (from $est_before to $est_after), want >= 200"

# The whole count against the kernel's list (IPv4 and IPv6), taken right away.
if command -v ss >/dev/null 2>&1; then
    ss_est=$(ss -Htan state established | wc -l)
    awk -v a="$est_after" -v b="$ss_est" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 20 || d <= b * 0.05) }' ||
        cw_fail "connwatch counts $est_after established sockets, ss counts $ss_est"
    cw_note "ss counts $ss_est established sockets"
fi
cw_pass "established rose by $rise with 200 loopback connections open"

# ... and falls back once they are closed.
cw_stop "$conns_pid" || true
cw_wait_fresh_runs 2
cw_scrape >"$CW_TMP/s3.txt"
est_closed=$(cw_metric_in "$CW_TMP/s3.txt" connwatch_host_tcp_connections 'state="established"')
fall=$(awk -v a="$est_after" -v b="$est_closed" 'BEGIN { print a - b }')
cw_cmp "$fall" ">=" 200 || cw_fail "established fell by $fall only after closing the 200 connections"
cw_pass "established fell by $fall after closing them"

# Prometheus stored the peak through its own scrapes.
peak=$(prom_query 'max_over_time(connwatch_host_tcp_connections{state="established"}[5m])')
peak=${peak%% *}
cw_cmp "$peak" ">=" "$((est_before + 200))" ||
    cw_fail "prometheus' 5m maximum of established is $peak; connwatch showed $est_after"
cw_pass "prometheus stored the peak: $peak"

cw_stop "$prom_pid" || cw_fail "prometheus did not exit cleanly"
cw_stop || cw_fail "connwatch exited non-zero on SIGTERM"
