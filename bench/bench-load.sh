#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-load.sh - how long `connwatch --config.check` takes to load large
# configurations, and how much memory it needs:
#   - N = 1,000 / 10,000 / 100,000 tcp checks, 10 checks a service
#     (N/10 services);
#   - the same N with one check a service (N services: the shape that made
#     the old duplicate-name loop quadratic);
# each generated with spread names (a hash first, so that no two names share
# a long prefix and strcmp() does not end early by luck), timed as the
# median of RUNS runs (wall time and peak RSS from /usr/bin/time).
# With OLD_BUILD (default /work/main/build when it holds a connwatch) the
# same files are loaded by that build too, for the before/after table.
#
#   bench/bench-load.sh                       (BUILD_DIR=build, RUNS=3)
#   SIZES="1000 20000" bench/bench-load.sh
#   OLD_BUILD= bench/bench-load.sh            (no comparison)
#
# No network traffic; it starts only connwatch --config.check and waits for it.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
RUNS=${RUNS:-3}
SIZES=${SIZES:-1000 10000 100000}
if [[ -z ${OLD_BUILD+set} ]]; then
    OLD_BUILD=/work/main/build
fi
# A run slower than this is stopped and reported as such (the old build at
# 100,000 services would take minutes).
LIMIT_S=${LIMIT_S:-120}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"

[[ -x $BUILD_DIR/connwatch ]] || ninja -C "$BUILD_DIR" connwatch >&2
[[ -x /usr/bin/time ]] || cw_fail "/usr/bin/time (Debian package time) is needed"
if [[ -n $OLD_BUILD && ! -x $OLD_BUILD/connwatch ]]; then
    cw_note "no $OLD_BUILD/connwatch: no comparison"
    OLD_BUILD=""
fi
cw_tmpdir

# gen FILE CHECKS PER_SERVICE writes a configuration of CHECKS tcp checks,
# PER_SERVICE to a service, with names spread by a hash.
gen()
{
    awk -v n="$2" -v per="$3" 'BEGIN {
        print "host: {enabled: false}"
        print "services:"
        for (c = 0; c < n; c++) {
            if (c % per == 0) {
                s = c / per
                h = (s * 2654435761) % 4294967296
                printf "  - name: %08x-service-%d\n", h, s
                printf "    labels: {team: t%d}\n", s % 7
                print "    checks:"
            }
            h = (c * 2246822519) % 4294967296
            printf "      - tcp: {target: \"%08x.host-%d.example.net:443\", interval: 30s}\n", h, c
        }
    }' >"$1"
}

# measure BIN FILE prints "SECONDS MAXRSS_KB STATUS" of the median run.
measure()
{
    local bin=$1 file=$2 i out rc
    local -a rows=()
    for ((i = 0; i < RUNS; i++)); do
        rc=0
        out=$(timeout "$LIMIT_S" /usr/bin/time -f '%e %M' "$bin" --config.check \
            --config.file="$file" 2>&1 >/dev/null) || rc=$?
        if ((rc == 124)); then
            echo "timeout - over_${LIMIT_S}s"
            return
        fi
        rows+=("$(tail -n1 <<<"$out") $([[ $rc -eq 0 ]] && echo ok || echo "refused")")
        if ((rc != 0)); then
            cw_note "$bin refused $file: $(head -n1 <<<"$out")"
            break
        fi
    done
    printf '%s\n' "${rows[@]}" | sort -n | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'
}

printf '%-8s %-9s %-10s %12s %12s %14s %12s\n' checks services bytes new_s new_rss_MiB \
    old_s old_rss_MiB
for n in $SIZES; do
    for per in 10 1; do
        f=$CW_TMP/load-$n-$per.yml
        gen "$f" "$n" "$per"
        read -r t rss st <<<"$(measure "$BUILD_DIR/connwatch" "$f")"
        [[ $st == ok ]] || cw_fail "the new build does not load $n checks ($per a service): $st"
        ot=- orss=- ost=""
        if [[ -n $OLD_BUILD ]]; then
            read -r ot orss ost <<<"$(measure "$OLD_BUILD/connwatch" "$f")"
            [[ $orss == - ]] || orss=$(awk -v k="$orss" 'BEGIN { printf "%.1f", k / 1024 }')
            [[ $ost == ok ]] || ot="$ot($ost)"
        fi
        printf '%-8s %-9s %-10s %12s %12s %14s %12s\n' "$n" "$((n / per))" "$(stat -c %s "$f")" \
            "$t" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$ot" "$orss"
        rm -f "$f"
    done
done
cw_note "target: 100,000 checks in 10,000 services load in under 5 s (normal build)"
