/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the set of results that /metrics renders.
 *
 * Each check instance owns one published snapshot (a cw_batch). Workers
 * replace it with a pointer swap (instance.c); scrapes, on HTTP threads,
 * take references under short locks and render without holding any.
 * Lock order: r->lock (live settings pointer), then an instance's lock; both
 * are held only to copy pointers.
 */
#include "registry.h"

#include "clock.h"
#include "procself.h"
#include "scheduler.h"
#include "version.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifndef CW_VERSION
#define CW_VERSION "0.1.0"
#endif

struct cw_registry {
    pthread_mutex_t lock;
    struct cw_settings *settings; /* owned reference: the live configuration */
    struct cw_sched *sched;       /* borrowed */
    bool reload_ok;
    double reload_success_ts; /* seconds since the epoch */
};

static const struct cw_desc desc_build_info = {
    .name = "connwatch_build_info",
    .help = "Version and revision connwatch was built from; the value is 1.",
    .type = CW_GAUGE,
    .labels = {"version", "revision"},
    .nlabels = 2,
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
static const struct cw_desc desc_checks = {
    .name = "connwatch_checks_configured",
    .help = "Checks in the live configuration.",
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

struct cw_registry *cw_registry_new(struct cw_sched *sched)
{
    struct cw_registry *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->sched = sched;
    return r;
}

void cw_registry_set(struct cw_registry *r, struct cw_settings *settings)
{
    struct cw_settings *old;

    pthread_mutex_lock(&r->lock);
    old = r->settings;
    r->settings = cw_settings_ref(settings);
    pthread_mutex_unlock(&r->lock);
    cw_settings_unref(old);
}

struct cw_settings *cw_registry_settings(struct cw_registry *r)
{
    struct cw_settings *s;

    pthread_mutex_lock(&r->lock);
    s = cw_settings_ref(r->settings);
    pthread_mutex_unlock(&r->lock);
    return s;
}

void cw_registry_reload_result(struct cw_registry *r, bool ok)
{
    pthread_mutex_lock(&r->lock);
    r->reload_ok = ok;
    if (ok)
        r->reload_success_ts = (double)cw_now_real() / 1e9;
    pthread_mutex_unlock(&r->lock);
}

static struct cw_batch *self_batch(struct cw_registry *r, size_t ninst)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *build[2] = {CW_VERSION, CW_REVISION};
    bool ok;
    double ts;

    if (b == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    ok = r->reload_ok;
    ts = r->reload_success_ts;
    pthread_mutex_unlock(&r->lock);

    cw_batch_add(b, &desc_build_info, NULL, 1.0, build, NULL);
    cw_batch_add(b, &desc_reload_ok, NULL, ok ? 1.0 : 0.0, NULL, NULL);
    cw_batch_add(b, &desc_reload_ts, NULL, ts, NULL, NULL);
    cw_batch_add(b, &desc_checks, NULL, (double)ninst, NULL, NULL);
    if (r->sched != NULL) {
        size_t workers, busy, queued;

        cw_sched_stats(r->sched, &workers, &busy, &queued);
        cw_batch_add(b, &desc_workers, NULL, (double)workers, NULL, NULL);
        cw_batch_add(b, &desc_busy, NULL, (double)busy, NULL, NULL);
        cw_batch_add(b, &desc_queued, NULL, (double)queued, NULL, NULL);
    }
    cw_procself_emit(b);
    return b;
}

int cw_registry_render(struct cw_registry *r, enum cw_format fmt, struct cw_buf *out)
{
    struct cw_settings *s = cw_registry_settings(r);
    size_t ninst = s != NULL ? s->ninst : 0;
    struct cw_batch **snaps;
    struct cw_render_item *items = NULL;
    size_t i, total = 0, off = 0;
    int rc = CW_ENOMEM;

    snaps = calloc(ninst + 1, sizeof(*snaps));
    if (snaps == NULL)
        goto out;
    for (i = 0; i < ninst; i++) {
        snaps[i] = cw_instance_snapshot(s->inst[i]);
        if (snaps[i] != NULL)
            total += snaps[i]->n;
    }
    snaps[ninst] = self_batch(r, ninst);
    if (snaps[ninst] == NULL || snaps[ninst]->err != CW_OK)
        goto out;
    total += snaps[ninst]->n;

    items = malloc((total != 0 ? total : 1) * sizeof(*items));
    if (items == NULL)
        goto out;
    for (i = 0; i <= ninst; i++) {
        if (snaps[i] == NULL)
            continue;
        cw_batch_items(snaps[i], items + off);
        off += snaps[i]->n;
    }
    rc = cw_render(out, fmt, items, total);

out:
    free(items);
    for (i = 0; snaps != NULL && i <= ninst; i++)
        cw_batch_unref(snaps[i]);
    free(snaps);
    cw_settings_unref(s);
    return rc;
}

void cw_registry_free(struct cw_registry *r)
{
    if (r == NULL)
        return;
    cw_settings_unref(r->settings);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
