#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench-mysql.sh - connwatch's mysql check against Debian's
# prometheus-mysqld-exporter (default collectors), each alone against the
# same mariadbd that this script starts on loopback with its own datadir:
#   - RSS (VmRSS after warm-up and the load);
#   - CPU per scrape of the exporter process, scrape latency p50/p99 (SCRAPES
#     sequential curl scrapes);
#   - load added on the server per poll: Questions and Com_* deltas and
#     mariadbd CPU. mysqld_exporter queries the server on every scrape;
#     connwatch polls on its interval and serves scrapes from memory, so its
#     cost is measured per poll (interval 100 ms, POLL_SECONDS) and per scrape
#     (separately, with a 10 min interval), and compared per refresh of the
#     data (1 exporter scrape vs 1 connwatch poll + 1 scrape).
# Ends with a table and the ratios.
#
#   bench/bench-mysql.sh        (BUILD_DIR=build, SCRAPES=300, POLL_SECONDS=20, CHECKS=10)
#
# CHECKS mysql checks (each its own kept connection) poll the server in the
# per-poll phase, so that POLL_SECONDS hold enough polls for CPU ticks
# (10 ms each) to resolve a fraction of a millisecond per poll.
#
# Only loopback traffic; it ends only the processes it started.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
SCRAPES=${SCRAPES:-300}
POLL_SECONDS=${POLL_SECONDS:-20}
CHECKS=${CHECKS:-10}
export CW_SOURCE_ROOT=$ROOT CW_BUILD_ROOT=$BUILD_DIR
# shellcheck source=tests/lib/common.sh
. "$ROOT/tests/lib/common.sh"

EXPORTER=${MYSQLD_EXPORTER:-prometheus-mysqld-exporter}
cw_require curl mariadbd mariadb-install-db mariadb "$EXPORTER"
cw_tmpdir
TICK=$(getconf CLK_TCK)

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
anon_kb() { awk '$1 == "RssAnon:" { print $2 }' "/proc/$1/status"; }

# ---- mariadbd ---------------------------------------------------------------------------------
d=$CW_TMP/mysql
sock=$d/sock
port=$(cw_free_port)
SQL=(mariadb --no-defaults -S "$sock" -uroot -B -N)
mariadb-install-db --no-defaults --datadir="$d" --user=root \
    --auth-root-authentication-method=normal >"$CW_TMP/install.log" 2>&1 || cw_fail "install-db failed"
cw_spawn "$CW_TMP/mariadbd.log" mariadbd --no-defaults --datadir="$d" --socket="$sock" \
    --port="$port" --bind-address=127.0.0.1 --user=root --skip-name-resolve
db_pid=$CW_LAST_PID
until "${SQL[@]}" -e 'SELECT 1' >/dev/null 2>&1; do sleep 0.1; done
"${SQL[@]}" -e "CREATE USER monitor@'127.0.0.1' IDENTIFIED BY 'bench-pw';
    GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO monitor@'127.0.0.1';"
printf 'bench-pw\n' >"$CW_TMP/pw"
printf '[client]\nuser=monitor\npassword=bench-pw\nhost=127.0.0.1\nport=%s\n' "$port" >"$CW_TMP/my.cnf"

# status_snapshot prints "Questions Com_show_status Com_show_variables Com_select
# Com_show_slave_status" (the reading itself is one Question, subtracted by the caller).
status_snapshot()
{
    "${SQL[@]}" -e "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions','Com_show_status',
        'Com_show_variables','Com_select','Com_show_slave_status','Com_show_engine_status')" |
        awk '{ v[$1] = $2 } END { print v["Questions"], v["Com_show_status"], v["Com_show_variables"],
            v["Com_select"], v["Com_show_slave_status"] + 0, v["Com_show_engine_status"] + 0 }'
}
# per_unit A B N: per-unit deltas of two snapshots, one Question of reading removed.
per_unit()
{
    awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { split(a, x, " "); split(b, y, " ");
        printf "%.2f %.2f %.2f %.2f %.2f %.2f\n", (y[1] - x[1] - 1) / n, (y[2] - x[2]) / n,
            (y[3] - x[3]) / n, (y[4] - x[4]) / n, (y[5] - x[5]) / n, (y[6] - x[6]) / n }'
}
# scrape_series URL N: N sequential scrapes; prints "p50_ms p99_ms" and leaves
# the sample count of the last one in $CW_TMP/series.
scrape_series()
{
    local url=$1 n=$2 i
    : >"$CW_TMP/lat"
    for ((i = 0; i < n; i++)); do
        curl -fsS -o "$CW_TMP/last.prom" -w '%{time_total}\n' "$url" >>"$CW_TMP/lat"
    done
    grep -vc '^#' "$CW_TMP/last.prom" >"$CW_TMP/series" || true
    sort -n "$CW_TMP/lat" | awk '{ v[NR] = $1 } END {
        printf "%.2f %.2f\n", v[int(NR * 0.5 + 0.5)] * 1000, v[int(NR * 0.99 + 0.5)] * 1000 }'
}

# ---- mysqld_exporter: every scrape queries the server -----------------------------------------
eport=$(cw_free_port)
cw_spawn "$CW_TMP/exporter.log" "$EXPORTER" --config.my-cnf="$CW_TMP/my.cnf" \
    --web.listen-address="127.0.0.1:$eport"
exp_pid=$CW_LAST_PID
cw_wait_http "http://127.0.0.1:$eport/metrics"
scrape_series "http://127.0.0.1:$eport/metrics" 20 >/dev/null # warm-up
s0=$(status_snapshot)
c0=$(cpu_ticks "$exp_pid")
m0=$(cpu_ticks "$db_pid")
read -r e_p50 e_p99 < <(scrape_series "http://127.0.0.1:$eport/metrics" "$SCRAPES")
c1=$(cpu_ticks "$exp_pid")
m1=$(cpu_ticks "$db_pid")
s1=$(status_snapshot)
e_series=$(cat "$CW_TMP/series")
e_rss=$(rss_kb "$exp_pid")
e_anon=$(anon_kb "$exp_pid")
e_cpu=$(awk -v t=$((c1 - c0)) -v n="$SCRAPES" -v hz="$TICK" 'BEGIN { printf "%.3f", t / hz / n * 1000 }')
e_db=$(awk -v t=$((m1 - m0)) -v n="$SCRAPES" -v hz="$TICK" 'BEGIN { printf "%.3f", t / hz / n * 1000 }')
read -r e_q e_cs e_cv e_sel e_slave e_engine < <(per_unit "$s0" "$s1" "$SCRAPES")
cw_stop "$exp_pid" || true

# ---- connwatch, CHECKS checks polling every 100 ms, no scrapes: cost per poll ------------------
# mysql_config INTERVAL TIMEOUT N: a configuration of N mysql checks of the server.
mysql_config()
{
    local i
    printf 'global: {interval: %s, timeout: %s}\nhost: {enabled: false}\nservices:\n' "$1" "$2"
    printf '  - name: db\n    checks:\n'
    for ((i = 1; i <= $3; i++)); do
        printf '      - mysql: {address: "127.0.0.1:%s", user: monitor, password_file: %s, name: db%d}\n' \
            "$port" "$CW_TMP/pw" "$i"
    done
}
mysql_config 100ms 100ms "$CHECKS" >"$CW_TMP/poll.yml"
cw_start_connwatch "$CW_TMP/poll.yml"
cw_wait_ready
sleep 2
s0=$(status_snapshot)
c0=$(cpu_ticks "$CW_PID")
m0=$(cpu_ticks "$db_pid")
sleep "$POLL_SECONDS"
c1=$(cpu_ticks "$CW_PID")
m1=$(cpu_ticks "$db_pid")
s1=$(status_snapshot)
polls=$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x, " "); split(b, y, " "); print y[2] - x[2] - 1 }')
((polls > 0)) || cw_fail "no polls counted"
p_cpu=$(awk -v t=$((c1 - c0)) -v n="$polls" -v hz="$TICK" 'BEGIN { printf "%.3f", t / hz / n * 1000 }')
p_db=$(awk -v t=$((m1 - m0)) -v n="$polls" -v hz="$TICK" 'BEGIN { printf "%.3f", t / hz / n * 1000 }')
# the reading's own SHOW STATUS is one Com_show_status too
read -r p_q p_cs p_cv p_sel p_slave p_engine < <(per_unit "$s0" "$s1" "$polls" |
    awk -v n="$polls" '{ $2 = sprintf("%.2f", $2 - 1 / n); print }')
cw_stop || true

# ---- connwatch, scrapes only (one poll every 10 min): cost per scrape --------------------------
# one check, as one mysqld_exporter serves one server
mysql_config 10m 5s 1 >"$CW_TMP/scrape.yml"
cw_start_connwatch "$CW_TMP/scrape.yml"
cw_wait_ready
scrape_series "http://$CW_ADDR/metrics" 20 >/dev/null
c0=$(cpu_ticks "$CW_PID")
m0=$(cpu_ticks "$db_pid")
s0=$(status_snapshot)
read -r w_p50 w_p99 < <(scrape_series "http://$CW_ADDR/metrics" "$SCRAPES")
s1=$(status_snapshot)
c1=$(cpu_ticks "$CW_PID")
m1=$(cpu_ticks "$db_pid")
w_series=$(cat "$CW_TMP/series")
# memory with one check, as one mysqld_exporter serves one server
p_rss=$(rss_kb "$CW_PID")
p_anon=$(anon_kb "$CW_PID")
w_cpu=$(awk -v t=$((c1 - c0)) -v n="$SCRAPES" -v hz="$TICK" 'BEGIN { printf "%.3f", t / hz / n * 1000 }')
w_q=$(per_unit "$s0" "$s1" "$SCRAPES" | awk '{ print $1 }')
cw_stop || true
cw_stop "$db_pid" || true

# ---- report -------------------------------------------------------------------------------------
cw_note "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '\n%-44s %16s %16s\n' "" "mysqld_exporter" "connwatch"
printf '%-44s %16s %16s\n' "version" "$("$EXPORTER" --version 2>&1 | awk 'NR == 1 { print $3 }')" \
    "$("$BUILD_DIR/connwatch" --version 2>&1 | awk 'NR == 1 { print $3 }')"
printf '%-44s %16s %16s\n' "samples per scrape" "$e_series" "$w_series"
printf '%-44s %16s %16s\n' "VmRSS (kB)" "$e_rss" "$p_rss"
printf '%-44s %16s %16s\n' "RssAnon, private memory (kB)" "$e_anon" "$p_anon"
printf '%-44s %16s %16s\n' "exporter CPU per scrape (ms)" "$e_cpu" "$w_cpu"
printf '%-44s %16s %16s\n' "exporter CPU per poll (ms)" "(= scrape)" "$p_cpu"
printf '%-44s %16s %16s\n' "scrape latency p50 / p99 (ms)" "$e_p50 / $e_p99" "$w_p50 / $w_p99"
printf '%-44s %16s %16s\n' "server Questions per poll" "$e_q" "$p_q"
printf '%-44s %16s %16s\n' "  Com_show_status / Com_show_variables" "$e_cs / $e_cv" "$p_cs / $p_cv"
printf '%-44s %16s %16s\n' "  Com_select / Com_show_slave_status" "$e_sel / $e_slave" "$p_sel / $p_slave"
printf '%-44s %16s %16s\n' "  Com_show_engine_status" "$e_engine" "$p_engine"
printf '%-44s %16s %16s\n' "server Questions per scrape" "$e_q" "$w_q"
printf '%-44s %16s %16s\n' "mariadbd CPU per poll (ms)" "$e_db" "$p_db"
awk -v ea="$e_anon" -v wa="$p_anon" -v er="$e_rss" -v wr="$p_rss" -v ec="$e_cpu" -v pc="$p_cpu" -v wc="$w_cpu" -v ed="$e_db" \
    -v pd="$p_db" -v eq="$e_q" -v pq="$p_q" 'BEGIN {
    printf "\nratios (mysqld_exporter / connwatch):\n"
    printf "  memory (VmRSS):                        %.1fx\n", er / wr
    printf "  CPU per refresh (scrape vs poll+scrape): %.1fx\n", ec / (pc + wc)
    printf "  server queries per poll:               %.1fx\n", eq / pq
    if (pd > 0) printf "  mariadbd CPU per poll:                 %.1fx\n", ed / pd
    printf "  private memory (RssAnon):              %.1fx\n", ea / wa
}'
