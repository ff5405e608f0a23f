#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""relay_recorder.py - a loopback stand-in for the DingTalk robot API, the
Aliyun SMS API or a plain webhook, for connwatch-relay's integration tests.

    relay_recorder.py --dir DIR --kind dingtalk|sms|webhook [--port P]

Binds 127.0.0.1:P (0 = any; the port is written to DIR/port), records every
request as one JSON line in DIR/requests.jsonl (time, method, path, query,
body, how it was answered) and answers according to the first word of
DIR/mode, read at each request:
  ok      success in the API's own shape (errcode 0 / Code OK / 204)
  500     HTTP 500
  130101  DingTalk's rate-limit answer (HTTP 200, errcode 130101)
  310000  DingTalk's signature failure (HTTP 200, errcode 310000)
  slow    sleeps 30 s before answering (timeouts)
  reject WORD  HTTP 400 (a rejection no retry can fix) to requests whose body
          or decoded query contains WORD, success to the others
"""
import argparse
import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--kind", required=True, choices=["dingtalk", "sms", "webhook"])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    log_path = os.path.join(args.dir, "requests.jsonl")
    mode_path = os.path.join(args.dir, "mode")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n).decode("utf-8", "surrogateescape") if n else ""
            u = urllib.parse.urlsplit(self.path)
            try:
                with open(mode_path) as f:
                    words = f.read().split() or ["ok"]
            except OSError:
                words = ["ok"]
            mode = words[0]
            if mode == "reject":
                word = words[1] if len(words) > 1 else ""
                hit = word in body or word in urllib.parse.unquote(u.query)
                mode = "400" if hit else "ok"
            if mode == "slow":
                time.sleep(30)
            rec = {"t": time.time(), "method": self.command, "path": u.path, "query": u.query,
                   "body": body, "mode": mode,
                   "content_type": self.headers.get("Content-Type", "")}
            with lock:
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            status, out = 200, b""
            if mode == "500":
                status, out = 500, b"internal error"
            elif mode == "400":
                status, out = 400, b'{"errcode":400,"Code":"isv.INVALID_PARAMETERS"}'
            elif args.kind == "dingtalk":
                if mode == "130101":
                    out = b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}'
                elif mode == "310000":
                    out = b'{"errcode":310000,"errmsg":"sign not match"}'
                else:
                    out = b'{"errcode":0,"errmsg":"ok"}'
            elif args.kind == "sms":
                out = b'{"Code":"OK","Message":"OK","BizId":"1","RequestId":"r"}'
            else:
                status = 204 if mode == "ok" else status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            if out:
                self.wfile.write(out)

        do_GET = handle_any
        do_POST = handle_any

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    tmp = os.path.join(args.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(args.dir, "port"))
    srv.serve_forever()


if __name__ == "__main__":
    main()
