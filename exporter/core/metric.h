/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metric.h - metric families (descriptors), batches of samples, and the
 * renderer's input.
 *
 * A descriptor is declared static const by whoever emits it: no allocation
 * per sample. A batch holds the samples of one check run with their label
 * text already escaped and joined (`service="x",target="y",state="listen"`),
 * so a scrape only copies bytes. Once published a batch is immutable and
 * shared by reference count between the check's worker and scrapes.
 */
#ifndef CW_METRIC_H
#define CW_METRIC_H

#include "buf.h"
#include "err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cw_metric_type { CW_GAUGE = 0, CW_COUNTER, CW_HISTOGRAM };

#define CW_DESC_MAX_LABELS 6 /* connwatch_tls_cert_info has 5 */

struct cw_desc {
    /* Descriptors are static: every pointer here is borrowed for good. */
    const char *name; /* sample name; counters end in _total */
    const char *help; /* one line */
    enum cw_metric_type type;
    const char *labels[CW_DESC_MAX_LABELS]; /* label names the emitter adds */
    size_t nlabels;
    const double *buckets; /* CW_HISTOGRAM: ascending upper bounds, without +Inf */
    size_t nbuckets;
};

/* The renderer's view of one sample (see render.h). */
struct cw_render_item {
    const struct cw_desc *desc; /* borrowed */
    /* The label text, escaped, without braces, is prefix, then "," when
     * both parts are non-empty, then labels. Both are borrowed from the
     * batch (the prefix is shared by the batch's samples); either may be
     * NULL when its length is 0. */
    const char *prefix;
    size_t prefix_len;
    const char *labels;
    size_t labels_len;
    double value;         /* value, or sum of a histogram */
    const uint64_t *hist; /* borrowed from the batch: histogram: nbuckets cumulative counts,
                             then count */
};

/* A batch is opaque outside metric.c: emitters add with cw_batch_add(),
 * renderers read with cw_batch_len() and cw_batch_items(). */
struct cw_batch;

/* cw_batch_new() returns an empty batch with one reference; 'prefix' is the
 * escaped label text put before every sample's own labels (copied into the
 * batch once, not once per sample; may be NULL). NULL on allocation
 * failure. */
struct cw_batch *cw_batch_new(const char *prefix);

/* cw_batch_ref()/cw_batch_unref(): unref frees on the last reference; NULL-safe. */
struct cw_batch *cw_batch_ref(struct cw_batch *b);
void cw_batch_unref(struct cw_batch *b);

/* cw_batch_add() appends one sample of 'd' with the label values (d->nlabels
 * strings, copied and escaped) and optional extra labels (already escaped,
 * `k="v"` form, may be NULL). For histograms pass 'hist' (nbuckets cumulative
 * counts then total count) and the sum in 'value'. Errors are sticky in b->err. */
void cw_batch_add(struct cw_batch *b, const struct cw_desc *d, const char *extra, double value,
                  const char *const *label_values, const uint64_t *hist);

/* cw_batch_len() returns the number of samples of 'b'. */
size_t cw_batch_len(const struct cw_batch *b);

/* cw_batch_err() returns the sticky error of 'b': CW_OK, or the first
 * failure of an add (CW_ENOMEM, CW_ETOOBIG, CW_EINVAL). */
int cw_batch_err(const struct cw_batch *b);

/* cw_batch_set_prefix() changes the escaped label text put before the
 * labels of the samples added from now on (NULL: none). A batch keeps each
 * distinct prefix once, at most CW_BATCH_MAX_PREFIXES of them (past that
 * the batch fails with CW_ETOOBIG). */
void cw_batch_set_prefix(struct cw_batch *b, const char *prefix);

/* cw_batch_seal() gives back the room a complete batch does not use (its
 * arrays grow by doubling while samples are added); call once no more
 * samples will be added, before the batch is published and kept. */
void cw_batch_seal(struct cw_batch *b);

/* cw_batch_items() appends render items for every sample of 'b' to 'items'
 * (which must have room for b->n). The items borrow from 'b'. */
void cw_batch_items(const struct cw_batch *b, struct cw_render_item *items);

/* What cw_batch_value() found: the sum, smallest and largest value of the
 * matching samples (a histogram's value is its sum), and their number. */
struct cw_batch_agg {
    double sum, min, max;
    size_t n;
};

/* cw_batch_value() aggregates the samples of family 'name' in 'b' (NULL:
 * none) whose label text contains 'label' (escaped `k="v"` text; NULL or
 * "": every sample) into *agg, and tells whether any matched. For readers
 * of published results (the health page), not for renderers. */
bool cw_batch_value(const struct cw_batch *b, const char *name, const char *label,
                    struct cw_batch_agg *agg);

/* cw_escape() appends 's' with backslash and newline escaped (\\, \n), and
 * the double quote too (\") when 'quote' is set: label values always, HELP
 * text in OpenMetrics. */
CW_MUST_CHECK int cw_escape(struct cw_buf *out, const char *s, bool quote);

/* cw_label_escape() appends 's' escaped as a label value (\\, \", \n). */
CW_MUST_CHECK int cw_label_escape(struct cw_buf *out, const char *s);

/* cw_label_name_is_valid() tells whether 's' is a Prometheus label name:
 * [a-zA-Z_][a-zA-Z0-9_]*. */
bool cw_label_name_is_valid(const char *s);

#endif
