/* SPDX-License-Identifier: Apache-2.0 */
/*
 * health.c - the connection health page (health.h).
 *
 * One pass copies every instance's status and published batch; each check
 * then gets a state (failing when its last run failed, degraded when it
 * succeeded but a figure crossed one of SPEC.md's default alert thresholds,
 * pending before its first result) and a layer: a failure for a network
 * reason belongs to the network layer whatever the kind (an http check that
 * times out is a network fault, not an HTTP one), and the check's own layer
 * then reads "not reached". A cell shows the worst state of its checks; the
 * service's verdict is its lowest failing layer (else its lowest degraded
 * one). The page is HTML only, refreshed by <meta refresh>.
 */
#include "health.h"

#include "core/metric.h"
#include "core/strindex.h"
#include "instance.h"
#include "settings.h"
#include "version.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* States, in increasing order of what a cell shows when its checks differ. */
enum hstate { H_NONE = 0, H_OK, H_PENDING, H_BLOCKED, H_DEGRADED, H_FAILING, H_COUNT };

static const char *const state_class[H_COUNT] = {"none",    "ok",       "pending",
                                                 "blocked", "degraded", "failing"};

/* ---- words in both languages ------------------------------------------- */

struct words {
    const char *state[H_COUNT];
    const char *layer[CW_LAYER_COUNT];
    const char *title, *service, *verdict, *checks, *check, *target, *layer_h, *state_h, *since,
        *last_run, *figures, *last_failure, *actions, *probe, *metrics, *all_ok, *this_host, *took,
        *ago, *none_yet, *no_checks, *refresh, *summary, *other_lang, *other_href;
};

static const struct words en = {
    .state = {"—", "ok", "pending", "not reached", "degraded", "failing"},
    .layer = {"network", "TLS", "HTTP", "database", "cache", "host"},
    .title = "Connection health",
    .service = "service",
    .verdict = "verdict",
    .checks = "Checks",
    .check = "check",
    .target = "target",
    .layer_h = "layer",
    .state_h = "state",
    .since = "since",
    .last_run = "last run",
    .figures = "figures",
    .last_failure = "last failure",
    .actions = "links",
    .probe = "probe now",
    .metrics = "Metrics",
    .all_ok = "all layers ok",
    .this_host = "this host",
    .took = "took",
    .ago = "ago",
    .none_yet = "none",
    .no_checks = "No checks are configured.",
    .refresh = "This page refreshes itself every %d s.",
    .summary = "%zu services: %zu ok, %zu degraded, %zu failing, %zu pending",
    .other_lang = "中文",
    .other_href = "?lang=zh",
};

static const struct words zh = {
    .state = {"—", "正常", "等待首次结果", "未到达", "降级", "故障"},
    .layer = {"网络层", "TLS 层", "应用层 (HTTP)", "数据库层", "缓存层", "主机"},
    .title = "连接健康",
    .service = "服务",
    .verdict = "结论",
    .checks = "检查项",
    .check = "检查",
    .target = "目标",
    .layer_h = "层",
    .state_h = "状态",
    .since = "自",
    .last_run = "最近一次",
    .figures = "指标",
    .last_failure = "最近一次故障",
    .actions = "链接",
    .probe = "立即探测",
    .metrics = "指标 (Metrics)",
    .all_ok = "各层正常",
    .this_host = "本机",
    .took = "耗时",
    .ago = "前",
    .none_yet = "无",
    .no_checks = "未配置任何检查。",
    .refresh = "本页每 %d 秒自动刷新。",
    .summary = "共 %zu 个服务：%zu 正常，%zu 降级，%zu 故障，%zu 等待",
    .other_lang = "English",
    .other_href = "?lang=en",
};

enum cw_lang cw_health_lang(const char *query, const char *accept)
{
    double best_zh = -1, best_en = -1;

    if (query != NULL && strcmp(query, "zh") == 0)
        return CW_LANG_ZH;
    if (query != NULL && strcmp(query, "en") == 0)
        return CW_LANG_EN;
    /* Accept-Language: tag[;q=V], ... (RFC 9110 12.5.4). */
    while (accept != NULL && *accept != '\0') {
        const char *end = strchr(accept, ',');
        size_t len = end != NULL ? (size_t)(end - accept) : strlen(accept);
        const char *semi = memchr(accept, ';', len);
        size_t taglen = semi != NULL ? (size_t)(semi - accept) : len;
        double q = 1;

        while (taglen > 0 && (*accept == ' ' || *accept == '\t')) {
            accept++;
            taglen--;
            len--;
        }
        while (taglen > 0 && (accept[taglen - 1] == ' ' || accept[taglen - 1] == '\t'))
            taglen--;
        if (semi != NULL) {
            const char *p = semi + 1;

            while (p < accept + len && (*p == ' ' || *p == '\t'))
                p++;
            if (p + 2 <= accept + len && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                char num[8] = "";
                size_t n = (size_t)(accept + len - (p + 2));

                memcpy(num, p + 2, n < sizeof(num) - 1 ? n : sizeof(num) - 1);
                q = strtod(num, NULL);
                if (!(q >= 0 && q <= 1))
                    q = 0;
            }
        }
        if (taglen >= 2 && strncasecmp(accept, "zh", 2) == 0 && (taglen == 2 || accept[2] == '-'))
            best_zh = q > best_zh ? q : best_zh;
        else if (taglen >= 2 && strncasecmp(accept, "en", 2) == 0 &&
                 (taglen == 2 || accept[2] == '-'))
            best_en = q > best_en ? q : best_en;
        accept = end != NULL ? end + 1 : NULL;
    }
    return best_zh > 0 && best_zh > best_en ? CW_LANG_ZH : CW_LANG_EN;
}

/* ---- figures and thresholds --------------------------------------------- */

enum unit { U_MS, U_PCT, U_NUM, U_DAYS_LEFT, U_ABS_S };

/* One figure a kind's batch yields. A succeeding check is degraded when the
 * figure is above 'above' or below 'below' (NAN: no bound): the defaults of
 * SPEC.md's alert table, counted at the layer 'layer'. */
struct figure {
    const char *kind;
    const char *metric;
    const char *label; /* escaped label text the samples must contain, or NULL */
    enum unit unit;
    bool take_min;  /* several samples: the smallest counts (else their sum) */
    bool zero_none; /* 0 means "no value" (the status code of a failed request) */
    const char *en, *zh;
    double above, below;
    enum cw_layer layer;
};

#define NONE NAN
static const struct figure figures[] = {
    {"icmp", "connwatch_icmp_rtt_avg_seconds", NULL, U_MS, false, false, "rtt", "延迟", 0.2, NONE,
     CW_LAYER_NETWORK},
    {"icmp", "connwatch_icmp_loss_ratio", NULL, U_PCT, false, false, "loss", "丢包", 0.05, NONE,
     CW_LAYER_NETWORK},
    {"icmp", "connwatch_icmp_jitter_seconds", NULL, U_MS, false, false, "jitter", "抖动", 0.2, NONE,
     CW_LAYER_NETWORK},
    {"tcp", "connwatch_tcp_connect_seconds", NULL, U_MS, false, false, "connect", "建连", NONE,
     NONE, CW_LAYER_NETWORK},
    {"tcp", "connwatch_tcp_rtt_seconds", NULL, U_MS, false, false, "kernel rtt", "内核 RTT", 0.2,
     NONE, CW_LAYER_NETWORK},
    {"dns", "connwatch_dns_lookup_seconds", NULL, U_MS, false, false, "lookup", "解析", NONE, NONE,
     CW_LAYER_NETWORK},
    {"dns", "connwatch_dns_answers", NULL, U_NUM, false, false, "answers", "应答", NONE, NONE,
     CW_LAYER_NETWORK},
    {"http", "connwatch_http_status_code", NULL, U_NUM, false, true, "status", "状态码", NONE, NONE,
     CW_LAYER_HTTP},
    {"http", "connwatch_http_duration_seconds", NULL, U_MS, false, false, "total", "总耗时", NONE,
     NONE, CW_LAYER_HTTP},
    {NULL, "connwatch_tls_earliest_cert_expiry_timestamp_seconds", NULL, U_DAYS_LEFT, true, false,
     "cert expires in", "证书剩余", NONE, 30, CW_LAYER_TLS},
    {NULL, "connwatch_clock_skew_seconds", NULL, U_ABS_S, false, false, "clock skew", "时钟偏差", 1,
     NONE, CW_LAYER_TLS},
    {"tls_file", "connwatch_cert_file_expiry_timestamp_seconds", NULL, U_DAYS_LEFT, true, false,
     "cert expires in", "证书剩余", NONE, 30, CW_LAYER_TLS},
    {"mysql", "connwatch_mysql_threads_connected", NULL, U_NUM, false, false, "connections",
     "连接数", 500, NONE, CW_LAYER_DATABASE},
    {"mysql", "connwatch_mysql_connection_usage_ratio", NULL, U_PCT, false, false, "pool usage",
     "连接使用率", 0.8, NONE, CW_LAYER_DATABASE},
    {"redis", "connwatch_redis_hit_ratio", NULL, U_PCT, false, false, "hit ratio", "命中率", NONE,
     0.8, CW_LAYER_CACHE},
    {"redis", "connwatch_redis_connected_clients", NULL, U_NUM, false, false, "clients", "客户端",
     NONE, NONE, CW_LAYER_CACHE},
    {"host", "connwatch_host_cpu_usage_ratio", NULL, U_PCT, false, false, "cpu", "CPU", 0.85, NONE,
     CW_LAYER_HOST},
    {"host", "connwatch_host_cpu_iowait_ratio", NULL, U_PCT, false, false, "iowait", "iowait", 0.8,
     NONE, CW_LAYER_HOST},
    {"host", "connwatch_host_tcp_retransmit_ratio", NULL, U_PCT, false, false, "retransmits",
     "重传率", 0.05, NONE, CW_LAYER_HOST},
    {"host", "connwatch_host_tcp_connections", NULL, U_NUM, false, false, "tcp connections",
     "TCP 连接数", 5000, NONE, CW_LAYER_HOST},
};
#undef NONE

/* One check as the page sees it. */
struct hcheck {
    struct cw_instance_status st;
    struct cw_batch *batch; /* owned reference, or NULL */
    enum hstate state;
    enum cw_layer layer;       /* the cell its state counts in */
    enum cw_layer degraded_at; /* H_DEGRADED: the cell of the crossed figure */
    bool probe;                /* /probe may check its address */
    size_t row;
};

/* One service row: a cell per layer. */
struct hcell {
    enum hstate state;
    size_t worst;  /* index of the check that gave the state */
    size_t n, nok; /* checks counted, and of those ok */
};
struct hrow {
    const char *service; /* borrowed from an instance */
    struct hcell cell[CW_LAYER_COUNT];
};

struct page {
    const struct cw_health_page *p;
    const struct words *w;
    struct cw_buf *out;
    struct hcheck *checks; /* owned */
    size_t nchecks;
    struct hrow *rows; /* owned */
    size_t nrows;
    ssize_t host; /* index of the host check, or -1 */
    int rc;
};

static const char *reason_words(const struct page *pg, enum cw_reason r)
{
    return cw_reason_words(cw_reason_label(r), pg->p->lang);
}

/* check_words() is a failing check's cause: its reason explained, or the
 * server refusing new clients (max_connections, maxclients). */
static const char *check_words(const struct page *pg, const struct hcheck *c)
{
    const char *full = cw_server_full(c->st.kind, c->st.reason, c->st.last_error);

    return full != NULL ? cw_server_full_words(full, pg->p->lang) : reason_words(pg, c->st.reason);
}

static double figure_value(const struct figure *f, const struct cw_batch *b, time_t wall,
                           bool *found)
{
    struct cw_batch_agg agg;
    double v;

    *found = cw_batch_value(b, f->metric, f->label, &agg);
    if (!*found)
        return 0;
    v = f->take_min ? agg.min : agg.sum;
    if (f->zero_none && v == 0)
        *found = false;
    if (f->unit == U_DAYS_LEFT)
        v = (v - (double)wall) / 86400.0;
    if (f->unit == U_ABS_S)
        v = fabs(v);
    return v;
}

static bool figure_applies(const struct figure *f, const struct hcheck *c)
{
    return f->kind == NULL || strcmp(f->kind, c->st.kind) == 0;
}

/* classify() gives a check its state and layer. */
static void classify(struct page *pg, struct hcheck *c)
{
    const struct cw_check_kind *k = c->st.check;

    c->layer = k->layer;
    c->degraded_at = k->layer;
    if (!c->st.has_run) {
        c->state = H_PENDING;
        return;
    }
    if (c->st.reason != CW_REASON_NONE) {
        c->state = H_FAILING;
        c->layer = cw_result_layer(k, c->st.reason, c->st.last_error);
        return;
    }
    c->state = H_OK;
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        const struct figure *f = &figures[i];
        bool found;
        double v;

        if (!figure_applies(f, c))
            continue;
        v = figure_value(f, c->batch, pg->p->wall, &found);
        if (!found || isnan(v))
            continue;
        if ((!isnan(f->above) && v > f->above) || (!isnan(f->below) && v < f->below)) {
            c->state = H_DEGRADED;
            c->degraded_at = f->layer;
            return;
        }
    }
}

static void cell_count(struct hcell *cell, enum hstate st, size_t check)
{
    if (cell->n == 0 || st > cell->state) {
        cell->state = st;
        cell->worst = check;
    }
    cell->n++;
    cell->nok += st == H_OK;
}

/* place() counts a check in the cells of its row. */
static void place(struct page *pg, size_t i)
{
    struct hcheck *c = &pg->checks[i];
    struct hrow *r = &pg->rows[c->row];

    if (c->state == H_DEGRADED) {
        cell_count(&r->cell[c->degraded_at], H_DEGRADED, i);
        if (c->degraded_at != c->layer)
            cell_count(&r->cell[c->layer], H_OK, i);
        return;
    }
    cell_count(&r->cell[c->layer], c->state, i);
    if (c->state == H_FAILING && c->layer != c->st.check->layer)
        cell_count(&r->cell[c->st.check->layer], H_BLOCKED, i);
}

/* ---- output helpers ------------------------------------------------------ */

static void put(struct page *pg, const char *s)
{
    pg->rc |= cw_buf_adds(pg->out, s);
}

static void puth(struct page *pg, const char *s)
{
    pg->rc |= cw_buf_add_html(pg->out, s);
}

static void putf(struct page *pg, const char *fmt, ...) CW_PRINTF(2, 3);
static void putf(struct page *pg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    pg->rc |= cw_buf_vaddf(pg->out, fmt, ap);
    va_end(ap);
}

/* put_when() writes a monotonic moment as local wall time and how long ago. */
static void put_when(struct page *pg, cw_mono at)
{
    cw_duration ago = pg->p->now > at ? pg->p->now - at : 0;
    time_t t = pg->p->wall - (time_t)(ago / CW_S(1));
    char when[64] = "", d[32];
    struct tm tm;

    if (localtime_r(&t, &tm) != NULL)
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
    cw_duration_format(ago - ago % CW_S(1), d, sizeof(d));
    putf(pg, "<time datetime=\"%lld\">%s</time> (%s %s)", (long long)t, when, d, pg->w->ago);
}

/* put_pct_encoded() writes 's' percent-encoded for a query value. */
static void put_pct_encoded(struct page *pg, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0' && pg->rc == CW_OK; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~')
            pg->rc |= cw_buf_addc(pg->out, (char)ch);
        else
            putf(pg, "%%%c%c", hex[ch >> 4], hex[ch & 15]);
    }
}

int cw_health_figures(struct cw_buf *out, const char *kind, const struct cw_batch *b, time_t wall,
                      enum cw_lang lang, unsigned flags, bool *over_any)
{
    const char *sep = "";
    int rc = CW_OK;

    if (over_any != NULL)
        *over_any = false;
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        const struct figure *f = &figures[i];
        bool found, over;
        double v;

        if (f->kind != NULL && strcmp(f->kind, kind) != 0)
            continue;
        v = figure_value(f, b, wall, &found);
        if (!found || isnan(v))
            continue;
        over = (!isnan(f->above) && v > f->above) || (!isnan(f->below) && v < f->below);
        if (over && over_any != NULL)
            *over_any = true;
        if ((flags & CW_FIG_ONLY_OVER) && !over)
            continue;
        rc |= cw_buf_adds(out, sep);
        if (flags & CW_FIG_HTML)
            rc |= cw_buf_addf(out, "<span class=\"fig%s\" data-metric=\"%s\">", over ? " over" : "",
                              f->metric);
        rc |= cw_buf_addf(out, "%s ", lang == CW_LANG_ZH ? f->zh : f->en);
        switch (f->unit) {
        case U_MS:
            rc |= cw_buf_addf(out, "%.1f ms", v * 1000);
            break;
        case U_PCT:
            rc |= cw_buf_addf(out, "%.1f %%", v * 100);
            break;
        case U_NUM:
            rc |= cw_buf_addf(out, "%.0f", v);
            break;
        case U_DAYS_LEFT:
            rc |= cw_buf_addf(out, "%.0f %s", v, lang == CW_LANG_ZH ? "天" : "days");
            break;
        case U_ABS_S:
            rc |= cw_buf_addf(out, "%.2f s", v);
            break;
        }
        if (flags & CW_FIG_HTML)
            rc |= cw_buf_adds(out, "</span>");
        sep = " · ";
    }
    return rc == CW_OK ? CW_OK : cw_buf_error(out);
}

enum cw_layer cw_health_over_layer(const char *kind, const struct cw_batch *b, time_t wall,
                                   enum cw_layer dflt)
{
    for (size_t i = 0; i < sizeof(figures) / sizeof(figures[0]); i++) {
        const struct figure *f = &figures[i];
        bool found;
        double v;

        if (f->kind != NULL && strcmp(f->kind, kind) != 0)
            continue;
        v = figure_value(f, b, wall, &found);
        if (found && !isnan(v) &&
            ((!isnan(f->above) && v > f->above) || (!isnan(f->below) && v < f->below)))
            return f->layer;
    }
    return dflt;
}

static void put_figures(struct page *pg, const struct hcheck *c, bool only_over)
{
    pg->rc |= cw_health_figures(pg->out, c->st.kind, c->batch, pg->p->wall, pg->p->lang,
                                CW_FIG_HTML | (only_over ? CW_FIG_ONLY_OVER : 0), NULL);
}

/* put_cell_detail() writes what a cell says beside its state. */
static void put_cell_detail(struct page *pg, const struct hcell *cell)
{
    const struct hcheck *c = &pg->checks[cell->worst];

    switch (cell->state) {
    case H_FAILING:
        putf(pg, "<br><span class=\"reason\" data-reason=\"%s\">%s</span><br><small>%s ",
             cw_reason_label(c->st.reason), check_words(pg, c), pg->w->since);
        put_when(pg, c->st.state_since);
        put(pg, "</small>");
        break;
    case H_BLOCKED:
        putf(pg, "<br><small>%s: %s</small>", pg->w->layer[c->layer], check_words(pg, c));
        break;
    case H_DEGRADED:
        put(pg, "<br><small>");
        put_figures(pg, c, true);
        put(pg, "</small>");
        break;
    default:
        break;
    }
    if (cell->n > 1)
        putf(pg, "<br><small class=\"count\">%zu/%zu %s</small>", cell->nok, cell->n,
             pg->w->state[H_OK]);
}

static void put_state(struct page *pg, enum hstate st)
{
    putf(pg, "<span class=\"state\">%s</span>", pg->w->state[st]);
}

/* put_verdict() names the service's lowest failing layer, else its lowest
 * degraded one. */
static void put_verdict(struct page *pg, const struct hrow *r)
{
    enum hstate want[] = {H_FAILING, H_DEGRADED, H_PENDING};

    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        for (int l = 0; l < CW_LAYER_COUNT; l++) {
            const struct hcell *cell = &r->cell[l];
            const struct hcheck *c = &pg->checks[cell->worst];

            if (cell->n == 0 || cell->state != want[k])
                continue;
            putf(pg, "<td class=\"verdict %s\" data-state=\"%s\" data-layer=\"%s\">",
                 state_class[want[k]], state_class[want[k]], cw_layer_label((enum cw_layer)l));
            putf(pg, "<strong>%s</strong>: %s", pg->w->layer[l], pg->w->state[want[k]]);
            if (want[k] == H_FAILING)
                putf(pg, " — %s", check_words(pg, c));
            if (want[k] == H_DEGRADED) {
                put(pg, " — ");
                put_figures(pg, c, true);
            }
            put(pg, "</td>");
            return;
        }
    }
    putf(pg, "<td class=\"verdict ok\" data-state=\"ok\">%s</td>", pg->w->all_ok);
}

static enum hstate row_state(const struct hrow *r)
{
    enum hstate worst = H_NONE;

    for (int l = 0; l < CW_LAYER_COUNT; l++)
        worst = r->cell[l].n > 0 && r->cell[l].state > worst ? r->cell[l].state : worst;
    return worst == H_BLOCKED ? H_FAILING : worst;
}

static void put_rows(struct page *pg)
{
    size_t count[H_COUNT] = {0};

    for (size_t i = 0; i < pg->nrows; i++)
        count[row_state(&pg->rows[i])]++;
    put(pg, "<p class=\"summary\">");
    putf(pg, pg->w->summary, pg->nrows, count[H_OK], count[H_DEGRADED], count[H_FAILING],
         count[H_PENDING]);
    putf(pg, "</p>\n<table id=\"services\">\n<tr><th>%s</th><th>%s</th>", pg->w->service,
         pg->w->verdict);
    for (int l = 0; l < CW_LAYER_COUNT; l++)
        putf(pg, "<th>%s</th>", pg->w->layer[l]);
    put(pg, "</tr>\n");
    for (size_t i = 0; i < pg->nrows && pg->rc == CW_OK; i++) {
        const struct hrow *r = &pg->rows[i];

        put(pg, "<tr class=\"service\" data-service=\"");
        puth(pg, r->service);
        put(pg, "\"><th>");
        puth(pg, r->service[0] != '\0' ? r->service : pg->w->this_host);
        put(pg, "</th>");
        put_verdict(pg, r);
        for (int l = 0; l < CW_LAYER_COUNT; l++) {
            const struct hcell *cell = &r->cell[l];

            if (cell->n == 0) {
                putf(pg, "<td class=\"cell none\" data-layer=\"%s\" data-state=\"none\">—</td>",
                     cw_layer_label((enum cw_layer)l));
                continue;
            }
            putf(pg,
                 "<td class=\"cell %s\" data-layer=\"%s\" data-state=\"%s\"><a "
                 "href=\"#check-%zu\">",
                 state_class[cell->state], cw_layer_label((enum cw_layer)l),
                 state_class[cell->state], cell->worst + 1);
            put_state(pg, cell->state);
            put(pg, "</a>");
            put_cell_detail(pg, cell);
            put(pg, "</td>");
        }
        put(pg, "</tr>\n");
    }
    put(pg, "</table>\n");
}

static void put_check(struct page *pg, size_t i)
{
    const struct hcheck *c = &pg->checks[i];

    putf(pg, "<tr id=\"check-%zu\" class=\"check %s\" data-state=\"%s\" data-kind=\"%s\"><td>",
         i + 1, state_class[c->state], state_class[c->state], c->st.kind);
    puth(pg, c->st.service[0] != '\0' ? c->st.service : pg->w->this_host);
    putf(pg, "</td><td>%s</td><td class=\"target\">", c->st.kind);
    puth(pg, c->st.target[0] != '\0' ? c->st.target : "—");
    putf(pg, "</td><td>%s</td><td class=\"%s\">", pg->w->layer[c->layer], state_class[c->state]);
    put_state(pg, c->state);
    if (c->state == H_FAILING)
        putf(pg, ": <span class=\"reason\" data-reason=\"%s\">%s</span>",
             cw_reason_label(c->st.reason), check_words(pg, c));
    if (c->st.has_run) {
        putf(pg, "<br><small>%s ", pg->w->since);
        put_when(pg, c->st.state_since);
        put(pg, "</small>");
    }
    put(pg, "</td><td>");
    if (c->st.has_run) {
        put_when(pg, c->st.last_run_at);
        putf(pg, "<br><small>%s %.1f ms</small>", pg->w->took, (double)c->st.last_took / 1e6);
    } else {
        put(pg, pg->w->none_yet);
    }
    put(pg, "</td><td class=\"figures\">");
    put_figures(pg, c, false);
    put(pg, "</td><td class=\"last-failure\">");
    if (c->st.last_failure_at != 0) {
        put(pg, "<code>");
        puth(pg, c->st.last_failure_error);
        put(pg, "</code><br><small>");
        put_when(pg, c->st.last_failure_at);
        put(pg, "</small>");
    } else {
        put(pg, pg->w->none_yet);
    }
    put(pg, "</td><td>");
    if (c->probe) {
        putf(pg, "<a class=\"probe\" href=\"/probe?check=%s&amp;target=", c->st.kind);
        put_pct_encoded(pg, c->st.address);
        putf(pg, "\">%s</a>", pg->w->probe);
    }
    put(pg, "</td></tr>\n");
}

static void put_checks(struct page *pg)
{
    putf(pg,
         "<h2>%s</h2>\n<table id=\"checks\">\n<tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
         "<th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>\n",
         pg->w->checks, pg->w->service, pg->w->check, pg->w->target, pg->w->layer_h, pg->w->state_h,
         pg->w->last_run, pg->w->figures, pg->w->last_failure, pg->w->actions);
    for (size_t i = 0; i < pg->nchecks && pg->rc == CW_OK; i++)
        put_check(pg, i);
    put(pg, "</table>\n");
}

static const char style[] =
    "<style>\n"
    "body{font-family:sans-serif;margin:1em 2em;color:#222}\n"
    "table{border-collapse:collapse;margin-bottom:1.5em}\n"
    "th,td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}\n"
    ".ok{background:#c8e6c9}.degraded{background:#ffe082}.failing{background:#ef9a9a}\n"
    ".pending,.blocked{background:#e0e0e0}.none{background:#fff;color:#999}\n"
    "td.cell a{color:inherit;font-weight:bold}.fig.over{font-weight:bold;color:#8d2f00}\n"
    "small{color:#444}code{white-space:pre-wrap}\n"
    "</style>\n";

static void put_head(struct page *pg)
{
    putf(pg, "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">\n",
         pg->p->lang == CW_LANG_ZH ? "zh-CN" : "en");
    if (pg->p->refresh_s > 0)
        putf(pg, "<meta http-equiv=\"refresh\" content=\"%d\">\n", pg->p->refresh_s);
    putf(pg, "<title>connwatch — %s</title>\n%s</head><body>\n<h1>connwatch — %s</h1>\n",
         pg->w->title, style, pg->w->title);
    putf(pg, "<p>%s (revision %s) · <a href=\"", CW_VERSION, CW_REVISION);
    puth(pg, pg->p->telemetry_path);
    putf(pg,
         "\">%s</a> · <a href=\"/-/healthy\">/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a>"
         " · /probe?check=KIND&amp;target=T (probe.allow) · <a href=\"%s\" hreflang=\"%s\">%s</a>"
         "</p>\n",
         pg->w->metrics, pg->w->other_href, pg->p->lang == CW_LANG_ZH ? "en" : "zh",
         pg->w->other_lang);
    if (pg->p->refresh_s > 0) {
        put(pg, "<p><small>");
        putf(pg, pg->w->refresh, pg->p->refresh_s);
        put(pg, "</small></p>\n");
    }
}

/* collect() copies the checks' status and builds the rows. */
static int collect(struct page *pg, const struct cw_settings *s)
{
    struct cw_strindex ix;
    int rc = CW_OK;

    cw_strindex_init(&ix);
    pg->checks = calloc(s->ninst > 0 ? s->ninst : 1, sizeof(*pg->checks));
    pg->rows = calloc(s->ninst > 0 ? s->ninst : 1, sizeof(*pg->rows));
    if (pg->checks == NULL || pg->rows == NULL)
        return CW_ENOMEM;
    for (size_t i = 0; i < s->ninst && rc == CW_OK; i++) {
        struct hcheck *c = &pg->checks[pg->nchecks++];
        void *found = NULL;

        cw_instance_status(s->inst[i], &c->st);
        c->batch = cw_instance_snapshot(s->inst[i]);
        c->probe = c->st.address != NULL && c->st.check->probe_option != NULL &&
                   cw_settings_probe_rule(s, c->st.check, c->st.address) != NULL;
        classify(pg, c);
        if (c->st.check->layer == CW_LAYER_HOST) {
            pg->host = (ssize_t)i;
            continue;
        }
        rc = cw_strindex_add(&ix, c->st.service, &pg->rows[pg->nrows], &found);
        if (rc != CW_OK)
            break;
        if (found == NULL)
            pg->rows[pg->nrows++].service = c->st.service;
        c->row = found != NULL ? (size_t)((struct hrow *)found - pg->rows) : pg->nrows - 1;
        place(pg, i);
    }
    cw_strindex_reset(&ix);
    if (rc == CW_OK && pg->host >= 0) {
        /* The host connwatch runs on is on the path of every service: its
         * state shows in each row (or in a row of its own without services). */
        if (pg->nrows == 0)
            pg->rows[pg->nrows++].service = "";
        for (size_t r = 0; r < pg->nrows; r++) {
            pg->checks[pg->host].row = r;
            place(pg, (size_t)pg->host);
        }
    }
    return rc;
}

int cw_health_render(struct cw_buf *out, const struct cw_settings *s,
                     const struct cw_health_page *p)
{
    struct page pg = {.p = p, .w = p->lang == CW_LANG_ZH ? &zh : &en, .out = out, .host = -1};
    int rc = CW_OK;

    put_head(&pg);
    if (s != NULL)
        rc = collect(&pg, s);
    if (rc == CW_OK && pg.nchecks == 0)
        putf(&pg, "<p>%s</p>\n", pg.w->no_checks);
    if (rc == CW_OK && pg.nchecks > 0) {
        put_rows(&pg);
        put_checks(&pg);
    }
    put(&pg, "</body></html>\n");
    for (size_t i = 0; i < pg.nchecks; i++)
        cw_batch_unref(pg.checks[i].batch);
    free(pg.checks);
    free(pg.rows);
    if (rc != CW_OK)
        return rc;
    return pg.rc == CW_OK ? CW_OK : cw_buf_error(out) != CW_OK ? cw_buf_error(out) : CW_ENOMEM;
}
