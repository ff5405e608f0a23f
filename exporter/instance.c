/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instance.c - one execution of a check: the cw_run that collectors see,
 * the core's own samples around it, and publication.
 *
 * A run fills a private batch. When kind->run() returns, the core adds
 * connwatch_check_success, _duration_seconds, _failures_total{reason},
 * _failure_info{reason} and _runs_skipped_total, then swaps the batch into
 * the instance under its lock (a pointer swap; scrapes take a reference and
 * render without any lock). Called on scheduler workers, one run per
 * instance at a time; the watchdog path runs on the scheduler thread.
 * Lock order: sched lock, then instance lock; nothing else is taken inside.
 * Time: a run reads the clock it is executed on (cw_instance_execute_clock()):
 * the monotonic clock, or a manual scheduler's.
 */
#include "instance.h"

#include "check.h"
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUN_MAX_BUCKETS 64

/* Process-wide: bumped after every publication (see cw_instance_generation). */
static atomic_uint_fast64_t publish_generation;
/* Process-wide: /probe runs that failed with redirect_refused. */
static atomic_uint_fast64_t probe_redirects_refused;

struct cw_run {
    struct cw_instance *in;    /* borrowed */
    struct cw_batch *batch;    /* owned until published */
    cw_mono (*now)(void *ctx); /* the clock of this run */
    void *now_ctx;             /* borrowed */
    cw_mono start;
    cw_mono deadline;
    bool failed;
    enum cw_reason reason;
    char detail[256];
};

static const struct cw_desc desc_success = {
    .name = "connwatch_check_success",
    .help = "1 if the last run of the check succeeded, 0 if it failed.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_duration = {
    .name = "connwatch_check_duration_seconds",
    .help = "Wall time the last run of the check took.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_failures = {
    .name = "connwatch_check_failures_total",
    .help = "Failed runs of the check, by the layer that broke.",
    .type = CW_COUNTER,
    .labels = {"reason"},
    .nlabels = 1,
};
static const struct cw_desc desc_failure_info = {
    .name = "connwatch_check_failure_info",
    .help = "1 while the check is failing, labelled with the reason of the last failure.",
    .type = CW_GAUGE,
    .labels = {"reason"},
    .nlabels = 1,
};
static const struct cw_desc desc_skipped = {
    .name = "connwatch_check_runs_skipped_total",
    .help = "Scheduled runs skipped because the previous run of the check was still going.",
    .type = CW_COUNTER,
};

cw_mono cw_run_deadline(const struct cw_run *run)
{
    return run->deadline;
}

cw_duration cw_run_remaining(const struct cw_run *run)
{
    cw_duration left = run->deadline - run->now(run->now_ctx);

    return left > 0 ? left : 0;
}

const struct cw_check_info *cw_run_info(const struct cw_run *run)
{
    return &run->in->info;
}

void cw_emit(struct cw_run *run, const struct cw_desc *d, double value,
             const char *const *label_values)
{
    cw_batch_add(run->batch, d, NULL, value, label_values, NULL);
}

void cw_emit_histogram(struct cw_run *run, const struct cw_desc *d, const char *const *label_values,
                       const uint64_t *cumulative, uint64_t count, double sum)
{
    uint64_t h[RUN_MAX_BUCKETS + 1];

    if (d->nbuckets > RUN_MAX_BUCKETS) {
        cw_run_fail(run, CW_REASON_INTERNAL, "histogram %s has more than %d buckets", d->name,
                    RUN_MAX_BUCKETS);
        return;
    }
    memcpy(h, cumulative, d->nbuckets * sizeof(*h));
    h[d->nbuckets] = count;
    cw_batch_add(run->batch, d, NULL, sum, label_values, h);
}

static void run_vfail(struct cw_run *run, enum cw_reason reason, const char *fmt, va_list ap)
{
    if (run->failed)
        return;
    run->failed = true;
    run->reason = reason != CW_REASON_NONE ? reason : CW_REASON_INTERNAL;
    vsnprintf(run->detail, sizeof(run->detail), fmt, ap);
}

void cw_run_fail(struct cw_run *run, enum cw_reason reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    run_vfail(run, reason, fmt, ap);
    va_end(ap);
}

static void run_fail_core(struct cw_run *run, enum cw_reason reason, const char *fmt, ...)
    CW_PRINTF(3, 4);

static void run_fail_core(struct cw_run *run, enum cw_reason reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    run_vfail(run, reason, fmt, ap);
    va_end(ap);
}

#define RUN_LOG_PAIRS 8 /* caller pairs of cw_run_log() */

void cw_run_log(const struct cw_run *run, enum cw_log_level level, const char *msg, ...)
{
    const struct cw_instance *in = run->in;
    const char *kv[2 * (RUN_LOG_PAIRS + 3)] = {NULL}; /* target, pairs, service, check */
    const char *key;
    size_t n = 0;
    va_list ap;

    if (!cw_log_enabled(level))
        return;
    va_start(ap, msg);
    key = va_arg(ap, const char *);
    if (key != NULL && strcmp(key, "target") == 0) {
        /* The collector names the address it talks to instead. */
        kv[n++] = key;
        kv[n++] = va_arg(ap, const char *);
        key = va_arg(ap, const char *);
    } else if (in->target != NULL && in->target[0] != '\0') {
        kv[n++] = "target";
        kv[n++] = in->target;
    }
    for (; key != NULL && n < 2 * (RUN_LOG_PAIRS + 1); key = va_arg(ap, const char *)) {
        kv[n++] = key;
        kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    if (in->service != NULL) {
        kv[n++] = "service";
        kv[n++] = in->service;
    }
    kv[n++] = "check";
    kv[n++] = in->kind->name;
    /* cw_log() stops at the first NULL key: the unused slots end the list. */
    cw_log(level, in->kind->name, msg, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5], kv[6], kv[7],
           kv[8], kv[9], kv[10], kv[11], kv[12], kv[13], kv[14], kv[15], kv[16], kv[17], kv[18],
           kv[19], kv[20], kv[21], (char *)NULL);
}

bool cw_run_failed(const struct cw_run *run)
{
    return run->failed;
}

struct cw_instance *cw_instance_alloc(const struct cw_check_kind *kind)
{
    struct cw_instance *in = calloc(1, sizeof(*in));

    if (in == NULL)
        return NULL;
    atomic_init(&in->refs, 1);
    pthread_mutex_init(&in->lock, NULL);
    in->kind = kind;
    return in;
}

struct cw_instance *cw_instance_ref(struct cw_instance *in)
{
    if (in != NULL)
        atomic_fetch_add(&in->refs, 1);
    return in;
}

void cw_instance_unref(struct cw_instance *in)
{
    if (in == NULL || atomic_fetch_sub(&in->refs, 1) != 1)
        return;
    if (in->state != NULL) {
        in->kind->release(in->state);
        free(in->state);
    }
    cw_batch_unref(in->published);
    pthread_mutex_destroy(&in->lock);
    free(in->service);
    free(in->name);
    free(in->target);
    free(in->prefix);
    free(in->common_prefix);
    free(in->key);
    free(in->fingerprint);
    free(in);
}

bool cw_instance_overran(struct cw_instance *in)
{
    bool overran;

    pthread_mutex_lock(&in->lock);
    overran = in->overran;
    pthread_mutex_unlock(&in->lock);
    return overran;
}

void cw_instance_count_skip(struct cw_instance *in)
{
    pthread_mutex_lock(&in->lock);
    in->skipped++;
    pthread_mutex_unlock(&in->lock);
}

bool cw_instance_has_run(struct cw_instance *in)
{
    bool has_run;

    pthread_mutex_lock(&in->lock);
    has_run = in->has_run;
    pthread_mutex_unlock(&in->lock);
    return has_run;
}

void cw_instance_status(struct cw_instance *in, struct cw_instance_status *out)
{
    out->kind = in->kind->name;
    out->service = in->service != NULL ? in->service : "";
    out->target = in->target;
    out->check = in->kind;
    out->address = in->configured && in->kind->target != NULL ? in->kind->target(in->state) : NULL;
    out->interval = in->interval;
    pthread_mutex_lock(&in->lock);
    out->has_run = in->has_run;
    out->reason = in->reason;
    snprintf(out->last_error, sizeof(out->last_error), "%s",
             in->reason != CW_REASON_NONE ? in->last_error : "");
    out->state_since = in->state_since;
    out->last_run_at = in->last_run_at;
    out->last_took = in->last_took;
    out->last_failure_at = in->last_failure_at;
    snprintf(out->last_failure_error, sizeof(out->last_failure_error), "%s",
             in->last_failure_at != 0 ? in->last_error : "");
    pthread_mutex_unlock(&in->lock);
}

uint64_t cw_instance_generation(void)
{
    return atomic_load(&publish_generation);
}

uint64_t cw_instance_probe_redirects_refused(void)
{
    return atomic_load(&probe_redirects_refused);
}

struct cw_batch *cw_instance_snapshot(struct cw_instance *in)
{
    struct cw_batch *b;

    pthread_mutex_lock(&in->lock);
    b = cw_batch_ref(in->published);
    pthread_mutex_unlock(&in->lock);
    return b;
}

/* add_core_samples() appends the core's series to 'b' using the counters
 * copied under the lock. */
static void add_core_samples(const struct cw_instance *in, struct cw_batch *b, bool ok,
                             cw_duration took, enum cw_reason reason, const uint64_t *failures,
                             uint64_t skipped)
{
    int r;

    cw_batch_set_prefix(b, in->common_prefix);
    cw_batch_add(b, &desc_success, NULL, ok ? 1.0 : 0.0, NULL, NULL);
    cw_batch_add(b, &desc_duration, NULL, cw_seconds(took), NULL, NULL);
    for (r = 1; r < CW_REASON_COUNT; r++) {
        const char *lv[1] = {cw_reason_label((enum cw_reason)r)};

        if (failures[r] != 0 || (in->kind->reasons & (1u << r)))
            cw_batch_add(b, &desc_failures, NULL, (double)failures[r], lv, NULL);
    }
    if (!ok) {
        const char *lv[1] = {cw_reason_label(reason)};

        cw_batch_add(b, &desc_failure_info, NULL, 1.0, lv, NULL);
    }
    cw_batch_add(b, &desc_skipped, NULL, (double)skipped, NULL, NULL);
    cw_batch_set_prefix(b, in->prefix);
}

static void log_transition(struct cw_instance *in, bool was_ok, enum cw_reason was_reason, bool ok,
                           enum cw_reason reason, const char *detail, cw_duration took,
                           cw_duration outage)
{
    char d1[32];

    if (ok && !was_ok) {
        cw_log(CW_LOG_INFO, "check", "check recovered", "check", in->kind->name, "service",
               in->service, "target", in->target, "outage",
               cw_duration_format(outage - outage % CW_MS(1), d1, sizeof(d1)), (char *)NULL);
    } else if (!ok && (was_ok || was_reason != reason)) {
        cw_log(CW_LOG_WARN, "check", "check failing", "check", in->kind->name, "service",
               in->service, "target", in->target, "reason", cw_reason_label(reason), "err", detail,
               (char *)NULL);
    } else if (cw_log_enabled(CW_LOG_DEBUG)) {
        cw_log(CW_LOG_DEBUG, "check", "check run", "check", in->kind->name, "service", in->service,
               "target", in->target, "success", ok ? "1" : "0", "took",
               cw_duration_format(took - took % CW_US(1), d1, sizeof(d1)), (char *)NULL);
    }
}

/* publish() records the outcome of a run (or of an overrun) and swaps in
 * the batch. 'count_failure' is false when the watchdog already counted it. */
static void publish(struct cw_instance *in, struct cw_batch *b, bool ok, enum cw_reason reason,
                    const char *detail, cw_duration took, bool count_failure, cw_mono now)
{
    uint64_t failures[CW_REASON_COUNT];
    struct cw_batch *old;
    bool was_ok;
    enum cw_reason was_reason;
    cw_duration outage = 0;
    uint64_t skipped;

    pthread_mutex_lock(&in->lock);
    was_ok = !in->has_run || in->reason == CW_REASON_NONE;
    was_reason = in->reason;
    if (!ok && count_failure)
        in->failures[reason]++;
    if (!ok && count_failure && in->probe && reason == CW_REASON_REDIRECT_REFUSED)
        atomic_fetch_add(&probe_redirects_refused, 1);
    if (ok && !was_ok)
        outage = now - in->failing_since;
    if (!ok && was_ok)
        in->failing_since = now;
    if (!in->has_run || ok != was_ok || (!ok && reason != was_reason))
        in->state_since = now;
    in->reason = ok ? CW_REASON_NONE : reason;
    in->runs++;
    in->last_run_at = now;
    in->last_took = took;
    if (!ok) {
        in->last_failure_at = now;
        snprintf(in->last_error, sizeof(in->last_error), "%s", detail);
    }
    memcpy(failures, in->failures, sizeof(failures));
    skipped = in->skipped;
    pthread_mutex_unlock(&in->lock);

    add_core_samples(in, b, ok, took, reason, failures, skipped);
    if (cw_batch_err(b) != CW_OK) {
        /* Out of memory while adding the core's own series: publish nothing
         * new rather than a partial batch. */
        cw_log(CW_LOG_ERROR, "check", "cannot publish results", "check", in->kind->name, "service",
               in->service, "target", in->target, "err", cw_strerror(cw_batch_err(b)),
               (char *)NULL);
        cw_batch_unref(b);
        return;
    }

    cw_batch_seal(b); /* kept until the next run: without its growth room */
    pthread_mutex_lock(&in->lock);
    old = in->published;
    in->published = b;
    in->has_run = true;
    pthread_mutex_unlock(&in->lock);
    atomic_fetch_add(&publish_generation, 1);
    cw_batch_unref(old);

    log_transition(in, was_ok, was_reason, ok, reason, detail, took, outage);
}

static cw_mono real_now(void *ctx)
{
    (void)ctx;
    return cw_now();
}

void cw_instance_execute(struct cw_instance *in)
{
    cw_instance_execute_clock(in, real_now, NULL);
}

void cw_instance_execute_clock(struct cw_instance *in, cw_mono (*now)(void *ctx), void *ctx)
{
    struct cw_run run;
    cw_mono end;
    bool overran;

    memset(&run, 0, sizeof(run));
    run.in = in;
    run.now = now;
    run.now_ctx = ctx;
    run.start = now(ctx);
    run.deadline = run.start + in->timeout;
    run.batch = cw_batch_new(in->prefix);
    if (run.batch == NULL) {
        cw_log(CW_LOG_ERROR, "check", "cannot start run", "check", in->kind->name, "err",
               cw_strerror(CW_ENOMEM), (char *)NULL);
        return;
    }
    pthread_mutex_lock(&in->lock);
    in->overran = false;
    pthread_mutex_unlock(&in->lock);

    in->kind->run(in->state, &run);
    end = now(ctx);

    if (cw_batch_err(run.batch) != CW_OK) {
        /* A sticky emit error: the samples are incomplete, so none are kept. */
        int err = cw_batch_err(run.batch);

        cw_batch_unref(run.batch);
        run.batch = cw_batch_new(in->prefix);
        if (run.batch == NULL)
            return;
        run.failed = false;
        run_fail_core(&run, CW_REASON_INTERNAL, "emitting samples failed: %s", cw_strerror(err));
    }
    if (!run.failed && end > run.deadline) {
        char d1[32];

        run_fail_core(
            &run, CW_REASON_TIMEOUT, "run took %s, past its deadline",
            cw_duration_format((end - run.start) - (end - run.start) % CW_MS(1), d1, sizeof(d1)));
    }
    overran = cw_instance_overran(in);
    publish(in, run.batch, !run.failed, run.reason, run.detail, end - run.start,
            !(overran && run.reason == CW_REASON_TIMEOUT), end);
}

void cw_instance_publish_overrun(struct cw_instance *in, cw_duration running_for, cw_mono now)
{
    struct cw_batch *b = cw_batch_new(in->prefix);
    char d1[32], detail[96];

    if (b == NULL)
        return;
    pthread_mutex_lock(&in->lock);
    in->overran = true;
    pthread_mutex_unlock(&in->lock);
    snprintf(detail, sizeof(detail), "still running after %s, past its deadline",
             cw_duration_format(running_for - running_for % CW_MS(1), d1, sizeof(d1)));
    publish(in, b, false, CW_REASON_TIMEOUT, detail, running_for, true, now);
}

static const char *const layer_labels[CW_LAYER_COUNT] = {
    [CW_LAYER_NETWORK] = "network",   [CW_LAYER_TLS] = "tls",     [CW_LAYER_HTTP] = "http",
    [CW_LAYER_DATABASE] = "database", [CW_LAYER_CACHE] = "cache", [CW_LAYER_HOST] = "host",
};

const char *cw_layer_label(enum cw_layer layer)
{
    return (unsigned)layer < CW_LAYER_COUNT ? layer_labels[layer] : "host";
}

enum cw_layer cw_check_layer(const struct cw_check_kind *kind, enum cw_reason reason)
{
    if (kind->layer == CW_LAYER_HOST)
        return CW_LAYER_HOST; /* the host's own figures never fail for a peer */
    switch (reason) {
    case CW_REASON_DNS:
    case CW_REASON_REFUSED:
    case CW_REASON_TIMEOUT:
    case CW_REASON_UNREACHABLE:
        return CW_LAYER_NETWORK;
    case CW_REASON_TLS_HANDSHAKE:
    case CW_REASON_CERT_EXPIRED:
    case CW_REASON_CERT_NOT_YET_VALID:
    case CW_REASON_CERT_UNTRUSTED:
    case CW_REASON_CERT_HOSTNAME:
        return CW_LAYER_TLS; /* a tcp check with tls: true too */
    default:
        return kind->layer;
    }
}

const char *cw_server_full(const char *kind, enum cw_reason reason, const char *error)
{
    if (reason != CW_REASON_REFUSED || error == NULL)
        return NULL;
    if (strcmp(kind, "mysql") == 0 &&
        (strstr(error, "(1040)") != NULL || strstr(error, "Too many connections") != NULL))
        return "max_connections";
    if (strcmp(kind, "redis") == 0 && strstr(error, "max number of clients") != NULL)
        return "maxclients";
    return NULL;
}

const char *cw_server_full_words(const char *limit, enum cw_lang lang)
{
    bool mysql = strcmp(limit, "max_connections") == 0;

    if (lang == CW_LANG_ZH)
        return mysql ? "服务器已满，拒绝新客户端（已达 max_connections）"
                     : "服务器已满，拒绝新客户端（已达 maxclients）";
    return mysql ? "the server refuses new clients (max_connections reached)"
                 : "the server refuses new clients (maxclients reached)";
}

enum cw_layer cw_result_layer(const struct cw_check_kind *kind, enum cw_reason reason,
                              const char *error)
{
    if (cw_server_full(kind->name, reason, error) != NULL)
        return kind->layer; /* the port accepted; the server said no */
    return cw_check_layer(kind, reason);
}
