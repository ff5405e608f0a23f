#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_icmp_config.sh - every bad icmp configuration gets its precise error
# from `connwatch --config.check` (file:line:col: path: message, exit 2),
# and a good one passes. No network, no root.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_tmpdir
bin=$CW_BUILD_ROOT/connwatch
[[ -x $bin ]] || cw_fail "$bin is not built"

cfg=$CW_TMP/bad.yml
cat >"$cfg" <<'YML'
services:
  - name: s
    checks:
      - icmp: {ip_family: ip4}
      - icmp: {target: 10.0.0.1, ip_family: ip6}
      - icmp: {target: 10.0.0.1, payload_size: 10}
      - icmp: {target: 10.0.0.1, probe_interval: 10ms, window: 200s}
      - icmp: {target: 10.0.0.1, ip_family: ip5}
      - icmp: {target: "::1", probe_timeout: 2h}
      - icmp: {target: "bad host!", count: 3}
      - icmp: {target: "::1", ip_family: ip4}
      - icmp: {target: 10.0.0.1, probe_interval: 1ms}
      - icmp: {target: 10.0.0.1, histogram_buckets: [0.001, 0.0005, 0, x]}
      - icmp: {target: 10.0.0.1, histogram_buckets: []}
      - icmp: {target: 10.0.0.1, histogram: false, histogram_buckets: [0.01]}
      - icmp: {target: 10.0.0.1, histogram_buckets: 0.01}
YML
rc=0
"$bin" --config.file="$cfg" --config.check >"$CW_TMP/out" 2>"$CW_TMP/err" || rc=$?
[[ $rc == 2 ]] || cw_fail "--config.check exited $rc, not 2"
expect=(
    'bad.yml:4:15: services[0].checks[0].icmp: missing required field "target"'
    'bad.yml:5:24: services[0].checks[1].icmp.target: 10.0.0.1 is an IPv4 address but ip_family is ip6'
    'bad.yml:6:48: services[0].checks[2].icmp.payload_size: 10 is out of range (16 to 1472)'
    'bad.yml:7:64: services[0].checks[3].icmp.window: window holds 20000 probes, at most 10000; shorten it or raise probe_interval'
    'bad.yml:8:45: services[0].checks[4].icmp.ip_family: "ip5" is not one of: auto, ip4, ip6'
    'bad.yml:9:46: services[0].checks[5].icmp.probe_timeout: 2h is above the maximum 1m'
    'bad.yml:10:24: services[0].checks[6].icmp.target: "bad host!" is not a valid IP address or host name'
    'bad.yml:10:37: services[0].checks[6].icmp.count: unknown field "count"'
    'bad.yml:11:24: services[0].checks[7].icmp.target: ::1 is an IPv6 address but ip_family is ip4'
    'bad.yml:12:50: services[0].checks[8].icmp.probe_interval: 1ms is below the minimum 10ms'
    'bad.yml:13:72: services[0].checks[9].icmp.histogram_buckets[3]: "x" is not a number'
    'bad.yml:14:53: services[0].checks[10].icmp.histogram_buckets: must list 1 to 24 bounds in seconds (histogram: false for none)'
    'bad.yml:15:71: services[0].checks[11].icmp.histogram_buckets: histogram_buckets needs histogram: true'
    'bad.yml:16:53: services[0].checks[12].icmp.histogram_buckets: must be a list of numbers, not a string'
)
for e in "${expect[@]}"; do
    grep -qF -- "$e" "$CW_TMP/out" "$CW_TMP/err" ||
        cw_fail "missing error: $e; got: $(cat "$CW_TMP/out" "$CW_TMP/err")"
done

good=$CW_TMP/good.yml
cat >"$good" <<'YML'
services:
  - name: s
    checks:
      - icmp: {target: 10.0.0.1}
      - icmp: {target: example.invalid, ip_family: ip6, probe_interval: 1s, probe_timeout: 500ms, window: 5m, payload_size: 1472}
      - icmp: {target: 10.0.0.2, histogram_buckets: [0.0001, 0.001, 0.01, 0.1, 1]}
      - icmp: {target: 10.0.0.3, histogram: false}
YML
"$bin" --config.file="$good" --config.check >"$CW_TMP/out" 2>&1 ||
    cw_fail "a good icmp configuration was rejected: $(cat "$CW_TMP/out")"
# The order checks of histogram_buckets run once the items parse.
cat >"$cfg" <<'YML'
services:
  - name: s
    checks:
      - icmp: {target: 10.0.0.1, histogram_buckets: [0.001, 0.0005, -1, 0.002]}
YML
rc=0
"$bin" --config.file="$cfg" --config.check >"$CW_TMP/out" 2>"$CW_TMP/err" || rc=$?
[[ $rc == 2 ]] || cw_fail "--config.check exited $rc, not 2"
for e in 'bad.yml:4:61: services[0].checks[0].icmp.histogram_buckets[1]: 0.0005 is not above the bound before it (0.001): list them ascending' \
    'bad.yml:4:69: services[0].checks[0].icmp.histogram_buckets[2]: -1 is not a positive number of seconds'; do
    grep -qF -- "$e" "$CW_TMP/out" "$CW_TMP/err" ||
        cw_fail "missing error: $e; got: $(cat "$CW_TMP/out" "$CW_TMP/err")"
done
cw_pass "bad icmp options get file:line:col errors; a good configuration passes"
