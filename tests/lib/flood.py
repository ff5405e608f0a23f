#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""flood.py - hold idle and slowloris connections against an HTTP server on
loopback while timing normal requests on fresh connections.

    flood.py --target 127.0.0.1:PORT [--idle N] [--slowloris M] [--per-addr K]
             [--duration S] [--path /metrics | --post PATH --body FILE]
             [--rate R] [--source NET]

Attack sockets come from spread loopback source addresses (NET.a.b, K
connections per address), as a crowd of clients would; normal requests come
from 127.0.0.1. Every attack socket the server closes is reopened, so the
pressure holds for the whole run. Slowloris clients send a request line and
then one header byte a second, never finishing the headers.

Prints one JSON object: requests sent, failed, p50/p99/max latency (ms) of the
normal requests, how many attack sockets were open at the end, and for the
connections the server closed: how many, and the shortest and longest time
from their first byte (slowloris) or their connect (idle) to the close.
Bounded: everything stops after --duration seconds. Loopback only.
"""
import argparse
import json
import selectors
import socket
import sys
import threading
import time


def source_addr(net, i, per_addr):
    n = i // per_addr
    return "%s.%d.%d" % (net, (n // 250) % 250, n % 250 + 1)


class Attack:
    def __init__(self, host, port, idle, slow, per_addr, net):
        self.host, self.port = host, port
        self.sel = selectors.DefaultSelector()
        self.idle, self.slow, self.per_addr, self.net = idle, slow, per_addr, net
        # fd -> [sock, kind, index, t_open, t_first, sent, connected, t_connected]
        self.socks = {}
        self.closed = {"idle": [], "slowloris": []}
        self.refused = 0

    def open(self, kind, index):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        base = 0 if kind == "idle" else self.idle
        try:
            s.bind((source_addr(self.net, base + index, self.per_addr), 0))
        except OSError:
            s.close()
            raise
        try:
            s.connect((self.host, self.port))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            self.refused += 1
            return
        now = time.monotonic()
        self.socks[s.fileno()] = [s, kind, index, now, 0.0, 0, False, 0.0]
        self.sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def start(self):
        for i in range(self.idle):
            self.open("idle", i)
        for i in range(self.slow):
            self.open("slowloris", i)

    def close_all(self):
        for fd, st in list(self.socks.items()):
            self.sel.unregister(st[0])
            st[0].close()
        self.socks.clear()

    def lost(self, fd, now):
        st = self.socks.pop(fd)
        s, kind, index, t_open, t_first = st[:5]
        self.sel.unregister(s)
        s.close()
        if st[6]:
            ref = t_first if kind == "slowloris" and t_first else t_open
            self.closed[kind].append(now - ref)
        else:
            self.refused += 1
        self.open(kind, index)

    def step(self, timeout):
        now = time.monotonic()
        for key, ev in self.sel.select(timeout):
            fd = key.fd
            st = self.socks.get(fd)
            if st is None:
                continue
            s = st[0]
            if ev & selectors.EVENT_WRITE and not st[6]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err != 0:
                    self.lost(fd, now)
                    continue
                st[6], st[7] = True, now
                self.sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(4096)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    self.lost(fd, now)
        # Slowloris: the request line at once, then a header byte a second.
        for fd, st in list(self.socks.items()):
            if st[1] != "slowloris" or not st[6]:
                continue
            due = st[4] + st[5] if st[4] else 0
            if st[4] and now < due:
                continue
            chunk = b"GET / HTTP/1.1\r\nHost: x\r\n" if not st[4] else b"X"
            try:
                st[0].send(chunk)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                self.lost(fd, now)
                continue
            if not st[4]:
                st[4] = now
            st[5] += 1


def timed_request(host, port, method, path, body, timeout, auth=None, source=None):
    t0 = time.monotonic()
    head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nAccept-Encoding: gzip\r\nConnection: close\r\n" % (
        method, path, host, port)
    if auth:
        head += "Authorization: %s\r\n" % auth
    if body is not None:
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    data = head.encode() + b"\r\n" + (body or b"")
    try:
        with socket.create_connection((host, port), timeout=timeout,
                                      source_address=(source, 0) if source else None) as s:
            s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
            s.sendall(data)
            resp = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                resp += chunk
                s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
        ok = resp.startswith(b"HTTP/1.1 2") or resp.startswith(b"HTTP/1.0 2")
    except OSError:
        ok = False
    return ok, (time.monotonic() - t0) * 1000.0


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--idle", type=int, default=0)
    ap.add_argument("--slowloris", type=int, default=0)
    ap.add_argument("--per-addr", type=int, default=50)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds before timing starts")
    ap.add_argument("--path", default="/metrics")
    ap.add_argument("--post", default=None, help="POST the body to this path instead of GET --path")
    ap.add_argument("--body", default=None)
    ap.add_argument("--rate", type=float, default=20.0, help="normal requests per second")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=0.5,
                    help="a socket connected less than this before the end is not counted as held")
    ap.add_argument("--source", default="127.3", help="first two octets of attack sources")
    ap.add_argument("--auth", default=None, help="Authorization of the normal requests")
    ap.add_argument("--wrong-auth", default=None, help="Authorization of the attack's logins")
    ap.add_argument("--wrong-rate", type=float, default=0.0, help="wrong logins per second")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    port = int(port)
    body = open(a.body, "rb").read() if a.body else None
    method, path = ("POST", a.post) if a.post else ("GET", a.path)

    atk = Attack(host, port, a.idle, a.slowloris, a.per_addr, a.source)
    atk.start()
    stop = threading.Event()
    lat, failed = [], [0]
    t_start = time.monotonic()

    def prober():
        while not stop.is_set() and time.monotonic() - t_start < a.warmup:
            time.sleep(0.05)
        nxt = time.monotonic()
        while not stop.is_set():
            ok, ms = timed_request(host, port, method, path, body, a.timeout, a.auth)
            lat.append(ms)
            if not ok:
                failed[0] += 1
            nxt += 1.0 / a.rate
            time.sleep(max(0.0, nxt - time.monotonic()))

    wrong = {"sent": 0}
    wrong_lock = threading.Lock()

    def wrong_logins(k, workers):
        # Each worker paces its share; a slow answer only delays its own next
        # attempt, so the attempt rate holds while there are free workers.
        nxt = time.monotonic()
        src = source_addr(a.source, k, 1)
        while not stop.is_set():
            ok, ms = timed_request(host, port, "GET", a.path, None, a.timeout, a.wrong_auth, src)
            with wrong_lock:
                wrong["sent"] += 1
            nxt += workers / a.wrong_rate
            time.sleep(max(0.0, nxt - time.monotonic()))

    wthreads = []
    if a.wrong_rate > 0:
        n = min(64, max(1, int(a.wrong_rate // 4)))
        for k in range(n):
            wthreads.append(threading.Thread(target=wrong_logins, args=(k, n), daemon=True))
            wthreads[-1].start()
    th = threading.Thread(target=prober, daemon=True)
    th.start()
    while time.monotonic() - t_start < a.duration:
        atk.step(0.05)
    # Held: open at the end and connected at least --settle seconds before.
    # A socket the server is about to close (one over a limit, accepted by
    # the kernel an instant before the end) is not held: the server closes
    # those within milliseconds of the accept (closed_*_max_s says how fast).
    held = {"idle": 0, "slowloris": 0}
    t_end = time.monotonic()
    for st in atk.socks.values():
        if st[6] and t_end - st[7] >= a.settle:
            held[st[1]] += 1
    stop.set()
    th.join(a.timeout + 1)
    for w in wthreads:
        w.join(a.timeout + 1)
    atk.close_all()
    # The load has stopped: the next request must be served at once.
    ok_after, ms_after = timed_request(host, port, method, path, body, a.timeout, a.auth)
    out = {
        "requests": len(lat),
        "failed": failed[0],
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat) if lat else None,
        "held_idle": held["idle"],
        "held_slowloris": held["slowloris"],
        "refused": atk.refused,
        "after_ok": ok_after,
        "after_ms": ms_after,
        "wrong_logins": wrong["sent"],
    }
    for kind in ("idle", "slowloris"):
        c = atk.closed[kind]
        out["closed_" + kind] = len(c)
        out["closed_%s_min_s" % kind] = min(c) if c else None
        out["closed_%s_max_s" % kind] = max(c) if c else None
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
