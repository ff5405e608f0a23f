/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the set of results that /metrics renders.
 *
 * Each check instance owns one published snapshot (a cw_batch). Workers
 * replace it with a pointer swap (instance.c); scrapes, on HTTP threads,
 * take references under short locks and render without holding any.
 * The checks' part of a body is cached per format and rendered again only
 * when cw_instance_generation() moved or the configuration changed, so a
 * scrape between two check runs costs a copy plus connwatch's own series.
 * Lock order: r->lock (live settings pointer), r->cache_lock, then an
 * instance's lock; each is held only to copy pointers.
 */
#include "registry.h"

#include "core/clock.h"
#include "core/procself.h"
#include "scheduler.h"
#include "version.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef CW_VERSION
#define CW_VERSION "0.1.0"
#endif

struct blob;

struct cache_entry {
    uint64_t gen;                 /* cw_instance_generation() when rendered */
    struct cw_settings *settings; /* owned reference: the configuration rendered */
    struct blob *text;            /* owned reference: the checks' part, plain */
    struct blob *gz;              /* owned reference: the same, gzip; NULL until asked */
};

struct cw_registry {
    pthread_mutex_t cache_lock;  /* guards cache[]; never held while rendering */
    struct cache_entry cache[2]; /* by enum cw_format */
    size_t limit;                /* bytes a body may take */
    pthread_mutex_t lock;
    struct cw_settings *settings; /* owned reference: the live configuration */
    struct cw_sched *sched;       /* borrowed */
    bool reload_ok;
    double reload_success_ts;                   /* seconds since the epoch */
    void (*self_fn)(void *, struct cw_batch *); /* extra self series, or NULL */
    void *self_ctx;                             /* borrowed */
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
static const struct cw_desc desc_probe_redirects_refused = {
    .name = "connwatch_probe_redirects_refused_total",
    .help = "/probe runs refused a redirect to a host, address or scheme that probe.allow does "
            "not list (vetoed before connecting).",
    .type = CW_COUNTER,
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
    pthread_mutex_init(&r->cache_lock, NULL);
    r->limit = 256u << 20;
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

void cw_registry_set_self_emitter(struct cw_registry *r, void (*fn)(void *, struct cw_batch *),
                                  void *ctx)
{
    pthread_mutex_lock(&r->lock);
    r->self_fn = fn;
    r->self_ctx = ctx;
    pthread_mutex_unlock(&r->lock);
}

static struct cw_batch *self_batch(struct cw_registry *r, size_t ninst)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *build[2] = {CW_VERSION, CW_REVISION};
    void (*self_fn)(void *, struct cw_batch *);
    void *self_ctx;
    bool ok;
    double ts;

    if (b == NULL)
        return NULL;
    pthread_mutex_lock(&r->lock);
    ok = r->reload_ok;
    ts = r->reload_success_ts;
    self_fn = r->self_fn;
    self_ctx = r->self_ctx;
    pthread_mutex_unlock(&r->lock);

    cw_batch_add(b, &desc_build_info, NULL, 1.0, build, NULL);
    cw_batch_add(b, &desc_reload_ok, NULL, ok ? 1.0 : 0.0, NULL, NULL);
    cw_batch_add(b, &desc_reload_ts, NULL, ts, NULL, NULL);
    cw_batch_add(b, &desc_checks, NULL, (double)ninst, NULL, NULL);
    cw_batch_add(b, &desc_probe_redirects_refused, NULL,
                 (double)cw_instance_probe_redirects_refused(), NULL, NULL);
    if (r->sched != NULL) {
        size_t workers, busy, queued;

        cw_sched_stats(r->sched, &workers, &busy, &queued);
        cw_batch_add(b, &desc_workers, NULL, (double)workers, NULL, NULL);
        cw_batch_add(b, &desc_busy, NULL, (double)busy, NULL, NULL);
        cw_batch_add(b, &desc_queued, NULL, (double)queued, NULL, NULL);
    }
    if (self_fn != NULL)
        self_fn(self_ctx, b);
    cw_procself_emit(b);
    return b;
}

/* A rendered part of a body, shared by concurrent scrapes. */
struct blob {
    atomic_int refs;
    size_t len;
    char data[];
};

static struct blob *blob_from_buf(const struct cw_buf *b)
{
    struct blob *bl = malloc(sizeof(*bl) + b->len + 1);

    if (bl == NULL)
        return NULL;
    atomic_init(&bl->refs, 1);
    bl->len = b->len;
    if (b->len != 0)
        memcpy(bl->data, b->data, b->len);
    bl->data[b->len] = '\0';
    return bl;
}

static struct blob *blob_ref(struct blob *bl)
{
    if (bl != NULL)
        atomic_fetch_add(&bl->refs, 1);
    return bl;
}

static void blob_unref(struct blob *bl)
{
    if (bl != NULL && atomic_fetch_sub(&bl->refs, 1) == 1)
        free(bl);
}

/* render_checks() renders the published batches of every instance of 's'.
 * In OpenMetrics the closing "# EOF" is left to the self part. */
static int render_checks(struct cw_settings *s, enum cw_format fmt, struct cw_buf *out)
{
    size_t ninst = s != NULL ? s->ninst : 0;
    struct cw_batch **snaps;
    struct cw_render_item *items = NULL;
    size_t i, total = 0, off = 0;
    int rc = CW_ENOMEM;

    snaps = calloc(ninst + 1, sizeof(*snaps));
    if (snaps == NULL)
        return CW_ENOMEM;
    for (i = 0; i < ninst; i++) {
        snaps[i] = cw_instance_snapshot(s->inst[i]);
        if (snaps[i] != NULL)
            total += snaps[i]->n;
    }
    items = malloc((total != 0 ? total : 1) * sizeof(*items));
    if (items == NULL)
        goto out;
    for (i = 0; i < ninst; i++) {
        if (snaps[i] == NULL)
            continue;
        cw_batch_items(snaps[i], items + off);
        off += snaps[i]->n;
    }
    rc = cw_render(out, fmt, items, total);
    if (rc == CW_OK && fmt == CW_FMT_OPENMETRICS && out->len >= 6 &&
        memcmp(out->data + out->len - 6, "# EOF\n", 6) == 0) {
        out->len -= 6;
        out->data[out->len] = '\0';
    }
out:
    free(items);
    for (i = 0; i < ninst; i++)
        cw_batch_unref(snaps[i]);
    free(snaps);
    return rc;
}

/* checks_part() returns the (cached or fresh) checks' part in 'fmt', plain
 * and, when 'gzip', compressed. */
static int checks_part(struct cw_registry *r, enum cw_format fmt, bool gzip, struct blob **text,
                       struct blob **gz)
{
    struct cache_entry *c = &r->cache[fmt];
    /* Read before the snapshots: a publication racing with this render
     * makes the entry look older than it is, never newer. */
    uint64_t gen = cw_instance_generation();
    struct cw_settings *s = cw_registry_settings(r);
    struct cw_buf b;
    struct blob *t = NULL, *z = NULL;
    int rc;

    pthread_mutex_lock(&r->cache_lock);
    if (c->text != NULL && c->gen == gen && c->settings == s) {
        t = blob_ref(c->text);
        z = blob_ref(c->gz);
    }
    pthread_mutex_unlock(&r->cache_lock);

    if (t == NULL) {
        cw_buf_init(&b, r->limit);
        rc = render_checks(s, fmt, &b);
        if (rc == CW_OK) {
            t = blob_from_buf(&b);
            rc = t != NULL ? CW_OK : CW_ENOMEM;
        }
        cw_buf_reset(&b);
        if (rc != CW_OK)
            goto out_fail;
    }
    if (gzip && z == NULL) {
        cw_buf_init(&b, r->limit);
        rc = cw_gzip(t->data, t->len, 1, &b);
        if (rc == CW_OK) {
            z = blob_from_buf(&b);
            rc = z != NULL ? CW_OK : CW_ENOMEM;
        }
        cw_buf_reset(&b);
        if (rc != CW_OK)
            goto out_fail;
    }

    pthread_mutex_lock(&r->cache_lock);
    if (c->text == NULL || c->gen != gen || c->settings != s || (z != NULL && c->gz == NULL)) {
        struct cw_settings *old_s = c->settings;
        struct blob *old_t = c->text, *old_z = c->gz;

        c->gen = gen;
        c->settings = cw_settings_ref(s);
        c->text = blob_ref(t);
        c->gz = blob_ref(z);
        pthread_mutex_unlock(&r->cache_lock);
        cw_settings_unref(old_s);
        blob_unref(old_t);
        blob_unref(old_z);
    } else {
        pthread_mutex_unlock(&r->cache_lock);
    }
    cw_settings_unref(s);
    *text = t;
    *gz = z;
    return CW_OK;

out_fail:
    blob_unref(t);
    blob_unref(z);
    cw_settings_unref(s);
    return rc;
}

int cw_registry_render(struct cw_registry *r, enum cw_format fmt, bool gzip, struct cw_buf *out)
{
    struct cw_settings *s = cw_registry_settings(r);
    struct blob *text = NULL, *gz = NULL;
    struct cw_batch *self = NULL;
    struct cw_render_item *items = NULL;
    struct cw_buf part;
    int rc;

    cw_buf_init(&part, r->limit);
    rc = checks_part(r, fmt, gzip, &text, &gz);
    if (rc != CW_OK)
        goto out;
    rc = CW_ENOMEM;
    self = self_batch(r, s != NULL ? s->ninst : 0);
    if (self == NULL || self->err != CW_OK)
        goto out;
    items = malloc((self->n != 0 ? self->n : 1) * sizeof(*items));
    if (items == NULL)
        goto out;
    cw_batch_items(self, items);
    rc = cw_render(&part, fmt, items, self->n);
    if (rc != CW_OK)
        goto out;
    if (gzip) {
        rc = cw_buf_add(out, gz->data, gz->len);
        if (rc == CW_OK)
            rc = cw_gzip(part.data, part.len, 1, out);
    } else {
        rc = cw_buf_reserve(out, text->len + part.len);
        if (rc == CW_OK)
            rc = cw_buf_add(out, text->data, text->len);
        if (rc == CW_OK)
            rc = cw_buf_add(out, part.data, part.len);
    }
out:
    free(items);
    cw_batch_unref(self);
    blob_unref(text);
    blob_unref(gz);
    cw_buf_reset(&part);
    cw_settings_unref(s);
    return rc;
}

void cw_registry_free(struct cw_registry *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < CW_ARRAY_LEN(r->cache); i++) {
        cw_settings_unref(r->cache[i].settings);
        blob_unref(r->cache[i].text);
        blob_unref(r->cache[i].gz);
    }
    pthread_mutex_destroy(&r->cache_lock);
    cw_settings_unref(r->settings);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
