#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""scenario_wait.py - the waits and the table of the scenario suite
(tests/lib/scenario.sh).

    scenario_wait.py --dir T --status firing|resolved --seconds S ID...
    scenario_wait.py --dir T --table

T holds expect.tsv (ID, fault, alert, labels k=v,..., target, zh words
|-separated), times.tsv (ID, injected|removed, epoch seconds), diag.tsv
(ID, wanted verdict, verdict, cause), raw/requests.jsonl (Alertmanager's
webhook as it came) and dt/requests.jsonl (the relay's DingTalk requests).

firing: every ID's alert arrives at the raw webhook with its labels, and a
DingTalk block "**ALERT** 告警" after the injection names the target and
every zh word, with a Chinese summary (the English summary annotation must
not appear); no other alert pages for the same target (one fault, one
page). resolved: the raw webhook has the alert resolved with its labels,
and a DingTalk block "**ALERT** 已恢复" for the target after the removal,
without the firing summary.
The seconds from injection (removal) to the DingTalk request are kept in
results.json for the table.
"""
import argparse
import json
import os
import re
import sys
import time

CJK = re.compile(r"[\u4e00-\u9fff]")


def read_tsv(path, n):
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                rows.append(parts + [""] * (n - len(parts)))
    except OSError:
        pass
    return rows


def read_jsonl(path):
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def expectations(d):
    exp = {}
    for i, fault, alert, labels, target, words in read_tsv(os.path.join(d, "expect.tsv"), 6):
        lab = dict(kv.split("=", 1) for kv in labels.split(",") if kv)
        exp[i] = {"fault": fault, "alert": alert, "labels": lab, "target": target,
                  "words": [w for w in words.split("|") if w]}
    return exp


def times(d):
    t = {}
    for i, what, when in read_tsv(os.path.join(d, "times.tsv"), 3):
        t.setdefault(i, {})[what] = float(when)
    return t


def blocks(dt):
    """(time, alertname, status word, block text) of every DingTalk alert block."""
    out = []
    for r in dt:
        try:
            text = json.loads(r["body"])["markdown"]["text"]
        except (ValueError, KeyError, TypeError):
            continue
        for b in re.split(r"\n(?=\*\*)", text):
            m = re.match(r"\*\*(\w+)\*\* (\S+)", b)
            if m:
                out.append((r["t"], m.group(1), m.group(2), b))
    return out


def raw_alerts(raw):
    for r in raw:
        try:
            body = json.loads(r["body"])
        except (ValueError, KeyError, TypeError):
            continue
        for a in body.get("alerts", []):
            yield r["t"], a


def block_target(b):
    m = re.search(r"^- 目标: (.*)$", b, re.M)
    return m.group(1) if m else ""


def check(d, status, ids, final):
    exp, tm = expectations(d), times(d)
    raw = list(raw_alerts(read_jsonl(os.path.join(d, "raw", "requests.jsonl"))))
    bl = blocks(read_jsonl(os.path.join(d, "dt", "requests.jsonl")))
    word = "告警" if status == "firing" else "已恢复"
    res, problems = {}, []
    for i in ids:
        e = exp[i]
        since = tm.get(i, {}).get("injected" if status == "firing" else "removed", 0)
        ra = [a for t, a in raw if t >= since and a["status"] == status and
              a["labels"].get("alertname") == e["alert"] and
              all(a["labels"].get(k) == v for k, v in e["labels"].items())]
        if not ra:
            problems.append("%s: no %s %s{%s} at the webhook" % (i, status, e["alert"], ",".join(
                "%s=%s" % kv for kv in e["labels"].items())))
            continue
        english = ra[0].get("annotations", {}).get("summary", "")
        hit = None
        for t, name, st, b in bl:
            if t < since or name != e["alert"] or st != word:
                continue
            if e["target"] and block_target(b) != e["target"]:
                continue
            if status == "firing" and not all(w in b for w in e["words"]):
                continue
            hit = (t, b)
            break
        if hit is None:
            problems.append("%s: no DingTalk \"**%s** %s\" naming %s and %s" % (
                i, e["alert"], word, e["target"] or "(no target)", " ".join(e["words"])))
            continue
        t, b = hit
        if status == "firing":
            s = re.search(r"^- 摘要: (.*)$", b, re.M)
            if s is None or not CJK.search(s.group(1)):
                problems.append("%s: the DingTalk summary is not Chinese: %s" % (i, b))
            if english and english in b:
                problems.append("%s: the English summary is in the zh text: %s" % (i, b))
            sev = re.search(r"^- 级别: (.*)$", b, re.M)
            if sev is not None and not CJK.search(sev.group(1)):
                problems.append("%s: the severity is not Chinese: %s" % (i, sev.group(0)))
        if status == "resolved" and "摘要" in b:
            problems.append("%s: the resolved text repeats the firing summary: %s" % (i, b))
        res[i] = {"seconds": t - since, "labels": ra[0]["labels"], "text": b}
    if status == "firing":
        # One fault, one page: no other alert pages for a fault's target.
        want = {}
        for i in ids:
            if exp[i]["target"]:
                want.setdefault(exp[i]["target"], set()).add(exp[i]["alert"])
        start = min((tm.get(i, {}).get("injected", 0) for i in ids), default=0)
        for t, name, st, b in bl:
            tg = block_target(b)
            if t >= start and st == word and tg in want and name not in want[tg]:
                problems.append("extra page for %s: %s" % (tg, b.splitlines()[0]))
    if final:
        for p in sorted(set(problems)):
            print("FAIL: " + p)
    return res, problems


def save(d, status, res):
    path = os.path.join(d, "results.json")
    try:
        with open(path) as f:
            all_ = json.load(f)
    except (OSError, ValueError):
        all_ = {}
    for i, r in res.items():
        all_.setdefault(i, {})[status] = r
    with open(path, "w") as f:
        json.dump(all_, f, ensure_ascii=False, indent=1)


def table(d):
    exp = expectations(d)
    try:
        with open(os.path.join(d, "results.json")) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = {}
    diag = {r[0]: r for r in read_tsv(os.path.join(d, "diag.tsv"), 4)}
    print("| fault | `connwatch diagnose` | alert and labels | injection → DingTalk | removal → resolved |")
    print("|---|---|---|---|---|")
    for i, e in exp.items():
        dg = diag.get(i)
        verdict = ("%s: %s" % (dg[2], dg[3])).rstrip(": ") if dg else "—"
        if dg and dg[1] == "-":
            verdict += " (not judged: no figure of diagnose shows it)"
        r = res.get(i, {})
        lab = r.get("firing", {}).get("labels", {})
        shown = ", ".join("%s=%s" % (k, lab[k]) for k in ("layer", "reason", "severity") if k in lab)
        f = r.get("firing", {}).get("seconds")
        s = r.get("resolved", {}).get("seconds")
        print("| %s | %s | %s{%s} | %s | %s |" % (
            e["fault"], verdict, e["alert"], shown,
            "%.1f s" % f if f is not None else "—", "%.1f s" % s if s is not None else "—"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--status", choices=["firing", "resolved"])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--table", action="store_true")
    ap.add_argument("ids", nargs="*")
    a = ap.parse_args()
    if a.table:
        table(a.dir)
        return 0
    deadline = time.time() + a.seconds
    while True:
        final = time.time() > deadline
        res, problems = check(a.dir, a.status, a.ids, final)
        if not problems or final:
            break
        time.sleep(0.3)
    save(a.dir, a.status, res)
    for i, r in sorted(res.items()):
        print("# %s %s after %.1f s: %s" % (i, a.status, r["seconds"], json.dumps(r["labels"], sort_keys=True)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
