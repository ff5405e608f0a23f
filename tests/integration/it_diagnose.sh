#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_diagnose.sh - `connwatch diagnose` against real faults, in a network
# namespace of the test's own (lo only): a live HTTP server (every layer ok),
# a port nobody listens on (network: refused), a gateway answering 502
# (HTTP), a TLS server whose certificate is for another name (TLS:
# cert_hostname) or self-signed (cert_untrusted), SYNs dropped by nft
# (network: timeout, within the deadline), ICMP echoes dropped by nft while
# TCP works ("filtered", not down), a real redis-server, the checks of a
# service from a configuration file, --json, Chinese by LANG, and the
# usage errors. Each case checks the verdict's layer and cause, the next
# command and the exit code (0 ok, 1 degraded, 2 usage, 3 broken). --no-host
# keeps this machine's own load (a busy CI box is "degraded") out of the
# verdicts; one run checks the host line itself.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_isolate_netns "$@"
[[ -n ${CW_NETNS:-} ]] || cw_skip "needs its own network namespace (root, unshare, ip)"
cw_require curl python3 openssl nft redis-server
cw_tmpdir
bin=$CW_BUILD_ROOT/connwatch
[[ -x $bin ]] || cw_fail "$bin is not built"

# dx ARGS... runs connwatch diagnose; sets rc, out, err and ms (elapsed).
dx()
{
    local start
    start=$(cw_now)
    rc=0
    timeout $((60 * CW_SLOW)) ${CW_WRAPPER:-} "$bin" diagnose "$@" >"$CW_TMP/out" 2>"$CW_TMP/err" </dev/null || rc=$?
    ms=$(cw_elapsed_ms "$start")
    out=$(cat "$CW_TMP/out")
    err=$(cat "$CW_TMP/err")
}
expect()
{
    local what=$1 want_rc=$2
    shift 2
    [[ $rc -eq $want_rc ]] || cw_fail "$what: exit $rc, not $want_rc; stdout:
$out
stderr: $err"
    local pat
    for pat in "$@"; do
        grep -qF -- "$pat" <<<"$out" || cw_fail "$what: no \"$pat\" in:
$out"
    done
}

live=$(cw_free_port)
dead=$(cw_free_port)
bad=$(cw_free_port)
tlsp=$(cw_free_port)
selfp=$(cw_free_port)
drop=$(cw_free_port)
redisp=$(cw_free_port)
mkdir -p "$CW_TMP/www"
echo ok >"$CW_TMP/www/health"
cw_spawn "$CW_TMP/www.log" python3 -m http.server --bind 127.0.0.1 --directory "$CW_TMP/www" "$live"
cw_spawn "$CW_TMP/bad.log" python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(502)
        self.send_header("Content-Length", "11")
        self.end_headers()
        self.wfile.write(b"Bad Gateway")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$bad"
# A certificate for other.example, its own CA; and a self-signed one for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=other.example \
    -addext subjectAltName=DNS:other.example -addext basicConstraints=critical,CA:TRUE \
    -keyout "$CW_TMP/other.key" -out "$CW_TMP/other.pem" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$CW_TMP/self.key" -out "$CW_TMP/self.pem" 2>/dev/null
cw_spawn "$CW_TMP/tls.log" openssl s_server -quiet -www -accept "127.0.0.1:$tlsp" \
    -cert "$CW_TMP/other.pem" -key "$CW_TMP/other.key"
cw_spawn "$CW_TMP/self.log" openssl s_server -quiet -www -accept "127.0.0.1:$selfp" \
    -cert "$CW_TMP/self.pem" -key "$CW_TMP/self.key"
cw_spawn "$CW_TMP/redis.log" redis-server --port "$redisp" --bind 127.0.0.1 --save '' --appendonly no
for p in "$live" "$bad" "$tlsp" "$selfp" "$redisp"; do
    for ((i = 0; i < 100 * CW_SLOW; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
        sleep 0.1
    done
done

# --- every layer ok ------------------------------------------------------------------
dx "http://127.0.0.1:$live/health" --no-host --lang en
expect "live http" 0 "verdict: every layer is ok"
for k in icmp tcp http; do
    grep -Eq "^  network +$k +ok|^  http +$k +ok" <<<"$out" || cw_fail "live http: no ok line for $k in:
$out"
done
grep -q 'status 200' <<<"$out" || cw_fail "live http: no status figure in: $out"
cw_pass "live HTTP server: icmp, tcp, http ok, exit 0 ($ms ms)"

# The host line (this machine's figures) is there unless --no-host.
dx "http://127.0.0.1:$live/health" --lang en
[[ $rc -eq 0 || $rc -eq 1 ]] || cw_fail "with the host: exit $rc: $out $err"
grep -Eq '^  host +host +(ok|degraded) .*cpu [0-9.]+ %' <<<"$out" || cw_fail "no host line in: $out"
cw_pass "host line: $(grep -E '^  host ' <<<"$out" | tr -s ' ')"

# --- refused, in Chinese by LANG ----------------------------------------------------
LANG=zh_CN.UTF-8 dx "http://127.0.0.1:$dead/api" --no-host
expect "refused (zh)" 3 "结论： 故障 — 网络层 (tcp 127.0.0.1:$dead): 连接被拒绝（端口无服务监听）" \
    "下一步： ss -ltnp 'sport = :$dead'" "未到达"
cw_pass "refused port (LANG=zh_CN.UTF-8): 网络层 连接被拒绝, http 未到达, exit 3"

dx "127.0.0.1:$dead" --no-host --json
[[ $rc -eq 3 ]] || cw_fail "--json refused: exit $rc: $out"
python3 - "$CW_TMP/out" "$dead" <<'PY' || cw_fail "--json: unexpected document: $out"
import json, sys
d = json.load(open(sys.argv[1]))
v = d["verdict"]
assert d["exit_code"] == 3, d
assert (v["state"], v["layer"], v["check"], v["reason"]) == ("broken", "network", "tcp", "refused"), v
assert v["next"].startswith("ss -ltnp 'sport = :%s'" % sys.argv[2]), v
assert [s["check"] for s in d["steps"]] == ["icmp", "tcp"], d["steps"]
assert d["steps"][1]["error"].endswith("Connection refused"), d["steps"][1]
PY
cw_pass "--json: verdict broken/network/tcp/refused, exit_code 3"

# --- HTTP 502 from a gateway --------------------------------------------------------
dx "http://127.0.0.1:$bad/api" --no-host --lang en
expect "502" 3 "verdict: broken — HTTP layer (http http://127.0.0.1:$bad/api): unexpected HTTP status code" \
    "next:    curl -sv -o /dev/null http://127.0.0.1:$bad/api"
grep -q 'status 502' <<<"$out" || cw_fail "502: the status is not among the figures: $out"
cw_pass "HTTP 502: HTTP layer broken, curl -sv as the next step"

# --- TLS: another host name, self-signed --------------------------------------------
dx "https://127.0.0.1:$tlsp/" --server-name invoice.example --ca-file "$CW_TMP/other.pem" --no-host --lang en
expect "cert_hostname" 3 "verdict: broken — TLS layer (tls 127.0.0.1:$tlsp): host name not in the certificate" \
    "-servername invoice.example" "openssl x509 -noout -subject -ext subjectAltName"
cw_pass "certificate for another name: TLS layer, openssl s_client -servername as the next step"

dx "https://127.0.0.1:$selfp/" --no-host --lang en
expect "self-signed" 3 "verdict: broken — TLS layer (tls 127.0.0.1:$selfp): certificate not trusted (self-signed or unknown CA)" \
    "-showcerts"
cw_pass "self-signed certificate: TLS layer, cert_untrusted"

# --- SYNs dropped by a firewall: a timeout within the deadline ----------------------
nft add table inet cwdx
nft add chain inet cwdx in '{ type filter hook input priority 0; }'
nft add rule inet cwdx in tcp dport "$drop" drop
dx "127.0.0.1:$drop" --timeout 2s --no-host --lang en
expect "syn drop" 3 "verdict: broken — network layer (tcp 127.0.0.1:$drop): connection timed out (a firewall may be dropping SYNs)" \
    "next:    nft list ruleset | grep -n -w $drop"
# Bound: the 2 s deadline and the ~1.2 s ICMP pass, with room for a loaded box.
((ms < (2000 + 1200) * CW_SLOW + 2500)) || cw_fail "syn drop: diagnose took $ms ms with a 2 s deadline"
cw_pass "SYNs dropped: network timeout, nft as the next step, $ms ms for a 2 s deadline"

# --- ICMP filtered while TCP works: not down ----------------------------------------
nft add rule inet cwdx in icmp type echo-request drop
dx "http://127.0.0.1:$live/health" --no-host --lang en
expect "icmp filtered" 0 "verdict: every layer is ok" "note:    ICMP filtered: no echo replies while TCP connects (not down)"
grep -Eq '^  network +icmp +filtered' <<<"$out" || cw_fail "icmp filtered: no filtered line in: $out"
nft delete table inet cwdx
cw_pass "ICMP dropped, TCP fine: icmp filtered (not down), exit 0"

# --- a real Redis ---------------------------------------------------------------------
dx "redis://127.0.0.1:$redisp" --no-host --no-icmp --lang en
[[ $rc -eq 0 || $rc -eq 1 ]] || cw_fail "redis: exit $rc: $out $err"
grep -Eq '^  cache +redis +(ok|degraded)' <<<"$out" || cw_fail "redis: no cache line in: $out"
dx "redis://127.0.0.1:$dead" --no-host --no-icmp --lang en
expect "redis refused" 3 "verdict: broken — network layer (tcp 127.0.0.1:$dead)"
cw_pass "redis-server: cache layer answers; a refused port breaks the network layer"

# --- a service of a configuration file ------------------------------------------------
cat >"$CW_TMP/c.yml" <<EOF
services:
  - name: invoice
    checks:
      - tcp: {target: "127.0.0.1:$live"}
      - http: {url: "http://127.0.0.1:$live/health"}
  - name: other
    checks:
      - tcp: {target: "127.0.0.1:$dead"}
EOF
dx --config.file="$CW_TMP/c.yml" --service invoice --no-host --lang en
expect "config invoice" 0 "verdict: every layer is ok"
! grep -q ":$dead" <<<"$out" || cw_fail "config: a check of another service ran: $out"
dx --config.file="$CW_TMP/c.yml" --service other --no-host --lang en
expect "config other" 3 "verdict: broken — network layer (tcp 127.0.0.1:$dead)"
dx --config.file="$CW_TMP/c.yml" --service nosuch --no-host
[[ $rc -eq 2 && $err == *'no checks of a service "nosuch"'* ]] || cw_fail "unknown service: exit $rc: $err"
# A file whose host section is off and whose service has one check.
printf 'host: {enabled: false}\nservices:\n  - name: one\n    checks:\n      - tcp: {target: "127.0.0.1:%s"}\n' "$live" >"$CW_TMP/one.yml"
dx --config.file="$CW_TMP/one.yml" --service one --lang en
expect "config one check, host off" 0 "verdict: every layer is ok"
dx --config.file="$CW_TMP/c.yml" --service nosuch --no-host
[[ $rc -eq 2 && $err == *'no checks of a service "nosuch"'* ]] || cw_fail "unknown service: exit $rc: $err"
cw_pass "--config.file --service: runs that service's checks only"

# --- usage ------------------------------------------------------------------------------
dx
[[ $rc -eq 2 ]] || cw_fail "no target: exit $rc"
dx 127.0.0.1:1 --kind ftp
[[ $rc -eq 2 && $err == *'--kind: "ftp"'* ]] || cw_fail "--kind ftp: exit $rc: $err"
dx ftp://127.0.0.1/
[[ $rc -eq 2 && $err == *scheme* ]] || cw_fail "ftp://: exit $rc: $err"
dx 127.0.0.1:1 --lang fr
[[ $rc -eq 2 ]] || cw_fail "--lang fr: exit $rc"
dx 127.0.0.1:1 --timeout 5x
[[ $rc -eq 2 && $err == *'--timeout: "5x" is not a duration'* ]] || cw_fail "--timeout 5x: exit $rc: $err"
dx 127.0.0.1:1 --timeout '1s}, x: {'
[[ $rc -eq 2 && $err == *'--timeout'* ]] || cw_fail "--timeout with YAML in it: exit $rc: $err"
dx --config.file=/nonexistent.yml --service x
[[ $rc -eq 2 && $err == */nonexistent.yml* ]] || cw_fail "missing file: exit $rc: $err"
dx 127.0.0.1:1 --bogus
[[ $rc -eq 2 && $err == *'"--bogus"'* ]] || cw_fail "--bogus: exit $rc: $err"
dx --help
[[ $rc -eq 0 && $out == *'exit codes: 0 every layer ok, 1 degraded, 2 usage'* ]] || cw_fail "--help: exit $rc"
cw_pass "usage errors exit 2 with the reason; --help exits 0"
