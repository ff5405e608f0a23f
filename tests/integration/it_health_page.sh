#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_health_page.sh - the connection health page at "/" in a real browser.
# connwatch watches three services on loopback: "invoice" (a live HTTP
# server: tcp and http checks succeed), "gateway" (a port nobody listens on:
# the tcp check and the http check fail with "refused", which is the network
# layer's, so the http cell reads "not reached") and "slow" (a server that
# accepts and never answers, with a 50 s timeout: pending). Headless
# Chromium (Debian's chromium) loads the page; the test reads the cells'
# states and texts from its DOM, in English (?lang=en) and in Chinese
# (Accept-Language from --accept-lang=zh-CN), and keeps a screenshot as an artefact
# (meson-logs/health-page.png) whose red and green cells it checks. The page
# must answer at once while the slow check waits for its deadline: it is
# served from published results, never from a probe.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl python3 chromium
cw_tmpdir

live=$(cw_free_port)
dead=$(cw_free_port)
hang=$(cw_free_port)
mkdir -p "$CW_TMP/www"
echo ok >"$CW_TMP/www/health"
cw_spawn "$CW_TMP/www.log" python3 -m http.server --bind 127.0.0.1 --directory "$CW_TMP/www" "$live"
# Accepts connections (the kernel's backlog does) and never reads or answers.
cw_spawn "$CW_TMP/hang.log" python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("listening", flush=True)
time.sleep(3600)' "$hang"
for ((i = 0; i < 100 * CW_SLOW; i++)); do
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$live/health" 2>/dev/null &&
        grep -q listening "$CW_TMP/hang.log" && break
    sleep 0.1
done

cat >"$CW_TMP/c.yml" <<EOF
global: {interval: 2s, timeout: 1s}
# The host's own figures depend on the machine (a loaded CI box is "degraded").
host: {enabled: false}
services:
  - name: invoice
    checks:
      - tcp: {target: "127.0.0.1:$live"}
      - http: {url: "http://127.0.0.1:$live/health"}
  - name: gateway
    checks:
      - tcp: {target: "127.0.0.1:$dead"}
      - http: {url: "http://127.0.0.1:$dead/api"}
  - name: slow
    checks:
      - http: {url: "http://127.0.0.1:$hang/", interval: 60s, timeout: 50s}
probe:
  allow:
    - {check: tcp, targets: ["127.0.0.1:*"]}
EOF
# Not /-/ready: it waits for every first result, the slow check's included.
cw_start_connwatch "$CW_TMP/c.yml"

# cells FILE prints "service layer state" for every cell of the services
# table of the page in FILE, then "verdict service text" lines.
cells()
{
    python3 - "$1" <<'PY'
import html.parser, sys

class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.service = None
        self.verdict = None
        self.text = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and a.get("class") == "service":
            self.service = a.get("data-service")
        if tag == "td" and self.service is not None and "data-layer" in a and "cell" in a.get("class", ""):
            print(self.service, a["data-layer"], a["data-state"])
        if tag == "td" and self.service is not None and "verdict" in a.get("class", ""):
            self.verdict = self.service
            self.text = []
    def handle_endtag(self, tag):
        if tag == "td" and self.verdict is not None:
            print("verdict", self.verdict, " ".join("".join(self.text).split()))
            self.verdict = None
        if tag == "tr":
            self.service = None
    def handle_data(self, data):
        if self.verdict is not None:
            self.text.append(data)

P().feed(open(sys.argv[1], encoding="utf-8").read())
PY
}

browser()
{
    # Root needs --no-sandbox; a profile of its own keeps runs apart.
    timeout $((60 * CW_SLOW)) chromium --headless --no-sandbox --disable-gpu \
        --user-data-dir="$CW_TMP/profile" --window-size=1200,700 "$@" 2>>"$CW_TMP/chromium.log"
}

# Wait until the fast checks have a result (the slow one stays pending).
for ((i = 0; i < 100 * CW_SLOW; i++)); do
    curl -fsS --max-time 5 -o "$CW_TMP/page.html" "http://$CW_ADDR/?lang=en" || true
    cells "$CW_TMP/page.html" >"$CW_TMP/cells" 2>/dev/null || true
    grep -qx 'invoice http ok' "$CW_TMP/cells" && grep -qx 'gateway network failing' "$CW_TMP/cells" &&
        break
    sleep 0.1
done

# --- cheap: the page never waits for a check ---------------------------------------
# The slow check is in its 50 s deadline now (pending); the page answers
# within 2 s every time.
for ((i = 0; i < 20; i++)); do
    t=$(curl -fsS --max-time 20 -o "$CW_TMP/p.html" -w '%{time_total}' "http://$CW_ADDR/") ||
        cw_fail "GET / failed while a check waits for its deadline"
    awk -v t="$t" 'BEGIN { exit !(t < 2.0) }' ||
        cw_fail "GET / took $t s while a check waits for its 50 s deadline (bound: 2 s)"
done
grep -qx 'slow http pending' <<<"$(cells "$CW_TMP/p.html")" ||
    cw_fail "the slow check is no longer pending: the timing above proved nothing"
cw_pass "20 pages while a check waits for its 50 s deadline, each under 2 s"

# --- the page as the browser builds it ---------------------------------------------
browser --dump-dom "http://$CW_ADDR/?lang=en" >"$CW_TMP/dom.html" ||
    cw_fail "chromium --dump-dom failed: $(tail -5 "$CW_TMP/chromium.log")"
cells "$CW_TMP/dom.html" >"$CW_TMP/cells"
expect_cell()
{
    grep -qx "$1 $2 $3" "$CW_TMP/cells" ||
        cw_fail "cell $1/$2 is not $3; cells: $(tr '\n' ';' <"$CW_TMP/cells")"
}
expect_cell invoice network ok
expect_cell invoice http ok
expect_cell invoice tls none
expect_cell invoice host none
expect_cell gateway network failing
expect_cell gateway http blocked
expect_cell slow http pending
grep -qx 'verdict invoice all layers ok' "$CW_TMP/cells" ||
    cw_fail "invoice's verdict: $(grep 'verdict invoice' "$CW_TMP/cells")"
grep -q '^verdict gateway network: failing — connection refused' "$CW_TMP/cells" ||
    cw_fail "gateway's verdict: $(grep 'verdict gateway' "$CW_TMP/cells")"
grep -q "href=\"/probe?check=tcp&amp;target=127.0.0.1%3A$dead\"" "$CW_TMP/dom.html" ||
    cw_fail "no /probe link for the allowed tcp target"
grep -q "Connection refused\|Couldn't connect" "$CW_TMP/dom.html" ||
    cw_fail "the last error of the gateway checks is not on the page"
cw_pass "chromium DOM (en): invoice ok, gateway network failing (refused) with http not reached, slow pending"

browser --lang=zh-CN --accept-lang=zh-CN,zh --dump-dom "http://$CW_ADDR/" >"$CW_TMP/dom-zh.html" ||
    cw_fail "chromium --dump-dom (zh) failed: $(tail -5 "$CW_TMP/chromium.log")"
cells "$CW_TMP/dom-zh.html" >"$CW_TMP/cells-zh"
grep -q '^verdict gateway 网络层: 故障 — 连接被拒绝' "$CW_TMP/cells-zh" ||
    cw_fail "Chinese verdict of gateway: $(grep 'verdict gateway' "$CW_TMP/cells-zh")"
grep -qx 'verdict invoice 各层正常' "$CW_TMP/cells-zh" ||
    cw_fail "Chinese verdict of invoice: $(grep 'verdict invoice' "$CW_TMP/cells-zh")"
grep -q '<html lang="zh-CN">' "$CW_TMP/dom-zh.html" || cw_fail "Accept-Language zh-CN did not give the Chinese page"
cw_pass "chromium DOM (zh, from Accept-Language): 网络层: 故障 — 连接被拒绝"

# --- the screenshot: red and green cells are there ---------------------------------
shot=$CW_BUILD_ROOT/meson-logs/health-page.png
mkdir -p "$(dirname "$shot")"
rm -f "$shot"
browser --screenshot="$shot" "http://$CW_ADDR/?lang=en" >/dev/null ||
    cw_fail "chromium --screenshot failed: $(tail -5 "$CW_TMP/chromium.log")"
[[ -s $shot ]] || cw_fail "no screenshot at $shot"
python3 - "$shot" <<'PY' || cw_fail "the screenshot does not show the page's red and green cells"
import struct, sys, zlib

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
counts = {"ok": 0, "failing": 0}
want = {(0xC8, 0xE6, 0xC9): "ok", (0xEF, 0x9A, 0x9A): "failing"}
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1:
            line[x] = (line[x] + a) & 255
        elif f == 2:
            line[x] = (line[x] + b) & 255
        elif f == 3:
            line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        k = want.get(tuple(line[x:x + 3]))
        if k:
            counts[k] += 1
    prev = line
print(counts)
assert counts["ok"] > 500 and counts["failing"] > 500, counts
PY
cw_pass "screenshot $shot ($(stat -c %s "$shot") B) shows green and red cells"

