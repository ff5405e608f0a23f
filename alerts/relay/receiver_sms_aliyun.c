/* SPDX-License-Identifier: Apache-2.0 */
/*
 * receiver_sms_aliyun.c - receiver kind "aliyun_sms": Alibaba Cloud SendSms with the
 * RPC signature V1 (HMAC-SHA1, REFERENCE.md §6.1), one SMS per
 * notification, TemplateParam built from the alert with the receiver's
 * placeholders, values cut to the template variable limit on a character
 * (the default alertname value ends with {{more}}: "…另有N条"). Rejections
 * no retry can fix (HTTP 4xx, isv.INVALID_JSON_PARAM and the like) are
 * CW_DELIVER_REJECTED.
 * Critical alerts only unless the receiver sets min_severity.
 *
 * Called on the receiver's delivery thread; the state is read-only after
 * configure().
 */
#include "alerts/relay/outbound.h"
#include "alerts/relay/receiver.h"
#include "alerts/relay/sign.h"
#include "alerts/relay/template.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sms_state {
    char *access_key_id; /* owned (cw_opts, sms_release()) */
    struct cw_secret secret_file;
    struct cw_secret secret;
    char *sign_name;     /* owned */
    char *template_code; /* owned */
    struct cw_strlist phone_numbers;
    char *endpoint;  /* owned */
    char *region_id; /* owned */
    struct cw_strmap template_param;
    int64_t param_max_chars;
    int64_t message_max_chars;
};

static const struct cw_opt sms_opts[] = {
    CW_OPT("access_key_id", CW_OPT_T_STRING, struct sms_state, access_key_id, NULL, 0, 0,
           CW_OPT_REQUIRED),
    CW_OPT("access_key_secret_file", CW_OPT_T_SECRET_FILE, struct sms_state, secret_file, NULL, 0,
           0, 0),
    CW_OPT("access_key_secret", CW_OPT_T_SECRET, struct sms_state, secret, NULL, 0, 0, 0),
    CW_OPT("sign_name", CW_OPT_T_STRING, struct sms_state, sign_name, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("template_code", CW_OPT_T_STRING, struct sms_state, template_code, NULL, 0, 0,
           CW_OPT_REQUIRED),
    CW_OPT("phone_numbers", CW_OPT_T_STRING_LIST, struct sms_state, phone_numbers, NULL, 0, 0,
           CW_OPT_REQUIRED),
    CW_OPT("endpoint", CW_OPT_T_URL, struct sms_state, endpoint, "https://dysmsapi.aliyuncs.com/",
           0, 0, 0),
    CW_OPT("region_id", CW_OPT_T_STRING, struct sms_state, region_id, "cn-hangzhou", 0, 0, 0),
    CW_OPT("template_param", CW_OPT_T_STRING_MAP, struct sms_state, template_param, NULL, 0, 0, 0),
    CW_OPT("param_max_chars", CW_OPT_T_INT, struct sms_state, param_max_chars, "35", 0, 1000, 0),
    CW_OPT("message_max_chars", CW_OPT_T_INT, struct sms_state, message_max_chars, "90", 0, 10000,
           0),
    CW_OPT_END,
};

static const char *const default_param_keys[] = {"status", "alertname", "instance", "summary"};

/* default_param_tmpl() is the default template of TemplateParam value i:
 * the status, the alert's name, where (the target, else the instance), and
 * what: the layer and the reason explained (en: the reason without its hint,
 * to fit 35 characters) when the alert has a reason, else
 * its summary; for a resolved notification the layer and how long it
 * lasted (the rules' summaries say "… failing"). */
static const char *default_param_tmpl(size_t i, const struct cw_am_msg *m, enum cw_lang lang)
{
    const char *reason = m->nalerts > 0 ? cw_am_label(&m->alerts[0], "reason") : "";

    switch (i) {
    case 0:
        return "{{status_text}}";
    case 1:
        return "{{alertname}}{{more}}";
    case 2:
        return "{{target_or_instance}}";
    default:
        if (strcmp(m->status, "resolved") == 0)
            return lang == CW_LANG_ZH ? "{{layer_text}} 持续 {{duration}}"
                                      : "{{layer_text}} lasted {{duration}}";
        if (reason[0] == '\0')
            return "{{summary}}";
        /* en texts are longer: the layer is in the alert's name anyway */
        return lang == CW_LANG_ZH ? "{{layer_text}} {{reason_text}}" : "{{reason_short}}";
    }
}

#define PARAM_HARD_MAX 1000 /* characters of one value when param_max_chars is 0 */

static const char *secret_of(const struct sms_state *s)
{
    return s->secret_file.value != NULL ? s->secret_file.value : s->secret.value;
}

static int sms_configure(void *state, const struct cw_node *node, struct cw_receiver_caps *caps,
                         struct cw_diag *diag)
{
    struct sms_state *s = state;
    const char *why = NULL;
    size_t i;
    int rc;

    rc = cw_opts_apply(sms_opts, s, node, NULL, diag);
    if (rc != CW_OK)
        return rc;
    if ((s->secret_file.value != NULL) == (s->secret.value != NULL)) {
        cw_diagf(diag, node, "set exactly one of access_key_secret_file and access_key_secret");
        return CW_ECONFIG;
    }
    if (s->phone_numbers.n == 0) {
        cw_diagf(diag, cw_node_get(node, "phone_numbers"), "at least one phone number");
        return CW_ECONFIG;
    }
    for (i = 0; i < s->template_param.n; i++) {
        if (!cw_tmpl_check(s->template_param.values[i], &why)) {
            cw_diagf(diag,
                     cw_node_get(cw_node_get(node, "template_param"), s->template_param.keys[i]),
                     "%s", why);
            return CW_ECONFIG;
        }
    }
    caps->min_severity = "critical";
    return CW_OK;
}

static void sms_release(void *state)
{
    cw_opts_release(sms_opts, state);
}

struct sms_value {
    struct cw_buf v, more; /* the rendered value, and its {{more}} kept whole */
    size_t chars, mchars;  /* characters of v and of more */
};

static size_t utf8_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* utf8_prefix() returns the bytes of the first k characters of s[0..len). */
static size_t utf8_prefix(const char *s, size_t len, size_t k)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && n++ == k)
            return i;
    }
    return len;
}

/* render_value() renders one value, spaces at its ends trimmed (a
 * placeholder that rendered empty leaves none), and counts it. */
static int render_value(struct sms_value *x, const char *tmpl, const struct cw_am_msg *m,
                        const struct cw_sms_params *p, size_t maxc)
{
    struct cw_tmpl_opts o = {.value_max = 4 * maxc, .more_out = &x->more, .tz = p->tz};
    size_t b = 0, e;
    int rc;

    rc = cw_tmpl_render_opts(&x->v, tmpl, m, NULL, p->lang, &o);
    if (rc != CW_OK)
        return rc;
    e = x->v.len;
    while (b < e && x->v.data[b] == ' ')
        b++;
    while (e > b && x->v.data[e - 1] == ' ')
        e--;
    if (b > 0)
        memmove(x->v.data, x->v.data + b, e - b);
    rc = cw_buf_setlen(&x->v, e - b);
    x->chars = utf8_chars(cw_buf_str(&x->v), x->v.len);
    x->mchars = utf8_chars(cw_buf_str(&x->more), x->more.len);
    return rc;
}

/* share() returns the largest per-value limit L <= maxc such that the values
 * cut to min(own length, L) characters fit 'total' together: long values
 * give way first, short ones stay whole. */
static size_t share(const struct sms_value *x, size_t n, size_t maxc, size_t total)
{
    size_t lim, i, sum;

    for (lim = maxc; lim > 0; lim--) {
        for (i = 0, sum = 0; i < n; i++)
            sum += x[i].chars + x[i].mchars < lim ? x[i].chars + x[i].mchars : lim;
        if (sum <= total)
            break;
    }
    return lim;
}

/* add_param() appends "key":"value" with the value cut to 'lim' characters
 * (not bytes), keeping a {{more}} whole at the end, so "HighCPU …另有99条"
 * survives a long alert name. */
static int add_param(struct cw_buf *json, const char *key, const struct sms_value *x, size_t lim)
{
    size_t mlen = x->more.len, mchars = x->mchars, len;
    int rc;

    if (mchars > lim) {
        mlen = 0;
        mchars = 0;
    }
    len = utf8_prefix(cw_buf_str(&x->v), x->v.len, lim - mchars);
    rc = cw_buf_adds(json, json->len > 1 ? ",\"" : "\"");
    if (rc == CW_OK)
        rc = cw_json_escape(json, key, strlen(key));
    if (rc == CW_OK)
        rc = cw_buf_adds(json, "\":\"");
    if (rc == CW_OK)
        rc = cw_json_escape(json, cw_buf_str(&x->v), len);
    if (rc == CW_OK)
        rc = cw_json_escape(json, cw_buf_str(&x->more), mlen);
    if (rc == CW_OK)
        rc = cw_buf_adds(json, "\"");
    return rc;
}

int cw_sms_aliyun_params(struct cw_buf *json, const struct cw_sms_params *p,
                         const struct cw_am_msg *m)
{
    bool custom = p->custom != NULL && p->custom->n > 0;
    size_t n = custom ? p->custom->n : CW_ARRAY_LEN(default_param_keys);
    size_t maxc = p->value_max > 0 ? p->value_max : PARAM_HARD_MAX, lim, i;
    struct sms_value *x = calloc(n, sizeof(*x));
    int rc = x != NULL ? CW_OK : CW_ENOMEM;

    for (i = 0; i < n && rc == CW_OK; i++) {
        cw_buf_init(&x[i].v, 64u << 10);
        cw_buf_init(&x[i].more, 4096);
        rc = render_value(&x[i], custom ? p->custom->values[i] : default_param_tmpl(i, m, p->lang),
                          m, p, maxc);
    }
    lim = p->total_max > 0 ? share(x, n, maxc, p->total_max) : maxc;
    if (rc == CW_OK)
        rc = cw_buf_adds(json, "{");
    for (i = 0; i < n && rc == CW_OK; i++)
        rc = add_param(json, custom ? p->custom->keys[i] : default_param_keys[i], &x[i], lim);
    if (rc == CW_OK)
        rc = cw_buf_adds(json, "}");
    for (i = 0; x != NULL && i < n; i++) {
        cw_buf_reset(&x[i].v);
        cw_buf_reset(&x[i].more);
    }
    free(x);
    return rc;
}

static bool code_is(const char *code, const char *const *list)
{
    size_t i;

    for (i = 0; code != NULL && list[i] != NULL; i++) {
        if (strcmp(code, list[i]) == 0)
            return true;
    }
    return false;
}

/* Codes that mean "this request can never succeed" (REFERENCE.md §6.1), and
 * 4xx codes that a new request (new nonce, new timestamp) can pass. */
static const char *const permanent_codes[] = {
    "isv.INVALID_JSON_PARAM", "isv.TEMPLATE_MISSING_PARAMETERS", "isv.PARAM_LENGTH_LIMIT",
    "isv.INVALID_PARAMETERS", "isv.TEMPLATE_PARAMS_ILLEGAL",     NULL,
};
static const char *const transient_codes[] = {
    "InvalidTimeStamp.Expired", "SignatureNonceUsed", "Throttling",
    "Throttling.User",          "isp.SYSTEM_ERROR",   NULL,
};

static enum cw_deliver_result sms_deliver(void *state, const struct cw_deliver_ctx *ctx,
                                          struct cw_am_msg *const *msgs, size_t n, size_t *used,
                                          struct cw_deliver_info *info)
{
    struct sms_state *s = state;
    const struct cw_am_msg *m = msgs[0];
    struct cw_buf params, phones, query, url;
    struct cw_http_out resp;
    struct cw_kv kv[16];
    unsigned char rnd[16];
    char nonce[40], ts[32];
    struct tm tm;
    time_t now = time(NULL);
    size_t i, nkv = 0;
    enum cw_deliver_result res = CW_DELIVER_RETRY;
    int rc = CW_OK;

    (void)n;
    *used = 1;
    cw_buf_init(&params, 64u << 10);
    cw_buf_init(&phones, 64u << 10);
    cw_buf_init(&query, 1u << 20);
    cw_buf_init(&url, 1u << 20);
    memset(&resp, 0, sizeof(resp));

    {
        struct cw_sms_params p = {.custom = &s->template_param,
                                  .value_max = (size_t)s->param_max_chars,
                                  .total_max = (size_t)s->message_max_chars,
                                  .lang = ctx->lang,
                                  .tz = ctx->tz};

        rc = cw_sms_aliyun_params(&params, &p, m);
    }
    for (i = 0; i < s->phone_numbers.n && rc == CW_OK; i++)
        rc = cw_buf_addf(&phones, "%s%s", i > 0 ? "," : "", s->phone_numbers.items[i]);
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        rc = CW_EINVAL;
    if (rc != CW_OK) {
        snprintf(info->detail, sizeof(info->detail), "cannot build the request: %s",
                 cw_strerror(rc));
        res = CW_DELIVER_REJECTED;
        goto out;
    }
    snprintf(nonce, sizeof(nonce),
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11],
             rnd[12], rnd[13], rnd[14], rnd[15]);
    if (gmtime_r(&now, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(info->detail, sizeof(info->detail), "cannot format the time");
        goto out;
    }
    kv[nkv++] = (struct cw_kv){"AccessKeyId", s->access_key_id};
    kv[nkv++] = (struct cw_kv){"Action", "SendSms"};
    kv[nkv++] = (struct cw_kv){"Format", "JSON"};
    kv[nkv++] = (struct cw_kv){"PhoneNumbers", cw_buf_str(&phones)};
    kv[nkv++] = (struct cw_kv){"RegionId", s->region_id};
    kv[nkv++] = (struct cw_kv){"SignName", s->sign_name};
    kv[nkv++] = (struct cw_kv){"SignatureMethod", "HMAC-SHA1"};
    kv[nkv++] = (struct cw_kv){"SignatureNonce", nonce};
    kv[nkv++] = (struct cw_kv){"SignatureVersion", "1.0"};
    kv[nkv++] = (struct cw_kv){"TemplateCode", s->template_code};
    kv[nkv++] = (struct cw_kv){"TemplateParam", cw_buf_str(&params)};
    kv[nkv++] = (struct cw_kv){"Timestamp", ts};
    kv[nkv++] = (struct cw_kv){"Version", "2017-05-25"};
    rc = cw_aliyun_sign(kv, nkv, secret_of(s), &query, NULL);
    if (rc == CW_OK)
        rc = cw_buf_addf(&url, "%s%s%s", s->endpoint,
                         strchr(s->endpoint + 8, '/') != NULL ? "" : "/", "?");
    if (rc == CW_OK)
        rc = cw_buf_add(&url, query.data, query.len);
    if (rc != CW_OK) {
        snprintf(info->detail, sizeof(info->detail), "cannot sign the request: %s",
                 cw_strerror(rc));
        goto out;
    }
    if (cw_out_request(cw_buf_str(&url), NULL, NULL, 0, ctx, &resp, info) != CW_OK)
        goto out;
    {
        json_t *root = json_loadb(cw_buf_str(&resp.body), resp.body.len, 0, NULL);
        const char *code = json_string_value(json_object_get(root, "Code"));

        if (code != NULL && strcmp(code, "OK") == 0 && resp.status == 200) {
            res = CW_DELIVER_OK;
        } else {
            snprintf(info->detail, sizeof(info->detail), "HTTP status %ld, Code %.100s",
                     resp.status, code != NULL ? code : "(none)");
            if (code != NULL && strcmp(code, "isv.BUSINESS_LIMIT_CONTROL") == 0) {
                res = CW_DELIVER_THROTTLED;
                info->retry_after = CW_MIN(1);
            } else if (code_is(code, permanent_codes) ||
                       (cw_http_is_permanent(resp.status) && !code_is(code, transient_codes))) {
                res = CW_DELIVER_REJECTED;
            }
        }
        json_decref(root);
    }
out:
    cw_buf_reset(&params);
    cw_buf_reset(&phones);
    cw_buf_reset(&query);
    cw_buf_reset(&url);
    cw_buf_reset(&resp.body);
    return res;
}

const struct cw_receiver_kind cw_recv_aliyun_sms = {
    .name = "aliyun_sms",
    .state_size = sizeof(struct sms_state),
    .configure = sms_configure,
    .deliver = sms_deliver,
    .release = sms_release,
};
