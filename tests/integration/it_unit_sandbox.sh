#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_unit_sandbox.sh - what can be shown without systemd running of the
# units' SystemCallFilter= and RestrictAddressFamilies= (packaging/*.service):
# each program runs under strace -f with its unit's user and capabilities
# (setpriv), every check kind succeeding against a real local server (host,
# icmp on raw and on datagram sockets, tcp, dns through a server and the
# system resolver, http and https, tls, tls_file, mysql, redis), the relay
# delivering over HTTP and SMTP and making an outbound HTTPS handshake; every
# system call seen must be in the unit's filter as `systemd-analyze
# syscall-filter` expands it (allow-list minus deny-list), and every address
# family given to socket() in RestrictAddressFamilies=.
# What this does not show: the filter itself enforced (no PID 1 systemd to
# apply it; a run traced is not a run filtered, so a call made only on a
# path not taken here is not covered), and the other sandbox options
# (ProtectSystem=, PrivateTmp=, ...), which only systemd applies.
. "$CW_SOURCE_ROOT/tests/lib/common.sh"
[[ $(id -u) -eq 0 ]] || cw_skip "needs root (setpriv, namespaces)"
cw_require strace systemd-analyze setpriv openssl redis-server mariadbd mariadb-install-db python3 curl
cw_isolate_netns "$@"
[[ -n ${CW_NETNS:-} ]] || cw_skip "needs a network namespace of its own"
. "$CW_SOURCE_ROOT/tests/lib/certs.sh"
. "$CW_SOURCE_ROOT/tests/lib/relay.sh"
smtpd_require
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[[ -x $dnsmasq ]] || cw_skip "dnsmasq is not installed"
cw_tmpdir
chmod 755 "$CW_TMP"
T=$CW_TMP
bin=$CW_BUILD_ROOT/connwatch
relay=$CW_BUILD_ROOT/alerts/relay/connwatch-relay
units=$CW_SOURCE_ROOT/packaging
mkdir "$T/out"
chown nobody: "$T/out"
nogroup=$(id -g nobody)
# After exec the traced program is not dumpable for LSan: no leak check here.
export ASAN_OPTIONS=detect_leaks=0

# ---- the units' filters -------------------------------------------------------------
# expand NAME...: the system calls of groups and names, recursively.
expand()
{
    local n
    for n in "$@"; do
        if [[ $n == @* ]]; then
            # shellcheck disable=SC2046
            expand $(systemd-analyze syscall-filter "$n" | tail -n +2 | grep -v '^[[:space:]]*#' |
                awk 'NF { print $1 }')
        else
            echo "$n"
        fi
    done
}
# allowed UNIT: the unit's SystemCallFilter= as one sorted list.
allowed()
{
    local line allow=() deny=()
    while read -r line; do
        if [[ $line == ~* ]]; then
            read -r -a more <<<"${line#\~}"
            deny+=("${more[@]}")
        else
            read -r -a more <<<"$line"
            allow+=("${more[@]}")
        fi
    done < <(sed -n 's/^SystemCallFilter=//p' "$units/$1.service")
    comm -23 <(expand "${allow[@]}" | sort -u) <(expand "${deny[@]}" | sort -u)
}
# check_trace TRACE UNIT WHAT: every call in TRACE allowed, every family too.
check_trace()
{
    local trace=$1 unit=$2 what=$3 used bad fams f
    allowed "$unit" >"$T/$unit.allowed"
    [[ $(wc -l <"$T/$unit.allowed") -gt 100 ]] || cw_fail "cannot expand $unit's SystemCallFilter="
    used=$(sed -nE 's/^[0-9]+ +([a-z_][a-z0-9_]*)\(.*/\1/p' "$trace" | sort -u)
    [[ -n $used ]] || cw_fail "$trace has no system call"
    bad=$(comm -23 <(echo "$used") "$T/$unit.allowed" | tr '\n' ' ')
    [[ -z $bad ]] || cw_fail "$what: system calls outside $unit.service's SystemCallFilter=: $bad"
    fams=$(grep -oE ' socket\(AF_[A-Z0-9]+' "$trace" | sed 's/.*(//' | sort -u | tr '\n' ' ')
    for f in $fams; do
        grep -qE "^RestrictAddressFamilies=.*\<$f\>" "$units/$unit.service" ||
            cw_fail "$what: address family $f is not in $unit.service's RestrictAddressFamilies="
    done
    cw_pass "$what: $(wc -w <<<"$used") distinct system calls, all in $unit.service's filter; families: $fams"
}

# as_unit UNIT LOG TRACE CMD...: CMD under strace with the unit's capabilities,
# as nobody (the unit's user is the package's; the credentials are what matter).
as_unit()
{
    local unit=$1 log=$2 trace=$3 caps
    shift 3
    caps=$(sed -n 's/^AmbientCapabilities=//p' "$units/$unit.service" | tr '[:upper:]' '[:lower:]' | sed 's/cap_//g')
    local -a priv=(setpriv --reuid=nobody --regid="$nogroup" --clear-groups --no-new-privs)
    if [[ -n $caps ]]; then
        priv+=(--inh-caps="-all,+$caps" --ambient-caps="-all,+$caps" --bounding-set="-all,+$caps")
    else
        priv+=(--inh-caps=-all --bounding-set=-all)
    fi
    cw_spawn "$log" "${priv[@]}" strace -f -qq -o "$trace" "$@"
}

# stop_traced PID: SIGTERM to the program strace (PID) runs, then strace
# ends with it; fails unless the program exited 0.
stop_traced()
{
    local child rc=0
    child=$(awk '{ print $1 }' "/proc/$1/task/$1/children")
    [[ -n $child ]] || cw_fail "strace $1 runs no program"
    kill -TERM "$child"
    wait "$1" || rc=$?
    cw_forget_pid "$1"
    [[ $rc -eq 0 ]] || cw_fail "the traced program exited $rc on SIGTERM"
}

# wait_all_ok N LOG: until every connwatch_check_success series is 1 (20 s).
wait_all_ok()
{
    local i n bad
    for ((i = 0; i < 100; i++)); do
        curl -fsS --max-time 5 "http://$CW_ADDR/metrics" >"$T/m" 2>/dev/null || true
        n=$(grep -c '^connwatch_check_success{' "$T/m" || true)
        bad=$(grep '^connwatch_check_success{' "$T/m" | grep -v ' 1$' || true)
        [[ $n -ge $1 && -z $bad ]] && return 0
        sleep 0.2
    done
    cw_fail "not every check succeeded under strace: ${bad:-only $n series}; log: $(tail -n 5 "$2")"
}

# ---- servers ----------------------------------------------------------------------------
cert_ca "$T" ca 2
cert_sign "$T" srv ca 2 "IP:127.0.0.1" 1
chmod 644 "$T"/*.key
p_tls=$(cw_free_port)
tls_server "$T/tls.log" "$p_tls" "$T/srv.pem" "$T/srv.key"
p_dns=$(cw_free_port)
cw_spawn "$T/dnsmasq.log" "$dnsmasq" --no-daemon --keep-in-foreground --port="$p_dns" \
    --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --conf-file=/dev/null \
    --pid-file= --local=/test/ --host-record=one.test,127.0.0.7
p_rd=$(cw_free_port)
cw_spawn "$T/redis.log" redis-server --port "$p_rd" --bind 127.0.0.1 --save '' --appendonly no
sock=$T/my.sock
mariadb-install-db --no-defaults --datadir="$T/db" --user=root \
    --auth-root-authentication-method=normal >"$T/install.log" 2>&1 || cw_fail "mariadb-install-db failed"
cw_spawn "$T/mariadbd.log" mariadbd --no-defaults --datadir="$T/db" --socket="$sock" \
    --skip-networking --user=root --innodb-buffer-pool-size=32M --log-error="$T/mariadbd.err"
for ((i = 0; i < 300; i++)); do
    mariadb --no-defaults -S "$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.1
done
chmod 755 "$T/db" 2>/dev/null || true
wait_port "$p_tls"
wait_port "$p_rd"

# ---- connwatch: every kind, ICMP on raw sockets -----------------------------------------
echo "1 0" >/proc/sys/net/ipv4/ping_group_range
port=$(cw_free_port)
cat >"$T/all.yml" <<EOF2
global: {interval: 1s, timeout: 900ms}
host: {enabled: true, interval: 1s}
services:
  - name: sb
    checks:
      - icmp: {target: 127.0.0.1}
      - tcp: {target: "127.0.0.1:$port"}
      - dns: {name: one.test, server: "127.0.0.1:$p_dns"}
      - dns: {name: localhost}
      - http: {url: "http://127.0.0.1:$port/-/healthy"}
      - http: {url: "https://127.0.0.1:$p_tls/", ca_file: $T/ca.pem}
      - tls: {target: "127.0.0.1:$p_tls", ca_file: $T/ca.pem}
      - tls_file: {path: $T/srv.pem}
      - mysql: {socket: $sock, user: root}
      - redis: {address: "127.0.0.1:$p_rd"}
EOF2
as_unit connwatch "$T/cw.log" "$T/out/cw.trace" "$bin" --config.file="$T/all.yml" \
    --web.listen-address="127.0.0.1:$port"
cw_pid=$CW_LAST_PID
CW_ADDR=127.0.0.1:$port
wait_all_ok 11 "$T/cw.log"
grep -q 'icmp engine started.* ip4=raw' "$T/cw.log" || cw_fail "ICMP not on raw sockets: $(grep icmp "$T/cw.log")"
curl -fsS -X POST "http://$CW_ADDR/-/reload" >/dev/null || cw_fail "reload failed"
wait_all_ok 11 "$T/cw.log"
stop_traced "$cw_pid"
check_trace "$T/out/cw.trace" connwatch "connwatch, all nine kinds, raw ICMP, a reload"

# ---- connwatch: ICMP on datagram sockets ---------------------------------------------
echo "$nogroup $nogroup" >/proc/sys/net/ipv4/ping_group_range
port=$(cw_free_port)
printf 'global: {interval: 1s, timeout: 900ms}\nservices:\n  - name: sb\n    checks:\n      - icmp: {target: 127.0.0.1}\n' >"$T/icmp.yml"
as_unit connwatch "$T/cw2.log" "$T/out/cw2.trace" "$bin" --config.file="$T/icmp.yml" \
    --web.listen-address="127.0.0.1:$port"
cw_pid=$CW_LAST_PID
CW_ADDR=127.0.0.1:$port
wait_all_ok 1 "$T/cw2.log"
grep -q 'icmp engine started.* ip4=unprivileged' "$T/cw2.log" || cw_fail "ICMP not on datagram sockets"
stop_traced "$cw_pid"
check_trace "$T/out/cw2.trace" connwatch "connwatch, ICMP datagram sockets"

# ---- connwatch-relay: HTTP and SMTP deliveries, an HTTPS handshake ------------------------
recorder_start "$T/rec" webhook
smtpd_start "$T/mail"
wait_port "$SMTP_PORT"
mkdir "$T/spool"
chown nobody: "$T/spool"
cat >"$T/relay.yml" <<EOF2
spool_dir: $T/spool
receivers:
  - name: hook
    webhook: {url: "http://127.0.0.1:$REC_PORT/hook"}
  - name: secure
    webhook: {url: "https://127.0.0.1:$p_tls/hook"}
  - name: mail
    email:
      smtp_url: "smtp://127.0.0.1:$SMTP_PORT"
      require_tls: false
      from: "alerts@example.com"
      to: ["ops@example.com"]
EOF2
rport=$(cw_free_port)
as_unit connwatch-relay "$T/relay.log" "$T/out/relay.trace" "$relay" --config.file="$T/relay.yml" \
    --web.listen-address="127.0.0.1:$rport"
relay_pid=$CW_LAST_PID
CW_ADDR=127.0.0.1:$rport
for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "http://$CW_ADDR/-/healthy" 2>/dev/null && break
    sleep 0.1
done
printf '{"version":"4","status":"firing","receiver":"am","groupKey":"{}:{alertname=\\"Sandbox\\"}","externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"Sandbox","severity":"critical"},"annotations":{"summary":"sandbox"},"startsAt":"2025-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"00000000000000bb"}]}' >"$T/p.json"
for r in hook secure mail; do
    code=$(relay_post "$r" "$T/p.json")
    [[ $code == 200 ]] || cw_fail "webhook for $r: HTTP $code"
done
relay_wait_metric connwatch_relay_notifications_total 'receiver="hook",result="delivered"' 1
relay_wait_metric connwatch_relay_notifications_total 'receiver="mail",result="delivered"' 1
# HTTPS: our CA is not in the system store the relay trusts, so the
# handshake is made and the certificate refused: a failed attempt.
relay_wait_metric connwatch_relay_notifications_total 'receiver="secure",result="failed"' 1
grep -q Sandbox "$T/rec/requests.jsonl" || cw_fail "the webhook recorder got nothing"
[[ -n $(find "$T/mail/new" -type f -print -quit) ]] || cw_fail "the SMTP server got no message"
stop_traced "$relay_pid"
check_trace "$T/out/relay.trace" connwatch-relay "connwatch-relay, webhook (HTTP), e-mail (SMTP), HTTPS handshake"
