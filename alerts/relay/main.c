/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the connwatch-relay program: flags, the HTTP routes (the webhook
 * endpoint, its metrics, health and reload), signals and reloads. The
 * configuration is config.c, the delivery threads delivery.c.
 *
 * Threads: libmicrohttpd's polling threads run the handlers (parse, spool,
 * answer); each receiver has its own delivery thread (delivery.c); main
 * reads signals from a signalfd. The running configuration is behind
 * app.cfg_lock (handlers read, reloads write); reloads are serialised by
 * app.reload_lock. Spools and counters live in slots keyed by receiver name
 * that outlive reloads (app.slots).
 */
#include "alerts/relay/config.h"
#include "alerts/relay/delivery.h"
#include "alerts/relay/payload.h"
#include "alerts/relay/spool.h"
#include "exporter/core/buf.h"
#include "exporter/core/cli.h"
#include "exporter/core/http.h"
#include "exporter/core/log.h"
#include "exporter/core/metric.h"
#include "exporter/core/privdrop.h"
#include "exporter/core/render.h"
#include "version.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:19369"
#define DEFAULT_CONFIG "/etc/connwatch/relay.yml"

/* Label values of connwatch_relay_notifications_total, by enum cw_notif_result. */
static const char *const result_names[CW_NOTIF_COUNT] = {
    "received", "duplicate", "rejected", "delivered", "failed",
    "fallback", "filtered",  "dropped",  "dead",
};

static const struct cw_desc desc_notifications = {
    .name = "connwatch_relay_notifications_total",
    .help = "Notifications by receiver and result (received, duplicate, rejected, delivered, "
            "failed attempts, fallback, filtered, dropped, dead).",
    .type = CW_COUNTER,
    .labels = {"receiver", "result"},
    .nlabels = 2,
};
static const struct cw_desc desc_queue = {
    .name = "connwatch_relay_queue_length",
    .help = "Notifications in the receiver's spool waiting for delivery.",
    .type = CW_GAUGE,
    .labels = {"receiver"},
    .nlabels = 1,
};
static const struct cw_desc desc_delivery = {
    .name = "connwatch_relay_delivery_seconds",
    .help = "Duration of delivery attempts (one request to the receiver's API), all outcomes.",
    .type = CW_HISTOGRAM,
    .labels = {"receiver"},
    .nlabels = 1,
    .buckets = cw_delivery_buckets,
    .nbuckets = CW_DELIVERY_NBUCKETS,
};
static const struct cw_desc desc_oldest = {
    .name = "connwatch_relay_failing_seconds",
    .help = "How long the receiver's deliveries have been failing without a success (0 when "
            "healthy).",
    .type = CW_GAUGE,
    .labels = {"receiver"},
    .nlabels = 1,
};
static const struct cw_desc desc_rejected = {
    .name = "connwatch_relay_webhook_rejected_total",
    .help = "Webhook requests answered 4xx, by reason.",
    .type = CW_COUNTER,
    .labels = {"reason"},
    .nlabels = 1,
};
static const struct cw_desc desc_reload_ok = {
    .name = "connwatch_relay_config_last_reload_successful",
    .help = "Whether the last configuration reload succeeded.",
    .type = CW_GAUGE,
};

enum reject_reason { REJ_MALFORMED = 0, REJ_UNKNOWN_RECEIVER, REJ_COUNT };
static const char *const reject_names[REJ_COUNT] = {"malformed", "unknown_receiver"};

struct flags {
    const char *config_file; /* borrowed from argv or a literal */
    const char *listen;      /* borrowed from argv or a literal */
    enum cw_log_level log_level;
    enum cw_log_format log_format;
    bool config_check;
    const char *run_as_user; /* borrowed from argv, or NULL */
    bool run_as_root;
    struct cw_http_limits web;
};

struct app {
    struct flags flags;
    pthread_rwlock_t cfg_lock;
    struct cw_relay_config *cfg; /* owned; swapped under cfg_lock (write) */
    pthread_mutex_t reload_lock;
    struct cw_slots slots; /* outlive every configuration */
    atomic_uint_fast64_t rejected[REJ_COUNT];
    atomic_int reload_ok;
    /* owned (cw_http_stop()); stored by serve() once the server runs, while
     * its threads may already answer a scrape (h_metrics): atomic, NULL
     * until then */
    _Atomic(struct cw_http_server *) http;
};

/* reload() swaps in a new configuration, or keeps the old one. */
static int reload(struct app *app, struct cw_buf *why)
{
    struct cw_relay_config *fresh, *old;
    struct cw_diag diag;
    char err[512] = "";
    size_t i;
    int rc = CW_OK;

    pthread_mutex_lock(&app->reload_lock);
    cw_diag_init(&diag);
    fresh = cw_relay_config_load(app->flags.config_file, &diag);
    if (fresh != NULL && strcmp(fresh->spool_dir, app->cfg->spool_dir) != 0) {
        cw_diagf(&diag, NULL, "%s: spool_dir cannot change on reload (restart instead)",
                 app->flags.config_file);
        cw_relay_config_free(fresh);
        fresh = NULL;
    }
    if (fresh == NULL) {
        atomic_store(&app->reload_ok, 0);
        cw_log(CW_LOG_ERROR, "config", "reload failed, keeping the running configuration", "file",
               app->flags.config_file, "err", diag.n != 0 ? diag.entries[0].text : "",
               (char *)NULL);
        for (i = 0; why != NULL && i < diag.n; i++) {
            if (cw_buf_addf(why, "%s\n", diag.entries[i].text) != CW_OK)
                break;
        }
        rc = CW_ECONFIG;
        goto out;
    }
    if (cw_delivery_attach(&app->slots, fresh, err, sizeof(err)) != CW_OK) {
        atomic_store(&app->reload_ok, 0);
        cw_log(CW_LOG_ERROR, "config", "reload failed, keeping the running configuration", "err",
               err, (char *)NULL);
        if (why != NULL && cw_buf_addf(why, "%s\n", err) != CW_OK) {
            /* the log line has it */
        }
        cw_relay_config_free(fresh);
        rc = CW_EIO;
        goto out;
    }
    /* Delivery threads stop between attempts (a request in flight is
     * aborted); the spool keeps everything, the new threads resume it.
     * Handlers see either configuration whole, each with its spools. */
    cw_delivery_stop(app->cfg);
    cw_delivery_rescan(fresh);
    pthread_rwlock_wrlock(&app->cfg_lock);
    old = app->cfg;
    app->cfg = fresh;
    pthread_rwlock_unlock(&app->cfg_lock);
    if (cw_delivery_start(fresh, err, sizeof(err)) != CW_OK) {
        cw_log(CW_LOG_ERROR, "config", "cannot start the reloaded configuration", "err", err,
               (char *)NULL);
        if (why != NULL && cw_buf_addf(why, "%s\n", err) != CW_OK) {
            /* the log line has it */
        }
        rc = CW_EIO;
    }
    cw_relay_config_free(old);
    atomic_store(&app->reload_ok, rc == CW_OK);
    if (rc == CW_OK) {
        char n[24];

        snprintf(n, sizeof(n), "%zu", fresh->nrecv);
        cw_log(CW_LOG_INFO, "config", "configuration reloaded", "file", app->flags.config_file,
               "receivers", n, (char *)NULL);
    }
out:
    cw_diag_reset(&diag);
    pthread_mutex_unlock(&app->reload_lock);
    return rc;
}

/* ---- HTTP handlers ---------------------------------------------------------- */

static int h_webhook(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct app *app = ctx;
    const char *name = cw_http_path(req) + strlen("/webhook/");
    struct cw_relay_receiver *r;
    struct cw_am_msg m;
    enum cw_spool_outcome o;
    char why[300], key[CW_AM_KEY_LEN + 1];
    const char *body;
    size_t len;
    int rc = CW_OK;

    body = cw_http_body(req, &len);
    pthread_rwlock_rdlock(&app->cfg_lock);
    r = cw_relay_config_find(app->cfg, name);
    if (r == NULL) {
        atomic_fetch_add(&app->rejected[REJ_UNKNOWN_RECEIVER], 1);
        resp->status = 404;
        rc = cw_buf_addf(&resp->body, "unknown receiver \"%.64s\"\n", name);
        goto out;
    }
    if (cw_am_parse(body != NULL ? body : "", body != NULL ? len : 0, &m, why, sizeof(why)) !=
        CW_OK) {
        atomic_fetch_add(&app->rejected[REJ_MALFORMED], 1);
        resp->status = 400;
        rc = cw_buf_addf(&resp->body, "bad payload: %s\n", why);
        goto out;
    }
    rc = cw_am_dedupe_key(&m, key);
    cw_am_free(&m);
    if (rc != CW_OK)
        goto out;
    if (cw_spool_put(r->run.slot->spool, body, len, key, &o) != CW_OK) {
        cw_slot_count(r->run.slot, CW_NOTIF_REJECTED, 1);
        resp->status = 500;
        rc = cw_buf_adds(&resp->body, "cannot spool the notification; retry\n");
        goto out;
    }
    switch (o) {
    case CW_SPOOL_ADDED:
        cw_slot_count(r->run.slot, CW_NOTIF_RECEIVED, 1);
        rc = cw_buf_adds(&resp->body, "ok\n");
        break;
    case CW_SPOOL_DUPLICATE:
        cw_slot_count(r->run.slot, CW_NOTIF_DUPLICATE, 1);
        rc = cw_buf_adds(&resp->body, "ok (duplicate)\n");
        break;
    case CW_SPOOL_FULL:
        cw_slot_count(r->run.slot, CW_NOTIF_REJECTED, 1);
        resp->status = 503;
        rc = cw_buf_adds(&resp->body, "queue full; retry later\n");
        break;
    }
out:
    pthread_rwlock_unlock(&app->cfg_lock);
    return rc;
}

static int h_metrics(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct app *app = ctx;
    enum cw_format fmt = cw_render_negotiate(cw_http_header(req, "Accept"));
    bool gzip = cw_accepts_gzip(cw_http_header(req, "Accept-Encoding"));
    struct cw_http_server *http = atomic_load(&app->http);
    struct cw_batch *b;
    struct cw_slot *s;
    size_t i;
    int rc;

    b = cw_batch_new(NULL);
    if (b == NULL)
        return CW_ENOMEM;
    pthread_mutex_lock(&app->slots.lock);
    for (s = app->slots.head; s != NULL; s = s->next) {
        uint64_t hist[CW_DELIVERY_NBUCKETS + 1], cum = 0;
        double sum;
        long long since = atomic_load(&s->failing_since);

        for (i = 0; i < CW_NOTIF_COUNT; i++) {
            const char *lv[2] = {s->name, result_names[i]};

            cw_batch_add(b, &desc_notifications, NULL, (double)atomic_load(&s->counts[i]), lv,
                         NULL);
        }
        cw_batch_add(b, &desc_queue, NULL, (double)cw_spool_length(s->spool),
                     (const char *const[]){s->name}, NULL);
        cw_batch_add(b, &desc_oldest, NULL, since != 0 ? cw_seconds(cw_now() - since) : 0,
                     (const char *const[]){s->name}, NULL);
        pthread_mutex_lock(&s->hist_lock);
        for (i = 0; i <= CW_DELIVERY_NBUCKETS; i++) {
            cum += s->hist[i];
            hist[i] = cum;
        }
        sum = s->hist_sum;
        pthread_mutex_unlock(&s->hist_lock);
        cw_batch_add(b, &desc_delivery, NULL, sum, (const char *const[]){s->name}, hist);
    }
    pthread_mutex_unlock(&app->slots.lock);
    for (i = 0; i < REJ_COUNT; i++)
        cw_batch_add(b, &desc_rejected, NULL, (double)atomic_load(&app->rejected[i]),
                     (const char *const[]){reject_names[i]}, NULL);
    cw_batch_add(b, &desc_reload_ok, NULL, atomic_load(&app->reload_ok), NULL, NULL);
    if (http != NULL) /* NULL only for a scrape answered before serve() stored it */
        cw_http_emit(http, b);
    rc = gzip ? cw_buf_setlimit(&resp->body, 64u << 20) : CW_OK;
    if (rc == CW_OK)
        rc = cw_render_batches(&resp->body, fmt, gzip ? CW_RENDER_GZIP : 0, &b, 1);
    if (gzip)
        resp->content_encoding = "gzip";
    resp->content_type = cw_render_content_type(fmt);
    cw_batch_unref(b);
    return rc;
}

static int relay_reload(void *ctx, struct cw_buf *why)
{
    return reload(ctx, why);
}

/* ---- flags and lifecycle ---------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: connwatch-relay [flags]\n"
               "\n"
               "Receives Alertmanager webhooks on /webhook/RECEIVER and delivers them durably\n"
               "to DingTalk, Aliyun SMS, e-mail or another webhook.\n"
               "\n"
               "flags:\n"
               "  --config.file=PATH          YAML configuration (default " DEFAULT_CONFIG ")\n"
               "  --config.check              validate the configuration, print ok or the errors\n"
               "  --web.listen-address=ADDR   address to listen on (default " DEFAULT_LISTEN
               ")\n" CW_CLI_WEB_USAGE CW_PRIVDROP_USAGE
               "  --log.level=LEVEL           debug, info, warn or error (default info)\n"
               "  --log.format=FORMAT         logfmt or json (default logfmt)\n"
               "  --version                   print the version and exit\n"
               "  --help                      print this help and exit\n"
               "\n"
               "exit codes: 0 normal, 1 runtime failure, 2 configuration or usage error\n");
}

static int parse_flags(int argc, char **argv, struct flags *f)
{
    struct cw_cli cli;
    int code;

    cw_cli_init(&cli);
    cli.config_file = DEFAULT_CONFIG;
    code = cw_cli_parse(argc, argv, "connwatch-relay", usage, NULL, &cli);
    if (code >= 0)
        return code;
    if (cli.nlisten > 1) {
        fprintf(stderr, "connwatch-relay: one --web.listen-address at most\n");
        return 2;
    }
    memset(f, 0, sizeof(*f));
    f->config_file = cli.config_file;
    f->listen = cli.nlisten != 0 ? cli.listen[0] : DEFAULT_LISTEN;
    f->log_level = cli.log_level;
    f->log_format = cli.log_format;
    f->config_check = cli.config_check;
    f->run_as_user = cli.run_as_user;
    f->run_as_root = cli.run_as_root;
    f->web = cli.web;
    return -1;
}

static void *check_load(const char *file, struct cw_diag *diag)
{
    return cw_relay_config_load(file, diag);
}

static void check_release(void *cfg)
{
    cw_relay_config_free(cfg);
}

static int serve(struct app *app, int sigfd)
{
    struct cw_cli_program prog = {.ctx = app, .reload = relay_reload, .reload_slow = true};
    struct cw_http_route routes[3 + CW_CLI_NROUTES];
    struct cw_http_options hopt;
    struct cw_diag diag;
    char why[512] = "";
    int code = 0;

    cw_diag_init(&diag);
    app->cfg = cw_relay_config_load(app->flags.config_file, &diag);
    if (app->cfg == NULL) {
        cw_cli_print_diag(stderr, &diag);
        cw_log(CW_LOG_ERROR, "config", "configuration rejected", "errors",
               diag.n != 0 ? diag.entries[0].text : "", (char *)NULL);
        cw_diag_reset(&diag);
        return 2;
    }
    if (mkdir(app->cfg->spool_dir, 0700) != 0 && errno != EEXIST) {
        char eb[128];

        cw_log(CW_LOG_ERROR, "spool", "cannot create the spool directory", "dir",
               app->cfg->spool_dir, "err", cw_strerror_r(errno, eb, sizeof(eb)), (char *)NULL);
        code = 1;
        goto out;
    }
    if (cw_delivery_attach(&app->slots, app->cfg, why, sizeof(why)) != CW_OK ||
        cw_delivery_start(app->cfg, why, sizeof(why)) != CW_OK) {
        cw_log(CW_LOG_ERROR, "spool", "cannot open the spool", "err", why, (char *)NULL);
        code = 1;
        goto out;
    }
    atomic_store(&app->reload_ok, 1);

    memset(routes, 0, sizeof(routes));
    routes[0] = (struct cw_http_route){.method = "POST",
                                       .path = "/webhook/",
                                       .prefix = true,
                                       .max_body = (size_t)app->cfg->max_request_bytes,
                                       .fn = h_webhook};
    routes[1] = (struct cw_http_route){.method = "GET", .path = "/metrics", .fn = h_metrics};
    cw_cli_routes(&prog, routes + 2);
    memset(&hopt, 0, sizeof(hopt));
    hopt.listen = &app->flags.listen;
    hopt.nlisten = 1;
    hopt.threads = 2;
    hopt.limits = &app->flags.web;
    (void)cw_http_raise_fd_limit();
    app->http = cw_http_start(&hopt, routes, app, &diag);
    if (app->http == NULL) {
        cw_cli_print_diag(stderr, &diag);
        code = 1;
        goto out;
    }
    {
        char n[24];

        snprintf(n, sizeof(n), "%zu", app->cfg->nrecv);
        cw_log(CW_LOG_INFO, "main", "connwatch-relay started", "version", CW_VERSION, "config",
               app->flags.config_file, "receivers", n, "spool_dir", app->cfg->spool_dir,
               (char *)NULL);
    }
    code = cw_cli_serve(&prog, sigfd);
out:
    cw_http_quiesce(app->http);
    cw_http_stop(app->http);
    cw_delivery_stop(app->cfg);
    cw_relay_config_free(app->cfg);
    app->cfg = NULL;
    cw_diag_reset(&diag);
    return code;
}

int main(int argc, char **argv)
{
    struct app app;
    int sigfd, code;

    memset(&app, 0, sizeof(app));
    code = parse_flags(argc, argv, &app.flags);
    if (code >= 0)
        return code;
    cw_log_setup(app.flags.log_level, app.flags.log_format);
    cw_cli_tune_malloc();
    if (app.flags.config_check)
        return cw_cli_check_config(app.flags.config_file, check_load, check_release);
    /* Started as root: become the service user before the spool is opened;
     * the relay needs no privilege. */
    code = cw_privdrop(&(struct cw_privdrop){.prog = "connwatch-relay",
                                             .default_user = "connwatch-relay",
                                             .user = app.flags.run_as_user,
                                             .as_root = app.flags.run_as_root});
    if (code >= 0)
        return code;

    sigfd = cw_cli_signalfd("connwatch-relay");
    if (sigfd < 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        fprintf(stderr, "connwatch-relay: curl_global_init failed\n");
        return 1;
    }
    pthread_rwlock_init(&app.cfg_lock, NULL);
    pthread_mutex_init(&app.reload_lock, NULL);
    cw_slots_init(&app.slots);
    code = serve(&app, sigfd);
    cw_slots_reset(&app.slots);
    pthread_mutex_destroy(&app.reload_lock);
    pthread_rwlock_destroy(&app.cfg_lock);
    curl_global_cleanup();
    close(sigfd);
    return code;
}
