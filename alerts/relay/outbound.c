/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound.c - one outbound HTTP(S) request of a receiver, with libcurl:
 * every setopt checked, connect and total timeouts, an error buffer, a
 * bounded response body, and an abort when the relay stops.
 *
 * Called on a receiver's delivery thread; a fresh easy handle per request
 * (a few requests a minute per receiver do not need connection reuse).
 */
#include "alerts/relay/outbound.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#define RESPONSE_LIMIT (64u << 10)

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cw_http_out *out = userdata;
    size_t n = size * nmemb;

    /* Keep what fits; a longer answer is not an error of the request. */
    if (out->body.len + n <= out->body.limit && cw_buf_add(&out->body, ptr, n) != CW_OK)
        return 0;
    return n;
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct cw_deliver_ctx *ctx = p;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return ctx->stop != NULL && atomic_load(ctx->stop) ? 1 : 0;
}

int cw_out_request(const char *url, const char *content_type, const char *body, size_t len,
                   const struct cw_deliver_ctx *ctx, struct cw_http_out *out,
                   struct cw_deliver_info *info)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    char ctype[160];
    struct curl_slist *hdrs = NULL, *tmp;
    long ms = (long)(ctx->timeout / CW_MS(1));
    CURLcode c = CURLE_OK;
    CURL *h;
    int rc = CW_EIO;

    out->status = 0;
    if (out->body.limit == 0)
        cw_buf_init(&out->body, RESPONSE_LIMIT);
    h = curl_easy_init();
    if (h == NULL) {
        snprintf(info->detail, sizeof(info->detail), "curl_easy_init failed");
        return CW_ENOMEM;
    }
    if (content_type != NULL) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
        tmp = curl_slist_append(hdrs, ctype);
        if (tmp == NULL)
            goto out;
        hdrs = tmp;
    }
    tmp = curl_slist_append(hdrs, "Expect:");
    if (tmp == NULL)
        goto out;
    hdrs = tmp;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (c == CURLE_OK)                                                                         \
            c = curl_easy_setopt(h, opt, val);                                                     \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ms < 5000 ? ms : 5000L);
    SET(CURLOPT_TIMEOUT_MS, ms);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_USERAGENT, "connwatch-relay/" CW_VERSION);
    SET(CURLOPT_HTTPHEADER, hdrs);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, out);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, (void *)ctx);
    if (body != NULL) {
        SET(CURLOPT_POST, 1L);
        SET(CURLOPT_POSTFIELDS, body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
#undef SET
    if (c != CURLE_OK) {
        snprintf(info->detail, sizeof(info->detail), "curl setopt: %s", curl_easy_strerror(c));
        goto out;
    }
    c = curl_easy_perform(h);
    if (c != CURLE_OK) {
        /* The error buffer names the host at most, never the query (tokens). */
        snprintf(info->detail, sizeof(info->detail), "%s",
                 errbuf[0] != '\0' ? errbuf : curl_easy_strerror(c));
        goto out;
    }
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status) != CURLE_OK)
        out->status = 0;
    rc = CW_OK;
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

bool cw_http_is_permanent(long status)
{
    return status >= 400 && status < 500 && status != 408 && status != 429;
}
