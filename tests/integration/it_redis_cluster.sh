#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# it_redis_cluster.sh - the redis check on a real 3-master Redis cluster
# (3 redis-server processes with --cluster-enabled yes on loopback, joined by
# redis-cli --cluster create). 300 keys are put on one master with a hash tag;
# checks contacting two different nodes (one with cluster mode detected from
# INFO, one with cluster: true) must both show cluster_state_ok 1, 16384
# slots assigned, 300 keys on the tag's owner and 0 on the other masters
# (read from each master: the owner is a different node for at least one of
# the checks), and the slots per master. Killing a master that the checks
# do not contact fails them with reason refused at once (the dead pooled
# connection is replaced within the run, no "protocol" failure first), while
# up stays 1 and the other masters' counts go on.
set -euo pipefail
# shellcheck source=tests/lib/common.sh
. "${CW_SOURCE_ROOT:-$(dirname "$0")/../..}/tests/lib/common.sh"

cw_require curl redis-server redis-cli python3
cw_tmpdir

# Three ports P with P and P+10000 (the cluster bus) free.
read -r -a ports <<<"$(python3 -c '
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        return True
    except OSError:
        return False
    finally:
        s.close()
out = []
while len(out) < 3:
    p = random.randrange(20000, 30000)
    if p not in out and free(p) and free(p + 10000):
        out.append(p)
print(*out)')"
[[ ${#ports[@]} -eq 3 ]] || cw_fail "could not find free ports"

pids=()
for p in "${ports[@]}"; do
    mkdir -p "$CW_TMP/n$p"
    cw_spawn "$CW_TMP/n$p/server.log" redis-server --port "$p" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$CW_TMP/n$p" --cluster-enabled yes \
        --cluster-config-file nodes.conf --cluster-node-timeout 60000
    pids+=("$CW_LAST_PID")
done
for p in "${ports[@]}"; do
    for ((i = 0; i < 100; i++)); do
        [[ $(redis-cli -p "$p" ping 2>/dev/null) == PONG ]] && break
        sleep 0.05
    done
done
redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" \
    "127.0.0.1:${ports[2]}" --cluster-yes >"$CW_TMP/create.log" 2>&1 ||
    { cat "$CW_TMP/create.log" >&2; cw_fail "redis-cli --cluster create failed"; }
for p in "${ports[@]}"; do
    for ((i = 0; i < 100; i++)); do
        grep -q '^cluster_state:ok' <<<"$(redis-cli -p "$p" cluster info)" && break
        sleep 0.1
    done
    grep -q '^cluster_state:ok' <<<"$(redis-cli -p "$p" cluster info)" || cw_fail "node $p: cluster not ok"
done

# The master that serves the slot of the hash tag {hot}.
slot=$(redis-cli -p "${ports[0]}" CLUSTER KEYSLOT '{hot}')
owner=$(redis-cli -p "${ports[0]}" CLUSTER NODES | awk -v s="$slot" '
    $3 ~ /master/ { for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (n == 1) r[2] = r[1]
        if (s >= r[1] + 0 && s <= r[2] + 0) { split($2, a, "@"); print a[1] } } }')
[[ $owner == 127.0.0.1:* ]] || cw_fail "cannot find the owner of slot $slot"
for ((i = 0; i < 300; i++)); do printf 'SET {hot}:%d v\r\n' "$i"; done |
    redis-cli -p "${owner#127.0.0.1:}" --pipe >/dev/null
cw_note "300 keys in slot $slot on $owner"

cat >"$CW_TMP/cw.yml" <<EOF
global: {interval: 1s, timeout: 800ms}
host: {enabled: false}
services:
  - name: cluster
    checks:
      - redis: {address: "127.0.0.1:${ports[0]}", name: detected}
      - redis: {address: "127.0.0.1:${ports[1]}", name: forced, cluster: true}
EOF
cw_start_connwatch "$CW_TMP/cw.yml"
cw_wait_ready

m() { cw_metric_in "$CW_TMP/cur.txt" "$1" "${2:-}" || true; }
wait_for()
{
    local secs=$1 what=$2 start
    shift 2
    start=$(cw_now)
    while :; do
        cw_scrape >"$CW_TMP/cur.txt"
        if "$@"; then
            return 0
        fi
        (($(cw_elapsed_ms "$start") < secs * 1000 * CW_SLOW)) || break
        sleep 0.1
    done
    grep -E 'redis|check_(success|failure_info)' "$CW_TMP/cur.txt" >&2 || true
    cw_fail "timed out ($secs s) waiting for: $what"
}

balanced_view()
{
    local t=$1 p
    [[ $(m connwatch_check_success "target=\"$t\"") == 1 &&
        $(m connwatch_redis_cluster_state_ok "target=\"$t\"") == 1 &&
        $(m connwatch_redis_cluster_slots_assigned "target=\"$t\"") == 16384 ]] || return 1
    for p in "${ports[@]}"; do
        local want=0
        [[ 127.0.0.1:$p == "$owner" ]] && want=300
        [[ $(m connwatch_redis_cluster_node_keys "target=\"$t\",node=\"127.0.0.1:$p\"") == "$want" ]] ||
            return 1
    done
}
both_views() { balanced_view detected && balanced_view forced; }
wait_for 15 "both checks to show 300 keys on $owner and 0 elsewhere" both_views
f=$CW_TMP/cur.txt
slots=$(awk '/^connwatch_redis_cluster_node_slots\{.*target="detected"/ { s += $NF } END { print s }' "$f")
[[ $slots == 16384 ]] || cw_fail "node slots add up to $slots, want 16384"
for p in "${ports[@]}"; do
    s=$(m connwatch_redis_cluster_node_slots "target=\"detected\",node=\"127.0.0.1:$p\"")
    cw_cmp "$s" '>' 5000 || cw_fail "master $p serves $s slots"
done
cw_pass "keys per master: $owner 300, the others 0; 16384 slots over 3 masters"

# Kill a master that neither check contacts (the third node).
victim=${ports[2]}
kill -KILL "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
cw_forget_pid "${pids[2]}"
node_down()
{
    [[ $(m connwatch_check_failure_info 'target="detected",reason="refused"') == 1 &&
        $(m connwatch_redis_up 'target="detected"') == 1 &&
        -z $(m connwatch_redis_cluster_node_keys "target=\"detected\",node=\"127.0.0.1:$victim\"") &&
        -n $(m connwatch_redis_cluster_node_keys "target=\"detected\",node=\"127.0.0.1:${ports[1]}\"") ]]
}
wait_for 15 "a refused failure for the killed master $victim" node_down
# The dead connection to the master was replaced within the run, so no run
# failed with "protocol" (connection closed) first.
[[ $(m connwatch_check_failures_total 'target="detected",reason="protocol"') == 0 ]] ||
    cw_fail "a run failed with protocol before refused: the stale node connection was not replaced"
cw_pass "killed master: check fails with refused, up stays 1, other masters still counted"

cw_stop || cw_fail "connwatch exited with status $?"
