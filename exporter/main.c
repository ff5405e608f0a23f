/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the connwatch program: flags, signals, lifecycle; nothing else.
 *
 * Threads: main blocks every signal it handles before any thread starts and
 * then reads them from a signalfd, so handlers never run asynchronously.
 * Reloads (SIGHUP, POST /-/reload) are serialised by app.reload_lock.
 */
#include "core/buf.h"
#include "core/cli.h"
#include "core/http.h"
#include "core/log.h"
#include "core/procself.h"
#include "core/render.h"
#include "registry.h"
#include "scheduler.h"
#include "settings.h"
#include "version.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define DEFAULT_LISTEN ":19367"
#define SCRAPE_LIMIT   (256u << 20)
#define SHUTDOWN_GRACE CW_S(1)

struct flags {
    struct cw_cli cli;
    const char *telemetry_path;
    const char *web_config_file;
};

struct app {
    struct flags flags;
    struct cw_registry *registry; /* owned */
    struct cw_sched *sched;       /* owned */
    struct cw_http_server *http;  /* owned */
    pthread_mutex_t reload_lock;
};

static void usage(FILE *f)
{
    fprintf(
        f, "usage: connwatch [flags]\n"
           "\n"
           "Watches the network path, TLS, databases and caches behind \"server connection\n"
           "error\" and serves the results as Prometheus metrics.\n"
           "\n"
           "flags:\n"
           "  --config.file=PATH          YAML configuration (default: built-in: this host)\n"
           "  --config.check              validate the configuration, print ok or the errors\n"
           "  --web.listen-address=ADDR   address to listen on, repeatable (default " DEFAULT_LISTEN
           ")\n"
           "  --web.telemetry-path=PATH   path of the metrics endpoint (default /metrics)\n"
           "  --web.config.file=PATH      exporter-toolkit web config: TLS, basic "
           "auth\n" CW_CLI_WEB_USAGE
           "  --log.level=LEVEL           debug, info, warn or error (default info)\n"
           "  --log.format=FORMAT         logfmt or json (default logfmt)\n"
           "  --version                   print the version and exit\n"
           "  --help                      print this help and exit\n"
           "\n"
           "exit codes: 0 normal, 1 runtime failure, 2 configuration or usage error\n");
}

/* parse_flags() returns -1 to go on, or an exit code. */
static int parse_flags(int argc, char **argv, struct flags *f)
{
    const struct cw_cli_flag own[] = {
        {"--web.telemetry-path", &f->telemetry_path},
        {"--web.config.file", &f->web_config_file},
        {NULL, NULL},
    };
    int code;

    memset(f, 0, sizeof(*f));
    cw_cli_init(&f->cli);
    f->telemetry_path = "/metrics";
    code = cw_cli_parse(argc, argv, "connwatch", usage, own, &f->cli);
    if (code >= 0)
        return code;
    if (f->telemetry_path[0] != '/') {
        fprintf(stderr, "connwatch: --web.telemetry-path must start with '/'\n");
        return 2;
    }
    if (f->cli.nlisten == 0)
        f->cli.listen[f->cli.nlisten++] = DEFAULT_LISTEN;
    return -1;
}

/* reload() loads the configuration file again and swaps it in, or keeps the
 * old one. The error text, if any, goes to 'why'. Serialised. */
static int reload(struct app *app, struct cw_buf *why)
{
    struct cw_settings *fresh, *old;
    struct cw_diag diag;
    char n1[24], n2[24];
    size_t kept, i;
    int rc = CW_OK;

    pthread_mutex_lock(&app->reload_lock);
    cw_diag_init(&diag);
    fresh = cw_settings_load(app->flags.cli.config_file, &diag);
    if (fresh == NULL) {
        cw_registry_reload_result(app->registry, false);
        snprintf(n1, sizeof(n1), "%zu", diag.n);
        cw_log(CW_LOG_ERROR, "config", "reload failed, keeping the running configuration", "file",
               app->flags.cli.config_file != NULL ? app->flags.cli.config_file : "<built-in>",
               "errors", n1, "err", diag.n != 0 ? diag.entries[0].text : "", (char *)NULL);
        for (i = 0; why != NULL && i < diag.n; i++) {
            if (cw_buf_addf(why, "%s\n", diag.entries[i].text) != CW_OK)
                break;
        }
        rc = CW_ECONFIG;
        goto out;
    }
    old = cw_registry_settings(app->registry);
    kept = cw_settings_adopt(fresh, old);
    cw_settings_unref(old);
    cw_sched_apply(app->sched, fresh);
    cw_registry_set(app->registry, fresh);
    cw_registry_reload_result(app->registry, true);
    snprintf(n1, sizeof(n1), "%zu", fresh->ninst);
    snprintf(n2, sizeof(n2), "%zu", kept);
    cw_log(CW_LOG_INFO, "config", "configuration reloaded", "file",
           app->flags.cli.config_file != NULL ? app->flags.cli.config_file : "<built-in>", "checks",
           n1, "unchanged", n2, (char *)NULL);
    cw_settings_unref(fresh);

    if (app->http != NULL && app->flags.web_config_file != NULL) {
        cw_diag_reset(&diag);
        if (cw_http_reload_web_config(app->http, &diag) != CW_OK) {
            cw_log(CW_LOG_ERROR, "http", "web config reload failed, keeping the old one", "err",
                   diag.n != 0 ? diag.entries[0].text : "", (char *)NULL);
            for (i = 0; why != NULL && i < diag.n; i++) {
                if (cw_buf_addf(why, "%s\n", diag.entries[i].text) != CW_OK)
                    break;
            }
            rc = CW_ECONFIG;
        }
    }
out:
    cw_diag_reset(&diag);
    pthread_mutex_unlock(&app->reload_lock);
    return rc;
}

/* ---- HTTP handlers -------------------------------------------------------- */

static int h_metrics(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct app *app = ctx;
    enum cw_format fmt = cw_render_negotiate(cw_http_header(req, "Accept"));
    bool gzip = cw_accepts_gzip(cw_http_header(req, "Accept-Encoding"));
    int rc;

    resp->body.limit = SCRAPE_LIMIT;
    rc = cw_registry_render(app->registry, fmt, gzip, &resp->body);
    if (rc != CW_OK) {
        cw_log(CW_LOG_ERROR, "http", "cannot render metrics", "err", cw_strerror(rc), (char *)NULL);
        return rc;
    }
    resp->content_type = cw_render_content_type(fmt);
    if (gzip)
        resp->content_encoding = "gzip";
    return CW_OK;
}

static int h_landing(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct app *app = ctx;
    struct cw_settings *s = cw_registry_settings(app->registry);
    struct cw_buf *b = &resp->body;
    size_t i;
    int rc = CW_OK;

    (void)req;
    resp->content_type = "text/html; charset=utf-8";
    rc |= cw_buf_adds(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>connwatch"
                         "</title></head><body>\n<h1>connwatch</h1>\n<p>version ");
    rc |= cw_buf_addf(b, "%s (revision %s)</p>\n<ul>\n<li><a href=\"", CW_VERSION, CW_REVISION);
    rc |= cw_buf_add_html(b, app->flags.telemetry_path);
    rc |= cw_buf_adds(b,
                      "\">Metrics</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n"
                      "<li><a href=\"/-/ready\">Readiness</a></li>\n"
                      "<li>/probe?check=KIND&amp;target=T (targets listed under probe.allow)</li>\n"
                      "</ul>\n");
    rc |= cw_buf_adds(b, "<h2>Checks</h2>\n<table border=\"1\" cellpadding=\"4\">\n"
                         "<tr><th>check</th><th>service</th><th>target</th><th>interval</th>"
                         "<th>status</th><th>last error</th></tr>\n");
    for (i = 0; s != NULL && i < s->ninst && rc == CW_OK; i++) {
        struct cw_instance *in = s->inst[i];
        char d1[32], err[256];
        bool has_run;
        enum cw_reason reason;

        pthread_mutex_lock(&in->lock);
        has_run = in->has_run;
        reason = in->reason;
        snprintf(err, sizeof(err), "%s", reason != CW_REASON_NONE ? in->last_error : "");
        pthread_mutex_unlock(&in->lock);
        rc |= cw_buf_addf(b, "<tr><td>%s</td><td>", in->kind->name);
        rc |= cw_buf_add_html(b, in->service != NULL ? in->service : "");
        rc |= cw_buf_adds(b, "</td><td>");
        rc |= cw_buf_add_html(b, in->target);
        rc |= cw_buf_addf(b, "</td><td>%s</td><td>%s%s</td><td>",
                          cw_duration_format(in->interval, d1, sizeof(d1)),
                          !has_run                   ? "pending"
                          : reason == CW_REASON_NONE ? "ok"
                                                     : "failing: ",
                          has_run && reason != CW_REASON_NONE ? cw_reason_label(reason) : "");
        rc |= cw_buf_add_html(b, err);
        rc |= cw_buf_adds(b, "</td></tr>\n");
    }
    rc |= cw_buf_adds(b, "</table>\n</body></html>\n");
    cw_settings_unref(s);
    return rc == CW_OK ? CW_OK : CW_ENOMEM;
}

static int h_healthy(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    return cw_buf_adds(&resp->body, "healthy\n");
}

static int h_ready(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct app *app = ctx;

    (void)req;
    if (cw_sched_first_round_done(app->sched))
        return cw_buf_adds(&resp->body, "ready\n");
    resp->status = 503;
    return cw_buf_adds(&resp->body, "not ready: the first round of checks is still running\n");
}

static int h_reload(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct app *app = ctx;
    struct cw_buf why;
    int rc;

    (void)req;
    cw_buf_init(&why, 1u << 20);
    rc = reload(app, &why); /* before reading 'why': it fills it */
    rc = cw_http_answer_reload(resp, rc, cw_buf_str(&why));
    cw_buf_reset(&why);
    return rc;
}

/* h_probe() runs one check now for /probe?check=KIND&target=T, only for
 * targets probe.allow names (no open proxy), and answers with that run's
 * series. A slow route: it runs on its own thread. */
static int h_probe(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct app *app = ctx;
    const char *check = cw_http_query(req, "check");
    const char *target = cw_http_query(req, "target");
    const char *scrape_timeout = cw_http_header(req, "X-Prometheus-Scrape-Timeout-Seconds");
    const struct cw_check_kind *kind;
    struct cw_settings *s = NULL;
    const struct cw_probe_rule *rule;
    struct cw_instance *in = NULL;
    struct cw_batch *b = NULL;
    struct cw_render_item *items = NULL;
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
    s = cw_registry_settings(app->registry);
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
    items = malloc((b->n != 0 ? b->n : 1) * sizeof(*items));
    if (items == NULL) {
        rc = CW_ENOMEM;
        goto out;
    }
    cw_batch_items(b, items);
    fmt = cw_render_negotiate(cw_http_header(req, "Accept"));
    resp->content_type = cw_render_content_type(fmt);
    rc = cw_render(&resp->body, fmt, items, b->n);
out:
    free(items);
    cw_batch_unref(b);
    cw_instance_unref(in);
    cw_settings_unref(s);
    cw_diag_reset(&diag);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------ */

static int check_config(const struct flags *f)
{
    struct cw_diag diag;
    struct cw_settings *s;

    cw_diag_init(&diag);
    s = cw_settings_load(f->cli.config_file, &diag);
    if (s == NULL) {
        cw_cli_print_diag(stderr, &diag);
        fprintf(stderr, "%zu error%s\n", diag.n, diag.n == 1 ? "" : "s");
        cw_diag_reset(&diag);
        return 2;
    }
    printf("ok\n");
    cw_settings_unref(s);
    cw_check_kinds_shutdown();
    cw_diag_reset(&diag);
    return 0;
}

static void emit_http(void *ctx, struct cw_batch *b)
{
    cw_http_emit(ctx, b);
}

static int serve(struct app *app, int sigfd)
{
    struct cw_http_route routes[7];
    struct cw_http_options hopt;
    struct cw_settings *settings;
    struct cw_diag diag;
    size_t i;
    int code = 0;
    int rc;

    cw_diag_init(&diag);
    settings = cw_settings_load(app->flags.cli.config_file, &diag);
    if (settings == NULL) {
        cw_cli_print_diag(stderr, &diag);
        cw_log(CW_LOG_ERROR, "config", "configuration rejected", "errors",
               diag.n != 0 ? diag.entries[0].text : "", (char *)NULL);
        cw_diag_reset(&diag);
        return 2;
    }
    app->sched = cw_sched_new();
    app->registry = cw_registry_new(app->sched);
    if (app->sched == NULL || app->registry == NULL) {
        code = 1;
        goto out;
    }
    cw_registry_set(app->registry, settings);
    cw_registry_reload_result(app->registry, true);
    cw_sched_apply(app->sched, settings);

    memset(routes, 0, sizeof(routes));
    routes[0] =
        (struct cw_http_route){.method = "GET", .path = app->flags.telemetry_path, .fn = h_metrics};
    routes[1] = (struct cw_http_route){.method = "GET", .path = "/", .fn = h_landing};
    routes[2] = (struct cw_http_route){.method = "GET", .path = "/-/healthy", .fn = h_healthy};
    routes[3] = (struct cw_http_route){.method = "GET", .path = "/-/ready", .fn = h_ready};
    routes[4] = (struct cw_http_route){
        .method = "POST", .path = "/-/reload", .max_body = 4096, .fn = h_reload};
    routes[5] =
        (struct cw_http_route){.method = "GET", .path = "/probe", .fn = h_probe, .slow = true};
    memset(&hopt, 0, sizeof(hopt));
    hopt.listen = app->flags.cli.listen;
    hopt.nlisten = app->flags.cli.nlisten;
    hopt.web_config_file = app->flags.web_config_file;
    hopt.threads = 2;
    hopt.limits = &app->flags.cli.web;
    (void)cw_http_raise_fd_limit();
    app->http = cw_http_start(&hopt, routes, app, &diag);
    if (app->http == NULL) {
        cw_cli_print_diag(stderr, &diag);
        code = diag.n != 0 && app->flags.web_config_file != NULL ? 2 : 1;
        goto out;
    }
    cw_registry_set_self_emitter(app->registry, emit_http, app->http);
    for (i = 0; cw_http_bound_address(app->http, i) != NULL; i++) {
        char url[300];

        snprintf(url, sizeof(url), "%s://%s%s", app->flags.web_config_file ? "https" : "http",
                 cw_http_bound_address(app->http, i), app->flags.telemetry_path);
        cw_log(CW_LOG_INFO, "main", "serving metrics", "url", url, (char *)NULL);
    }
    {
        char n1[24];

        snprintf(n1, sizeof(n1), "%zu", settings->ninst);
        cw_log(CW_LOG_INFO, "main", "connwatch started", "version", CW_VERSION, "config",
               settings->file, "checks", n1, (char *)NULL);
    }

    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sigfd, &si, sizeof(si));

        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(si)) {
            cw_log(CW_LOG_ERROR, "main", "cannot read signals", (char *)NULL);
            code = 1;
            break;
        }
        if (si.ssi_signo == SIGHUP) {
            rc = reload(app, NULL);
            (void)rc; /* logged inside; the old configuration keeps running */
            continue;
        }
        cw_log(CW_LOG_INFO, "main", "shutting down", "signal", sigabbrev_np((int)si.ssi_signo),
               (char *)NULL);
        break;
    }

out:
    cw_http_quiesce(app->http);
    if (!cw_sched_free(app->sched, SHUTDOWN_GRACE)) {
        /* A check is stuck in a library call: do not wait for it. */
        cw_http_stop(app->http);
        cw_diag_reset(&diag);
        fflush(NULL);
        _exit(code);
    }
    app->sched = NULL;
    cw_http_stop(app->http);
    cw_registry_free(app->registry);
    cw_settings_unref(settings);
    cw_check_kinds_shutdown();
    cw_diag_reset(&diag);
    return code;
}

int main(int argc, char **argv)
{
    struct app app;
    int sigfd;
    int code;

    memset(&app, 0, sizeof(app));
    code = parse_flags(argc, argv, &app.flags);
    if (code >= 0)
        return code;
    cw_log_setup(app.flags.cli.log_level, app.flags.cli.log_format);
    if (app.flags.cli.config_check)
        return check_config(&app.flags);

    /* Signals are read from a signalfd by this thread, set up before any
     * other thread starts. */
    sigfd = cw_cli_signalfd("connwatch");
    if (sigfd < 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        fprintf(stderr, "connwatch: curl_global_init failed\n");
        return 1;
    }
    cw_procself_init();
    pthread_mutex_init(&app.reload_lock, NULL);
    code = serve(&app, sigfd);
    pthread_mutex_destroy(&app.reload_lock);
    curl_global_cleanup();
    close(sigfd);
    return code;
}
