#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_relay_faults.sh - no notification lost, none duplicated, through:
#   1. the DingTalk endpoint down (connection refused),
#   2. the endpoint answering HTTP 500,
#   3. the endpoint answering errcode 130101 (rate limit) with HTTP 200,
#   4. kill -9 of the relay with a non-empty spool, and a restart,
#   5. the same notifications posted again (Alertmanager's retries),
# then the endpoint recovers: every accepted notification reaches it exactly
# once. Meanwhile a healthy receiver keeps delivering (a dead one never
# blocks another) and a receiver whose endpoint stays dead hands its
# notification to its fallback after fallback_after. Prints the counts
# sent, delivered, duplicated, lost.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"

cw_require curl python3
cw_tmpdir
T=$CW_TMP

DT_PORT=$(cw_free_port)
DEAD_PORT=$(cw_free_port)
echo "http://127.0.0.1:$DT_PORT/robot/send?access_token=t" >"$T/dt.url"
recorder_start "$T/hook" webhook
HOOK_PORT=$REC_PORT
recorder_start "$T/backup" webhook
BACKUP_PORT=$REC_PORT
cat >"$T/relay.yml" <<EOF
spool_dir: $T/spool
receivers:
  - name: oncall
    language: en
    retry_initial: 100ms
    retry_max: 500ms
    dingtalk:
      url_file: dt.url
      rate_limit: 1000
      rate_limit_window: 1s
      throttle_backoff: 300ms
  - name: healthy
    webhook: {url: "http://127.0.0.1:$HOOK_PORT/ok"}
  - name: flaky
    retry_initial: 100ms
    retry_max: 200ms
    fallback: backup
    fallback_after: 1s
    webhook: {url: "http://127.0.0.1:$DEAD_PORT/never"}
  - name: backup
    webhook: {url: "http://127.0.0.1:$BACKUP_PORT/backup"}
EOF

# payload I: notification number I, one alert with its own fingerprint.
payload()
{
    printf '{"version":"4","status":"firing","receiver":"am","groupKey":"{}:{alertname=\\"Fault%03d\\"}","externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"Fault%03d","severity":"critical"},"annotations":{"summary":"fault test"},"startsAt":"2025-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"%016x"}]}' \
        "$1" "$1" "$1" >"$T/p.json"
}
sent=0
post_range()
{
    local i code
    for ((i = $1; i < $2; i++)); do
        payload "$i"
        code=$(relay_post oncall "$T/p.json")
        [[ $code == 200 ]] || cw_fail "notification $i got HTTP $code"
    done
}
queue() { cw_metric connwatch_relay_queue_length 'receiver="oncall"'; }
seen_modes() { python3 -c 'import json,sys; print(" ".join(sorted({json.loads(l)["mode"] for l in open(sys.argv[1])})))' "$T/dt/requests.jsonl" 2>/dev/null || true; }

relay_start "$T/relay.yml"
for i in 900 901 902; do
    payload "$i"
    code=$(relay_post flaky "$T/p.json")
    [[ $code == 200 ]] || cw_fail "flaky receiver refused: $code"
done

# 1. endpoint down
post_range 0 10
payload 500
[[ $(relay_post healthy "$T/p.json") == 200 ]] || cw_fail "healthy receiver refused"
relay_wait_metric connwatch_relay_notifications_total 'receiver="healthy",result="delivered"' 1 5
cw_pass "a healthy receiver delivers while another is down"
sleep 0.5
[[ $(cw_metric connwatch_relay_notifications_total 'receiver="oncall",result="failed"') -ge 1 ]] ||
    cw_fail "no failed attempt counted while the endpoint is down"
[[ $(queue) == 10 ]] || cw_fail "queue is $(queue), not 10, while the endpoint is down"

# 2. endpoint answers 500
mkdir -p "$T/dt"
echo 500 >"$T/dt/mode"
recorder_start "$T/dt" dingtalk "$DT_PORT"
DT_PID=$REC_PID
post_range 10 20
start=$(cw_now)
until [[ $(seen_modes) == *500* ]]; do
    (($(cw_elapsed_ms "$start") < 10000)) || cw_fail "no request reached the recorder in 500 mode"
    sleep 0.1
done

# 3. errcode 130101 with HTTP 200
echo 130101 >"$T/dt/mode"
post_range 20 30
start=$(cw_now)
until [[ $(seen_modes) == *130101* ]]; do
    (($(cw_elapsed_ms "$start") < 10000)) || cw_fail "no request reached the recorder in 130101 mode"
    sleep 0.1
done
grep -q 'errcode 130101' "$CW_LOG" || grep -q 'delivery failing' "$CW_LOG" || cw_fail "failure not logged"
q=$(queue)
[[ $q == 30 ]] || cw_fail "queue is $q, not 30, before kill -9"

# 4. kill -9 with a non-empty spool, restart
kill -KILL "$CW_PID"
wait "$CW_PID" 2>/dev/null || true
cw_forget_pid "$CW_PID"
cw_note "killed the relay with $q notifications spooled"
relay_start "$T/relay.yml"
grep -q 'resuming spooled notifications' "$CW_LOG" || cw_fail "no resume after restart"
[[ $(queue) == 30 ]] || cw_fail "queue after restart is $(queue), not 30"

# 5. Alertmanager-style re-sends of queued notifications, and new ones
post_range 25 40
[[ $(cw_metric connwatch_relay_notifications_total 'receiver="oncall",result="duplicate"') == 5 ]] ||
    cw_fail "re-sent notifications not deduplicated"

# recovery
echo ok >"$T/dt/mode"
relay_wait_metric connwatch_relay_queue_length 'receiver="oncall"' 0 30
sleep 0.5

# fallback: the flaky receiver's notification reached the backup
relay_wait_metric connwatch_relay_notifications_total 'receiver="backup",result="delivered"' 3 10
for i in 900 901 902; do
    grep -q "Fault$i" "$T/backup/requests.jsonl" || cw_fail "the backup receiver did not get Fault$i"
done
[[ $(cw_metric connwatch_relay_queue_length 'receiver="flaky"') == 3 ]] ||
    cw_fail "the flaky receiver's notifications left its queue (they must stay until delivered)"
cw_pass "fallback: all 3 queued notifications of a dead receiver copied to its fallback, originals kept"

T=$T python3 - <<'PYEOF' || cw_fail "lost or duplicated notifications"
import json, os, re, sys
T = os.environ["T"]
sent = {"Fault%03d" % i for i in range(40)}
counts = {}
for l in open(T + "/dt/requests.jsonl"):
    r = json.loads(l)
    if r["mode"] != "ok":
        continue
    for name in set(re.findall(r"Fault\d{3}", json.loads(r["body"])["markdown"]["text"])):
        counts[name] = counts.get(name, 0) + 1
delivered = sent & set(counts)
dup = sum(c - 1 for c in counts.values())
lost = len(sent - delivered)
print("fault test: sent=%d delivered=%d duplicated=%d lost=%d" % (len(sent), len(delivered), dup, lost))
sys.exit(0 if lost == 0 and dup == 0 and len(delivered) == len(sent) else 1)
PYEOF
cw_stop || cw_fail "the relay did not exit 0"
cw_pass "down, 500, errcode 130101, kill -9 and re-sends: every notification delivered once"
