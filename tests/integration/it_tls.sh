#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_tls.sh - the tls and tls_file checks against real TLS servers
# (openssl s_server) with certificates made here by openssl/faketime:
#   valid leaf from a test CA expiring in 20 days: expiry metrics equal its
#     notAfter to the second, verify_success 1, check_success 1;
#   expired, not yet valid, self-signed, wrong host name: each fails with its
#     reason (cert_expired, cert_not_yet_valid, cert_untrusted, cert_hostname)
#     and still reports the leaf's expiry;
#   leaf + intermediate where the intermediate expires first: earliest and
#     verified-chain expiry are the intermediate's;
#   insecure_skip_verify: a self-signed certificate passes, the flag is exported;
#   a port that accepts TCP but never speaks TLS: timeout within the deadline,
#     while the other checks keep succeeding;
#   tcp with tls: true: the same series and reasons after the TCP connect;
#   tls_file: a fullchain file (two certificates), a glob, a missing file
#     (internal) and a garbage file (protocol).
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/certs.sh
. "$CW_SOURCE_ROOT/tests/lib/certs.sh"

cw_require curl openssl faketime python3
cw_tmpdir
d=$CW_TMP

cert_ca "$d" ca 365
cert_sign "$d" good ca 20 "DNS:localhost,IP:127.0.0.1" 1001
cert_sign "$d" expired ca 10 "DNS:localhost,IP:127.0.0.1" 1002 -40d
cert_sign "$d" future ca 30 "DNS:localhost,IP:127.0.0.1" 1003 +10d
cert_selfsigned "$d" self 30 "DNS:localhost,IP:127.0.0.1"
cert_sign "$d" wrongname ca 30 "DNS:other.example" 1004
cert_sign "$d" inter ca 5 "" 1005 "" ca
cert_sign "$d" chained inter 20 "DNS:localhost,IP:127.0.0.1" 1006

declare -A port
for n in good expired future self wrongname chained silent; do
    port[$n]=$(cw_free_port)
done
for n in good expired future self wrongname; do
    tls_server "$d/s_$n.log" "${port[$n]}" "$d/$n.pem" "$d/$n.key"
done
tls_server "$d/s_chained.log" "${port[chained]}" "$d/chained.pem" "$d/chained.key" "$d/inter.pem"
# Accepts TCP (the kernel completes the handshake from the backlog), never speaks.
cw_spawn "$d/silent.log" python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
time.sleep(3600)' "${port[silent]}"
for n in good expired future self wrongname chained silent; do
    wait_port "${port[$n]}"
done

cat "$d/good.pem" "$d/ca.pem" >"$d/fullchain.pem"
mkdir "$d/glob"
cp "$d/good.pem" "$d/glob/a.pem"
cp "$d/inter.pem" "$d/glob/b.pem"
head -c 3000 /dev/urandom | base64 >"$d/garbage.pem"

cat >"$d/connwatch.yml" <<YAML
global:
  interval: ${CW_SLOW}s
  timeout: $((800 * CW_SLOW))ms
services:
  - name: t
    checks:
      - tls: {target: "127.0.0.1:${port[good]}", server_name: localhost, ca_file: ca.pem, name: good}
      - tls: {target: "127.0.0.1:${port[good]}", ca_file: ca.pem, name: good_ip}
      - tls: {target: "127.0.0.1:${port[expired]}", server_name: localhost, ca_file: ca.pem, name: expired}
      - tls: {target: "127.0.0.1:${port[future]}", server_name: localhost, ca_file: ca.pem, name: future}
      - tls: {target: "127.0.0.1:${port[self]}", server_name: localhost, ca_file: ca.pem, name: self}
      - tls: {target: "127.0.0.1:${port[self]}", server_name: localhost, insecure_skip_verify: true, name: self_insecure}
      - tls: {target: "127.0.0.1:${port[wrongname]}", server_name: localhost, ca_file: ca.pem, name: wrongname}
      - tls: {target: "127.0.0.1:${port[chained]}", server_name: localhost, ca_file: ca.pem, name: chained}
      - tls: {target: "127.0.0.1:${port[silent]}", server_name: localhost, ca_file: ca.pem, name: silent, timeout: $((500 * CW_SLOW))ms}
      - tcp: {target: "127.0.0.1:${port[good]}", tls: true, server_name: localhost, ca_file: ca.pem, name: tcp_good}
      - tcp: {target: "127.0.0.1:${port[expired]}", tls: true, server_name: localhost, ca_file: ca.pem, name: tcp_expired}
      - tls_file: {path: fullchain.pem, name: fullchain}
      - tls_file: {path: "glob/*.pem", name: glob}
      - tls_file: {path: missing.pem, name: missing}
      - tls_file: {path: garbage.pem, name: garbage}
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

good_end=$(cert_enddate "$d/good.pem")
for t in good good_ip; do
    expect_eq "$(val connwatch_check_success $t)" 1 "check_success of $t"
    expect_eq "$(val connwatch_tls_verify_success $t)" 1 "verify_success of $t"
    expect_eq "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds $t)" "$good_end" "leaf expiry of $t"
done
expect_eq "$(val connwatch_tls_leaf_cert_not_before_timestamp_seconds good)" "$(cert_startdate "$d/good.pem")" "leaf notBefore"
expect_eq "$(val connwatch_tls_verified_chain_expiry_timestamp_seconds good)" "$good_end" "verified chain expiry of good"
now=$(date +%s)
cw_cmp "$good_end" '>' $((now + 19 * 86400)) || cw_fail "good expires in less than 19 days"
grep -q 'connwatch_tls_cert_info{.*target="good".*depth="0",subject="CN=good",issuer="CN=ca",serial="03E9"' "$d/m.txt" ||
    cw_fail "no cert_info for the good leaf: $(grep 'connwatch_tls_cert_info.*good"' "$d/m.txt")"
grep -q 'connwatch_tls_version_info{.*target="good".*version="TLSv1.3"' "$d/m.txt" ||
    cw_fail "no TLSv1.3 version_info for good"
cw_pass "valid certificate: expiry = notAfter ($good_end), verified, TLSv1.3"

check_bad()
{
    local t=$1 reason=$2 pem=$3
    expect_eq "$(val connwatch_check_success "$t")" 0 "check_success of $t"
    expect_eq "$(lval connwatch_check_failure_info "$t" "reason=\"$reason\"")" 1 "failure_info{reason=$reason} of $t"
    expect_eq "$(val connwatch_tls_verify_success "$t")" 0 "verify_success of $t"
    expect_eq "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds "$t")" "$(cert_enddate "$pem")" "leaf expiry of $t"
    # A name mismatch does not break the chain: its expiry stays meaningful.
    if [[ $reason != cert_hostname ]] &&
        cw_metric_in "$d/m.txt" connwatch_tls_verified_chain_expiry_timestamp_seconds "target=\"$t\"" >/dev/null; then
        cw_fail "$t: verified chain expiry reported although verification failed"
    fi
    cw_pass "$t: reason $reason, expiry still reported"
}
check_bad expired cert_expired "$d/expired.pem"
check_bad future cert_not_yet_valid "$d/future.pem"
check_bad self cert_untrusted "$d/self.pem"
check_bad wrongname cert_hostname "$d/wrongname.pem"
cw_cmp "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds expired)" '<' "$now" || cw_fail "expired leaf not in the past"

expect_eq "$(val connwatch_check_success self_insecure)" 1 "check_success with insecure_skip_verify"
expect_eq "$(val connwatch_tls_insecure_skip_verify self_insecure)" 1 "insecure_skip_verify flag"
expect_eq "$(val connwatch_tls_verify_success self_insecure)" 0 "verify_success with insecure_skip_verify"
cw_pass "insecure_skip_verify: passes, flagged, verify_success 0"

inter_end=$(cert_enddate "$d/inter.pem")
expect_eq "$(val connwatch_check_success chained)" 1 "check_success of chained"
expect_eq "$(val connwatch_tls_earliest_cert_expiry_timestamp_seconds chained)" "$inter_end" "earliest expiry of chained"
expect_eq "$(val connwatch_tls_verified_chain_expiry_timestamp_seconds chained)" "$inter_end" "verified chain expiry of chained"
expect_eq "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds chained)" "$(cert_enddate "$d/chained.pem")" "leaf expiry of chained"
expect_eq "$(val connwatch_tls_presented_chain_length chained)" 2 "chain length"
cw_pass "chain: earliest expiry is the intermediate's ($inter_end)"

expect_eq "$(val connwatch_check_success silent)" 0 "check_success of silent"
expect_eq "$(lval connwatch_check_failure_info silent 'reason="timeout"')" 1 "silent: reason timeout"
dur=$(val connwatch_check_duration_seconds silent)
cw_cmp "$dur" "<" "$((900 * CW_SLOW))e-3" || cw_fail "silent took ${dur}s, deadline 0.5s"
cw_pass "server that never speaks TLS: timeout after ${dur}s; the others still succeed"

# tcp with tls: true: the same inspection after the connect
expect_eq "$(val connwatch_check_success tcp_good)" 1 "tcp tls: true, good"
expect_eq "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds tcp_good)" "$good_end" "tcp tls leaf expiry"
val connwatch_tcp_connect_seconds tcp_good >/dev/null
expect_reason_tcp=$(lval connwatch_check_failure_info tcp_expired 'reason="cert_expired"')
expect_eq "$expect_reason_tcp" 1 "tcp tls: true, expired: reason cert_expired"
expect_eq "$(val connwatch_tls_leaf_cert_expiry_timestamp_seconds tcp_expired)" "$(cert_enddate "$d/expired.pem")" "tcp tls expired leaf expiry"
cw_pass "tcp with tls: true: verified, expired -> cert_expired with expiry"

# tls_file
fc=$d/fullchain.pem
expect_eq "$(lval connwatch_cert_file_expiry_timestamp_seconds fullchain 'subject="CN=good"')" "$good_end" "fullchain leaf"
expect_eq "$(lval connwatch_cert_file_expiry_timestamp_seconds fullchain 'subject="CN=ca"')" "$(cert_enddate "$d/ca.pem")" "fullchain CA"
grep -q "connwatch_cert_file_expiry_timestamp_seconds{.*path=\"$fc\"" "$d/m.txt" || cw_fail "no path label $fc"
expect_eq "$(val connwatch_check_success fullchain)" 1 "tls_file fullchain success"
expect_eq "$(lval connwatch_cert_file_expiry_timestamp_seconds glob "path=\"$d/glob/b.pem\"")" "$inter_end" "glob b.pem"
expect_eq "$(lval connwatch_cert_file_expiry_timestamp_seconds glob "path=\"$d/glob/a.pem\"")" "$good_end" "glob a.pem"
expect_eq "$(val connwatch_cert_files glob)" 2 "glob file count"
expect_eq "$(val connwatch_check_success missing)" 0 "missing file success"
expect_eq "$(lval connwatch_check_failure_info missing 'reason="internal"')" 1 "missing: internal"
expect_eq "$(val connwatch_check_success garbage)" 0 "garbage file success"
expect_eq "$(lval connwatch_check_failure_info garbage 'reason="protocol"')" 1 "garbage: protocol"
cw_pass "tls_file: fullchain, glob, missing (internal), garbage (protocol)"

kill -0 "$CW_PID" || cw_fail "connwatch died"
cw_stop || cw_fail "connwatch did not exit cleanly"
