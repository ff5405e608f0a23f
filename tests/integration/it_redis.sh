#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_redis.sh - the redis check against real redis-server processes that this
# script starts on loopback ports (and ends by PID):
#   A  plain: 92 hits + 8 misses in one transaction -> hits +92, misses +8,
#      hit ratio 0.92 over that interval; then 45/55 -> 0.45; killed -> up 0,
#      reason refused; restarted on the same port with 30/70 lookups made at
#      once -> up 1 and ratio 0.3 (the counters restarted from 0: no negative
#      or stale ratio);
#   B  maxclients 20 and 25 clients -> rejected connections rise; keys with
#      and without TTL -> keys_with_expiry matches, short TTLs expire ->
#      expired_keys_total rises;
#   C  maxmemory 2 MiB + allkeys-lru and 3 MiB of writes -> evicted keys rise;
#   D  requirepass + ACL users: the right password (file, or ACL user with
#      ${ENV}) works, a wrong one or none fails with reason auth; a user
#      without CONFIG permission still succeeds, limits read from INFO.
# Plus configuration errors (password and password_file together).
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl redis-server redis-cli
cw_tmpdir

# start_redis NAME PORT [ARGS...] starts redis-server and waits for PONG.
# The PID is left in CW_LAST_PID.
start_redis()
{
    local name=$1 port=$2 i
    shift 2
    mkdir -p "$CW_TMP/$name"
    cw_spawn "$CW_TMP/$name/server.log" redis-server --port "$port" --bind 127.0.0.1 \
        --save '' --appendonly no --dir "$CW_TMP/$name" "$@"
    for ((i = 0; i < 100; i++)); do
        if [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG* ||
            $(redis-cli -p "$port" ping 2>/dev/null) == NOAUTH* ]]; then
            return 0
        fi
        sleep 0.05
    done
    cat "$CW_TMP/$name/server.log" >&2
    cw_fail "redis-server $name on port $port did not start"
}

# scrape_to FILE
scrape_to()
{
    cw_scrape >"$1"
}

# wait_for SECONDS DESCRIPTION CMD... polls (every 50 ms, on a fresh scrape in
# $CW_TMP/cur.txt) until CMD succeeds.
wait_for()
{
    local secs=$1 what=$2 start
    shift 2
    start=$(cw_now)
    while :; do
        scrape_to "$CW_TMP/cur.txt"
        if "$@"; then
            return 0
        fi
        (($(cw_elapsed_ms "$start") < secs * 1000 * CW_SLOW)) || break
        sleep 0.05
    done
    grep -E 'redis|check_(success|failure_info)' "$CW_TMP/cur.txt" >&2 || true
    cw_fail "timed out ($secs s) waiting for: $what"
}

# m NAME LABELS prints a value from the last scrape (empty when absent).
m()
{
    cw_metric_in "$CW_TMP/cur.txt" "$1" "${2:-}" || true
}

# near A B: |A - B| < 1e-9
near()
{
    awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; exit !(d < 1e-9 && d > -1e-9) }'
}

# lookups PORT HITS MISSES makes HITS successful and MISSES failed GETs in
# one MULTI/EXEC, so that no check run can see part of them.
lookups()
{
    local port=$1 h=$2 mi=$3 i
    {
        echo "MULTI"
        for ((i = 0; i < h; i++)); do echo "GET hot"; done
        for ((i = 0; i < mi; i++)); do echo "GET missing:$i"; done
        echo "EXEC"
    } | redis-cli -p "$port" >/dev/null
}

pa=$(cw_free_port)
pb=$(cw_free_port)
pc=$(cw_free_port)
pd=$(cw_free_port)
while [[ $pb == "$pa" ]]; do pb=$(cw_free_port); done
while [[ $pc == "$pa" || $pc == "$pb" ]]; do pc=$(cw_free_port); done
while [[ $pd == "$pa" || $pd == "$pb" || $pd == "$pc" ]]; do pd=$(cw_free_port); done

start_redis a "$pa"
pid_a=$CW_LAST_PID
start_redis b "$pb" --maxclients 20
start_redis c "$pc" --maxmemory 2mb --maxmemory-policy allkeys-lru
start_redis d "$pd" --requirepass srvpass
redis-cli -p "$pd" -a srvpass --no-auth-warning ACL SETUSER monitor on '>monpw' -@all +ping \
    +info +config\|get +client\|setname +dbsize >/dev/null
redis-cli -p "$pd" -a srvpass --no-auth-warning ACL SETUSER noconfig on '>ncpw' -@all +ping \
    +info +client\|setname >/dev/null

# --- configuration errors ---------------------------------------------------------------
printf 'srvpass\n' >"$CW_TMP/d.pw"
printf 'not-the-password\n' >"$CW_TMP/wrong.pw"
cat >"$CW_TMP/bad.yml" <<EOF
services:
  - name: bad
    checks:
      - redis: {address: "127.0.0.1:$pd", password: "\${CW_REDIS_IT_PW}", password_file: d.pw}
      - redis: {address: "127.0.0.1:$pd", username: monitor}
EOF
set +e
out=$(CW_REDIS_IT_PW=x "$CW_BUILD_ROOT/connwatch" --config.file="$CW_TMP/bad.yml" --config.check 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || cw_fail "--config.check on a bad redis config exited $rc: $out"
grep -q 'bad.yml:4:.*password or password_file, not both' <<<"$out" ||
    cw_fail "no positioned error for password + password_file: $out"
grep -q 'bad.yml:5:.*needs password or password_file' <<<"$out" ||
    cw_fail "no positioned error for a username without a password: $out"
grep -q 'srvpass\|not-the-password' <<<"$out" && cw_fail "a secret leaked into the errors"
cw_pass "configuration errors are positioned"

# --- connwatch ----------------------------------------------------------------------------
cat >"$CW_TMP/cw.yml" <<EOF
global: {interval: 1s, timeout: 800ms}
host: {enabled: false}
services:
  - name: cache
    checks:
      - redis: {address: "127.0.0.1:$pa", name: a}
      - redis: {address: "127.0.0.1:$pb", name: b}
      - redis: {address: "127.0.0.1:$pc", name: c}
      - redis: {address: "127.0.0.1:$pd", name: d-file, password_file: d.pw}
      - redis: {address: "127.0.0.1:$pd", name: d-acl, username: monitor, password: "\${CW_REDIS_IT_PW}"}
      - redis: {address: "127.0.0.1:$pd", name: d-noconfig, username: noconfig, password: "\${CW_REDIS_IT_NC}"}
      - redis: {address: "127.0.0.1:$pd", name: d-wrong, username: monitor, password_file: wrong.pw}
      - redis: {address: "127.0.0.1:$pd", name: d-nopass}
EOF
CW_REDIS_IT_PW=monpw CW_REDIS_IT_NC=ncpw cw_start_connwatch "$CW_TMP/cw.yml"
cw_wait_ready

# --- A: hit ratio over an interval -------------------------------------------------------
redis-cli -p "$pa" SET hot 1 >/dev/null
have_a_base()
{
    [[ $(m connwatch_check_success 'target="a"') == 1 && -n $(m connwatch_redis_keyspace_hits_total 'target="a"') ]]
}
wait_for 10 "first successful run on A" have_a_base
[[ -z $(m connwatch_redis_hit_ratio 'target="a"') ]] ||
    cw_fail "hit ratio present although there was no lookup: $(m connwatch_redis_hit_ratio 'target="a"')"
[[ $(m connwatch_redis_up 'target="a"') == 1 ]] || cw_fail "up is not 1 on A"
[[ -n $(m connwatch_redis_ping_seconds 'target="a"') ]] || cw_fail "no ping_seconds on A"

# ratio_after PORT HITS MISSES WANT: makes the lookups and waits for the run
# that saw them; its hits and misses must have grown by exactly HITS and
# MISSES, and its ratio must be WANT.
ratio_after()
{
    local port=$1 h=$2 mi=$3 want=$4 h0 m0 r
    h0=$(m connwatch_redis_keyspace_hits_total 'target="a"')
    m0=$(m connwatch_redis_keyspace_misses_total 'target="a"')
    lookups "$port" "$h" "$mi"
    seen_lookups() { [[ $(m connwatch_redis_keyspace_hits_total 'target="a"') != "$h0" ]]; }
    wait_for 10 "a run after $h hits and $mi misses" seen_lookups
    [[ $(m connwatch_redis_keyspace_hits_total 'target="a"') == $((h0 + h)) ]] ||
        cw_fail "hits went from $h0 to $(m connwatch_redis_keyspace_hits_total 'target="a"'), want +$h"
    [[ $(m connwatch_redis_keyspace_misses_total 'target="a"') == $((m0 + mi)) ]] ||
        cw_fail "misses went from $m0 to $(m connwatch_redis_keyspace_misses_total 'target="a"'), want +$mi"
    r=$(m connwatch_redis_hit_ratio 'target="a"')
    [[ -n $r ]] || cw_fail "no hit ratio in the run that saw $h hits and $mi misses"
    near "$r" "$want" || cw_fail "hit ratio $r, want $want"
    cw_pass "$h hits + $mi misses: hits +$h, misses +$mi, ratio $r"
}
ratio_after "$pa" 92 8 0.92
ratio_after "$pa" 45 55 0.45
# With no lookup in the next interval the ratio disappears (not 0, not NaN).
no_ratio() { [[ -z $(m connwatch_redis_hit_ratio 'target="a"') ]]; }
wait_for 5 "hit ratio absent after an interval without lookups" no_ratio
cw_pass "no lookups: no hit ratio"

# --- B: rejected connections, keys with expiry, expired keys --------------------------------
[[ $(m connwatch_redis_max_clients 'target="b"') == 20 ]] ||
    cw_fail "max_clients on B is '$(m connwatch_redis_max_clients 'target="b"')', want 20"
rej0=$(m connwatch_redis_rejected_connections_total 'target="b"')
fds=()
for ((i = 0; i < 25; i++)); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$pb" && fds+=("$fd")
done
rejected() { cw_cmp "$(m connwatch_redis_rejected_connections_total 'target="b"')" '>=' "$((rej0 + 5))"; }
wait_for 10 "rejected connections on B to rise by 5" rejected
for fd in "${fds[@]}"; do exec {fd}>&-; done
cw_pass "25 clients on maxclients 20: rejected connections $rej0 -> $(m connwatch_redis_rejected_connections_total 'target="b"')"
[[ $(m connwatch_check_success 'target="b"') == 1 ]] ||
    cw_fail "the check of B failed while the server rejected other clients"

exp0=$(m connwatch_redis_expired_keys_total 'target="b"')
{
    for i in 1 2 3 4 5; do echo "SET plain:$i v"; done
    for i in 1 2 3 4 5 6 7; do echo "SET long:$i v EX 1000"; done
    for i in $(seq 1 10); do echo "SET short:$i v PX 3000"; done
} | redis-cli -p "$pb" >/dev/null
all_there()
{
    [[ $(m connwatch_redis_keys 'target="b",db="db0"') == 22 &&
        $(m connwatch_redis_keys_with_expiry 'target="b",db="db0"') == 17 ]]
}
wait_for 3 "22 keys, 17 with a TTL on B" all_there
cw_pass "keys 22, keys_with_expiry 17"
expired()
{
    [[ $(m connwatch_redis_keys 'target="b",db="db0"') == 12 &&
        $(m connwatch_redis_keys_with_expiry 'target="b",db="db0"') == 7 ]] &&
        cw_cmp "$(m connwatch_redis_expired_keys_total 'target="b"')" '>=' "$((exp0 + 10))"
}
wait_for 10 "the 10 short TTLs to expire on B" expired
cw_pass "after expiry: keys 12, keys_with_expiry 7, expired_keys_total $exp0 -> $(m connwatch_redis_expired_keys_total 'target="b"')"

# --- C: evictions ---------------------------------------------------------------------------
[[ $(m connwatch_redis_memory_max_bytes 'target="c"') == 2097152 ]] ||
    cw_fail "memory_max_bytes on C is '$(m connwatch_redis_memory_max_bytes 'target="c"')'"
ev0=$(m connwatch_redis_evicted_keys_total 'target="c"')
val=$(printf 'x%.0s' $(seq 1 1024))
for ((i = 0; i < 3000; i++)); do printf 'SET k%d %s\r\n' "$i" "$val"; done |
    redis-cli -p "$pc" --pipe >/dev/null
evicted() { cw_cmp "$(m connwatch_redis_evicted_keys_total 'target="c"')" '>' "$ev0"; }
wait_for 10 "evicted keys to rise on C" evicted
used=$(m connwatch_redis_memory_used_bytes 'target="c"')
cw_pass "3 MiB into maxmemory 2 MiB: evicted $ev0 -> $(m connwatch_redis_evicted_keys_total 'target="c"'), used $used"

# --- D: authentication ----------------------------------------------------------------------
d_state()
{
    [[ $(m connwatch_check_success 'target="d-file"') == 1 &&
        $(m connwatch_check_success 'target="d-acl"') == 1 &&
        $(m connwatch_check_success 'target="d-noconfig"') == 1 &&
        $(m connwatch_check_failure_info 'target="d-wrong",reason="auth"') == 1 &&
        $(m connwatch_check_failure_info 'target="d-nopass",reason="auth"') == 1 ]]
}
wait_for 10 "auth outcomes on D" d_state
[[ $(m connwatch_redis_up 'target="d-wrong"') == 0 ]] || cw_fail "up is not 0 with a wrong password"
[[ $(m connwatch_redis_up 'target="d-acl"') == 1 ]] || cw_fail "up is not 1 for the ACL user"
[[ $(m connwatch_redis_max_clients 'target="d-acl"') == 10000 ]] ||
    cw_fail "max_clients missing for the ACL user with CONFIG GET"
[[ $(m connwatch_redis_max_clients 'target="d-noconfig"') == 10000 ]] ||
    cw_fail "max_clients for the user without CONFIG is '$(m connwatch_redis_max_clients 'target="d-noconfig"')' (INFO has it)"
grep -q 'msg="CONFIG GET refused' "$CW_LOG" || cw_fail "no log line about the refused CONFIG GET"
grep -q 'srvpass\|monpw\|ncpw\|not-the-password' "$CW_LOG" && cw_fail "a password is in the log"
grep -q 'srvpass\|monpw\|ncpw\|not-the-password' "$CW_TMP/cur.txt" && cw_fail "a password is in /metrics"
cw_pass "password file and ACL user work, wrong/no password -> auth, no CONFIG -> still succeeds"

# --- A: kill and restart ----------------------------------------------------------------------
log_lines=$(wc -l <"$CW_LOG")
kill -KILL "$pid_a"
wait "$pid_a" 2>/dev/null || true
cw_forget_pid "$pid_a"
down() { [[ $(m connwatch_redis_up 'target="a"') == 0 && $(m connwatch_check_failure_info 'target="a",reason="refused"') == 1 ]]; }
wait_for 10 "up 0 and reason refused after the kill" down
cw_pass "killed: up 0, reason refused"
grep -q 'component=redis msg="connection failing" target=a reason=refused' "$CW_LOG" ||
    cw_fail "the lost connection was not logged"
sleep 1.5 # let the reconnect backoff grow past the next interval
start_redis a "$pa"
redis-cli -p "$pa" SET hot 1 >/dev/null
lookups "$pa" 30 70
back()
{
    [[ $(m connwatch_redis_up 'target="a"') == 1 && $(m connwatch_redis_keyspace_hits_total 'target="a"') == 30 ]]
}
wait_for 40 "up 1 with the new server's counters" back
r=$(m connwatch_redis_hit_ratio 'target="a"')
[[ -n $r ]] || cw_fail "no hit ratio in the first run that saw the 30/70 lookups after the restart"
near "$r" 0.3 || cw_fail "hit ratio after restart $r, want 0.3"
n=$(tail -n +"$((log_lines + 1))" "$CW_LOG" | grep -c 'component=redis msg="connection failing" target=a ' || true)
[[ $n == 1 ]] || cw_fail "the outage was logged $n times, want once"
cw_pass "restarted: up 1, hit ratio $r over the new counters"

cw_stop || cw_fail "connwatch exited with status $?"
