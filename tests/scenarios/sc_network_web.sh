#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# sc_network_web.sh - the operations article's network, TLS and HTTP faults
# end to end (tests/lib/scenario.sh): each is injected for real, `connwatch
# diagnose` must name its layer and cause, the bundled rules (for 2 s) must
# page the right alert with the right layer/reason through a real Prometheus
# and Alertmanager, connwatch-relay must deliver a Chinese DingTalk text
# naming the cause, and after the fault is removed the alert must arrive
# resolved. All faults of this script at once (they have separate targets):
#
#   SYNs dropped by a firewall    nft drops TCP to the port (tcp and http checks)
#   destination unreachable       ip route add unreachable PEER/32
#   congestion                    in a peer namespace: nft drops 15 % of echo
#                                 requests and of a bulk transfer's segments,
#                                 a raw-socket responder answers after 250 +- 100 ms
#   expired certificate           made with faketime, signed by the test CA (a tls
#                                 and an https check: TLS pages, not the probe alert)
#   self-signed certificate
#   certificate for another name  DNS:other.example, signed by the test CA
#   clock skew                    an HTTP server whose Date is 3 hours behind
#   HTTP 502 from a gateway       nginx in front of a stopped upstream
#
# Runs in a network namespace of its own (root), with a peer namespace
# joined by a veth pair.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"
# shellcheck source=tests/lib/peer.sh
. "$CW_SOURCE_ROOT/tests/lib/peer.sh"
# shellcheck source=tests/lib/certs.sh
. "$CW_SOURCE_ROOT/tests/lib/certs.sh"
# shellcheck source=tests/lib/scenario.sh
. "$CW_SOURCE_ROOT/tests/lib/scenario.sh"

[[ -n ${CW_NETNS:-} ]] || cw_fail "needs its own network namespace (root, unshare, ip)"
cw_tmpdir
T=$CW_TMP

# --- the peer: 10.77.0.2 (unreachable by route), 10.77.0.3 (congested) --------------------
cw_peer_netns 10.77.0 scv
in_peer ip addr add 10.77.0.3/24 dev scv1
peer_unr=10.77.0.2
peer_cong=10.77.0.3

# --- certificates -------------------------------------------------------------------------
# Valid for 90 days: the good ones must not page ConnwatchCertExpiringSoon (30 days).
cert_ca "$T" ca 120
cert_sign "$T" good ca 90 IP:127.0.0.1 1
cert_sign "$T" expired ca 2 IP:127.0.0.1 2 '-40d'
cert_sign "$T" other ca 90 DNS:other.example 3
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/self.key" \
    -out "$T/self.pem" -days 90 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null ||
    cw_fail "openssl: cannot make the self-signed certificate"

# --- servers --------------------------------------------------------------------------------
# servers.py DIR NAME=PORT...: plain HTTP on "http" and "syn" ports, HTTPS
# on "tls-*" ports with the certificate named in DIR/NAME.state at each
# handshake (good, expired, self, other), and on the "skew" port a Date
# header 3 hours behind while DIR/skew.state says "skew".
cat >"$T/servers.py" <<'EOF'
import email.utils, http.server, os, ssl, sys, threading, time
d = sys.argv[1]

def state(name):
    try:
        return open(os.path.join(d, name + ".state")).read().split()[0]
    except (OSError, IndexError):
        return "good"

def handler(name):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def date_time_string(self, timestamp=None):
            t = time.time() - (3 * 3600 if name == "skew" and state(name) == "skew" else 0)
            return email.utils.formatdate(t, usegmt=True)
        def do_GET(self):
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    return H

for arg in sys.argv[2:]:
    name, port = arg.split("=")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), handler(name))
    srv.daemon_threads = True
    if name.startswith("tls-"):
        ctxs = {}
        for cert in ("good", "expired", "self", "other"):
            c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            c.load_cert_chain(os.path.join(d, cert + ".pem"), os.path.join(d, cert + ".key"))
            ctxs[cert] = c
        def pick(sock, server_name, ctx, name=name, ctxs=ctxs):
            sock.context = ctxs[state(name)]
        ctxs["good"].sni_callback = pick
        srv.socket = ctxs["good"].wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
EOF
p_syn=$(cw_free_port)
p_exp=$(cw_free_port)
p_self=$(cw_free_port)
p_host=$(cw_free_port)
p_skew=$(cw_free_port)
p_gw=$(cw_free_port)
p_up=$(cw_free_port)
p_unr=$(cw_free_port)
p_sink=$(cw_free_port)
cw_spawn "$T/servers.log" python3 "$T/servers.py" "$T" syn="$p_syn" tls-exp="$p_exp" \
    tls-self="$p_self" tls-host="$p_host" skew="$p_skew"
servers_pid=$CW_LAST_PID
start_upstream()
{
    cw_spawn "$T/upstream.log" python3 "$T/servers.py" "$T" http="$p_up"
    upstream_pid=$CW_LAST_PID
}
start_upstream
# In the peer: a listener for the unreachable target and a sink for the bulk transfer.
cat >"$T/sink.py" <<'EOF'
import socket, sys, threading
def serve(addr, port, drain):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        if drain:
            threading.Thread(target=lambda c=c: [None for _ in iter(lambda: c.recv(65536), b"")], daemon=True).start()
        else:
            c.close()
threading.Thread(target=serve, args=(sys.argv[1], int(sys.argv[2]), False), daemon=True).start()
serve(sys.argv[3], int(sys.argv[4]), True)
EOF
cw_spawn "$T/sink.log" nsenter --net="/proc/$CW_PEER_PID/ns/net" python3 "$T/sink.py" "$peer_unr" "$p_unr" "$peer_cong" "$p_sink"

# nginx in front of the upstream (502 when the upstream is stopped).
mkdir -p "$T/nginx/logs"
cat >"$T/nginx.conf" <<EOF
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    server {
        listen 127.0.0.1:$p_gw;
        location / { proxy_pass http://127.0.0.1:$p_up; proxy_connect_timeout 1s; }
    }
}
EOF
cw_spawn "$T/nginx.out" nginx -p "$T/nginx" -c "$T/nginx.conf" -g 'daemon off;'
for p in "$p_syn" "$p_exp" "$p_self" "$p_host" "$p_skew" "$p_gw" "$p_up"; do
    for ((i = 0; i < 100 * CW_SLOW; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
        sleep 0.1
    done
done
for ((i = 0; i < 100 * CW_SLOW; i++)); do
    (exec 3<>"/dev/tcp/$peer_cong/$p_sink") 2>/dev/null && break
    sleep 0.1
done

# --- connwatch and the stack ---------------------------------------------------------------
u_syn=http://127.0.0.1:$p_syn/
u_skew=http://127.0.0.1:$p_skew/
u_gw=http://127.0.0.1:$p_gw/api
cat >"$T/connwatch.yml" <<EOF
global: {interval: 1s, timeout: 900ms}
host: {enabled: true, interval: 1s}
services:
  - name: invoice
    checks:
      - tcp: {target: "127.0.0.1:$p_syn"}
      - http: {url: "$u_syn"}
      - tcp: {target: "$peer_unr:$p_unr"}
      - icmp: {target: $peer_cong, probe_interval: 100ms, probe_timeout: 1s, window: 5s}
      - tls: {target: "127.0.0.1:$p_exp", ca_file: $T/ca.pem}
      - http: {url: "https://127.0.0.1:$p_exp/", ca_file: $T/ca.pem}
      - tls: {target: "127.0.0.1:$p_self", ca_file: $T/ca.pem}
      - tls: {target: "127.0.0.1:$p_host", ca_file: $T/ca.pem}
      - http: {url: "$u_skew"}
      - http: {url: "$u_gw"}
EOF
sc_stack "$T/connwatch.yml"
sc_wait_query 30 "the checks run" 'count(connwatch_check_success{service="invoice"} == 1) >= 10'
sc_wait_query 30 "the host check runs" 'rate(connwatch_host_tcp_segments_sent_total[20s]) > 0'

sc_expect syn "SYNs dropped by a firewall (nft; tcp check)" ConnwatchNetworkCheckFailing \
    "layer=network,reason=timeout,check=tcp,severity=critical" "127.0.0.1:$p_syn" "网络层|连接超时（可能是防火墙丢弃 SYN）"
sc_expect syn-http "SYNs dropped by a firewall (http check)" ConnwatchNetworkCheckFailing \
    "layer=network,reason=timeout,check=http,severity=critical" "$u_syn" "网络层|连接超时"
sc_expect unreach "destination unreachable (ip route add unreachable)" ConnwatchNetworkCheckFailing \
    "layer=network,reason=unreachable,check=tcp,severity=critical" "$peer_unr:$p_unr" "网络层|目标不可达"
sc_expect loss "congestion: 15 % loss (nft numgen)" ConnwatchIcmpPacketLoss \
    "layer=network,severity=warning" "$peer_cong" "网络层|丢包率"
sc_expect rtt "congestion: RTT +250 ± 100 ms (delaying responder)" ConnwatchIcmpLatencyHigh \
    "layer=network,severity=warning" "$peer_cong" "网络层|往返时延"
sc_expect retrans "congestion: TCP retransmits (bulk transfer, 15 % of segments dropped)" ConnwatchTcpRetransmitsHigh \
    "layer=network,severity=warning" "" "网络层|重传"
sc_expect expired "expired certificate" ConnwatchCertExpired \
    "layer=tls,reason=cert_expired,severity=critical" "127.0.0.1:$p_exp" "证书已过期"
sc_expect expired-http "expired certificate (https check)" ConnwatchCertExpired \
    "layer=tls,reason=cert_expired,severity=critical" "https://127.0.0.1:$p_exp/" "证书已过期"
sc_expect self "self-signed certificate" ConnwatchCertVerifyFailed \
    "layer=tls,reason=cert_untrusted,severity=critical" "127.0.0.1:$p_self" "证书不受信任（自签名或未知 CA）"
sc_expect host "certificate for another host name" ConnwatchCertVerifyFailed \
    "layer=tls,reason=cert_hostname,severity=critical" "127.0.0.1:$p_host" "证书与主机名不符"
sc_expect skew "clock skew: Date 3 h behind" ConnwatchClockSkew \
    "layer=tls,severity=warning" "$u_skew" "时钟"
sc_expect 502 "HTTP 502 from a gateway (nginx, upstream stopped)" ConnwatchHttp5xx \
    "layer=http,reason=http_status,severity=critical" "$u_gw" "应用层 (HTTP)|HTTP 状态码异常"
ids=(syn syn-http unreach loss rtt retrans expired expired-http self host skew 502)

# --- inject -----------------------------------------------------------------------------
nft -f - <<EOF || cw_fail "cannot install the firewall drop"
table inet scfw {
    chain inp {
        type filter hook input priority 0; policy accept;
        tcp dport $p_syn drop
    }
}
EOF
sc_injected syn syn-http
ip route add unreachable "$peer_unr/32"
sc_injected unreach
in_peer nft -f - <<EOF || cw_fail "cannot install the loss rules in the peer"
table inet sccong {
    chain inp {
        type filter hook input priority 0; policy accept;
        ip daddr $peer_cong icmp type echo-request numgen random mod 100 < 15 drop
        ip daddr $peer_cong tcp dport $p_sink numgen random mod 100 < 15 drop
    }
}
EOF
# The responder first, then the kernel's replies off (no echo unanswered between).
cw_spawn "$T/responder.log" nsenter --net="/proc/$CW_PEER_PID/ns/net" python3 \
    "$CW_SOURCE_ROOT/tests/integration/icmp_responder.py" 13 "$peer_cong=250:100"
responder_pid=$CW_LAST_PID
for ((i = 0; i < 100 * CW_SLOW; i++)); do
    grep -q '^ready' "$T/responder.log" && break
    kill -0 "$responder_pid" 2>/dev/null || cw_fail "icmp_responder.py died: $(cat "$T/responder.log")"
    sleep 0.05
done
in_peer sysctl -qw net.ipv4.icmp_echo_ignore_all=1
cat >"$T/bulk.py" <<'EOF'
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buf = b"x" * 65536
while True:
    s.sendall(buf)
EOF
cw_spawn "$T/bulk.log" python3 "$T/bulk.py" "$peer_cong" "$p_sink"
bulk_pid=$CW_LAST_PID
sc_injected loss rtt retrans
echo expired >"$T/tls-exp.state"
echo self >"$T/tls-self.state"
echo other >"$T/tls-host.state"
echo skew >"$T/skew.state"
sc_injected expired expired-http self host skew
cw_stop "$upstream_pid" || true
sc_injected 502
cw_note "faults injected: ${ids[*]}"

# --- diagnose, while the alerts go their way ------------------------------------------------
sc_diag syn broken/network/timeout "127.0.0.1:$p_syn" --timeout 2s --no-host --no-icmp
sc_diag unreach broken/network/unreachable "$peer_unr:$p_unr" --no-host --no-icmp
sc_diag loss degraded/network/ "$peer_cong:$p_sink" --no-host
# The echoes' round trip is measured, not counted as lost (diagnose's probe
# timeout was its 200 ms interval: 250 ms replies read as 80 % loss).
grep -Eq '延迟 [2-4][0-9]{2}\.[0-9] ms' "$T/diag.loss.json" ||
    cw_fail "congestion: diagnose shows no RTT of 200-499 ms: $(cat "$T/diag.loss.json")"
sc_diag expired broken/tls/cert_expired "https://127.0.0.1:$p_exp/" --ca-file "$T/ca.pem" --no-host --no-icmp
sc_diag self broken/tls/cert_untrusted "https://127.0.0.1:$p_self/" --ca-file "$T/ca.pem" --no-host --no-icmp
sc_diag host broken/tls/cert_hostname "https://127.0.0.1:$p_host/" --ca-file "$T/ca.pem" --no-host --no-icmp
sc_diag skew degraded/tls/ "$u_skew" --no-host --no-icmp
sc_diag 502 broken/http/http_status "$u_gw" --no-host --no-icmp

sc_wait firing 90 "${ids[@]}"

# --- remove -------------------------------------------------------------------------------
nft delete table inet scfw
sc_removed syn syn-http
ip route del unreachable "$peer_unr/32"
sc_removed unreach
cw_stop "$bulk_pid" || true
cw_stop "$responder_pid" || true
in_peer sysctl -qw net.ipv4.icmp_echo_ignore_all=0
in_peer nft delete table inet sccong
sc_removed loss rtt retrans
rm -f "$T/tls-exp.state" "$T/tls-self.state" "$T/tls-host.state" "$T/skew.state"
sc_removed expired expired-http self host skew
start_upstream
sc_removed 502

sc_wait resolved 90 "${ids[@]}"
sc_table
sc_stop_stack
kill -0 "$servers_pid" 2>/dev/null || cw_fail "the test servers died"
