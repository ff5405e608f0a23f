#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_golden.sh - end to end, as node_exporter's end-to-end test: connwatch
# on the fixture /proc tree (tests/fixtures/host/proc/: the 6.18 captures of
# stat, meminfo, net/snmp, net/netstat, net/tcp, net/tcp6) with a fixed
# configuration, its whole /metrics (text format 0.0.4) compared with
# tests/golden/e2e_host.prom. Every line counts: a renamed series, a changed
# HELP text, a lost label or another value fails with the diff.
#
#   CW_UPDATE_GOLDEN=1 meson test -C build it_golden    rewrites the golden
#   file from this run (then review the diff in git).
#
# The configuration runs the host check once (interval 1h, states read from
# the fixture's net/tcp{,6}, never from netlink) and nothing else, so every
# host series comes from the fixture alone; the ratios are the first run's,
# since boot. The scrape is taken once that run is published and its worker
# is idle again (busy_workers 0), so the scheduler's series are fixed too.
#
# What depends on the machine or the clock is normalised, explicitly, to
# the value NORMALISED (the series, their labels, HELP and TYPE still count):
#   process_*                                    this process: CPU, memory,
#                                                fds, start time, fd limit
#   connwatch_check_duration_seconds             how long the run took
#   connwatch_config_last_reload_success_timestamp_seconds   when it started
#   connwatch_http_connections_max               sized from the fd limit
#   connwatch_http_connections                   scrapes whose close the
#                                                server may not have seen yet
# and the label revision="..." of connwatch_build_info (git describe of the
# checkout) reads revision="REVISION". Nothing is left out.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl diff
cw_tmpdir
golden=$CW_SOURCE_ROOT/tests/golden/e2e_host.prom
proc=$CW_SOURCE_ROOT/tests/fixtures/host/proc
[[ -f $proc/stat && -f $proc/net/tcp6 ]] || cw_fail "no fixture /proc tree at $proc"

cfg=$CW_TMP/connwatch.yml
cat >"$cfg" <<EOF
global:
  interval: 1h
  timeout: 5s
host:
  enabled: true
  interval: 1h
  proc_path: $proc
  connection_states: proc
EOF
cw_start_connwatch "$cfg"
cw_wait_ready

# normalise < SCRAPE > NORMALISED SCRAPE (see the list above)
normalise()
{
    sed -E \
        -e 's/^(process_[a-z_]+(\{[^}]*\})?) .*/\1 NORMALISED/' \
        -e 's/^(connwatch_check_duration_seconds(\{[^}]*\})?) .*/\1 NORMALISED/' \
        -e 's/^(connwatch_config_last_reload_success_timestamp_seconds) .*/\1 NORMALISED/' \
        -e 's/^(connwatch_http_connections_max) .*/\1 NORMALISED/' \
        -e 's/^(connwatch_http_connections) .*/\1 NORMALISED/' \
        -e 's/^(connwatch_build_info\{.*)revision="[^"]*"/\1revision="REVISION"/'
}

# The host run is published and its worker idle again.
start=$(cw_now)
while :; do
    cw_scrape >"$CW_TMP/m.txt"
    if grep -q '^connwatch_check_success{check="host"} 1$' "$CW_TMP/m.txt" &&
        grep -q '^connwatch_scheduler_busy_workers 0$' "$CW_TMP/m.txt"; then
        break
    fi
    (($(cw_elapsed_ms "$start") < 10000 * CW_SLOW)) ||
        cw_fail "the host check on the fixture did not publish a successful run within $((10 * CW_SLOW)) s"
    sleep 0.05
done
cw_scrape >"$CW_TMP/m.txt"
normalise <"$CW_TMP/m.txt" >"$CW_TMP/actual.prom"
[[ -s $CW_TMP/actual.prom ]] || cw_fail "empty /metrics"
cw_stop

if [[ -n ${CW_UPDATE_GOLDEN:-} ]]; then
    cp "$CW_TMP/actual.prom" "$golden"
    cw_pass "golden file rewritten: $golden ($(wc -l <"$golden") lines); review it with git diff"
    exit 0
fi
[[ -f $golden ]] || cw_fail "no golden file $golden (CW_UPDATE_GOLDEN=1 writes it)"
if ! diff -u "$golden" "$CW_TMP/actual.prom" >"$CW_TMP/diff.txt"; then
    cat "$CW_TMP/diff.txt" >&2
    cw_fail "/metrics differs from $golden (above; CW_UPDATE_GOLDEN=1 rewrites it if the change is meant)"
fi
cw_pass "/metrics on the fixture /proc tree matches $(basename "$golden") ($(wc -l <"$golden") lines)"
