#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_icmp_many.sh - smoke run of the icmp engine with 1,000 targets
# (127.0.x.y on the loopback of the test's own namespace), one probe per
# second each: every target must report success, at least 3 probes in its
# window, zero loss and no duplicates, and /metrics must carry all 1,000
# series of each icmp family. (Throughput and CPU figures are in
# bench/bench-icmp.sh, not here.)
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"
# shellcheck source=tests/lib/icmp.sh
. "$CW_SOURCE_ROOT/tests/lib/icmp.sh"
icmp_need_root
cw_tmpdir

n=1000
cfg=$CW_TMP/connwatch.yml
{
    printf 'global:\n  interval: 1s\n  timeout: 1s\nhost:\n  enabled: false\nservices:\n  - name: many\n    checks:\n'
    for ((i = 0; i < n; i++)); do
        printf '      - icmp: {target: 127.0.%d.%d}\n' $((i / 250 + 1)) $((i % 250 + 1))
    done
} >"$cfg"
cw_start_connwatch "$cfg"
icmp_wait_window "$n" 3 $((20 + 10 * (CW_SLOW - 1)))
f=$CW_TMP/scrape.prom
awk -v n="$n" '
    /^connwatch_check_success\{check="icmp"/ { s++; if ($NF != 1) bad = bad " " $0 }
    /^connwatch_icmp_loss_ratio\{/ { l++; if ($NF != 0) bad = bad " " $0 }
    /^connwatch_icmp_duplicates_total\{/ { d++; if ($NF != 0) bad = bad " " $0 }
    /^connwatch_icmp_rtt_avg_seconds\{/ { a++; if ($NF <= 0 || $NF > 0.1) bad = bad " " $0 }
    END {
        if (s != n || l != n || d != n || a != n) { print "series:", s, l, d, a; exit 1 }
        if (bad != "") { print substr(bad, 1, 600); exit 1 } }' "$f" ||
    cw_fail "not every one of the $n targets is healthy"
cw_stop || cw_fail "connwatch exited with status $?"
cw_pass "$n loopback targets: all succeed with zero loss"
