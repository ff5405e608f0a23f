#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_reload.sh - configuration reloads: a broken file (SIGHUP, then POST
# /-/reload) keeps the running configuration serving, reports
# connwatch_config_last_reload_successful 0 and names file:line:col; a fixed
# file (host disabled) is swapped in atomically and the host series vanish
# from the very next scrape; SIGHUP with a good file brings them back. The
# process stays the same throughout.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl
cw_tmpdir

cfg=$CW_TMP/connwatch.yml
# write_config TEXT replaces the config file the way editors do (new file, rename).
write_config()
{
    printf '%s\n' "$1" >"$cfg.new"
    mv -f "$cfg.new" "$cfg"
}

good='global:
  interval: 1s
  timeout: 500ms
host:
  enabled: true
  interval: 1s'
# Line 7, column 3: a key the host section does not have.
broken='global:
  interval: 1s
  timeout: 500ms
host:
  enabled: true
  interval: 1s
  bogus_key: 3'
disabled='global:
  interval: 1s
  timeout: 500ms
host:
  enabled: false'

write_config "$good"
cw_start_connwatch "$cfg"
pid=$CW_PID
cw_wait_ready
cw_scrape >"$CW_TMP/s0.txt"
[[ $(cw_metric_in "$CW_TMP/s0.txt" connwatch_config_last_reload_successful) == 1 ]] ||
    cw_fail "connwatch_config_last_reload_successful is not 1 at start"
ts0=$(cw_metric_in "$CW_TMP/s0.txt" connwatch_config_last_reload_success_timestamp_seconds) ||
    cw_fail "connwatch_config_last_reload_success_timestamp_seconds missing"
cw_metric_in "$CW_TMP/s0.txt" connwatch_host_tcp_connections 'state="established"' >/dev/null ||
    cw_fail "no host series with the good configuration"

# --- broken file + SIGHUP: keeps serving the old configuration --------------------------
write_config "$broken"
kill -HUP "$pid"
start=$(cw_now)
until grep -q 'reload failed' "$CW_LOG"; do
    (($(cw_elapsed_ms "$start") < 10000 * CW_SLOW)) || cw_fail "no \"reload failed\" log line 10 s after SIGHUP"
    sleep 0.05
done
line=$(grep 'reload failed' "$CW_LOG" | head -n 1)
[[ $line == *"$cfg:7:3:"* ]] || cw_fail "the reload failure does not name $cfg:7:3: $line"
[[ $line == *bogus_key* ]] || cw_fail "the reload failure does not name the field bogus_key: $line"
[[ $line == *level=error* ]] || cw_fail "the reload failure is not logged at level error: $line"
cw_pass "SIGHUP with a broken file logged: $line"

kill -0 "$pid" 2>/dev/null || cw_fail "connwatch died after SIGHUP with a broken file"
cw_scrape >"$CW_TMP/s1.txt"
[[ $(cw_metric_in "$CW_TMP/s1.txt" connwatch_config_last_reload_successful) == 0 ]] ||
    cw_fail "connwatch_config_last_reload_successful is not 0 after a failed reload"
ts1=$(cw_metric_in "$CW_TMP/s1.txt" connwatch_config_last_reload_success_timestamp_seconds)
cw_cmp "$ts1" == "$ts0" || cw_fail "the last success timestamp moved ($ts0 -> $ts1) on a failed reload"
# The old configuration still runs: its host check goes on publishing.
cw_wait_fresh_runs 1
cw_scrape >"$CW_TMP/s1b.txt"
[[ $(cw_metric_in "$CW_TMP/s1b.txt" connwatch_check_success 'check="host"') == 1 ]] ||
    cw_fail "the host check stopped succeeding after a failed reload"
cw_pass "old configuration kept: reload_successful 0, host check still running"

# --- broken file + POST /-/reload: 500 with the error text ----------------------------------
code=$(curl -sS -o "$CW_TMP/reload1.body" -w '%{http_code}' --max-time $((10 * CW_SLOW)) \
    -X POST "http://$CW_ADDR/-/reload") || cw_fail "POST /-/reload failed to connect"
[[ $code == 500 ]] || cw_fail "POST /-/reload with a broken file answered $code, not 500"
grep -q "$cfg:7:3: .*bogus_key" "$CW_TMP/reload1.body" || {
    cat "$CW_TMP/reload1.body" >&2
    cw_fail "the 500 answer does not carry the error $cfg:7:3: ... bogus_key"
}
[[ $(cw_metric connwatch_config_last_reload_successful) == 0 ]] ||
    cw_fail "connwatch_config_last_reload_successful is not 0 after POST /-/reload failed"
cw_pass "POST /-/reload with a broken file: 500, $(grep -m1 bogus_key "$CW_TMP/reload1.body")"

# --- fixed file (host disabled) + POST /-/reload: 200, host series gone ------------------------
write_config "$disabled"
before_post=$(date +%s)
code=$(curl -sS -o "$CW_TMP/reload2.body" -w '%{http_code}' --max-time $((10 * CW_SLOW)) \
    -X POST "http://$CW_ADDR/-/reload") || cw_fail "POST /-/reload failed to connect"
[[ $code == 200 ]] || {
    cat "$CW_TMP/reload2.body" >&2
    cw_fail "POST /-/reload with a good file answered $code, not 200"
}
cw_scrape >"$CW_TMP/s2.txt"
[[ $(cw_metric_in "$CW_TMP/s2.txt" connwatch_config_last_reload_successful) == 1 ]] ||
    cw_fail "connwatch_config_last_reload_successful is not 1 after a good reload"
ts2=$(cw_metric_in "$CW_TMP/s2.txt" connwatch_config_last_reload_success_timestamp_seconds)
cw_cmp "$ts2" ">=" "$before_post" || cw_fail "last success timestamp $ts2 is older than the reload ($before_post)"
if grep -Eq '^connwatch_host_|check="host"' "$CW_TMP/s2.txt"; then
    grep -E '^connwatch_host_|check="host"' "$CW_TMP/s2.txt" | head >&2
    cw_fail "host series are still served after the host was disabled"
fi
[[ $(cw_metric_in "$CW_TMP/s2.txt" connwatch_checks_configured) == 0 ]] ||
    cw_fail "connwatch_checks_configured is not 0 with the host disabled"
# ... and they stay away: no late run of the removed check publishes (a
# negative check, so it has to wait; 1.5 intervals of the old check).
sleep 1.5
cw_scrape >"$CW_TMP/s2b.txt"
if grep -Eq '^connwatch_host_|check="host"' "$CW_TMP/s2b.txt"; then
    cw_fail "host series came back 1.5 s after the host was disabled"
fi
grep -q 'configuration reloaded' "$CW_LOG" || cw_fail "no \"configuration reloaded\" log line"
cw_pass "POST /-/reload with the host disabled: 200, reload_successful 1, host series gone"

# --- good file + SIGHUP: the host check comes back ---------------------------------------
write_config "$good"
kill -HUP "$pid"
start=$(cw_now)
until cw_scrape >"$CW_TMP/s3.txt" && cw_metric_in "$CW_TMP/s3.txt" connwatch_check_success 'check="host"' >/dev/null &&
    cw_metric_in "$CW_TMP/s3.txt" connwatch_host_tcp_connections 'state="established"' >/dev/null; do
    (($(cw_elapsed_ms "$start") < 10000 * CW_SLOW)) || cw_fail "host series did not come back 10 s after SIGHUP"
    sleep 0.1
done
[[ $(cw_metric_in "$CW_TMP/s3.txt" connwatch_config_last_reload_successful) == 1 ]] ||
    cw_fail "connwatch_config_last_reload_successful is not 1 after SIGHUP with a good file"
cw_pass "SIGHUP with the host enabled again: host series back"

# --- the same process all along ------------------------------------------------------------
if [[ $CW_PID != "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    cw_fail "connwatch PID $pid is gone"
fi
[[ $(grep -c 'msg="connwatch started"' "$CW_LOG") == 1 ]] || cw_fail "connwatch started more than once"
st0=$(cw_metric_in "$CW_TMP/s0.txt" process_start_time_seconds)
st3=$(cw_metric_in "$CW_TMP/s3.txt" process_start_time_seconds)
cw_cmp "$st0" == "$st3" || cw_fail "process_start_time_seconds changed ($st0 -> $st3)"
rc=0
cw_stop || rc=$?
[[ $rc -eq 0 ]] || cw_fail "connwatch exited $rc on SIGTERM after the reloads"
cw_pass "same PID $pid throughout, exit 0"
