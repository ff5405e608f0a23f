#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_promql.sh - every PromQL expression of the bundled alert rules
# (alerts/rules/*.yml) and Grafana dashboards (alerts/dashboards/*.json) runs
# against a real Prometheus (Debian's) that scrapes a real connwatch, which
# checks real servers this test starts on loopback: an HTTPS server (python3,
# certificates from a test CA made here, one of them expired with faketime),
# mariadbd, redis-server, ICMP and DNS (localhost) and TCP to them, and a
# certificate file; and connwatch-relay when it is built. The check kinds
# come from `connwatch --config.check`: only kinds the binary knows are
# configured. Failing checks are configured on purpose (a closed port, a
# wrong TLS name, an expired certificate, insecure_skip_verify) so that the
# series that exist only while failing are exercised too.
#
# Asserts: Prometheus loads the rule files; every expression evaluates
# without error; every metric selector in them matches at least one series
# when its check kind is configured (so a misspelt metric or label fails);
# every dashboard expression returns at least one series when all its kinds
# are configured. Expressions that could not be exercised (a kind missing,
# a series that exists only in a failure this test does not provoke, the
# relay) are listed.
#
# Runs in a network namespace of its own (as root).
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"

cw_require curl prometheus python3 openssl
python3 -c 'import yaml' 2>/dev/null || cw_skip "python3-yaml is not installed"
cw_tmpdir
src=$CW_SOURCE_ROOT
bin=$CW_BUILD_ROOT/connwatch

# --- which check kinds does this connwatch know? ---------------------------------------
cat >"$CW_TMP/probe-kinds.yml" <<'EOF'
services:
  - name: probe
    checks:
      - it_promql_no_such_kind: {}
EOF
known=$("$bin" --config.check --config.file="$CW_TMP/probe-kinds.yml" 2>&1 || true)
known=$(sed -n 's/.*(known: \([^)]*\)).*/\1/p' <<<"$known" | tr -d ',')
cw_note "check kinds of this connwatch: host ${known:-(none besides host)}"
has_kind()
{
    [[ " $known " == *" $1 "* ]]
}

# --- servers ----------------------------------------------------------------------------
kinds="host"

if has_kind http || has_kind tls || has_kind tls_file; then
    # A test CA, a server certificate for 127.0.0.1, and an expired one.
    (
        cd "$CW_TMP"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
            -subj "/CN=connwatch test CA" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
        openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" 2>/dev/null
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 20 \
            -extfile san.ext -out srv.pem 2>/dev/null
        if command -v faketime >/dev/null 2>&1; then
            faketime '2020-01-01 00:00:00' openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key \
                -CAcreateserial -days 2 -extfile san.ext -out expired.pem 2>/dev/null
        fi
    ) || cw_fail "cannot make the test certificates"
    cat >"$CW_TMP/https.py" <<'EOF'
# HTTPS servers on 127.0.0.1 (ports chosen by the kernel), one per
# CERT:KEY argument; each answers every GET with 200 and a Date header.
# Prints "ready PORT..." once all listen.
import http.server, ssl, sys, threading

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

ports = []
for arg in sys.argv[1:]:
    cert, key = arg.split(":")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    ports.append(srv.server_address[1])
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("ready", *ports, flush=True)
threading.Event().wait()
EOF
    https_args=("$CW_TMP/srv.pem:$CW_TMP/srv.key")
    if [[ -s $CW_TMP/expired.pem ]]; then
        https_args+=("$CW_TMP/expired.pem:$CW_TMP/srv.key")
    fi
    cw_spawn "$CW_TMP/https.log" python3 "$CW_TMP/https.py" "${https_args[@]}"
    https_pid=$CW_LAST_PID
    for ((i = 0; i < 100; i++)); do
        grep -q '^ready' "$CW_TMP/https.log" && break
        kill -0 "$https_pid" 2>/dev/null || cw_fail "the HTTPS server died: $(cat "$CW_TMP/https.log")"
        sleep 0.1
    done
    read -r _ https_port expired_port <<<"$(grep '^ready' "$CW_TMP/https.log")" ||
        cw_fail "the HTTPS server did not start"
fi

if has_kind redis && command -v redis-server >/dev/null 2>&1; then
    redis_port=$(cw_free_port)
    cw_spawn "$CW_TMP/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no --maxmemory 64mb
fi

if has_kind mysql && command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1; then
    mysql_port=$(cw_free_port)
    mariadb-install-db --no-defaults --datadir="$CW_TMP/mysql" --user=root \
        --auth-root-authentication-method=normal >"$CW_TMP/mysql-install.log" 2>&1 ||
        cw_fail "mariadb-install-db failed: $(tail -5 "$CW_TMP/mysql-install.log")"
    cw_spawn "$CW_TMP/mysql.log" mariadbd --no-defaults --datadir="$CW_TMP/mysql" \
        --socket="$CW_TMP/mysql/sock" --port="$mysql_port" --bind-address=127.0.0.1 --user=root \
        --skip-log-bin --innodb-buffer-pool-size=16M
fi

# --- connwatch ----------------------------------------------------------------------------
cfg=$CW_TMP/connwatch.yml
cat >"$cfg" <<'EOF'
global:
  interval: 1s
  timeout: 900ms
host:
  enabled: true
  interval: 1s
services:
EOF
net_checks=""
if has_kind icmp; then
    net_checks+="      - icmp: {target: 127.0.0.1, probe_interval: 200ms, window: 10s}"$'\n'
    kinds+=" icmp"
fi
if has_kind tcp && [[ -n ${https_port:-} ]]; then
    net_checks+="      - tcp: {target: \"127.0.0.1:$https_port\"}"$'\n'
    # A closed port: a failing check, so failure_info exists (reason refused).
    net_checks+="      - tcp: {target: \"127.0.0.1:$(cw_free_port)\", name: closed}"$'\n'
    kinds+=" tcp"
fi
if has_kind dns; then
    net_checks+="      - dns: {name: localhost}"$'\n'
    kinds+=" dns"
fi
if [[ -n ${https_port:-} ]] && has_kind http; then
    net_checks+="      - http: {url: \"https://127.0.0.1:$https_port/\", ca_file: $CW_TMP/ca.pem}"$'\n'
    kinds+=" http"
fi
if [[ -n ${https_port:-} ]] && has_kind tls; then
    net_checks+="      - tls: {target: \"127.0.0.1:$https_port\", ca_file: $CW_TMP/ca.pem}"$'\n'
    # The wrong name: fails with cert_hostname, verify_success 0.
    net_checks+="      - tls: {target: \"127.0.0.1:$https_port\", ca_file: $CW_TMP/ca.pem, server_name: wrong.example, name: wrong-name}"$'\n'
    # Told not to verify: the check passes, verify_success still says 0.
    net_checks+="      - tls: {target: \"127.0.0.1:$https_port\", server_name: wrong.example, insecure_skip_verify: true, name: skip}"$'\n'
    if [[ -n ${expired_port:-} ]]; then
        net_checks+="      - tls: {target: \"127.0.0.1:$expired_port\", ca_file: $CW_TMP/ca.pem, name: expired}"$'\n'
    fi
    kinds+=" tls"
fi
if [[ -n ${https_port:-} ]] && has_kind tls_file; then
    net_checks+="      - tls_file: {path: $CW_TMP/srv.pem}"$'\n'
    kinds+=" tls_file"
fi
if [[ -n $net_checks ]]; then
    printf '  - name: web\n    labels: {env: test}\n    checks:\n%s' "$net_checks" >>"$cfg"
fi
if [[ -n ${mysql_port:-} ]]; then
    printf '  - name: db\n    checks:\n      - mysql: {address: "127.0.0.1:%s", user: root}\n' "$mysql_port" >>"$cfg"
    kinds+=" mysql"
fi
if [[ -n ${redis_port:-} ]]; then
    printf '  - name: cache\n    checks:\n      - redis: {address: "127.0.0.1:%s"}\n' "$redis_port" >>"$cfg"
    kinds+=" redis"
fi
if [[ $(tail -n 1 "$cfg") == "services:" ]]; then
    sed -i '$d' "$cfg"
fi
cw_note "configured kinds: $kinds"
"$bin" --config.check --config.file="$cfg" >"$CW_TMP/check.out" 2>&1 ||
    cw_fail "connwatch rejects the test configuration: $(cat "$CW_TMP/check.out") -- $(cat "$cfg")"
cw_start_connwatch "$cfg"
cw_wait_ready 30

# Redis lookups (hits and misses) while Prometheus scrapes, so that the hit
# ratio has a denominator.
if [[ -n ${redis_port:-} ]]; then
    for ((i = 0; i < 50; i++)); do
        redis-cli -p "$redis_port" SET it_promql_key 1 >/dev/null 2>&1 && break
        sleep 0.1
    done
    cw_spawn "$CW_TMP/redis-cli.log" bash -c "while :; do
        redis-cli -p $redis_port GET it_promql_key; redis-cli -p $redis_port GET it_promql_missing
        sleep 0.2; done"
fi

# connwatch-relay, when built: its queue series feed a meta-alert.
relay_job=""
if [[ -x $CW_BUILD_ROOT/alerts/relay/connwatch-relay ]]; then
    printf 'spool_dir: %s/spool\nreceivers:\n  - name: hook\n    webhook: {url: "http://127.0.0.1:%s/hook"}\n' \
        "$CW_TMP" "$(cw_free_port)" >"$CW_TMP/relay.yml"
    cw_spawn "$CW_TMP/relay.log" "$CW_BUILD_ROOT/alerts/relay/connwatch-relay" --web.listen-address=127.0.0.1:0 "${CW_AS_ROOT[@]}" \
        --config.file="$CW_TMP/relay.yml"
    relay_pid=$CW_LAST_PID
    relay_addr=""
    for ((i = 0; i < 100; i++)); do
        relay_addr=$(sed -n 's/.*msg=listening .*address=\([^ ]*\).*/\1/p' "$CW_TMP/relay.log" | head -n 1)
        [[ -n $relay_addr ]] && break
        kill -0 "$relay_pid" 2>/dev/null || cw_fail "connwatch-relay exited: $(cat "$CW_TMP/relay.log")"
        sleep 0.1
    done
    [[ -n $relay_addr ]] || cw_fail "connwatch-relay does not listen"
    relay_job="  - job_name: connwatch-relay
    static_configs:
      - targets: ['$relay_addr']"
    kinds+=" relay"
fi

# --- Prometheus with the bundled rules ------------------------------------------------------
prom=127.0.0.1:$(cw_free_port)
# An always-firing alert of the bundled naming, so that the dashboards' ALERTS
# queries have something to show.
cat >"$CW_TMP/it.rules.yml" <<'EOF'
groups:
  - name: it-promql
    rules:
      - alert: ConnwatchItPromqlAlwaysFiring
        expr: vector(1)
        labels: {severity: critical, layer: network, service: web}
EOF
rule_files=$(printf "  - '%s'\n" "$src"/alerts/rules/*.yml "$CW_TMP/it.rules.yml")
cat >"$CW_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
$rule_files
scrape_configs:
  - job_name: connwatch
    static_configs:
      - targets: ['$CW_ADDR']
$relay_job
EOF
cw_spawn "$CW_TMP/prometheus.log" prometheus \
    --config.file="$CW_TMP/prometheus.yml" \
    --storage.tsdb.path="$CW_TMP/tsdb" \
    --web.listen-address="$prom" \
    --log.level=warn
prom_pid=$CW_LAST_PID

# prom_value PROMQL prints the first value of an instant query ("" if none).
prom_value()
{
    curl -sS --max-time 5 -G --data-urlencode "query=$1" "http://$prom/api/v1/query" 2>/dev/null |
        python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    pass' || true
}

# Ready when every configured kind has 8 s of samples (mariadbd may take a
# few seconds to accept its first connection).
start=$(cw_now)
want=$(wc -w <<<"${kinds/ relay/}")
while :; do
    kill -0 "$prom_pid" 2>/dev/null || cw_fail "prometheus exited: $(tail -n 20 "$CW_TMP/prometheus.log")"
    got=$(prom_value 'count(count by (check) (count_over_time(connwatch_check_success{job="connwatch"}[30s]) >= 8))')
    [[ ${got:-0} == "$want" ]] && break
    if (($(cw_elapsed_ms "$start") > 60000)); then
        curl -sS --max-time 5 "http://$prom/api/v1/targets" >&2 || true
        cw_fail "after 60 s, $got of $want configured kinds have 8 s of samples in prometheus"
    fi
    sleep 0.5
done
# The rule files loaded (Prometheus logs and skips a bad one).
nrules=$(curl -sS --max-time 5 "http://$prom/api/v1/rules" | python3 -c '
import json, sys
print(sum(len(g["rules"]) for g in json.load(sys.stdin)["data"]["groups"]))')
cw_note "prometheus ready after $(cw_elapsed_ms "$start") ms with $nrules rules"

# --- every expression --------------------------------------------------------------------
cat >"$CW_TMP/exprs.py" <<'EOF'
# Runs every PromQL expression of the rules and dashboards; see the header of
# it_promql.sh for what is asserted. argv: PROM_ADDR SRC_ROOT CONFIGURED_KINDS
import glob, json, os, re, sys, urllib.parse, urllib.request
import yaml

prom, root, kinds = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
ALL_KINDS = ["host", "icmp", "tcp", "dns", "http", "tls", "tls_file", "mysql", "redis"]
PREFIX = [("connwatch_host_", {"host"}), ("connwatch_icmp_", {"icmp"}), ("connwatch_tcp_", {"tcp"}),
          ("connwatch_dns_", {"dns"}), ("connwatch_http_", {"http"}), ("connwatch_clock_skew", {"http"}),
          ("connwatch_tls_", {"http", "tls"}), ("connwatch_cert_file_", {"tls_file"}),
          ("connwatch_mysql_", {"mysql"}), ("connwatch_redis_", {"redis"}), ("connwatch_relay_", {"relay"})]
# Series that exist only in situations this test does not create.
ONLY_WHEN = {}

def query(q):
    url = "http://%s/api/v1/query?%s" % (prom, urllib.parse.urlencode({"query": q}))
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)

def subst(expr):
    expr = re.sub(r"\$\{?__rate_interval\}?", "30s", expr)
    expr = re.sub(r"\$\{?__interval\}?", "1s", expr)
    return re.sub(r"\$\{?(service|target|instance)(:[a-z]+)?\}?", ".*", expr)

def selectors(expr):
    for m in re.finditer(r'(?<![\w:"])(connwatch_[a-z0-9_]+|up|ALERTS)\s*(\{[^}]*\})?', expr):
        yield m.group(1), m.group(2) or ""

def kinds_of(name, matchers):
    """Kinds of which one must be configured for the selector to match."""
    need = None
    for p, ks in PREFIX:
        if name.startswith(p):
            need = set(ks)
    m = re.search(r'check\s*(=~|=)\s*"([^"]*)"', matchers)
    if m:
        rx = m.group(2) if m.group(1) == "=~" else re.escape(m.group(2))
        ck = {k for k in ALL_KINDS if re.fullmatch(rx, k)}
        need = ck if need is None else need & ck
    return need

exprs = []  # (origin, expr, must_return_series)
for f in sorted(glob.glob(os.path.join(root, "alerts/rules/*.yml"))):
    for g in yaml.safe_load(open(f))["groups"]:
        for r in g["rules"]:
            exprs.append(("rule %s/%s" % (r.get("alert") or r.get("record"), r["labels"].get("severity", "")),
                          r["expr"], False))
for f in sorted(glob.glob(os.path.join(root, "alerts/dashboards/*.json"))):
    d = json.load(open(f))
    base = os.path.basename(f)
    for v in d.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q)
        if m:
            exprs.append(("%s variable $%s" % (base, v["name"]), m.group(1), True))
    panels = list(d["panels"])
    for p in panels:
        panels.extend(p.get("panels", []))
        for t in p.get("targets", []):
            if t.get("expr"):
                exprs.append(("%s panel \"%s\" %s" % (base, p["title"], t["refId"]), t["expr"], True))

failures, skipped, ok = [], [], 0
checked_sel = {}
for origin, raw, want_series in exprs:
    expr = subst(raw)
    r = query(expr)
    if r.get("status") != "success":
        failures.append("%s: error %s: %s\n    %s" % (origin, r.get("errorType"), r.get("error"), expr))
        continue
    missing = []
    for name, matchers in selectors(expr):
        if name == "ALERTS":
            continue
        need = kinds_of(name, matchers)
        if name in ONLY_WHEN:
            missing.append("%s (exists only with %s)" % (name, ONLY_WHEN[name]))
            continue
        if need is not None and not (need & kinds):
            missing.append("%s (needs one of: %s)" % (name, ", ".join(sorted(need))))
            continue
        sel = name + matchers
        if name == "connwatch_check_failure_info":
            # The rules join it for the reason of a check that fails; a
            # series exists only while a check of that kind (and reason)
            # fails, so the join is optional. The test keeps one check
            # failing (the closed tcp port): the metric itself must exist.
            sel = name
        if sel not in checked_sel:
            rr = query(sel)
            checked_sel[sel] = len(rr.get("data", {}).get("result", [])) if rr.get("status") == "success" else -1
        if checked_sel[sel] <= 0:
            failures.append("%s: selector %s matches no series although its kind is configured" % (origin, sel))
    if missing:
        skipped.append("%s: %s" % (origin, "; ".join(sorted(set(missing)))))
        continue
    n = len(r["data"]["result"]) if r["data"]["resultType"] in ("vector", "matrix") else 1
    if want_series and n == 0:
        failures.append("%s: no series\n    %s" % (origin, expr))
        continue
    ok += 1

print("# %d expressions, %d selectors: %d fully exercised, %d not exercisable here, %d failures"
      % (len(exprs), len(checked_sel), ok, len(skipped), len(failures)))
for s in skipped:
    print("# not exercised: " + s)
for f in failures:
    print("FAIL: " + f)
sys.exit(1 if failures else 0)
EOF
python3 "$CW_TMP/exprs.py" "$prom" "$src" "$kinds" || cw_fail "PromQL expressions failed (above)"
cw_pass "every rule and dashboard expression evaluates; selectors of configured kinds match series"

# The rules are loaded and evaluated: the test's own always-firing alert is
# in ALERTS, and the failing checks this test configured are pending or
# firing in the bundled rules.
[[ $nrules -ge 30 ]] || cw_fail "prometheus loaded $nrules rules, want the bundled ones"
[[ -n $(prom_value 'ALERTS{alertname="ConnwatchItPromqlAlwaysFiring"}') ]] ||
    cw_fail "no ALERTS series for the always-firing test alert"
if [[ " $kinds " == *" tcp "* ]]; then
    [[ -n $(prom_value 'ALERTS{alertname="ConnwatchNetworkCheckFailing", target="closed"}') ]] ||
        cw_fail "the closed-port tcp check raises no ConnwatchNetworkCheckFailing (pending or firing)"
fi
if [[ " $kinds " == *" tls "* ]]; then
    [[ -n $(prom_value 'ALERTS{alertname="ConnwatchCertVerifyFailed", target="wrong-name"}') ]] ||
        cw_fail "the wrong-name tls check raises no ConnwatchCertVerifyFailed (pending or firing)"
    # insecure_skip_verify: not an alert, although it does not verify.
    [[ -z $(prom_value 'ALERTS{alertname="ConnwatchCertVerifyFailed", target="skip"}') ]] ||
        cw_fail "a tls check with insecure_skip_verify raises ConnwatchCertVerifyFailed"
    [[ $(prom_value 'connwatch_tls_verify_success{target="skip"}') == 0 ]] ||
        cw_fail "the insecure_skip_verify check against the wrong name should report verify_success 0"
    if [[ -n ${expired_port:-} ]]; then
        [[ -n $(prom_value 'ALERTS{alertname="ConnwatchCertExpired", target="expired"}') ]] ||
            cw_fail "the expired certificate raises no ConnwatchCertExpired (pending or firing)"
        [[ -z $(prom_value 'ALERTS{alertname="ConnwatchCertVerifyFailed", target="expired"}') ]] ||
            cw_fail "the expired certificate also raises ConnwatchCertVerifyFailed"
    fi
fi
cw_pass "$nrules rules loaded; failing checks raise their alerts"

cw_stop "$prom_pid" || cw_fail "prometheus did not exit cleanly"
cw_stop || cw_fail "connwatch exited non-zero on SIGTERM"
