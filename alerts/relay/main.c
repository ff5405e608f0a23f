/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the connwatch-relay program: flags, configuration, the webhook
 * endpoint, one delivery thread per receiver (retries, backoff with jitter,
 * rate limit, fallback), its metrics, signals and reloads.
 *
 * Threads: libmicrohttpd's polling threads run the handlers (parse, spool,
 * answer); each receiver has its own delivery thread, so a dead receiver
 * never blocks another; main reads signals from a signalfd. The running
 * configuration is behind app.cfg_lock (handlers read, reloads write);
 * reloads are serialised by app.reload_lock. Spools and counters live in
 * slots keyed by receiver name that outlive reloads.
 */
#include "alerts/relay/relay.h"
#include "alerts/relay/spool.h"
#include "exporter/core/cli.h"
#include "exporter/core/http.h"
#include "exporter/core/log.h"
#include "exporter/core/metric.h"
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
#define MAX_MERGE      100
#define FALLBACK_BATCH 1000
#define NBUCKETS       9

static const struct cw_receiver_kind *const cw_receiver_kinds[] = {
    &cw_recv_aliyun_sms, &cw_recv_dingtalk, &cw_recv_email, &cw_recv_webhook, NULL,
};

/* Values of the "result" label of connwatch_relay_notifications_total. */
enum result {
    R_RECEIVED = 0, /* accepted and spooled */
    R_DUPLICATE,    /* accepted, already queued or delivered (dedupe) */
    R_REJECTED,     /* refused: queue full or spool error (5xx, Alertmanager retries) */
    R_DELIVERED,    /* confirmed by the receiver */
    R_FAILED,       /* one failed attempt (retried) */
    R_FALLBACK,     /* copied to the fallback receiver */
    R_FILTERED,     /* not sent: below min_severity, or resolved with send_resolved off */
    R_DROPPED,      /* spool entry unreadable, moved aside */
    R_DEAD,         /* rejected dead_letter_after times: moved to the dead-letter directory */
    R_COUNT
};
static const char *const result_names[R_COUNT] = {
    "received", "duplicate", "rejected", "delivered", "failed",
    "fallback", "filtered",  "dropped",  "dead",
};

static const double delivery_buckets[NBUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

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
    .buckets = delivery_buckets,
    .nbuckets = NBUCKETS,
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

/* A slot: what outlives reloads for one receiver name. */
struct slot {
    char *name;
    struct cw_spool *spool;
    atomic_uint_fast64_t counts[R_COUNT];
    pthread_mutex_t hist_lock;
    uint64_t hist[NBUCKETS + 1]; /* cumulative at render time; raw per bucket here */
    double hist_sum;
    atomic_llong failing_since; /* cw_mono of the first failure in a row, 0 when healthy */
    struct slot *next;
};

struct recv_common {
    char *name;
    int language;
    char *title_template;
    char *alert_template;
    char *fallback;
    cw_duration fallback_after;
    cw_duration retry_initial;
    cw_duration retry_max;
    cw_duration timeout;
    bool send_resolved;
    char *min_severity;
    int64_t dead_letter_after;
};

static const char *const lang_choices[] = {"zh", "en", NULL};

static const struct cw_opt recv_opts[] = {
    CW_OPT("name", CW_OPT_T_STRING, struct recv_common, name, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT_ENUM("language", struct recv_common, language, "zh", lang_choices, 0),
    CW_OPT("title_template", CW_OPT_T_STRING, struct recv_common, title_template, NULL, 0, 0, 0),
    CW_OPT("alert_template", CW_OPT_T_STRING, struct recv_common, alert_template, NULL, 0, 0, 0),
    CW_OPT("fallback", CW_OPT_T_STRING, struct recv_common, fallback, NULL, 0, 0, 0),
    CW_OPT("fallback_after", CW_OPT_T_DURATION, struct recv_common, fallback_after, "5m", 0,
           CW_S(86400), 0),
    CW_OPT("retry_initial", CW_OPT_T_DURATION, struct recv_common, retry_initial, "1s", CW_MS(10),
           CW_S(3600), 0),
    CW_OPT("retry_max", CW_OPT_T_DURATION, struct recv_common, retry_max, "5m", CW_MS(10),
           CW_S(3600), 0),
    CW_OPT("timeout", CW_OPT_T_DURATION, struct recv_common, timeout, "10s", CW_MS(100), CW_S(300),
           0),
    CW_OPT("send_resolved", CW_OPT_T_BOOL, struct recv_common, send_resolved, "true", 0, 0, 0),
    CW_OPT("min_severity", CW_OPT_T_STRING, struct recv_common, min_severity, NULL, 0, 0, 0),
    CW_OPT("dead_letter_after", CW_OPT_T_INT, struct recv_common, dead_letter_after, "3", 1, 100,
           0),
    CW_OPT_END,
};

struct app;

struct receiver {
    struct recv_common c;
    const struct cw_receiver_kind *kind;
    void *state;
    struct cw_receiver_caps caps;
    int min_rank;              /* alerts below are filtered; 0 = all */
    struct receiver *fallback; /* resolved after load */
    struct slot *slot;         /* attached when the configuration goes live */
    pthread_t thread;
    bool started;
    atomic_bool stop;
};

struct relay_config {
    char *spool_dir;
    cw_duration dedupe_window;
    int64_t max_queue;
    int64_t max_request_bytes;
    struct receiver *recv; /* owned */
    size_t nrecv;
};

static const struct cw_opt top_opts[] = {
    CW_OPT("spool_dir", CW_OPT_T_STRING, struct relay_config, spool_dir, "/var/lib/connwatch-relay",
           0, 0, 0),
    CW_OPT("dedupe_window", CW_OPT_T_DURATION, struct relay_config, dedupe_window, "5m", 0,
           CW_S(86400), 0),
    CW_OPT("max_queue", CW_OPT_T_INT, struct relay_config, max_queue, "10000", 1, 1000000, 0),
    CW_OPT("max_request_bytes", CW_OPT_T_INT, struct relay_config, max_request_bytes, "1048576",
           1024, 64 << 20, 0),
    CW_OPT_END,
};
static const char *const top_also[] = {"receivers", NULL};

struct flags {
    const char *config_file;
    const char *listen;
    enum cw_log_level log_level;
    enum cw_log_format log_format;
    bool config_check;
    struct cw_http_limits web;
};

struct app {
    struct flags flags;
    pthread_rwlock_t cfg_lock;
    struct relay_config *cfg; /* owned; swapped under cfg_lock (write) */
    pthread_mutex_t reload_lock;
    pthread_mutex_t slots_lock;
    struct slot *slots; /* owned, never shrinks */
    atomic_uint_fast64_t rejected[REJ_COUNT];
    atomic_int reload_ok;
    /* owned; stored by serve() once the server runs, while its threads may
     * already answer a scrape (h_metrics): atomic, NULL until then */
    _Atomic(struct cw_http_server *) http;
};

/* ---- configuration -------------------------------------------------------- */

static void receiver_release(struct receiver *r)
{
    if (r->kind != NULL && r->state != NULL) {
        r->kind->release(r->state);
        free(r->state);
    }
    cw_opts_release(recv_opts, &r->c);
}

static void config_free(struct relay_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->nrecv; i++)
        receiver_release(&cfg->recv[i]);
    free(cfg->recv);
    cw_opts_release(top_opts, cfg);
    free(cfg);
}

static bool name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* The kind keys a receiver may hold, for cw_opts_apply(); keep in sync with
 * cw_receiver_kinds[]. */
static const char *const kind_keys[] = {"aliyun_sms", "dingtalk", "email", "webhook", NULL};

static int receiver_load(struct receiver *r, const struct cw_node *node, struct cw_diag *diag)
{
    const struct cw_node *kn = NULL;
    const char *why = NULL;
    size_t i;
    int rc;

    if (node->type != CW_NODE_MAP) {
        cw_diagf(diag, node, "a receiver is a mapping (name: ..., <kind>: {...})");
        return CW_ECONFIG;
    }
    rc = cw_opts_apply(recv_opts, &r->c, node, kind_keys, diag);
    if (rc != CW_OK)
        return rc;
    if (!name_ok(r->c.name)) {
        cw_diagf(
            diag, cw_node_get(node, "name"),
            "receiver names use letters, digits, '_', '-' and '.', at most 64, no leading '.'");
        return CW_ECONFIG;
    }
    for (i = 0; cw_receiver_kinds[i] != NULL; i++) {
        const struct cw_node *k = cw_node_get(node, cw_receiver_kinds[i]->name);

        if (k == NULL)
            continue;
        if (r->kind != NULL) {
            cw_diagf_key(diag, k, "a receiver has exactly one kind (also %s)", r->kind->name);
            return CW_ECONFIG;
        }
        r->kind = cw_receiver_kinds[i];
        kn = k;
    }
    if (r->kind == NULL) {
        cw_diagf(diag, node, "receiver \"%s\" names no kind (dingtalk, aliyun_sms, email, webhook)",
                 r->c.name);
        return CW_ECONFIG;
    }
    if (kn->type != CW_NODE_MAP) {
        cw_diagf(diag, kn, "%s: want a mapping, got a %s", r->kind->name, cw_node_type_name(kn));
        return CW_ECONFIG;
    }
    if (r->c.title_template != NULL && !cw_tmpl_check(r->c.title_template, &why)) {
        cw_diagf(diag, cw_node_get(node, "title_template"), "%s", why);
        return CW_ECONFIG;
    }
    if (r->c.alert_template != NULL && !cw_tmpl_check(r->c.alert_template, &why)) {
        cw_diagf(diag, cw_node_get(node, "alert_template"), "%s", why);
        return CW_ECONFIG;
    }
    if (r->c.retry_max < r->c.retry_initial) {
        cw_diagf(diag, cw_node_get(node, "retry_max"), "retry_max is shorter than retry_initial");
        return CW_ECONFIG;
    }
    r->state = calloc(1, r->kind->state_size);
    if (r->state == NULL)
        return CW_ENOMEM;
    r->caps = (struct cw_receiver_caps){0};
    rc = r->kind->configure(r->state, kn, &r->caps, diag);
    if (rc != CW_OK)
        return rc;
    {
        const char *ms = r->c.min_severity != NULL ? r->c.min_severity : r->caps.min_severity;

        if (ms == NULL || strcmp(ms, "none") == 0) {
            r->min_rank = 0;
        } else {
            r->min_rank = cw_severity_rank(ms);
            if (r->min_rank == 0) {
                cw_diagf(diag, cw_node_get(node, "min_severity"),
                         "min_severity is one of none, info, warning, critical");
                return CW_ECONFIG;
            }
        }
    }
    return CW_OK;
}

static struct relay_config *config_load(const char *file, struct cw_diag *diag)
{
    struct relay_config *cfg;
    struct cw_node *root;
    const struct cw_node *rn;
    size_t i, j;
    int rc;

    root = cw_node_parse_file(file, diag);
    if (root == NULL)
        return NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        goto out_fail;
    if (root->type != CW_NODE_MAP) {
        cw_diagf(diag, root, "the relay configuration is a mapping");
        goto out_fail;
    }
    rc = cw_opts_apply(top_opts, cfg, root, top_also, diag);
    if (rc != CW_OK)
        goto out_fail;
    rn = cw_node_get(root, "receivers");
    if (rn == NULL || rn->type != CW_NODE_SEQ || rn->nitems == 0) {
        cw_diagf(diag, rn != NULL ? rn : root, "receivers: want a non-empty list");
        goto out_fail;
    }
    cfg->recv = calloc(rn->nitems, sizeof(*cfg->recv));
    if (cfg->recv == NULL)
        goto out_fail;
    for (i = 0; i < rn->nitems; i++) {
        cfg->nrecv++;
        if (receiver_load(&cfg->recv[i], rn->items[i], diag) != CW_OK)
            goto out_fail;
        for (j = 0; j < i; j++) {
            if (strcmp(cfg->recv[j].c.name, cfg->recv[i].c.name) == 0) {
                cw_diagf(diag, cw_node_get(rn->items[i], "name"), "duplicate receiver name \"%s\"",
                         cfg->recv[i].c.name);
                goto out_fail;
            }
        }
    }
    for (i = 0; i < cfg->nrecv; i++) {
        struct receiver *r = &cfg->recv[i];

        if (r->c.fallback == NULL)
            continue;
        for (j = 0; j < cfg->nrecv; j++) {
            if (j != i && strcmp(cfg->recv[j].c.name, r->c.fallback) == 0)
                r->fallback = &cfg->recv[j];
        }
        if (r->fallback == NULL) {
            cw_diagf(diag, cw_node_get(rn->items[i], "fallback"),
                     "fallback \"%s\" is not another receiver of this file", r->c.fallback);
            goto out_fail;
        }
    }
    cw_node_free(root);
    return cfg;

out_fail:
    if (diag->n == 0)
        cw_diagf(diag, NULL, "out of memory");
    config_free(cfg);
    cw_node_free(root);
    return NULL;
}

/* ---- slots ------------------------------------------------------------------ */

static struct slot *slot_get(struct app *app, const struct relay_config *cfg, const char *name,
                             char *why, size_t whylen)
{
    struct slot *s;
    char dir[4096];

    pthread_mutex_lock(&app->slots_lock);
    for (s = app->slots; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0)
            goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->name = strdup(name);
    if (s == NULL || s->name == NULL) {
        free(s);
        s = NULL;
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s/%s", cfg->spool_dir, name);
    s->spool = cw_spool_open(dir, cfg->dedupe_window, (size_t)cfg->max_queue, why, whylen);
    if (s->spool == NULL) {
        free(s->name);
        free(s);
        s = NULL;
        goto out;
    }
    pthread_mutex_init(&s->hist_lock, NULL);
    s->next = app->slots;
    app->slots = s;
    if (cw_spool_length(s->spool) > 0) {
        char n[24];

        snprintf(n, sizeof(n), "%zu", cw_spool_length(s->spool));
        cw_log(CW_LOG_INFO, "spool", "resuming spooled notifications", "receiver", name, "queued",
               n, (char *)NULL);
    }
out:
    pthread_mutex_unlock(&app->slots_lock);
    return s;
}

static void slots_free(struct app *app)
{
    struct slot *s = app->slots, *next;

    for (; s != NULL; s = next) {
        next = s->next;
        cw_spool_close(s->spool);
        pthread_mutex_destroy(&s->hist_lock);
        free(s->name);
        free(s);
    }
    app->slots = NULL;
}

/* ---- delivery ------------------------------------------------------------- */

static void count(struct slot *s, enum result r, uint64_t n)
{
    atomic_fetch_add(&s->counts[r], n);
}

static void observe(struct slot *s, double secs)
{
    size_t i;

    pthread_mutex_lock(&s->hist_lock);
    for (i = 0; i < NBUCKETS && secs > delivery_buckets[i]; i++)
        ;
    s->hist[i]++;
    s->hist_sum += secs;
    pthread_mutex_unlock(&s->hist_lock);
}

/* keep() applies send_resolved and min_severity: whether 'm' goes out. */
static bool keep(const struct receiver *r, const struct cw_am_msg *m)
{
    size_t i;

    if (!r->c.send_resolved && strcmp(m->status, "resolved") == 0)
        return false;
    if (r->min_rank == 0)
        return true;
    for (i = 0; i < m->nalerts; i++) {
        if (cw_severity_rank(cw_am_label(&m->alerts[i], "severity")) >= r->min_rank)
            return true;
    }
    return false;
}

struct worker {
    struct receiver *r;
    cw_mono *sent; /* ring of the last rate_limit request times */
    size_t nsent, head;
    cw_duration backoff;
    unsigned seed;
    uint64_t rejected_seq; /* head entry the receiver rejected, 0 = none */
    int64_t rejections;    /* of rejected_seq, in a row */
    bool solo;             /* a merged message was rejected: send the head alone */
};

/* rate_wait() returns 0 when a request may go now (and how many tokens are
 * left in *tokens), else the time to wait. */
static cw_duration rate_wait(struct worker *w, cw_mono now, size_t *tokens)
{
    const struct receiver *r = w->r;
    size_t i, inwin = 0;
    cw_mono oldest = 0;

    *tokens = SIZE_MAX;
    if (r->caps.rate_limit == 0)
        return 0;
    for (i = 0; i < w->nsent; i++) {
        cw_mono t = w->sent[i];

        if (now - t < r->caps.rate_window) {
            if (inwin == 0 || t < oldest)
                oldest = t;
            inwin++;
        }
    }
    if (inwin >= r->caps.rate_limit)
        return oldest + r->caps.rate_window - now + CW_MS(1);
    *tokens = r->caps.rate_limit - inwin;
    return 0;
}

static void rate_note(struct worker *w, cw_mono now)
{
    if (w->r->caps.rate_limit == 0)
        return;
    w->sent[w->head] = now;
    w->head = (w->head + 1) % w->r->caps.rate_limit;
    if (w->nsent < w->r->caps.rate_limit)
        w->nsent++;
}

/* hand_to_fallback() copies every queued notification of 'r' that has not
 * been copied yet (up to FALLBACK_BATCH per call) to its fallback's spool. */
static void hand_to_fallback(struct receiver *r)
{
    struct slot *fs = r->fallback->slot;
    struct cw_spool_item *items;
    size_t i, n, copied = 0;

    items = calloc(FALLBACK_BATCH, sizeof(*items));
    if (items == NULL)
        return;
    n = cw_spool_peek(r->slot->spool, FALLBACK_BATCH, items);
    for (i = 0; i < n; i++) {
        enum cw_spool_outcome o;

        if (items[i].fell_back)
            continue;
        if (cw_spool_put(fs->spool, items[i].body, items[i].len, items[i].key, &o) != CW_OK)
            continue; /* logged; tried again after the next failure */
        cw_spool_mark_fallback(r->slot->spool, items[i].seq);
        count(r->slot, R_FALLBACK, 1);
        count(fs,
              o == CW_SPOOL_ADDED       ? R_RECEIVED
              : o == CW_SPOOL_DUPLICATE ? R_DUPLICATE
                                        : R_REJECTED,
              1);
        copied++;
    }
    cw_spool_items_free(items, n);
    free(items);
    if (copied > 0) {
        char c[24];

        snprintf(c, sizeof(c), "%zu", copied);
        cw_log(CW_LOG_WARN, "relay", "notifications handed to the fallback receiver", "receiver",
               r->c.name, "fallback", r->fallback->c.name, "notifications", c, (char *)NULL);
    }
}

/* jittered() returns 75..125 % of 'step'. */
static cw_duration jittered(struct worker *w, cw_duration step)
{
    return step / 4 * 3 +
           (cw_duration)((double)step / 2 * ((double)rand_r(&w->seed) / (double)RAND_MAX));
}

/* rejected() handles an answer no retry of the same message can change (a
 * 4xx, a message that cannot be built). The receiver itself is fine, so
 * the backoff and the failing time are left alone. A merged message is
 * retried alone first, so that the rejection is the head entry's own; the
 * head then gets dead_letter_after attempts in all, retry_initial apart,
 * and goes to the dead-letter directory, logged once, and the queue moves
 * on. Returns the delay before the next attempt. */
static cw_duration rejected(struct worker *w, const struct cw_spool_item *items, size_t used,
                            const struct cw_deliver_info *info)
{
    struct receiver *r = w->r;
    struct slot *s = r->slot;
    char name[96], n[24];

    if (used > 1) {
        w->solo = true;
        return jittered(w, r->c.retry_initial);
    }
    if (w->rejected_seq != items[0].seq) {
        w->rejected_seq = items[0].seq;
        w->rejections = 0;
    }
    w->rejections++;
    if (w->rejections < r->c.dead_letter_after) {
        cw_log(CW_LOG_DEBUG, "relay", "notification rejected, will retry", "receiver", r->c.name,
               "err", info->detail, (char *)NULL);
        return jittered(w, r->c.retry_initial);
    }
    snprintf(n, sizeof(n), "%lld", (long long)w->rejections);
    if (cw_spool_bury(s->spool, items[0].seq, name, sizeof(name)) != CW_OK)
        return jittered(w, r->c.retry_max); /* logged; stays queued */
    count(s, R_DEAD, 1);
    w->rejected_seq = 0;
    w->solo = false;
    cw_log(CW_LOG_WARN, "relay", "notification moved to the dead-letter directory", "receiver",
           r->c.name, "id", name, "attempts", n, "err", info->detail, (char *)NULL);
    return 0;
}

/* deliver_once() makes one attempt; returns the delay before the next one. */
static cw_duration deliver_once(struct worker *w)
{
    struct receiver *r = w->r;
    struct slot *s = r->slot;
    struct cw_spool_item items[MAX_MERGE];
    struct cw_am_msg msgs[MAX_MERGE];
    struct cw_am_msg *ptrs[MAX_MERGE];
    struct cw_deliver_info info;
    struct cw_deliver_ctx ctx;
    size_t n, k = 0, i, used = 0, tokens, max = 1, qlen;
    cw_mono now = cw_now(), t0;
    cw_duration wait, delay = 0;
    enum cw_deliver_result res;
    char why[256];

    wait = rate_wait(w, now, &tokens);
    if (wait > 0)
        return wait;
    qlen = cw_spool_length(s->spool);
    if (r->caps.merge && r->caps.rate_limit > 0 && tokens != SIZE_MAX && qlen > 1 && !w->solo) {
        /* Spread the queue over the requests left in the window: merge
         * rather than make notifications wait for the next window. */
        max = (qlen + tokens - 1) / tokens;
        if (max > MAX_MERGE)
            max = MAX_MERGE;
    }
    n = cw_spool_peek(s->spool, max, items);
    for (i = 0; i < n; i++) {
        if (cw_am_parse(items[i].body, items[i].len, &msgs[k], why, sizeof(why)) != CW_OK) {
            cw_log(CW_LOG_ERROR, "relay", "spooled notification does not parse", "receiver",
                   r->c.name, "err", why, (char *)NULL);
            cw_spool_quarantine(s->spool, items[i].seq);
            count(s, R_DROPPED, 1);
            free(items[i].body);
            items[i].body = NULL;
            continue;
        }
        if (!keep(r, &msgs[k])) {
            cw_am_free(&msgs[k]);
            if (cw_spool_remove(s->spool, items[i].seq) != CW_OK) {
                /* logged; the entry is gone from the queue either way */
            }
            count(s, R_FILTERED, 1);
            free(items[i].body);
            items[i].body = NULL;
            continue;
        }
        items[k] = items[i];
        if (k != i)
            items[i].body = NULL;
        ptrs[k] = &msgs[k];
        k++;
    }
    for (i = k; i < n; i++) {
        free(items[i].body);
        items[i].body = NULL;
    }
    if (k == 0)
        return 0;

    memset(&info, 0, sizeof(info));
    ctx = (struct cw_deliver_ctx){.receiver = r->c.name,
                                  .lang = (enum cw_lang)r->c.language,
                                  .title_tmpl = r->c.title_template,
                                  .alert_tmpl = r->c.alert_template,
                                  .timeout = r->c.timeout,
                                  .stop = &r->stop};
    t0 = cw_now();
    res = r->kind->deliver(r->state, &ctx, ptrs, k, &used, &info);
    now = cw_now();
    rate_note(w, now);
    observe(s, cw_seconds(now - t0));
    if (atomic_load(&r->stop) && res != CW_DELIVER_OK)
        goto out; /* aborted by a shutdown: not a failure of the receiver */
    if (res == CW_DELIVER_OK) {
        long long since = atomic_exchange(&s->failing_since, 0);

        if (used > k || used == 0)
            used = k;
        for (i = 0; i < used; i++) {
            if (cw_spool_remove(s->spool, items[i].seq) != CW_OK) {
                /* logged; at worst it is delivered again after a restart */
            }
        }
        count(s, R_DELIVERED, used);
        w->backoff = 0;
        w->rejected_seq = 0;
        w->solo = false;
        if (since != 0) {
            char d[32];

            cw_log(CW_LOG_INFO, "relay", "delivery recovered", "receiver", r->c.name, "failing_for",
                   cw_duration_format(now - since, d, sizeof(d)), (char *)NULL);
        }
        if (cw_log_enabled(CW_LOG_DEBUG)) {
            char u[24];

            snprintf(u, sizeof(u), "%zu", used);
            cw_log(CW_LOG_DEBUG, "relay", "delivered", "receiver", r->c.name, "notifications", u,
                   (char *)NULL);
        }
        goto out;
    }
    count(s, R_FAILED, 1);
    if (res == CW_DELIVER_REJECTED) {
        delay = rejected(w, items, used, &info);
        goto out;
    }
    w->backoff = w->backoff == 0 ? r->c.retry_initial : w->backoff * 2;
    if (w->backoff > r->c.retry_max)
        w->backoff = r->c.retry_max;
    delay = jittered(w, w->backoff);
    if (res == CW_DELIVER_THROTTLED && delay < info.retry_after)
        delay = info.retry_after;
    {
        long long zero = 0;
        char d[32];

        if (atomic_compare_exchange_strong(&s->failing_since, &zero, (long long)now))
            cw_log(CW_LOG_WARN, "relay", "delivery failing, will retry", "receiver", r->c.name,
                   "kind", r->kind->name, "err", info.detail, "retry_in",
                   cw_duration_format(delay, d, sizeof(d)), (char *)NULL);
        else
            cw_log(CW_LOG_DEBUG, "relay", "delivery failed again", "receiver", r->c.name, "err",
                   info.detail, (char *)NULL);
        if (r->fallback != NULL && r->fallback->slot != NULL &&
            now - atomic_load(&s->failing_since) >= r->c.fallback_after)
            hand_to_fallback(r);
    }
out:
    for (i = 0; i < k; i++)
        cw_am_free(&msgs[i]);
    cw_spool_items_free(items, k);
    return delay;
}

static void *worker_main(void *arg)
{
    struct receiver *r = arg;
    struct worker w;
    cw_mono next = 0;

    memset(&w, 0, sizeof(w));
    w.r = r;
    w.seed = (unsigned)cw_now() ^ (unsigned)(uintptr_t)r;
    if (r->caps.rate_limit > 0) {
        w.sent = calloc(r->caps.rate_limit, sizeof(*w.sent));
        if (w.sent == NULL) {
            cw_log(CW_LOG_ERROR, "relay", "out of memory in a delivery thread", "receiver",
                   r->c.name, (char *)NULL);
            return NULL;
        }
    }
    while (!atomic_load(&r->stop)) {
        cw_duration d;

        if (!cw_spool_wait(r->slot->spool, next, &r->stop))
            continue;
        d = deliver_once(&w);
        next = cw_now() + d;
    }
    free(w.sent);
    return NULL;
}

/* config_attach() gives every receiver its slot (spool and counters),
 * opening the spools of new receivers. */
static int config_attach(struct app *app, struct relay_config *cfg, char *why, size_t whylen)
{
    size_t i;

    for (i = 0; i < cfg->nrecv; i++) {
        cfg->recv[i].slot = slot_get(app, cfg, cfg->recv[i].c.name, why, whylen);
        if (cfg->recv[i].slot == NULL)
            return CW_EIO;
    }
    return CW_OK;
}

/* config_rescan() queues the entry files put back by hand into the spool
 * directories (a replayed dead letter). Called while no delivery thread
 * runs, so that no request is aborted half-way by the reload and sent twice. */
static void config_rescan(struct relay_config *cfg)
{
    size_t i, added;
    char n[24];

    for (i = 0; i < cfg->nrecv; i++) {
        added = cw_spool_rescan(cfg->recv[i].slot->spool);
        if (added == 0)
            continue;
        snprintf(n, sizeof(n), "%zu", added);
        cw_log(CW_LOG_INFO, "spool", "queued entries found in the spool directory", "receiver",
               cfg->recv[i].c.name, "entries", n, (char *)NULL);
    }
}

/* config_start() starts the delivery threads of an attached configuration. */
static int config_start(struct relay_config *cfg, char *why, size_t whylen)
{
    size_t i;

    for (i = 0; i < cfg->nrecv; i++) {
        struct receiver *r = &cfg->recv[i];

        atomic_store(&r->stop, false);
        if (pthread_create(&r->thread, NULL, worker_main, r) != 0) {
            snprintf(why, whylen, "cannot start a delivery thread");
            return CW_EIO;
        }
        r->started = true;
    }
    return CW_OK;
}

static void config_stop(struct relay_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->nrecv; i++) {
        atomic_store(&cfg->recv[i].stop, true);
        if (cfg->recv[i].slot != NULL)
            cw_spool_kick(cfg->recv[i].slot->spool);
    }
    for (i = 0; i < cfg->nrecv; i++) {
        if (cfg->recv[i].started)
            pthread_join(cfg->recv[i].thread, NULL);
        cfg->recv[i].started = false;
    }
}

/* reload() swaps in a new configuration, or keeps the old one. */
static int reload(struct app *app, struct cw_buf *why)
{
    struct relay_config *fresh, *old;
    struct cw_diag diag;
    char err[512] = "";
    size_t i;
    int rc = CW_OK;

    pthread_mutex_lock(&app->reload_lock);
    cw_diag_init(&diag);
    fresh = config_load(app->flags.config_file, &diag);
    if (fresh != NULL && strcmp(fresh->spool_dir, app->cfg->spool_dir) != 0) {
        cw_diagf(&diag, NULL, "%s: spool_dir cannot change on reload (restart instead)",
                 app->flags.config_file);
        config_free(fresh);
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
    if (config_attach(app, fresh, err, sizeof(err)) != CW_OK) {
        atomic_store(&app->reload_ok, 0);
        cw_log(CW_LOG_ERROR, "config", "reload failed, keeping the running configuration", "err",
               err, (char *)NULL);
        if (why != NULL && cw_buf_addf(why, "%s\n", err) != CW_OK) {
            /* the log line has it */
        }
        config_free(fresh);
        rc = CW_EIO;
        goto out;
    }
    /* Delivery threads stop between attempts (a request in flight is
     * aborted); the spool keeps everything, the new threads resume it.
     * Handlers see either configuration whole, each with its spools. */
    config_stop(app->cfg);
    config_rescan(fresh);
    pthread_rwlock_wrlock(&app->cfg_lock);
    old = app->cfg;
    app->cfg = fresh;
    pthread_rwlock_unlock(&app->cfg_lock);
    if (config_start(fresh, err, sizeof(err)) != CW_OK) {
        cw_log(CW_LOG_ERROR, "config", "cannot start the reloaded configuration", "err", err,
               (char *)NULL);
        if (why != NULL && cw_buf_addf(why, "%s\n", err) != CW_OK) {
            /* the log line has it */
        }
        rc = CW_EIO;
    }
    config_free(old);
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
    struct receiver *r = NULL;
    struct cw_am_msg m;
    enum cw_spool_outcome o;
    char why[300], key[CW_AM_KEY_LEN + 1];
    const char *body;
    size_t len, i;
    int rc = CW_OK;

    body = cw_http_body(req, &len);
    pthread_rwlock_rdlock(&app->cfg_lock);
    for (i = 0; i < app->cfg->nrecv && r == NULL; i++) {
        if (strcmp(app->cfg->recv[i].c.name, name) == 0)
            r = &app->cfg->recv[i];
    }
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
    if (cw_spool_put(r->slot->spool, body, len, key, &o) != CW_OK) {
        count(r->slot, R_REJECTED, 1);
        resp->status = 500;
        rc = cw_buf_adds(&resp->body, "cannot spool the notification; retry\n");
        goto out;
    }
    switch (o) {
    case CW_SPOOL_ADDED:
        count(r->slot, R_RECEIVED, 1);
        rc = cw_buf_adds(&resp->body, "ok\n");
        break;
    case CW_SPOOL_DUPLICATE:
        count(r->slot, R_DUPLICATE, 1);
        rc = cw_buf_adds(&resp->body, "ok (duplicate)\n");
        break;
    case CW_SPOOL_FULL:
        count(r->slot, R_REJECTED, 1);
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
    struct cw_render_item *items = NULL;
    struct cw_http_server *http = atomic_load(&app->http);
    struct cw_batch *b;
    struct cw_buf text;
    struct slot *s;
    size_t i;
    int rc;

    b = cw_batch_new(NULL);
    if (b == NULL)
        return CW_ENOMEM;
    pthread_mutex_lock(&app->slots_lock);
    for (s = app->slots; s != NULL; s = s->next) {
        uint64_t hist[NBUCKETS + 1], cum = 0;
        double sum;
        long long since = atomic_load(&s->failing_since);

        for (i = 0; i < R_COUNT; i++) {
            const char *lv[2] = {s->name, result_names[i]};

            cw_batch_add(b, &desc_notifications, NULL, (double)atomic_load(&s->counts[i]), lv,
                         NULL);
        }
        cw_batch_add(b, &desc_queue, NULL, (double)cw_spool_length(s->spool),
                     (const char *const[]){s->name}, NULL);
        cw_batch_add(b, &desc_oldest, NULL, since != 0 ? cw_seconds(cw_now() - since) : 0,
                     (const char *const[]){s->name}, NULL);
        pthread_mutex_lock(&s->hist_lock);
        for (i = 0; i <= NBUCKETS; i++) {
            cum += s->hist[i];
            hist[i] = cum;
        }
        sum = s->hist_sum;
        pthread_mutex_unlock(&s->hist_lock);
        cw_batch_add(b, &desc_delivery, NULL, sum, (const char *const[]){s->name}, hist);
    }
    pthread_mutex_unlock(&app->slots_lock);
    for (i = 0; i < REJ_COUNT; i++)
        cw_batch_add(b, &desc_rejected, NULL, (double)atomic_load(&app->rejected[i]),
                     (const char *const[]){reject_names[i]}, NULL);
    cw_batch_add(b, &desc_reload_ok, NULL, atomic_load(&app->reload_ok), NULL, NULL);
    if (http != NULL) /* NULL only for a scrape answered before serve() stored it */
        cw_http_emit(http, b);
    rc = b->err;
    if (rc == CW_OK) {
        items = calloc(b->n ? b->n : 1, sizeof(*items));
        rc = items == NULL ? CW_ENOMEM : CW_OK;
    }
    cw_buf_init(&text, 64u << 20);
    if (rc == CW_OK) {
        cw_batch_items(b, items);
        rc = cw_render(gzip ? &text : &resp->body, fmt, items, b->n);
    }
    if (rc == CW_OK && gzip) {
        resp->body.limit = 64u << 20;
        rc = cw_gzip(text.data != NULL ? text.data : "", text.len, 1, &resp->body);
        resp->content_encoding = "gzip";
    }
    resp->content_type = cw_render_content_type(fmt);
    cw_buf_reset(&text);
    free(items);
    cw_batch_unref(b);
    return rc;
}

static int h_healthy(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    return cw_buf_adds(&resp->body, "healthy\n");
}

static int h_ready(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    return cw_buf_adds(&resp->body, "ready\n");
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
               ")\n" CW_CLI_WEB_USAGE
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
    f->web = cli.web;
    return -1;
}

static int check_config(const struct flags *f)
{
    struct cw_diag diag;
    struct relay_config *cfg;

    cw_diag_init(&diag);
    cfg = config_load(f->config_file, &diag);
    if (cfg == NULL) {
        cw_cli_print_diag(stderr, &diag);
        fprintf(stderr, "%zu error%s\n", diag.n, diag.n == 1 ? "" : "s");
        cw_diag_reset(&diag);
        return 2;
    }
    printf("ok\n");
    config_free(cfg);
    cw_diag_reset(&diag);
    return 0;
}

static int serve(struct app *app, int sigfd)
{
    struct cw_http_route routes[7];
    struct cw_http_options hopt;
    struct cw_diag diag;
    char why[512] = "";
    int code = 0;

    cw_diag_init(&diag);
    app->cfg = config_load(app->flags.config_file, &diag);
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
    if (config_attach(app, app->cfg, why, sizeof(why)) != CW_OK ||
        config_start(app->cfg, why, sizeof(why)) != CW_OK) {
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
    routes[2] = (struct cw_http_route){.method = "GET", .path = "/-/healthy", .fn = h_healthy};
    routes[3] = (struct cw_http_route){.method = "GET", .path = "/-/ready", .fn = h_ready};
    routes[4] = (struct cw_http_route){
        .method = "POST", .path = "/-/reload", .max_body = 4096, .fn = h_reload, .slow = true};
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
            (void)reload(app, NULL); /* logged inside */
            continue;
        }
        cw_log(CW_LOG_INFO, "main", "shutting down", "signal", sigabbrev_np((int)si.ssi_signo),
               (char *)NULL);
        break;
    }
out:
    cw_http_quiesce(app->http);
    cw_http_stop(app->http);
    config_stop(app->cfg);
    config_free(app->cfg);
    app->cfg = NULL;
    slots_free(app);
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
    if (app.flags.config_check)
        return check_config(&app.flags);

    sigfd = cw_cli_signalfd("connwatch-relay");
    if (sigfd < 0)
        return 1;
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        fprintf(stderr, "connwatch-relay: curl_global_init failed\n");
        return 1;
    }
    pthread_rwlock_init(&app.cfg_lock, NULL);
    pthread_mutex_init(&app.reload_lock, NULL);
    pthread_mutex_init(&app.slots_lock, NULL);
    code = serve(&app, sigfd);
    pthread_mutex_destroy(&app.slots_lock);
    pthread_mutex_destroy(&app.reload_lock);
    pthread_rwlock_destroy(&app.cfg_lock);
    curl_global_cleanup();
    close(sigfd);
    return code;
}
