#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""check_rules.py - the house rules of alerts/rules/connwatch.rules.yml,
beyond what promtool checks (a lint test):

- every alert has labels severity (warning|critical) and layer (a known one),
  and annotations summary, description, runbook_step (English),
  summary_zh, description_zh, runbook_step_zh (Chinese: CJK text, and the
  zh summary names the layer as operators say it) and runbook_url;
- every alert on per-check series (selecting connwatch_check_success or a
  kind's series with service/target) takes `reason` from
  connwatch_check_failure_info (group_left (reason));
- every runbook_url points to a section that exists in alerts/RUNBOOK.md;
- every alert is expected to fire in some promtool test case, and expected
  silent in another (alerts/rules/tests/*.test.yml);
- no rate()/irate()/increase() of a gauge (names not ending in _total/_count/
  _sum/_bucket), no deriv() of a counter.
"""
import glob
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
LAYERS = {"network", "tls", "http", "database", "cache", "host", "connwatch"}
LAYER_ZH = {"network": "网络层", "tls": "TLS 层", "http": "应用层 (HTTP)", "database": "数据库层",
            "cache": "缓存层", "host": "主机", "connwatch": "监控自身"}
CJK = re.compile(r"[\u4e00-\u9fff]")
# Alerts without a target (host-wide, or about connwatch itself), and
# ConnwatchCertExpired, whose own series is the failure_info (it keeps reason).
NO_TARGET = re.compile(r"^Connwatch(Host(?!CheckFailing)|TcpRetransmits|Exporter|CheckKindFailingEverywhere|"
                       r"ConfigReload|RelayQueue|CertExpired$)")


def anchor(heading):
    """GitHub's anchor of a markdown heading."""
    a = heading.strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


def main():
    errors = []
    with open(os.path.join(ROOT, "RUNBOOK.md"), encoding="utf-8") as f:
        anchors = {anchor(m.group(1)) for m in re.finditer(r"^#+ (.*)$", f.read(), re.M)}
    with open(os.path.join(ROOT, "rules", "connwatch.rules.yml"), encoding="utf-8") as f:
        groups = yaml.safe_load(f)["groups"]
    alerts = set()
    for g in groups:
        for r in g["rules"]:
            name = r.get("alert")
            if name is None:
                continue
            alerts.add(name)
            where = "%s (%s)" % (name, g["name"])
            lab, ann = r.get("labels", {}), r.get("annotations", {})
            if lab.get("severity") not in ("warning", "critical"):
                errors.append("%s: severity %r" % (where, lab.get("severity")))
            if lab.get("layer") not in LAYERS:
                errors.append("%s: layer %r" % (where, lab.get("layer")))
            for a in ("summary", "description", "runbook_step", "summary_zh", "description_zh",
                      "runbook_step_zh", "runbook_url"):
                if not ann.get(a):
                    errors.append("%s: no %s annotation" % (where, a))
            for a in ("summary_zh", "description_zh", "runbook_step_zh"):
                if ann.get(a) and not CJK.search(ann[a]):
                    errors.append("%s: %s is not Chinese" % (where, a))
            zh = LAYER_ZH.get(lab.get("layer"))
            if zh and not ann.get("summary_zh", "").startswith(zh + "："):
                errors.append("%s: summary_zh does not start with %s：" % (where, zh))
            if not NO_TARGET.match(name) and "group_left (reason)" not in r["expr"]:
                errors.append("%s: no reason from connwatch_check_failure_info (group_left (reason))" % where)
            url = ann.get("runbook_url", "")
            if "#" not in url or url.split("#", 1)[1] not in anchors:
                errors.append("%s: runbook_url %s names no section of RUNBOOK.md" % (where, url))
            expr = r["expr"]
            for fn, arg in re.findall(r"\b(rate|irate|increase|deriv)\(\s*([a-zA-Z_:][\w:]*)", expr):
                counter = re.search(r"_(total|count|sum|bucket)$", arg) is not None
                if fn == "deriv" and counter:
                    errors.append("%s: deriv() of the counter %s" % (where, arg))
                if fn != "deriv" and not counter:
                    errors.append("%s: %s() of the gauge %s" % (where, fn, arg))
    fires, silent = set(), set()
    for path in glob.glob(os.path.join(HERE, "*.test.yml")):
        with open(path, encoding="utf-8") as f:
            for t in yaml.safe_load(f)["tests"]:
                for e in t.get("alert_rule_test", []):
                    (fires if e.get("exp_alerts") else silent).add(e["alertname"])
    for a in sorted(alerts - fires):
        errors.append("%s: no test expects it to fire" % a)
    for a in sorted(alerts - silent):
        errors.append("%s: no test expects it to stay silent" % a)
    for e in errors:
        print("check_rules: " + e, file=sys.stderr)
    print("check_rules: %d alerts, %d problems" % (len(alerts), len(errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
