# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# scenario.sh - the stack of the scenario suite (tests/scenarios/sc_*.sh):
# the operations article's faults injected for real, each followed through
# `connwatch diagnose`, the bundled rules in a real Prometheus, a real
# Alertmanager routed as alerts/RUNBOOK.md says (inhibitions included) and
# connwatch-relay (language zh) to a loopback DingTalk recorder, then
# removed and followed to the resolved message. Source after common.sh and
# relay.sh, after cw_isolate_netns.
#
#   sc_rules                 copy of the bundled rules: every `for` 2 s, no
#                            keep_firing_for, range windows of minutes cut to
#                            SC_WINDOW (20 s); expressions and thresholds kept
#   sc_stack CONFIG          connwatch on CONFIG, relay, recorders,
#                            Alertmanager, Prometheus; waits for the first scrape
#   sc_expect ID FAULT ALERT LABELS TARGET WORDS
#                            one fault's expectation: ALERT with LABELS
#                            (k=v,...) reaches the raw webhook; a DingTalk
#                            block "**ALERT** 告警" with "目标: TARGET" (none
#                            when empty) and every |-separated zh WORD
#   sc_diag ID WANT ARGS...  runs `connwatch diagnose --json ARGS`; WANT is
#                            "state/layer/reason" (reason may be empty; several
#                            separated by |), or "-": recorded for the table,
#                            not judged
#   sc_injected ID...        the fault is in place now (time of injection)
#   sc_removed ID...         the fault is gone now
#   sc_wait firing|resolved SECONDS ID...   until every ID's alert arrived so
#   sc_table                 prints the table (and writes $SC_TABLE_OUT when set)
#
# Every wait is bounded and scaled by CW_SLOW; nothing sleeps for a measured time.

SC_WINDOW=${SC_WINDOW:-20s}
SC_PROM=""
SC_AM=""
SC_RELAY=""
SC_CW=""

sc_rules()
{
    python3 - "$CW_SOURCE_ROOT/alerts/rules/connwatch.rules.yml" "$CW_TMP/rules.yml" "$SC_WINDOW" <<'EOF'
import re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for g in doc["groups"]:
    g["interval"] = "1s"
    for r in g["rules"]:
        if "for" in r:
            r["for"] = "2s"
        r.pop("keep_firing_for", None)
        r["expr"] = re.sub(r"\[\d+m\]", "[%s]" % sys.argv[3], r["expr"])
yaml.safe_dump(doc, open(sys.argv[2], "w"), sort_keys=False, allow_unicode=True)
EOF
}

sc_stack()
{
    local config=$1 i start
    : >"$CW_TMP/expect.tsv"
    : >"$CW_TMP/times.tsv"
    : >"$CW_TMP/diag.tsv"
    sc_rules || cw_fail "cannot rewrite the rules"
    # shellcheck disable=SC2034  # the scripts use it (SC_AT)
    SC_T0=$(cw_now)
    cw_start_connwatch "$config"
    SC_CW=$CW_ADDR
    SC_CW_PID=$CW_PID
    SC_CW_LOG=$CW_LOG

    recorder_start "$CW_TMP/dt" dingtalk
    echo "http://127.0.0.1:$REC_PORT/robot/send?access_token=scenario" >"$CW_TMP/dt.url"
    recorder_start "$CW_TMP/raw" webhook
    SC_RAW_PORT=$REC_PORT
    cat >"$CW_TMP/relay.yml" <<EOF
spool_dir: $CW_TMP/spool
receivers:
  - name: dingtalk
    language: zh
    time_zone: Asia/Shanghai
    dingtalk:
      url_file: dt.url
      # A robot takes 20 per minute (the default, which merges the rest):
      # the scenarios page more at once, and time the pipeline, not the cap.
      rate_limit: 200
EOF
    relay_start "$CW_TMP/relay.yml"
    SC_RELAY=$CW_ADDR
    SC_RELAY_PID=$CW_PID

    # alerts/RUNBOOK.md's routing and inhibitions; every severity reaches
    # DingTalk, and a raw webhook recorder sees the labels as they are.
    SC_AM=127.0.0.1:$(cw_free_port)
    cat >"$CW_TMP/am.yml" <<EOF
route:
  receiver: dingtalk
  group_by: [alertname, service, target, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: dingtalk
    webhook_configs:
      - {url: "http://$SC_RELAY/webhook/dingtalk", send_resolved: true}
      - {url: "http://127.0.0.1:$SC_RAW_PORT/hook", send_resolved: true}
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname, instance, service, target]
  - source_matchers: [alertname="ConnwatchHttp5xx"]
    target_matchers: [alertname="ConnwatchHttpProbeFailing"]
    equal: [instance, service, target]
  - source_matchers: [alertname="ConnwatchExporterDown"]
    target_matchers: [layer=~"network|tls|http|database|cache|host"]
    equal: [instance]
EOF
    cw_spawn "$CW_TMP/am.log" prometheus-alertmanager --config.file="$CW_TMP/am.yml" \
        --storage.path="$CW_TMP/am-data" --cluster.listen-address= --web.listen-address="$SC_AM" \
        --log.level=warn
    SC_AM_PID=$CW_LAST_PID
    SC_PROM=127.0.0.1:$(cw_free_port)
    cat >"$CW_TMP/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: ['$CW_TMP/rules.yml']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['$SC_AM']
scrape_configs:
  - job_name: connwatch
    static_configs:
      - targets: ['$SC_CW']
EOF
    cw_spawn "$CW_TMP/prometheus.log" prometheus --config.file="$CW_TMP/prometheus.yml" \
        --storage.tsdb.path="$CW_TMP/tsdb" --web.listen-address="$SC_PROM" \
        --rules.alert.resend-delay=1s --log.level=warn
    SC_PROM_PID=$CW_LAST_PID
    # connwatch's log is the one a failure shows.
    CW_PID=$SC_CW_PID
    CW_LOG=$SC_CW_LOG
    CW_ADDR=$SC_CW
    start=$(cw_now)
    i=0
    until [[ $i == 1 ]]; do
        kill -0 "$SC_PROM_PID" 2>/dev/null || cw_fail "prometheus exited: $(tail -5 "$CW_TMP/prometheus.log")"
        kill -0 "$SC_AM_PID" 2>/dev/null || cw_fail "alertmanager exited: $(tail -5 "$CW_TMP/am.log")"
        (($(cw_elapsed_ms "$start") < 60000 * CW_SLOW)) || cw_fail "prometheus does not scrape connwatch after $((60 * CW_SLOW)) s"
        sleep 0.3
        i=$(curl -sS --max-time 5 -G --data-urlencode 'query=count(up{job="connwatch"} == 1)' \
            "http://$SC_PROM/api/v1/query" 2>/dev/null | python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else 0)' 2>/dev/null || echo 0)
    done
    cw_note "stack: connwatch $SC_CW, prometheus $SC_PROM, alertmanager $SC_AM, relay $SC_RELAY"
}

# sc_query EXPR prints the first value of an instant query (empty: none).
sc_query()
{
    curl -sS --max-time 5 -G --data-urlencode "query=$1" "http://$SC_PROM/api/v1/query" 2>/dev/null |
        python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}

# sc_wait_query SECONDS DESC EXPR: until the query has a result (the
# series the faults need are there before they are injected).
sc_wait_query()
{
    local secs=$1 desc=$2 expr=$3 start
    start=$(cw_now)
    until [[ -n $(sc_query "$expr") ]]; do
        (($(cw_elapsed_ms "$start") < secs * 1000 * CW_SLOW)) || cw_fail "$desc: no result for $expr after $((secs * CW_SLOW)) s"
        sleep 0.3
    done
}

sc_expect()
{
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$CW_TMP/expect.tsv"
}

# sc_mark injected|removed ID...: the time of the injection or removal
# (SC_AT when set: a fault that was there before the test injected it).
sc_mark()
{
    local what=$1 id now
    shift
    now=${SC_AT:-$(cw_now)}
    for id in "$@"; do
        printf '%s\t%s\t%s\n' "$id" "$what" "$now" >>"$CW_TMP/times.tsv"
    done
}
sc_injected() { sc_mark injected "$@"; }
sc_removed() { sc_mark removed "$@"; }

# sc_diag ID WANT ARGS...: WANT "state/layer/reason" against the verdict of
# `connwatch diagnose --json --lang zh ARGS` (the zh cause is kept for the table).
sc_diag()
{
    local id=$1 want=$2 rc=0 got
    local -a wrapper=()
    shift 2
    read -r -a wrapper <<<"${CW_WRAPPER:-}"
    timeout $((60 * CW_SLOW)) "${wrapper[@]}" "$CW_BUILD_ROOT/connwatch" diagnose --json --lang zh "$@" \
        >"$CW_TMP/diag.$id.json" 2>"$CW_TMP/diag.$id.err" </dev/null || rc=$?
    got=$(python3 - "$CW_TMP/diag.$id.json" <<'EOF'
import json, sys
try:
    v = json.load(open(sys.argv[1]))["verdict"]
except Exception as e:
    print("unparsable (%s)\t" % e)
    sys.exit(0)
print("%s/%s/%s\t%s" % (v.get("state", ""), v.get("layer", ""), v.get("reason", ""), v.get("cause", "")))
EOF
    )
    printf '%s\t%s\t%s\n' "$id" "$want" "$got" >>"$CW_TMP/diag.tsv"
    if [[ $want == - ]]; then
        cw_note "$id: diagnose says ${got//$'\t'/: } (not judged: no figure of diagnose shows this fault)"
        return 0
    fi
    [[ "|$want|" == *"|${got%%$'\t'*}|"* ]] ||
        cw_fail "$id: diagnose says ${got//$'\t'/: } (exit $rc), not $want: $(cat "$CW_TMP/diag.$id.json" "$CW_TMP/diag.$id.err")"
    cw_pass "$id: diagnose ${got//$'\t'/: }"
}

# sc_wait STATUS SECONDS ID...
sc_wait()
{
    local status=$1 secs=$2
    shift 2
    python3 "$CW_SOURCE_ROOT/tests/lib/scenario_wait.py" --dir "$CW_TMP" --status "$status" \
        --seconds "$(awk -v s="$secs" -v k="$CW_SLOW" 'BEGIN { print s * k }')" "$@" ||
        cw_fail "not every alert arrived $status (see above)"
    cw_pass "$status: $*"
}

sc_table()
{
    python3 "$CW_SOURCE_ROOT/tests/lib/scenario_wait.py" --dir "$CW_TMP" --table
    if [[ -n ${SC_TABLE_OUT:-} ]]; then
        python3 "$CW_SOURCE_ROOT/tests/lib/scenario_wait.py" --dir "$CW_TMP" --table >"$SC_TABLE_OUT"
    fi
}

# sc_stop_stack: Prometheus, Alertmanager, relay and connwatch exit cleanly.
sc_stop_stack()
{
    cw_stop "$SC_PROM_PID" || cw_fail "prometheus did not exit cleanly"
    cw_stop "$SC_AM_PID" || true
    cw_stop "$SC_RELAY_PID" || cw_fail "connwatch-relay exited non-zero on SIGTERM"
    cw_stop "$SC_CW_PID" || cw_fail "connwatch exited non-zero on SIGTERM"
}

# A failing scenario still prints its table (what did arrive, and when).
eval "_sc_cw_fail() $(declare -f cw_fail | tail -n +2)"
cw_fail()
{
    if [[ -n $CW_TMP && -s $CW_TMP/expect.tsv ]]; then
        python3 "$CW_SOURCE_ROOT/tests/lib/scenario_wait.py" --dir "$CW_TMP" --table >&2 || true
    fi
    _sc_cw_fail "$@"
}
