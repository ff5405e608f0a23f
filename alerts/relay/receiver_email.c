/* SPDX-License-Identifier: Apache-2.0 */
/*
 * receiver_email.c - receiver kind "email": one message per notification over SMTP
 * or SMTPS with libcurl (REFERENCE.md §7): RFC 5322 headers, the subject as
 * an RFC 2047 encoded word, multipart/alternative with a plain-text and an
 * HTML part (both base64, so no line is ever too long), the whole message
 * under max_bytes: alerts rendered one at a time against that budget, long
 * values cut on a character, the rest counted as "… and N more alerts".
 * A 5xx SMTP reply (the server refuses this message for good) and a message
 * that cannot be built are rejections (CW_DELIVER_REJECTED).
 *
 * Called on the receiver's delivery thread; the state is read-only after
 * configure().
 */
#include "alerts/relay/receiver.h"
#include "alerts/relay/template.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAIL_LIMIT        (20u << 20) /* above the largest max_bytes */
#define MAIL_OVERHEAD     8192        /* headers, MIME frame, HTML wrapper */
#define VALUE_MAX         2048        /* bytes of one placeholder value in the text */
#define SUBJECT_VALUE_MAX 200
#define LINK_MAX          2000 /* a longer externalURL is left out */

struct email_state {
    char *smtp_url;       /* owned (cw_opts, email_release()) */
    char *from;           /* owned */
    struct cw_strlist to; /* owned */
    char *username;       /* owned, or NULL */
    struct cw_secret password_file;
    struct cw_secret password;
    bool require_tls;
    int64_t max_bytes;
};

static const struct cw_opt email_opts[] = {
    CW_OPT("smtp_url", CW_OPT_T_STRING, struct email_state, smtp_url, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("from", CW_OPT_T_STRING, struct email_state, from, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("to", CW_OPT_T_STRING_LIST, struct email_state, to, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("username", CW_OPT_T_STRING, struct email_state, username, NULL, 0, 0, 0),
    CW_OPT("password_file", CW_OPT_T_SECRET_FILE, struct email_state, password_file, NULL, 0, 0, 0),
    CW_OPT("password", CW_OPT_T_SECRET, struct email_state, password, NULL, 0, 0, 0),
    CW_OPT("require_tls", CW_OPT_T_BOOL, struct email_state, require_tls, "true", 0, 0, 0),
    CW_OPT("max_bytes", CW_OPT_T_INT, struct email_state, max_bytes, "1048576", 65536, 16 << 20, 0),
    CW_OPT_END,
};

static int email_configure(void *state, const struct cw_node *node, struct cw_receiver_caps *caps,
                           struct cw_diag *diag)
{
    struct email_state *s = state;
    int rc;

    (void)caps;
    rc = cw_opts_apply(email_opts, s, node, NULL, diag);
    if (rc != CW_OK)
        return rc;
    if (strncmp(s->smtp_url, "smtp://", 7) != 0 && strncmp(s->smtp_url, "smtps://", 8) != 0) {
        cw_diagf(diag, cw_node_get(node, "smtp_url"), "use smtp://host:587 or smtps://host:465");
        return CW_ECONFIG;
    }
    if (s->to.n == 0) {
        cw_diagf(diag, cw_node_get(node, "to"), "at least one recipient");
        return CW_ECONFIG;
    }
    if (s->password_file.value != NULL && s->password.value != NULL) {
        cw_diagf(diag, cw_node_get(node, "password"),
                 "set at most one of password_file and password");
        return CW_ECONFIG;
    }
    return CW_OK;
}

static void email_release(void *state)
{
    cw_opts_release(email_opts, state);
}

/* add_b64() appends 'len' bytes as base64 in lines of 76 characters. */
static int add_b64(struct cw_buf *out, const char *s, size_t len)
{
    unsigned char line[80];
    size_t off;
    int rc = CW_OK;

    for (off = 0; off < len && rc == CW_OK; off += 57) {
        size_t n = len - off < 57 ? len - off : 57;
        int w = EVP_EncodeBlock(line, (const unsigned char *)s + off, (int)n);

        rc = cw_buf_add(out, line, (size_t)w);
        if (rc == CW_OK)
            rc = cw_buf_adds(out, "\r\n");
    }
    return rc;
}

/* bare_address() writes "<addr>" for "Name <addr>", else 'in' as it is. */
static void bare_address(const char *in, char *out, size_t len)
{
    const char *lt = strchr(in, '<'), *gt = lt != NULL ? strchr(lt, '>') : NULL;

    if (lt != NULL && gt != NULL && (size_t)(gt - lt) < len)
        snprintf(out, len, "%.*s", (int)(gt - lt + 1), lt);
    else
        snprintf(out, len, "%s", in);
}

struct reader {
    const char *data; /* borrowed from the message being sent, for the transfer */
    size_t len, off;
};

static size_t on_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct reader *r = userdata;
    size_t n = size * nmemb;

    if (n > r->len - r->off)
        n = r->len - r->off;
    memcpy(ptr, r->data + r->off, n);
    r->off += n;
    return n;
}

/* mail_cost(): what text costs in the message, once as plain text and once
 * HTML-escaped (both parts carry it). */
static size_t mail_cost(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        n += s[i] == '<' || s[i] == '>' ? 4 : s[i] == '&' ? 5 : s[i] == '"' ? 6 : 1;
    return n + len;
}

static int build_message(const struct email_state *s, const struct cw_deliver_ctx *ctx,
                         const struct cw_am_msg *m, struct cw_buf *mail)
{
    struct cw_tmpl_opts topts = {.value_max = SUBJECT_VALUE_MAX, .tz = ctx->tz};
    struct cw_digest d;
    size_t shown, budget, link = 0;
    const char *alert =
        ctx->alert_tmpl != NULL ? ctx->alert_tmpl : cw_tmpl_default_alert(ctx->lang);
    struct cw_buf subject, text, html;
    unsigned char rnd[12];
    char date[64], boundary[64], id[40];
    time_t now = time(NULL);
    struct tm tm;
    size_t i;
    int rc;

    (void)shown;
    cw_buf_init(&subject, 64u << 10);
    cw_buf_init(&text, MAIL_LIMIT);
    cw_buf_init(&html, MAIL_LIMIT);
    rc = cw_tmpl_render_opts(
        &subject, ctx->title_tmpl != NULL ? ctx->title_tmpl : cw_tmpl_default_title(ctx->lang), m,
        NULL, ctx->lang, &topts);
    if (rc == CW_OK && subject.len > 400)
        rc = cw_buf_setlen(&subject, cw_utf8_cut(subject.data, subject.len, 400));
    /* Both parts are base64 (4 bytes per 3, a CRLF per 57): the alerts get
     * what max_bytes leaves after the headers, the subject and the link. */
    if (m->external_url[0] != '\0' && strlen(m->external_url) <= LINK_MAX)
        link = strlen(m->external_url);
    budget = ((size_t)s->max_bytes - MAIL_OVERHEAD) / 78 * 57;
    budget = budget > mail_cost(cw_buf_str(&subject), subject.len) + 2 * link + 64
                 ? budget - mail_cost(cw_buf_str(&subject), subject.len) - 2 * link - 64
                 : 0;
    d = (struct cw_digest){
        .budget = budget,
        .value_max = VALUE_MAX,
        .cost = mail_cost,
        .sep = "\n",
        .piece_limit = 1u << 20,
        .tz = ctx->tz,
        .resolved_tmpl = ctx->alert_tmpl != NULL ? NULL : cw_tmpl_default_resolved(ctx->lang)};
    if (rc == CW_OK)
        rc = cw_tmpl_digest(&text, alert, m, ctx->lang, &d, &shown);
    if (rc == CW_OK && link > 0)
        rc = cw_buf_addf(&text, "Alertmanager: %s\n", m->external_url);
    if (rc == CW_OK)
        rc = cw_buf_adds(&html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>"
                                "<body>\n<h3>");
    if (rc == CW_OK)
        rc = cw_buf_add_html(&html, cw_buf_str(&subject));
    if (rc == CW_OK)
        rc = cw_buf_adds(&html, "</h3>\n<pre style=\"font-family: sans-serif\">");
    if (rc == CW_OK)
        rc = cw_buf_add_html(&html, cw_buf_str(&text));
    if (rc == CW_OK)
        rc = cw_buf_adds(&html, "</pre>\n</body></html>\n");
    if (rc != CW_OK)
        goto out;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1 || gmtime_r(&now, &tm) == NULL ||
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0) {
        rc = CW_EINVAL;
        goto out;
    }
    snprintf(id, sizeof(id), "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10], rnd[11]);
    snprintf(boundary, sizeof(boundary), "=_connwatch_%s", id);
    rc = cw_buf_addf(mail, "Date: %s\r\nFrom: %s\r\nTo: ", date, s->from);
    for (i = 0; i < s->to.n && rc == CW_OK; i++)
        rc = cw_buf_addf(mail, "%s%s", i > 0 ? ", " : "", s->to.items[i]);
    if (rc == CW_OK)
        rc = cw_buf_adds(mail, "\r\nSubject: =?UTF-8?B?");
    if (rc == CW_OK) {
        unsigned char enc[600];
        int w = EVP_EncodeBlock(enc, (const unsigned char *)cw_buf_str(&subject), (int)subject.len);

        rc = cw_buf_add(mail, enc, (size_t)w);
    }
    if (rc == CW_OK)
        rc = cw_buf_addf(mail,
                         "?=\r\nMessage-ID: <%s@connwatch-relay>\r\nMIME-Version: 1.0\r\n"
                         "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                         "--%s\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\n",
                         id, boundary, boundary);
    if (rc == CW_OK)
        rc = add_b64(mail, cw_buf_str(&text), text.len);
    if (rc == CW_OK)
        rc = cw_buf_addf(mail,
                         "--%s\r\nContent-Type: text/html; charset=UTF-8\r\n"
                         "Content-Transfer-Encoding: base64\r\n\r\n",
                         boundary);
    if (rc == CW_OK)
        rc = add_b64(mail, cw_buf_str(&html), html.len);
    if (rc == CW_OK)
        rc = cw_buf_addf(mail, "--%s--\r\n", boundary);
out:
    cw_buf_reset(&subject);
    cw_buf_reset(&text);
    cw_buf_reset(&html);
    return rc;
}

static int on_progress(void *p, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    const struct cw_deliver_ctx *ctx = p;

    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return atomic_load(ctx->stop) ? 1 : 0;
}

static enum cw_deliver_result email_deliver(void *state, const struct cw_deliver_ctx *ctx,
                                            struct cw_am_msg *const *msgs, size_t n, size_t *used,
                                            struct cw_deliver_info *info)
{
    struct email_state *s = state;
    const char *password =
        s->password_file.value != NULL ? s->password_file.value : s->password.value;
    struct curl_slist *rcpt = NULL, *tmp;
    char errbuf[CURL_ERROR_SIZE] = "";
    long ms = (long)(ctx->timeout / CW_MS(1));
    struct reader rd;
    struct cw_buf mail;
    char envelope[512];
    CURLcode c = CURLE_OK;
    CURL *h = NULL;
    size_t i;
    enum cw_deliver_result res = CW_DELIVER_RETRY;

    (void)n;
    *used = 1;
    cw_buf_init(&mail, MAIL_LIMIT);
    /* Envelope addresses are the bare ones of "Name <addr>". */
    bare_address(s->from, envelope, sizeof(envelope));
    if (build_message(s, ctx, msgs[0], &mail) != CW_OK) {
        snprintf(info->detail, sizeof(info->detail), "cannot build the message");
        res = CW_DELIVER_REJECTED;
        goto out;
    }
    for (i = 0; i < s->to.n; i++) {
        char addr[512];

        bare_address(s->to.items[i], addr, sizeof(addr));
        tmp = curl_slist_append(rcpt, addr);
        if (tmp == NULL)
            goto out;
        rcpt = tmp;
    }
    h = curl_easy_init();
    if (h == NULL)
        goto out;
    rd = (struct reader){mail.data, mail.len, 0};
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(h, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, s->smtp_url);
    SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ms < 5000 ? ms : 5000L);
    SET(CURLOPT_TIMEOUT_MS, ms);
    SET(CURLOPT_MAIL_FROM, envelope);
    SET(CURLOPT_MAIL_RCPT, rcpt);
    SET(CURLOPT_READFUNCTION, on_read);
    SET(CURLOPT_READDATA, &rd);
    SET(CURLOPT_UPLOAD, 1L);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, (void *)ctx);
    if (s->require_tls)
        SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if (s->username != NULL)
        SET(CURLOPT_USERNAME, s->username);
    if (password != NULL)
        SET(CURLOPT_PASSWORD, password);
#undef SET
    if (c != CURLE_OK) {
        snprintf(info->detail, sizeof(info->detail), "curl setopt: %s", curl_easy_strerror(c));
        goto out;
    }
    c = curl_easy_perform(h);
    if (c != CURLE_OK) {
        long code = 0;

        snprintf(info->detail, sizeof(info->detail), "%s",
                 errbuf[0] != '\0' ? errbuf : curl_easy_strerror(c));
        /* 5xx is SMTP's permanent refusal (552 too big, 554 rejected); 4xx
         * and transport errors are worth retrying. */
        if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code >= 500 &&
            code < 600 && c != CURLE_LOGIN_DENIED)
            res = CW_DELIVER_REJECTED;
        goto out;
    }
    res = CW_DELIVER_OK;
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(rcpt);
    cw_buf_reset(&mail);
    return res;
}

const struct cw_receiver_kind cw_recv_email = {
    .name = "email",
    .state_size = sizeof(struct email_state),
    .configure = email_configure,
    .deliver = email_deliver,
    .release = email_release,
};
