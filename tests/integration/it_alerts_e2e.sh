#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_alerts_e2e.sh - the bundled alert rules end to end: a real connwatch
# checks real servers; a real Prometheus (Debian's) evaluates a copy of
# alerts/rules/connwatch.rules.yml whose `for` durations are cut to 2 s and
# keep_firing_for removed (expressions and thresholds untouched) and sends
# to a real Alertmanager, which routes to a webhook recorder (python3) on
# loopback. The test induces one fault per layer at once, asserts that each
# matching alert reaches the recorder with the right labels, removes the
# faults, and asserts that each alert arrives resolved:
#
#   layer     fault                                         alert
#   network   nft drops 50 % of ICMP echo requests          ConnwatchIcmpPacketLoss
#   network   the tcp check's listener is stopped           ConnwatchNetworkCheckFailing
#   http      the HTTPS server answers 502                  ConnwatchHttp5xx, ConnwatchHttpProbeFailing
#   tls       the TLS server swaps in an expired cert       ConnwatchCertExpired
#             (made with faketime), then the good one back
#   database  mariadbd stopped, then started again          ConnwatchMysqlDown
#   cache     redis-server stopped, then started again      ConnwatchRedisDown
#   host      5,020 loopback TCP sockets held open          ConnwatchHostTcpConnectionsHigh
#   connwatch a broken configuration reloaded, then fixed   ConnwatchConfigReloadFailed
#
# Layers whose check kind or server is missing are skipped (and listed).
# Runs in a network namespace of its own (as root); only loopback traffic.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"

cw_require curl prometheus prometheus-alertmanager python3 openssl
python3 -c 'import yaml' 2>/dev/null || cw_skip "python3-yaml is not installed"
[[ -n ${CW_NETNS:-} ]] || cw_skip "needs its own network namespace (root, unshare, ip)"
cw_tmpdir
T=$CW_TMP
bin=$CW_BUILD_ROOT/connwatch

cat >"$T/probe-kinds.yml" <<'EOF'
services:
  - name: probe
    checks:
      - it_alerts_no_such_kind: {}
EOF
known=$("$bin" --config.check --config.file="$T/probe-kinds.yml" 2>&1 || true)
known=$(sed -n 's/.*(known: \([^)]*\)).*/\1/p' <<<"$known" | tr -d ',')
has_kind() { [[ " $known " == *" $1 "* ]]; }
expect=() # "alertname|label=value,...": must fire, then resolve
not_run=()

# --- the rules, with short durations ---------------------------------------------------------
cw_fast_rules "$T/rules.yml"

# --- servers ------------------------------------------------------------------------------
# A python3 helper: HTTPS on one port (502 while the file BAD exists), and
# TLS on another (SIGUSR1 swaps in an expired certificate, SIGUSR2 the good
# one back); and a plain TCP listener, started and stopped by the test.
(
    cd "$T"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 -subj "/CN=it CA" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
    openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1" 2>/dev/null
    openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 20 -extfile san.ext \
        -out srv.pem 2>/dev/null
    if command -v faketime >/dev/null 2>&1; then
        faketime '2020-01-01 00:00:00' openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key \
            -CAcreateserial -days 2 -extfile san.ext -out expired.pem 2>/dev/null
    fi
) || cw_fail "cannot make the test certificates"
cat >"$T/servers.py" <<'EOF'
import http.server, os, signal, ssl, sys, threading, time
d = sys.argv[1]

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 502 if os.path.exists(os.path.join(d, "BAD")) else 200
        body = b"x\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

def serve(cert):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, cert), os.path.join(d, "srv.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1], ctx

web, _ = serve("srv.pem")
ports = [web]
if os.path.exists(os.path.join(d, "expired.pem")):
    # New handshakes use the certificate loaded last.
    tls_port, tls_ctx = serve("srv.pem")
    ports.append(tls_port)
    load = lambda cert: tls_ctx.load_cert_chain(os.path.join(d, cert), os.path.join(d, "srv.key"))
    signal.signal(signal.SIGUSR1, lambda *a: load("expired.pem"))
    signal.signal(signal.SIGUSR2, lambda *a: load("srv.pem"))
print("ready", *ports, flush=True)
# Not signal.pause(): a signal the kernel hands to one of the server threads
# does not wake the main thread out of pause(), and the handler (which runs
# in the main thread) would wait for a signal that never comes; a sleeping
# loop runs it within 0.2 s wherever the signal landed.
while True:
    time.sleep(0.2)
EOF
cw_spawn "$T/servers.log" python3 "$T/servers.py" "$T"
servers_pid=$CW_LAST_PID
for ((i = 0; i < 100; i++)); do
    grep -q '^ready' "$T/servers.log" && break
    kill -0 "$servers_pid" 2>/dev/null || cw_fail "the test servers died: $(cat "$T/servers.log")"
    sleep 0.1
done
read -r _ web_port tls_port <<<"$(grep '^ready' "$T/servers.log")" || cw_fail "test servers not ready"

cat >"$T/listener.py" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
while True:
    c, _ = s.accept()
    c.close()
EOF
tcp_port=$(cw_free_port)
start_listener()
{
    cw_spawn "$T/listener.log" python3 "$T/listener.py" "$tcp_port"
    listener_pid=$CW_LAST_PID
}
start_listener

start_redis()
{
    cw_spawn "$T/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no
    redis_pid=$CW_LAST_PID
}
if has_kind redis && command -v redis-server >/dev/null 2>&1; then
    redis_port=$(cw_free_port)
    start_redis
fi

start_mysql()
{
    cw_spawn "$T/mysql.log" mariadbd --no-defaults --datadir="$T/mysql" --socket="$T/mysql/sock" \
        --port="$mysql_port" --bind-address=127.0.0.1 --user=root --skip-log-bin --innodb-buffer-pool-size=16M
    mysql_pid=$CW_LAST_PID
}
if has_kind mysql && command -v mariadbd >/dev/null 2>&1; then
    mysql_port=$(cw_free_port)
    mariadb-install-db --no-defaults --datadir="$T/mysql" --user=root \
        --auth-root-authentication-method=normal >"$T/mysql-install.log" 2>&1 ||
        cw_fail "mariadb-install-db failed: $(tail -5 "$T/mysql-install.log")"
    start_mysql
fi

# --- connwatch -------------------------------------------------------------------------------
cfg=$T/connwatch.yml
{
    printf 'global: {interval: 1s, timeout: 900ms}\nhost: {enabled: true, interval: 1s}\nservices:\n'
    printf '  - name: shop\n    checks:\n'
    if has_kind icmp; then
        printf '      - icmp: {target: 127.0.0.2, probe_interval: 100ms, window: 5s}\n'
        expect+=("ConnwatchIcmpPacketLoss|service=shop,target=127.0.0.2,severity=warning,layer=network")
    else not_run+=("network/icmp (no icmp kind)"); fi
    if has_kind tcp; then
        printf '      - tcp: {target: "127.0.0.1:%s", name: backend}\n' "$tcp_port"
        expect+=("ConnwatchNetworkCheckFailing|service=shop,target=backend,check=tcp,severity=critical,layer=network")
    else not_run+=("network/tcp (no tcp kind)"); fi
    if has_kind http; then
        printf '      - http: {url: "https://127.0.0.1:%s/", ca_file: %s/ca.pem, name: web}\n' "$web_port" "$T"
        expect+=("ConnwatchHttp5xx|service=shop,target=web,severity=critical,layer=http")
        expect+=("ConnwatchHttpProbeFailing|service=shop,target=web,check=http,severity=critical,layer=http")
    else not_run+=("http (no http kind)"); fi
    if has_kind tls && [[ -n ${tls_port:-} ]]; then
        printf '      - tls: {target: "127.0.0.1:%s", ca_file: %s/ca.pem, name: tls}\n' "$tls_port" "$T"
        expect+=("ConnwatchCertExpired|service=shop,target=tls,severity=critical,layer=tls")
    else not_run+=("tls (no tls kind or no faketime)"); fi
    if [[ -n ${mysql_port:-} ]]; then
        printf '      - mysql: {address: "127.0.0.1:%s", user: root, name: db}\n' "$mysql_port"
        expect+=("ConnwatchMysqlDown|service=shop,target=db,check=mysql,severity=critical,layer=database")
    else not_run+=("database (no mysql kind or mariadbd)"); fi
    if [[ -n ${redis_port:-} ]]; then
        printf '      - redis: {address: "127.0.0.1:%s", name: cache}\n' "$redis_port"
        expect+=("ConnwatchRedisDown|service=shop,target=cache,check=redis,severity=critical,layer=cache")
    else not_run+=("cache (no redis kind or redis-server)"); fi
} >"$cfg"
expect+=("ConnwatchHostTcpConnectionsHigh|severity=warning,layer=host")
expect+=("ConnwatchConfigReloadFailed|severity=warning,layer=connwatch")
cp "$cfg" "$T/connwatch.good.yml"
cw_start_connwatch "$cfg"
cw_wait_ready 30

# --- webhook recorder, Alertmanager, Prometheus ------------------------------------------
cat >"$T/recorder.py" <<'EOF'
# Appends every webhook notification (one JSON document per line) to argv[2].
import http.server, sys
out = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(body.decode().replace("\n", " ") + "\n")
        out.flush()
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
rec_port=$(cw_free_port)
cw_spawn "$T/recorder.log" python3 "$T/recorder.py" "$rec_port" "$T/notifications.jsonl"
am_port=$(cw_free_port)
cat >"$T/am.yml" <<EOF
route:
  receiver: recorder
  group_by: [alertname, service, target, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: recorder
    webhook_configs:
      - url: http://127.0.0.1:$rec_port/hook
        send_resolved: true
EOF
cw_spawn "$T/am.log" prometheus-alertmanager --config.file="$T/am.yml" --storage.path="$T/am-data" \
    --cluster.listen-address= --web.listen-address="127.0.0.1:$am_port" --log.level=warn
am_pid=$CW_LAST_PID
prom=127.0.0.1:$(cw_free_port)
cat >"$T/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: ['$T/rules.yml']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$am_port']
scrape_configs:
  - job_name: connwatch
    static_configs:
      - targets: ['$CW_ADDR']
EOF
cw_spawn "$T/prometheus.log" prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="$prom" --rules.alert.resend-delay=1s --log.level=warn
prom_pid=$CW_LAST_PID

# wait_alerts STATUS SECONDS: every expectation reaches the recorder with
# STATUS (firing or resolved) and its labels, after the line count MARK.
wait_alerts()
{
    python3 - "$T/notifications.jsonl" "$1" "$2" "$mark" "${expect[@]}" <<'EOF'
import json, sys, time
path, status, secs, mark, exps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
want = []
for e in exps:
    name, labels = e.split("|")
    want.append((name, dict(kv.split("=", 1) for kv in labels.split(",") if kv)))
deadline = time.time() + secs
seen = {}
while True:
    try:
        lines = open(path).read().splitlines()[mark:]
    except OSError:
        lines = []
    for line in lines:
        n = json.loads(line)
        for a in n["alerts"]:
            for name, labels in want:
                l = a["labels"]
                if l.get("alertname") == name and a["status"] == status and \
                        all(l.get(k) == v for k, v in labels.items()):
                    seen.setdefault(name, a)
    if len(seen) == len({n for n, _ in want}) or time.time() > deadline:
        break
    time.sleep(0.2)
for name, labels in want:
    if name in seen:
        print("# %s %s: %s" % (status, name, json.dumps(seen[name]["labels"], sort_keys=True)))
missing = [name for name, _ in want if name not in seen]
if missing:
    print("FAIL: not %s within %g s: %s" % (status, secs, ", ".join(missing)))
    for line in lines[-10:]:
        print("  recorded: " + line[:300])
    sys.exit(1)
EOF
}

# Baseline: Prometheus scrapes every configured kind and nothing expected fires.
start=$(cw_now)
until [[ $(curl -sS --max-time 5 -G --data-urlencode 'query=count(up{job="connwatch"} == 1)' \
    "http://$prom/api/v1/query" 2>/dev/null | python3 -c 'import json,sys
r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)' 2>/dev/null) == 1 ]]; do
    kill -0 "$prom_pid" 2>/dev/null || cw_fail "prometheus exited: $(tail -5 "$T/prometheus.log")"
    kill -0 "$am_pid" 2>/dev/null || cw_fail "alertmanager exited: $(tail -5 "$T/am.log")"
    (($(cw_elapsed_ms "$start") < 60000)) || cw_fail "prometheus does not scrape connwatch after 60 s"
    sleep 0.3
done
sleep 5
touch "$T/notifications.jsonl"
mark=0
# No fault alert before the faults.
early=$(python3 -c '
import json, sys
names = set()
for line in open(sys.argv[1]):
    for a in json.loads(line)["alerts"]:
        if a["status"] == "firing":
            names.add(a["labels"]["alertname"])
print(" ".join(sorted(names & set(sys.argv[2:]))))' "$T/notifications.jsonl" \
    ConnwatchIcmpPacketLoss ConnwatchNetworkCheckFailing ConnwatchHttp5xx ConnwatchHttpProbeFailing \
    ConnwatchCertExpired ConnwatchMysqlDown ConnwatchRedisDown ConnwatchHostTcpConnectionsHigh ConnwatchConfigReloadFailed)
[[ -z $early ]] || cw_fail "before any fault, already firing: $early"
cw_pass "baseline: no fault alert before the faults"
mark=$(wc -l <"$T/notifications.jsonl")

# --- faults --------------------------------------------------------------------------------
if has_kind icmp; then
    nft -f - <<'EOF' || cw_fail "cannot install the nftables loss rule"
table inet cwalerts {
    chain inp {
        type filter hook input priority 0; policy accept;
        ip daddr 127.0.0.2 icmp type echo-request numgen random mod 100 < 50 drop
    }
}
EOF
fi
cw_stop "$listener_pid" || true
touch "$T/BAD"
[[ -n ${tls_port:-} ]] && kill -USR1 "$servers_pid"
[[ -n ${mysql_pid:-} ]] && { cw_stop "$mysql_pid" || true; }
[[ -n ${redis_pid:-} ]] && { cw_stop "$redis_pid" || true; }
cat >"$T/conns.py" <<'EOF'
# N loopback connections (2 N established sockets) with SO_LINGER 0, so that
# they vanish without TIME_WAIT when this process is killed.
import resource, signal, socket, struct, sys
n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * n + 100), hard))
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1024)
keep = []
lin = struct.pack("ii", 1, 0)
for _ in range(n):
    c = socket.create_connection(ls.getsockname())
    s, _ = ls.accept()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, lin)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, lin)
    keep += [c, s]
print("ready", flush=True)
signal.pause()
EOF
cw_spawn "$T/conns.log" python3 "$T/conns.py" 2510
conns_pid=$CW_LAST_PID
printf 'global: [this is not a mapping\n' >"$cfg"
curl -sS -o /dev/null -XPOST "http://$CW_ADDR/-/reload" || true
cw_note "faults induced: $(printf '%s ' "${expect[@]%%|*}")"

wait_alerts firing 60 || cw_fail "not every alert fired"
cw_pass "every induced fault's alert reached the webhook with its labels"
mark=$(wc -l <"$T/notifications.jsonl")

# --- repairs -------------------------------------------------------------------------------------
has_kind icmp && nft delete table inet cwalerts
start_listener
rm -f "$T/BAD"
[[ -n ${tls_port:-} ]] && kill -USR2 "$servers_pid"
[[ -n ${mysql_pid:-} ]] && start_mysql
[[ -n ${redis_pid:-} ]] && start_redis
cw_stop "$conns_pid" || true
cp "$T/connwatch.good.yml" "$cfg"
curl -sS -o /dev/null -XPOST "http://$CW_ADDR/-/reload" || cw_fail "reload of the good configuration failed"

wait_alerts resolved 60 || cw_fail "not every alert resolved"
cw_pass "every alert resolved after its fault was removed"
for n in "${not_run[@]}"; do
    cw_note "not exercised: $n"
done

cw_stop "$prom_pid" || cw_fail "prometheus did not exit cleanly"
cw_stop "$am_pid" || true
cw_stop || cw_fail "connwatch exited non-zero on SIGTERM"
