#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_privdrop.sh - started as root outside systemd, connwatch and
# connwatch-relay switch to an unprivileged user before anything else
# (exporter/core/privdrop.c), or refuse root unless --run-as-root:
#   - no flag and no package user: exit 2, "refusing to run as root"
#   - --run-as-user=nobody where net.ipv4.ping_group_range excludes nobody's
#     group: every uid and gid is nobody's, no supplementary group, CAP_NET_RAW
#     the only capability (permitted, effective and bounding), and the ICMP
#     check (raw socket) and the TCP check succeed
#   - the same where the range includes the group: no capability at all, ICMP
#     through the datagram socket
#   - --run-as-root stays root (and says so); an unknown user is exit 2
#   - connwatch-relay: the same refusal, and as nobody no capability
# In a network namespace of its own: the ping_group_range it sets is that
# namespace's.
. "$CW_SOURCE_ROOT/tests/lib/common.sh"
[[ $(id -u) -eq 0 ]] || cw_skip "needs root (it tests leaving root)"
cw_isolate_netns "$@"
[[ -n ${CW_NETNS:-} ]] || cw_skip "needs a network namespace of its own"
cw_tmpdir
chmod 755 "$CW_TMP"
bin=$CW_BUILD_ROOT/connwatch
relay=$CW_BUILD_ROOT/alerts/relay/connwatch-relay
# After setuid the process is not dumpable: LeakSanitizer's thread
# suspension (ptrace) would fail, so leaks are not looked for here.
export ASAN_OPTIONS=detect_leaks=0

nobody_gid=$(id -g nobody)
cat >"$CW_TMP/cw.yml" <<'EOF2'
global: {interval: 1s, timeout: 500ms}
host: {enabled: true, interval: 1s}
services:
  - name: local
    checks:
      - icmp: {target: 127.0.0.1}
EOF2

# status_field PID NAME prints a /proc/PID/status field's value.
status_field()
{
    sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr -s '[:space:]' ' ' | sed 's/ $//'
}

# expect_refused PROGRAM USER: without a flag, root is refused (unless USER exists).
expect_refused()
{
    local prog=$1 user=$2 rc=0
    if id "$user" >/dev/null 2>&1; then
        cw_note "user $user exists: the refusal without flags is not tested"
        return 0
    fi
    timeout 20 "$prog" --web.listen-address=127.0.0.1:0 --config.file="$3" >"$CW_TMP/out" 2>&1 \
        </dev/null || rc=$?
    [[ $rc -eq 2 ]] || cw_fail "$prog as root without flags exited $rc, want 2: $(cat "$CW_TMP/out")"
    grep -q 'refusing to run as root' "$CW_TMP/out" || cw_fail "no clear refusal: $(cat "$CW_TMP/out")"
    cw_pass "$(basename "$prog") as root without --run-as-user/--run-as-root: refused, exit 2"
}
expect_refused "$bin" connwatch "$CW_TMP/cw.yml"

# run_as_nobody CAPS MODE: start, check ids, capabilities and the ICMP check.
run_as_nobody()
{
    local want_caps=$1 mode=$2 i ok
    cw_start_connwatch "$CW_TMP/cw.yml" --run-as-user=nobody
    [[ $(status_field "$CW_PID" Uid) == "65534 65534 65534 65534" ]] ||
        cw_fail "uids: $(status_field "$CW_PID" Uid)"
    [[ $(status_field "$CW_PID" Gid) == "$nobody_gid $nobody_gid $nobody_gid $nobody_gid" ]] ||
        cw_fail "gids: $(status_field "$CW_PID" Gid)"
    [[ $(status_field "$CW_PID" Groups) == "$nobody_gid" ]] ||
        cw_fail "supplementary groups: $(status_field "$CW_PID" Groups)"
    for f in CapPrm CapEff CapBnd; do
        [[ $(status_field "$CW_PID" $f) == "$want_caps" ]] ||
            cw_fail "$f is $(status_field "$CW_PID" $f), want $want_caps"
    done
    [[ $(status_field "$CW_PID" CapAmb) == 0000000000000000 ]] || cw_fail "ambient capabilities left"
    grep -q "icmp engine started.* ip4=$mode" "$CW_LOG" || cw_fail "ICMP is not on $mode sockets"
    for ((i = 0; i < 50 * CW_SLOW; i++)); do
        cw_scrape >"$CW_TMP/scrape"
        ok=$(cw_metric_in "$CW_TMP/scrape" connwatch_check_success 'check="icmp"' || true)
        ok+=$(cw_metric_in "$CW_TMP/scrape" connwatch_check_success 'check="host"' || true)
        [[ $ok == 11 ]] && break
        sleep 0.2
    done
    [[ $ok == 11 ]] || cw_fail "the icmp and host checks did not both succeed as nobody ($mode sockets): $ok"
    cw_stop
}

echo "1 0" >/proc/sys/net/ipv4/ping_group_range
run_as_nobody 0000000000002000 raw
cw_pass "--run-as-user=nobody, datagram ICMP not allowed: ids all nobody, CAP_NET_RAW only, icmp ok on raw"
echo "$nobody_gid $nobody_gid" >/proc/sys/net/ipv4/ping_group_range
run_as_nobody 0000000000000000 unprivileged
cw_pass "--run-as-user=nobody, ping_group_range includes its group: no capability, icmp ok on dgram"

cw_start_connwatch "$CW_TMP/cw.yml" --run-as-root
[[ $(status_field "$CW_PID" Uid) == "0 0 0 0" ]] || cw_fail "--run-as-root did not stay root"
grep -q 'running as root (--run-as-root)' "$CW_LOG" || cw_fail "--run-as-root is not logged"
cw_stop
cw_pass "--run-as-root stays root and logs it"

rc=0
"$bin" --web.listen-address=127.0.0.1:0 --run-as-user=no-such-user-cw >"$CW_TMP/out" 2>&1 </dev/null || rc=$?
if [[ $rc -ne 2 ]] || ! grep -q 'no user "no-such-user-cw"' "$CW_TMP/out"; then
    cw_fail "an unknown --run-as-user: exit $rc, $(cat "$CW_TMP/out")"
fi
cw_pass "--run-as-user naming no user: exit 2"

# connwatch-relay: its spool belongs to the user it runs as.
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"
mkdir "$CW_TMP/spool"
chown nobody: "$CW_TMP/spool"
printf 'spool_dir: %s/spool\nreceivers:\n  - name: hook\n    webhook: {url: "http://127.0.0.1:9/hook"}\n' \
    "$CW_TMP" >"$CW_TMP/relay.yml"
expect_refused "$relay" connwatch-relay "$CW_TMP/relay.yml"
relay_start "$CW_TMP/relay.yml" --run-as-user=nobody
[[ $(status_field "$CW_PID" Uid) == "65534 65534 65534 65534" ]] || cw_fail "relay uids: $(status_field "$CW_PID" Uid)"
[[ $(status_field "$CW_PID" CapEff) == 0000000000000000 && $(status_field "$CW_PID" CapBnd) == 0000000000000000 ]] ||
    cw_fail "the relay kept capabilities"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$CW_ADDR/-/healthy")
[[ $code == 200 ]] || cw_fail "the relay as nobody: /-/healthy $code"
cw_stop
cw_pass "connwatch-relay --run-as-user=nobody: ids nobody, no capability, healthy"
