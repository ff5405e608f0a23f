#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_relay_config.sh - the relay's configuration errors are all reported at
# once, as the exporter's are: a file with seven bad receivers (and a bad
# top-level value) makes `connwatch-relay --config.check` print every
# problem as file:line:col: path: message, then "N errors", and exit 2; the
# same file refuses a start with exit 2 and every message, and a reload to
# it keeps the running configuration and answers /-/reload with every
# message. The old relay stopped at the first bad receiver.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"

cw_require curl
cw_tmpdir
T=$CW_TMP
[[ -x $RELAY_BIN ]] || cw_fail "$RELAY_BIN is not built"

cat >"$T/bad.yml" <<EOF
spool_dir: $T/spool
max_queue: 0
receivers:
  - name: ok
    webhook: {url: "http://127.0.0.1:9/"}
  - name: "bad name!"
    language: fr
    webhook: {url: "http://127.0.0.1:9/"}
  - name: nokind
  - name: twokinds
    dingtalk: {}
    webhook: {url: "http://127.0.0.1:9/"}
  - name: ok
    webhook: {url: "http://127.0.0.1:9/"}
  - name: lost
    fallback: nowhere
    webhook: {}
  - name: tmpl
    title_template: "{{nope}}"
    retry_initial: 10s
    retry_max: 1s
    min_severity: loud
    webhook: {url: "http://127.0.0.1:9/", colour: red}
EOF
want=(
    "2:12: max_queue: 0 is out of range (1 to 1000000)"
    "7:15: receivers[1].language: \"fr\" is not one of: zh, en"
    "6:11: receivers[1].name: receiver names use letters, digits, '_', '-' and '.', at most 64, no leading '.'"
    "9:5: receivers[2]: receiver \"nokind\" names no kind (aliyun_sms, dingtalk, email, webhook)"
    "12:5: receivers[3].webhook: a receiver has exactly one kind (also dingtalk)"
    "17:14: receivers[5].webhook: set exactly one of url and url_file"
    "19:21: receivers[6].title_template: unknown placeholder (see relay.md for the list)"
    "21:16: receivers[6].retry_max: retry_max is shorter than retry_initial"
    "23:43: receivers[6].webhook.colour: unknown field \"colour\""
    "22:19: receivers[6].min_severity: min_severity is one of none, info, warning, critical"
    "13:11: receivers[4].name: duplicate receiver name \"ok\""
    "16:15: receivers[5].fallback: fallback \"nowhere\" is not another receiver of this file"
)

# expect_all FILE WHAT: the lines of FILE that start with the configuration
# file's name are the wanted ones, in order, and no others.
expect_all()
{
    local got
    got=$(awk -v p="$T/bad.yml:" 'index($0, p) == 1' "$1")
    [[ $got == "$(printf "$T/bad.yml:%s\n" "${want[@]}")" ]] ||
        cw_fail "$2: the errors differ from the expected ${#want[@]}:"$'\n'"$got"
}

# --- --config.check ---------------------------------------------------------------------
rc=0
"$RELAY_BIN" --config.check --config.file="$T/bad.yml" >"$T/check.out" 2>"$T/check.err" || rc=$?
[[ $rc -eq 2 ]] || cw_fail "--config.check exited $rc, not 2"
[[ ! -s $T/check.out ]] || cw_fail "--config.check printed on stdout: $(cat "$T/check.out")"
expect_all "$T/check.err" "--config.check"
[[ $(tail -n1 "$T/check.err") == "${#want[@]} errors" ]] ||
    cw_fail "--config.check did not end with \"${#want[@]} errors\": $(tail -n1 "$T/check.err")"
cw_pass "--config.check: all ${#want[@]} errors of 7 bad receivers, file:line:col, exit 2"

# --- start --------------------------------------------------------------------------------
rc=0
timeout $((20 * CW_SLOW)) "$RELAY_BIN" --web.listen-address=127.0.0.1:0 --config.file="$T/bad.yml" "${CW_AS_ROOT[@]}" \
    >/dev/null 2>"$T/start.err" </dev/null || rc=$?
[[ $rc -eq 2 ]] || cw_fail "a start with the bad file exited $rc, not 2"
expect_all "$T/start.err" "start"
[[ ! -e $T/spool ]] || cw_fail "a refused start created the spool directory"
cw_pass "start with the bad file: every error, exit 2, no spool directory"

# --- reload -------------------------------------------------------------------------------
cat >"$T/relay.yml" <<EOF
spool_dir: $T/spool
receivers:
  - name: ok
    webhook: {url: "http://127.0.0.1:9/"}
EOF
relay_start "$T/relay.yml"
cp "$T/bad.yml" "$T/relay.yml"
code=$(curl -sS -o "$T/reload.out" -w '%{http_code}' --max-time $((10 * CW_SLOW)) \
    -X POST "http://$CW_ADDR/-/reload" || true)
[[ $code == 500 ]] || cw_fail "POST /-/reload of the bad file answered $code, not 500"
head -n1 "$T/reload.out" | grep -qF 'reload failed, the running configuration is kept' ||
    cw_fail "/-/reload answered: $(head -n1 "$T/reload.out")"
sed -i "s|$T/relay.yml:|$T/bad.yml:|" "$T/reload.out"
expect_all "$T/reload.out" "/-/reload"
v=$(cw_metric connwatch_relay_config_last_reload_successful "" || true)
[[ $v == 0 ]] || cw_fail "connwatch_relay_config_last_reload_successful is ${v:-absent}, not 0"
code=$(relay_post ok /dev/null)
[[ $code == 400 ]] || cw_fail "the running receiver \"ok\" answered $code to an empty body, not 400"
cw_stop || cw_fail "the relay exited $? after a refused reload"
cw_pass "reload to the bad file: every error in the answer, the running configuration kept"
