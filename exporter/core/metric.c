/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metric.c - batches of samples: the output of one check run.
 *
 * A batch owns three growable arrays: the samples, the label text of all
 * samples (escaped and joined once, when emitted, so that a scrape only copies
 * bytes) and the histogram counts. Samples refer to the text and the counts by
 * offset, because both arrays move when they grow.
 *
 * Threads: a batch is filled by one worker (cw_batch_add() is not
 * thread-safe), then published and read by any number of scrapes, which only
 * call cw_batch_items() and cw_batch_ref()/cw_batch_unref(). The reference
 * count is atomic; the last unref frees the batch.
 */
#include "metric.h"

#include "metric_impl.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Label text of one batch: far more than any sane check emits, small enough
 * that offsets fit the uint32_t fields of struct cw_sample. */
#define BATCH_TEXT_LIMIT ((size_t)64 * 1024 * 1024)

#define BATCH_MIN_SAMPLES 16
#define BATCH_MIN_HIST    32

struct cw_batch *cw_batch_new(const char *prefix)
{
    struct cw_batch *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    cw_buf_init(&b->text, BATCH_TEXT_LIMIT);
    b->cur_prefix = CW_BATCH_NO_PREFIX;
    b->err = CW_OK;
    cw_batch_set_prefix(b, prefix);
    return b;
}

struct cw_batch *cw_batch_ref(struct cw_batch *b)
{
    if (b != NULL)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void cw_batch_unref(struct cw_batch *b)
{
    if (b == NULL)
        return;
    /* acq_rel: the freeing thread must see every write made before the
     * other threads dropped their references. */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(b->samples);
    free(b->hist);
    cw_buf_reset(&b->text);
    free(b);
}

int cw_escape(struct cw_buf *out, const char *s, bool quote)
{
    const char *run = s;
    int rc;

    /* Copy runs of plain bytes in one append; most values have no escapes. */
    for (; *s != '\0'; s++) {
        const char *esc;

        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        else
            continue;
        if (s > run) {
            rc = cw_buf_add(out, run, (size_t)(s - run));
            if (rc != CW_OK)
                return rc;
        }
        rc = cw_buf_add(out, esc, 2);
        if (rc != CW_OK)
            return rc;
        run = s + 1;
    }
    if (s > run)
        return cw_buf_add(out, run, (size_t)(s - run));
    return CW_OK;
}

int cw_label_escape(struct cw_buf *out, const char *s)
{
    return cw_escape(out, s, true);
}

/* batch_capacity() returns in *want the capacity an array of 'size'-byte
 * elements with 'n' used of 'cap' needs for 'extra' more: 'cap' itself when
 * they fit, else at least double, and at least 'min'. */
static int batch_capacity(size_t cap, size_t n, size_t extra, size_t size, size_t min, size_t *want)
{
    if (extra > SIZE_MAX / size - n)
        return CW_ETOOBIG;
    *want = n + extra;
    if (*want <= cap) {
        *want = cap;
        return CW_OK;
    }
    if (cap > SIZE_MAX / size / 2)
        return CW_ETOOBIG;
    if (cap * 2 > *want)
        *want = cap * 2;
    if (*want < min)
        *want = min;
    if (*want > SIZE_MAX / size)
        return CW_ETOOBIG;
    return CW_OK;
}

/* batch_reserve() makes room for one more sample and 'nhist' more counts. */
static int batch_reserve(struct cw_batch *b, size_t nhist)
{
    size_t want;
    int rc;

    rc = batch_capacity(b->cap, b->n, 1, sizeof(*b->samples), BATCH_MIN_SAMPLES, &want);
    if (rc != CW_OK)
        return rc;
    if (want > b->cap) {
        struct cw_sample *p = realloc(b->samples, want * sizeof(*p));

        if (p == NULL)
            return CW_ENOMEM;
        b->samples = p;
        b->cap = want;
    }
    if (nhist == 0)
        return CW_OK;
    rc = batch_capacity(b->caphist, b->nhist, nhist, sizeof(*b->hist), BATCH_MIN_HIST, &want);
    if (rc != CW_OK)
        return rc;
    if (want > b->caphist) {
        uint64_t *p = realloc(b->hist, want * sizeof(*p));

        if (p == NULL)
            return CW_ENOMEM;
        b->hist = p;
        b->caphist = want;
    }
    return CW_OK;
}

/* batch_add_labels() appends the sample's own label text: the
 * descriptor's labels with their escaped values, then 'extra' (the prefix
 * is the batch's, kept once). */
static int batch_add_labels(struct cw_batch *b, const struct cw_desc *d, const char *extra,
                            const char *const *label_values)
{
    bool first = true;
    int rc;

    for (size_t i = 0; i < d->nlabels; i++) {
        if (!first) {
            rc = cw_buf_addc(&b->text, ',');
            if (rc != CW_OK)
                return rc;
        }
        first = false;
        rc = cw_buf_adds(&b->text, d->labels[i]);
        if (rc != CW_OK)
            return rc;
        rc = cw_buf_add(&b->text, "=\"", 2);
        if (rc != CW_OK)
            return rc;
        rc = cw_label_escape(&b->text, label_values[i]);
        if (rc != CW_OK)
            return rc;
        rc = cw_buf_addc(&b->text, '"');
        if (rc != CW_OK)
            return rc;
    }
    if (extra != NULL && extra[0] != '\0') {
        if (!first) {
            rc = cw_buf_addc(&b->text, ',');
            if (rc != CW_OK)
                return rc;
        }
        rc = cw_buf_adds(&b->text, extra);
        if (rc != CW_OK)
            return rc;
    }
    return CW_OK;
}

void cw_batch_add(struct cw_batch *b, const struct cw_desc *d, const char *extra, double value,
                  const char *const *label_values, const uint64_t *hist)
{
    struct cw_sample *s;
    size_t off, nhist;
    int rc;

    if (b == NULL || b->err != CW_OK)
        return;
    if (d == NULL || d->nlabels > CW_DESC_MAX_LABELS || (d->nlabels > 0 && label_values == NULL) ||
        (d->type == CW_HISTOGRAM && (hist == NULL || d->nbuckets >= UINT32_MAX))) {
        rc = CW_EINVAL;
        goto out_fail;
    }
    for (size_t i = 0; i < d->nlabels; i++) {
        if (label_values[i] == NULL || d->labels[i] == NULL) {
            rc = CW_EINVAL;
            goto out_fail;
        }
    }

    nhist = d->type == CW_HISTOGRAM ? d->nbuckets + 1 : 0;
    rc = batch_reserve(b, nhist);
    if (rc != CW_OK)
        goto out_fail;
    if (b->nhist + nhist > UINT32_MAX) {
        rc = CW_ETOOBIG;
        goto out_fail;
    }

    off = b->text.len;
    rc = batch_add_labels(b, d, extra, label_values);
    if (rc != CW_OK)
        goto out_fail;
    /* The text limit keeps offsets in range; check anyway in case it grows. */
    if (b->text.len > UINT32_MAX) {
        rc = CW_ETOOBIG;
        goto out_fail;
    }

    s = &b->samples[b->n];
    s->desc = d;
    s->labels_off = (uint32_t)off;
    s->labels_len = (uint32_t)(b->text.len - off);
    s->value = value;
    s->hist = 0;
    s->prefix = b->cur_prefix;
    if (nhist > 0) {
        memcpy(b->hist + b->nhist, hist, nhist * sizeof(*b->hist));
        s->hist = (uint32_t)b->nhist;
        b->nhist += nhist;
    }
    b->n++;
    return;

out_fail:
    b->err = rc;
}

void cw_batch_seal(struct cw_batch *b)
{
    if (b->n == 0) {
        free(b->samples);
        b->samples = NULL;
        b->cap = 0;
    } else if (b->cap > b->n) {
        struct cw_sample *p = realloc(b->samples, b->n * sizeof(*p));

        if (p != NULL) {
            b->samples = p;
            b->cap = b->n;
        }
    }
    if (b->nhist == 0) {
        free(b->hist);
        b->hist = NULL;
        b->caphist = 0;
    } else if (b->caphist > b->nhist) {
        uint64_t *p = realloc(b->hist, b->nhist * sizeof(*p));

        if (p != NULL) {
            b->hist = p;
            b->caphist = b->nhist;
        }
    }
    cw_buf_shrink(&b->text);
}

void cw_batch_items(const struct cw_batch *b, struct cw_render_item *items)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct cw_sample *s = &b->samples[i];
        struct cw_render_item *it = &items[i];

        it->desc = s->desc;
        it->prefix = NULL;
        it->prefix_len = 0;
        if (s->prefix != CW_BATCH_NO_PREFIX) {
            it->prefix = b->text.data + b->prefixes[s->prefix].off;
            it->prefix_len = b->prefixes[s->prefix].len;
        }
        it->labels = s->labels_len > 0 ? b->text.data + s->labels_off : NULL;
        it->labels_len = s->labels_len;
        it->value = s->value;
        it->hist = s->desc->type == CW_HISTOGRAM ? b->hist + s->hist : NULL;
    }
}

bool cw_batch_value(const struct cw_batch *b, const char *name, const char *label,
                    struct cw_batch_agg *agg)
{
    size_t llen = label != NULL ? strlen(label) : 0;

    *agg = (struct cw_batch_agg){0};
    for (size_t i = 0; b != NULL && i < b->n; i++) {
        const struct cw_sample *s = &b->samples[i];

        if (strcmp(s->desc->name, name) != 0)
            continue;
        /* A label is matched in the sample's own labels or its prefix (a
         * pair never straddles the two: they meet at a ','). */
        if (llen > 0 && memmem(b->text.data + s->labels_off, s->labels_len, label, llen) == NULL &&
            (s->prefix == CW_BATCH_NO_PREFIX ||
             memmem(b->text.data + b->prefixes[s->prefix].off, b->prefixes[s->prefix].len, label,
                    llen) == NULL))
            continue;
        agg->sum += s->value;
        if (agg->n == 0 || s->value < agg->min)
            agg->min = s->value;
        if (agg->n == 0 || s->value > agg->max)
            agg->max = s->value;
        agg->n++;
    }
    return agg->n > 0;
}

bool cw_label_name_is_valid(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    for (s++; *s != '\0'; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return false;
    }
    return true;
}

size_t cw_batch_len(const struct cw_batch *b)
{
    return b->n;
}

int cw_batch_err(const struct cw_batch *b)
{
    return b->err;
}

void cw_batch_set_prefix(struct cw_batch *b, const char *prefix)
{
    size_t len = prefix != NULL ? strlen(prefix) : 0;
    size_t i;
    int rc;

    if (b == NULL || b->err != CW_OK)
        return;
    if (len == 0) {
        b->cur_prefix = CW_BATCH_NO_PREFIX;
        return;
    }
    /* A prefix the batch holds already is shared, not copied again. */
    for (i = 0; i < b->nprefix; i++) {
        if (b->prefixes[i].len == len &&
            memcmp(b->text.data + b->prefixes[i].off, prefix, len) == 0) {
            b->cur_prefix = (uint32_t)i;
            return;
        }
    }
    if (b->nprefix == CW_BATCH_MAX_PREFIXES || b->text.len + len > UINT32_MAX) {
        b->err = CW_ETOOBIG;
        return;
    }
    i = b->text.len;
    rc = cw_buf_add(&b->text, prefix, len);
    if (rc != CW_OK) {
        b->err = rc;
        return;
    }
    b->prefixes[b->nprefix].off = (uint32_t)i;
    b->prefixes[b->nprefix].len = (uint32_t)len;
    b->cur_prefix = (uint32_t)b->nprefix++;
}
