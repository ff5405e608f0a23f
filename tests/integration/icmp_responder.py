#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
#
# icmp_responder.py - a delaying ICMP echo responder for it_icmp_latency.sh.
# Runs in a namespace whose kernel echo replies are off
# (net.ipv4.icmp_echo_ignore_all=1, net.ipv6.icmp.echo_ignore_all=1), reads
# echo requests on raw sockets with their kernel receive time and answers
# each after DELAY +- JITTER milliseconds (uniform, seeded), chosen by the
# request's destination address:
#
#   icmp_responder.py SEED ADDR=DELAY_MS:JITTER_MS[:dup] [...]
#
# ":dup" sends every reply twice (the second 1 ms after the first).
#
# Prints "ready" once listening; runs until SIGTERM, then prints per-address
# counts, the mean of the delays it drew and how many replies left more
# than 1 ms after their due time (a busy machine; the test then waits for a
# clean window).
import heapq
import random
import select
import signal
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def stamp(anc):
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9
    return time.time()


def main():
    rng = random.Random(int(sys.argv[1]))
    plan = {}
    for arg in sys.argv[2:]:
        addr, spec = arg.split("=")
        f = spec.split(":")
        plan[socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)] = (
            float(f[0]) / 1000, float(f[1]) / 1000, len(f) > 2 and f[2] == "dup")
    applied = {a: [] for a in plan}

    r4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    r4.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    r6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    r6.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    r6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    heap = []
    seq = 0
    late = 0
    print("ready", flush=True)
    while not stop:
        now = time.time()
        while heap and heap[0][0] <= now:
            due, _, fam, src, dst, icmp = heapq.heappop(heap)
            if now - due > 0.001:
                late += 1
            if fam == 4:
                ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0, dst, src)
                s4.sendto(ip + icmp, (socket.inet_ntop(socket.AF_INET, src), 0))
            else:
                r6.sendmsg([icmp], [(socket.IPPROTO_IPV6, IPV6_PKTINFO, dst + b"\0" * 4)],
                           0, (socket.inet_ntop(socket.AF_INET6, src), 0))
            now = time.time()
        timeout = max(0.0, heap[0][0] - now) if heap else 0.2
        try:
            ready, _, _ = select.select([r4, r6], [], [], timeout)
        except InterruptedError:
            continue
        for s in ready:
            data, anc, _, frm = s.recvmsg(4096, 256)
            t = stamp(anc)
            if s is r4:
                ihl = (data[0] & 15) * 4
                src, dst, icmp = data[12:16], data[16:20], bytearray(data[ihl:])
                if len(icmp) < 8 or icmp[0] != 8:
                    continue
                icmp[0] = 0
                icmp[2:4] = b"\0\0"
                icmp[2:4] = struct.pack("!H", csum(bytes(icmp)))
                fam = 4
            else:
                icmp = bytearray(data)
                if len(icmp) < 8 or icmp[0] != 128:
                    continue
                dst = None
                for level, typ, cdata in anc:
                    if level == socket.IPPROTO_IPV6 and typ == IPV6_PKTINFO:
                        dst = cdata[:16]
                src = socket.inet_pton(socket.AF_INET6, frm[0].split("%")[0])
                icmp[0] = 129
                icmp[2:4] = b"\0\0"  # the kernel computes the ICMPv6 checksum
                fam = 6
            if dst not in plan:
                continue
            d, j, dup = plan[dst]
            delay = d + rng.uniform(-j, j)
            applied[dst].append(delay)
            seq += 1
            heapq.heappush(heap, (t + delay, seq, fam, src, dst, bytes(icmp)))
            if dup:
                seq += 1
                heapq.heappush(heap, (t + delay + 0.001, seq, fam, src, dst, bytes(icmp)))
    print("replies sent more than 1 ms late: %d" % late, flush=True)
    for a, v in applied.items():
        fam = socket.AF_INET6 if len(a) == 16 else socket.AF_INET
        mean = sum(v) / len(v) if v else 0
        print("%s answered=%d mean_delay_ms=%.3f" % (socket.inet_ntop(fam, a), len(v), mean * 1000),
              flush=True)


if __name__ == "__main__":
    main()
