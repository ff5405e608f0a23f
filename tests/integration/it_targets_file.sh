#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_targets_file.sh - a tcp check whose targets come from a Prometheus
# file_sd file, rewritten while connwatch runs: targets added and removed
# appear and vanish without a restart (the watcher looks every 2 s), the
# unchanged target keeps its counters, the group labels land on the series;
# a bad version is kept out (the previous targets stay), logged with
# file:line:col and the field, and counted in
# connwatch_targets_file_errors_total; a SIGHUP re-reads the file; the
# exposition passes promtool check metrics. The process stays the same.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl promtool
cw_tmpdir

cfg=$CW_TMP/connwatch.yml
sd=$CW_TMP/targets/sd.json
mkdir -p "$CW_TMP/targets"
# Closed loopback ports: every run fails with "refused", so
# connwatch_check_failures_total counts runs.
p1=$(cw_free_port)
p2=$p1
while [[ $p2 == "$p1" ]]; do p2=$(cw_free_port); done
p3=$p1
while [[ $p3 == "$p1" || $p3 == "$p2" ]]; do p3=$(cw_free_port); done
p4=$p1
while [[ $p4 == "$p1" || $p4 == "$p2" || $p4 == "$p3" ]]; do p4=$(cw_free_port); done

# write_sd TEXT replaces the targets file the way file_sd writers do (new
# file, rename).
write_sd()
{
    printf '%s\n' "$1" >"$sd.new"
    mv -f "$sd.new" "$sd"
}

# The targets file is named relative to the configuration's directory.
cat >"$cfg" <<EOC
global:
  interval: 1s
  timeout: 500ms
host:
  enabled: false
services:
  - name: web
    labels: {team: edge}
    checks:
      - tcp: {targets_file: targets/sd.json}
EOC

write_sd "[{\"targets\": [\"127.0.0.1:$p1\", \"127.0.0.1:$p2\"], \"labels\": {\"env\": \"prod\"}}]"
cw_start_connwatch "$cfg"
pid=$CW_PID
cw_wait_ready

# failures FILE PORT prints the refused count of the target at PORT in FILE.
failures()
{
    awk -v t="target=\"127.0.0.1:$2\"" '
        /^connwatch_check_failures_total\{/ && index($0, t) && index($0, "reason=\"refused\"") {
            print $NF; found = 1; exit }
        END { exit !found }' "$1"
}
# wait_for DESCRIPTION COMMAND... scrapes into $CW_TMP/s.txt until COMMAND
# succeeds on it (at most 15 s: two polls of the watcher and runs).
wait_for()
{
    local what=$1 start
    shift
    start=$(cw_now)
    while :; do
        cw_scrape >"$CW_TMP/s.txt"
        "$@" && return 0
        (($(cw_elapsed_ms "$start") < 15000 * CW_SLOW)) || cw_fail "not within 15 s: $what"
        sleep 0.2
    done
}
has_target() { grep -q "target=\"127.0.0.1:$1\"" "$CW_TMP/s.txt"; }
lacks_target() { ! has_target "$1"; }
metric_is() { [[ $(cw_metric_in "$CW_TMP/s.txt" "$1" "file=\"$sd\"" 2>/dev/null) == "$2" ]]; }
failures_at_least() { cw_cmp "$(failures "$CW_TMP/s.txt" "$1" 2>/dev/null || echo 0)" ">=" "$2"; }

# --- version 1: two targets with the group's label ------------------------------------
v1_ran() { failures_at_least "$p1" 2 && failures_at_least "$p2" 2; }
wait_for "both targets of version 1 failing twice" v1_ran
line=$(grep "connwatch_check_success{.*target=\"127.0.0.1:$p1\"" "$CW_TMP/s.txt") ||
    cw_fail "no connwatch_check_success series for 127.0.0.1:$p1"
[[ $line == *'team="edge"'* && $line == *'env="prod"'* ]] ||
    cw_fail "the service's and the group's labels are not on the series: $line"
metric_is connwatch_targets_file_targets 2 || cw_fail "connwatch_targets_file_targets is not 2"
metric_is connwatch_targets_file_last_load_successful 1 ||
    cw_fail "connwatch_targets_file_last_load_successful is not 1 at start"
metric_is connwatch_targets_file_errors_total 0 || cw_fail "connwatch_targets_file_errors_total is not 0"
rc=0
promtool check metrics <"$CW_TMP/s.txt" >"$CW_TMP/promtool.out" 2>&1 || rc=$?
if [[ $rc -ne 0 || -s $CW_TMP/promtool.out ]]; then
    cat "$CW_TMP/promtool.out" >&2
    cw_fail "promtool check metrics reports problems"
fi
before=$(failures "$CW_TMP/s.txt" "$p1")
cw_pass "version 1: 2 targets with team=edge env=prod, promtool clean ($p1 refused $before times)"

# --- version 2: p2 removed, p3 added in another group -----------------------------------
write_sd "[{\"targets\": [\"127.0.0.1:$p1\"], \"labels\": {\"env\": \"prod\"}},
 {\"targets\": [\"127.0.0.1:$p3\"], \"labels\": {\"env\": \"dev\", \"__meta_source\": \"x\"}}]"
v2_ran() { failures_at_least "$p3" 1 && lacks_target "$p2"; }
wait_for "target $p3 added and run, $p2 removed" v2_ran
after=$(failures "$CW_TMP/s.txt" "$p1") || cw_fail "no refused count for $p1 in version 2"
cw_cmp "$after" ">=" "$before" ||
    cw_fail "the unchanged target's counter was reset by the change ($before -> $after)"
line=$(grep "connwatch_check_success{.*target=\"127.0.0.1:$p3\"" "$CW_TMP/s.txt") ||
    cw_fail "no connwatch_check_success series for 127.0.0.1:$p3"
[[ $line == *'env="dev"'* && $line != *__meta* ]] || cw_fail "the new group's labels are wrong: $line"
metric_is connwatch_targets_file_targets 2 || cw_fail "connwatch_targets_file_targets is not 2 after v2"
grep -q 'msg="targets files changed, checks updated"' "$CW_LOG" ||
    cw_fail "no log line for the targets change"
cw_pass "version 2: $p3 added (env=dev), $p2 removed, $p1 kept its counter ($before -> $after)"

# --- version 3: bad (a target without a port): kept out, counted ----------------------------
write_sd "[{\"targets\": [\"127.0.0.1:$p1\", \"127.0.0.1:$p4\", \"nope\"]}]"
wait_for "the bad version counted" metric_is connwatch_targets_file_errors_total 1
metric_is connwatch_targets_file_last_load_successful 0 ||
    cw_fail "connwatch_targets_file_last_load_successful is not 0 after a bad version"
has_target "$p3" || cw_fail "the previous targets were dropped by a bad version"
lacks_target "$p4" || cw_fail "a target of the bad version is checked"
line=$(grep 'targets file rejected' "$CW_LOG" | head -n 1)
[[ $line == *"$sd:1:"*"[0].targets[2]"*"missing port"* ]] ||
    cw_fail "the rejection does not name file:line:col and the field: $line"
[[ $line == *level=error* ]] || cw_fail "the rejection is not logged at level error: $line"
# Counted once: later polls of the same bad file do not count it again.
sleep 2.5
cw_scrape >"$CW_TMP/s.txt"
metric_is connwatch_targets_file_errors_total 1 || cw_fail "an unchanged bad file was counted again"
promtool check metrics <"$CW_TMP/s.txt" >"$CW_TMP/promtool.out" 2>&1 || cw_fail "promtool: $(cat "$CW_TMP/promtool.out")"
[[ ! -s $CW_TMP/promtool.out ]] || cw_fail "promtool: $(cat "$CW_TMP/promtool.out")"
cw_pass "version 3 rejected and counted once, previous targets kept: $line"

# --- version 4: good again ------------------------------------------------------------------
write_sd "[{\"targets\": [\"127.0.0.1:$p1\", \"127.0.0.1:$p4\"]}]"
# p1 loses its env label: a new series, so a new instance (its first run awaited).
v4_ran() { failures_at_least "$p4" 1 && failures_at_least "$p1" 1 && lacks_target "$p3"; }
wait_for "version 4 applied and run" v4_ran
metric_is connwatch_targets_file_last_load_successful 1 ||
    cw_fail "connwatch_targets_file_last_load_successful is not 1 after a good version"
metric_is connwatch_targets_file_errors_total 1 || cw_fail "the error count changed on a good version"
line=$(grep "connwatch_check_success{.*target=\"127.0.0.1:$p1\"" "$CW_TMP/s.txt") ||
    cw_fail "no connwatch_check_success series for 127.0.0.1:$p1 in version 4"
[[ $line != *'env="prod"'* ]] || cw_fail "a label the file no longer gives stays: $line"
cw_pass "version 4: $p4 added, $p3 removed, the error count unchanged"

# --- SIGHUP: the file is read again; the unchanged instances stay ------------------------------
before=$(failures "$CW_TMP/s.txt" "$p4") || cw_fail "no refused count for $p4"
write_sd "[{\"targets\": [\"127.0.0.1:$p1\", \"127.0.0.1:$p4\"]}, {\"targets\": \"x\"}]"
kill -HUP "$pid"
# Counted by the reload (and once more if the watcher saw it first).
errors_at_least() { cw_cmp "$(cw_metric_in "$CW_TMP/s.txt" connwatch_targets_file_errors_total "file=\"$sd\"")" ">=" "$1"; }
wait_for "the bad version read by SIGHUP" errors_at_least 2
has_target "$p4" || cw_fail "SIGHUP with a bad targets file dropped the targets"
[[ $(cw_metric_in "$CW_TMP/s.txt" connwatch_config_last_reload_successful) == 1 ]] ||
    cw_fail "a bad targets file failed the reload of a good configuration"
after=$(failures "$CW_TMP/s.txt" "$p4") || cw_fail "no refused count for $p4 after SIGHUP"
cw_cmp "$after" ">=" "$before" || cw_fail "SIGHUP reset a kept target's counter ($before -> $after)"
cw_pass "SIGHUP: the bad targets file kept out, the configuration reloaded, counters intact"

kill -0 "$pid" 2>/dev/null || cw_fail "connwatch died"
[[ $CW_PID == "$pid" ]] || cw_fail "connwatch was restarted"
cw_stop || cw_fail "connwatch did not exit 0 on SIGTERM"
cw_pass "one process throughout; clean exit"
