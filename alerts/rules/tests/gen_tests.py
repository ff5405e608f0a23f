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
then resolves.
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
    a = alert(name, "critical", CHECK, 1)
    t.append({
        "name": name + ": failing with cert_expired fires after 1 min, resolves when the check recovers",
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
    b = alert(name, "critical", dict(CHECK, target="hostname"), 1)
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
    t.append({
        "name": name + ": rising for 10 min fires (condition from 15 s, firing at 615 s), stops resolves",
        "interval": dur(STEP),
        # +1 per 15 s until 900 s, then flat: the 5 min rate is 0 from 1200 s.
        "input_series": [{"series": sel(sq, CHECK), "values": ramp(100, 1, 61) + " " + const(160, 40)}],
        "alert_rule_test": [at(600, name), at(615, name, alert(name, "warning", CHECK, 1 / 15)),
                            at(1185, name, alert(name, "warning", CHECK, 1 / 300)), at(1200, name)],
    })
    t.append({
        "name": name + ": a flat counter, and rising for 4:45 only (rate > 0 for 9:30 with the window), never fire",
        "interval": dur(STEP),
        "input_series": [{"series": sel(sq, CHECK), "values": const(100, 100)},
                         {"series": sel(sq, tgt("short")), "values": ramp(0, 1, 20) + " " + const(19, 80)}],
        "alert_rule_test": [at(615, name), at(900, name), at(1485, name)],
    })
    return t


def cache():
    t = []
    t += gauge_rule("ConnwatchRedisDown", "critical", "connwatch_check_success", 0, None, 1, 60, 60,
                    labels=dict(CHECK, check="redis"), value=0)
    name = "ConnwatchRedisHitRatioLow"
    hits, misses = "connwatch_redis_keyspace_hits_total", "connwatch_redis_keyspace_misses_total"

    def cache_series(labels, h1, m1, n1, h2, m2, n2):
        """Counters growing by h1/m1 per 15 s for n1 samples, then h2/m2."""
        hv = ramp(0, h1, n1) + (" " + ramp(h1 * (n1 - 1) + h2, h2, n2) if n2 else "")
        mv = ramp(0, m1, n1) + (" " + ramp(m1 * (n1 - 1) + m2, m2, n2) if n2 else "")
        return [{"series": sel(hits, labels), "values": hv}, {"series": sel(misses, labels), "values": mv}]

    # 600 hits, 300 misses per 15 s: ratio 0.667 at 60 lookups/s (enough
    # for the >= 1 lookup/s guard from the first rate at 15 s, whose
    # extrapolated increase is divided by the whole 5 min). Condition from
    # 15 s, firing at 615 s. From 900 s, 900 hits and no miss per 15 s: at
    # 900 + 15k s the 5 min window holds 20 - k old steps and k new ones,
    # ratio (12000 + 300k) / 18000, below 0.8 up to k = 7 (1005 s, 78.3 %);
    # keep_firing_for holds it until 1005 + 600 s.
    t.append({
        "name": name + ": 67 % hits at 60 lookups/s fires after 10 min; recovery resolves after keep_firing_for",
        "interval": dur(STEP),
        "input_series": cache_series(CHECK, 600, 300, 61, 900, 0, 100),
        "alert_rule_test": [at(600, name), at(615, name, alert(name, "warning", CHECK, 600 / 900)),
                            at(900, name, alert(name, "warning", CHECK, 600 / 900)),
                            at(1005 + 600, name, alert(name, "warning", CHECK, 14100 / 18000)),
                            at(1005 + 600 + STEP, name)],
    })
    t.append({
        "name": name + ": 81 % hits, an idle cache (0.67 lookups/s at 10 % hits), no lookups at all, "
                       "and 67 % for 4:45 (true for 9:45 with its window) never fire",
        "interval": dur(STEP),
        "input_series": cache_series(CHECK, 81, 19, 100, 0, 0, 0)
        + cache_series(tgt("idle"), 1, 9, 100, 0, 0, 0)
        + [{"series": sel(hits, tgt("unused")), "values": const(5, 100)},
           {"series": sel(misses, tgt("unused")), "values": const(5, 100)}]
        + cache_series(tgt("short"), 600, 300, 20, 900, 0, 80),
        "alert_rule_test": [at(615, name), at(900, name), at(1485, name)],
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
