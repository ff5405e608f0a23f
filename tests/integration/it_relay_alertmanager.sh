#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_relay_alertmanager.sh - connwatch-relay behind a real Alertmanager
# (Debian's prometheus-alertmanager): alerts posted to Alertmanager's API
# reach, through the relay,
#   - a loopback DingTalk recorder: markdown, zh texts, @mobiles and the
#     atMobiles list only for the critical alert, a resolved message, and a
#     signature this script verifies independently (python3 hmac/base64);
#   - a loopback Aliyun SMS recorder: critical alerts only, the request's
#     Signature recomputed here with an independent python3 implementation
#     of the documented RPC V1 algorithm;
#   - a real SMTP server (aiosmtpd): one message per notification,
#     multipart/alternative with text/plain and text/html, encoded subject;
#   - a generic webhook recorder: the Alertmanager JSON as it came.
# Then bad requests (malformed JSON, wrong version, unknown receiver, body
# over max_request_bytes) get 4xx with a reason and the relay stays up, and
# no secret appears in the log or the metrics.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"

cw_require curl python3 prometheus-alertmanager
smtpd_require
cw_tmpdir
T=$CW_TMP

# --- receivers' stand-ins ------------------------------------------------------------------
recorder_start "$T/dt" dingtalk
DT_PORT=$REC_PORT
recorder_start "$T/sms" sms
SMS_PORT=$REC_PORT
recorder_start "$T/hook" webhook
HOOK_PORT=$REC_PORT
smtpd_start "$T/maildir"

DT_TOKEN=tok-$RANDOM$RANDOM
DT_SECRET=SECdt$RANDOM$RANDOM$RANDOM
SMS_SECRET=smsSecret$RANDOM$RANDOM
SMTP_PASSWORD=pw$RANDOM$RANDOM
echo "http://127.0.0.1:$DT_PORT/robot/send?access_token=$DT_TOKEN" >"$T/dt.url"
echo "$DT_SECRET" >"$T/dt.secret"
echo "$SMS_SECRET" >"$T/sms.secret"
echo "$SMTP_PASSWORD" >"$T/smtp.password"

cat >"$T/relay.yml" <<EOF
spool_dir: $T/spool
max_request_bytes: 65536
receivers:
  - name: oncall
    language: zh
    time_zone: Asia/Shanghai
    dingtalk:
      url_file: dt.url
      secret_file: dt.secret
      at_mobiles_on_critical: ["13800000000", "13900000000"]
  - name: sms
    aliyun_sms:
      access_key_id: LTAItestkey
      access_key_secret_file: sms.secret
      sign_name: 连接监控
      template_code: SMS_123456789
      phone_numbers: ["13800000000"]
      endpoint: "http://127.0.0.1:$SMS_PORT/"
  - name: mail
    language: en
    email:
      smtp_url: "smtp://127.0.0.1:$SMTP_PORT"
      from: "connwatch <alerts@example.com>"
      to: ["Ops <ops@example.com>", "dba@example.com"]
      require_tls: false
  - name: hook
    webhook:
      url: "http://127.0.0.1:$HOOK_PORT/hook"
EOF
"$RELAY_BIN" --config.check --config.file="$T/relay.yml" >/dev/null || cw_fail "--config.check rejected the test configuration"
relay_start "$T/relay.yml"
RELAY=$CW_ADDR
[[ $(cw_http_code /-/healthy) == 200 ]] || cw_fail "/-/healthy is not 200"
[[ $(cw_http_code /-/ready) == 200 ]] || cw_fail "/-/ready is not 200"

# --- a real Alertmanager routing every group to all four receivers ----------------------------
AM_PORT=$(cw_free_port)
cat >"$T/am.yml" <<EOF
route:
  receiver: relay
  group_by: ['alertname']
  group_wait: 500ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: relay
    webhook_configs:
      - url: http://$RELAY/webhook/oncall
      - url: http://$RELAY/webhook/sms
      - url: http://$RELAY/webhook/mail
      - url: http://$RELAY/webhook/hook
EOF
cw_spawn "$T/am.log" prometheus-alertmanager --config.file="$T/am.yml" --storage.path="$T/am-data" \
    --cluster.listen-address= --web.listen-address="127.0.0.1:$AM_PORT"
AM_PID=$CW_LAST_PID
for ((i = 0; i < 100 * CW_SLOW; i++)); do
    curl -fsS "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null 2>&1 && break
    kill -0 "$AM_PID" 2>/dev/null || cw_fail "alertmanager died: $(tail -5 "$T/am.log")"
    sleep 0.1
done

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
post_am()
{
    curl -fsS -XPOST -H 'Content-Type: application/json' --data-binary "$1" \
        "http://127.0.0.1:$AM_PORT/api/v2/alerts" >/dev/null || cw_fail "Alertmanager refused the alerts"
}
post_am '[{"labels":{"alertname":"ProbeFailure","severity":"critical","service":"orders","layer":"tcp","instance":"connwatch:19367","target":"db1:3306","reason":"refused"},
           "annotations":{"summary":"数据库连接失败 connection refused"},"startsAt":"'"$now"'","generatorURL":"http://prom/graph?g0.expr=up"},
          {"labels":{"alertname":"HighLatency","severity":"warning","service":"orders","layer":"icmp","instance":"10.0.0.1"},
           "annotations":{"summary":"RTT 250 ms"},"startsAt":"'"$now"'"}]'

count_lines() { [[ -f $1 ]] && wc -l <"$1" || echo 0; }
count_mail() { { find "$T/maildir/new" -type f 2>/dev/null || true; } | wc -l; }
wait_for()
{
    local what=$1 want=$2 fn=$3 arg=${4:-} start n
    start=$(cw_now)
    while :; do
        n=$($fn $arg)
        ((n >= want)) && return 0
        (($(cw_elapsed_ms "$start") < 20000 * CW_SLOW)) || cw_fail "$what: $n of $want after 20 s"
        sleep 0.2
    done
}
wait_for "DingTalk requests" 2 count_lines "$T/dt/requests.jsonl"
wait_for "webhook requests" 2 count_lines "$T/hook/requests.jsonl"
wait_for "SMS requests" 1 count_lines "$T/sms/requests.jsonl"
wait_for "e-mails" 2 count_mail
cw_pass "Alertmanager -> relay -> DingTalk, SMS, e-mail and webhook"

# Resolve the critical alert: Alertmanager sends a resolved notification.
post_am '[{"labels":{"alertname":"ProbeFailure","severity":"critical","service":"orders","layer":"tcp","instance":"connwatch:19367","target":"db1:3306","reason":"refused"},
           "annotations":{"summary":"数据库连接失败 connection refused"},"startsAt":"'"$now"'","endsAt":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'"}]'
wait_for "DingTalk requests after the resolve" 3 count_lines "$T/dt/requests.jsonl"
sleep 1.5 # a late SMS would show up here (resolved is not critical-firing, but still critical)

# --- independent checks in python3 ----------------------------------------------------------
DT_SECRET=$DT_SECRET SMS_SECRET=$SMS_SECRET T=$T python3 - <<'PYEOF' || cw_fail "payload checks failed (see above)"
import base64, email, email.policy, glob, hashlib, hmac, json, os, sys, time, urllib.parse

T = os.environ["T"]
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)

def load(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]

# DingTalk: markdown, signature, @mobiles only on critical firing.
dt = load(T + "/dt/requests.jsonl")
secret = os.environ["DT_SECRET"]
seen = {"crit": 0, "warn": 0, "resolved": 0}
for r in dt:
    q = urllib.parse.parse_qs(r["query"], keep_blank_values=True)
    ts, sign = q.get("timestamp", [""])[0], q.get("sign", [""])[0]
    want = base64.b64encode(hmac.new(secret.encode(), (ts + "\n" + secret).encode(),
                                     hashlib.sha256).digest()).decode()
    check(sign == want, "DingTalk sign %r != independent %r" % (sign, want))
    check(abs(int(ts) / 1000 - r["t"]) < 60, "DingTalk timestamp %s not within a minute of now" % ts)
    check(q.get("access_token", [""])[0] != "", "no access_token in the URL")
    check(r["content_type"].startswith("application/json"), "content type " + r["content_type"])
    b = json.loads(r["body"])
    check(b["msgtype"] == "markdown", "msgtype " + b["msgtype"])
    text, title = b["markdown"]["text"], b["markdown"]["title"]
    check(len(r["body"].encode()) < 20000, "body over 20000 bytes")
    mobiles = b.get("at", {}).get("atMobiles", [])
    if "ProbeFailure" in text and "已恢复" in text:
        seen["resolved"] += 1
        check(mobiles == [], "resolved message mentions %r" % mobiles)
        check("- 目标: db1:3306" in text and "- 持续: " in text and " CST" in text,
              "resolved markdown lacks target, duration or the Asia/Shanghai time: " + text)
        check("数据库连接失败" not in text, "resolved markdown repeats the firing summary: " + text)
    elif "ProbeFailure" in text:
        seen["crit"] += 1
        check(mobiles == ["13800000000", "13900000000"], "critical atMobiles %r" % mobiles)
        check("@13800000000" in text and "@13900000000" in text, "no @mobile in the critical text")
        check("数据库连接失败" in text and "级别: 严重" in text and "告警" in title,
              "critical markdown lacks the zh fields: " + text)
        check("db1:3306" in text and "orders" in text and "tcp" in text, "instance/service/layer missing")
        check("- 目标: db1:3306" in text and "connwatch:19367" not in text,
              "the target is not shown instead of the scrape address: " + text)
        check("- 原因: 连接被拒绝（端口无服务监听）" in text, "the reason is not explained: " + text)
        check(" CST\n" in text, "the start is not in the receiver's time zone: " + text)
    elif "HighLatency" in text:
        seen["warn"] += 1
        check(mobiles == [] and "@138" not in text, "warning alert mentions people")
check(seen == {"crit": 1, "warn": 1, "resolved": 1}, "DingTalk messages seen: %r" % seen)

# Aliyun SMS: critical only, independent RPC V1 signature.
def pct(s):
    return urllib.parse.quote(s, safe="-_.~")
sms = load(T + "/sms/requests.jsonl")
sms_secret = os.environ["SMS_SECRET"]
firing = 0
for r in sms:
    check(r["method"] == "GET", "SMS method " + r["method"])
    pairs = urllib.parse.parse_qsl(r["query"], keep_blank_values=True)
    params = dict(pairs)
    sig = params.pop("Signature", "")
    canon = "&".join(pct(k) + "=" + pct(v) for k, v in sorted(params.items()))
    sts = "GET&" + pct("/") + "&" + pct(canon)
    want = base64.b64encode(hmac.new((sms_secret + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()
    check(sig == want, "SMS Signature %r != independent %r" % (sig, want))
    for k, v in {"Action": "SendSms", "Version": "2017-05-25", "Format": "JSON", "RegionId": "cn-hangzhou",
                 "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "AccessKeyId": "LTAItestkey",
                 "SignName": "连接监控", "TemplateCode": "SMS_123456789", "PhoneNumbers": "13800000000"}.items():
        check(params.get(k) == v, "SMS %s=%r, want %r" % (k, params.get(k), v))
    check(len(params.get("SignatureNonce", "")) >= 16, "no SignatureNonce")
    time.strptime(params.get("Timestamp", ""), "%Y-%m-%dT%H:%M:%SZ")
    tp = json.loads(params["TemplateParam"])
    check(all(isinstance(v, str) for v in tp.values()), "TemplateParam values must be strings")
    check(tp.get("alertname") == "ProbeFailure", "SMS for %r (only critical expected)" % tp)
    check(all(len(v) <= 35 for v in tp.values()), "TemplateParam value over 35 characters: %r" % tp)
    firing += tp.get("status") == "告警"
    if tp.get("status") == "告警":
        check(tp.get("instance") == "db1:3306" and "连接被拒绝" in tp.get("summary", ""),
              "firing SMS lacks the target or the reason: %r" % tp)
check(firing == 1, "critical firing SMS sent %d times" % firing)
check(len(sms) <= 2, "SMS sent %d times (warning alerts must not go out)" % len(sms))

# E-mail: aiosmtpd's maildir.
mails = sorted(glob.glob(T + "/maildir/new/*"))
subjects = []
for p in mails:
    with open(p, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    subjects.append(str(m["Subject"]))
    check(m.get_content_type() == "multipart/alternative", "mail type " + m.get_content_type())
    check(m["From"] is not None and m["Date"] is not None and m["Message-ID"] is not None, "mail headers")
    check("ops@example.com" in str(m["To"]) and "dba@example.com" in str(m["To"]), "To: " + str(m["To"]))
    parts = {part.get_content_type(): part.get_content() for part in m.iter_parts()}
    check(set(parts) == {"text/plain", "text/html"}, "mail parts %r" % list(parts))
    plain = parts.get("text/plain", "")
    if "RESOLVED" in str(m["Subject"]):
        check("- lasted: " in plain and "- target: db1:3306" in plain and "severity:" not in plain,
              "resolved plain text: " + plain)
    else:
        check("severity:" in plain, "plain text lacks the alert")
    if "ProbeFailure" in str(m["Subject"]) and "FIRING" in str(m["Subject"]):
        check("- reason: connection refused (nothing listens on the port)" in plain,
              "firing plain text lacks the reason: " + plain)
    check("<pre" in parts.get("text/html", ""), "html part lacks the alert")
check(any("ProbeFailure" in s and "FIRING" in s for s in subjects), "subjects: %r" % subjects)
check(any("HighLatency" in s for s in subjects), "subjects: %r" % subjects)

# Generic webhook: Alertmanager's own JSON.
for r in load(T + "/hook/requests.jsonl"):
    b = json.loads(r["body"])
    check(b.get("version") == "4" and b.get("groupKey") and b.get("alerts"), "webhook body is not AM's payload")

for e in errors:
    print("  -", e, file=sys.stderr)
print("dingtalk=%d sms=%d mails=%d" % (len(dt), len(sms), len(mails)))
sys.exit(1 if errors else 0)
PYEOF
cw_pass "markdown, @mobiles, DingTalk and Aliyun signatures verified independently, multipart e-mail"

# --- bad requests: 4xx with a reason, no crash ----------------------------------------------------
printf '{"version":"4","status":"firing",' >"$T/malformed.json"
printf '{"version":"3","status":"firing","receiver":"r","groupKey":"g","alerts":[]}' >"$T/v3.json"
printf '{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[{"status":"firing","labels":{"alertname":"x"},"fingerprint":"%s"}]}' \
    "$(head -c 100000 /dev/zero | tr '\0' a)" >"$T/big.json"
printf '{"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[{"status":"firing","labels":{"alertname":"x"}}]}' >"$T/ok.json"
code=$(relay_post oncall "$T/malformed.json")
[[ $code == 400 ]] || cw_fail "malformed JSON got $code"
grep -q 'malformed JSON' "$T/post.out" || cw_fail "no reason for malformed JSON: $(cat "$T/post.out")"
code=$(relay_post oncall "$T/v3.json")
[[ $code == 400 ]] || cw_fail "version 3 got $code"
grep -q 'version' "$T/post.out" || cw_fail "no reason for version 3: $(cat "$T/post.out")"
code=$(relay_post nobody "$T/ok.json")
[[ $code == 404 ]] || cw_fail "unknown receiver got $code"
grep -q 'unknown receiver' "$T/post.out" || cw_fail "no reason for the unknown receiver"
code=$(relay_post oncall "$T/big.json")
[[ $code == 413 ]] || cw_fail "a 100 kB body (limit 64 KiB) got $code"
code=$(relay_post ../../etc "$T/ok.json")
[[ $code == 4* ]] || cw_fail "a path-traversal receiver name got $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://$RELAY/webhook/oncall" || true)
[[ $code == 4* ]] || cw_fail "GET /webhook/oncall got $code"
kill -0 "$CW_PID" 2>/dev/null || cw_fail "the relay died on bad requests"
[[ $(cw_http_code /-/healthy) == 200 ]] || cw_fail "/-/healthy after bad requests"
cw_scrape >"$T/metrics.txt"
[[ $(cw_metric_in "$T/metrics.txt" connwatch_relay_webhook_rejected_total 'reason="malformed"') -ge 2 ]] ||
    cw_fail "malformed requests not counted"
cw_pass "bad requests: 400 malformed, 400 version, 404 unknown receiver, 413 oversize; relay alive"

# --- metrics, and no secret anywhere -----------------------------------------------------------------
for r in oncall sms mail hook; do
    cw_metric_in "$T/metrics.txt" connwatch_relay_notifications_total "receiver=\"$r\",result=\"delivered\"" >/dev/null ||
        cw_fail "no delivered series for $r"
    [[ $(cw_metric_in "$T/metrics.txt" connwatch_relay_queue_length "receiver=\"$r\"") == 0 ]] ||
        cw_fail "queue of $r not empty"
    cw_metric_in "$T/metrics.txt" connwatch_relay_delivery_seconds_count "receiver=\"$r\"" >/dev/null ||
        cw_fail "no delivery histogram for $r"
done
[[ $(cw_metric_in "$T/metrics.txt" connwatch_relay_notifications_total 'receiver="sms",result="filtered"') -ge 1 ]] ||
    cw_fail "the warning notification was not filtered from SMS"
kill -HUP "$CW_PID"
sleep 0.5
grep -q 'configuration reloaded' "$CW_LOG" || cw_fail "SIGHUP did not reload"
for s in "$DT_TOKEN" "$DT_SECRET" "$SMS_SECRET" "$SMTP_PASSWORD"; do
    ! grep -qF -- "$s" "$CW_LOG" "$T/metrics.txt" || cw_fail "a secret appears in the log or the metrics"
done
cw_stop || cw_fail "the relay did not exit 0 on SIGTERM"
cw_pass "metrics per receiver, SIGHUP reload, no secret in the log or the metrics, clean exit"
