/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metric_impl.h - the layout of a batch, for metric.c and its unit test
 * only: everywhere else struct cw_batch is opaque (metric.h).
 */
#ifndef CW_METRIC_IMPL_H
#define CW_METRIC_IMPL_H

#include "metric.h"

/* The most label prefixes one batch holds (cw_batch_set_prefix() switches
 * between two: the core's and the check's). */
#define CW_BATCH_MAX_PREFIXES 8
#define CW_BATCH_NO_PREFIX    UINT32_MAX

/* One sample. For a histogram, 'value' is the sum and 'hist' indexes
 * nbuckets cumulative bucket counts followed by the total count in the
 * batch's hist array. The label prefix is kept once per batch: a sample
 * holds the index of its prefix and the offset of its own labels. */
struct cw_sample {
    const struct cw_desc *desc; /* borrowed: static storage */
    double value;
    uint32_t labels_off; /* into batch->text: the sample's own labels */
    uint32_t labels_len; /* 0: none of its own */
    uint32_t hist;       /* CW_HISTOGRAM only */
    uint32_t prefix;     /* into batch->prefixes, or CW_BATCH_NO_PREFIX */
};

struct cw_batch {
    atomic_int refs;
    struct cw_sample *samples; /* owned */
    size_t n, cap;
    struct cw_buf text; /* owned: label text of all samples */
    uint64_t *hist;     /* owned: histogram counts of all samples */
    size_t nhist, caphist;
    struct {
        uint32_t off, len; /* into text */
    } prefixes[CW_BATCH_MAX_PREFIXES];
    size_t nprefix;
    uint32_t cur_prefix; /* index of the prefix of the samples added next, or CW_BATCH_NO_PREFIX */
    int err;             /* sticky: first failure of an emit (CW_ENOMEM / CW_ETOOBIG) */
};

#endif
