#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_probe_redirect.sh - redirects and address-shaped globs do not get a
# /probe around probe.allow. An http rule lists 127.0.0.1:PORT1 only and
# fixes follow_redirects; the allowed server answers 302 to
# http://127.0.0.2:PORT2/, where a listener counts accepted connections: it
# must count none, and the probe fails with reason redirect_refused (also
# for a 302 to a name, one two hops away, and one to ftp://), counted in
# connwatch_probe_redirects_refused_total. A 302 that stays on the allowed
# host still works, also with a fixed server_name (CONNECT_TO). A tcp rule "127.0.0.*:*" admits 127.0.0.3 but answers
# 403 to names shaped like addresses (127.0.0.2.nip.io), before any lookup.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl python3
cw_isolate_netns "$@"
cw_tmpdir
d=$CW_TMP

p1=$(cw_free_port)
p2=$(cw_free_port)
closed=$(cw_free_port)

# One process: the redirecting server on 127.0.0.1:p1 and, on 127.0.0.2:p2,
# a listener that writes the number of connections it accepted to a file.
cw_spawn "$d/servers.log" python3 -c '
import http.server, socket, sys, threading
p1, p2, count_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
moves = {
    "/to-other-address": "http://127.0.0.2:%d/" % p2,
    "/to-name": "http://127.0.0.2.nip.io:%d/" % p2,
    "/two-hops": "/to-other-address",
    "/to-ftp": "ftp://127.0.0.2:%d/" % p2,
    "/to-same-host": "http://127.0.0.1:%d/ok" % p1,
    "/to-localhost": "http://localhost:%d/ok" % p1,
    "/relative": "/ok",
}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path in moves:
            self.send_response(302)
            self.send_header("Location", moves[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *a):
        pass
def count():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.2", p2))
    s.listen(16)
    n = 0
    with open(count_file, "w") as f:
        f.write("0\n")
    while True:
        c, _ = s.accept()
        n += 1
        with open(count_file, "w") as f:
            f.write("%d\n" % n)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        c.close()
threading.Thread(target=count, daemon=True).start()
http.server.ThreadingHTTPServer(("127.0.0.1", p1), H).serve_forever()
' "$p1" "$p2" "$d/accepts"

for ((i = 0; i < 100; i++)); do
    [[ -s $d/accepts ]] && (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null && break
    sleep 0.1
done
[[ -s $d/accepts ]] || cw_fail "the servers did not start: $(cat "$d/servers.log")"
accepts()
{
    tr -d '\n' <"$d/accepts"
}

cfg=$d/connwatch.yml
cat >"$cfg" <<YAML
host: {enabled: false}
probe:
  allow:
    - check: http
      targets: ["127.0.0.1:$p1"]
      timeout: 3s
      options: {follow_redirects: "5"}
    - check: http
      targets: ["localhost:$p1"]
      timeout: 3s
      options: {follow_redirects: "5", server_name: "invoice.example"}
    - check: tcp
      targets: ["127.0.0.*:*"]
      timeout: 2s
YAML
cw_start_connwatch "$cfg" --log.level=debug
cw_wait_ready

probe()
{
    curl -sS --max-time $((10 * CW_SLOW)) -w '\n%{http_code}\n' "http://$CW_ADDR/probe?$1"
}

# A redirect that stays on the allowed host is followed.
for path in to-same-host relative; do
    out=$(probe "check=http&target=http://127.0.0.1:$p1/$path")
    [[ $(tail -n1 <<<"$out") == 200 ]] || cw_fail "/$path: HTTP $(tail -n1 <<<"$out")"
    grep -q '^connwatch_check_success{check="http"} 1$' <<<"$out" || cw_fail "/$path: $out"
    grep -q '^connwatch_http_redirects 1$' <<<"$out" || cw_fail "/$path: not one redirect: $out"
done

# With server_name fixed, the probe goes (CONNECT_TO) to the URL's host, and so
# does a redirect on that name; one elsewhere is still refused.
out=$(probe "check=http&target=http://localhost:$p1/relative")
grep -q '^connwatch_check_success{check="http"} 1$' <<<"$out" || cw_fail "server_name: $out"
grep -q '^connwatch_http_redirects 1$' <<<"$out" || cw_fail "server_name: not one redirect: $out"
out=$(probe "check=http&target=http://localhost:$p1/to-other-address")
grep -q 'reason="redirect_refused"} 1$' <<<"$out" || cw_fail "server_name, off the list: $out"
[[ $(accepts) == 0 ]] || cw_fail "server_name: 127.0.0.2:$p2 accepted $(accepts) connection(s)"
refused=1

# Redirects out of the list: refused before connecting, whatever the way there;
# a name is matched as written, even one that resolves to an allowed address.
paths=(to-other-address two-hops to-ftp to-localhost)
if [[ -n ${CW_NETNS:-} ]]; then
    paths+=(to-name) # the old code resolved it: only where no lookup leaves the namespace
else
    cw_note "not in a network namespace: the redirect to a name is not tried"
fi
for path in "${paths[@]}"; do
    out=$(probe "check=http&target=http://127.0.0.1:$p1/$path")
    [[ $(tail -n1 <<<"$out") == 200 ]] || cw_fail "/$path: HTTP $(tail -n1 <<<"$out")"
    grep -q '^connwatch_check_success{check="http"} 0$' <<<"$out" ||
        cw_fail "/$path: the redirect out of probe.allow succeeded: $out"
    grep -q '^connwatch_check_failure_info{check="http",reason="redirect_refused"} 1$' <<<"$out" ||
        cw_fail "/$path: not failed as redirect_refused: $out"
    [[ $(accepts) == 0 ]] || cw_fail "/$path: 127.0.0.2:$p2 accepted $(accepts) connection(s)"
    refused=$((refused + 1))
done
grep -q "127.0.0.2:$p2 is not allowed by probe.allow" "$CW_LOG" ||
    cw_fail "the log does not name the refused hop: $(grep 'probe' "$CW_LOG" | tail -n5)"
got=$(cw_metric connwatch_probe_redirects_refused_total)
[[ $got == "$refused" ]] || cw_fail "connwatch_probe_redirects_refused_total is $got, not $refused"
cw_note "$refused redirects refused, 0 connections accepted at 127.0.0.2:$p2"
cw_note "$(grep -m1 'is not allowed by probe.allow' "$CW_LOG")"

# Address-shaped globs: addresses yes, names never (refused before resolution).
out=$(probe "check=tcp&target=127.0.0.3:$closed")
[[ $(tail -n1 <<<"$out") == 200 ]] || cw_fail "127.0.0.3 under 127.0.0.*: $out"
grep -q 'reason="refused"} 1$' <<<"$out" || cw_fail "127.0.0.3:$closed is not refused: $out"
for t in "127.0.0.2.nip.io:$p2" "127.0.0.2.example:$p2" "127.0.0.2.:$p2"; do
    out=$(probe "check=tcp&target=$t")
    [[ $(tail -n1 <<<"$out") == 403 ]] || cw_fail "$t under 127.0.0.*: expected 403, got: $out"
done
out=$(probe "check=http&target=http://127.0.0.1.nip.io:$p1/ok")
[[ $(tail -n1 <<<"$out") == 403 ]] || cw_fail "a name under an IP rule: expected 403, got: $out"
[[ $(accepts) == 0 ]] || cw_fail "127.0.0.2:$p2 accepted $(accepts) connection(s)"

cw_stop
cw_pass "redirects and address-shaped globs stay within probe.allow"
