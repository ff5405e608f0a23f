/* SPDX-License-Identifier: Apache-2.0 */
/*
 * receiver_dingtalk.c - receiver kind "dingtalk": a DingTalk custom robot (自定义机器人).
 *
 * Markdown messages, @mobiles for firing critical alerts, signed URLs
 * (REFERENCE.md §5.3), the errcode in the HTTP 200 answer read and obeyed
 * (130101 = throttled: back off), and bodies kept under the 20,000-byte
 * limit: several queued notifications are merged into one message when the
 * rate limit would otherwise make them wait, a notification too large alone
 * is summarised (rendered alert by alert against the budget, long values
 * cut on a character, the rest counted as "… and N more alerts"), so any
 * accepted notification makes a message. HTTP 4xx and errcode 460101
 * (too long) are rejections no retry can fix (CW_DELIVER_REJECTED).
 *
 * Called on the receiver's delivery thread; the state is read-only after
 * configure().
 */
#include "alerts/relay/outbound.h"
#include "alerts/relay/receiver.h"
#include "alerts/relay/sign.h"
#include "alerts/relay/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_LIMIT      (1u << 20)
#define VALUE_MAX       512  /* bytes of one placeholder value in an alert block */
#define TITLE_VALUE_MAX 200  /* ... in the heading and the title */
#define TITLE_MAX       500  /* bytes of the title */
#define LINK_MAX        1000 /* a longer externalURL is not linked */
#define DINGTALK_LIMIT  20000

struct dingtalk_state {
    struct cw_secret url_file;
    struct cw_secret url;
    struct cw_secret secret_file;
    struct cw_secret secret;
    struct cw_strlist at_mobiles_on_critical;
    int64_t rate_limit;
    cw_duration rate_window;
    cw_duration throttle_backoff;
    int64_t max_bytes;
};

static const struct cw_opt dingtalk_opts[] = {
    CW_OPT("url_file", CW_OPT_T_SECRET_FILE, struct dingtalk_state, url_file, NULL, 0, 0, 0),
    CW_OPT("url", CW_OPT_T_SECRET, struct dingtalk_state, url, NULL, 0, 0, 0),
    CW_OPT("secret_file", CW_OPT_T_SECRET_FILE, struct dingtalk_state, secret_file, NULL, 0, 0, 0),
    CW_OPT("secret", CW_OPT_T_SECRET, struct dingtalk_state, secret, NULL, 0, 0, 0),
    CW_OPT("at_mobiles_on_critical", CW_OPT_T_STRING_LIST, struct dingtalk_state,
           at_mobiles_on_critical, NULL, 0, 0, 0),
    CW_OPT("rate_limit", CW_OPT_T_INT, struct dingtalk_state, rate_limit, "20", 1, 1000, 0),
    CW_OPT("rate_limit_window", CW_OPT_T_DURATION, struct dingtalk_state, rate_window, "1m",
           CW_MS(100), CW_S(3600), 0),
    CW_OPT("throttle_backoff", CW_OPT_T_DURATION, struct dingtalk_state, throttle_backoff, "10m",
           CW_MS(10), CW_S(3600), 0),
    CW_OPT("max_bytes", CW_OPT_T_INT, struct dingtalk_state, max_bytes, "19000", 2000, 20000, 0),
    CW_OPT_END,
};

static const char *url_of(const struct dingtalk_state *s)
{
    return s->url_file.value != NULL ? s->url_file.value : s->url.value;
}

static const char *secret_of(const struct dingtalk_state *s)
{
    return s->secret_file.value != NULL ? s->secret_file.value : s->secret.value;
}

static int dingtalk_configure(void *state, const struct cw_node *node,
                              struct cw_receiver_caps *caps, struct cw_diag *diag)
{
    struct dingtalk_state *s = state;
    const char *u;
    int rc;

    rc = cw_opts_apply(dingtalk_opts, s, node, NULL, diag);
    if (rc != CW_OK)
        return rc;
    if ((s->url_file.value != NULL) == (s->url.value != NULL)) {
        cw_diagf(diag, node, "set exactly one of url_file and url");
        return CW_ECONFIG;
    }
    u = url_of(s);
    if (strncmp(u, "https://", 8) != 0 && strncmp(u, "http://", 7) != 0) {
        cw_diagf(diag, cw_node_get(node, s->url_file.value != NULL ? "url_file" : "url"),
                 "the robot URL must start with https:// (or http://)");
        return CW_ECONFIG;
    }
    if (s->secret_file.value != NULL && s->secret.value != NULL) {
        cw_diagf(diag, cw_node_get(node, "secret"), "set at most one of secret_file and secret");
        return CW_ECONFIG;
    }
    caps->rate_limit = (unsigned)s->rate_limit;
    caps->rate_window = s->rate_window;
    caps->merge = true;
    return CW_OK;
}

static void dingtalk_release(void *state)
{
    cw_opts_release(dingtalk_opts, state);
}

static size_t escaped_len(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        n += c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' ? 2 : c < 0x20 ? 6 : 1;
    }
    return n;
}

static bool critical_firing(const struct cw_am_msg *m)
{
    size_t i;

    for (i = 0; i < m->nalerts; i++) {
        if (strcmp(m->alerts[i].status, "firing") == 0 &&
            strcmp(cw_am_label(&m->alerts[i], "severity"), "critical") == 0)
            return true;
    }
    return false;
}

/* render_msg() appends one notification when it fits in *budget (bytes once
 * JSON-escaped): a heading, the alerts that fit (cw_tmpl_digest: one block at
 * a time, values capped, the rest counted), a link to Alertmanager. Only
 * 'partial_ok' (the first notification of a message) may be summarised;
 * a later one must fit whole or is left for the next message. */
static int render_msg(struct cw_buf *text, const struct cw_am_msg *m,
                      const struct cw_deliver_ctx *ctx, size_t *budget, bool partial_ok,
                      bool *fitted)
{
    const char *title =
        ctx->title_tmpl != NULL ? ctx->title_tmpl : cw_tmpl_default_title(ctx->lang);
    const char *alert =
        ctx->alert_tmpl != NULL ? ctx->alert_tmpl : cw_tmpl_default_alert(ctx->lang);
    struct cw_tmpl_opts topts = {.value_max = TITLE_VALUE_MAX, .tz = ctx->tz};
    struct cw_buf head, alerts, foot;
    struct cw_digest d;
    size_t hc, fc, shown = 0;
    int rc;

    *fitted = false;
    cw_buf_init(&head, 64u << 10);
    cw_buf_init(&alerts, (size_t)*budget + 4096);
    cw_buf_init(&foot, 4096);
    rc = cw_buf_adds(&head, text->len > 0 ? "\n---\n\n#### " : "#### ");
    if (rc == CW_OK)
        rc = cw_tmpl_render_opts(&head, title, m, NULL, ctx->lang, &topts);
    if (rc == CW_OK && head.len > TITLE_MAX)
        rc = cw_buf_setlen(&head, cw_utf8_cut(head.data, head.len, TITLE_MAX));
    if (rc == CW_OK)
        rc = cw_buf_adds(&head, "\n\n");
    /* A link longer than any real URL is left out rather than cut. */
    if (rc == CW_OK && m->external_url[0] != '\0' && strlen(m->external_url) <= LINK_MAX)
        rc = cw_buf_addf(&foot, "[Alertmanager](%s)\n", m->external_url);
    if (rc != CW_OK)
        goto out;
    hc = escaped_len(cw_buf_str(&head), head.len);
    fc = escaped_len(cw_buf_str(&foot), foot.len);
    if (hc + fc >= *budget)
        goto out;
    d = (struct cw_digest){
        .budget = *budget - hc - fc,
        .value_max = VALUE_MAX,
        .cost = escaped_len,
        .sep = "\n",
        .piece_limit = 64u << 10,
        .tz = ctx->tz,
        .resolved_tmpl = ctx->alert_tmpl != NULL ? NULL : cw_tmpl_default_resolved(ctx->lang)};
    rc = cw_tmpl_digest(&alerts, alert, m, ctx->lang, &d, &shown);
    if (rc == CW_ETOOBIG) {
        rc = CW_OK; /* not even the count fits what is left: not in this message */
        goto out;
    }
    if (rc != CW_OK || (!partial_ok && shown < m->nalerts))
        goto out;
    rc = cw_buf_add(text, cw_buf_str(&head), head.len);
    if (rc == CW_OK)
        rc = cw_buf_add(text, cw_buf_str(&alerts), alerts.len);
    if (rc == CW_OK)
        rc = cw_buf_add(text, cw_buf_str(&foot), foot.len);
    if (rc == CW_OK) {
        *budget -= hc + fc + escaped_len(cw_buf_str(&alerts), alerts.len);
        *fitted = true;
    }
out:
    cw_buf_reset(&head);
    cw_buf_reset(&alerts);
    cw_buf_reset(&foot);
    return rc;
}

static enum cw_deliver_result dingtalk_deliver(void *state, const struct cw_deliver_ctx *ctx,
                                               struct cw_am_msg *const *msgs, size_t n,
                                               size_t *used, struct cw_deliver_info *info)
{
    struct dingtalk_state *s = state;
    struct cw_buf text, title, body, url;
    struct cw_http_out resp;
    char ts[32], sig[128];
    bool critical = false, fitted = false;
    size_t budget, i, k;
    enum cw_deliver_result res = CW_DELIVER_RETRY;
    int rc = CW_OK;

    *used = 0;
    cw_buf_init(&text, BODY_LIMIT);
    cw_buf_init(&title, 64u << 10);
    cw_buf_init(&body, BODY_LIMIT);
    cw_buf_init(&url, 8192);
    memset(&resp, 0, sizeof(resp));

    /* The title of a message with one notification; a merged message has a
     * short fixed one. */
    {
        struct cw_tmpl_opts topts = {.value_max = TITLE_VALUE_MAX, .tz = ctx->tz};

        rc = cw_tmpl_render_opts(
            &title, ctx->title_tmpl != NULL ? ctx->title_tmpl : cw_tmpl_default_title(ctx->lang),
            msgs[0], NULL, ctx->lang, &topts);
        if (rc == CW_OK && title.len > TITLE_MAX)
            rc = cw_buf_setlen(&title, cw_utf8_cut(title.data, title.len, TITLE_MAX));
    }
    /* Fixed overhead: JSON frame (300), the title once escaped (at least
     * 100 for a merged message's), mentions in the text and in atMobiles. */
    {
        size_t overhead = 300, tc = escaped_len(cw_buf_str(&title), title.len), k2;

        overhead += tc > 100 ? tc : 100;
        for (k2 = 0; k2 < s->at_mobiles_on_critical.n; k2++)
            overhead += 2 * (escaped_len(s->at_mobiles_on_critical.items[k2],
                                         strlen(s->at_mobiles_on_critical.items[k2])) +
                             8);
        budget = (size_t)s->max_bytes > overhead + 1000 ? (size_t)s->max_bytes - overhead : 1000;
    }
    for (i = 0; i < n && rc == CW_OK; i++) {
        rc = render_msg(&text, msgs[i], ctx, &budget, i == 0, &fitted);
        if (rc != CW_OK || !fitted)
            break;
        critical = critical || critical_firing(msgs[i]);
        (*used)++;
    }
    if (rc != CW_OK || *used == 0) {
        snprintf(info->detail, sizeof(info->detail), "cannot build the message: %s",
                 rc != CW_OK ? cw_strerror(rc) : "too large");
        *used = 1;
        res = CW_DELIVER_REJECTED;
        goto out;
    }
    if (*used > 1) {
        cw_buf_clear(&title);
        rc = cw_buf_addf(&title, ctx->lang == CW_LANG_ZH ? "%zu 条告警通知" : "%zu notifications",
                         *used);
    }
    if (critical && s->at_mobiles_on_critical.n > 0) {
        rc = cw_buf_adds(&text, "\n");
        for (k = 0; k < s->at_mobiles_on_critical.n && rc == CW_OK; k++)
            rc = cw_buf_addf(&text, "@%s ", s->at_mobiles_on_critical.items[k]);
    }
    if (rc == CW_OK)
        rc = cw_buf_adds(&body, "{\"msgtype\":\"markdown\",\"markdown\":{\"title\":\"");
    if (rc == CW_OK)
        rc = cw_json_escape(&body, cw_buf_str(&title), title.len);
    if (rc == CW_OK)
        rc = cw_buf_adds(&body, "\",\"text\":\"");
    if (rc == CW_OK)
        rc = cw_json_escape(&body, cw_buf_str(&text), text.len);
    if (rc == CW_OK)
        rc = cw_buf_adds(&body, "\"},\"at\":{\"atMobiles\":[");
    for (k = 0; critical && k < s->at_mobiles_on_critical.n && rc == CW_OK; k++) {
        const char *mob = s->at_mobiles_on_critical.items[k];

        rc = cw_buf_adds(&body, k > 0 ? ",\"" : "\"");
        if (rc == CW_OK)
            rc = cw_json_escape(&body, mob, strlen(mob));
        if (rc == CW_OK)
            rc = cw_buf_adds(&body, "\"");
    }
    if (rc == CW_OK)
        rc = cw_buf_adds(&body, "],\"isAtAll\":false}}");
    if (rc == CW_OK && body.len > DINGTALK_LIMIT)
        rc = CW_ETOOBIG;
    if (rc != CW_OK) {
        snprintf(info->detail, sizeof(info->detail), "cannot build the message: %s",
                 cw_strerror(rc));
        res = CW_DELIVER_REJECTED;
        goto out;
    }

    if (rc == CW_OK)
        rc = cw_buf_adds(&url, url_of(s));
    if (rc == CW_OK && secret_of(s) != NULL) {
        snprintf(ts, sizeof(ts), "%lld", (long long)(cw_now_real() / CW_MS(1)));
        rc = cw_dingtalk_sign(secret_of(s), ts, sig, sizeof(sig));
        if (rc == CW_OK)
            rc = cw_buf_addf(&url, "%ctimestamp=%s&sign=%s",
                             strchr(url_of(s), '?') != NULL ? '&' : '?', ts, sig);
    }
    if (rc != CW_OK) {
        snprintf(info->detail, sizeof(info->detail), "cannot build the request: %s",
                 cw_strerror(rc));
        goto out;
    }
    if (cw_out_request(cw_buf_str(&url), "application/json;charset=utf-8", body.data, body.len, ctx,
                       &resp, info) != CW_OK)
        goto out;
    if (resp.status != 200) {
        snprintf(info->detail, sizeof(info->detail), "HTTP status %ld", resp.status);
        if (cw_http_is_permanent(resp.status))
            res = CW_DELIVER_REJECTED;
        goto out;
    }
    {
        json_t *root = json_loadb(cw_buf_str(&resp.body), resp.body.len, 0, NULL);
        json_t *ec = json_object_get(root, "errcode");
        const char *em = json_string_value(json_object_get(root, "errmsg"));

        if (!json_is_integer(ec)) {
            snprintf(info->detail, sizeof(info->detail), "answer without an errcode");
        } else if (json_integer_value(ec) == 0) {
            res = CW_DELIVER_OK;
        } else {
            long long code = (long long)json_integer_value(ec);

            snprintf(info->detail, sizeof(info->detail), "errcode %lld: %.120s", code,
                     em != NULL ? em : "");
            if (code == 130101) {
                res = CW_DELIVER_THROTTLED;
                info->retry_after = s->throttle_backoff;
            } else if (code == 460101) {
                res = CW_DELIVER_REJECTED; /* too long: the same text fails again */
            }
        }
        json_decref(root);
    }
out:
    if (res != CW_DELIVER_OK && res != CW_DELIVER_THROTTLED && res != CW_DELIVER_REJECTED)
        res = CW_DELIVER_RETRY;
    if (url.data != NULL)
        memset(url.data, 0, url.len); /* holds the access token */
    cw_buf_reset(&url);
    cw_buf_reset(&resp.body);
    cw_buf_reset(&text);
    cw_buf_reset(&title);
    cw_buf_reset(&body);
    return res;
}

const struct cw_receiver_kind cw_recv_dingtalk = {
    .name = "dingtalk",
    .state_size = sizeof(struct dingtalk_state),
    .configure = dingtalk_configure,
    .deliver = dingtalk_deliver,
    .release = dingtalk_release,
};
