# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# peer.sh - a peer host for the network tests (it_tcp.sh, it_net_layer.sh):
# a network namespace held by a sleep process the test starts (so the
# cleanup of common.sh removes it with its PID), joined to the test's own
# namespace by a veth pair. Source after common.sh, after cw_isolate_netns
# and cw_tmpdir.
#
# cw_peer_netns PREFIX IFNAME makes the pair IFNAME0 (here, PREFIX.1/24) and
# IFNAME1 (there, PREFIX.2/24), both up, and sets CW_PEER_PID; in_peer CMD
# runs CMD in the peer.
#
# The peer sends its ICMP errors without the kernel's per-destination rate
# limit (net.ipv4.icmp_ratelimit, 1 s after a burst of 6): a test that
# rejects a port for five check kinds every second would otherwise see some
# REJECTs arrive as silent drops (measured: 13 of 30 connects at 30/s timed
# out) and read 'timeout' where the rule says 'unreachable'.

CW_PEER_PID=""

in_peer()
{
    nsenter --net="/proc/$CW_PEER_PID/ns/net" "$@"
}

cw_peer_netns()
{
    local prefix=$1 ifname=$2 i
    cw_spawn "$CW_TMP/peer.log" unshare --net sleep 600
    CW_PEER_PID=$CW_LAST_PID
    for ((i = 0; i < 50; i++)); do
        [[ $(readlink "/proc/$CW_PEER_PID/ns/net") != "$(readlink /proc/self/ns/net)" ]] && break
        sleep 0.02
    done
    ip link add "${ifname}0" type veth peer name "${ifname}1"
    ip link set "${ifname}1" netns "/proc/$CW_PEER_PID/ns/net"
    ip addr add "$prefix.1/24" dev "${ifname}0"
    ip link set "${ifname}0" up
    in_peer ip link set lo up
    in_peer ip addr add "$prefix.2/24" dev "${ifname}1"
    in_peer ip link set "${ifname}1" up
    in_peer sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
}
