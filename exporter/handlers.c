/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handlers.c - the exporter's HTTP endpoints: metrics, the health page at /
 * (health.c), /probe.
 * See handlers.h. Called on HTTP threads (the probe on a slow-route thread);
 * no state of their own.
 */
#include "handlers.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/render.h"
#include "health.h"
#include "instance.h"
#include "kinds.h"
#include "live.h"
#include "registry.h"
#include "settings.h"
#include "version.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SCRAPE_LIMIT     (256u << 20)
#define HEALTH_LIMIT     (64u << 20) /* ~6 KB a check: 10,000 checks fit */
#define HEALTH_REFRESH_S 10

int cw_handle_metrics(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct cw_web *web = ctx;
    enum cw_format fmt = cw_render_negotiate(cw_http_header(req, "Accept"));
    bool gzip = cw_accepts_gzip(cw_http_header(req, "Accept-Encoding"));
    struct cw_settings *s = cw_live_settings(web->live);
    int rc;

    rc = cw_buf_setlimit(&resp->body, SCRAPE_LIMIT);
    if (rc == CW_OK)
        rc = cw_registry_render(web->registry, s, fmt, gzip, &resp->body);
    cw_settings_unref(s);
    if (rc != CW_OK) {
        cw_log(CW_LOG_ERROR, "http", "cannot render metrics", "err", cw_strerror(rc), (char *)NULL);
        return rc;
    }
    resp->content_type = cw_render_content_type(fmt);
    if (gzip)
        resp->content_encoding = "gzip";
    return CW_OK;
}

int cw_handle_landing(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct cw_web *web = ctx;
    struct cw_settings *s = cw_live_settings(web->live);
    struct cw_health_page page = {
        .telemetry_path = web->telemetry_path,
        .lang = cw_health_lang(cw_http_query(req, "lang"), cw_http_header(req, "Accept-Language")),
        .now = cw_now(),
        .wall = time(NULL),
        .refresh_s = HEALTH_REFRESH_S,
    };
    int rc;

    resp->content_type = "text/html; charset=utf-8";
    rc = cw_buf_setlimit(&resp->body, HEALTH_LIMIT);
    if (rc == CW_OK)
        rc = cw_health_render(&resp->body, s, &page);
    cw_settings_unref(s);
    if (rc != CW_OK)
        cw_log(CW_LOG_ERROR, "http", "cannot render the health page", "err", cw_strerror(rc),
               (char *)NULL);
    return rc;
}

int cw_handle_probe(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct cw_web *web = ctx;
    const char *check = cw_http_query(req, "check");
    const char *target = cw_http_query(req, "target");
    const char *scrape_timeout = cw_http_header(req, "X-Prometheus-Scrape-Timeout-Seconds");
    const struct cw_check_kind *kind;
    struct cw_settings *s = NULL;
    const struct cw_probe_rule *rule;
    struct cw_instance *in = NULL;
    struct cw_batch *b = NULL;
    struct cw_diag diag;
    cw_duration timeout = 0;
    enum cw_format fmt;
    int rc = CW_OK;

    cw_diag_init(&diag);
    if (check == NULL || target == NULL || check[0] == '\0' || target[0] == '\0') {
        resp->status = 400;
        rc = cw_buf_adds(&resp->body, "missing parameter: /probe needs check=KIND and target=T\n");
        goto out;
    }
    kind = cw_check_kind_find(check);
    if (kind == NULL || kind->probe_option == NULL) {
        resp->status = 400;
        rc = cw_buf_addf(&resp->body, "check kind \"%s\" cannot be probed\n", check);
        goto out;
    }
    s = cw_live_settings(web->live);
    rule = cw_settings_probe_rule(s, kind, target);
    if (rule == NULL) {
        resp->status = 403;
        rc = cw_buf_addf(&resp->body,
                         "target \"%s\" is not allowed for check \"%s\": list it under "
                         "probe.allow in %s\n",
                         target, check, s != NULL ? s->file : "the configuration");
        goto out;
    }
    timeout = rule->timeout;
    if (scrape_timeout != NULL) {
        /* Answer before Prometheus gives up on the scrape (half a second of
         * margin). A value that is not a number of seconds is ignored; a huge
         * one is clamped before any arithmetic. */
        cw_duration secs;

        if (cw_seconds_parse(scrape_timeout, CW_S(86400), &secs) == CW_OK && secs > CW_MS(600) &&
            secs - CW_MS(500) < timeout)
            timeout = secs - CW_MS(500);
    }
    in = cw_settings_probe_instance(kind, target, timeout, rule, &diag);
    if (in == NULL) {
        size_t i;

        resp->status = 400;
        rc = cw_buf_adds(&resp->body, "invalid probe:\n");
        for (i = 0; i < diag.n && rc == CW_OK; i++)
            rc = cw_buf_addf(&resp->body, "%s\n", diag.entries[i].text);
        goto out;
    }
    cw_instance_execute(in);
    b = cw_instance_snapshot(in);
    if (b == NULL) {
        rc = CW_ENOMEM;
        goto out;
    }
    fmt = cw_render_negotiate(cw_http_header(req, "Accept"));
    resp->content_type = cw_render_content_type(fmt);
    rc = cw_render_batches(&resp->body, fmt, 0, &b, 1);
out:
    cw_batch_unref(b);
    cw_instance_unref(in);
    cw_settings_unref(s);
    cw_diag_reset(&diag);
    return rc;
}
