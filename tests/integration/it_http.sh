#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_http.sh - the http check against real servers on loopback: nginx
# (HTTP/1.1 on one port; HTTP/2 over TLS with a test CA on another), a tiny
# python3 server whose Date header is one hour ahead, and openssl s_server
# with an expired certificate. Proves:
#   200 -> success, status 200, version 1.1, phases reported, expect_body;
#   502 -> http_status; 401 -> auth, basic auth with password_file -> 200;
#   a slow body (nginx limit_rate) -> timeout within the deadline;
#   a redirect loop -> protocol, redirects counted up to the limit;
#   a closed port -> refused;
#   HTTP/2 over TLS with server_name on an IP URL: version 2, verified,
#     leaf expiry = notAfter;
#   expired certificate -> cert_expired with the expiry still reported;
#   clock skew: +3600 s within 1 s.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/certs.sh
. "$CW_SOURCE_ROOT/tests/lib/certs.sh"

cw_require curl openssl faketime python3 nginx
cw_tmpdir
d=$CW_TMP

cert_ca "$d" ca 365
cert_sign "$d" good ca 20 "DNS:localhost" 2001
cert_sign "$d" expired ca 10 "DNS:localhost,IP:127.0.0.1" 2002 -40d
head -c 65536 /dev/zero >"$d/big.bin"
printf 'secret-pw\n' >"$d/pw"
printf 'in\n' >"$d/in.txt"
printf 'wrong\n' >"$d/badpw"
printf 'mon:%s\n' "$(openssl passwd -apr1 secret-pw)" >"$d/htpasswd"

h=$(cw_free_port)
s=$(cw_free_port)
e=$(cw_free_port)
k=$(cw_free_port)
closed=$(cw_free_port)
mkdir -p "$d/nginx/logs"
cat >"$d/nginx.conf" <<CONF
user root;
worker_processes 1;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $d/nginx/body;
    proxy_temp_path $d/nginx/proxy;
    fastcgi_temp_path $d/nginx/fastcgi;
    uwsgi_temp_path $d/nginx/uwsgi;
    scgi_temp_path $d/nginx/scgi;
    server {
        listen 127.0.0.1:$h;
        location = / { return 200 "ok from nginx\n"; }
        location = /bad { return 502; }
        location = /loop { return 302 /loop; }
        location = /slow { alias $d/big.bin; limit_rate 1k; }
        location = /auth { auth_basic "t"; auth_basic_user_file $d/htpasswd; alias $d/in.txt; }
    }
    server {
        listen 127.0.0.1:$s ssl http2;
        ssl_certificate $d/good.pem;
        ssl_certificate_key $d/good.key;
        location = / { return 200 "ok over h2\n"; }
    }
}
CONF
cw_spawn "$d/nginx.out" nginx -p "$d/nginx" -c "$d/nginx.conf" -g 'daemon off;'
tls_server "$d/s_expired.log" "$e" "$d/expired.pem" "$d/expired.key"
cw_spawn "$d/skew.log" python3 -c '
import http.server, sys, time, email.utils
class H(http.server.BaseHTTPRequestHandler):
    def date_time_string(self, timestamp=None):
        return email.utils.formatdate(time.time() + 3600, usegmt=True)
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$k"
for p in "$h" "$s" "$e" "$k"; do
    wait_port "$p"
done

cat >"$d/connwatch.yml" <<YAML
global:
  interval: ${CW_SLOW}s
  timeout: $((800 * CW_SLOW))ms
services:
  - name: w
    checks:
      - http: {url: "http://127.0.0.1:$h/", expect_body: "^ok from", name: ok}
      - http: {url: "http://127.0.0.1:$h/", expect_body: "^nope", name: body_mismatch}
      - http: {url: "http://127.0.0.1:$h/bad", name: bad}
      - http: {url: "http://127.0.0.1:$h/loop", follow_redirects: 3, name: loop}
      - http: {url: "http://127.0.0.1:$h/slow", timeout: $((600 * CW_SLOW))ms, name: slow}
      - http: {url: "http://127.0.0.1:$h/auth", username: mon, password_file: pw, name: auth_ok}
      - http: {url: "http://127.0.0.1:$h/auth", username: mon, password_file: badpw, name: auth_bad}
      - http: {url: "http://127.0.0.1:$closed/", name: refused}
      - http: {url: "https://127.0.0.1:$s/", server_name: localhost, ca_file: ca.pem, name: h2}
      - http: {url: "https://127.0.0.1:$e/", server_name: localhost, ca_file: ca.pem, name: expired}
      - http: {url: "http://127.0.0.1:$k/", name: skew}
YAML

cw_start_connwatch "$d/connwatch.yml"
cw_wait_ready 20
sleep "$CW_SLOW.2" # one more round (under valgrind, CW_SLOW=10, everything is slower)
cw_scrape >"$d/m.txt"

val()
{
    cw_metric_in "$d/m.txt" "$1" "target=\"$2\"" || cw_fail "no $1 for target $2"
}
lval()
{
    awk -v n="$1" -v t="target=\"$2\"" -v m="$3" 'index($0, n "{") == 1 && index($0, t) && index($0, m) { print $NF; exit }' "$d/m.txt"
}
expect_eq()
{
    cw_cmp "$1" == "$2" || cw_fail "$3: got $1, want $2"
}
expect_reason()
{
    expect_eq "$(val connwatch_check_success "$1")" 0 "check_success of $1"
    expect_eq "$(lval connwatch_check_failure_info "$1" "reason=\"$2\"")" 1 "$1: reason $2"
}

expect_eq "$(val connwatch_check_success ok)" 1 "check_success of ok"
expect_eq "$(val connwatch_http_status_code ok)" 200 "status of ok"
expect_eq "$(val connwatch_http_version ok)" 1.1 "version of ok"
expect_eq "$(val connwatch_http_response_bytes ok)" 14 "body size of ok"
for ph in dns connect tls processing transfer; do
    [[ -n $(lval connwatch_http_phase_seconds ok "phase=\"$ph\"") ]] || cw_fail "no phase $ph"
done
cw_cmp "$(lval connwatch_http_phase_seconds ok 'phase="connect"')" '>' 0 || cw_fail "connect phase is 0"
cw_pass "200: success, HTTP/1.1, 14 bytes, five phases"
expect_reason body_mismatch protocol
expect_reason bad http_status
expect_eq "$(val connwatch_http_status_code bad)" 502 "status of bad"
cw_pass "502: http_status"
expect_reason loop protocol
expect_eq "$(val connwatch_http_redirects loop)" 3 "redirects of loop"
cw_pass "redirect loop: protocol after 3 redirects"
expect_reason slow timeout
cw_cmp "$(val connwatch_check_duration_seconds slow)" "<" "$((800 * CW_SLOW))e-3" || cw_fail "slow ran past its 600ms deadline"
cw_pass "slow body: timeout within the deadline"
expect_eq "$(val connwatch_check_success auth_ok)" 1 "basic auth with the right password"
expect_reason auth_bad auth
expect_eq "$(val connwatch_http_status_code auth_bad)" 401 "status of auth_bad"
cw_pass "basic auth: 200 with password_file, 401 -> auth"
expect_reason refused refused
cw_pass "closed port: refused"

expect_eq "$(val connwatch_check_success h2)" 1 "check_success of h2"
expect_eq "$(val connwatch_http_version h2)" 2 "version of h2"
expect_eq "$(val connwatch_tls_verify_success h2)" 1 "verify of h2"
expect_eq "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds h2)" "$(cert_enddate "$d/good.pem")" "leaf expiry of h2"
cw_cmp "$(lval connwatch_http_phase_seconds h2 'phase="tls"')" '>' 0 || cw_fail "tls phase is 0"
cw_pass "HTTP/2 over TLS (nginx): verified, expiry = notAfter"
expect_reason expired cert_expired
expect_eq "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds expired)" "$(cert_enddate "$d/expired.pem")" "leaf expiry of expired"
cw_pass "expired certificate over https: cert_expired, expiry reported"

sk=$(val connwatch_clock_skew_seconds skew)
cw_cmp "$sk" '>' 3599 && cw_cmp "$sk" '<' 3601 || cw_fail "clock skew $sk, want 3600 +- 1"
expect_eq "$(val connwatch_check_success skew)" 1 "check_success of skew"
cw_pass "clock skew: $sk s (server +3600 s)"

cw_stop || cw_fail "connwatch did not exit cleanly"
