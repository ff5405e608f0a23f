#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_relay_deadletter.sh - no head-of-line blocking:
#   1. a DingTalk robot, an SMS API and a webhook that answer HTTP 400 to one
#      notification ("Poison"), and an SMTP server that answers 554 to it,
#      while they accept the others: the notification queued
#      behind the poisoned one is delivered within one retry period, the
#      poisoned one is tried dead_letter_after (3) times, moved to
#      spool/RECEIVER/dead/, counted once as result="dead" and logged once
#      with its id;
#   2. a transient failure (HTTP 500) is retried past dead_letter_after and
#      never dead-lettered;
#   3. replay: the dead file moved back into the queue directory and a
#      SIGHUP deliver it;
#   4. a full queue refuses with 503 and logs each refused notification once
#      however often it is re-sent.
# The old relay retried the poisoned notification forever and the one behind
# it was never delivered.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"
# shellcheck source=tests/lib/relay.sh
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"

cw_require curl python3
cw_tmpdir
T=$CW_TMP

for k in dingtalk sms webhook; do
    mkdir -p "$T/$k"
    echo "reject Poison" >"$T/$k/mode"
done
recorder_start "$T/dingtalk" dingtalk
PORT_dingtalk=$REC_PORT
recorder_start "$T/sms" sms
PORT_sms=$REC_PORT
recorder_start "$T/webhook" webhook
PORT_webhook=$REC_PORT
smtpd_require
mkdir -p "$T/maildir/new"
SMTP_PORT=$(cw_free_port)
REJECT_WORD=Poison MAILDIR=$T/maildir PYTHONPATH=$CW_SOURCE_ROOT/tests/lib \
    cw_spawn "$T/smtpd.log" "$SMTPD_PY" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
        -c relay_smtpd_reject.Rejecter
DEAD_PORT=$(cw_free_port)
echo "http://127.0.0.1:$PORT_dingtalk/robot/send?access_token=t" >"$T/dt.url"
echo "smsSecret" >"$T/sms.secret"
RETRY_MAX=2s
cat >"$T/relay.yml" <<EOF
spool_dir: $T/spool
max_queue: 2
receivers:
  - name: dingtalk
    language: en
    retry_initial: 100ms
    retry_max: $RETRY_MAX
    dingtalk: {url_file: dt.url}
  - name: sms
    min_severity: none
    retry_initial: 100ms
    retry_max: $RETRY_MAX
    aliyun_sms:
      access_key_id: LTAItestkey
      access_key_secret_file: sms.secret
      sign_name: test
      template_code: SMS_1
      phone_numbers: ["13800000000"]
      endpoint: "http://127.0.0.1:$PORT_sms/"
  - name: webhook
    retry_initial: 100ms
    retry_max: $RETRY_MAX
    webhook: {url: "http://127.0.0.1:$PORT_webhook/hook"}
  - name: mail
    language: en
    retry_initial: 100ms
    retry_max: $RETRY_MAX
    email:
      smtp_url: "smtp://127.0.0.1:$SMTP_PORT"
      require_tls: false
      from: "alerts@example.com"
      to: ["ops@example.com"]
  - name: stuck
    retry_initial: 1s
    webhook: {url: "http://127.0.0.1:$DEAD_PORT/never"}
EOF

payload()
{
    printf '{"version":"4","status":"firing","receiver":"am","groupKey":"g-%s","alerts":[{"status":"firing","labels":{"alertname":"%s","severity":"critical"},"annotations":{"summary":"dead letter test"},"fingerprint":"%016x"}]}' \
        "$1" "$1" "$2" >"$T/$1.json"
}
seen() { grep -c "$2" "$T/$1/requests.jsonl" 2>/dev/null || true; }
payload Poison 1
payload Good 2
payload Transient 3

relay_start "$T/relay.yml"
start=$(cw_now)
for ((i = 0; i < 100 * CW_SLOW; i++)); do # the SMTP server listening
    (exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break
    sleep 0.1
done
for k in dingtalk sms webhook mail; do
    for p in Poison Good; do
        code=$(relay_post "$k" "$T/$p.json")
        [[ $code == 200 ]] || cw_fail "$k refused $p: HTTP $code"
    done
done
# Three attempts retry_initial apart (jittered to <= 125 %) and the next
# delivery: well within one retry_max period, 2 s.
for k in dingtalk sms webhook mail; do
    relay_wait_metric connwatch_relay_notifications_total "receiver=\"$k\",result=\"delivered\"" 1 20
done
took=$(cw_elapsed_ms "$start")
cw_note "the notification behind a poisoned one delivered on all four receivers after $took ms"
[[ $(find "$T/maildir/new" -type f | wc -l) == 1 ]] || cw_fail "mail: Good was not stored once"
relay_wait_metric connwatch_relay_notifications_total 'receiver="mail",result="dead"' 1 5
[[ $(cw_metric connwatch_relay_notifications_total 'receiver="mail",result="failed"') == 3 ]] ||
    cw_fail "mail: Poison tried $(cw_metric connwatch_relay_notifications_total 'receiver="mail",result="failed"') times, want 3"
grep -q Poison "$T/spool/mail/dead/"*.json || cw_fail "mail: the dead letter is not the poisoned notification"
((took < 2000 * CW_SLOW)) || cw_fail "delivery behind a poisoned notification took $took ms (retry_max is $RETRY_MAX)"
for k in dingtalk sms webhook; do
    [[ $(seen "$k" Good) == 1 ]] || cw_fail "$k: Good reached the endpoint $(seen "$k" Good) times"
    [[ $(seen "$k" Poison) == 3 ]] || cw_fail "$k: Poison tried $(seen "$k" Poison) times, want 3 (dead_letter_after)"
    relay_wait_metric connwatch_relay_notifications_total "receiver=\"$k\",result=\"dead\"" 1 5
    [[ $(cw_metric connwatch_relay_queue_length "receiver=\"$k\"") == 0 ]] || cw_fail "$k: queue not empty"
    n=$(find "$T/spool/$k/dead" -name '*.json' | wc -l)
    [[ $n == 1 ]] || cw_fail "$k: $n files in the dead-letter directory, want 1"
    grep -q Poison "$T/spool/$k/dead/"*.json || cw_fail "$k: the dead letter is not the poisoned notification"
    id=$(basename "$T/spool/$k/dead/"*.json)
    n=$(grep -c "msg=\"notification moved to the dead-letter directory\" receiver=$k id=$id" "$CW_LOG" || true)
    [[ $n == 1 ]] || cw_fail "$k: dead letter logged $n times, want once with its id"
done
! grep -q 'receiver=dingtalk.*delivery failing' "$CW_LOG" ||
    cw_fail "a rejection was logged as a failing receiver"
cw_pass "a poisoned notification is dead-lettered after 3 attempts; the next one is delivered in ${took} ms"

# 2. transient failures keep being retried, never dead-lettered.
echo 500 >"$T/webhook/mode"
[[ $(relay_post webhook "$T/Transient.json") == 200 ]] || cw_fail "webhook refused Transient"
start=$(cw_now)
until (($(seen webhook Transient) >= 5)); do
    (($(cw_elapsed_ms "$start") < 20000 * CW_SLOW)) || cw_fail "Transient retried only $(seen webhook Transient) times"
    sleep 0.1
done
[[ $(cw_metric connwatch_relay_notifications_total 'receiver="webhook",result="dead"') == 1 ]] ||
    cw_fail "a transient failure was dead-lettered"
[[ $(cw_metric connwatch_relay_queue_length 'receiver="webhook"') == 1 ]] || cw_fail "Transient left the queue"
echo ok >"$T/webhook/mode"
relay_wait_metric connwatch_relay_notifications_total 'receiver="webhook",result="delivered"' 2 20
cw_pass "HTTP 500 retried $(seen webhook Transient) times and delivered, not dead-lettered"

# 3. replay: move the dead letter back into the queue directory, reload.
for k in dingtalk sms webhook; do
    echo ok >"$T/$k/mode"
    mv "$T/spool/$k/dead/"*.json "$T/spool/$k/"
done
kill -HUP "$CW_PID"
for k in dingtalk sms; do
    relay_wait_metric connwatch_relay_notifications_total "receiver=\"$k\",result=\"delivered\"" 2 20
done
relay_wait_metric connwatch_relay_notifications_total 'receiver="webhook",result="delivered"' 3 20
for k in dingtalk sms webhook; do
    n=$(seen "$k" 'Poison.*"mode": "ok"')
    [[ $n == 1 ]] || cw_fail "$k: the replayed dead letter was delivered $n times, want once"
    [[ -z $(find "$T/spool/$k" -name '*.json') ]] || cw_fail "$k: spool not empty after the replay"
done
cw_pass "a dead letter moved back into the queue directory is delivered after SIGHUP"

# 4. a full queue: every re-send refused with 503, each notification logged once.
for i in 1 2; do
    payload "Stuck$i" "$((10 + i))"
    [[ $(relay_post stuck "$T/Stuck$i.json") == 200 ]] || cw_fail "stuck refused Stuck$i"
done
payload Over 20
payload Over2 21
for i in 1 2 3 4 5; do
    [[ $(relay_post stuck "$T/Over.json") == 503 ]] || cw_fail "a full queue did not answer 503"
done
[[ $(relay_post stuck "$T/Over2.json") == 503 ]] || cw_fail "a full queue did not answer 503"
n=$(grep -c 'msg="queue full, notification refused"' "$CW_LOG" || true)
# Once per notification, and distinct ones through the rate limit (one line
# per 10 s): Over is logged, Over2 right after it is suppressed and counted.
[[ $n == 1 ]] || cw_fail "queue full logged $n times for 2 notifications sent 6 times, want 1"
cw_pass "a full queue logs a refused notification once and rate-limits the next (6 refusals, $n line)"
cw_stop || cw_fail "the relay did not exit 0"
