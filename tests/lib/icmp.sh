# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# icmp.sh - namespace helpers for the icmp integration tests
# (tests/integration/it_icmp_*.sh). Source after common.sh and after
# cw_isolate_netns, so that the test runs in a namespace of its own.
#
# icmp_peer_setup makes a named namespace "cwicmp-PID" (ICMP_PEER) joined to
# the test's namespace by a veth pair: 10.200.0.1/24 and fd00:200::1/64 here,
# .2 / ::2 there; 10.201.0.0/16 and fd00:201::/48 are routed to the peer,
# which owns the addresses the test gives it with icmp_peer_addr. The EXIT
# trap deletes the peer namespace (and with it the veth pair).

ICMP_PEER=""

_icmp_cleanup()
{
    local rc=$?
    if [[ -n $ICMP_PEER ]]; then
        ip netns del "$ICMP_PEER" 2>/dev/null || true
    fi
    (exit "$rc")
    _cw_cleanup
}

# icmp_need_root skips unless the test runs as root in its own namespace.
icmp_need_root()
{
    [[ $(id -u) -eq 0 ]] || cw_skip "needs root (namespaces, nft, raw sockets)"
    [[ -n ${CW_NETNS:-} ]] || cw_skip "needs its own network namespace (unshare)"
    cw_require ip nft curl
}

# icmp_peer CMD... runs CMD inside the peer namespace.
icmp_peer()
{
    ip netns exec "$ICMP_PEER" "$@"
}

icmp_peer_setup()
{
    ICMP_PEER="cwicmp-$$"
    trap _icmp_cleanup EXIT
    ip netns add "$ICMP_PEER" || cw_fail "ip netns add $ICMP_PEER failed"
    ip link add cwi0 type veth peer name cwi1 || cw_fail "cannot make a veth pair"
    ip link set cwi1 netns "$ICMP_PEER"
    ip addr add 10.200.0.1/24 dev cwi0
    ip -6 addr add fd00:200::1/64 dev cwi0 nodad
    ip link set cwi0 up
    icmp_peer ip link set lo up
    icmp_peer ip addr add 10.200.0.2/24 dev cwi1
    icmp_peer ip -6 addr add fd00:200::2/64 dev cwi1 nodad
    icmp_peer ip link set cwi1 up
    icmp_peer ip route add default via 10.200.0.1
    icmp_peer ip -6 route add default via fd00:200::1
    ip route add 10.201.0.0/16 via 10.200.0.2
    ip -6 route add fd00:201::/48 via fd00:200::2
}

# icmp_peer_addr ADDR... gives the peer these addresses (on its lo).
icmp_peer_addr()
{
    local a
    for a in "$@"; do
        if [[ $a == *:* ]]; then
            icmp_peer ip -6 addr add "$a/128" dev lo nodad
        else
            icmp_peer ip addr add "$a/32" dev lo
        fi
    done
}

# icmp_wait_window CFGCOUNT WANT SECONDS waits until CFGCOUNT series of
# connwatch_icmp_window_probes are >= WANT; leaves the last scrape in
# $CW_TMP/scrape.prom.
icmp_wait_window()
{
    local count=$1 want=$2 secs=$3 start n
    start=$(cw_now)
    while :; do
        cw_scrape >"$CW_TMP/scrape.prom"
        n=$(awk -v w="$want" '/^connwatch_icmp_window_probes\{/ && $NF + 0 >= w { n++ }
                END { print n + 0 }' "$CW_TMP/scrape.prom")
        ((n >= count)) && return 0
        (($(cw_elapsed_ms "$start") < secs * 1000 * CW_SLOW)) ||
            cw_fail "only $n of $count targets have $want probes in their window after $secs s"
        sleep 0.25
    done
}
