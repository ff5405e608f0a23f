#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# series.sh - the series budget per target of each check kind, counted from
# a real scrape: one check of each kind, named after it, against servers this
# script starts on loopback (a TCP listener, python's http.server, openssl
# s_server with a throw-away certificate, dnsmasq, redis-server, mariadbd),
# plus icmp to 127.0.0.1 with the default histogram, with histogram_buckets
# of 5 bounds and with histogram: false. Prints per check (the dns check's
# target is its name, budget.test) the series and their families: every
# sample line whose target label is the check's name (the histogram's
# _bucket, _sum and _count lines each count), while every check succeeds.
# Servers that are not installed are left out. Processes are ended by PID.
#
#   bench/series.sh           (BUILD_DIR=build)
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"
cw_require python3 openssl
cw_tmpdir
cd "$CW_TMP"

checks=()
tport=$(cw_free_port)
cw_spawn tcp.log python3 -c "import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', $tport)); l.listen(64)
while True:
    c, _ = l.accept(); c.close()"
checks+=("- tcp: {target: \"127.0.0.1:$tport\", name: tcp}")

hport=$(cw_free_port)
cw_spawn http.log python3 -m http.server --bind 127.0.0.1 "$hport"
checks+=("- http: {url: \"http://127.0.0.1:$hport/\", name: http}")

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \
    -days 30 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
sport=$(cw_free_port)
cw_spawn tls.log openssl s_server -quiet -accept "127.0.0.1:$sport" -cert cert.pem -key key.pem -www
checks+=("- tls: {target: \"127.0.0.1:$sport\", name: tls, ca_file: $CW_TMP/cert.pem}")
checks+=("- tls_file: {path: $CW_TMP/cert.pem, name: tls_file}")

if command -v dnsmasq >/dev/null 2>&1 || [[ -x /usr/sbin/dnsmasq ]]; then
    dport=$(cw_free_port)
    cw_spawn dns.log "$(command -v dnsmasq || echo /usr/sbin/dnsmasq)" -k -C /dev/null \
        --port="$dport" --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts \
        --address=/budget.test/127.0.0.9 --user=root
    checks+=("- dns: {name: budget.test, server: \"127.0.0.1:$dport\"}")
fi
if command -v redis-server >/dev/null 2>&1; then
    rport=$(cw_free_port)
    cw_spawn redis.log redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no
    checks+=("- redis: {address: \"127.0.0.1:$rport\", name: redis}")
fi
if command -v mariadbd >/dev/null 2>&1; then
    mport=$(cw_free_port)
    mariadb-install-db --no-defaults --datadir="$CW_TMP/db" --user=root \
        --auth-root-authentication-method=normal >install.log 2>&1
    cw_spawn mariadbd.log mariadbd --no-defaults --datadir="$CW_TMP/db" --socket="$CW_TMP/db.sock" \
        --port="$mport" --bind-address=127.0.0.1 --user=root --skip-name-resolve
    until mariadb --no-defaults -S "$CW_TMP/db.sock" -uroot -e 'SELECT 1' >/dev/null 2>&1; do sleep 0.1; done
    mariadb --no-defaults -S "$CW_TMP/db.sock" -uroot -e \
        "CREATE USER monitor@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT PROCESS ON *.* TO monitor@'127.0.0.1';"
    printf 'pw\n' >mysql.pw
    checks+=("- mysql: {address: \"127.0.0.1:$mport\", user: monitor, password_file: $CW_TMP/mysql.pw, name: mysql}")
fi
checks+=("- icmp: {target: 127.0.0.1, name: icmp, probe_interval: 100ms}")
checks+=("- icmp: {target: 127.0.0.1, name: icmp_5_buckets, probe_interval: 100ms, histogram_buckets: [0.001, 0.005, 0.02, 0.1, 0.5]}")
checks+=("- icmp: {target: 127.0.0.1, name: icmp_no_histogram, probe_interval: 100ms, histogram: false}")

{
    printf 'global: {interval: 1s, timeout: 1s}\nhost: {enabled: false}\nservices:\n  - name: budget\n    checks:\n'
    for c in "${checks[@]}"; do printf '      %s\n' "$c"; done
} >budget.yml
cw_start_connwatch budget.yml
cw_wait_ready 20
start=$(cw_now)
while :; do
    cw_scrape >s.prom
    failing=$(grep -c '^connwatch_check_success{.*} 0$' s.prom || true)
    ((failing == 0)) && (($(cw_elapsed_ms "$start") > 3000)) && break
    (($(cw_elapsed_ms "$start") < 30000)) ||
        cw_fail "checks still failing: $(grep '^connwatch_check_success{.*} 0$' s.prom | tr '\n' ' ')"
    sleep 0.5
done
printf '%-20s %s\n' check "series per target (families)"
sed -n 's/^[^#].*target="\([^"]*\)".*/\1/p' s.prom | sort -u | while read -r t; do
    printf '%-20s %d  (%s)\n' "$t" "$(grep -c "target=\"$t\"" s.prom)" "$(grep "target=\"$t\"" s.prom |
        sed 's/[{ ].*//; s/_bucket$//; s/_sum$//; s/_count$//' | sort | uniq -c |
        awk '{ printf "%s%s %d", sep, $2, $1; sep = ", " }')"
done
