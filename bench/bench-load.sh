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
# Then one tcp stanza whose targets_file (Prometheus file_sd) lists
# SD_SIZES targets (default 1,000 / 10,000 / 100,000), as JSON and as YAML,
# in groups of 50 with three labels each and realistic host names
# (region, role, number, a hashed suffix): load time, CPU and peak RSS of
# --config.check, and with SD_LIVE=1 (default) the time a running connwatch
# takes to apply a rewrite that adds and removes 1 % of 10,000 targets
# (the "took" of its log line; checks at interval 1h to closed loopback
# ports, so almost nothing is sent).
# With OLD_BUILD (default /work/main/build when it holds a connwatch) the
# same files are loaded by that build too, for the before/after table.
#
#   bench/bench-load.sh                       (BUILD_DIR=build, RUNS=3)
#   SIZES="1000 20000" bench/bench-load.sh
#   OLD_BUILD= bench/bench-load.sh            (no comparison)
#   SIZES= SD_SIZES=10000 bench/bench-load.sh (only the file_sd figure)
#
# No network traffic; it starts only connwatch --config.check and waits for it.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
RUNS=${RUNS:-3}
SIZES=${SIZES-1000 10000 100000}
SD_SIZES=${SD_SIZES-1000 10000 100000}
SD_LIVE=${SD_LIVE:-1}
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

[[ -z $SIZES ]] || printf '%-8s %-9s %-10s %12s %12s %14s %12s\n' checks services bytes new_s \
    new_rss_MiB old_s old_rss_MiB
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
[[ -z $SIZES ]] || cw_note "target: 100,000 checks in 10,000 services load in under 5 s (normal build)"

# gen_sd FILE N FORMAT [SKIP] writes a file_sd file of N targets (json or
# yaml), 50 a group, each group with env, region and rack labels; targets
# "<role><n>.<hash>.<region>.example.net:PORT". With SKIP, every 100th
# target from SKIP on is left out and as many new ones added (1 % changed).
gen_sd()
{
    awk -v n="$2" -v fmt="$3" -v skip="${4:-}" 'BEGIN {
        split("ap-east-1 eu-west-2 us-east-1 cn-north-1 sa-east-1", region, " ")
        split("web api db cache queue edge", role, " ")
        groups = 0
        if (fmt == "json") printf "["
        for (c = 0; c < n; c++) {
            if (c % 50 == 0) {
                g = int(c / 50)
                r = region[g % 5 + 1]
                if (fmt == "json") {
                    if (g) printf "]},\n "
                    printf "{\"labels\": {\"env\": \"%s\", \"region\": \"%s\", \"rack\": \"r%03d\"}, \"targets\": [", g % 3 ? "prod" : "staging", r, g % 211
                } else {
                    printf "- labels: {env: %s, region: %s, rack: r%03d}\n  targets:\n", g % 3 ? "prod" : "staging", r, g % 211
                }
                first = 1
            }
            id = c
            if (skip != "" && c % 100 == skip) id = n + c
            h = (id * 2654435761) % 4294967296
            t = sprintf("%s%d.%06x.%s.example.net:%d", role[id % 6 + 1], id % 997, h % 16777216, region[int(id / 50) % 5 + 1], 1024 + (h % 60000))
            if (fmt == "json") { printf "%s\"%s\"", first ? "" : ", ", t } else { printf "    - %s\n", t }
            first = 0
        }
        if (fmt == "json") printf "%s]\n", n ? "]}" : ""
    }' >"$1"
}

# measure_sd FILE prints "WALL_S CPU_S MAXRSS_KB" of the median of RUNS
# loads of one tcp stanza with targets_file FILE.
measure_sd()
{
    local cfg=$CW_TMP/sd.yml i out
    local -a rows=()
    printf 'host: {enabled: false}\nservices:\n  - name: fleet\n    checks:\n      - tcp: {targets_file: %s, interval: 30s}\n' \
        "$1" >"$cfg"
    for ((i = 0; i < RUNS; i++)); do
        out=$(timeout "$LIMIT_S" /usr/bin/time -f '%e %U %S %M' "$BUILD_DIR/connwatch" --config.check \
            --config.file="$cfg" 2>&1 >/dev/null) || {
            cw_note "--config.check refused $1: $(head -n1 <<<"$out")"
            echo "refused - -"
            return
        }
        rows+=("$(tail -n1 <<<"$out" | awk '{ printf "%s %.2f %s", $1, $2 + $3, $4 }')")
    done
    printf '%s\n' "${rows[@]}" | sort -n | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'
}

if [[ -n $SD_SIZES ]]; then
    echo
    printf '%-8s %-6s %-10s %8s %8s %10s\n' targets format bytes load_s cpu_s rss_MiB
    for n in $SD_SIZES; do
        for fmt in json yaml; do
            f=$CW_TMP/sd-$n.$fmt
            gen_sd "$f" "$n" "$fmt"
            read -r t cpu rss <<<"$(measure_sd "$f")"
            [[ $t != refused ]] || cw_fail "the $fmt file of $n targets does not load"
            printf '%-8s %-6s %-10s %8s %8s %10s\n' "$n" "$fmt" "$(stat -c %s "$f")" "$t" "$cpu" \
                "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
            rm -f "$f"
        done
    done
    cw_note "target: 10,000 targets load from a file_sd file in under 1 s"
fi

if [[ $SD_LIVE == 1 ]]; then
    sd=$CW_TMP/live.json
    gen_sd "$sd" 10000 json
    printf 'host: {enabled: false}\nservices:\n  - name: fleet\n    checks:\n      - tcp: {targets_file: live.json, interval: 1h, timeout: 1s}\n' \
        >"$CW_TMP/live.yml"
    # Every target on a closed loopback port: resolution is not what is measured.
    sed -i "s/\"[a-z]*[0-9]*\.[0-9a-f]*\.[a-z0-9-]*\.example\.net:\([0-9]*\)\"/\"127.0.0.1:\1\"/g" "$sd"
    cw_start_connwatch "$CW_TMP/live.yml"
    for round in 1 2 3; do
        gen_sd "$sd.new" 10000 json $((round * 7))
        sed -i "s/\"[a-z]*[0-9]*\.[0-9a-f]*\.[a-z0-9-]*\.example\.net:\([0-9]*\)\"/\"127.0.0.1:\1\"/g" "$sd.new"
        before=$(grep -c 'targets files changed' "$CW_LOG" || true)
        mv -f "$sd.new" "$sd"
        start=$(cw_now)
        until (($(grep -c 'targets files changed' "$CW_LOG" || true) > before)); do
            (($(cw_elapsed_ms "$start") < 30000)) || cw_fail "no refresh within 30 s"
            sleep 0.05
        done
        line=$(grep 'targets files changed' "$CW_LOG" | tail -n1)
        cw_note "refresh $round: $(sed 's/.*msg="targets files changed, checks updated" //' <<<"$line") (seen $(cw_elapsed_ms "$start") ms after the rename)"
    done
    read -r rss <<<"$(awk '/^VmRSS/ { print $2 }' "/proc/$CW_PID/status")"
    cw_note "VmRSS with 10,000 targets from file_sd: $(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
    cw_stop || true
fi
