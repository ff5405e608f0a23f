# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# relay.sh - helpers for connwatch-relay's integration tests
# (tests/integration/it_relay_*.sh). Source after common.sh.
#
#   relay_start CONFIG [FLAGS...]   start connwatch-relay on 127.0.0.1:0; sets CW_PID, CW_LOG, CW_ADDR
#   recorder_start DIR KIND [PORT]  start tests/lib/relay_recorder.py; sets REC_PORT, REC_PID
#   smtpd_require                   skip the test (77) when python3-aiosmtpd is missing
#   smtpd_start MAILDIR             start aiosmtpd delivering into MAILDIR; sets SMTP_PORT
#   relay_post RECEIVER FILE        POST a payload; prints the HTTP status
#   relay_wait_metric NAME MATCH VALUE [SECONDS]   until a series of the relay equals VALUE
# Processes are recorded for common.sh's cleanup and ended by PID only.

RELAY_BIN=$CW_BUILD_ROOT/alerts/relay/connwatch-relay

relay_start()
{
    local config=$1
    shift
    local -a cmd=() wrapper=()
    local line i deadline

    [[ -x $RELAY_BIN ]] || cw_fail "$RELAY_BIN is not built"
    cw_tmpdir
    if [[ -n $CW_WRAPPER ]]; then
        read -r -a wrapper <<<"$CW_WRAPPER"
        cmd+=("${wrapper[@]}")
    fi
    cmd+=("$RELAY_BIN" --web.listen-address=127.0.0.1:0 "--config.file=$config" "$@")
    if [[ " $* " != *" --run-as-"* ]]; then
        cmd+=("${CW_AS_ROOT[@]}")
    fi
    CW_LOG=$(mktemp "$CW_TMP/relay.XXXXXX.log")
    cw_note "starting: ${cmd[*]}"
    "${cmd[@]}" 2>"$CW_LOG" >/dev/null </dev/null &
    CW_PID=$!
    cw_pids+=("$CW_PID")
    deadline=$((200 * CW_SLOW))
    line=""
    for ((i = 0; i < deadline; i++)); do
        line=$(grep -m1 'msg=listening .*address=' "$CW_LOG" || true)
        [[ -n $line ]] && break
        if ! kill -0 "$CW_PID" 2>/dev/null; then
            wait "$CW_PID" && i=0 || i=$?
            cw_forget_pid "$CW_PID"
            cw_fail "connwatch-relay exited with status $i before listening"
        fi
        sleep 0.1
    done
    [[ -n $line ]] || cw_fail "connwatch-relay did not listen within $((deadline / 10)) s"
    CW_ADDR=$(sed -n 's/.* address=\([^ ]*\).*/\1/p' <<<"$line")
    export CW_PID CW_LOG CW_ADDR
    cw_note "connwatch-relay pid $CW_PID listening on $CW_ADDR"
}

recorder_start()
{
    local dir=$1 kind=$2 port=${3:-0} i
    mkdir -p "$dir"
    rm -f "$dir/port"
    cw_spawn "$dir/recorder.log" python3 "$CW_SOURCE_ROOT/tests/lib/relay_recorder.py" \
        --dir "$dir" --kind "$kind" --port "$port"
    REC_PID=$CW_LAST_PID
    for ((i = 0; i < 100; i++)); do
        [[ -s $dir/port ]] && break
        kill -0 "$REC_PID" 2>/dev/null || cw_fail "recorder $kind died: $(cat "$dir/recorder.log")"
        sleep 0.05
    done
    [[ -s $dir/port ]] || cw_fail "recorder $kind did not start"
    REC_PORT=$(cat "$dir/port")
}

SMTPD_PY=/usr/bin/python3

smtpd_require()
{
    "$SMTPD_PY" -c 'import aiosmtpd' 2>/dev/null || cw_skip "python3-aiosmtpd is not installed"
}

smtpd_start()
{
    local dir=$1
    SMTP_PORT=$(cw_free_port)
    mkdir -p "$dir/tmp" "$dir/new" "$dir/cur"
    cw_spawn "$dir.smtpd.log" "$SMTPD_PY" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
        -c aiosmtpd.handlers.Mailbox "$dir"
}

relay_post()
{
    curl -sS -o "$CW_TMP/post.out" -w '%{http_code}' --max-time $((10 * CW_SLOW)) \
        -H 'Content-Type: application/json' --data-binary "@$2" \
        "http://$CW_ADDR/webhook/$1" 2>/dev/null || true
}

relay_wait_metric()
{
    local name=$1 match=$2 want=$3 secs=${4:-20} start v=""
    start=$(cw_now)
    while (($(cw_elapsed_ms "$start") < secs * 1000 * CW_SLOW)); do
        v=$(cw_metric "$name" "$match" || true)
        if [[ -n $v ]] && cw_cmp "$v" == "$want"; then
            return 0
        fi
        sleep 0.2
    done
    cw_fail "$name{$match} is ${v:-absent}, not $want, after $secs s"
}
