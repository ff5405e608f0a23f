/* SPDX-License-Identifier: Apache-2.0 */
/*
 * live.c - the live configuration: loads, reload bookkeeping, the hand-over
 * to the scheduler. See live.h.
 *
 * Threads: loads come from main (startup, SIGHUP) and an HTTP thread
 * (POST /-/reload), serialised by load_lock; scrapes, the landing page and
 * /probe read the live pointer under lock. Lock order: load_lock, then
 * lock, then the scheduler's.
 */
#include "live.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/metric.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cw_live {
    pthread_mutex_t load_lock;    /* serialises loads */
    pthread_mutex_t lock;         /* guards the fields below */
    struct cw_sched *sched;       /* owned */
    const char *config_file;      /* borrowed; NULL: the built-in default */
    const char *self_target;      /* borrowed; NULL: CW_DEFAULT_SELF_TARGET */
    struct cw_settings *settings; /* owned reference: the live configuration */
    bool reload_ok;
    double reload_success_ts; /* seconds since the epoch */
};

static const struct cw_desc desc_reload_ok = {
    .name = "connwatch_config_last_reload_successful",
    .help = "1 if the last configuration load succeeded, 0 if it was rejected.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_reload_ts = {
    .name = "connwatch_config_last_reload_success_timestamp_seconds",
    .help = "Time of the last successful configuration load.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_workers = {
    .name = "connwatch_scheduler_workers",
    .help = "Worker threads of the check scheduler.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_busy = {
    .name = "connwatch_scheduler_busy_workers",
    .help = "Worker threads running a check right now.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_queued = {
    .name = "connwatch_scheduler_queued_runs",
    .help = "Check runs that are due and waiting for a worker.",
    .type = CW_GAUGE,
};

struct cw_live *cw_live_new(struct cw_sched *sched, const char *config_file,
                            const char *self_target)
{
    struct cw_live *l;

    if (sched == NULL)
        return NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        (void)cw_sched_free(sched, CW_S(1));
        return NULL;
    }
    pthread_mutex_init(&l->load_lock, NULL);
    pthread_mutex_init(&l->lock, NULL);
    l->sched = sched;
    l->config_file = config_file;
    l->self_target = self_target;
    return l;
}

size_t cw_live_set(struct cw_live *l, struct cw_settings *settings)
{
    struct cw_settings *old;
    size_t kept;

    pthread_mutex_lock(&l->lock);
    old = l->settings;
    kept = cw_settings_adopt(settings, old);
    cw_sched_apply(l->sched, settings);
    l->settings = cw_settings_ref(settings);
    l->reload_ok = true;
    l->reload_success_ts = (double)cw_now_real() / 1e9;
    pthread_mutex_unlock(&l->lock);
    cw_settings_unref(old);
    return kept;
}

int cw_live_load(struct cw_live *l, struct cw_diag *diag)
{
    const char *file = l->config_file != NULL ? l->config_file : "<built-in>";
    struct cw_settings *fresh;
    bool running;
    char n1[24], n2[24];
    size_t kept;

    pthread_mutex_lock(&l->load_lock);
    fresh = l->config_file != NULL ? cw_settings_load(l->config_file, diag)
                                   : cw_settings_load_builtin(l->self_target, diag);
    pthread_mutex_lock(&l->lock);
    running = l->settings != NULL;
    if (fresh == NULL)
        l->reload_ok = false;
    pthread_mutex_unlock(&l->lock);
    if (fresh == NULL) {
        if (running) {
            snprintf(n1, sizeof(n1), "%zu", diag->n);
            cw_log(CW_LOG_ERROR, "config", "reload failed, keeping the running configuration",
                   "file", file, "errors", n1, "err", diag->n != 0 ? diag->entries[0].text : "",
                   (char *)NULL);
        }
        pthread_mutex_unlock(&l->load_lock);
        return CW_ECONFIG;
    }
    kept = cw_live_set(l, fresh);
    if (running) {
        snprintf(n1, sizeof(n1), "%zu", fresh->ninst);
        snprintf(n2, sizeof(n2), "%zu", kept);
        cw_log(CW_LOG_INFO, "config", "configuration reloaded", "file", file, "checks", n1,
               "unchanged", n2, (char *)NULL);
    }
    cw_settings_unref(fresh);
    pthread_mutex_unlock(&l->load_lock);
    return CW_OK;
}

struct cw_settings *cw_live_settings(struct cw_live *l)
{
    struct cw_settings *s;

    pthread_mutex_lock(&l->lock);
    s = cw_settings_ref(l->settings);
    pthread_mutex_unlock(&l->lock);
    return s;
}

bool cw_live_ready(struct cw_live *l)
{
    return cw_sched_first_round_done(l->sched);
}

void cw_live_emit(void *live, struct cw_batch *b)
{
    struct cw_live *l = live;
    size_t workers, busy, queued;
    bool ok;
    double ts;

    pthread_mutex_lock(&l->lock);
    ok = l->reload_ok;
    ts = l->reload_success_ts;
    pthread_mutex_unlock(&l->lock);
    cw_batch_add(b, &desc_reload_ok, NULL, ok ? 1.0 : 0.0, NULL, NULL);
    cw_batch_add(b, &desc_reload_ts, NULL, ts, NULL, NULL);
    cw_sched_stats(l->sched, &workers, &busy, &queued);
    cw_batch_add(b, &desc_workers, NULL, (double)workers, NULL, NULL);
    cw_batch_add(b, &desc_busy, NULL, (double)busy, NULL, NULL);
    cw_batch_add(b, &desc_queued, NULL, (double)queued, NULL, NULL);
}

bool cw_live_free(struct cw_live *l, cw_duration grace)
{
    if (l == NULL)
        return true;
    if (!cw_sched_free(l->sched, grace))
        return false;
    cw_settings_unref(l->settings);
    pthread_mutex_destroy(&l->lock);
    pthread_mutex_destroy(&l->load_lock);
    free(l);
    return true;
}

bool cw_live_self_target(const char *listen, char *out, size_t outlen)
{
    const char *colon = strrchr(listen, ':');
    size_t hostlen;
    const char *host;
    int n;

    if (colon == NULL || colon[1] == '\0')
        return false;
    host = listen;
    hostlen = (size_t)(colon - listen);
    if (hostlen == 0 || (hostlen == 7 && memcmp(host, "0.0.0.0", 7) == 0)) {
        host = "127.0.0.1";
        hostlen = 9;
    } else if ((hostlen == 4 && memcmp(host, "[::]", 4) == 0) ||
               (hostlen == 2 && memcmp(host, "::", 2) == 0)) {
        host = "[::1]";
        hostlen = 5;
    }
    n = snprintf(out, outlen, "%.*s:%s", (int)hostlen, host, colon + 1);
    return n > 0 && (size_t)n < outlen;
}
