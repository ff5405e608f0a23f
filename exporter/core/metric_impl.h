/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metric_impl.h - the layout of a batch, for metric.c and its unit test
 * only: everywhere else struct cw_batch is opaque (metric.h).
 */
#ifndef CW_METRIC_IMPL_H
#define CW_METRIC_IMPL_H

#include "metric.h"

/* One sample. For a histogram, 'value' is the sum and 'hist' indexes
 * nbuckets cumulative bucket counts followed by the total count in the
 * batch's hist array. */
struct cw_sample {
    const struct cw_desc *desc; /* borrowed: static storage */
    uint32_t labels_off;        /* into batch->text */
    uint32_t labels_len;        /* 0: no labels */
    double value;
    uint32_t hist; /* CW_HISTOGRAM only */
};

struct cw_batch {
    atomic_int refs;
    struct cw_sample *samples; /* owned */
    size_t n, cap;
    struct cw_buf text; /* owned: label text of all samples */
    uint64_t *hist;     /* owned: histogram counts of all samples */
    size_t nhist, caphist;
    const char *prefix; /* borrowed from the emitter, valid during emits only */
    size_t prefix_len;
    int err; /* sticky: first failure of an emit (CW_ENOMEM / CW_ETOOBIG) */
};

#endif
