/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.c - message templates of connwatch-relay: {{placeholder}}
 * substitution, the default zh/en texts, UTF-8-safe cutting.
 *
 * Deliberately small: no conditionals, no loops. A message is a title
 * (rendered once per notification) and an alert block (rendered per alert).
 * One rule stands in for conditionals: a line whose placeholders all render
 * empty is left out ("- service: " for an alert without a service label).
 * Pure functions; any thread.
 */
#include "alerts/relay.h"

#include <stdio.h>
#include <string.h>

static const char *const names[] = {
    "status",  "status_text",   "alertname",    "severity",    "service",
    "layer",   "instance",      "summary",      "description", "starts_at",
    "ends_at", "generator_url", "external_url", "receiver",    "count",
    "firing",  "resolved",      "group_key",    NULL,
};

const char *cw_tmpl_default_title(enum cw_lang lang)
{
    return lang == CW_LANG_ZH ? "[{{status_text}}] {{alertname}} ({{count}})"
                              : "[{{status_text}}] {{alertname}} ({{count}})";
}

const char *cw_tmpl_default_alert(enum cw_lang lang)
{
    if (lang == CW_LANG_ZH)
        return "**{{alertname}}** {{status_text}}\n\n"
               "- 级别: {{severity}}\n"
               "- 服务: {{service}}\n"
               "- 层: {{layer}}\n"
               "- 实例: {{instance}}\n"
               "- 摘要: {{summary}}\n"
               "- 开始: {{starts_at}}\n"
               "- [查看]({{generator_url}})\n";
    return "**{{alertname}}** {{status_text}}\n\n"
           "- severity: {{severity}}\n"
           "- service: {{service}}\n"
           "- layer: {{layer}}\n"
           "- instance: {{instance}}\n"
           "- summary: {{summary}}\n"
           "- started: {{starts_at}}\n"
           "- [source]({{generator_url}})\n";
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

/* time_text() appends an RFC 3339 time as "2025-01-01 08:00:00 UTC". */
static int time_text(struct cw_buf *out, const char *t)
{
    size_t len = strlen(t);

    if (len < 19 || t[10] != 'T' || strncmp(t, "0001-", 5) == 0)
        return len < 19 && strncmp(t, "0001-", 5) != 0 ? cw_buf_adds(out, t) : CW_OK;
    if (cw_buf_add(out, t, 10) != CW_OK || cw_buf_addc(out, ' ') != CW_OK ||
        cw_buf_add(out, t + 11, 8) != CW_OK)
        return CW_ENOMEM;
    return t[len - 1] == 'Z' ? cw_buf_adds(out, " UTC") : cw_buf_adds(out, t + 19);
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

static int render_one(struct cw_buf *out, const char *name, size_t nlen, const struct cw_am_msg *m,
                      const struct cw_am_alert *a, enum cw_lang lang)
{
    char tmp[128];
    size_t i, n = 0;

#define IS(s) (nlen == strlen(s) && memcmp(name, s, nlen) == 0)
    if (nlen > 6 && memcmp(name, "label:", 6) == 0) {
        if (nlen - 6 >= sizeof(tmp))
            return CW_OK;
        memcpy(tmp, name + 6, nlen - 6);
        tmp[nlen - 6] = '\0';
        return cw_buf_adds(out, pick(m, a, tmp));
    }
    if (nlen > 11 && memcmp(name, "annotation:", 11) == 0) {
        if (nlen - 11 >= sizeof(tmp))
            return CW_OK;
        memcpy(tmp, name + 11, nlen - 11);
        tmp[nlen - 11] = '\0';
        return cw_buf_adds(out, pick_annotation(m, a, tmp));
    }
    if (IS("status"))
        return cw_buf_adds(out, a != NULL ? a->status : m->status);
    if (IS("status_text"))
        return cw_buf_adds(out, status_text(a != NULL ? a->status : m->status, lang));
    if (IS("alertname") || IS("severity") || IS("service") || IS("layer") || IS("instance")) {
        memcpy(tmp, name, nlen);
        tmp[nlen] = '\0';
        return cw_buf_adds(out, pick(m, a, tmp));
    }
    if (IS("summary") || IS("description")) {
        memcpy(tmp, name, nlen);
        tmp[nlen] = '\0';
        return cw_buf_adds(out, pick_annotation(m, a, tmp));
    }
    if (IS("starts_at") || IS("ends_at")) {
        const struct cw_am_alert *x = a != NULL ? a : (m->nalerts > 0 ? &m->alerts[0] : NULL);

        if (x == NULL)
            return CW_OK;
        return time_text(out, IS("starts_at") ? x->starts_at : x->ends_at);
    }
    if (IS("generator_url")) {
        const struct cw_am_alert *x = a != NULL ? a : (m->nalerts > 0 ? &m->alerts[0] : NULL);

        return x != NULL ? cw_buf_adds(out, x->generator_url) : CW_OK;
    }
    if (IS("external_url"))
        return cw_buf_adds(out, m->external_url);
    if (IS("receiver"))
        return cw_buf_adds(out, m->receiver);
    if (IS("group_key"))
        return cw_buf_adds(out, m->group_key);
    if (IS("count"))
        return cw_buf_addf(out, "%zu", m->nalerts);
    if (IS("firing") || IS("resolved")) {
        for (i = 0; i < m->nalerts; i++)
            n += strcmp(m->alerts[i].status, "firing") == 0;
        return cw_buf_addf(out, "%zu", IS("firing") ? n : m->nalerts - n);
    }
#undef IS
    return CW_OK;
}

int cw_tmpl_render(struct cw_buf *out, const char *tmpl, const struct cw_am_msg *m,
                   const struct cw_am_alert *a, enum cw_lang lang)
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
                out->len = line_start;
                if (out->data != NULL)
                    out->data[out->len] = '\0';
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
        rc = render_one(out, name, (size_t)(end - name), m, a, lang);
        nph++;
        nfull += out->len > before;
        p = close + 2;
    }
    if (rc == CW_OK && nph > 0 && nfull == 0) {
        out->len = line_start;
        if (out->data != NULL)
            out->data[out->len] = '\0';
    }
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
