#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Drive blackbox_exporter as Prometheus would: ask /probe?module=M&target=T
for each target of a file in turn, paced evenly at RATE probes a second, over
keep-alive connections (THREADS of them), for SECONDS. Prints
"failed probes: N" and "succeeded probes: N" at the end.

    probe_driver.py PORT MODULE RATE TARGETS_FILE SECONDS [PREFIX] [THREADS]

PREFIX is put before every target ("127.0.0.1:" for a file of ports)."""
import http.client
import sys
import threading
import time
import urllib.parse

port, module, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
targets_file, seconds = sys.argv[4], float(sys.argv[5])
prefix = sys.argv[6] if len(sys.argv) > 6 else ""
nthreads = int(sys.argv[7]) if len(sys.argv) > 7 else 16
targets = [prefix + l.strip() for l in open(targets_file) if l.strip()]
lock = threading.Lock()
slot, ok, failed = [0], [0], [0]
t0 = time.monotonic()


def worker():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while True:
        with lock:
            i = slot[0]
            slot[0] += 1
        at = t0 + i / rate
        if at - t0 > seconds:
            return
        d = at - time.monotonic()
        if d > 0:
            time.sleep(d)
        q = urllib.parse.urlencode({"module": module, "target": targets[i % len(targets)]})
        c.request("GET", "/probe?" + q)
        good = b"\nprobe_success 1" in c.getresponse().read()
        with lock:
            (ok if good else failed)[0] += 1


threads = [threading.Thread(target=worker) for _ in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("failed probes: %d" % failed[0])
print("succeeded probes: %d" % ok[0])
