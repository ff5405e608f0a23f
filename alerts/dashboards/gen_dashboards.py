#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""gen_dashboards.py - writes the Grafana dashboards next to it.

    python3 alerts/dashboards/gen_dashboards.py           # rewrite *.json
    python3 alerts/dashboards/gen_dashboards.py --check   # exit 1 if a file differs

connwatch-overview.json  "Connection health": one row per service with a traffic
                         light per layer, firing alerts, days to the earliest
                         certificate expiry, the hosts at a glance.
connwatch-target.json    drill-down per service/target: network, HTTP, TLS,
                         host TCP, MySQL, Redis, host CPU/memory.

The threshold lines drawn on panels are read from the alert rules
(alerts/rules/connwatch.rules.yml), so they match by construction; --check
(a lint test) fails when a rule changed and the dashboards were not rewritten.
Grafana JSON model, schemaVersion 38 (Grafana 9.5/10).
"""
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULE_FILE = os.path.join(HERE, "..", "rules", "connwatch.rules.yml")

with open(RULE_FILE, encoding="utf-8") as f:
    RULES = {}
    for g in yaml.safe_load(f)["groups"]:
        for r in g["rules"]:
            RULES[(r["alert"], r["labels"]["severity"])] = r


def threshold(alert, severity="warning"):
    """The first comparison against a number in the rule's expression."""
    expr = RULES[(alert, severity)]["expr"]
    m = re.search(r"(?:>=|<=|>|<)\s*(-?[0-9.e]+(?:\s*/\s*[0-9.]+)?)", expr)
    if m is None:
        raise SystemExit("gen_dashboards: no threshold in %s" % alert)
    num = m.group(1)
    if "/" in num:
        a, b = num.split("/")
        return float(a) / float(b)
    return float(num)


T = {
    "rtt": threshold("ConnwatchIcmpLatencyHigh"),
    "loss": threshold("ConnwatchIcmpPacketLoss"),
    "jitter": threshold("ConnwatchIcmpJitterHigh"),
    "retrans": threshold("ConnwatchTcpRetransmitsHigh"),
    "conns": threshold("ConnwatchHostTcpConnectionsHigh"),
    "cpu_warn": threshold("ConnwatchHostCpuHigh", "warning"),
    "cpu_crit": threshold("ConnwatchHostCpuHigh", "critical"),
    "iowait": threshold("ConnwatchHostIowaitHigh"),
    "mem_slope": threshold("ConnwatchHostMemoryLeak"),
    "db_threads": threshold("ConnwatchMysqlThreadsConnectedHigh"),
    "db_usage": threshold("ConnwatchMysqlConnectionUsageHigh"),
    "hit": threshold("ConnwatchRedisHitRatioLow"),
    "cert_warn": threshold("ConnwatchCertExpiringSoon", "warning"),
    "cert_crit": threshold("ConnwatchCertExpiringSoon", "critical"),
    "skew": threshold("ConnwatchClockSkew"),
    "http5xx": threshold("ConnwatchHttp5xx", "critical"),
}

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL_T = 'service=~"$service", target=~"$target", instance=~"$instance"'  # per-check series
SEL_S = 'service=~"$service", instance=~"$instance"'
SEL_H = 'instance=~"$instance"'  # host series: no service/target


class Grid:
    """Lays panels out left to right, 24 columns wide."""

    def __init__(self):
        self.x = 0
        self.y = 0
        self.h = 0
        self.id = 0
        self.panels = []

    def next_id(self):
        self.id += 1
        return self.id

    def row(self, title):
        if self.x:
            self.y += self.h
            self.x = 0
            self.h = 0
        self.panels.append({"type": "row", "title": title, "id": self.next_id(), "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.y += self.h
            self.x = 0
            self.h = 0
        panel["id"] = self.next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["datasource"] = DS
        self.panels.append(panel)
        self.x += w
        self.h = max(self.h, h)


def target(expr, legend="", ref="A", instant=False, fmt="time_series"):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend or "__auto",
         "range": not instant, "instant": instant, "format": fmt}
    return t


def steps(*pairs, base="green"):
    s = [{"color": base, "value": None}]
    for color, value in pairs:
        s.append({"color": color, "value": value})
    return {"mode": "absolute", "steps": s}


def timeseries(title, targets, unit="short", thresholds=None, description="", min_=None, max_=None,
               stack=False, draw="line", overrides=None):
    custom = {"drawStyle": draw, "lineWidth": 1, "fillOpacity": 10 if not stack else 40,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"},
              "thresholdsStyle": {"mode": "line+area" if thresholds else "off"}}
    defaults = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"},
                "thresholds": thresholds or steps()}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {"type": "timeseries", "title": title, "description": description, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title, targets, unit="short", thresholds=None, description="", decimals=None, mappings=None,
         no_value=None):
    defaults = {"unit": unit, "thresholds": thresholds or steps(), "color": {"mode": "thresholds"},
                "mappings": mappings or []}
    if decimals is not None:
        defaults["decimals"] = decimals
    if no_value is not None:
        defaults["noValue"] = no_value
    return {"type": "stat", "title": title, "description": description, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
                        "orientation": "auto", "textMode": "auto"}}


def variables(with_target):
    def query_var(name, label, query, multi=True):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "definition": query, "refresh": 2, "sort": 1, "multi": multi, "includeAll": True,
                "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "options": [], "hide": 0, "regex": "", "skipUrlSync": False}

    v = [{"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
          "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [], "skipUrlSync": False},
         query_var("instance", "connwatch", "label_values(connwatch_build_info, instance)"),
         query_var("service", "Service", 'label_values(connwatch_check_success{instance=~"$instance"}, service)')]
    v.append(query_var("target", "Target",
                       'label_values(connwatch_check_success{instance=~"$instance", service=~"$service"}, target)'))
    return v


def dashboard(uid, title, description, panels, with_target=True, links=None):
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.5.0"},
                       {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": links or [],
        "liveNow": False,
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": 38,
        "style": "dark",
        "tags": ["connwatch"],
        "templating": {"list": variables(with_target)},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


LIGHT = [{"type": "value", "options": {
    "0": {"text": "OK", "color": "green", "index": 0},
    "1": {"text": "WARN", "color": "yellow", "index": 1},
    "2": {"text": "CRIT", "color": "red", "index": 2}}}]

# Layer -> check kinds whose failure turns the light yellow, and extra
# series whose presence makes the layer apply to a service (green).
LAYERS = [
    ("Network", "network", 'connwatch_check_success{check=~"icmp|tcp|dns", %s}' % SEL_S),
    ("TLS", "tls", '(connwatch_tls_verify_success{%s} or connwatch_check_success{check=~"tls|tls_file", %s})'
     % (SEL_S, SEL_S)),
    ("HTTP", "http", 'connwatch_check_success{check="http", %s}' % SEL_S),
    ("Database", "database", 'connwatch_check_success{check="mysql", %s}' % SEL_S),
    ("Cache", "cache", 'connwatch_check_success{check="redis", %s}' % SEL_S),
]


def layer_expr(layer, ok_series):
    """0 green, 1 yellow (a check failing or a warning firing), 2 red (a
    critical alert firing); no value when the service has no such check."""
    a = 'ALERTS{alertstate="firing", alertname=~"Connwatch.*", layer="%s", severity="%%s", %s}' % (layer, SEL_S)
    return ("max by (service) (\n  2 * %s\n  or %s\n  or (1 - %s)\n)"
            % (a % "critical", a % "warning", ok_series))


def overview():
    g = Grid()
    g.row("Services")
    targets = []
    for i, (name, layer, ok) in enumerate(LAYERS):
        targets.append(target(layer_expr(layer, ok), name, ref=chr(ord("A") + i), instant=True, fmt="table"))
    cert = ('min by (service) (\n  (connwatch_tls_verified_chain_expiry_timestamp_seconds{%s} - time()) / 86400\n'
            '  or\n  (connwatch_cert_file_expiry_timestamp_seconds{%s} - time()) / 86400\n)' % (SEL_S, SEL_S))
    targets.append(target(cert, "Cert days", ref="F", instant=True, fmt="table"))
    rename = {"Value #%s" % chr(ord("A") + i): n for i, (n, _, _) in enumerate(LAYERS)}
    rename["Value #F"] = "Cert days left"
    overrides = [{"matcher": {"id": "byName", "options": n},
                  "properties": [{"id": "mappings", "value": LIGHT},
                                 {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                                 {"id": "noValue", "value": "-"}]} for n, _, _ in LAYERS]
    overrides.append({"matcher": {"id": "byName", "options": "Cert days left"},
                      "properties": [{"id": "decimals", "value": 1},
                                     {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                                     {"id": "thresholds", "value": steps(("orange", T["cert_crit"]),
                                                                         ("green", T["cert_warn"]), base="red")}]})
    overrides.append({"matcher": {"id": "byName", "options": "service"},
                      "properties": [{"id": "links", "value": [{
                          "title": "Drill down", "url": "/d/connwatch-target/connwatch-target?${__url_time_range}"
                          "&var-datasource=${datasource}&var-instance=${instance:queryparam}"
                          "&var-service=${__value.raw}"}]}]})
    g.add({"type": "table", "title": "Connection health by service",
           "description": "One row per service, one light per layer: OK, WARN (a check failing or a warning "
                          "alert firing), CRIT (a critical alert firing); '-' when the service has no check "
                          "of that layer. Click a service to drill down.",
           "targets": targets,
           "transformations": [{"id": "merge", "options": {}},
                               {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                              "renameByName": rename,
                                                              "indexByName": {"service": 0}}}],
           "fieldConfig": {"defaults": {"custom": {"align": "center", "cellOptions": {"type": "auto"}}},
                           "overrides": overrides},
           "options": {"showHeader": True, "cellHeight": "sm", "sortBy": [{"displayName": "service", "desc": False}]}},
          16, 10)
    g.add(stat("Days to earliest certificate expiry",
               [target('min(\n  (connwatch_tls_verified_chain_expiry_timestamp_seconds{%s} - time()) / 86400\n  or\n'
                       '  (connwatch_cert_file_expiry_timestamp_seconds{%s} - time()) / 86400\n)' % (SEL_S, SEL_S),
                       instant=True)],
               unit="none", decimals=1,
               thresholds=steps(("orange", T["cert_crit"]), ("green", T["cert_warn"]), base="red"),
               description="Earliest expiry among verified chains (a stale cross-signed root the server "
                           "still sends does not count) and certificate files; alerts at %g and %g days."
                           % (T["cert_warn"], T["cert_crit"])), 8, 5)
    g.add(stat("Checks failing now",
               [target('count(connwatch_check_success{%s} == 0) or vector(0)' % SEL_S, instant=True)],
               thresholds=steps(("red", 1))), 4, 5)
    g.add(stat("connwatch scrapes up",
               [target('sum(up{job=~".*connwatch.*", %s}) or vector(0)' % SEL_H, instant=True)],
               description="Prometheus targets of connwatch jobs that answered the last scrape.",
               thresholds=steps(("green", 1), base="red")), 4, 5)

    g.row("Firing alerts")
    g.add({"type": "table", "title": "Firing connwatch alerts",
           "targets": [target('sort_desc(ALERTS{alertstate="firing", alertname=~"Connwatch.*"})', instant=True,
                              fmt="table")],
           "transformations": [{"id": "organize", "options": {
               "excludeByName": {"Time": True, "Value": True, "__name__": True, "alertstate": True},
               "indexByName": {"severity": 0, "layer": 1, "alertname": 2, "service": 3, "target": 4,
                               "instance": 5}}}],
           "fieldConfig": {"defaults": {"custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
                           "overrides": [{"matcher": {"id": "byName", "options": "severity"},
                                          "properties": [{"id": "mappings", "value": [{"type": "value", "options": {
                                              "warning": {"color": "yellow", "index": 0},
                                              "critical": {"color": "red", "index": 1}}}]},
                                                         {"id": "custom.cellOptions",
                                                          "value": {"type": "color-background"}}]}]},
           "options": {"showHeader": True, "cellHeight": "sm"}}, 24, 8)

    g.row("Hosts")
    g.add(stat("CPU busy", [target('connwatch_host_cpu_usage_ratio{%s}' % SEL_H, "{{instance}}")],
               unit="percentunit", decimals=0,
               thresholds=steps(("yellow", T["cpu_warn"]), ("red", T["cpu_crit"]))), 4, 4)
    g.add(stat("iowait", [target('connwatch_host_cpu_iowait_ratio{%s}' % SEL_H, "{{instance}}")],
               unit="percentunit", decimals=0, thresholds=steps(("yellow", T["iowait"]))), 4, 4)
    g.add(stat("Memory available",
               [target('connwatch_host_memory_available_bytes{%s} / connwatch_host_memory_total_bytes{%s}'
                       % (SEL_H, SEL_H), "{{instance}}")],
               unit="percentunit", decimals=0, thresholds=steps(("yellow", 0.1), ("green", 0.2), base="red")), 4, 4)
    g.add(stat("TCP connections",
               [target('sum by (instance) (connwatch_host_tcp_connections{state!="listen", %s})' % SEL_H,
                       "{{instance}}")],
               thresholds=steps(("yellow", T["conns"]))), 4, 4)
    g.add(stat("TCP retransmits (5m)",
               [target('rate(connwatch_host_tcp_segments_retransmitted_total{%s}[5m])\n/\n'
                       'rate(connwatch_host_tcp_segments_sent_total{%s}[5m]) > -1' % (SEL_H, SEL_H),
                       "{{instance}}")],
               unit="percentunit", decimals=2, thresholds=steps(("yellow", T["retrans"]))), 4, 4)
    g.add(stat("Runs skipped (1h)",
               [target('sum by (instance) (increase(connwatch_check_runs_skipped_total{%s}[1h]))' % SEL_H,
                       "{{instance}}")],
               decimals=0, thresholds=steps(("yellow", 1)),
               description="Check runs skipped because the previous run was still going."), 4, 4)
    return dashboard("connwatch-overview", "connwatch / Connection health",
                     "Every service watched by connwatch, one traffic light per layer.", g.panels,
                     links=[{"title": "Drill-down", "type": "link", "url": "/d/connwatch-target/connwatch-target",
                             "keepTime": True, "includeVars": True, "icon": "dashboard", "targetBlank": False,
                             "tags": [], "asDropdown": False, "tooltip": ""}])


def drilldown():
    g = Grid()
    rate = "$__rate_interval"
    g.row("Status")
    g.add(timeseries("Check success",
                     [target('connwatch_check_success{%s}' % SEL_T, "{{check}} {{target}}")],
                     min_=0, max_=1, draw="line"), 12, 7)
    g.add(timeseries("Failures by reason",
                     [target('sum by (check, target, reason) (increase(connwatch_check_failures_total{%s}[%s]))'
                             % (SEL_T, rate), "{{check}} {{target}} {{reason}}")],
                     draw="bars", stack=True,
                     description="Failed runs per interval by the layer that broke (reason label)."), 12, 7)

    g.row("Network")
    g.add(timeseries("ICMP round trip",
                     [target('connwatch_icmp_rtt_avg_seconds{%s}' % SEL_T, "avg {{target}}", "A"),
                      target('connwatch_icmp_rtt_max_seconds{%s}' % SEL_T, "max {{target}}", "B"),
                      target('histogram_quantile(0.95, sum by (le, target) (rate(connwatch_icmp_rtt_seconds_bucket{%s}[%s])))'
                             % (SEL_T, rate), "p95 {{target}}", "C")],
                     unit="s", min_=0, thresholds=steps(("red", T["rtt"])),
                     description="Alert: average above %gs for 30s." % T["rtt"]), 8, 8)
    g.add(timeseries("Packet loss",
                     [target('connwatch_icmp_loss_ratio{%s}' % SEL_T, "{{target}}")],
                     unit="percentunit", min_=0, max_=1, thresholds=steps(("red", T["loss"])),
                     description="Alert: above %g%% for 1 min." % (T["loss"] * 100)), 8, 8)
    g.add(timeseries("Jitter",
                     [target('connwatch_icmp_jitter_seconds{%s}' % SEL_T, "{{target}}")],
                     unit="s", min_=0, thresholds=steps(("red", T["jitter"]))), 8, 8)
    g.add(timeseries("TCP connect and kernel RTT",
                     [target('connwatch_tcp_connect_seconds{%s}' % SEL_T, "connect {{target}}", "A"),
                      target('connwatch_tcp_rtt_seconds{%s}' % SEL_T, "srtt {{target}}", "B")],
                     unit="s", min_=0), 12, 7)
    g.add(timeseries("DNS lookup",
                     [target('connwatch_dns_lookup_seconds{%s}' % SEL_T, "{{target}}")], unit="s", min_=0), 12, 7)

    g.row("HTTP")
    g.add(timeseries("HTTP phases",
                     [target('connwatch_http_phase_seconds{%s}' % SEL_T, "{{phase}} {{target}}")],
                     unit="s", min_=0, stack=True,
                     description="Where the time of one request goes: dns, connect, tls, processing "
                                 "(server think time), transfer."), 12, 8)
    g.add(timeseries("HTTP status code",
                     [target('connwatch_http_status_code{%s}' % SEL_T, "{{target}}")],
                     thresholds=steps(("red", T["http5xx"])),
                     description="Alert: 5xx for 1 min."), 6, 8)
    g.add(timeseries("HTTP total time",
                     [target('connwatch_http_duration_seconds{%s}' % SEL_T, "{{target}}")], unit="s", min_=0), 6, 8)

    g.row("TLS")
    g.add(timeseries("Days to certificate expiry",
                     [target('(connwatch_tls_verified_chain_expiry_timestamp_seconds{%s} - time()) / 86400' % SEL_T,
                             "verified chain {{target}}", "A"),
                      target('(connwatch_tls_earliest_cert_expiry_timestamp_seconds{%s} - time()) / 86400' % SEL_T,
                             "any presented {{target}}", "B"),
                      target('(connwatch_cert_file_expiry_timestamp_seconds{%s} - time()) / 86400' % SEL_T,
                             "file {{path}} {{subject}}", "C")],
                     unit="none", thresholds=steps(("orange", T["cert_crit"]), ("green", T["cert_warn"]), base="red"),
                     description="Alerts use the verified chain (warning < %g days, critical < %g). 'Any "
                                 "presented' includes stale cross-signed certificates the server still sends."
                                 % (T["cert_warn"], T["cert_crit"])), 12, 7)
    g.add(timeseries("Clock skew (server Date - local)",
                     [target('connwatch_clock_skew_seconds{%s}' % SEL_T, "{{target}}")], unit="s",
                     thresholds=steps(("green", -T["skew"]), ("red", T["skew"]), base="red")), 6, 7)
    g.add(timeseries("TLS verified",
                     [target('connwatch_tls_verify_success{%s}' % SEL_T, "{{target}}")], min_=0, max_=1), 6, 7)

    g.row("Host TCP")
    g.add(timeseries("TCP retransmit ratio",
                     [target('rate(connwatch_host_tcp_segments_retransmitted_total{%s}[%s])\n/\n'
                             'rate(connwatch_host_tcp_segments_sent_total{%s}[%s]) > -1'
                             % (SEL_H, rate, SEL_H, rate), "{{instance}}")],
                     unit="percentunit", min_=0, thresholds=steps(("red", T["retrans"])),
                     description="Retransmitted / sent segments of the host; alert above %g%% over 5 min."
                                 % (T["retrans"] * 100)), 8, 8)
    g.add(timeseries("TCP connection states",
                     [target('connwatch_host_tcp_connections{state!="listen", %s}' % SEL_H, "{{state}}", "A"),
                      target('sum by (instance) (connwatch_host_tcp_connections{state!="listen", %s})' % SEL_H,
                             "total {{instance}}", "B")],
                     stack=False, thresholds=steps(("red", T["conns"])), min_=0), 8, 8)
    g.add(timeseries("SYN retransmits, listen drops, timeouts",
                     [target('rate(connwatch_host_tcp_syn_retransmits_total{%s}[%s])' % (SEL_H, rate), "SYN retransmits", "A"),
                      target('rate(connwatch_host_tcp_listen_drops_total{%s}[%s])' % (SEL_H, rate), "listen drops", "B"),
                      target('rate(connwatch_host_tcp_listen_overflows_total{%s}[%s])' % (SEL_H, rate), "accept queue overflows", "C"),
                      target('rate(connwatch_host_tcp_timeouts_total{%s}[%s])' % (SEL_H, rate), "RTO timeouts", "D")],
                     unit="ops", min_=0), 8, 8)

    g.row("Database")
    g.add(timeseries("MySQL connections vs max",
                     [target('connwatch_mysql_threads_connected{%s}' % SEL_T, "connected {{target}}", "A"),
                      target('connwatch_mysql_threads_running{%s}' % SEL_T, "running {{target}}", "B"),
                      target('connwatch_mysql_max_used_connections{%s}' % SEL_T, "max used {{target}}", "C"),
                      target('connwatch_mysql_max_connections{%s}' % SEL_T, "max_connections {{target}}", "D")],
                     min_=0, thresholds=steps(("red", T["db_threads"])),
                     description="Alert: more than %d connected for 5 min." % T["db_threads"]), 8, 8)
    g.add(timeseries("MySQL connection usage",
                     [target('connwatch_mysql_connection_usage_ratio{%s}' % SEL_T, "{{target}}")],
                     unit="percentunit", min_=0, max_=1, thresholds=steps(("red", T["db_usage"])),
                     description="threads_connected / max_connections; keep 15-20 % headroom."), 8, 8)
    g.add(timeseries("Lock waits, deadlocks, slow queries",
                     [target('rate(connwatch_mysql_row_lock_waits_total{%s}[%s])' % (SEL_T, rate), "row lock waits/s {{target}}", "A"),
                      target('increase(connwatch_mysql_deadlocks_total{%s}[5m])' % SEL_T, "deadlocks (5m) {{target}}", "B"),
                      target('rate(connwatch_mysql_slow_queries_total{%s}[%s])' % (SEL_T, rate), "slow queries/s {{target}}", "C"),
                      target('rate(connwatch_mysql_row_lock_time_seconds_total{%s}[%s])' % (SEL_T, rate), "lock wait s/s {{target}}", "D")],
                     min_=0), 8, 8)

    g.row("Cache")
    g.add(timeseries("Redis hit ratio",
                     [target('rate(connwatch_redis_keyspace_hits_total{%s}[%s])\n/\n'
                             '(rate(connwatch_redis_keyspace_hits_total{%s}[%s]) + rate(connwatch_redis_keyspace_misses_total{%s}[%s]) > 0)'
                             % (SEL_T, rate, SEL_T, rate, SEL_T, rate), "{{target}}")],
                     unit="percentunit", min_=0, max_=1,
                     thresholds=steps(("green", T["hit"]), base="red"),
                     description="Hits / lookups; empty while there are no lookups. Alert below %g%% of "
                                 "connwatch_redis_hit_ratio (the last interval) for %s."
                                 % (T["hit"] * 100, RULES[("ConnwatchRedisHitRatioLow", "warning")]["for"])), 6, 8)
    g.add(timeseries("Evictions and expirations",
                     [target('rate(connwatch_redis_evicted_keys_total{%s}[%s])' % (SEL_T, rate), "evicted {{target}}", "A"),
                      target('rate(connwatch_redis_expired_keys_total{%s}[%s])' % (SEL_T, rate), "expired {{target}}", "B")],
                     unit="ops", min_=0), 6, 8)
    g.add(timeseries("Redis clients",
                     [target('connwatch_redis_connected_clients{%s}' % SEL_T, "connected {{target}}", "A"),
                      target('connwatch_redis_max_clients{%s}' % SEL_T, "maxclients {{target}}", "B"),
                      target('rate(connwatch_redis_rejected_connections_total{%s}[%s])' % (SEL_T, rate),
                             "rejected/s {{target}}", "C")], min_=0), 6, 8)
    g.add(timeseries("Redis memory",
                     [target('connwatch_redis_memory_used_bytes{%s}' % SEL_T, "used {{target}}", "A"),
                      target('connwatch_redis_memory_max_bytes{%s}' % SEL_T, "maxmemory {{target}}", "B")],
                     unit="bytes", min_=0, description="maxmemory 0 means no limit."), 6, 8)

    g.row("Host")
    g.add(timeseries("CPU",
                     [target('connwatch_host_cpu_usage_ratio{%s}' % SEL_H, "busy {{instance}}", "A"),
                      target('connwatch_host_cpu_iowait_ratio{%s}' % SEL_H, "iowait {{instance}}", "B")],
                     unit="percentunit", min_=0, max_=1,
                     thresholds=steps(("yellow", T["cpu_warn"]), ("red", T["cpu_crit"])),
                     description="Alerts: busy > %g%% (warning), > %g%% (critical); iowait > %g%%, for 5 min."
                                 % (T["cpu_warn"] * 100, T["cpu_crit"] * 100, T["iowait"] * 100)), 8, 8)
    g.add(timeseries("Memory",
                     [target('connwatch_host_memory_available_bytes{%s}' % SEL_H, "available {{instance}}", "A"),
                      target('connwatch_host_memory_total_bytes{%s}' % SEL_H, "total {{instance}}", "B")],
                     unit="bytes", min_=0), 8, 8)
    g.add(timeseries("Available memory trend",
                     [target('deriv(connwatch_host_memory_available_bytes{%s}[2m])' % SEL_H, "{{instance}}")],
                     unit="Bps", thresholds=steps(("green", T["mem_slope"]), base="red"),
                     description="Slope of available memory; alert when it falls faster than 1 GiB/min "
                                 "for 5 min (a leak)."), 8, 8)
    return dashboard("connwatch-target", "connwatch / Target drill-down",
                     "One service and target through every layer: network, HTTP, TLS, host TCP, MySQL, "
                     "Redis, host.", g.panels,
                     links=[{"title": "Connection health", "type": "link",
                             "url": "/d/connwatch-overview/connwatch-overview", "keepTime": True,
                             "includeVars": False, "icon": "dashboard", "targetBlank": False, "tags": [],
                             "asDropdown": False, "tooltip": ""}])


def main():
    check = "--check" in sys.argv[1:]
    bad = 0
    for name, fn in [("connwatch-overview.json", overview), ("connwatch-target.json", drilldown)]:
        text = json.dumps(fn(), indent=2, sort_keys=False) + "\n"
        path = os.path.join(HERE, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    old = f.read()
            except OSError:
                old = None
            if old != text:
                print("gen_dashboards: %s is out of date (rules changed?): run %s" % (name, sys.argv[0]),
                      file=sys.stderr)
                bad = 1
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    return bad


if __name__ == "__main__":
    sys.exit(main())
