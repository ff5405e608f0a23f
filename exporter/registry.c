/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.c - the set of results that /metrics renders.
 *
 * Each check instance owns one published snapshot (a cw_batch). Workers
 * replace it with a pointer swap (instance.c); scrapes, on HTTP threads,
 * take references under short locks and render without holding any.
 * The checks' part of a body is cached per format and rendered again only
 * when cw_instance_generation() moved or the configuration changed, so a
 * scrape between two check runs costs a copy plus connwatch's own series;
 * gzip bodies keep the checks' part as raw deflate blocks and add the own
 * series' blocks and the trailer per scrape: one gzip member.
 * Lock order: r->lock (self emitters), r->cache_lock, then an instance's
 * lock; each is held only to copy pointers.
 */
#include "registry.h"

#include "core/clock.h"
#include "core/procself.h"
#include "instance.h"
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
    pthread_mutex_t lock;        /* guards self[] */
    struct {
        cw_registry_self_fn fn;
        void *ctx; /* borrowed */
    } self[CW_REGISTRY_MAX_SELF];
    size_t nself;
};

static const struct cw_desc desc_build_info = {
    .name = "connwatch_build_info",
    .help = "Version and revision connwatch was built from; the value is 1.",
    .type = CW_GAUGE,
    .labels = {"version", "revision"},
    .nlabels = 2,
};
static const struct cw_desc desc_checks = {
    .name = "connwatch_checks_configured",
    .help = "Checks in the live configuration.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_probe_redirects_refused = {
    .name = "connwatch_probe_redirects_refused_total",
    .help = "/probe runs refused a redirect to a host, address or scheme that probe.allow does "
            "not list (vetoed before connecting).",
    .type = CW_COUNTER,
};

struct cw_registry *cw_registry_new(void)
{
    struct cw_registry *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->cache_lock, NULL);
    r->limit = 256u << 20;
    return r;
}

int cw_registry_add_self(struct cw_registry *r, cw_registry_self_fn fn, void *ctx)
{
    int rc = CW_ETOOBIG;

    pthread_mutex_lock(&r->lock);
    if (r->nself < CW_REGISTRY_MAX_SELF) {
        r->self[r->nself].fn = fn;
        r->self[r->nself].ctx = ctx;
        r->nself++;
        rc = CW_OK;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static struct cw_batch *self_batch(struct cw_registry *r, size_t ninst)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *build[2] = {CW_VERSION, CW_REVISION};
    size_t i, n;

    if (b == NULL)
        return NULL;
    cw_batch_add(b, &desc_build_info, NULL, 1.0, build, NULL);
    cw_batch_add(b, &desc_checks, NULL, (double)ninst, NULL, NULL);
    cw_batch_add(b, &desc_probe_redirects_refused, NULL,
                 (double)cw_instance_probe_redirects_refused(), NULL, NULL);
    /* Emitters are only ever added: the first n stay valid without the lock. */
    pthread_mutex_lock(&r->lock);
    n = r->nself;
    pthread_mutex_unlock(&r->lock);
    for (i = 0; i < n; i++)
        r->self[i].fn(r->self[i].ctx, b);
    cw_procself_emit(b);
    return b;
}

/* A rendered part of a body, shared by concurrent scrapes. */
struct blob {
    atomic_int refs;
    uint32_t crc; /* a gzip part's (cw_gzip_part()): CRC-32 of the text it holds */
    size_t len;
    char *data; /* owned, NUL-terminated */
};

/* buf_init_like() prepares 'b' (limit 'limit') with room for 'last' bytes
 * and an eighth more at once, 'last' being the size of the part it renders
 * again: growing by doubling would copy a large body a few times and hold
 * two copies at the peak. 0: no previous size, no reservation. */
static int buf_init_like(struct cw_buf *b, size_t limit, size_t last)
{
    size_t want = last + last / 8;

    cw_buf_init(b, limit);
    return last != 0 ? cw_buf_reserve(b, want < limit ? want : limit) : CW_OK;
}

/* blob_take() makes a blob of the contents of 'b', taking its memory (a
 * body of megabytes is not copied again); 'b' is left empty. NULL when out
 * of memory ('b' then keeps its contents for the caller to reset). */
static struct blob *blob_take(struct cw_buf *b)
{
    struct blob *bl = malloc(sizeof(*bl));

    if (bl == NULL)
        return NULL;
    atomic_init(&bl->refs, 1);
    bl->crc = 0;
    bl->data = cw_buf_take(b, &bl->len);
    if (bl->data == NULL)
        bl->data = calloc(1, 1);
    if (bl->data == NULL) {
        free(bl);
        return NULL;
    }
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
    if (bl != NULL && atomic_fetch_sub(&bl->refs, 1) == 1) {
        free(bl->data);
        free(bl);
    }
}

/* render_checks() renders the published batches of every instance of 's'.
 * In OpenMetrics the closing "# EOF" is left to the self part. */
static int render_checks(struct cw_settings *s, enum cw_format fmt, struct cw_buf *out)
{
    size_t ninst = s != NULL ? s->ninst : 0;
    struct cw_batch **snaps;
    size_t i;
    int rc;

    snaps = calloc(ninst + 1, sizeof(*snaps));
    if (snaps == NULL)
        return CW_ENOMEM;
    for (i = 0; i < ninst; i++)
        snaps[i] = cw_instance_snapshot(s->inst[i]);
    rc = cw_render_batches(out, fmt, CW_RENDER_NO_EOF, snaps, ninst);
    for (i = 0; i < ninst; i++)
        cw_batch_unref(snaps[i]);
    free(snaps);
    return rc;
}

/* checks_part() returns the (cached or fresh) checks' part in 'fmt', plain
 * and, when 'gzip', compressed. */
static int checks_part(struct cw_registry *r, struct cw_settings *s, enum cw_format fmt, bool gzip,
                       struct blob **text, struct blob **gz)
{
    struct cache_entry *c = &r->cache[fmt];
    /* Read before the snapshots: a publication racing with this render
     * makes the entry look older than it is, never newer. */
    uint64_t gen = cw_instance_generation();
    struct cw_buf b;
    struct blob *t = NULL, *z = NULL;
    size_t last_len = 0, last_gz = 0;
    int rc;

    pthread_mutex_lock(&r->cache_lock);
    if (c->text != NULL && c->gen == gen && c->settings == s) {
        t = blob_ref(c->text);
        z = blob_ref(c->gz);
    }
    if (c->text != NULL)
        last_len = c->text->len;
    if (c->gz != NULL)
        last_gz = c->gz->len;
    pthread_mutex_unlock(&r->cache_lock);

    if (t == NULL) {
        rc = buf_init_like(&b, r->limit, last_len);
        if (rc == CW_OK)
            rc = render_checks(s, fmt, &b);
        if (rc == CW_OK) {
            t = blob_take(&b);
            rc = t != NULL ? CW_OK : CW_ENOMEM;
        }
        cw_buf_reset(&b);
        if (rc != CW_OK)
            goto out_fail;
    }
    if (gzip && z == NULL) {
        uint32_t crc = 0;

        rc = buf_init_like(&b, r->limit, last_gz);
        if (rc == CW_OK)
            rc = cw_gzip_part(t->data, t->len, 1, &b, &crc);
        if (rc == CW_OK) {
            z = blob_take(&b);
            rc = z != NULL ? CW_OK : CW_ENOMEM;
        }
        if (z != NULL)
            z->crc = crc;
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
    *text = t;
    *gz = z;
    return CW_OK;

out_fail:
    blob_unref(t);
    blob_unref(z);
    return rc;
}

int cw_registry_render(struct cw_registry *r, struct cw_settings *s, enum cw_format fmt, bool gzip,
                       struct cw_buf *out)
{
    struct blob *text = NULL, *gz = NULL;
    struct cw_batch *self = NULL;
    struct cw_buf tail;
    int rc;

    rc = checks_part(r, s, fmt, gzip, &text, &gz);
    if (rc != CW_OK)
        goto out;
    rc = CW_ENOMEM;
    self = self_batch(r, s != NULL ? s->ninst : 0);
    if (self == NULL)
        goto out;
    if (!gzip) {
        rc = cw_buf_add(out, text->data, text->len);
        if (rc == CW_OK)
            rc = cw_render_batches(out, fmt, 0, &self, 1);
        goto out;
    }
    /* One gzip member: the cached compressed checks' part, then the self
     * part compressed now (two members would lose the second on clients
     * that read one, as curl and browsers do). */
    cw_buf_init(&tail, out->limit);
    rc = cw_render_batches(&tail, fmt, 0, &self, 1);
    if (rc == CW_OK)
        rc = cw_gzip_join(out, gz->data, gz->len, gz->crc, text->len, tail.data, tail.len, 1);
    cw_buf_reset(&tail);
out:
    cw_batch_unref(self);
    blob_unref(text);
    blob_unref(gz);
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
    pthread_mutex_destroy(&r->lock);
    free(r);
}
