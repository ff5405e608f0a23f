#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_probe_timeout.sh - /probe with hostile X-Prometheus-Scrape-Timeout-Seconds
# headers (inf, nan, 1e18, 1e308, -1, 0x10, garbage, empty): each answers
# 200 with a successful probe of a listening port (the rule's 3 s deadline
# applies), the daemon survives, and no sanitizer report appears in its log.
# The old code converted inf and 1e18 seconds to int64 nanoseconds (UBSan:
# "is outside the range of representable values"; without UBSan a negative
# deadline failed the probe). A normal value (2.5) shortens the deadline.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl
cw_tmpdir

cfg=$CW_TMP/connwatch.yml
cat >"$cfg" <<YAML
host: {enabled: false}
probe:
  allow:
    - check: tcp
      targets: ["127.0.0.1:*"]
      timeout: 3s
YAML
cw_start_connwatch "$cfg"
cw_wait_ready

for h in inf -inf nan 1e18 1e308 1e400 9223372036854775807 -1 0 0x10 abc '' 2.5; do
    out=$(curl -sS --max-time $((10 * CW_SLOW)) -w '\n%{http_code}\n' \
        -H "X-Prometheus-Scrape-Timeout-Seconds: $h" \
        "http://$CW_ADDR/probe?check=tcp&target=$CW_ADDR") ||
        cw_fail "header \"$h\": the request failed (daemon alive: $(kill -0 "$CW_PID" 2>/dev/null && echo yes || echo no))"
    [[ $(tail -n1 <<<"$out") == 200 ]] || cw_fail "header \"$h\": HTTP $(tail -n1 <<<"$out")"
    grep -q '^connwatch_check_success{check="tcp"} 1$' <<<"$out" ||
        cw_fail "header \"$h\": the probe of a listening port failed: $out"
done
kill -0 "$CW_PID" 2>/dev/null || cw_fail "connwatch died"
if grep -E 'runtime error|AddressSanitizer|UndefinedBehaviorSanitizer' "$CW_LOG"; then
    cw_fail "sanitizer report in the connwatch log"
fi
cw_stop || cw_fail "connwatch exited with status $? on SIGTERM"
cw_pass "hostile scrape timeout headers are bounded"
