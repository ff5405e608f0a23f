#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_probe.sh - /probe runs one check now, only for kinds and targets that
# probe.allow lists: an allowed tcp target that listens → success; a closed
# port → refused; targets and kinds not listed → 403; missing parameters and
# a target with a control character → 400. A probe whose SYNs are dropped
# (nft, in this test's own network namespace) takes its whole deadline while
# /metrics keeps answering at once: scrapes never wait on a probe.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl
cw_require nft
cw_isolate_netns "$@"
cw_tmpdir

closed=$(cw_free_port)
dropped=$(cw_free_port)
nft add table inet cwprobe
nft add chain inet cwprobe in '{ type filter hook input priority 0; }'
nft add rule inet cwprobe in tcp dport "$dropped" drop

cfg=$CW_TMP/connwatch.yml
cat >"$cfg" <<YAML
host: {enabled: false}
probe:
  allow:
    - check: tcp
      targets: ["127.0.0.1:*", "localhost:*"]
      timeout: 3s
YAML
cw_start_connwatch "$cfg"
cw_wait_ready

probe()
{
    curl -sS --max-time 10 -w '\n%{http_code}\n' "http://$CW_ADDR/probe?$1"
}

# The daemon's own port listens: the probe succeeds.
out=$(probe "check=tcp&target=$CW_ADDR")
[[ $(tail -n1 <<<"$out") == 200 ]] || cw_fail "allowed probe: $(tail -n1 <<<"$out")"
grep -q '^connwatch_check_success{check="tcp"} 1$' <<<"$out" || cw_fail "no success 1 in: $out"
grep -q '^connwatch_tcp_connect_seconds ' <<<"$out" || cw_fail "no connect time in: $out"
grep -q 'service=' <<<"$out" && cw_fail "a probe carries no service label: $out"

out=$(probe "check=tcp&target=127.0.0.1:$closed")
[[ $(tail -n1 <<<"$out") == 200 ]] || cw_fail "closed port probe: $(tail -n1 <<<"$out")"
grep -q '^connwatch_check_success{check="tcp"} 0$' <<<"$out" || cw_fail "closed port: $out"
grep -q '^connwatch_check_failure_info{check="tcp",reason="refused"} 1$' <<<"$out" ||
    cw_fail "closed port is not refused: $out"

# Not listed: another address, another kind; a name that only resolves to an allowed address.
for q in "check=tcp&target=10.1.2.3:80" "check=dns&target=localhost" \
    "check=tcp&target=127.0.0.2:80"; do
    out=$(probe "$q")
    [[ $(tail -n1 <<<"$out") == 403 ]] || cw_fail "$q: expected 403, got: $out"
    grep -q 'probe.allow' <<<"$out" || cw_fail "$q: the 403 does not say where to allow it: $out"
done
out=$(probe "check=tcp")
[[ $(tail -n1 <<<"$out") == 400 ]] || cw_fail "missing target: $out"
out=$(probe "check=tcp&target=127.0.0.1:1%0a")
[[ $(tail -n1 <<<"$out") =~ ^40[03]$ ]] || cw_fail "control character: $out"

# A probe that takes its whole deadline does not hold up scrapes.
start=$(cw_now)
probe "check=tcp&target=127.0.0.1:$dropped" >"$CW_TMP/slow.out" &
slow=$!
cw_pids+=("$slow")
sleep 0.3
for ((i = 0; i < 20; i++)); do
    t0=$(cw_now)
    code=$(cw_http_code /metrics)
    [[ $code == 200 ]] || cw_fail "scrape during a probe: HTTP $code"
    ms=$(cw_elapsed_ms "$t0")
    ((ms < 1000)) || cw_fail "a scrape took $ms ms while a probe was running"
done
wait "$slow"
cw_forget_pid "$slow"
took=$(cw_elapsed_ms "$start")
out=$(cat "$CW_TMP/slow.out")
grep -q '^connwatch_check_failure_info{check="tcp",reason="timeout"} 1$' <<<"$out" ||
    cw_fail "dropped SYNs are not a timeout: $out"
((took >= 2500 && took < 6000)) || cw_fail "the dropped probe took $took ms (deadline 3 s)"
cw_note "slow probe: $took ms; 20 scrapes answered meanwhile"

cw_stop
cw_pass "probe allow-list, classification and non-blocking scrapes"
