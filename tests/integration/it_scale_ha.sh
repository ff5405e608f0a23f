#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_scale_ha.sh - connwatch past one box, on the engines users already run
# (docs/scale.md): two connwatch instances, each with its own shard of the
# checks, scraped by one real Prometheus that evaluates the bundled rules
# (`for` cut to 2 s) and sends to two real Alertmanagers clustered by gossip
# on loopback, both posting to one connwatch-relay, which pages a loopback
# DingTalk recorder in Chinese. Asserted:
#
#   - sharding: every check runs on exactly one instance, and a /probe
#     target list split by Prometheus's hashmod relabelling is probed once
#     per target, by the instance of its shard;
#   - one page per alert: a fault on each shard pages once (firing), though
#     both Alertmanagers receive every alert from Prometheus;
#   - failover: the Alertmanager that sent is killed (SIGKILL) midway; a new
#     fault still pages once, through the survivor, and every recovery
#     (those notified by the dead one included) pages once, resolved;
#   - after a quiet period of twice the cluster's peer timeout plus the
#     group interval, no duplicate arrived.
#
# Runs in a network namespace of its own (as root); only loopback traffic.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
cw_isolate_netns "$@"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"

cw_require curl prometheus prometheus-alertmanager python3
python3 -c 'import yaml' 2>/dev/null || cw_skip "python3-yaml is not installed"
cw_tmpdir
T=$CW_TMP
peer_timeout=2 # seconds: the cluster's --cluster.peer-timeout

# --- listeners: one process per port, so that killing one refuses that port ------------------
cat >"$T/listen.py" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
EOF
declare -A port lpid
# listen NAME: (re)start the listener of NAME on its port.
listen()
{
    local i
    cw_spawn "$T/listen-$1.log" python3 "$T/listen.py" "${port[$1]}"
    lpid[$1]=$CW_LAST_PID
    for ((i = 0; i < 100 * CW_SLOW; i++)); do
        grep -q ready "$T/listen-$1.log" 2>/dev/null && return 0
        sleep 0.05
    done
    cw_fail "listener $1 did not start: $(cat "$T/listen-$1.log")"
}
# refuse NAME: stop the listener of NAME; its port refuses connections.
refuse()
{
    kill -TERM "${lpid[$1]}"
    wait "${lpid[$1]}" 2>/dev/null || true
    cw_forget_pid "${lpid[$1]}"
}
for name in a1 a2 a3 b1 b2 p1 p2 p3 p4 p5 p6; do
    port[$name]=$(cw_free_port)
    listen "$name"
done

# --- the pager: relay -> DingTalk recorder ------------------------------------------------------
recorder_start "$T/dt" dingtalk
echo "http://127.0.0.1:$REC_PORT/robot/send?access_token=tok$RANDOM" >"$T/dt.url"
cat >"$T/relay.yml" <<EOF
spool_dir: $T/spool
receivers:
  - name: oncall
    language: zh
    dingtalk: {url_file: dt.url}
EOF
relay_start "$T/relay.yml"
RELAY=$CW_ADDR

# --- two Alertmanagers in one gossip cluster ----------------------------------------------------
cat >"$T/am.yml" <<EOF
route:
  receiver: relay
  group_by: [alertname, service, target]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: relay
    webhook_configs:
      - url: http://$RELAY/webhook/oncall
        send_resolved: true
EOF
declare -A am_web am_cluster am_pid
for am in x y; do
    am_web[$am]=127.0.0.1:$(cw_free_port)
    am_cluster[$am]=127.0.0.1:$(cw_free_port)
done
for am in x y; do
    other=$([[ $am == x ]] && echo y || echo x)
    cw_spawn "$T/am-$am.log" prometheus-alertmanager --config.file="$T/am.yml" \
        --storage.path="$T/am-$am" --web.listen-address="${am_web[$am]}" \
        --cluster.listen-address="${am_cluster[$am]}" --cluster.advertise-address="${am_cluster[$am]}" \
        --cluster.peer="${am_cluster[$other]}" --cluster.peer-timeout="${peer_timeout}s" \
        --cluster.gossip-interval=100ms --cluster.pushpull-interval=2s \
        --cluster.settle-timeout=10s --log.level=warn
    am_pid[$am]=$CW_LAST_PID
done
# am_peers AM: the number of cluster members AM sees as ready.
am_peers()
{
    curl -fsS --max-time 5 "http://${am_web[$1]}/api/v2/status" 2>/dev/null | python3 -c '
import json, sys
c = json.load(sys.stdin)["cluster"]
print(len(c.get("peers") or []) if c.get("status") == "ready" else 0)' 2>/dev/null || echo 0
}
start=$(cw_now)
until [[ $(am_peers x) == 2 && $(am_peers y) == 2 ]]; do
    for am in x y; do
        kill -0 "${am_pid[$am]}" 2>/dev/null || cw_fail "alertmanager $am exited: $(tail -5 "$T/am-$am.log")"
    done
    (($(cw_elapsed_ms "$start") < 30000 * CW_SLOW)) || cw_fail "the Alertmanagers did not form a ready cluster of 2"
    sleep 0.2
done
cw_pass "two Alertmanagers gossip as one cluster (settled in $(($(cw_elapsed_ms "$start") / 1000)) s)"

# --- two connwatch shards -------------------------------------------------------------------------
# shard FILE NAME...: a configuration with one tcp check per NAME, and
# /probe allowed to the p* listeners. a3 and b2 stay up, so that no shard
# has all its tcp checks failing (ConnwatchCheckKindFailingEverywhere).
shard()
{
    local file=$1 name
    shift
    {
        printf '%s\n' 'global: {interval: 500ms, timeout: 400ms}' 'host: {enabled: false}' \
            'probe:' '  allow:' '    - check: tcp' '      targets: ["127.0.0.1:*"]' 'services:'
        for name in "$@"; do
            printf '%s\n' "  - name: svc-$name" '    checks:' \
                "      - tcp: {target: \"127.0.0.1:${port[$name]}\"}"
        done
    } >"$file"
}
shard "$T/shard-a.yml" a1 a2 a3
shard "$T/shard-b.yml" b1 b2
cw_start_connwatch "$T/shard-a.yml"
CW_A=$CW_ADDR
cw_start_connwatch "$T/shard-b.yml"
CW_B=$CW_ADDR

# --- Prometheus: both shards, the /probe list split by hashmod, both Alertmanagers ----------------
cw_fast_rules "$T/rules.yml"
probe_targets=""
for name in p1 p2 p3 p4 p5 p6; do
    probe_targets+="'127.0.0.1:${port[$name]}', "
done
# probe_job SHARD ADDRESS: the blackbox-style job of one shard (docs/scale.md).
probe_job()
{
    cat <<EOF
  - job_name: probe-shard-$1
    metrics_path: /probe
    params: {check: [tcp]}
    static_configs:
      - targets: [${probe_targets%, }]
    relabel_configs:
      - {source_labels: [__address__], modulus: 2, target_label: __tmp_shard, action: hashmod}
      - {source_labels: [__tmp_shard], regex: "$1", action: keep}
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {target_label: __address__, replacement: "$2"}
EOF
}
prom=127.0.0.1:$(cw_free_port)
{
    cat <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: ['$T/rules.yml']
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['${am_web[x]}', '${am_web[y]}']
scrape_configs:
  - job_name: connwatch
    static_configs:
      - targets: ['$CW_A', '$CW_B']
EOF
    probe_job 0 "$CW_A"
    probe_job 1 "$CW_B"
} >"$T/prometheus.yml"
cw_spawn "$T/prometheus.log" prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="$prom" --rules.alert.resend-delay=1s --log.level=warn
prom_pid=$CW_LAST_PID

# q EXPR: the value of a one-element PromQL result, or "" when it is empty.
q()
{
    curl -sS --max-time 5 -G --data-urlencode "query=$1" "http://$prom/api/v1/query" 2>/dev/null |
        python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "")' 2>/dev/null || true
}
start=$(cw_now)
until [[ $(q 'count(up == 1)') == 8 ]]; do
    kill -0 "$prom_pid" 2>/dev/null || cw_fail "prometheus exited: $(tail -5 "$T/prometheus.log")"
    (($(cw_elapsed_ms "$start") < 60000 * CW_SLOW)) || cw_fail "prometheus does not scrape the 8 targets: $(q 'count(up == 1)')"
    sleep 0.3
done
# Each check on exactly one shard, each probe target on exactly one shard.
[[ $(q 'count(count by (service) (connwatch_check_success{job="connwatch",check="tcp"}) == 1)') == 5 &&
$(q 'count(connwatch_check_success{job="connwatch",check="tcp"})') == 5 ]] ||
    cw_fail "the shards' checks are not one per service: $(q 'count(connwatch_check_success{job="connwatch",check="tcp"})')"
[[ $(q 'count(count by (instance) (up{job=~"probe-shard-.*"}) == 1)') == 6 &&
$(q 'count(up{job=~"probe-shard-.*"})') == 6 ]] ||
    cw_fail "the hashmod split does not probe each of the 6 targets once"
n0=$(q 'count(up{job="probe-shard-0"})')
n1=$(q 'count(up{job="probe-shard-1"})')
[[ $(q 'sum(connwatch_check_success{job=~"probe-shard-.*"})') == 6 ]] ||
    cw_fail "not every probe through its shard succeeds"
cw_pass "sharding: 5 checks on 2 instances, one each; 6 /probe targets split $n0 + ${n1} by hashmod, each probed once"

# --- the pages ----------------------------------------------------------------------------------
# pages: one line "STATUS ALERTNAME SERVICE" per alert of every DingTalk message so far.
pages()
{
    python3 - "$T/dt/requests.jsonl" <<'EOF'
import json, re, sys
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    text = json.loads(json.loads(line)["body"])["markdown"]["text"]
    for block in re.split(r"\n(?=\*\*)", text):
        m = re.match(r"\*\*(\w+)\*\* (\S+)", block)
        if not m:
            continue
        svc = re.search(r"^- 服务: (.*)$", block, re.M)
        status = "resolved" if m.group(2) == "已恢复" else "firing"
        print(status, m.group(1), svc.group(1) if svc else "-")
EOF
}
# wait_page STATUS SERVICE: until a ConnwatchNetworkCheckFailing page of STATUS for SERVICE arrived.
wait_page()
{
    local start
    start=$(cw_now)
    until [[ $'\n'$(pages)$'\n' == *$'\n'"$1 ConnwatchNetworkCheckFailing svc-$2"$'\n'* ]]; do
        (($(cw_elapsed_ms "$start") < 40000 * CW_SLOW)) ||
            cw_fail "no $1 page for svc-$2 within 40 s; pages: $(pages | tr '\n' ';')"
        sleep 0.2
    done
    cw_note "$1 page for svc-$2 after $(($(cw_elapsed_ms "$start") / 1000)) s"
}
am_sent()
{
    curl -fsS --max-time 5 "http://${am_web[$1]}/metrics" 2>/dev/null |
        awk '/^alertmanager_notifications_total\{.*integration="webhook"/ { n += $NF } END { print n + 0 }'
}

# Faults on both shards: each pages once, though both Alertmanagers have them.
refuse a1
refuse b1
wait_page firing a1
wait_page firing b1
# relay_dups: notifications the relay dropped as already delivered.
relay_dups()
{
    curl -fsS --max-time 5 "http://$RELAY/metrics" 2>/dev/null |
        awk '/^connwatch_relay_notifications_total\{.*result="duplicate"/ { n += $NF } END { print n + 0 }'
}
# The relay's dedupe_window would hide a second sender from the pages; its
# duplicate count shows whether the cluster alone kept to one sender: the
# other member waits its position times the peer timeout, then finds the
# notification in the gossiped log.
sleep "$((peer_timeout + 2))"
sent_x=$(am_sent x)
sent_y=$(am_sent y)
dups0=$(relay_dups)
((dups0 == 0)) || cw_fail "both Alertmanagers sent the same notifications ($dups0 duplicates at the relay; x sent $sent_x, y $sent_y)"
cw_pass "a fault on each shard paged once, by one Alertmanager (x sent $sent_x, y sent $sent_y notifications; 0 duplicates at the relay)"

# The sender dies; the survivor carries on from the gossiped notification log.
if ((sent_x >= sent_y)); then dead=x live=y; else dead=y live=x; fi
kill -KILL "${am_pid[$dead]}"
wait "${am_pid[$dead]}" 2>/dev/null || true
cw_forget_pid "${am_pid[$dead]}"
cw_note "killed Alertmanager $dead (PID ${am_pid[$dead]}), the one that sent"
refuse a2
wait_page firing a2
for name in a1 b1 a2; do
    listen "$name"
done
for name in a1 b1 a2; do
    wait_page resolved "$name"
done
cw_pass "after Alertmanager $dead was killed, $live paged the new fault and every recovery"

# Quiet period: a duplicate from a late peer or a repeated group would land here.
sleep "$((2 * peer_timeout + 3))"
all=$(pages)
dups=$(sort <<<"$all" | uniq -c | awk '$1 > 1')
[[ -z $dups ]] || cw_fail "pages delivered more than once:"$'\n'"$dups"$'\n'"all: $(tr '\n' ';' <<<"$all")"
for want in "firing a1" "firing b1" "firing a2" "resolved a1" "resolved b1" "resolved a2"; do
    read -r st name <<<"$want"
    [[ $'\n'$all$'\n' == *$'\n'"$st ConnwatchNetworkCheckFailing svc-$name"$'\n'* ]] ||
        cw_fail "no $st page for svc-$name"
done
# ConnwatchExporterAbsent (for 10m, cut to 2 s) may fire once before
# Prometheus's first scrapes; nothing else may page.
other=$(grep -v -e ' ConnwatchNetworkCheckFailing svc-' -e ' ConnwatchExporterAbsent -$' <<<"$all" || true)
[[ -z $other ]] || cw_fail "unexpected pages: $other"
cw_pass "each alert paged exactly once: $(wc -l <<<"$all") pages for 3 faults (firing + resolved); the relay dropped $(relay_dups) duplicates after the failover"

cw_stop "$prom_pid" || cw_fail "prometheus did not exit cleanly"
cw_stop "${am_pid[$live]}" || cw_fail "alertmanager $live did not exit cleanly"
cw_pass "it_scale_ha"
