/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the connwatch program: flags, wiring, lifecycle; nothing else.
 *
 * The live configuration and its scheduler belong to a cw_live (live.h),
 * the endpoints are in handlers.c, the serve loop (signals, health,
 * readiness, reload) is the one both programs share (core/cli.h).
 *
 * Threads: main blocks every signal it handles before any thread starts and
 * then reads them from a signalfd, so handlers never run asynchronously.
 * Reloads (SIGHUP, POST /-/reload) are serialised by app.reload_lock.
 */
#include "core/buf.h"
#include "core/cli.h"
#include "core/http.h"
#include "core/log.h"
#include "core/privdrop.h"
#include "core/procself.h"
#include "diagnose.h"
#include "handlers.h"
#include "kinds.h"
#include "live.h"
#include "registry.h"
#include "scheduler.h"
#include "settings.h"
#include "version.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_LISTEN ":19367"
#define SHUTDOWN_GRACE CW_S(1)

struct flags {
    struct cw_cli cli;
    const char *telemetry_path;
    const char *web_config_file;
};

struct app {
    struct flags flags;
    char self_target[300];        /* where the built-in default finds our listener
                                   * (borrowed by 'live'; set before its first load) */
    struct cw_live *live;         /* owned */
    struct cw_registry *registry; /* owned */
    struct cw_http_server *http;  /* owned */
    struct cw_web web;            /* the handlers' view of the above */
    pthread_mutex_t reload_lock;
};

static void usage(FILE *f)
{
    fprintf(
        f, "usage: connwatch [flags]\n"
           "       connwatch diagnose TARGET [flags]   (see connwatch diagnose --help)\n"
           "\n"
           "Watches the network path, TLS, databases and caches behind \"server connection\n"
           "error\" and serves the results as Prometheus metrics.\n"
           "\n"
           "flags:\n"
           "  --config.file=PATH          YAML configuration (default: built-in: this host,\n"
           "                              its own listener included)\n"
           "  --config.check              validate the configuration, print ok or the errors\n"
           "  --web.listen-address=ADDR   address to listen on, repeatable (default " DEFAULT_LISTEN
           ")\n"
           "  --web.telemetry-path=PATH   path of the metrics endpoint (default /metrics)\n"
           "  --web.config.file=PATH      exporter-toolkit web config: TLS, basic "
           "auth\n" CW_CLI_WEB_USAGE CW_PRIVDROP_USAGE
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

static void diag_to(struct cw_buf *why, const struct cw_diag *diag)
{
    size_t i;

    for (i = 0; why != NULL && i < diag->n; i++) {
        if (cw_buf_addf(why, "%s\n", diag->entries[i].text) != CW_OK)
            break;
    }
}

/* reload() loads the configuration file and the web configuration again;
 * each keeps its old version when the new one is rejected. The error text,
 * if any, goes to 'why'. Serialised. */
static int reload(void *ctx, struct cw_buf *why)
{
    struct app *app = ctx;
    struct cw_diag diag;
    int rc;

    pthread_mutex_lock(&app->reload_lock);
    cw_diag_init(&diag);
    rc = cw_live_load(app->live, &diag);
    diag_to(why, &diag);
    if (rc == CW_OK && app->http != NULL && app->flags.web_config_file != NULL) {
        cw_diag_reset(&diag);
        if (cw_http_reload_web_config(app->http, &diag) != CW_OK) {
            cw_log(CW_LOG_ERROR, "http", "web config reload failed, keeping the old one", "err",
                   diag.n != 0 ? diag.entries[0].text : "", (char *)NULL);
            diag_to(why, &diag);
            rc = CW_ECONFIG;
        }
    }
    cw_diag_reset(&diag);
    pthread_mutex_unlock(&app->reload_lock);
    return rc;
}

static bool ready(void *ctx)
{
    struct app *app = ctx;

    return cw_live_ready(app->live);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void *check_load(const char *file, struct cw_diag *diag)
{
    return cw_settings_load(file, diag);
}

static void check_release(void *settings)
{
    cw_settings_unref(settings);
    cw_check_kinds_shutdown();
}

/* load_first() makes the configuration live at startup; false after
 * printing and logging why not. */
static bool load_first(struct app *app, struct cw_diag *diag)
{
    if (cw_live_load(app->live, diag) == CW_OK)
        return true;
    cw_cli_print_diag(stderr, diag);
    cw_log(CW_LOG_ERROR, "config", "configuration rejected", "errors",
           diag->n != 0 ? diag->entries[0].text : "", (char *)NULL);
    return false;
}

static void emit_http(void *ctx, struct cw_batch *b)
{
    cw_http_emit(ctx, b);
}

static int serve(struct app *app, int sigfd)
{
    struct cw_cli_program prog = {
        .ctx = app,
        .reload = reload,
        .ready = ready,
        .not_ready = "not ready: the first round of checks is still running\n",
    };
    struct cw_http_route routes[4 + CW_CLI_NROUTES];
    struct cw_http_options hopt;
    struct cw_settings *settings = NULL;
    struct cw_diag diag;
    size_t i;
    int code = 0;

    cw_diag_init(&diag);
    snprintf(app->self_target, sizeof(app->self_target), "%s", CW_DEFAULT_SELF_TARGET);
    app->live = cw_live_new(cw_sched_new(), app->flags.cli.config_file, app->self_target);
    app->registry = cw_registry_new();
    if (app->live == NULL || app->registry == NULL ||
        cw_registry_add_self(app->registry, cw_live_emit, app->live) != CW_OK) {
        code = 1;
        goto out;
    }
    /* A file is checked before anything listens; the built-in default
     * probes our own listener, so it waits for the bound address (a port
     * 0 becomes a real one). */
    if (app->flags.cli.config_file != NULL && !load_first(app, &diag)) {
        code = 2;
        goto out;
    }
    app->web = (struct cw_web){
        .live = app->live, .registry = app->registry, .telemetry_path = app->flags.telemetry_path};

    memset(routes, 0, sizeof(routes));
    routes[0] = (struct cw_http_route){
        .method = "GET", .path = app->flags.telemetry_path, .fn = cw_handle_metrics};
    routes[1] = (struct cw_http_route){.method = "GET", .path = "/", .fn = cw_handle_landing};
    routes[2] = (struct cw_http_route){
        .method = "GET", .path = "/probe", .fn = cw_handle_probe, .slow = true};
    cw_cli_routes(&prog, routes + 3);
    memset(&hopt, 0, sizeof(hopt));
    hopt.listen = app->flags.cli.listen;
    hopt.nlisten = app->flags.cli.nlisten;
    hopt.web_config_file = app->flags.web_config_file;
    hopt.threads = 2;
    hopt.limits = &app->flags.cli.web;
    (void)cw_http_raise_fd_limit();
    app->http = cw_http_start(&hopt, routes, &app->web, &diag);
    if (app->http == NULL) {
        cw_cli_print_diag(stderr, &diag);
        code = diag.n != 0 && app->flags.web_config_file != NULL ? 2 : 1;
        goto out;
    }
    if (cw_registry_add_self(app->registry, emit_http, app->http) != CW_OK) {
        code = 1;
        goto out;
    }
    if (app->flags.cli.config_file == NULL) {
        if (!cw_live_self_target(cw_http_bound_address(app->http, 0), app->self_target,
                                 sizeof(app->self_target)))
            snprintf(app->self_target, sizeof(app->self_target), "%s", CW_DEFAULT_SELF_TARGET);
        if (!load_first(app, &diag)) {
            code = 2;
            goto out;
        }
    }
    for (i = 0; cw_http_bound_address(app->http, i) != NULL; i++) {
        char url[300];

        snprintf(url, sizeof(url), "%s://%s%s", app->flags.web_config_file ? "https" : "http",
                 cw_http_bound_address(app->http, i), app->flags.telemetry_path);
        cw_log(CW_LOG_INFO, "main", "serving metrics", "url", url, (char *)NULL);
    }
    {
        char n1[24];

        settings = cw_live_settings(app->live);
        snprintf(n1, sizeof(n1), "%zu", settings->ninst);
        cw_log(CW_LOG_INFO, "main", "connwatch started", "version", CW_VERSION, "config",
               settings->file, "checks", n1, (char *)NULL);
        cw_settings_unref(settings);
    }
    code = cw_cli_serve(&prog, sigfd);

out:
    cw_http_quiesce(app->http);
    if (!cw_live_free(app->live, SHUTDOWN_GRACE)) {
        /* A check is stuck in a library call: do not wait for it. */
        cw_http_stop(app->http);
        cw_diag_reset(&diag);
        fflush(NULL);
        _exit(code);
    }
    app->live = NULL;
    cw_http_stop(app->http);
    cw_registry_free(app->registry);
    cw_check_kinds_shutdown();
    cw_diag_reset(&diag);
    return code;
}

int main(int argc, char **argv)
{
    struct app app;
    int sigfd;
    int code;

    if (argc > 1 && strcmp(argv[1], "diagnose") == 0)
        return cw_diagnose_main(argc - 1, argv + 1);
    memset(&app, 0, sizeof(app));
    code = parse_flags(argc, argv, &app.flags);
    if (code >= 0)
        return code;
    cw_log_setup(app.flags.cli.log_level, app.flags.cli.log_format);
    cw_cli_tune_malloc();
    if (app.flags.cli.config_check)
        return cw_cli_check_config(app.flags.cli.config_file, check_load, check_release);
    /* Started as root: become the service user first; ICMP sockets are
     * opened by every probe, so CAP_NET_RAW is what stays when datagram
     * ones are not allowed. */
    code = cw_privdrop(&(struct cw_privdrop){.prog = "connwatch",
                                             .default_user = "connwatch",
                                             .user = app.flags.cli.run_as_user,
                                             .as_root = app.flags.cli.run_as_root,
                                             .want_net_raw = true});
    if (code >= 0)
        return code;

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
