# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2119,SC2120  # variables and optional args are for the callers
#
# common.sh - helpers for the bash integration tests (tests/integration/it_*.sh).
#
# Source it first thing:  . "$CW_SOURCE_ROOT/tests/lib/common.sh"
# (meson sets CW_SOURCE_ROOT and CW_BUILD_ROOT; when run by hand, both are
# guessed from this file's location and ./build).
#
# Exit codes follow meson: 0 pass, 1 fail, 77 skip.
#
# Processes: every process started through cw_spawn / cw_start_connwatch is
# recorded, and the EXIT trap ends exactly those PIDs that are still running
# (SIGTERM, then SIGKILL). Nothing is ever killed by name.
#
# Variables set for the caller:
#   CW_TMP    the test's scratch directory (cw_tmpdir), removed on exit
#   CW_PID    PID of the connwatch started last (cw_start_connwatch)
#   CW_LOG    its stderr (logfmt log)
#   CW_ADDR   127.0.0.1:PORT it listens on
#   CW_LAST_PID  PID of the process started last (cw_spawn)
#   CW_STOP_SECONDS  how long the last cw_stop waited for the exit

set -euo pipefail

if [[ -z ${CW_SOURCE_ROOT:-} ]]; then
    CW_SOURCE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fi
CW_BUILD_ROOT=${CW_BUILD_ROOT:-$CW_SOURCE_ROOT/build}
CW_WRAPPER=${CW_WRAPPER:-}
export CW_SOURCE_ROOT CW_BUILD_ROOT

# Programs under valgrind are 20-50 times slower, under ThreadSanitizer
# (build-tsan/) 5-15 times, under AddressSanitizer (build-asan/) 2-3 times:
# stretch every deadline.
if [[ $CW_WRAPPER == *valgrind* ]]; then
    CW_SLOW=10
# Not "ldd | grep -q": under pipefail, grep's early exit can kill ldd with
# SIGPIPE and the pipeline then reads as "no match" (it did, under load).
elif grep -q libtsan <<<"$(ldd "$CW_BUILD_ROOT/connwatch" 2>/dev/null)"; then
    CW_SLOW=3
elif grep -q libasan <<<"$(ldd "$CW_BUILD_ROOT/connwatch" 2>/dev/null)"; then
    CW_SLOW=2 # it_http_flood's p99 was 60 ms against its 50 ms under ASan and load
else
    CW_SLOW=1
fi

# CW_AS_ROOT: the flag that lets connwatch and connwatch-relay keep root,
# which refuse it otherwise (exporter/core/privdrop.h); the tests run as
# root and measure the host as root. Empty when not root.
CW_AS_ROOT=()
if [[ $(id -u) -eq 0 ]]; then
    CW_AS_ROOT=(--run-as-root)
fi

CW_TMP=""
CW_PID=""
CW_LOG=""
CW_ADDR=""
CW_LAST_PID=""
CW_STOP_SECONDS=""
cw_pids=()

cw_note()
{
    printf '# %s\n' "$*" >&2
}

cw_fail()
{
    printf 'FAIL: %s\n' "$*" >&2
    if [[ -n $CW_LOG && -s $CW_LOG ]]; then
        printf -- '--- last lines of the connwatch log (%s):\n' "$CW_LOG" >&2
        tail -n 20 "$CW_LOG" >&2 || true
    fi
    exit 1
}

cw_skip()
{
    printf 'SKIP: %s\n' "$*"
    exit 77
}

cw_pass()
{
    printf 'ok: %s\n' "$*"
}

# cw_require BIN... skips the test when a prerequisite program is missing.
cw_require()
{
    local b
    for b in "$@"; do
        command -v "$b" >/dev/null 2>&1 || cw_skip "$b is not installed"
    done
}

cw_now()
{
    printf '%s\n' "${EPOCHREALTIME/,/.}"
}

# cw_elapsed_ms START prints the milliseconds since START (a cw_now value).
cw_elapsed_ms()
{
    awk -v a="$1" -v b="$(cw_now)" 'BEGIN { printf "%d\n", (b - a) * 1000 }'
}

# cw_tmpdir creates the test's scratch directory in CW_TMP (once). Call it
# directly, not in $(...), so that the cleanup knows about it.
cw_tmpdir()
{
    if [[ -z $CW_TMP ]]; then
        CW_TMP=$(mktemp -d "${TMPDIR:-/tmp}/connwatch-test.XXXXXX")
    fi
    export CW_TMP
}

cw_forget_pid()
{
    local keep=() p
    for p in "${cw_pids[@]}"; do
        [[ $p == "$1" ]] || keep+=("$p")
    done
    cw_pids=("${keep[@]}")
}

_cw_cleanup()
{
    local rc=$? p i
    trap - EXIT
    for p in "${cw_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${cw_pids[@]}"; do
        for ((i = 0; i < 50 * CW_SLOW; i++)); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    cw_pids=()
    if [[ -n $CW_TMP && -d $CW_TMP ]]; then
        if [[ $rc -ne 0 && $rc -ne 77 && -n ${CW_KEEP_TMP:-} ]]; then
            cw_note "kept $CW_TMP"
        else
            rm -rf "$CW_TMP"
        fi
    fi
    exit "$rc"
}
trap _cw_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cw_isolate_netns "$@" re-executes the calling test in a new network
# namespace whose only interface is lo (up), so that counts of the host's TCP
# sockets and /proc/net/snmp counters see only what the test does. Call it
# before anything else. Without root, unshare or ip, the test goes on in the
# machine's namespace (noted, CW_NETNS stays empty).
cw_isolate_netns()
{
    if [[ -n ${CW_NETNS:-} ]]; then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]] || ! command -v unshare >/dev/null 2>&1 ||
        ! command -v ip >/dev/null 2>&1 || ! unshare --net true 2>/dev/null; then
        cw_note "not isolated in a network namespace (needs root, unshare and ip)"
        return 0
    fi
    export CW_NETNS=1
    trap - EXIT
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$@"' bash "$0" "$@"
}

# cw_spawn LOGFILE CMD [ARGS...] starts CMD in the background with stdout and
# stderr in LOGFILE, records its PID for the cleanup and puts it in CW_LAST_PID.
cw_spawn()
{
    local log=$1
    shift
    : >"$log" # exists before the child opens it: callers read it at once
    "$@" >"$log" 2>&1 </dev/null &
    CW_LAST_PID=$!
    cw_pids+=("$CW_LAST_PID")
}

# cw_free_port prints a TCP port on 127.0.0.1 that nobody listens on now.
cw_free_port()
{
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
        return
    fi
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        # A refused connection means that no one listens on p.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    return 1
}

# cw_start_connwatch CONFIG [FLAGS...] starts $CW_BUILD_ROOT/connwatch (under
# $CW_WRAPPER when set) on 127.0.0.1:0 with the config file CONFIG (empty
# string: the built-in default), waits for its "msg=listening" log line and
# sets CW_PID, CW_LOG, CW_ADDR. As root, --run-as-root is added unless
# FLAGS name --run-as-user or --run-as-root.
cw_start_connwatch()
{
    local config=$1
    shift
    local bin=$CW_BUILD_ROOT/connwatch
    local -a cmd=() wrapper=()
    local deadline line i

    [[ -x $bin ]] || cw_fail "$bin is not built"
    cw_tmpdir
    if [[ -n $CW_WRAPPER ]]; then
        read -r -a wrapper <<<"$CW_WRAPPER"
        cmd+=("${wrapper[@]}")
    fi
    cmd+=("$bin" --web.listen-address=127.0.0.1:0)
    if [[ -n $config ]]; then
        cmd+=("--config.file=$config")
    fi
    cmd+=("$@")
    if [[ " $* " != *" --run-as-"* ]]; then
        cmd+=("${CW_AS_ROOT[@]}")
    fi
    CW_LOG=$(mktemp "$CW_TMP/connwatch.XXXXXX.log")
    cw_note "starting: ${cmd[*]}"
    "${cmd[@]}" 2>"$CW_LOG" >/dev/null </dev/null &
    CW_PID=$!
    cw_pids+=("$CW_PID")
    export CW_PID CW_LOG

    deadline=$((100 * CW_SLOW * 2)) # tenths of a second: 20 s, 200 s under valgrind
    line=""
    for ((i = 0; i < deadline; i++)); do
        line=$(grep -m1 'msg=listening .*address=' "$CW_LOG" || true)
        [[ -n $line ]] && break
        if ! kill -0 "$CW_PID" 2>/dev/null; then
            wait "$CW_PID" && i=0 || i=$?
            cw_forget_pid "$CW_PID"
            cw_fail "connwatch exited with status $i before listening"
        fi
        sleep 0.1
    done
    [[ -n $line ]] || cw_fail "no msg=listening line within $((deadline / 10)) s"
    CW_ADDR=$(sed -n 's/.* address=\([^ ]*\).*/\1/p' <<<"$line")
    [[ $CW_ADDR == 127.0.0.1:[0-9]* ]] || cw_fail "cannot parse the listen address from: $line"
    export CW_ADDR
    cw_note "connwatch pid $CW_PID listening on $CW_ADDR"
}

# cw_http_code [CURL ARGS...] URL_PATH prints the HTTP status of a request to
# connwatch (000 when the connection failed).
cw_http_code()
{
    local path=${*: -1}
    local -a args=("${@:1:$#-1}")
    curl -sS -o /dev/null -w '%{http_code}' --max-time $((10 * CW_SLOW)) "${args[@]}" \
        "http://$CW_ADDR$path" 2>/dev/null || true
}

# cw_wait_http URL [SECONDS] polls any URL (a peer exporter) until it answers
# 200, at most SECONDS (20).
cw_wait_http()
{
    local url=$1 secs=${2:-20} start
    start=$(cw_now)
    until [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]]; do
        (($(cw_elapsed_ms "$start") < secs * 1000)) || cw_fail "$url did not answer 200 within $secs s"
        sleep 0.1
    done
}

# cw_wait_ready [SECONDS] polls /-/ready until it answers 200.
cw_wait_ready()
{
    local secs=${1:-15} code="" start
    start=$(cw_now)
    secs=$((secs * CW_SLOW))
    while (($(cw_elapsed_ms "$start") < secs * 1000)); do
        code=$(cw_http_code /-/ready)
        if [[ $code == 200 ]]; then
            return 0
        fi
        kill -0 "$CW_PID" 2>/dev/null || cw_fail "connwatch died while waiting for /-/ready"
        sleep 0.1
    done
    cw_fail "/-/ready did not answer 200 within $secs s (last status $code)"
}

# cw_scrape [CURL ARGS...] prints connwatch's /metrics; fails the test on an
# HTTP error.
cw_scrape()
{
    curl -fsS --max-time $((10 * CW_SLOW)) "$@" "http://$CW_ADDR${CW_TELEMETRY_PATH:-/metrics}" ||
        cw_fail "scrape of http://$CW_ADDR${CW_TELEMETRY_PATH:-/metrics} failed"
}

# cw_metric_in FILE NAME [LABEL_MATCH] prints the value of the first series
# of NAME in the exposition FILE whose label text contains LABEL_MATCH (e.g.
# 'state="established"'); returns 1 when there is none.
cw_metric_in()
{
    awk -v n="$2" -v m="${3:-}" '
        /^#/ { next }
        substr($0, 1, length(n)) != n { next }
        {
            rest = substr($0, length(n) + 1)
            c = substr(rest, 1, 1)
            labels = ""
            if (c == "{") {
                # the label set ends at the last "}" of the line
                if (!match(rest, /}[^}]*$/)) next
                labels = substr(rest, 2, RSTART - 2)
                rest = substr(rest, RSTART + 1)
            } else if (c != " ") {
                next
            }
            if (m != "" && index(labels, m) == 0) next
            split(rest, f, " ")
            print f[1]
            found = 1
            exit
        }
        END { exit found ? 0 : 1 }' "$1"
}

# cw_metric NAME [LABEL_MATCH] scrapes connwatch and prints one series' value.
cw_metric()
{
    local f
    cw_tmpdir
    f=$(mktemp "$CW_TMP/scrape.XXXXXX")
    cw_scrape >"$f"
    cw_metric_in "$f" "$@"
}

# cw_sum_in FILE NAME prints the sum of all series of NAME in FILE.
cw_sum_in()
{
    awk -v n="$2" '
        /^#/ { next }
        substr($0, 1, length(n)) != n { next }
        { c = substr($0, length(n) + 1, 1) }
        c != "{" && c != " " { next }
        { s += $NF; found = 1 }
        END { if (!found) exit 1; printf "%.17g\n", s }' "$1"
}

# cw_cmp A OP B compares two numbers (floats, exponents) with awk.
cw_cmp()
{
    awk -v a="$1" -v op="$2" -v b="$3" 'BEGIN {
        a += 0; b += 0
        if (op == "<") r = a < b; else if (op == "<=") r = a <= b
        else if (op == ">") r = a > b; else if (op == ">=") r = a >= b
        else if (op == "==") r = a == b; else if (op == "!=") r = a != b
        else r = 0
        exit !r }'
}

# cw_header FILE NAME prints the value of a response header from a curl -D file.
cw_header()
{
    awk -v h="$2" 'BEGIN { h = tolower(h) ":" }
        { sub(/\r$/, "") }
        tolower(substr($0, 1, length(h))) == h {
            v = substr($0, length(h) + 1); sub(/^[ \t]+/, "", v); print v; exit }' "$1"
}

# cw_stop [PID] sends SIGTERM to PID (default CW_PID), waits for it (at most
# 10 s, or 100 s under valgrind, then SIGKILL) and returns its exit status.
# CW_STOP_SECONDS receives the time the exit took.
cw_stop()
{
    local pid=${1:-$CW_PID} rc=0 start
    [[ -n $pid ]] || cw_fail "cw_stop: no PID"
    start=$(cw_now)
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && (($(cw_elapsed_ms "$start") < 10000 * CW_SLOW)); do
        sleep 0.02
    done
    if kill -0 "$pid" 2>/dev/null; then
        cw_note "PID $pid ignored SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
    CW_STOP_SECONDS=$(awk -v ms="$(cw_elapsed_ms "$start")" 'BEGIN { printf "%.3f\n", ms / 1000 }')
    cw_forget_pid "$pid"
    return "$rc"
}

# cw_wait_fresh_runs N waits until the host check has published N new runs
# after this call (the sum of connwatch_host_cpu_seconds_total grows with
# every run, so a change proves a new run). Needs the host check.
cw_wait_fresh_runs()
{
    local want=${1:-1} seen=0 prev cur f start
    cw_tmpdir
    f=$(mktemp "$CW_TMP/fresh.XXXXXX")
    cw_scrape >"$f"
    prev=$(cw_sum_in "$f" connwatch_host_cpu_seconds_total) ||
        cw_fail "no connwatch_host_cpu_seconds_total series to watch for fresh runs"
    start=$(cw_now)
    while ((seen < want)); do
        (($(cw_elapsed_ms "$start") < 20000 * CW_SLOW)) ||
            cw_fail "the host check published no new run within $((20 * CW_SLOW)) s"
        sleep 0.05
        cw_scrape >"$f"
        cur=$(cw_sum_in "$f" connwatch_host_cpu_seconds_total) || continue
        if [[ $cur != "$prev" ]]; then
            seen=$((seen + 1))
            prev=$cur
        fi
    done
    rm -f "$f"
}

# cw_fast_rules OUT: the bundled alert rules with every group evaluated each
# second, every `for` cut to 2 s and keep_firing_for removed (expressions and
# thresholds untouched), written to OUT, for tests that see alerts fire.
cw_fast_rules()
{
    python3 - "$CW_SOURCE_ROOT/alerts/rules/connwatch.rules.yml" "$1" <<'PYEOF'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for g in doc["groups"]:
    g["interval"] = "1s"
    for r in g["rules"]:
        if "for" in r:
            r["for"] = "2s"
        r.pop("keep_firing_for", None)
yaml.safe_dump(doc, open(sys.argv[2], "w"), sort_keys=False)
PYEOF
}
