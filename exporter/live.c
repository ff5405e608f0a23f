/* SPDX-License-Identifier: Apache-2.0 */
/*
 * live.c - the live configuration: loads, reload bookkeeping, the hand-over
 * to the scheduler. See live.h.
 *
 * Threads: loads come from main (startup, SIGHUP), an HTTP thread
 * (POST /-/reload) and the targets watcher (a thread of its own that looks
 * at the targets files every CW_TARGETS_POLL), serialised by load_lock;
 * scrapes, the landing page and /probe read the live pointer under lock.
 * Lock order: load_lock, then lock, then the scheduler's; watch_lock only
 * guards the watcher's stop flag.
 */
#include "live.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/metric.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What /metrics says about one targets file (a file named by several
 * stanzas is one entry). */
struct targets_stat {
    char *file; /* owned: the resolved path */
    double errors;
    bool ok;
    double targets;
    bool counted; /* this load's rejection is counted (a file several stanzas name) */
};

struct cw_live {
    pthread_mutex_t load_lock;    /* serialises loads */
    pthread_mutex_t lock;         /* guards the fields below */
    struct cw_sched *sched;       /* owned */
    const char *config_file;      /* borrowed; NULL: the built-in default */
    const char *self_target;      /* borrowed; NULL: CW_DEFAULT_SELF_TARGET */
    struct cw_settings *settings; /* owned reference: the live configuration */
    bool reload_ok;
    double reload_success_ts;    /* seconds since the epoch */
    struct targets_stat *tstats; /* owned: one per targets file of the live settings */
    size_t ntstats;

    /* A refresh that failed (only the watcher, under load_lock, touches
     * these): the settings it started from and the identities of their
     * targets files then, so that the same files are not loaded again
     * every poll. */
    struct cw_settings *stuck_for; /* owned reference, or NULL */
    struct cw_file_id *stuck;      /* owned: stuck_for->ntsrc entries */

    pthread_mutex_t watch_lock; /* guards 'stop' */
    pthread_cond_t watch_wake;  /* on CLOCK_MONOTONIC */
    bool stop;
    bool watching; /* the watcher thread runs */
    pthread_t watcher;
};

static const struct cw_desc desc_tf_errors = {
    .name = "connwatch_targets_file_errors_total",
    .help = "Versions of a targets file that were rejected (the previous targets kept).",
    .type = CW_COUNTER,
    .labels = {"file"},
    .nlabels = 1,
};
static const struct cw_desc desc_tf_ok = {
    .name = "connwatch_targets_file_last_load_successful",
    .help = "1 if the last read of a targets file loaded, 0 if it was rejected.",
    .type = CW_GAUGE,
    .labels = {"file"},
    .nlabels = 1,
};
static const struct cw_desc desc_tf_targets = {
    .name = "connwatch_targets_file_targets",
    .help = "Check instances made from a targets file.",
    .type = CW_GAUGE,
    .labels = {"file"},
    .nlabels = 1,
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

static void live_refresh(struct cw_live *l);

/* watch_main() is the targets watcher: every CW_TARGETS_POLL, a stat() of
 * each targets file of the live settings, and a refresh when one changed. */
static void *watch_main(void *arg)
{
    struct cw_live *l = arg;
    struct timespec ts;
    cw_mono next;

    pthread_mutex_lock(&l->watch_lock);
    while (!l->stop) {
        next = cw_now() + CW_TARGETS_POLL;
        ts.tv_sec = next / 1000000000;
        ts.tv_nsec = next % 1000000000;
        while (!l->stop && pthread_cond_timedwait(&l->watch_wake, &l->watch_lock, &ts) != ETIMEDOUT)
            ;
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->watch_lock);
        live_refresh(l);
        pthread_mutex_lock(&l->watch_lock);
    }
    pthread_mutex_unlock(&l->watch_lock);
    return NULL;
}

struct cw_live *cw_live_new(struct cw_sched *sched, const char *config_file,
                            const char *self_target)
{
    struct cw_live *l;
    pthread_condattr_t ca;

    if (sched == NULL)
        return NULL;
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        (void)cw_sched_free(sched, CW_S(1));
        return NULL;
    }
    pthread_mutex_init(&l->load_lock, NULL);
    pthread_mutex_init(&l->lock, NULL);
    pthread_mutex_init(&l->watch_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->watch_wake, &ca);
    pthread_condattr_destroy(&ca);
    l->sched = sched;
    l->config_file = config_file;
    l->self_target = self_target;
    /* Without the watcher, targets files are still read at every reload. */
    l->watching = pthread_create(&l->watcher, NULL, watch_main, l) == 0;
    if (!l->watching)
        cw_log(CW_LOG_ERROR, "config", "cannot start the targets file watcher", (char *)NULL);
    return l;
}

static struct targets_stat *tstat_find(struct targets_stat *v, size_t n, const char *file)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(v[i].file, file) == 0)
            return &v[i];
    }
    return NULL;
}

static void tstats_free(struct targets_stat *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i].file);
    free(v);
}

/* tstats_update() counts the outcome of the targets files of 's', which is
 * becoming live (under l->lock), and logs the rejected ones; a file no
 * longer configured loses its series. */
static void tstats_update(struct cw_live *l, const struct cw_settings *s)
{
    struct targets_stat *v = NULL, *old, *t;
    size_t i, n = 0;

    if (s->ntsrc != 0) {
        v = calloc(s->ntsrc, sizeof(*v));
        if (v == NULL)
            return; /* the series stay as they were */
    }
    for (i = 0; i < s->ntsrc; i++) {
        const struct cw_targets_src *src = &s->tsrc[i];

        t = tstat_find(v, n, src->path);
        if (t == NULL) {
            t = &v[n];
            t->file = strdup(src->path);
            if (t->file == NULL)
                continue;
            n++;
            old = tstat_find(l->tstats, l->ntstats, src->path);
            t->errors = old != NULL ? old->errors : 0;
            t->ok = true;
        }
        t->targets += (double)src->ntargets;
        if (src->failed)
            t->ok = false;
        if (src->failed && src->read_now && !t->counted) {
            t->errors += 1;
            t->counted = true;
            cw_log(CW_LOG_ERROR, "config", "targets file rejected, keeping its previous targets",
                   "file", src->path, "err", src->error != NULL ? src->error : "", (char *)NULL);
        }
    }
    tstats_free(l->tstats, l->ntstats);
    l->tstats = v;
    l->ntstats = n;
}

/* live_make() makes 'settings' live; 'reload' tells a load of the
 * configuration (counted as a reload) from a refresh of its targets. */
static size_t live_make(struct cw_live *l, struct cw_settings *settings, bool reload)
{
    struct cw_settings *old;
    size_t kept;

    pthread_mutex_lock(&l->lock);
    old = l->settings;
    kept = cw_settings_adopt(settings, old);
    cw_sched_apply(l->sched, settings);
    l->settings = cw_settings_ref(settings);
    if (reload) {
        l->reload_ok = true;
        l->reload_success_ts = (double)cw_now_real() / 1e9;
    }
    tstats_update(l, settings);
    pthread_mutex_unlock(&l->lock);
    cw_settings_unref(old);
    return kept;
}

static void stuck_clear(struct cw_live *l)
{
    cw_settings_unref(l->stuck_for);
    free(l->stuck);
    l->stuck_for = NULL;
    l->stuck = NULL;
}

static void stuck_set(struct cw_live *l, struct cw_settings *s)
{
    size_t i;

    l->stuck = calloc(s->ntsrc != 0 ? s->ntsrc : 1, sizeof(*l->stuck));
    if (l->stuck == NULL)
        return; /* tried again at the next poll */
    for (i = 0; i < s->ntsrc; i++)
        cw_file_id_of(s->tsrc[i].path, &l->stuck[i]);
    l->stuck_for = cw_settings_ref(s);
}

/* stuck_again() tells whether a refresh of 's' already failed with its
 * targets files as they are now. */
static bool stuck_again(struct cw_live *l, const struct cw_settings *s)
{
    struct cw_file_id now;
    size_t i;

    if (l->stuck_for != s)
        return false;
    for (i = 0; i < s->ntsrc; i++) {
        cw_file_id_of(s->tsrc[i].path, &now);
        if (!cw_file_id_equal(&now, &l->stuck[i]))
            return false;
    }
    return true;
}

/* live_refresh() loads the live configuration again when one of its
 * targets files changed. */
static void live_refresh(struct cw_live *l)
{
    struct cw_settings *prev, *fresh;
    struct cw_diag diag;
    char n1[24], n2[24], took[32];
    size_t kept;
    cw_mono t0;

    pthread_mutex_lock(&l->load_lock);
    prev = cw_live_settings(l);
    if (prev == NULL || !cw_settings_targets_changed(prev) || stuck_again(l, prev)) {
        cw_settings_unref(prev);
        pthread_mutex_unlock(&l->load_lock);
        return;
    }
    cw_diag_init(&diag);
    t0 = cw_now();
    fresh = cw_settings_refresh(prev, &diag);
    stuck_clear(l);
    if (fresh == NULL) {
        /* E.g. an unchanged file now duplicates a target a changed one took. */
        snprintf(n1, sizeof(n1), "%zu", diag.n);
        cw_log(CW_LOG_ERROR, "config", "targets changed but do not load, keeping the running ones",
               "file", prev->file, "errors", n1, "err", diag.n != 0 ? diag.entries[0].text : "",
               (char *)NULL);
        stuck_set(l, prev);
    } else {
        kept = live_make(l, fresh, false);
        snprintf(n1, sizeof(n1), "%zu", fresh->ninst);
        snprintf(n2, sizeof(n2), "%zu", kept);
        snprintf(took, sizeof(took), "%.3fs", cw_seconds(cw_now() - t0));
        cw_log(CW_LOG_INFO, "config", "targets files changed, checks updated", "checks", n1,
               "unchanged", n2, "took", took, (char *)NULL);
        cw_settings_unref(fresh);
    }
    cw_diag_reset(&diag);
    cw_settings_unref(prev);
    pthread_mutex_unlock(&l->load_lock);
}

size_t cw_live_set(struct cw_live *l, struct cw_settings *settings)
{
    return live_make(l, settings, true);
}

int cw_live_load(struct cw_live *l, struct cw_diag *diag)
{
    const char *file = l->config_file != NULL ? l->config_file : "<built-in>";
    struct cw_settings *fresh, *prev;
    bool running;
    char n1[24], n2[24];
    size_t kept;

    pthread_mutex_lock(&l->load_lock);
    prev = cw_live_settings(l);
    fresh = l->config_file != NULL ? cw_settings_load_prev(l->config_file, prev, diag)
                                   : cw_settings_load_builtin(l->self_target, diag);
    cw_settings_unref(prev);
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
    kept = live_make(l, fresh, true);
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

    size_t i;

    pthread_mutex_lock(&l->lock);
    ok = l->reload_ok;
    ts = l->reload_success_ts;
    for (i = 0; i < l->ntstats; i++) {
        const char *file[1] = {l->tstats[i].file};

        cw_batch_add(b, &desc_tf_errors, NULL, l->tstats[i].errors, file, NULL);
        cw_batch_add(b, &desc_tf_ok, NULL, l->tstats[i].ok ? 1.0 : 0.0, file, NULL);
        cw_batch_add(b, &desc_tf_targets, NULL, l->tstats[i].targets, file, NULL);
    }
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
    if (l->watching) {
        pthread_mutex_lock(&l->watch_lock);
        l->stop = true;
        pthread_cond_signal(&l->watch_wake);
        pthread_mutex_unlock(&l->watch_lock);
        pthread_join(l->watcher, NULL);
        l->watching = false;
    }
    if (!cw_sched_free(l->sched, grace))
        return false;
    cw_settings_unref(l->settings);
    stuck_clear(l);
    tstats_free(l->tstats, l->ntstats);
    pthread_cond_destroy(&l->watch_wake);
    pthread_mutex_destroy(&l->watch_lock);
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
