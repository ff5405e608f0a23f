/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.c - message templates of connwatch-relay: {{placeholder}}
 * substitution, the default zh/en texts, UTF-8-safe cutting.
 *
 * Deliberately small: no conditionals, no loops. A message is a title
 * (rendered once per notification) and an alert block (rendered per alert).
 * Every channel has a size limit, so rendering is bounded: placeholder
 * values can be cut to a cap (on a character, with "…"), and
 * cw_tmpl_digest() renders alert blocks one at a time against a budget,
 * summarising the rest as "… and N more alerts (F firing, R resolved)",
 * never rendering the whole notification first.
 * One rule stands in for conditionals: a line whose placeholders all render
 * empty is left out ("- service: " for an alert without a service label).
 * Pure functions; any thread.
 */
#include "alerts/relay/template.h"

#include "exporter/core/clock.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const names[] = {
    "status",
    "status_text",
    "alertname",
    "severity",
    "severity_text",
    "service",
    "layer",
    "layer_text",
    "instance",
    "target",
    "reason",
    "reason_text",
    "reason_short",
    "target_or_instance",
    "instance_if_no_target",
    "summary",
    "description",
    "starts_at",
    "ends_at",
    "duration",
    "generator_url",
    "external_url",
    "receiver",
    "count",
    "firing",
    "resolved",
    "group_key",
    "more",
    NULL,
};

const char *cw_tmpl_default_title(enum cw_lang lang)
{
    (void)lang; /* one title for both: {{status_text}} is what the language changes */
    return "[{{status_text}}] {{alertname}} ({{count}})";
}

/* The target label names what is checked; instance is where connwatch was
 * scraped, so it stands in only for alerts without a target (host alerts). */
const char *cw_tmpl_default_alert(enum cw_lang lang)
{
    if (lang == CW_LANG_ZH)
        return "**{{alertname}}** {{status_text}}\n\n"
               "- 级别: {{severity_text}}\n"
               "- 服务: {{service}}\n"
               "- 目标: {{target}}\n"
               "- 实例: {{instance_if_no_target}}\n"
               "- 层级: {{layer_text}}\n"
               "- 原因: {{reason_text}}\n"
               "- 摘要: {{summary}}\n"
               "- 开始时间: {{starts_at}}\n"
               "- [查看]({{generator_url}})\n";
    return "**{{alertname}}** {{status_text}}\n\n"
           "- severity: {{severity}}\n"
           "- service: {{service}}\n"
           "- target: {{target}}\n"
           "- instance: {{instance_if_no_target}}\n"
           "- layer: {{layer_text}}\n"
           "- reason: {{reason_text}}\n"
           "- summary: {{summary}}\n"
           "- since: {{starts_at}}\n"
           "- [source]({{generator_url}})\n";
}

/* No summary: the rules' summaries say "… failing", which a recovery is not. */
const char *cw_tmpl_default_resolved(enum cw_lang lang)
{
    if (lang == CW_LANG_ZH)
        return "**{{alertname}}** {{status_text}}\n\n"
               "- 服务: {{service}}\n"
               "- 目标: {{target}}\n"
               "- 实例: {{instance_if_no_target}}\n"
               "- 层级: {{layer_text}}\n"
               "- 持续: {{duration}}\n"
               "- 恢复时间: {{ends_at}}\n";
    return "**{{alertname}}** {{status_text}}\n\n"
           "- service: {{service}}\n"
           "- target: {{target}}\n"
           "- instance: {{instance_if_no_target}}\n"
           "- layer: {{layer_text}}\n"
           "- lasted: {{duration}}\n"
           "- resolved: {{ends_at}}\n";
}

/* Named zones accepted by time_zone: the ones without daylight saving time
 * (tzdata 2024), so that a fixed offset is their wall clock. Zones with DST
 * are served by "local" (the host's zone). */
static const struct {
    const char *name;
    int offset;
    const char *abbr;
} zones[] = {
    {"Asia/Shanghai", 8 * 3600, "CST"},
    {"Asia/Chongqing", 8 * 3600, "CST"},
    {"PRC", 8 * 3600, "CST"},
    {"Asia/Hong_Kong", 8 * 3600, "HKT"},
    {"Asia/Macau", 8 * 3600, "CST"},
    {"Asia/Taipei", 8 * 3600, "CST"},
    {"Asia/Singapore", 8 * 3600, "+08"},
    {"Asia/Tokyo", 9 * 3600, "JST"},
    {"Asia/Seoul", 9 * 3600, "KST"},
    {"Asia/Kolkata", 19800, "IST"},
};

bool cw_tz_parse(const char *s, struct cw_tz *tz, const char **why)
{
    size_t i, n = strlen(s);
    int h, m;

    memset(tz, 0, sizeof(*tz));
    if (strcmp(s, "local") == 0) {
        tz->local = true;
        return true;
    }
    if (strcmp(s, "UTC") == 0 || strcmp(s, "Z") == 0 || strcmp(s, "Etc/UTC") == 0) {
        snprintf(tz->name, sizeof(tz->name), "UTC");
        return true;
    }
    for (i = 0; i < CW_ARRAY_LEN(zones); i++) {
        if (strcmp(s, zones[i].name) == 0) {
            tz->offset = zones[i].offset;
            snprintf(tz->name, sizeof(tz->name), "%s", zones[i].abbr);
            return true;
        }
    }
    /* ±HH:MM or ±HHMM */
    if ((n == 6 || n == 5) && (s[0] == '+' || s[0] == '-') && isdigit((unsigned char)s[1]) &&
        isdigit((unsigned char)s[2]) && (n == 5 || s[3] == ':') &&
        isdigit((unsigned char)s[n - 2]) && isdigit((unsigned char)s[n - 1])) {
        h = (s[1] - '0') * 10 + (s[2] - '0');
        m = (s[n - 2] - '0') * 10 + (s[n - 1] - '0');
        if (m < 60 && h * 60 + m <= 14 * 60) {
            tz->offset = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
            snprintf(tz->name, sizeof(tz->name), "%c%02d:%02d", s[0], h, m);
            return true;
        }
    }
    *why = "want local, UTC, an offset such as +08:00, or a zone without daylight saving "
           "time: Asia/Shanghai, Asia/Hong_Kong, Asia/Taipei, Asia/Singapore, Asia/Tokyo, "
           "Asia/Seoul, Asia/Kolkata (see relay.md)";
    return false;
}

int cw_severity_rank(const char *sev)
{
    if (sev == NULL)
        return 0;
    if (strcmp(sev, "critical") == 0)
        return 3;
    if (strcmp(sev, "warning") == 0)
        return 2;
    if (strcmp(sev, "info") == 0)
        return 1;
    return 0;
}

size_t cw_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t n;

    if (len <= max)
        return len;
    n = max;
    /* Step back over continuation bytes to the start of the cut character. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static const char *status_text(const char *status, enum cw_lang lang)
{
    bool firing = strcmp(status, "firing") == 0;

    if (lang == CW_LANG_ZH)
        return firing ? "告警" : "已恢复";
    return firing ? "FIRING" : "RESOLVED";
}

static bool digits(const char *s, size_t n, int *v)
{
    size_t i;

    *v = 0;
    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

/* rfc3339_seconds() reads "2025-01-01T08:00:00[.123](Z|+08:00)" into
 * seconds since the epoch; false for anything else. */
static bool rfc3339_seconds(const char *t, int64_t *sec)
{
    size_t n = strlen(t), i = 19;
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;

    if (n < 20 || n > 40 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
        t[13] != ':' || t[16] != ':' || !digits(t, 4, &y) || !digits(t + 5, 2, &mo) ||
        !digits(t + 8, 2, &d) || !digits(t + 11, 2, &h) || !digits(t + 14, 2, &mi) ||
        !digits(t + 17, 2, &se))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    if (t[i] == '.') {
        for (i++; i < n && isdigit((unsigned char)t[i]); i++)
            ;
    }
    if ((t[i] == 'Z' || t[i] == 'z') && i + 1 == n) {
        sign = 0;
    } else if ((t[i] == '+' || t[i] == '-') && i + 6 == n && t[i + 3] == ':' &&
               digits(t + i + 1, 2, &oh) && digits(t + i + 4, 2, &om) && oh < 24 && om < 60) {
        sign = t[i] == '-' ? -1 : 1;
    } else {
        return false;
    }
    *sec = cw_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se -
           sign * (oh * 3600 + om * 60);
    return true;
}

/* time_text() writes an RFC 3339 time as the wall clock of 'tz' (NULL: UTC),
 * "2025-01-01 16:00:00 CST", into buf; anything else is returned as it came
 * (the zero time as ""). */
static const char *time_text(const char *t, const struct cw_tz *tz, char *buf, size_t len)
{
    const char *name = "UTC";
    char off[16];
    int64_t sec;
    time_t tt;
    struct tm tm;

    if (strncmp(t, "0001-", 5) == 0)
        return "";
    if (!rfc3339_seconds(t, &sec))
        return t;
    if (tz != NULL && tz->local) {
        tt = (time_t)sec;
        if (localtime_r(&tt, &tm) == NULL)
            return t;
        name = tm.tm_zone;
        if (name == NULL || name[0] == '\0') {
            int g = (int)(tm.tm_gmtoff % 86400);

            snprintf(off, sizeof(off), "%c%02d:%02d", g < 0 ? '-' : '+', abs(g) / 3600 % 24,
                     abs(g) % 3600 / 60);
            name = off;
        }
    } else {
        tt = (time_t)(sec + (tz != NULL ? tz->offset : 0));
        if (gmtime_r(&tt, &tm) == NULL)
            return t;
        if (tz != NULL)
            name = tz->name;
    }
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d %s", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, name);
    return buf;
}

/* duration_text() writes how long a resolved alert lasted, two units at
 * most ("5 分钟 30 秒", "2h 5m"); "" when it is not resolved or a time is
 * missing. */
static const char *duration_text(const struct cw_am_alert *x, enum cw_lang lang, char *buf,
                                 size_t len)
{
    static const char *const zh[] = {"天", "小时", "分钟", "秒"};
    static const char *const en[] = {"d", "h", "m", "s"};
    const char *const *u = lang == CW_LANG_ZH ? zh : en;
    const char *sp = lang == CW_LANG_ZH ? " " : "";
    int64_t a, b, d, v[4];
    size_t i;

    if (x == NULL || strcmp(x->status, "resolved") != 0 || !rfc3339_seconds(x->starts_at, &a) ||
        !rfc3339_seconds(x->ends_at, &b) || b < a)
        return "";
    d = b - a;
    v[0] = d / 86400;
    v[1] = d % 86400 / 3600;
    v[2] = d % 3600 / 60;
    v[3] = d % 60;
    for (i = 0; i < 3 && v[i] == 0; i++)
        ;
    if (i < 3 && v[i + 1] != 0)
        snprintf(buf, len, "%lld%s%s %lld%s%s", (long long)v[i], sp, u[i], (long long)v[i + 1], sp,
                 u[i + 1]);
    else
        snprintf(buf, len, "%lld%s%s", (long long)v[i], sp, u[i]);
    return buf;
}

/* first_nonempty(): the alert's label, else the common label. */
static const char *pick(const struct cw_am_msg *m, const struct cw_am_alert *a, const char *name)
{
    const char *v = "";

    if (a != NULL)
        v = cw_am_label(a, name);
    if (v[0] == '\0' && m->common_labels != NULL) {
        const char *c = json_string_value(json_object_get(m->common_labels, name));

        v = c != NULL ? c : "";
    }
    if (v[0] == '\0' && a == NULL && m->nalerts > 0)
        v = cw_am_label(&m->alerts[0], name);
    return v;
}

static const char *pick_annotation(const struct cw_am_msg *m, const struct cw_am_alert *a,
                                   const char *name)
{
    const struct cw_am_alert *x = a != NULL ? a : (m->nalerts > 0 ? &m->alerts[0] : NULL);

    return x != NULL ? cw_am_annotation(x, name) : "";
}

/* severity_text() is the severity as a Chinese reader says it; en and
 * unknown values as they are. */
static const char *severity_text(const char *sev, enum cw_lang lang)
{
    if (lang != CW_LANG_ZH)
        return sev;
    if (strcmp(sev, "critical") == 0)
        return "严重";
    if (strcmp(sev, "warning") == 0)
        return "警告";
    if (strcmp(sev, "info") == 0)
        return "提示";
    return sev;
}

int cw_tmpl_add_value(struct cw_buf *out, const char *s, size_t len, size_t max)
{
    size_t cut;
    int rc;

    if (max == 0 || len <= max)
        return cw_buf_add(out, s, len);
    /* Room for the ellipsis (3 bytes in UTF-8) inside the cap. */
    cut = cw_utf8_cut(s, len, max > 3 ? max - 3 : 0);
    rc = cw_buf_add(out, s, cut);
    return rc == CW_OK ? cw_buf_adds(out, "…") : rc;
}

int cw_tmpl_more(struct cw_buf *out, const struct cw_am_msg *m, size_t from, enum cw_lang lang)
{
    size_t left = from < m->nalerts ? m->nalerts - from : 0;
    size_t firing = cw_am_firing(m, from);

    if (left == 0)
        return CW_OK;
    if (lang == CW_LANG_ZH)
        return cw_buf_addf(out,
                           "…另有 %zu 条告警未显示（%zu 条告警，%zu 条已恢复），详见 Alertmanager",
                           left, firing, left - firing);
    return cw_buf_addf(out, "… and %zu more alerts (%zu firing, %zu resolved), see Alertmanager",
                       left, firing, left - firing);
}

static int render_one(struct cw_buf *out, const char *name, size_t nlen, const struct cw_am_msg *m,
                      const struct cw_am_alert *a, enum cw_lang lang, const struct cw_tmpl_opts *o)
{
    const struct cw_am_alert *x = a != NULL ? a : (m->nalerts > 0 ? &m->alerts[0] : NULL);
    size_t max = o != NULL ? o->value_max : 0;
    const char *v = NULL;
    char tmp[128], num[64];

#define IS(s) (nlen == strlen(s) && memcmp(name, s, nlen) == 0)
    if (nlen > 6 && memcmp(name, "label:", 6) == 0) {
        if (nlen - 6 >= sizeof(tmp))
            return CW_OK;
        memcpy(tmp, name + 6, nlen - 6);
        tmp[nlen - 6] = '\0';
        v = pick(m, a, tmp);
    } else if (nlen > 11 && memcmp(name, "annotation:", 11) == 0) {
        if (nlen - 11 >= sizeof(tmp))
            return CW_OK;
        memcpy(tmp, name + 11, nlen - 11);
        tmp[nlen - 11] = '\0';
        v = pick_annotation(m, a, tmp);
    } else if (IS("status")) {
        v = a != NULL ? a->status : m->status;
    } else if (IS("status_text")) {
        v = status_text(a != NULL ? a->status : m->status, lang);
    } else if (IS("alertname") || IS("severity") || IS("service") || IS("layer") ||
               IS("instance") || IS("target") || IS("reason")) {
        memcpy(tmp, name, nlen);
        tmp[nlen] = '\0';
        v = pick(m, a, tmp);
    } else if (IS("layer_text")) {
        v = cw_layer_words(pick(m, a, "layer"), lang);
    } else if (IS("reason_text") || IS("reason_short")) {
        v = cw_reason_words(pick(m, a, "reason"), lang);
        if (IS("reason_short")) {
            /* without the hint in parentheses: "连接超时", "connection timed out" */
            const char *h = strstr(v, lang == CW_LANG_ZH ? "（" : " (");

            if (h != NULL && (size_t)(h - v) < sizeof(tmp)) {
                memcpy(tmp, v, (size_t)(h - v));
                tmp[h - v] = '\0';
                v = tmp;
            }
        }
    } else if (IS("target_or_instance") || IS("instance_if_no_target")) {
        v = pick(m, a, "target");
        if (v[0] == '\0')
            v = pick(m, a, "instance");
        else if (IS("instance_if_no_target"))
            v = "";
    } else if (IS("duration")) {
        v = duration_text(x, lang, num, sizeof(num));
    } else if (IS("severity_text")) {
        v = severity_text(pick(m, a, "severity"), lang);
    } else if (IS("summary") || IS("description")) {
        /* zh: the rules' summary_zh / description_zh, else the English one */
        memcpy(tmp, name, nlen);
        memcpy(tmp + nlen, "_zh", 4);
        v = lang == CW_LANG_ZH ? pick_annotation(m, a, tmp) : "";
        if (v[0] == '\0') {
            tmp[nlen] = '\0';
            v = pick_annotation(m, a, tmp);
        }
    } else if (IS("starts_at") || IS("ends_at")) {
        if (x == NULL)
            return CW_OK;
        v = time_text(IS("starts_at") ? x->starts_at : x->ends_at, o != NULL ? o->tz : NULL, num,
                      sizeof(num));
    } else if (IS("generator_url")) {
        v = x != NULL ? x->generator_url : "";
    } else if (IS("external_url")) {
        v = m->external_url;
    } else if (IS("receiver")) {
        v = m->receiver;
    } else if (IS("group_key")) {
        v = m->group_key;
    } else if (IS("count")) {
        snprintf(num, sizeof(num), "%zu", m->nalerts);
        v = num;
    } else if (IS("firing") || IS("resolved")) {
        size_t n = cw_am_firing(m, 0);

        snprintf(num, sizeof(num), "%zu", IS("firing") ? n : m->nalerts - n);
        v = num;
    } else if (IS("more")) {
        /* Group level only: the alerts a one-alert text leaves out. */
        if (a != NULL || m->nalerts < 2)
            return CW_OK;
        if (o != NULL && o->more_out != NULL)
            out = o->more_out;
        return cw_buf_addf(out, lang == CW_LANG_ZH ? "…另有%zu条" : " … and %zu more",
                           m->nalerts - 1);
    }
#undef IS
    if (v == NULL)
        return CW_OK;
    return cw_tmpl_add_value(out, v, strlen(v), max);
}

int cw_tmpl_render_opts(struct cw_buf *out, const char *tmpl, const struct cw_am_msg *m,
                        const struct cw_am_alert *a, enum cw_lang lang,
                        const struct cw_tmpl_opts *o)
{
    const char *p = tmpl;
    size_t line_start = out->len;
    unsigned nph = 0, nfull = 0;
    int rc = CW_OK;

    while (*p != '\0' && rc == CW_OK) {
        const char *open = strstr(p, "{{");
        const char *nl = strchr(p, '\n');
        const char *close, *name, *end;
        size_t before;

        if (nl != NULL && (open == NULL || nl < open)) {
            /* end of a line: drop it when it had placeholders, all empty */
            if (nph > 0 && nfull == 0) {
                rc = cw_buf_setlen(out, line_start);
            } else {
                rc = cw_buf_add(out, p, (size_t)(nl - p + 1));
            }
            p = nl + 1;
            line_start = out->len;
            nph = nfull = 0;
            continue;
        }
        if (open == NULL)
            return cw_buf_adds(out, p);
        rc = cw_buf_add(out, p, (size_t)(open - p));
        close = strstr(open + 2, "}}");
        if (close == NULL || rc != CW_OK)
            return rc != CW_OK ? rc : cw_buf_adds(out, open);
        name = open + 2;
        end = close;
        while (name < end && *name == ' ')
            name++;
        while (end > name && end[-1] == ' ')
            end--;
        before = out->len;
        rc = render_one(out, name, (size_t)(end - name), m, a, lang, o);
        nph++;
        nfull += out->len > before;
        p = close + 2;
    }
    if (rc == CW_OK && nph > 0 && nfull == 0)
        rc = cw_buf_setlen(out, line_start);
    return rc;
}

int cw_tmpl_render(struct cw_buf *out, const char *tmpl, const struct cw_am_msg *m,
                   const struct cw_am_alert *a, enum cw_lang lang)
{
    return cw_tmpl_render_opts(out, tmpl, m, a, lang, NULL);
}

static size_t cost_of(const struct cw_digest *d, const char *s, size_t len)
{
    return d->cost != NULL ? d->cost(s, len) : len;
}

int cw_tmpl_digest(struct cw_buf *out, const char *tmpl, const struct cw_am_msg *m,
                   enum cw_lang lang, const struct cw_digest *d, size_t *shown)
{
    struct cw_tmpl_opts o = {.value_max = d->value_max, .tz = d->tz};
    struct cw_buf piece, more;
    size_t avail = d->budget, reserve, i, c;
    int rc;

    *shown = 0;
    /* The last line, written for every alert left out: an upper bound of
     * what it costs whenever it is needed. */
    cw_buf_init(&more, 4096);
    cw_buf_init(&piece, d->piece_limit != 0 ? d->piece_limit : 1u << 20);
    rc = cw_tmpl_more(&more, m, 0, lang);
    if (rc == CW_OK && d->sep != NULL)
        rc = cw_buf_adds(&more, d->sep);
    reserve = cost_of(d, cw_buf_str(&more), more.len);
    for (i = 0; i < m->nalerts && rc == CW_OK; i++) {
        cw_buf_clear(&piece);
        rc = cw_tmpl_render_opts(&piece,
                                 d->resolved_tmpl != NULL &&
                                         strcmp(m->alerts[i].status, "resolved") == 0
                                     ? d->resolved_tmpl
                                     : tmpl,
                                 m, &m->alerts[i], lang, &o);
        if (rc == CW_OK && d->sep != NULL)
            rc = cw_buf_adds(&piece, d->sep);
        if (rc == CW_ETOOBIG) {
            rc = CW_OK; /* a block larger than any budget: summarised with the rest */
            break;
        }
        if (rc != CW_OK)
            break;
        c = cost_of(d, cw_buf_str(&piece), piece.len);
        if (c > avail || (i + 1 < m->nalerts && avail - c < reserve))
            break;
        rc = cw_buf_add(out, cw_buf_str(&piece), piece.len);
        avail -= c;
    }
    *shown = i;
    if (rc == CW_OK && i < m->nalerts) {
        if (reserve > avail) {
            rc = CW_ETOOBIG; /* not even the count fits: the caller's budget is too small */
        } else {
            rc = cw_tmpl_more(out, m, i, lang);
            if (rc == CW_OK && d->sep != NULL)
                rc = cw_buf_adds(out, d->sep);
        }
    }
    cw_buf_reset(&piece);
    cw_buf_reset(&more);
    return rc;
}

bool cw_tmpl_check(const char *tmpl, const char **why)
{
    const char *p = tmpl;

    while ((p = strstr(p, "{{")) != NULL) {
        const char *close = strstr(p + 2, "}}");
        const char *name = p + 2, *end;
        size_t i, nlen;
        bool known = false;

        if (close == NULL) {
            *why = "\"{{\" without a closing \"}}\"";
            return false;
        }
        end = close;
        while (name < end && *name == ' ')
            name++;
        while (end > name && end[-1] == ' ')
            end--;
        nlen = (size_t)(end - name);
        for (i = 0; names[i] != NULL && !known; i++)
            known = strlen(names[i]) == nlen && memcmp(names[i], name, nlen) == 0;
        if (!known && ((nlen > 6 && memcmp(name, "label:", 6) == 0) ||
                       (nlen > 11 && memcmp(name, "annotation:", 11) == 0)))
            known = true;
        if (!known) {
            *why = "unknown placeholder (see relay.md for the list)";
            return false;
        }
        p = close + 2;
    }
    return true;
}
