#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_config_files.sh - --config.file must name a regular file. A FIFO
# without a writer and a character device (/dev/zero, endless) are refused
# at once with "not a regular file" by --config.check and at startup (exit
# 2), and a SIGHUP reload that finds the file replaced by a FIFO or by
# /dev/zero fails, names the file and keeps the running configuration,
# while the daemon keeps answering and still stops on SIGTERM. The old
# loader blocked in open() (FIFO) or read until the size limit (device),
# forever in the reload case for the FIFO.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl mkfifo timeout
cw_tmpdir
bin=$CW_BUILD_ROOT/connwatch
fifo=$CW_TMP/fifo.yml
mkfifo "$fifo"

# check_refused PATH KIND: --config.check and startup exit 2 within 10 s
# (120 s under valgrind) and say "not a regular file (KIND)".
check_refused()
{
    local path=$1 kind=$2 rc mode
    local -a wrap=()
    [[ -n $CW_WRAPPER ]] && read -r -a wrap <<<"$CW_WRAPPER"
    for mode in --config.check --web.listen-address=127.0.0.1:0; do
        rc=0
        timeout $((10 * CW_SLOW)) "${wrap[@]}" "$bin" "$mode" --config.file="$path" "${CW_AS_ROOT[@]}" \
            >"$CW_TMP/out.txt" 2>&1 </dev/null || rc=$?
        ((rc != 124)) || cw_fail "$mode with $path did not return within $((10 * CW_SLOW)) s"
        ((rc == 2)) || cw_fail "$mode with $path: exit $rc, want 2: $(cat "$CW_TMP/out.txt")"
        grep -qF "$path: cannot read: not a regular file ($kind)" "$CW_TMP/out.txt" ||
            cw_fail "$mode with $path: no clear error: $(cat "$CW_TMP/out.txt")"
    done
}
check_refused "$fifo" "a FIFO"
check_refused /dev/zero "a character device"
cw_note "--config.check and startup refuse a FIFO and /dev/zero"

# --- reloads ----------------------------------------------------------------------------
cfg=$CW_TMP/connwatch.yml
printf 'host: {enabled: true, interval: 1s}\n' >"$cfg"
cw_start_connwatch "$cfg"
cw_wait_ready

# reload_refused KIND: SIGHUP must fail the reload (metric 0, an error log
# line naming the file) within 10 s, the host series of the old
# configuration must stay.
reload_refused()
{
    local kind=$1 start v
    kill -HUP "$CW_PID"
    start=$(cw_now)
    until grep -qF "not a regular file ($kind)" "$CW_LOG"; do
        (($(cw_elapsed_ms "$start") < 10000 * CW_SLOW)) ||
            cw_fail "the SIGHUP reload of $kind did not fail within $((10 * CW_SLOW)) s"
        sleep 0.1
    done
    cw_scrape >"$CW_TMP/s.txt"
    v=$(cw_metric_in "$CW_TMP/s.txt" connwatch_config_last_reload_successful) || v=missing
    [[ $v == 0 ]] || cw_fail "connwatch_config_last_reload_successful is $v after reloading $kind"
    cw_metric_in "$CW_TMP/s.txt" connwatch_host_cpu_seconds_total >/dev/null ||
        cw_fail "the old configuration's host series are gone after reloading $kind"
    grep 'msg="reload failed' "$CW_LOG" | tail -n1 | grep -qF "$cfg" ||
        cw_fail "the reload error does not name $cfg"
}

rm -f "$cfg"
mkfifo "$cfg"
reload_refused "a FIFO"
rm -f "$cfg"
ln -s /dev/zero "$cfg"
reload_refused "a character device"
# Back to a regular file: the reload works again.
rm -f "$cfg"
printf 'host: {enabled: true, interval: 1s}\n' >"$cfg"
kill -HUP "$CW_PID"
start=$(cw_now)
until [[ $(cw_metric connwatch_config_last_reload_successful || true) == 1 ]]; do
    (($(cw_elapsed_ms "$start") < 10000 * CW_SLOW)) ||
        cw_fail "a regular file again did not reload within $((10 * CW_SLOW)) s"
    sleep 0.1
done
cw_stop || cw_fail "connwatch exited with status $? on SIGTERM"
cw_pass "FIFOs and devices refused by --config.check, startup and reload"
