#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_relay_ratelimit.sh - DingTalk's 20 messages per minute per robot,
# shortened for the test to 20 per 5 s (rate_limit / rate_limit_window):
# a real Alertmanager flushes 100 alert groups at once to one robot through
# the relay; the loopback recorder must see no more than 20 requests in any
# 5-second window, every body under 20,000 bytes, and every one of the 100
# alerts in some message (merged, never dropped). Then one notification far
# over the limit arrives summarised under it, with no UTF-8 character cut.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"

cw_require curl python3 prometheus-alertmanager
cw_tmpdir
T=$CW_TMP
N=100
LIMIT=20
WINDOW=5

recorder_start "$T/dt" dingtalk
echo "http://127.0.0.1:$REC_PORT/robot/send?access_token=t" >"$T/dt.url"
cat >"$T/relay.yml" <<EOF
spool_dir: $T/spool
receivers:
  - name: robot
    language: en
    dingtalk:
      url_file: dt.url
      rate_limit: $LIMIT
      rate_limit_window: ${WINDOW}s
EOF
relay_start "$T/relay.yml"

AM_PORT=$(cw_free_port)
cat >"$T/am.yml" <<EOF
route:
  receiver: relay
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1m
  repeat_interval: 1h
receivers:
  - name: relay
    webhook_configs:
      - url: http://$CW_ADDR/webhook/robot
EOF
cw_spawn "$T/am.log" prometheus-alertmanager --config.file="$T/am.yml" --storage.path="$T/am-data" \
    --cluster.listen-address= --web.listen-address="127.0.0.1:$AM_PORT"
for ((i = 0; i < 100 * CW_SLOW; i++)); do
    curl -fsS "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
python3 -c '
import json, sys
print(json.dumps([{"labels": {"alertname": "Burst%03d" % i, "severity": "warning", "instance": "h%d" % i},
                   "annotations": {"summary": "burst alert number %d 突发" % i}} for i in range(int(sys.argv[1]))]))' \
    "$N" >"$T/alerts.json"
curl -fsS -XPOST -H 'Content-Type: application/json' --data-binary "@$T/alerts.json" \
    "http://127.0.0.1:$AM_PORT/api/v2/alerts" >/dev/null || cw_fail "Alertmanager refused the alerts"

# Wait until the relay has delivered all N notifications.
relay_wait_metric connwatch_relay_notifications_total 'receiver="robot",result="delivered"' "$N" 40
cw_scrape >"$T/metrics.txt"
received=$(cw_metric_in "$T/metrics.txt" connwatch_relay_notifications_total 'receiver="robot",result="received"')
[[ $received == "$N" ]] || cw_fail "the relay received $received notifications, not $N"

N=$N LIMIT=$LIMIT WINDOW=$WINDOW T=$T python3 - <<'PYEOF' || cw_fail "rate-limit checks failed"
import json, os, re, sys
T, N, LIMIT, WINDOW = os.environ["T"], int(os.environ["N"]), int(os.environ["LIMIT"]), float(os.environ["WINDOW"])
reqs = [json.loads(l) for l in open(T + "/dt/requests.jsonl") if l.strip()]
times = sorted(r["t"] for r in reqs)
worst = max(sum(1 for u in times if t <= u < t + WINDOW) for t in times)
seen = set()
for r in reqs:
    seen.update(re.findall(r"Burst\d{3}", json.loads(r["body"])["markdown"]["text"]))
sizes = [len(r["body"].encode()) for r in reqs]
print("requests=%d max_in_%gs_window=%d alerts_seen=%d/%d largest_body=%d span=%.1fs"
      % (len(reqs), WINDOW, worst, len(seen), N, max(sizes), times[-1] - times[0]))
ok = worst <= LIMIT and len(seen) == N and max(sizes) < 20000 and len(reqs) < N
sys.exit(0 if ok else 1)
PYEOF
cw_pass "100 alerts in a burst: <= $LIMIT requests per ${WINDOW}s window, every alert delivered"

# One notification far over DingTalk's 20,000-byte limit (400 alerts with
# long Chinese summaries): summarised under the limit, no cut character.
python3 -c '
import json
alerts = [{"status": "firing", "labels": {"alertname": "Huge", "instance": "host%03d" % i, "severity": "critical"},
           "annotations": {"summary": "连接失败" * 40}, "fingerprint": "%016x" % i} for i in range(400)]
print(json.dumps({"version": "4", "status": "firing", "receiver": "am", "groupKey": "huge", "alerts": alerts},
                 ensure_ascii=False))' >"$T/huge.json"
before=$(wc -l <"$T/dt/requests.jsonl")
[[ $(relay_post robot "$T/huge.json") == 200 ]] || cw_fail "the large notification was refused"
relay_wait_metric connwatch_relay_notifications_total 'receiver="robot",result="delivered"' $((N + 1)) 20
tail -n +$((before + 1)) "$T/dt/requests.jsonl" | python3 -c '
import json, sys
r = json.loads(sys.stdin.readline())
raw = r["body"].encode("utf-8")  # raises on a cut UTF-8 sequence (kept as surrogates)
text = json.loads(r["body"])["markdown"]["text"]
shown = text.count("host")
print("large notification: body=%d bytes, alerts shown=%d of 400" % (len(raw), shown))
sys.exit(0 if len(raw) < 20000 and 0 < shown < 400 and "more alerts" in text else 1)' ||
    cw_fail "the large notification was not summarised under 20,000 bytes"
cw_stop || cw_fail "the relay did not exit 0"
cw_pass "a notification over 20,000 bytes is summarised, never cut mid-character"
