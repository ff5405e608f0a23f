#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""gen_tests.py - writes the `promtool test rules` files next to it.

    python3 alerts/rules/tests/gen_tests.py      # rewrites alerts/rules/tests/*.test.yml

The scenarios below are written by hand, one block per alert: the input
series, and when each alert must (not) be firing. Thresholds, `for` and
`keep_firing_for` durations are spelled out here independently of the rule
file, so a changed threshold fails the tests until this file agrees. Only the
boilerplate is generated: promtool compares annotations exactly, so the
expected annotations are rendered from the rule file's templates (a small
renderer for the template functions the rules use; promtool proves it right).

For every alert the scenarios cover: it fires exactly when its `for` has
elapsed above the threshold (and not one evaluation earlier); a value at or
just below the threshold never fires; an excursion shorter than `for` never
fires; after the signal returns it stays firing for `keep_firing_for` and
then resolves. Per-check alerts also carry the failing check's `reason`
(and none while it succeeds); an http check failing for a network reason
pages as the network layer only, a certificate reason as TLS only; and an
inhibiting alert resolves at the same evaluation as the alert it inhibits.
"""
import math
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULE_FILE = os.path.join(HERE, "..", "connwatch.rules.yml")
STEP = 15  # scrape and evaluation interval of every test, seconds

with open(RULE_FILE, encoding="utf-8") as f:
    RULES = {}
    for g in yaml.safe_load(f)["groups"]:
        for r in g["rules"]:
            RULES[(r["alert"], r["labels"]["severity"])] = r

# ---------------------------------------------------------------------------
# Go text/template rendering, limited to what the rules use.


def go_g(v, prec):
    """Go's %.<prec>g."""
    s = "%.*g" % (prec, v)
    return s


def go_value(v):
    """fmt.Sprint(float64): strconv 'g', shortest."""
    if v == int(v) and abs(v) < 1e21:
        if abs(v) >= 1e6:
            return "%g" % v  # 1e+06, like Go's shortest %g
        return str(int(v))
    return repr(v)


def humanize_duration(v):
    if math.isnan(v) or math.isinf(v):
        return go_g(v, 4)
    if v == 0:
        return go_g(v, 4) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        d = int(v)
        sec, mins, hours, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return "%s%dd %dh %dm %ds" % (sign, days, hours, mins, sec)
        if hours:
            return "%s%dh %dm %ds" % (sign, hours, mins, sec)
        if mins:
            return "%s%dm %ds" % (sign, mins, sec)
        return "%s%ss" % (sign, go_g(v, 4))
    prefix = ""
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"]:
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return "%s%ss" % (go_g(v, 4), prefix)


def humanize(v):
    """Prometheus' humanize: SI prefixes, 4 significant digits."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return go_g(v, 4)
    prefix = ""
    if abs(v) >= 1:
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"]:
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return go_g(v, 4) + prefix
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"]:
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return go_g(v, 4) + prefix


def humanize_percentage(v):
    return go_g(v * 100, 4) + "%"


def humanize1024(v):
    if abs(v) <= 1:
        return go_g(v, 4)
    prefix = ""
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]:
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return go_g(v, 4) + prefix


FUNCS = {
    "humanize": humanize,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
    "humanize1024": humanize1024,
}


def render(tmpl, labels, value):
    def one(m):
        expr = m.group(1).strip()
        parts = [p.strip() for p in expr.split("|")]
        head = parts[0]
        if head == "$value":
            out = value
        elif head.startswith("$labels."):
            out = labels[head[len("$labels."):]]
        else:
            raise SystemExit("gen_tests: cannot render {{ %s }}" % expr)
        for p in parts[1:]:
            if p.startswith("printf "):
                fmt = yaml.safe_load(p[len("printf "):])
                out = fmt % out
            elif p in FUNCS:
                out = FUNCS[p](out)
            else:
                raise SystemExit("gen_tests: unknown template function %s" % p)
        if isinstance(out, float):
            out = go_value(out)
        return out

    return re.sub(r"{{(.*?)}}", one, tmpl)


def alert(name, severity, labels, value):
    """One expected alert: the rule's labels plus 'labels'; annotations
    rendered with 'value' (the expression's value at the evaluation)."""
    rule = RULES[(name, severity)]
    all_labels = dict(labels)
    all_labels.update(rule["labels"])
    ann = {k: render(v, all_labels, float(value)) for k, v in rule["annotations"].items()}
    return {"exp_labels": all_labels, "exp_annotations": ann}


# ---------------------------------------------------------------------------
# Series notation helpers (promtool: "a+bxN" is N+1 samples a, a+b, ...).


def const(v, n):
    """n samples of v."""
    return "%s" % v if n == 1 else "%sx%d" % (v, n - 1)


def ramp(start, step, n):
    """n samples start, start+step, ..."""
    sign = "+" if step >= 0 else "-"
    return "%s%s%sx%d" % (start, sign, abs(step), n - 1)


def sel(name, labels):
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(labels.items())))


def dur(s):
    return "%ds" % s


def at(t, name, *alerts):
    return {"eval_time": dur(t), "alertname": name, "exp_alerts": list(alerts)}


CHECK = {"service": "shop", "target": "10.0.0.5", "instance": "cw:19367", "job": "connwatch"}
HOST = {"instance": "cw:19367", "job": "connwatch"}


def tgt(target, **extra):
    d = dict(CHECK)
    d["target"] = target
    d.update(extra)
    return d


def gauge_rule(name, severity, metric, hi, at_v, lo, for_s, kff_s, labels=None, value=None):
    """The standard scenarios of an alert on 'metric' crossing a threshold:
    'hi' for `for` + 2 min then 'lo' (fires exactly after for_s, holds for
    kff_s, resolves); 'at_v' (None: no such case) and 'lo' for 10 min (never
    fires); 'hi' for one evaluation less than `for` (never fires). 'value' is
    the expression's value while firing (default 'hi')."""
    labels = labels if labels is not None else CHECK
    value = hi if value is None else value
    fired = [alert(name, severity, labels, value)]
    hold = for_s // STEP + 8  # samples above: for + 2 min
    t_last = (hold - 1) * STEP
    tests = []
    evals = [at(for_s - STEP, name), at(for_s, name, *fired), at(t_last, name, *fired)]
    if kff_s:
        evals.append(at(t_last + kff_s, name, *fired))
    evals.append(at(t_last + kff_s + STEP, name))
    tests.append({
        "name": "%s %s: fires after %ds above, resolves %ds after it drops" % (name, severity, for_s, kff_s),
        "interval": dur(STEP),
        "input_series": [{"series": sel(metric, labels), "values": const(hi, hold) + " " + const(lo, 60)}],
        "alert_rule_test": evals,
    })
    n_long = (for_s + 600) // STEP
    series = []
    if at_v is not None:
        series.append({"series": sel(metric, dict(labels, target="at-threshold") if "target" in labels
                                      else dict(labels, instance="at-threshold")),
                       "values": const(at_v, n_long)})
    series.append({"series": sel(metric, labels), "values": const(lo, n_long)})
    tests.append({
        "name": "%s %s: at and just below the threshold never fires" % (name, severity),
        "interval": dur(STEP),
        "input_series": series,
        "alert_rule_test": [at(for_s, name), at(for_s + 300, name), at(n_long * STEP - STEP, name)],
    })
    short = for_s // STEP  # samples 0 .. for-STEP: one evaluation short
    tests.append({
        "name": "%s %s: %ds above then back is too short" % (name, severity, for_s - STEP),
        "interval": dur(STEP),
        "input_series": [{"series": sel(metric, labels), "values": const(hi, short) + " " + const(lo, 60)}],
        "alert_rule_test": [at(for_s - STEP, name), at(for_s, name), at(for_s + 300, name)],
    })
    return tests


FI = "connwatch_check_failure_info"
SUCCESS = "connwatch_check_success"


def reason_join(name, severity, metric, hi, kind, for_s, value=None, reason="timeout", other_kind="dns"):
    """An alert on a kind's own series ('metric' above its threshold, no
    `check` label): while the 'kind' check of the target fails, the alert
    carries its reason; a failing check of another kind on the same target
    lends it none."""
    value = hi if value is None else value
    fail, other = tgt("failing"), tgt("other-kind")
    n = for_s // STEP + 4
    return [{
        "name": "%s %s: while the %s check fails it carries reason=%s; a failing %s check of the "
                "target lends no reason" % (name, severity, kind, reason, other_kind),
        "interval": dur(STEP),
        "input_series": [{"series": sel(metric, fail), "values": const(hi, n)},
                         {"series": sel(metric, other), "values": const(hi, n)},
                         {"series": sel(FI, dict(fail, check=kind, reason=reason)), "values": const(1, n)},
                         {"series": sel(FI, dict(other, check=other_kind, reason=reason)), "values": const(1, n)}],
        "alert_rule_test": [at(for_s - STEP, name),
                            at(for_s, name, alert(name, severity, dict(fail, reason=reason), value),
                               alert(name, severity, other, value))],
    }]


def reason_join_check(name, severity, kind, for_s, reason="refused", base=None):
    """An alert on connwatch_check_success of 'kind': a failing check with a
    failure_info series carries its reason; one without (never seen from
    connwatch, but the rule must not lose the alert) fires without."""
    base = CHECK if base is None else base
    fail = dict(base, check=kind)
    other = dict(fail, target="no-info") if "target" in base else dict(fail, instance="no-info")
    n = for_s // STEP + 4
    return [{
        "name": "%s: a failing %s check carries reason=%s from connwatch_check_failure_info" % (name, kind, reason),
        "interval": dur(STEP),
        "input_series": [{"series": sel(SUCCESS, fail), "values": const(0, n)},
                         {"series": sel(SUCCESS, other), "values": const(0, n)},
                         {"series": sel(FI, dict(fail, reason=reason)), "values": const(1, n)}],
        "alert_rule_test": [at(for_s - STEP, name),
                            at(for_s, name, alert(name, severity, dict(fail, reason=reason), 0),
                               alert(name, severity, other, 0))],
    }]


# ---------------------------------------------------------------------------
# The scenarios, by layer.


def network():
    t = []
    t += gauge_rule("ConnwatchIcmpLatencyHigh", "warning", "connwatch_icmp_rtt_avg_seconds",
                    0.201, 0.2, 0.19, 30, 60)
    t += gauge_rule("ConnwatchIcmpPacketLoss", "warning", "connwatch_icmp_loss_ratio",
                    0.051, 0.05, 0.04, 60, 120)
    t += gauge_rule("ConnwatchIcmpJitterHigh", "warning", "connwatch_icmp_jitter_seconds",
                    0.201, 0.2, 0.15, 60, 60)
    # Hovering at the threshold: 6 % and 4 % alternating every minute keeps
    # the loss alert firing instead of resolving and firing again.
    hover = " ".join([const(0.06, 4), const(0.04, 4)] * 6)
    t.append({
        "name": "ConnwatchIcmpPacketLoss: a value hovering around 5 % keeps one alert firing",
        "interval": dur(STEP),
        "input_series": [{"series": sel("connwatch_icmp_loss_ratio", CHECK),
                          "values": const(0.06, 8) + " " + hover}],
        "alert_rule_test": [at(t_, "ConnwatchIcmpPacketLoss",
                               alert("ConnwatchIcmpPacketLoss", "warning", CHECK, 0.06))
                            for t_ in range(60, 8 * 60 + 1, 30)],
    })

    # Retransmits: counters. 6 retransmitted per 100 sent (6 %) from t=0;
    # the rate needs two samples, so the condition holds from 15 s and the
    # alert fires at 15 s + 5 min.
    name = "ConnwatchTcpRetransmitsHigh"
    sent, retr = "connwatch_host_tcp_segments_sent_total", "connwatch_host_tcp_segments_retransmitted_total"
    a = alert(name, "warning", HOST, 0.06)
    t.append({
        "name": name + ": 6 % for 5 min fires, resolves 5 min after the window is clean",
        "interval": dur(STEP),
        "input_series": [
            {"series": sel(sent, HOST), "values": ramp(1000, 100, 41) + " " + ramp(5100, 100, 80)},
            {"series": sel(retr, HOST), "values": ramp(10, 6, 41) + " " + const(250, 80)},
        ],
        # Retransmissions stop after 600 s; the 5 min ratio drops below 5 %
        # within the window, then keep_firing_for holds it 5 min.
        "alert_rule_test": [at(300, name), at(315, name, a), at(600, name, a),
                            at(600 + 300 + 300 + STEP, name)],
    })
    t.append({
        "name": name + ": 4.9 % forever, an idle host (nothing sent) and 4 min of 6 % never fire",
        "interval": dur(STEP),
        "input_series": [
            {"series": sel(sent, HOST), "values": ramp(1000, 1000, 80)},
            {"series": sel(retr, HOST), "values": ramp(0, 49, 80)},
            {"series": sel(sent, dict(HOST, instance="idle")), "values": const(1000, 80)},
            {"series": sel(retr, dict(HOST, instance="idle")), "values": const(7, 80)},
            {"series": sel(sent, dict(HOST, instance="short")), "values": ramp(0, 100, 80)},
            {"series": sel(retr, dict(HOST, instance="short")), "values": ramp(0, 6, 17) + " " + const(96, 63)},
        ],
        "alert_rule_test": [at(315, name), at(600, name), at(1185, name)],
    })

    name = "ConnwatchNetworkCheckFailing"
    t += gauge_rule(name, "critical", "connwatch_check_success", 0, None, 1, 60, 60,
                    labels=dict(CHECK, check="tcp"), value=0)
    for kind in ["icmp", "dns"]:
        lab = dict(CHECK, check=kind)
        t.append({
            "name": "%s: a failing %s check fires after 1 min" % (name, kind),
            "interval": dur(STEP),
            "input_series": [{"series": sel("connwatch_check_success", lab), "values": const(0, 10)}],
            "alert_rule_test": [at(45, name), at(60, name, alert(name, "critical", lab, 0))],
        })
    t.append({
        "name": name + ": failing checks of other layers are not network failures",
        "interval": dur(STEP),
        "input_series": [{"series": sel("connwatch_check_success", dict(CHECK, check=k)), "values": const(0, 20)}
                         for k in ["http", "mysql", "redis", "host"]],
        "alert_rule_test": [at(120, name)],
    })
    t += reason_join_check(name, "critical", "tcp", 60, reason="refused")
    t += reason_join_check(name, "critical", "dns", 60, reason="dns")
    t += gauge_rule("ConnwatchTcpRttHigh", "warning", "connwatch_tcp_rtt_seconds", 0.201, 0.2, 0.19, 60, 60)
    t += reason_join("ConnwatchIcmpLatencyHigh", "warning", "connwatch_icmp_rtt_avg_seconds", 0.3, "icmp", 30)
    t += reason_join("ConnwatchIcmpPacketLoss", "warning", "connwatch_icmp_loss_ratio", 0.5, "icmp", 60,
                     reason="unreachable", other_kind="tcp")
    t += reason_join("ConnwatchIcmpJitterHigh", "warning", "connwatch_icmp_jitter_seconds", 0.3, "icmp", 60)
    t += reason_join("ConnwatchTcpRttHigh", "warning", "connwatch_tcp_rtt_seconds", 0.3, "tcp", 60,
                     other_kind="icmp")
    return t


def host():
    t = []
    name = "ConnwatchHostTcpConnectionsHigh"
    conn = "connwatch_host_tcp_connections"

    def states(est, tw, listen, n, inst="cw:19367"):
        h = dict(HOST, instance=inst)
        return [{"series": sel(conn, dict(h, state="established")), "values": est(n)},
                {"series": sel(conn, dict(h, state="time_wait")), "values": const(tw, n)},
                {"series": sel(conn, dict(h, state="listen")), "values": const(listen, n)}]

    a = alert(name, "warning", HOST, 5001)
    t.append({
        "name": name + ": 5001 connections (listen not counted) fire after 5 min, resolve 5 min after",
        "interval": dur(STEP),
        "input_series": states(lambda n: const(4000, 28) + " " + const(10, n - 28), 1001, 10000, 80),
        "alert_rule_test": [at(285, name), at(300, name, a), at(405, name, a),
                            at(405 + 300, name, a), at(405 + 300 + STEP, name)],
    })
    t.append({
        "name": name + ": exactly 5000 connections and 9999 listeners never fire; 4:45 of 5001 neither",
        "interval": dur(STEP),
        "input_series": states(lambda n: const(4000, n), 1000, 9999, 80)
        + states(lambda n: const(4000, 20) + " " + const(3000, n - 20), 1001, 0, 80, inst="short"),
        "alert_rule_test": [at(300, name), at(600, name), at(1185, name)],
    })
    t += gauge_rule("ConnwatchHostCpuHigh", "warning", "connwatch_host_cpu_usage_ratio",
                    0.86, 0.85, 0.84, 300, 300, labels=HOST)
    # Critical: at 91 % both severities fire (the warning is inhibited in
    # Alertmanager); at 90 % and 89 % only the warning.
    name, cpu = "ConnwatchHostCpuHigh", "connwatch_host_cpu_usage_ratio"
    both = [alert(name, "warning", HOST, 0.91), alert(name, "critical", HOST, 0.91)]
    t.append({
        "name": name + " critical: 91 % fires both severities after 5 min, resolves 5 min after it drops",
        "interval": dur(STEP),
        "input_series": [{"series": sel(cpu, HOST), "values": const(0.91, 28) + " " + const(0.5, 60)}],
        "alert_rule_test": [at(285, name), at(300, name, *both), at(405 + 300, name, *both), at(405 + 315, name)],
    })
    at_l, lo_l = dict(HOST, instance="at-threshold"), dict(HOST, instance="below")
    warn_only = [alert(name, "warning", at_l, 0.9), alert(name, "warning", lo_l, 0.89)]
    t.append({
        "name": name + " critical: 90 % and 89 % fire the warning only; 4:45 of 91 % nothing",
        "interval": dur(STEP),
        "input_series": [{"series": sel(cpu, at_l), "values": const(0.9, 80)},
                         {"series": sel(cpu, lo_l), "values": const(0.89, 80)},
                         {"series": sel(cpu, dict(HOST, instance="short")), "values": const(0.91, 20) + " " + const(0.5, 60)}],
        "alert_rule_test": [at(300, name, *warn_only), at(1185, name, *warn_only)],
    })
    t += gauge_rule("ConnwatchHostIowaitHigh", "warning", "connwatch_host_cpu_iowait_ratio",
                    0.81, 0.8, 0.79, 300, 300, labels=HOST)

    # Memory: falling 300 MB per 15 s (1.118 GiB/min) fires; 250 MB per 15 s
    # (0.931 GiB/min) does not. deriv() needs two samples: condition from
    # 15 s, firing at 15 s + 5 min.
    name = "ConnwatchHostMemoryLeak"
    mem = "connwatch_host_memory_available_bytes"
    a = alert(name, "warning", HOST, -300e6 / 15)
    t.append({
        "name": name + ": falling 1.12 GiB/min fires after 5 min, resolves when it stops",
        "interval": dur(STEP),
        "input_series": [{"series": sel(mem, HOST), "values": ramp(40e9, -300e6, 41) + " " + const(28e9, 40)}],
        "alert_rule_test": [at(300, name), at(315, name, a), at(600, name, a), at(600 + 120 + STEP, name)],
    })
    t.append({
        "name": name + ": falling 0.93 GiB/min, or 1.12 GiB/min for 4:45, never fires",
        "interval": dur(STEP),
        "input_series": [
            {"series": sel(mem, HOST), "values": ramp(40e9, -250e6, 80)},
            {"series": sel(mem, dict(HOST, instance="short")), "values": ramp(40e9, -300e6, 20) + " " + const(34.3e9, 60)},
        ],
        "alert_rule_test": [at(315, name), at(600, name), at(1185, name)],
    })
    name = "ConnwatchHostCheckFailing"
    lab = dict(HOST, check="host")
    t += gauge_rule(name, "warning", "connwatch_check_success", 0, None, 1, 300, 0, labels=lab, value=0)
    t += reason_join_check(name, "warning", "host", 300, reason="internal", base=HOST)
    return t


DAY = 86400


def tls():
    t = []
    ver = "connwatch_tls_verified_chain_expiry_timestamp_seconds"
    name = "ConnwatchCertExpiringSoon"
    for sev, days in [("warning", 30), ("critical", 7)]:
        # A certificate whose verified chain ends 'days' days + 10 min after
        # t=0 crosses the threshold after 600 s: pending at 615 s, firing at
        # 615 s + 10 min. Renewed (+90 days) at 1500 s: resolved at once.
        # Below 7 days the warning (< 30 days) fires as well, from the start.
        exp = days * DAY + 600
        sevs = ["warning", "critical"] if sev == "critical" else ["warning"]
        warn_before = [] if sev == "warning" else [alert(name, "warning", CHECK, (exp - 600) / DAY)]
        warn_1200 = [] if sev == "warning" else [alert(name, "warning", CHECK, (exp - 1200) / DAY)]
        t.append({
            "name": "%s %s: crossing %d days fires 10 min later, renewal resolves" % (name, sev, days),
            "interval": dur(STEP),
            "input_series": [{"series": sel(ver, CHECK),
                              "values": const(exp, 100) + " " + const(exp + 90 * DAY, 60)}],
            "alert_rule_test": [at(600, name, *warn_before), at(1200, name, *warn_1200),
                                at(1215, name, *[alert(name, s, CHECK, (exp - 1215) / DAY) for s in sevs]),
                                at(1485, name, *[alert(name, s, CHECK, (exp - 1485) / DAY) for s in sevs]),
                                at(1500, name)],
        })
    name = "ConnwatchCertExpiringSoon"
    t.append({
        "name": name + ": a stale cross-signed root the server still sends (presented chain expires in 2 days, "
                       "verified chain in 200) pages no one",
        "interval": dur(STEP),
        "input_series": [
            {"series": sel(ver, CHECK), "values": const(200 * DAY, 100)},
            {"series": sel("connwatch_tls_earliest_cert_expiry_timestamp_seconds", CHECK), "values": const(2 * DAY, 100)},
            {"series": sel("connwatch_tls_verify_success", CHECK), "values": const(1, 100)},
        ],
        "alert_rule_test": [at(1200, name), at(1200, "ConnwatchCertVerifyFailed"),
                            at(1200, "ConnwatchCertExpired")],
    })

    name = "ConnwatchCertExpired"
    fi = "connwatch_check_failure_info"
    lab = dict(CHECK, check="http", reason="cert_expired")
    a = alert(name, "critical", dict(CHECK, reason="cert_expired"), 1)
    t.append({
        "name": name + ": failing with cert_expired fires after 1 min with the reason, resolves when the check recovers",
        "interval": dur(STEP),
        "input_series": [{"series": sel(fi, lab), "values": const(1, 20) + " stale"},
                         {"series": sel(fi, dict(lab, target="short")), "values": const(1, 4) + " stale"},
                         {"series": sel(fi, dict(lab, target="other", reason="timeout")), "values": const(1, 30)}],
        "alert_rule_test": [at(45, name), at(60, name, a), at(285, name, a), at(300, name)],
    })

    name = "ConnwatchCertVerifyFailed"
    vs = "connwatch_tls_verify_success"
    a = alert(name, "critical", CHECK, 0)
    t.append({
        "name": name + ": verify_success 0 fires after 1 min, resolves at once when it verifies",
        "interval": dur(STEP),
        "input_series": [{"series": sel(vs, CHECK), "values": const(0, 20) + " " + const(1, 20)},
                         {"series": sel(vs, dict(CHECK, target="short")), "values": const(0, 4) + " " + const(1, 30)}],
        "alert_rule_test": [at(45, name), at(60, name, a), at(285, name, a), at(300, name)],
    })
    b = alert(name, "critical", dict(CHECK, target="hostname", reason="cert_hostname"), 1)
    t.append({
        "name": name + ": cert_hostname without a verify_success series fires; expired and "
                       "insecure_skip_verify targets do not",
        "interval": dur(STEP),
        "input_series": [
            {"series": sel(fi, dict(CHECK, target="hostname", check="tcp", reason="cert_hostname")), "values": const(1, 20)},
            {"series": sel(vs, dict(CHECK, target="expired")), "values": const(0, 20)},
            {"series": sel(fi, dict(CHECK, target="expired", check="http", reason="cert_expired")), "values": const(1, 20)},
            {"series": sel(vs, dict(CHECK, target="skip")), "values": const(0, 20)},
            {"series": sel("connwatch_tls_insecure_skip_verify", dict(CHECK, target="skip")), "values": const(1, 20)},
        ],
        "alert_rule_test": [at(45, name), at(60, name, b), at(285, name, b)],
    })

    name = "ConnwatchCertFileExpiringSoon"
    cf = "connwatch_cert_file_expiry_timestamp_seconds"
    fl = {"path": "/etc/ssl/shop/fullchain.pem", "subject": "CN=shop.example.com", "instance": "cw:19367",
          "job": "connwatch"}
    exp = 7 * DAY + 600
    t.append({
        "name": name + ": a file crossing 7 days fires warning and critical 10 min later; replaced file resolves",
        "interval": dur(STEP),
        "input_series": [{"series": sel(cf, fl), "values": const(exp, 100) + " " + const(exp + 90 * DAY, 60)},
                         {"series": sel(cf, dict(fl, subject="CN=fresh")), "values": const(31 * DAY, 160)}],
        "alert_rule_test": [at(1200, name, alert(name, "warning", fl, (exp - 1200) / DAY)),
                            at(1215, name, alert(name, "warning", fl, (exp - 1215) / DAY),
                               alert(name, "critical", fl, (exp - 1215) / DAY)),
                            at(1500, name)],
    })
    exp30 = 30 * DAY + 600
    t.append({
        "name": name + ": crossing 30 days fires the warning 10 min later, not one evaluation earlier",
        "interval": dur(STEP),
        "input_series": [{"series": sel(cf, fl), "values": const(exp30, 100)}],
        "alert_rule_test": [at(1200, name), at(1215, name, alert(name, "warning", fl, (exp30 - 1215) / DAY))],
    })
    t += gauge_rule("ConnwatchClockSkew", "warning", "connwatch_clock_skew_seconds",
                    1.01, 1, 0.9, 300, 300)
    t += gauge_rule("ConnwatchClockSkew", "warning", "connwatch_clock_skew_seconds",
                    -1.01, -1, -0.9, 300, 300, value=1.01)
    t += reason_join("ConnwatchClockSkew", "warning", "connwatch_clock_skew_seconds", 2, "http", 300,
                     reason="http_status", other_kind="tcp")
    # A verify_success of 0 on a failing check takes that check's reason.
    name = "ConnwatchCertVerifyFailed"
    t.append({
        "name": name + ": verify_success 0 while the tls check fails with tls_handshake carries that reason",
        "interval": dur(STEP),
        "input_series": [{"series": sel(vs, CHECK), "values": const(0, 10)},
                         {"series": sel(FI, dict(CHECK, check="tls", reason="tls_handshake")), "values": const(1, 10)}],
        "alert_rule_test": [at(45, name), at(60, name, alert(name, "critical", dict(CHECK, reason="tls_handshake"), 0))],
    })
    return t


def http():
    t = []
    t += gauge_rule("ConnwatchHttpProbeFailing", "critical", "connwatch_check_success", 0, None, 1, 60, 120,
                    labels=dict(CHECK, check="http"), value=0)
    t += gauge_rule("ConnwatchHttp5xx", "critical", "connwatch_http_status_code", 500, None, 499, 60, 120)
    t.append({
        "name": "ConnwatchHttp5xx: 502 fires, 404 and 200 do not",
        "interval": dur(STEP),
        "input_series": [{"series": sel("connwatch_http_status_code", tgt(name)), "values": const(code, 20)}
                         for name, code in [("bad-gateway", 502), ("missing", 404), ("ok", 200)]],
        "alert_rule_test": [at(60, "ConnwatchHttp5xx", alert("ConnwatchHttp5xx", "critical", tgt("bad-gateway"), 502))],
    })

    # One fault, one page: an http check failing for a network reason is
    # the network layer's alert, a certificate reason the TLS layer's, and
    # only the rest is ConnwatchHttpProbeFailing (with its reason).
    probe, net = "ConnwatchHttpProbeFailing", "ConnwatchNetworkCheckFailing"
    ver, exp = "ConnwatchCertVerifyFailed", "ConnwatchCertExpired"

    def failing(reasons, kind="http", n=20):
        """Checks of 'kind' failing for 'reasons' (target = reason) for n
        samples, then succeeding (failure_info stale)."""
        out = []
        for r in reasons:
            lab = tgt(r, check=kind)
            out.append({"series": sel(SUCCESS, lab), "values": const(0, n) + " " + const(1, 20)})
            out.append({"series": sel(FI, dict(lab, reason=r)), "values": const(1, n) + " stale"})
        return out

    network_reasons = ["timeout", "refused", "unreachable", "dns"]
    net_alerts = [alert(net, "critical", tgt(r, check=k, reason=r), 0)
                  for k in ["http", "tls"] for r in network_reasons]
    t.append({
        "name": "http and tls checks failing for a network reason page as layer network only",
        "interval": dur(STEP),
        "input_series": failing(network_reasons) + failing(network_reasons, kind="tls"),
        "alert_rule_test": [at(45, net), at(60, net, *net_alerts), at(60, probe), at(285, net, *net_alerts),
                            at(285, probe),
                            # recovered at 300: keep_firing_for 1m, then resolved
                            at(285 + 60, net, *net_alerts), at(285 + 75, net), at(285 + 75, probe)],
    })
    app_reasons = ["http_status", "protocol", "tls_handshake"]
    probe_alerts = [alert(probe, "critical", tgt(r, check="http", reason=r), 0) for r in app_reasons]
    t.append({
        "name": probe + ": http_status, protocol and tls_handshake page as layer http with the reason, "
                        "not as the network",
        "interval": dur(STEP),
        "input_series": failing(app_reasons),
        "alert_rule_test": [at(45, probe), at(60, probe, *probe_alerts), at(60, net),
                            at(285 + 120, probe, *probe_alerts), at(285 + 135, probe)],
    })
    t.append({
        "name": "certificate reasons of an http check page as the TLS alert only, and it resolves at "
                "once on recovery without the HTTP alert taking over",
        "interval": dur(STEP),
        "input_series": failing(["cert_expired", "cert_hostname", "cert_untrusted"])
        + [{"series": sel("connwatch_tls_verify_success", tgt(r)), "values": const(0, 20) + " " + const(1, 20)}
           for r in ["cert_expired", "cert_hostname", "cert_untrusted"]],
        "alert_rule_test": [
            at(60, exp, alert(exp, "critical", tgt("cert_expired", reason="cert_expired"), 1)),
            at(60, ver, alert(ver, "critical", tgt("cert_hostname", reason="cert_hostname"), 1),
               alert(ver, "critical", tgt("cert_untrusted", reason="cert_untrusted"), 1)),
            at(60, probe), at(60, net),
            at(285, exp, alert(exp, "critical", tgt("cert_expired", reason="cert_expired"), 1)),
            at(300, exp), at(300, ver), at(300, probe), at(315, probe), at(300 + 120, probe), at(300 + 135, probe)],
    })

    # Recovery: ConnwatchHttp5xx inhibits ConnwatchHttpProbeFailing (RUNBOOK,
    # Routing); both resolve at the same evaluation, so the inhibited alert
    # never outlives its inhibitor.
    five = "ConnwatchHttp5xx"
    lab = dict(CHECK, check="http")
    both = lambda: [at(t_, five, alert(five, "critical", dict(CHECK, reason="http_status"), 502))
                    for t_ in [60, 285, 285 + 120]] + \
        [at(t_, probe, alert(probe, "critical", dict(lab, reason="http_status"), 0)) for t_ in [60, 285, 285 + 120]]
    t.append({
        "name": five + " and the " + probe + " it inhibits fire together and resolve at the same evaluation",
        "interval": dur(STEP),
        "input_series": [{"series": sel("connwatch_http_status_code", CHECK), "values": const(502, 20) + " " + const(200, 40)},
                         {"series": sel(SUCCESS, lab), "values": const(0, 20) + " " + const(1, 40)},
                         {"series": sel(FI, dict(lab, reason="http_status")), "values": const(1, 20) + " stale"}],
        "alert_rule_test": [at(45, five), at(45, probe)] + both() + [at(285 + 135, five), at(285 + 135, probe)],
    })
    t += reason_join(five, "critical", "connwatch_http_status_code", 502, "http", 60, reason="http_status",
                     other_kind="tcp")
    return t


def database():
    t = []
    t += gauge_rule("ConnwatchMysqlDown", "critical", "connwatch_check_success", 0, None, 1, 60, 60,
                    labels=dict(CHECK, check="mysql"), value=0)
    t += gauge_rule("ConnwatchMysqlThreadsConnectedHigh", "warning", "connwatch_mysql_threads_connected",
                    501, 500, 499, 300, 300)
    t += gauge_rule("ConnwatchMysqlConnectionUsageHigh", "warning", "connwatch_mysql_connection_usage_ratio",
                    0.81, 0.8, 0.79, 300, 300)

    name = "ConnwatchMysqlDeadlocks"
    dl = "connwatch_mysql_deadlocks_total"
    a = alert(name, "warning", CHECK, 1)
    t.append({
        "name": name + ": one deadlock fires at once, for as long as it is in the 5 min window",
        "interval": dur(STEP),
        # 3 until 600 s, 4 from 615 s.
        "input_series": [{"series": sel(dl, CHECK), "values": const(3, 41) + " " + const(4, 60)}],
        "alert_rule_test": [at(600, name), at(615, name, a), at(900, name, a), at(915, name)],
    })
    t.append({
        "name": name + ": a flat counter and a server restart (counter reset to 0) never fire",
        "interval": dur(STEP),
        "input_series": [{"series": sel(dl, CHECK), "values": const(3, 80)},
                         {"series": sel(dl, tgt("restarted")), "values": const(3, 41) + " " + const(0, 40)}],
        "alert_rule_test": [at(615, name), at(700, name), at(1185, name)],
    })

    name = "ConnwatchMysqlSlowQueries"
    sq = "connwatch_mysql_slow_queries_total"
    # +1 per 15 s (4 per minute) from 0 s until 900 s, then flat. rate over
    # 2 min > 0 from 15 s: firing at 135 s quoting the current 4/min. The
    # last window [t - 2m, t] holding an increase is at 1005 s (885 s ->
    # 900 s: 0.5 per minute); keep_firing_for 2m holds it to 1125 s.
    t.append({
        "name": name + ": slow queries for 2 min page at 2:15 with the current rate; resolve 2 min after they stop",
        "interval": dur(STEP),
        "input_series": [{"series": sel(sq, CHECK), "values": ramp(100, 1, 61) + " " + const(160, 40)}],
        "alert_rule_test": [at(120, name), at(135, name, alert(name, "warning", CHECK, 4)),
                            at(600, name, alert(name, "warning", CHECK, 4)),
                            at(1125, name, alert(name, "warning", CHECK, 0.5)), at(1140, name)],
    })
    t.append({
        "name": name + ": a flat counter and a single slow query (true for 1:45 with the window) never fire; "
                       "a restart's counter reset neither",
        "interval": dur(STEP),
        "input_series": [{"series": sel(sq, CHECK), "values": const(100, 60)},
                         {"series": sel(sq, tgt("one")), "values": const(7, 4) + " " + const(8, 56)},
                         {"series": sel(sq, tgt("restarted")), "values": const(50, 20) + " " + const(0, 40)}],
        "alert_rule_test": [at(135, name), at(180, name), at(300, name), at(600, name)],
    })
    fail = tgt("failing")
    t.append({
        "name": name + ": while the mysql check fails it carries the reason",
        "interval": dur(STEP),
        "input_series": [{"series": sel(sq, fail), "values": ramp(100, 1, 20)},
                         {"series": sel(FI, dict(fail, check="mysql", reason="auth")), "values": const(1, 20)}],
        "alert_rule_test": [at(120, name), at(135, name, alert(name, "warning", dict(fail, reason="auth"), 4))],
    })

    name = "ConnwatchMysqlRefusingClients"
    ce, ab, us = ("connwatch_mysql_connection_errors_total", "connwatch_mysql_aborted_connects_total",
                  "connwatch_mysql_connection_usage_ratio")
    mc = dict(CHECK, reason="max_connections")
    # 10 until 300 s, 13 from 315 s: round(increase[5m]) is 3 from 315 s
    # until the window [t - 5m, t] no longer holds the 300 s sample (615 s).
    t.append({
        "name": name + ": Connection_errors_max_connections rising pages at once, critical, quoting the count",
        "interval": dur(STEP),
        "input_series": [{"series": sel(ce, mc), "values": const(10, 21) + " " + const(13, 40)},
                         {"series": sel(ce, dict(CHECK, reason="accept")), "values": ramp(0, 1, 61)}],
        "alert_rule_test": [at(300, name), at(315, name, alert(name, "critical", CHECK, 3)),
                            at(600, name, alert(name, "critical", CHECK, 3)), at(615, name)],
    })
    t.append({
        "name": name + ": Aborted_connects rising while the pool is full pages; rising below 100 % of "
                       "max_connections, a full pool without refusals, or a counter reset do not",
        "interval": dur(STEP),
        "input_series": [{"series": sel(ab, tgt("full")), "values": const(10, 21) + " " + const(12, 40)},
                         {"series": sel(us, tgt("full")), "values": const(1, 61)},
                         {"series": sel(ab, tgt("roomy")), "values": const(10, 21) + " " + const(12, 40)},
                         {"series": sel(us, tgt("roomy")), "values": const(0.7, 61)},
                         {"series": sel(ab, tgt("quiet")), "values": const(10, 61)},
                         {"series": sel(us, tgt("quiet")), "values": const(1, 61)},
                         {"series": sel(ce, dict(tgt("restarted"), reason="max_connections")),
                          "values": const(10, 21) + " " + const(0, 40)}],
        "alert_rule_test": [at(300, name), at(315, name, alert(name, "critical", tgt("full"), 2)),
                            at(600, name, alert(name, "critical", tgt("full"), 2)), at(615, name)],
    })
    t.append({
        "name": name + ": while the mysql check fails it carries the reason",
        "interval": dur(STEP),
        "input_series": [{"series": sel(ce, mc), "values": const(10, 21) + " " + const(13, 40)},
                         {"series": sel(FI, dict(CHECK, check="mysql", reason="protocol")), "values": const(1, 61)}],
        "alert_rule_test": [at(315, name, alert(name, "critical", dict(CHECK, reason="protocol"), 3))],
    })
    # A pool that fills up and refuses clients is one page, the critical one
    # (sc_data_host paged both): usage > 0.8 is no warning while refusals
    # are in the window; a pool at 0.9 without refusals still pages.
    name = "ConnwatchMysqlConnectionUsageHigh"
    t.append({
        "name": name + ": not while the server refuses clients (ConnwatchMysqlRefusingClients pages)",
        "interval": dur(STEP),
        "input_series": [{"series": sel(us, tgt("full")), "values": const(1.1, 61)},
                         {"series": sel(ab, tgt("full")), "values": ramp(0, 1, 61)},
                         {"series": sel(ce, dict(tgt("full2"), reason="max_connections")), "values": ramp(0, 1, 61)},
                         {"series": sel(us, tgt("full2")), "values": const(1.1, 61)},
                         {"series": sel(us, tgt("high")), "values": const(0.9, 61)},
                         {"series": sel(ab, tgt("high")), "values": const(4, 61)}],
        "alert_rule_test": [at(600, name, alert(name, "warning", tgt("high"), 0.9)),
                            at(600, "ConnwatchMysqlRefusingClients",
                               alert("ConnwatchMysqlRefusingClients", "critical", tgt("full"), 20),
                               alert("ConnwatchMysqlRefusingClients", "critical", tgt("full2"), 20))],
    })
    t += reason_join_check("ConnwatchMysqlDown", "critical", "mysql", 60, reason="refused")
    t += reason_join("ConnwatchMysqlThreadsConnectedHigh", "warning", "connwatch_mysql_threads_connected", 600,
                     "mysql", 300, reason="protocol", other_kind="tcp")
    t += reason_join("ConnwatchMysqlConnectionUsageHigh", "warning", "connwatch_mysql_connection_usage_ratio",
                     0.9, "mysql", 300, reason="protocol", other_kind="tcp")
    return t


def cache():
    t = []
    t += gauge_rule("ConnwatchRedisDown", "critical", "connwatch_check_success", 0, None, 1, 60, 60,
                    labels=dict(CHECK, check="redis"), value=0)
    t += reason_join_check("ConnwatchRedisDown", "critical", "redis", 60, reason="auth")
    name = "ConnwatchRedisHitRatioLow"
    hr = "connwatch_redis_hit_ratio"
    hits, misses = "connwatch_redis_keyspace_hits_total", "connwatch_redis_keyspace_misses_total"

    def lookups(labels, h, m, n):
        """Counters growing by h hits and m misses per 15 s, n samples."""
        return [{"series": sel(hits, labels), "values": ramp(0, h, n)},
                {"series": sel(misses, labels), "values": ramp(0, m, n)}]

    # 92 % until 285 s, a collapse to 45 % from 300 s to 585 s, 92 % again:
    # at 60 lookups/s the guard holds from 15 s; pending at 300 s, firing at
    # 420 s quoting the current 45 % (not a 5 min average); resolved at
    # 585 + 5 min + 15 s.
    t.append({
        "name": name + ": a collapse to 45 % pages 2 min later quoting 45 %; recovery resolves after keep_firing_for",
        "interval": dur(STEP),
        "input_series": [{"series": sel(hr, CHECK),
                          "values": const(0.92, 20) + " " + const(0.45, 20) + " " + const(0.92, 40)}]
        + lookups(CHECK, 600, 300, 80),
        "alert_rule_test": [at(285, name), at(405, name), at(420, name, alert(name, "warning", CHECK, 0.45)),
                            at(585, name, alert(name, "warning", CHECK, 0.45)),
                            at(585 + 300, name, alert(name, "warning", CHECK, 0.45)), at(585 + 315, name)],
    })
    t.append({
        "name": name + ": 80 % exactly, an idle cache (0.67 lookups/s at 10 %), no lookups at all (no ratio), "
                       "and 45 % for 1:45 never fire",
        "interval": dur(STEP),
        "input_series": [{"series": sel(hr, CHECK), "values": const(0.8, 80)}] + lookups(CHECK, 600, 300, 80)
        + [{"series": sel(hr, tgt("idle")), "values": const(0.1, 80)}] + lookups(tgt("idle"), 1, 9, 80)
        + [{"series": sel(hits, tgt("unused")), "values": const(5, 80)},
           {"series": sel(misses, tgt("unused")), "values": const(5, 80)}]
        + [{"series": sel(hr, tgt("short")), "values": const(0.45, 7) + " " + const(0.92, 73)}]
        + lookups(tgt("short"), 600, 300, 80),
        "alert_rule_test": [at(135, name), at(300, name), at(600, name), at(1185, name)],
    })
    fail = tgt("failing")
    t.append({
        "name": name + ": while the redis check fails it carries the reason",
        "interval": dur(STEP),
        "input_series": [{"series": sel(hr, fail), "values": const(0.45, 20)}] + lookups(fail, 600, 300, 20)
        + [{"series": sel(FI, dict(fail, check="redis", reason="timeout")), "values": const(1, 20)}],
        "alert_rule_test": [at(120, name), at(135, name, alert(name, "warning", dict(fail, reason="timeout"), 0.45))],
    })

    name = "ConnwatchRedisRejectingClients"
    rj = "connwatch_redis_rejected_connections_total"
    t.append({
        "name": name + ": a rejected connection pages at once, critical, for as long as it is in the 5 min window",
        "interval": dur(STEP),
        "input_series": [{"series": sel(rj, CHECK), "values": const(10, 21) + " " + const(12, 40)}],
        "alert_rule_test": [at(300, name), at(315, name, alert(name, "critical", CHECK, 2)),
                            at(600, name, alert(name, "critical", CHECK, 2)), at(615, name)],
    })
    t.append({
        "name": name + ": a flat counter and a restart (counter reset to 0) never fire",
        "interval": dur(STEP),
        "input_series": [{"series": sel(rj, CHECK), "values": const(4, 61)},
                         {"series": sel(rj, tgt("restarted")), "values": const(4, 21) + " " + const(0, 40)}],
        "alert_rule_test": [at(315, name), at(600, name), at(885, name)],
    })
    t.append({
        "name": name + ": while the redis check fails it carries the reason",
        "interval": dur(STEP),
        "input_series": [{"series": sel(rj, CHECK), "values": const(10, 21) + " " + const(12, 40)},
                         {"series": sel(FI, dict(CHECK, check="redis", reason="protocol")), "values": const(1, 61)}],
        "alert_rule_test": [at(315, name, alert(name, "critical", dict(CHECK, reason="protocol"), 2))],
    })
    return t


def meta():
    t = []
    name = "ConnwatchExporterDown"
    up = {"instance": "cw:19367", "job": "connwatch"}
    t += gauge_rule(name, "critical", "up", 0, None, 1, 120, 0, labels=up, value=0)
    t.append({
        "name": name + ": other jobs being down is not connwatch's business",
        "interval": dur(STEP),
        "input_series": [{"series": sel("up", {"instance": "n:9100", "job": "node"}), "values": const(0, 40)},
                         {"series": sel("up", up), "values": const(1, 40)}],
        "alert_rule_test": [at(300, name), at(300, "ConnwatchExporterAbsent")],
    })
    name = "ConnwatchExporterAbsent"
    t.append({
        "name": name + ": no connwatch job for 10 min fires; its scrape appearing resolves",
        "interval": dur(STEP),
        "input_series": [{"series": sel("up", {"instance": "n:9100", "job": "node"}), "values": const(1, 80)},
                         {"series": sel("up", {"instance": "cw:19367", "job": "connwatch-relay"}),
                          "values": "_x46 " + const(1, 34)}],
        "alert_rule_test": [at(585, name), at(600, name, alert(name, "warning", {}, 1)), at(675, name, alert(name, "warning", {}, 1)), at(690, name)],
    })

    name = "ConnwatchCheckKindFailingEverywhere"
    s = "connwatch_check_success"
    ic = lambda target, **kw: dict(CHECK, check="icmp", target=target, **kw)
    a = alert(name, "warning", {"check": "icmp", "instance": "cw:19367", "job": "connwatch"}, 0)
    t.append({
        "name": name + ": both icmp checks failing for 5 min fires; one recovering resolves",
        "interval": dur(STEP),
        "input_series": [{"series": sel(s, ic("a")), "values": const(0, 60)},
                         {"series": sel(s, ic("b")), "values": const(0, 30) + " " + const(1, 30)},
                         {"series": sel(s, dict(CHECK, check="tcp")), "values": const(1, 60)}],
        "alert_rule_test": [at(285, name), at(300, name, a), at(435, name, a), at(450, name)],
    })
    t.append({
        "name": name + ": one of two failing, or the only check of a kind failing, never fires",
        "interval": dur(STEP),
        "input_series": [{"series": sel(s, ic("a")), "values": const(0, 60)},
                         {"series": sel(s, ic("b")), "values": const(1, 60)},
                         {"series": sel(s, dict(CHECK, check="redis")), "values": const(0, 60)}],
        "alert_rule_test": [at(300, name), at(885, name)],
    })
    t += gauge_rule("ConnwatchConfigReloadFailed", "warning", "connwatch_config_last_reload_successful",
                    0, None, 1, 300, 0, labels=HOST, value=0)

    name = "ConnwatchRunsSkipped"
    rs = "connwatch_check_runs_skipped_total"
    lab = dict(CHECK, check="icmp")
    t.append({
        "name": name + ": skipping runs for 10 min fires at 615 s; stopping resolves when the window is clean",
        "interval": dur(STEP),
        "input_series": [{"series": sel(rs, lab), "values": ramp(0, 1, 61) + " " + const(60, 40)}],
        "alert_rule_test": [at(600, name), at(615, name, alert(name, "warning", lab, 1 / 15)), at(1200, name)],
    })
    t.append({
        "name": name + ": no skips, and skips stopping after 4:45 (rate > 0 for 9:30 with the window), never fire",
        "interval": dur(STEP),
        "input_series": [{"series": sel(rs, lab), "values": const(4, 100)},
                         {"series": sel(rs, dict(lab, target="short")), "values": ramp(0, 1, 20) + " " + const(19, 80)}],
        "alert_rule_test": [at(615, name), at(1485, name)],
    })
    t += gauge_rule("ConnwatchRelayQueueBacklog", "warning", "connwatch_relay_queue_length", 3, 0, 0, 900, 0,
                    labels={"receiver": "oncall", "instance": "relay:19369", "job": "connwatch-relay"})
    return t


LAYERS = {"network": network, "host": host, "tls": tls, "http": http, "database": database,
          "cache": cache, "meta": meta}


def main():
    seen = set()
    for layer, fn in LAYERS.items():
        tests = fn()
        for g in tests:
            for e in g["alert_rule_test"]:
                seen.add(e["alertname"])
        doc = {"rule_files": ["../connwatch.rules.yml"], "evaluation_interval": dur(STEP), "tests": tests}
        path = os.path.join(HERE, layer + ".test.yml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("# SPDX-License-Identifier: Apache-2.0\n")
            f.write("# Generated by gen_tests.py from its scenarios; edit those, then rerun it.\n")
            f.write("# promtool test rules %s.test.yml (from this directory)\n" % layer)
            yaml.safe_dump(doc, f, sort_keys=False, width=110, allow_unicode=True)
    missing = sorted({a for a, _ in RULES} - seen)
    if missing:
        print("gen_tests: no scenario for " + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
