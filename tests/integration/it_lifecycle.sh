#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_lifecycle.sh - the command line and the process lifecycle: --config.check
# on good and bad files, exit codes (0 normal, 2 configuration or usage, 1
# runtime), --version/--help, readiness after start, the built-in default
# configuration, SIGTERM and SIGINT ending the daemon with 0 within 2 s.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl
cw_tmpdir
bin=$CW_BUILD_ROOT/connwatch
[[ -x $bin ]] || cw_fail "$bin is not built"

# run_cw ARGS... runs connwatch to completion; sets rc, out (stdout), err (stderr).
run_cw()
{
    rc=0
    timeout 20 "$bin" "$@" "${CW_AS_ROOT[@]}" >"$CW_TMP/out" 2>"$CW_TMP/err" </dev/null || rc=$?
    out=$(cat "$CW_TMP/out")
    err=$(cat "$CW_TMP/err")
}

good=$CW_TMP/good.yml
cat >"$good" <<'EOF'
global:
  interval: 1s
  timeout: 500ms
host:
  enabled: true
  interval: 1s
EOF

# --- --config.check ---------------------------------------------------------------------
run_cw --config.check --config.file="$good"
[[ $rc -eq 0 ]] || cw_fail "--config.check on a good file exited $rc: $err"
[[ $out == ok ]] || cw_fail "--config.check on a good file printed \"$out\", not \"ok\""
cw_pass "--config.check good file: ok, exit 0"

# check_bad NAME LINE:COL PATH TEXT: a bad file fails --config.check with exit 2
# and a diagnostic "FILE:LINE:COL: PATH: message".
check_bad()
{
    local f=$CW_TMP/$1.yml where=$2 path=$3
    printf '%s\n' "$4" >"$f"
    run_cw --config.check --config.file="$f"
    [[ $rc -eq 2 ]] || cw_fail "--config.check on $1 exited $rc, not 2 (stdout \"$out\", stderr \"$err\")"
    [[ $out != *ok* ]] || cw_fail "--config.check on $1 printed ok"
    grep -Eq "^$f:[0-9]+:[0-9]+: [^ :]+: .+" <<<"$err" ||
        cw_fail "$1: no \"file:line:col: path: message\" diagnostic in: $err"
    grep -Fq "$f:$where: $path: " <<<"$err" ||
        cw_fail "$1: diagnostic does not say \"$f:$where: $path: ...\": $err"
    cw_pass "--config.check $1: exit 2, $(grep -F -m1 "$f:" <<<"$err")"
}
check_bad unknown_key 5:3 host.enbled 'global:
  interval: 1s
  timeout: 500ms
host:
  enbled: true'
check_bad bad_duration 2:13 global.interval 'global:
  interval: 5 parsecs
host:
  enabled: true'
check_bad wrong_type 2:12 host.enabled 'host:
  enabled: [yes]'
check_bad timeout_over_interval 3:12 global.timeout 'global:
  interval: 1s
  timeout: 5s'

run_cw --config.check --config.file="$CW_TMP/does-not-exist.yml"
[[ $rc -eq 2 ]] || cw_fail "--config.check on a missing file exited $rc, not 2"
[[ $err == *does-not-exist.yml* ]] || cw_fail "the error on a missing file does not name it: $err"
cw_pass "--config.check missing file: exit 2"

# The daemon itself refuses a bad file the same way, before listening.
run_cw --web.listen-address=127.0.0.1:0 --config.file="$CW_TMP/unknown_key.yml"
[[ $rc -eq 2 ]] || cw_fail "connwatch with a bad config exited $rc, not 2"
[[ $err == *"$CW_TMP/unknown_key.yml:5:3: "* ]] || cw_fail "connwatch with a bad config did not name file:line:col: $err"
[[ $err != *msg=listening* ]] || cw_fail "connwatch listened although its config was bad"
cw_pass "daemon with a bad file: exit 2 before listening"

# --- flags -------------------------------------------------------------------------------
run_cw --no-such-flag
[[ $rc -eq 2 ]] || cw_fail "an unknown flag exited $rc, not 2"
[[ $err == *no-such-flag* ]] || cw_fail "the unknown flag is not named: $err"
run_cw --log.level=loud
[[ $rc -eq 2 ]] || cw_fail "--log.level=loud exited $rc, not 2"
run_cw --web.telemetry-path=metrics
[[ $rc -eq 2 ]] || cw_fail "--web.telemetry-path without / exited $rc, not 2"
run_cw --version
[[ $rc -eq 0 ]] || cw_fail "--version exited $rc"
[[ $out == *connwatch*[0-9].[0-9]* ]] || cw_fail "--version printed \"$out\""
version_line=$out
run_cw --help
[[ $rc -eq 0 ]] || cw_fail "--help exited $rc"
[[ $out == *--config.file* && $out == *--web.listen-address* ]] || cw_fail "--help does not list the flags"
cw_pass "flags: unknown 2, bad values 2, --version 0 ($version_line), --help 0"

# --- the daemon: readiness and SIGTERM ----------------------------------------------------------
cw_start_connwatch "$good"
code=$(cw_http_code /-/ready)
[[ $code == 503 || $code == 200 ]] || cw_fail "/-/ready right after start answered $code (want 503 or 200)"
first=$code
cw_wait_ready 5
code=$(cw_http_code /-/healthy)
[[ $code == 200 ]] || cw_fail "/-/healthy answered $code"
cw_pass "/-/ready $first right after start, 200 within 5 s"

# The version the binary prints is the one it exports.
v=$(cw_scrape | sed -n 's/^connwatch_build_info{.*version="\([^"]*\)".*/\1/p')
[[ -n $v && $version_line == *"$v"* ]] || cw_fail "build_info version \"$v\" is not in --version's \"$version_line\""

# A second daemon on the same address cannot bind: runtime failure, exit 1.
port=${CW_ADDR##*:}
run_cw --web.listen-address="127.0.0.1:$port" --config.file="$good"
[[ $rc -eq 1 ]] || cw_fail "a second connwatch on a busy port exited $rc, not 1 ($err)"
[[ $err == *"$port"* ]] || cw_fail "the bind failure does not name the port: $err"
cw_pass "busy port: exit 1"

# Clients that hold connections open (a Prometheus keep-alive, a request
# half sent) must not keep the daemon from exiting 0 in time.
exec 3<>"/dev/tcp/127.0.0.1/$port"
exec 4<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n' >&4
rc=0
cw_stop || rc=$?
exec 3>&- 4>&-
[[ $rc -eq 0 ]] || cw_fail "SIGTERM: exit status $rc, not 0"
cw_cmp "$CW_STOP_SECONDS" "<" 2 || cw_fail "SIGTERM: exit took ${CW_STOP_SECONDS}s (want < 2 s)"
grep -q 'msg="shutting down"' "$CW_LOG" || cw_fail "no \"shutting down\" log line"
cw_pass "SIGTERM: exit 0 after ${CW_STOP_SECONDS}s"

# --- the built-in default configuration (what ./quickstart run starts), SIGINT -----------------
cw_start_connwatch ""
# "connwatch started" follows the "listening" line that cw_start_connwatch
# waits for (under TSan 20 ms later, after a grep right away).
for ((i = 0; i < 50 * CW_SLOW; i++)); do
    grep -q 'msg="connwatch started"' "$CW_LOG" && break
    sleep 0.1
done
grep -q 'msg="connwatch started".* config=<built-in>' "$CW_LOG" ||
    cw_fail "no config=<built-in> in the start log line"
cw_wait_ready 10
cw_scrape >"$CW_TMP/default.txt"
cw_metric_in "$CW_TMP/default.txt" connwatch_host_tcp_connections 'state="established"' >/dev/null ||
    cw_fail "the built-in configuration serves no host series"
[[ $(cw_metric_in "$CW_TMP/default.txt" connwatch_check_success 'check="host"') == 1 ]] ||
    cw_fail "the built-in configuration's host check does not succeed"
# Its tcp check probes the port connwatch listens on (here port 0 made real).
[[ $(cw_metric_in "$CW_TMP/default.txt" connwatch_check_success "check=\"tcp\",service=\"localhost\",target=\"$CW_ADDR\"") == 1 ]] ||
    cw_fail "the built-in configuration's tcp check does not probe $CW_ADDR: $(grep 'check="tcp"' "$CW_TMP/default.txt" | grep success)"
start=$(cw_now)
kill -INT "$CW_PID"
rc=0
wait "$CW_PID" || rc=$?
cw_forget_pid "$CW_PID"
took=$(cw_elapsed_ms "$start")
[[ $rc -eq 0 ]] || cw_fail "SIGINT: exit status $rc, not 0"
((took < 2000)) || cw_fail "SIGINT: exit took $took ms"
cw_pass "built-in default config serves host series; SIGINT: exit 0 after $took ms"

# --- the built-in default on --web.listen-address=:PORT probes that port ------------------------
# (it used to probe 19367, the default listener, and fail.) Started by hand:
# cw_start_connwatch listens on 127.0.0.1:0.
wrapper=()
[[ -n $CW_WRAPPER ]] && read -r -a wrapper <<<"$CW_WRAPPER"
# A free port can be taken by someone else before connwatch binds it: then
# it exits 1 naming the port, and another one is tried.
for ((try = 0; try < 3; try++)); do
    p=$(cw_free_port) || cw_fail "no free port"
    "${wrapper[@]}" "$CW_BUILD_ROOT/connwatch" --web.listen-address=":$p" "${CW_AS_ROOT[@]}" 2>"$CW_TMP/self.log" \
        >/dev/null </dev/null &
    CW_PID=$!
    cw_pids+=("$CW_PID")
    for ((i = 0; i < 100 * CW_SLOW; i++)); do
        grep -q 'msg=listening' "$CW_TMP/self.log" && break
        kill -0 "$CW_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q 'msg=listening' "$CW_TMP/self.log" && break
    kill -0 "$CW_PID" 2>/dev/null && cw_fail ":$p: not listening within $((10 * CW_SLOW)) s"
    rc=0
    wait "$CW_PID" || rc=$?
    cw_forget_pid "$CW_PID"
    [[ $rc -eq 1 ]] || cw_fail ":$p: exited $rc before listening: $(cat "$CW_TMP/self.log")"
done
grep -q 'msg=listening' "$CW_TMP/self.log" || cw_fail "no free port could be bound in 3 tries"
CW_ADDR=127.0.0.1:$p
cw_wait_ready 10
cw_scrape >"$CW_TMP/self.txt"
# ":PORT" binds the wildcard ("[::]" dual-stack, or 0.0.0.0): the check
# connects to the loopback address of that family.
line=$(grep -E '^connwatch_check_success\{check="tcp",service="localhost",target="(127\.0\.0\.1|\[::1\]):'"$p"'"\} ' "$CW_TMP/self.txt") ||
    cw_fail ":$p: no tcp check of port $p: $(grep 'check="tcp"' "$CW_TMP/self.txt" | grep success)"
[[ ${line##* } == 1 ]] || cw_fail ":$p: the tcp check of its own listener fails: $(grep -m1 'check failing' "$CW_TMP/self.log")"
if ((p != 19367)) && grep -q 'target="127.0.0.1:19367"' "$CW_TMP/self.txt"; then
    cw_fail ":$p: the built-in default still probes 19367"
fi
cw_stop || cw_fail ":$p: exit status $?"
cw_pass "built-in default on :$p probes its own port and succeeds ($line)"
