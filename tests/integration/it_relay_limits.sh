#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_relay_limits.sh - any accepted notification makes a message that fits
# its channel, for every receiver kind (DingTalk en and zh, Aliyun SMS,
# e-mail through a real SMTP server, generic webhook):
#   - 10,000 alerts in one body (7,000 firing, 3,000 resolved),
#   - 100 alerts (60 firing, 40 resolved) whose common label "instance" is
#     20 KB of mixed ASCII and Chinese (a 44 KB body),
# are each delivered once, within the channel's limit (DingTalk body under
# 20,000 bytes, SMS values within param_max_chars, e-mail under max_bytes,
# webhook body under max_bytes), never cutting a UTF-8 character, with
# "… and N more" for what is left out and firing/resolved counts that add up
# to what was sent. The old relay failed the DingTalk and e-mail messages
# with "output too large" on every retry and sent unbounded webhooks.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"

cw_require curl python3
smtpd_require
cw_tmpdir
T=$CW_TMP

recorder_start "$T/dt" dingtalk
DT_PORT=$REC_PORT
recorder_start "$T/sms" sms
SMS_PORT=$REC_PORT
recorder_start "$T/hook" webhook
HOOK_PORT=$REC_PORT
smtpd_start "$T/maildir"
echo "http://127.0.0.1:$DT_PORT/robot/send?access_token=en" >"$T/dt.url"
echo "http://127.0.0.1:$DT_PORT/robot/send?access_token=zh" >"$T/dtzh.url"
echo "smsSecret" >"$T/sms.secret"

cat >"$T/relay.yml" <<EOF
spool_dir: $T/spool
max_request_bytes: 8388608
receivers:
  - name: dt
    language: en
    retry_initial: 100ms
    retry_max: 200ms
    dingtalk: {url_file: dt.url}
  - name: dtzh
    language: zh
    retry_initial: 100ms
    retry_max: 200ms
    dingtalk: {url_file: dtzh.url}
  - name: sms
    language: en
    min_severity: none
    retry_initial: 100ms
    retry_max: 200ms
    aliyun_sms:
      access_key_id: LTAItestkey
      access_key_secret_file: sms.secret
      sign_name: test
      template_code: SMS_1
      phone_numbers: ["13800000000"]
      endpoint: "http://127.0.0.1:$SMS_PORT/"
      template_param:
        status: "{{status_text}}"
        alertname: "{{alertname}}{{more}}"
        instance: "{{instance}}"
        counts: "{{firing}}/{{resolved}}"
  - name: mail
    language: en
    retry_initial: 100ms
    retry_max: 200ms
    email:
      smtp_url: "smtp://127.0.0.1:$SMTP_PORT"
      require_tls: false
      from: "connwatch <alerts@example.com>"
      to: ["ops@example.com"]
  - name: hook
    retry_initial: 100ms
    retry_max: 200ms
    webhook: {url: "http://127.0.0.1:$HOOK_PORT/hook"}
EOF

# many.json: 10,000 alerts; big.json: 100 alerts, 20 KB common label.
python3 - "$T" <<'PYEOF'
import json, sys
T = sys.argv[1]
def alert(name, i, status, extra=None):
    a = {"status": status, "labels": {"alertname": name, "severity": "critical", "instance": "host%05d" % i},
         "annotations": {"summary": "alert %d 摘要" % i}, "startsAt": "2025-01-01T00:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "%016x" % i}
    a["labels"].update(extra or {})
    return a
many = [alert("Many", i, "firing" if i % 10 < 7 else "resolved") for i in range(10000)]
json.dump({"version": "4", "status": "firing", "receiver": "am", "groupKey": "many", "externalURL": "http://am",
           "commonLabels": {"alertname": "Many"}, "alerts": many},
          open(T + "/many.json", "w"), ensure_ascii=False)
big_value = ("node-" + "节点" * 2 + "xyz") * 1000         # 20,000 bytes, 3-byte characters inside
assert len(big_value.encode()) == 20000
big = [alert("Big", i, "firing" if i < 60 else "resolved") for i in range(100)]
for a in big:
    del a["labels"]["instance"]                          # the common label stands in
json.dump({"version": "4", "status": "firing", "receiver": "am", "groupKey": "big", "externalURL": "http://am",
           "commonLabels": {"alertname": "Big", "instance": big_value}, "alerts": big},
          open(T + "/big.json", "w"), ensure_ascii=False)
PYEOF
cw_note "bodies: many.json $(wc -c <"$T/many.json") bytes, big.json $(wc -c <"$T/big.json") bytes"

relay_start "$T/relay.yml"
for r in dt dtzh sms mail hook; do
    for p in many big; do
        code=$(relay_post "$r" "$T/$p.json")
        [[ $code == 200 ]] || cw_fail "$r refused $p.json: HTTP $code"
    done
done
for r in dt dtzh sms mail hook; do
    relay_wait_metric connwatch_relay_notifications_total "receiver=\"$r\",result=\"delivered\"" 2 30
done
cw_pass "10,000 alerts and a 20 KB label: delivered by DingTalk, SMS, e-mail and webhook"

T=$T python3 - <<'PYEOF' || cw_fail "limit checks failed (see above)"
import email, email.policy, glob, json, os, re, sys, urllib.parse
T = os.environ["T"]
errors = []
def check(ok, what):
    if not ok:
        errors.append(what)
def load(path):
    return [json.loads(l) for l in open(path) if l.strip()]
sent = {"Many": (7000, 3000), "Big": (60, 40)}
def counts(text, name, fir, res, more_re):
    """blocks shown + the summary line must add up to what was sent"""
    shown_f, shown_r = text.count("**%s** %s" % (name, fir)), text.count("**%s** %s" % (name, res))
    m = re.search(more_re, text)
    n, f, r = (int(x) for x in m.groups()) if m else (0, 0, 0)
    want_f, want_r = sent[name]
    check(shown_f + f == want_f and shown_r + r == want_r and n == f + r,
          "%s: shown %d+%d, summary %d (%d+%d), sent %d+%d" % (name, shown_f, shown_r, n, f, r, want_f, want_r))
    return m is not None, shown_f + shown_r

# DingTalk (en and zh): one request per notification, body under 20,000 bytes.
for token, fir, res, more_re in (("en", "FIRING", "RESOLVED", r"… and (\d+) more alerts \((\d+) firing, (\d+) resolved\)"),
                                 ("zh", "告警", "已恢复", r"…另有 (\d+) 条告警未显示（(\d+) 条告警，(\d+) 条已恢复）")):
    reqs = [r for r in load(T + "/dt/requests.jsonl") if r["query"].endswith("=" + token)]
    check(len(reqs) == 2, "dingtalk %s: %d requests, want 2" % (token, len(reqs)))
    for r in reqs:
        raw = r["body"].encode("utf-8")  # raises on a cut UTF-8 sequence
        text = json.loads(r["body"])["markdown"]["text"]
        name = "Many" if "**Many**" in text else "Big"
        more, shown = counts(text, name, fir, res, more_re)
        check(len(raw) < 20000, "dingtalk %s %s: body %d bytes" % (token, name, len(raw)))
        check(more and shown > 0, "dingtalk %s %s: no summary line or no alert shown" % (token, name))
        check(("(%d)" % sum(sent[name])) in json.loads(r["body"])["markdown"]["title"], "dingtalk title count")
        print("dingtalk %s %s: body=%d bytes, alerts shown=%d of %d" % (token, name, len(raw), shown, sum(sent[name])))

# SMS: every TemplateParam value within 35 characters, counts right, "and N more" kept.
reqs = load(T + "/sms/requests.jsonl")
check(len(reqs) == 2, "sms: %d requests, want 2" % len(reqs))
for r in reqs:
    q = dict(urllib.parse.parse_qsl(r["query"], keep_blank_values=True))
    tp = json.loads(q["TemplateParam"])
    name = "Many" if tp["alertname"].startswith("Many") else "Big"
    check(all(isinstance(v, str) and len(v) <= 35 for v in tp.values()), "sms value over 35 characters: %r" % tp)
    check(tp["alertname"] == "%s … and %d more" % (name, sum(sent[name]) - 1), "sms alertname %r" % tp["alertname"])
    check(tp["counts"] == "%d/%d" % sent[name], "sms counts %r" % tp["counts"])
    print("sms %s: TemplateParam=%d characters, url=%d bytes" % (name, len(q["TemplateParam"]), len(r["query"])))

# E-mail: one message per notification, under max_bytes (1 MiB), counts right.
mails = sorted(glob.glob(T + "/maildir/new/*"))
check(len(mails) == 2, "mail: %d messages, want 2" % len(mails))
for p in mails:
    size = os.path.getsize(p)
    with open(p, "rb") as f:
        m = email.message_from_binary_file(f, policy=email.policy.default)
    parts = {part.get_content_type(): part.get_content() for part in m.iter_parts()}
    text = parts.get("text/plain", "")
    name = "Many" if "**Many**" in text else "Big"
    more, shown = counts(text, name, "FIRING", "RESOLVED", r"… and (\d+) more alerts \((\d+) firing, (\d+) resolved\)")
    check(size <= 1048576 + 4096, "mail %s: %d bytes" % (name, size))  # + the server's Received headers
    check(name == "Big" or more, "mail Many: no summary line")
    check(str(sum(sent[name])) in str(m["Subject"]), "mail subject %r" % str(m["Subject"]))
    if name == "Big":
        lines = [l for l in text.splitlines() if l.startswith("- instance: ")]
        check(lines and all(len(l.encode()) <= 2048 + 20 and l.endswith("…") for l in lines),
              "mail Big: instance values not cut to 2048 bytes")
    print("mail %s: %d bytes, alerts shown=%d of %d" % (name, size, shown, sum(sent[name])))

# Webhook: the payload as received when it fits 1 MiB, else truncated in Alertmanager's terms.
reqs = load(T + "/hook/requests.jsonl")
check(len(reqs) == 2, "webhook: %d requests, want 2" % len(reqs))
for r in reqs:
    raw = r["body"].encode("utf-8")
    b = json.loads(r["body"])
    name = b["commonLabels"]["alertname"]
    kept_f = sum(1 for a in b["alerts"] if a["status"] == "firing")
    kept_r = len(b["alerts"]) - kept_f
    tf, tr = b.get("truncatedFiring", 0), b.get("truncatedResolved", 0)
    check(len(raw) <= 1048576, "webhook %s: body %d bytes" % (name, len(raw)))
    check(kept_f + tf == sent[name][0] and kept_r + tr == sent[name][1] and b.get("truncatedAlerts", 0) == tf + tr,
          "webhook %s: kept %d+%d, truncated %r" % (name, kept_f, kept_r, (b.get("truncatedAlerts"), tf, tr)))
    if name == "Many":
        check(b.get("truncatedAlerts", 0) > 0, "webhook Many: not truncated")
    else:
        check(len(b["commonLabels"]["instance"].encode()) == 20000 and len(b["alerts"]) == 100,
              "webhook Big: a payload that fits was changed")
    print("webhook %s: body=%d bytes, alerts kept=%d, truncatedAlerts=%d" % (name, len(raw), len(b["alerts"]),
                                                                            b.get("truncatedAlerts", 0)))
for e in errors:
    print("  -", e, file=sys.stderr)
sys.exit(1 if errors else 0)
PYEOF
cw_pass "every message within its channel's limit, summarised with counts that add up"

! grep -q 'cannot build' "$CW_LOG" || cw_fail "a message could not be built: $(grep 'cannot build' "$CW_LOG" | head -1)"
cw_stop || cw_fail "the relay did not exit 0"
