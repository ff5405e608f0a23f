/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_render.c - Check suite "render": the text 0.0.4 and OpenMetrics
 * writers, value formatting, content negotiation, gzip, and the golden files
 * tests/golden/render_text.prom and render_openmetrics.prom.
 *
 * CW_GOLDEN_DIR (a compile-time string) names the golden directory; with
 * CW_UPDATE_GOLDEN=1 in the environment the golden tests rewrite the files
 * instead of comparing. Single-threaded.
 */
#include "exporter/core/metric.h"
#include "exporter/core/render.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#ifndef CW_GOLDEN_DIR
#error "CW_GOLDEN_DIR must name the tests/golden directory"
#endif

/* ---- fixtures ---- */

static const struct cw_desc desc_up = {
    .name = "connwatch_test_up",
    .help = "Whether the test target answered (1) or not (0).",
    .type = CW_GAUGE,
};

static const struct cw_desc desc_temp = {
    .name = "connwatch_test_temperature_celsius",
    .help = "Tricky help: a backslash \\, \"quotes\"\nand a second line.",
    .type = CW_GAUGE,
    .labels = {"sensor"},
    .nlabels = 1,
};

static const struct cw_desc desc_requests = {
    .name = "connwatch_test_requests_total",
    .help = "Requests the test target handled.",
    .type = CW_COUNTER,
    .labels = {"code"},
    .nlabels = 1,
};

/* A counter whose name lacks _total: OpenMetrics samples must get it. */
static const struct cw_desc desc_bare_counter = {
    .name = "connwatch_test_retries",
    .help = "Retries.",
    .type = CW_COUNTER,
};

static const struct cw_desc desc_failures = {
    .name = "connwatch_test_failures_total",
    .help = "Failed test probes by reason.",
    .type = CW_COUNTER,
};

static const double dur_bounds[] = {0.005, 0.1, 1, 10};

static const struct cw_desc desc_duration = {
    .name = "connwatch_test_duration_seconds",
    .help = "Duration of test probes.",
    .type = CW_HISTOGRAM,
    .labels = {"phase"},
    .nlabels = 1,
    .buckets = dur_bounds,
    .nbuckets = CW_ARRAY_LEN(dur_bounds),
};

static const struct cw_desc desc_ratio = {
    .name = "connwatch_test_loss_ratio",
    .help = "Special and fractional values.",
    .type = CW_GAUGE,
    .labels = {"case"},
    .nlabels = 1,
};

/* mk() builds a render item from a string of label text. */
static struct cw_render_item mk(const struct cw_desc *d, const char *labels, double value,
                                const uint64_t *hist)
{
    struct cw_render_item it = {
        .desc = d,
        .labels = labels,
        .labels_len = labels != NULL ? strlen(labels) : 0,
        .value = value,
        .hist = hist,
    };

    return it;
}

/* render() renders 'items' and returns the text (caller frees). */
static char *render(enum cw_format fmt, struct cw_render_item *items, size_t n)
{
    struct cw_buf out;
    char *s;

    cw_buf_init(&out, 1 << 24);
    ck_assert_int_eq(cw_render(&out, fmt, items, n), CW_OK);
    s = cw_buf_take(&out, NULL);
    if (s == NULL)
        s = strdup("");
    ck_assert_ptr_nonnull(s);
    return s;
}

/* assert_same_text() compares two long texts and reports the first
 * difference (Check cannot carry messages of more than a few KiB). */
static void assert_same_text(const char *got, const char *want, const char *what)
{
    size_t i = 0;

    while (got[i] != '\0' && got[i] == want[i])
        i++;
    if (got[i] != want[i]) {
        size_t from = i > 20 ? i - 20 : 0;

        ck_abort_msg("%s: first difference at byte %zu:\n got: %.120s\nwant: %.120s", what, i,
                     got + from, want + from);
    }
}

/* ---- escaping and layout ---- */

START_TEST(test_render_escapes_quote_in_label_value)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *vals[] = {"say \"hi\" \\ to\nme"};
    struct cw_render_item it;
    char *s;

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_temp, NULL, 21.5, vals, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    cw_batch_items(b, &it);
    s = render(CW_FMT_TEXT, &it, 1);
    ck_assert_str_eq(s,
                     "# HELP connwatch_test_temperature_celsius Tricky help: a backslash \\\\, "
                     "\"quotes\"\\nand a second line.\n"
                     "# TYPE connwatch_test_temperature_celsius gauge\n"
                     "connwatch_test_temperature_celsius{sensor=\"say \\\"hi\\\" \\\\ to\\nme\"} "
                     "21.5\n");
    free(s);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_render_openmetrics_escapes_quote_in_help)
{
    struct cw_render_item it = mk(&desc_temp, "sensor=\"a\"", 1, NULL);
    char *s = render(CW_FMT_OPENMETRICS, &it, 1);

    ck_assert_str_eq(s, "# TYPE connwatch_test_temperature_celsius gauge\n"
                        "# HELP connwatch_test_temperature_celsius Tricky help: a backslash \\\\, "
                        "\\\"quotes\\\"\\nand a second line.\n"
                        "connwatch_test_temperature_celsius{sensor=\"a\"} 1\n"
                        "# EOF\n");
    free(s);
}
END_TEST

START_TEST(test_render_omits_braces_without_labels)
{
    struct cw_render_item it = mk(&desc_up, NULL, 1, NULL);
    char *s = render(CW_FMT_TEXT, &it, 1);

    ck_assert_str_eq(s,
                     "# HELP connwatch_test_up Whether the test target answered (1) or not (0).\n"
                     "# TYPE connwatch_test_up gauge\n"
                     "connwatch_test_up 1\n");
    free(s);
}
END_TEST

START_TEST(test_render_joins_prefix_and_labels_and_orders_the_whole_text)
{
    /* A batch keeps the label prefix apart from each sample's own labels:
     * rendered, the two join with a ','; ordered, the whole text counts,
     * wherever it was split; a prefix alone needs no ','. */
    struct cw_render_item it[4] = {
        mk(&desc_temp, "c=\"3\"", 3, NULL),
        mk(&desc_temp, "a=\"1\",b=\"2\"", 2, NULL),
        mk(&desc_temp, NULL, 1, NULL),
        mk(&desc_temp, "b=\"0\"", 4, NULL),
    };
    char *s;

    it[0].prefix = "a=\"1\"";
    it[0].prefix_len = 5;
    it[2].prefix = "a=\"1\"";
    it[2].prefix_len = 5;
    it[3].prefix = "a=\"0\"";
    it[3].prefix_len = 5;
    s = render(CW_FMT_TEXT, it, 4);
    ck_assert_ptr_nonnull(strstr(s, "connwatch_test_temperature_celsius{a=\"0\",b=\"0\"} 4\n"
                                    "connwatch_test_temperature_celsius{a=\"1\"} 1\n"
                                    "connwatch_test_temperature_celsius{a=\"1\",b=\"2\"} 2\n"
                                    "connwatch_test_temperature_celsius{a=\"1\",c=\"3\"} 3\n"));
    free(s);
}
END_TEST

START_TEST(test_render_empty_text_is_empty_and_openmetrics_is_eof)
{
    char *s = render(CW_FMT_TEXT, NULL, 0);

    ck_assert_str_eq(s, "");
    free(s);
    s = render(CW_FMT_OPENMETRICS, NULL, 0);
    ck_assert_str_eq(s, "# EOF\n");
    free(s);
}
END_TEST

START_TEST(test_render_text_keeps_total_in_counter_family)
{
    struct cw_render_item it = mk(&desc_requests, "code=\"200\"", 5, NULL);
    char *s = render(CW_FMT_TEXT, &it, 1);

    ck_assert_str_eq(s, "# HELP connwatch_test_requests_total Requests the test target handled.\n"
                        "# TYPE connwatch_test_requests_total counter\n"
                        "connwatch_test_requests_total{code=\"200\"} 5\n");
    free(s);
}
END_TEST

START_TEST(test_render_openmetrics_strips_total_from_counter_family)
{
    struct cw_render_item it = mk(&desc_requests, "code=\"200\"", 5, NULL);
    char *s = render(CW_FMT_OPENMETRICS, &it, 1);

    ck_assert_str_eq(s, "# TYPE connwatch_test_requests counter\n"
                        "# HELP connwatch_test_requests Requests the test target handled.\n"
                        "connwatch_test_requests_total{code=\"200\"} 5\n"
                        "# EOF\n");
    free(s);
}
END_TEST

START_TEST(test_render_openmetrics_adds_total_to_bare_counter_samples)
{
    struct cw_render_item it = mk(&desc_bare_counter, NULL, 3, NULL);
    char *s = render(CW_FMT_OPENMETRICS, &it, 1);

    ck_assert_str_eq(s, "# TYPE connwatch_test_retries counter\n"
                        "# HELP connwatch_test_retries Retries.\n"
                        "connwatch_test_retries_total 3\n"
                        "# EOF\n");
    free(s);
}
END_TEST

START_TEST(test_render_histogram_inf_bucket_equals_count)
{
    const uint64_t h[] = {1, 3, 3, 6, 7};
    struct cw_render_item it = mk(&desc_duration, "phase=\"connect\"", 2.5, h);
    char *s = render(CW_FMT_TEXT, &it, 1);

    ck_assert_str_eq(s, "# HELP connwatch_test_duration_seconds Duration of test probes.\n"
                        "# TYPE connwatch_test_duration_seconds histogram\n"
                        "connwatch_test_duration_seconds_bucket{phase=\"connect\",le=\"0.005\"} 1\n"
                        "connwatch_test_duration_seconds_bucket{phase=\"connect\",le=\"0.1\"} 3\n"
                        "connwatch_test_duration_seconds_bucket{phase=\"connect\",le=\"1\"} 3\n"
                        "connwatch_test_duration_seconds_bucket{phase=\"connect\",le=\"10\"} 6\n"
                        "connwatch_test_duration_seconds_bucket{phase=\"connect\",le=\"+Inf\"} 7\n"
                        "connwatch_test_duration_seconds_sum{phase=\"connect\"} 2.5\n"
                        "connwatch_test_duration_seconds_count{phase=\"connect\"} 7\n");
    free(s);
}
END_TEST

START_TEST(test_render_openmetrics_histogram_le_is_canonical)
{
    const uint64_t h[] = {0, 0, 1, 1, 2};
    struct cw_render_item it = mk(&desc_duration, NULL, 11, h);
    char *s = render(CW_FMT_OPENMETRICS, &it, 1);

    ck_assert_str_eq(s, "# TYPE connwatch_test_duration_seconds histogram\n"
                        "# HELP connwatch_test_duration_seconds Duration of test probes.\n"
                        "connwatch_test_duration_seconds_bucket{le=\"0.005\"} 0\n"
                        "connwatch_test_duration_seconds_bucket{le=\"0.1\"} 0\n"
                        "connwatch_test_duration_seconds_bucket{le=\"1.0\"} 1\n"
                        "connwatch_test_duration_seconds_bucket{le=\"10.0\"} 1\n"
                        "connwatch_test_duration_seconds_bucket{le=\"+Inf\"} 2\n"
                        "connwatch_test_duration_seconds_sum 11\n"
                        "connwatch_test_duration_seconds_count 2\n"
                        "# EOF\n");
    free(s);
}
END_TEST

START_TEST(test_render_formats_bounds_beyond_the_le_cache)
{
    double bounds[100];
    uint64_t h[101];
    struct cw_desc d = {
        .name = "connwatch_test_many_buckets_seconds",
        .help = "h",
        .type = CW_HISTOGRAM,
        .buckets = bounds,
        .nbuckets = 100,
    };
    struct cw_render_item it;
    char *s;

    for (size_t i = 0; i < 100; i++) {
        bounds[i] = (double)(i + 1) / 4;
        h[i] = i;
    }
    h[100] = 100;
    it = mk(&d, NULL, 1, h);
    s = render(CW_FMT_OPENMETRICS, &it, 1);
    ck_assert_ptr_nonnull(strstr(s, "_bucket{le=\"0.25\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(s, "_bucket{le=\"16.0\"} 63\n"));
    ck_assert_ptr_nonnull(strstr(s, "_bucket{le=\"16.25\"} 64\n"));
    ck_assert_ptr_nonnull(strstr(s, "_bucket{le=\"25.0\"} 99\n"));
    ck_assert_ptr_nonnull(strstr(s, "_bucket{le=\"+Inf\"} 100\n"));
    free(s);
}
END_TEST

START_TEST(test_render_spells_special_values)
{
    struct cw_render_item items[] = {
        mk(&desc_ratio, "case=\"a\"", NAN, NULL),
        mk(&desc_ratio, "case=\"b\"", INFINITY, NULL),
        mk(&desc_ratio, "case=\"c\"", -INFINITY, NULL),
        mk(&desc_ratio, "case=\"d\"", -0.25, NULL),
    };
    char *s = render(CW_FMT_TEXT, items, CW_ARRAY_LEN(items));

    ck_assert_ptr_nonnull(strstr(s, "{case=\"a\"} NaN\n"));
    ck_assert_ptr_nonnull(strstr(s, "{case=\"b\"} +Inf\n"));
    ck_assert_ptr_nonnull(strstr(s, "{case=\"c\"} -Inf\n"));
    ck_assert_ptr_nonnull(strstr(s, "{case=\"d\"} -0.25\n"));
    free(s);
}
END_TEST

/* ---- sorting and duplicates ---- */

START_TEST(test_render_sorts_families_and_series)
{
    struct cw_render_item items[] = {
        mk(&desc_up, "target=\"b\"", 1, NULL), mk(&desc_requests, "code=\"500\"", 2, NULL),
        mk(&desc_up, "target=\"a\"", 0, NULL), mk(&desc_requests, "code=\"200\"", 9, NULL),
        mk(&desc_up, NULL, 1, NULL),
    };
    char *s = render(CW_FMT_TEXT, items, CW_ARRAY_LEN(items));

    ck_assert_str_eq(s,
                     "# HELP connwatch_test_requests_total Requests the test target handled.\n"
                     "# TYPE connwatch_test_requests_total counter\n"
                     "connwatch_test_requests_total{code=\"200\"} 9\n"
                     "connwatch_test_requests_total{code=\"500\"} 2\n"
                     "# HELP connwatch_test_up Whether the test target answered (1) or not (0).\n"
                     "# TYPE connwatch_test_up gauge\n"
                     "connwatch_test_up 1\n"
                     "connwatch_test_up{target=\"a\"} 0\n"
                     "connwatch_test_up{target=\"b\"} 1\n");
    free(s);
}
END_TEST

START_TEST(test_render_keeps_first_duplicate_and_drops_the_rest)
{
    /* Another descriptor with the same name is the same family. */
    static const struct cw_desc up_copy = {
        .name = "connwatch_test_up",
        .help = "A copy.",
        .type = CW_GAUGE,
    };
    struct cw_render_item items[] = {
        mk(&desc_up, "target=\"a\"", 1, NULL),
        mk(&desc_up, "target=\"b\"", 2, NULL),
        mk(&up_copy, "target=\"a\"", 3, NULL),
        mk(&desc_up, "target=\"a\"", 4, NULL),
    };
    char *s = render(CW_FMT_TEXT, items, CW_ARRAY_LEN(items));

    ck_assert_str_eq(s,
                     "# HELP connwatch_test_up Whether the test target answered (1) or not (0).\n"
                     "# TYPE connwatch_test_up gauge\n"
                     "connwatch_test_up{target=\"a\"} 1\n"
                     "connwatch_test_up{target=\"b\"} 2\n");
    free(s);
}
END_TEST

/* A deterministic generator for the tests below. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* Same name and help as desc_up: the same family. */
static const struct cw_desc desc_up_twin = {
    .name = "connwatch_test_up",
    .help = "Whether the test target answered (1) or not (0).",
    .type = CW_GAUGE,
};

static int ref_cmp(const void *pa, const void *pb)
{
    const struct cw_render_item *a = pa, *b = pb;
    int c = strcmp(a->desc->name, b->desc->name);

    if (c != 0)
        return c;
    c = strcmp(a->labels != NULL ? a->labels : "", b->labels != NULL ? b->labels : "");
    if (c != 0)
        return c;
    return (a->value > b->value) - (a->value < b->value);
}

START_TEST(test_render_large_shuffled_input_matches_sorted_unique_input)
{
    static const struct cw_desc *const descs[] = {&desc_up, &desc_temp, &desc_requests, &desc_ratio,
                                                  &desc_bare_counter};
    const size_t nseries = 1500, n = 4000;
    struct cw_render_item *items = calloc(n, sizeof(*items));
    struct cw_render_item *uniq = calloc(nseries, sizeof(*uniq));
    char(*labels)[32] = calloc(nseries, sizeof(*labels));
    unsigned char *seen = calloc(nseries, 1);
    size_t *which = calloc(n, sizeof(*which));
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    size_t nuniq = 0;
    char *got, *want;

    ck_assert(items && uniq && labels && seen && which);
    for (size_t i = 0; i < nseries; i++) {
        int len = snprintf(labels[i], sizeof(labels[i]), "k=\"v%zu\"", i / 5);

        ck_assert_int_gt(len, 0);
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = i < nseries ? i : (size_t)(rng_next(&rng) % nseries);

        which[i] = k;
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&rng) % (i + 1));
        size_t t = which[i];

        which[i] = which[j];
        which[j] = t;
    }
    /* The first occurrence of each series (in input order) is worth 1. */
    for (size_t i = 0; i < n; i++) {
        size_t k = which[i];

        const struct cw_desc *d = descs[k % 5];

        /* Half of connwatch_test_up's items name it through another descriptor. */
        if (d == &desc_up && rng_next(&rng) % 2 == 0)
            d = &desc_up_twin;
        items[i] = mk(d, labels[k], seen[k] ? 2 : 1, NULL);
        if (!seen[k])
            uniq[nuniq++] = items[i];
        seen[k] = 1;
    }
    ck_assert_uint_eq(nuniq, nseries);
    qsort(uniq, nuniq, sizeof(*uniq), ref_cmp);

    got = render(CW_FMT_TEXT, items, n);
    want = render(CW_FMT_TEXT, uniq, nuniq);
    assert_same_text(got, want, "shuffled input");
    ck_assert_ptr_null(strstr(got, "} 2\n"));
    free(got);
    free(want);
    free(which);
    free(seen);
    free(labels);
    free(uniq);
    free(items);
}
END_TEST

START_TEST(test_render_sorts_many_families_by_name)
{
    const size_t nfam = 700, per = 3, n = nfam * per;
    struct cw_desc *descs = calloc(nfam, sizeof(*descs));
    char(*names)[48] = calloc(nfam, sizeof(*names));
    struct cw_render_item *items = calloc(n, sizeof(*items));
    struct cw_render_item *sorted = calloc(n, sizeof(*sorted));
    static const char *const labels[] = {"a=\"1\"", "a=\"2\"", "a=\"3\""};
    uint64_t rng = 12345;
    char *got, *want;

    ck_assert(descs && names && items && sorted);
    for (size_t f = 0; f < nfam; f++) {
        /* Names in an order unrelated to the descriptors' addresses. */
        ck_assert_int_gt(
            snprintf(names[f], sizeof(names[f]), "connwatch_test_f%zu_bytes", (f * 7919) % nfam),
            0);
        descs[f] = (struct cw_desc){.name = names[f], .help = "h", .type = CW_GAUGE};
        for (size_t j = 0; j < per; j++)
            items[f * per + j] = mk(&descs[f], labels[j], (double)j, NULL);
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&rng) % (i + 1));
        struct cw_render_item t = items[i];

        items[i] = items[j];
        items[j] = t;
    }
    memcpy(sorted, items, n * sizeof(*items));
    qsort(sorted, n, sizeof(*sorted), ref_cmp);
    got = render(CW_FMT_TEXT, items, n);
    want = render(CW_FMT_TEXT, sorted, n);
    assert_same_text(got, want, "many families");
    ck_assert_mem_eq(items, sorted, n * sizeof(*items));
    free(got);
    free(want);
    free(sorted);
    free(items);
    free(names);
    free(descs);
}
END_TEST

/* ---- errors ---- */

START_TEST(test_render_reports_too_big_when_limit_is_hit)
{
    const uint64_t h[] = {1, 2, 3, 4, 5};
    struct cw_render_item items[] = {
        mk(&desc_up, "target=\"a\"", 1, NULL),
        mk(&desc_duration, "phase=\"tls\"", 0.5, h),
        mk(&desc_requests, "code=\"200\"", 7, NULL),
    };
    const enum cw_format fmts[] = {CW_FMT_TEXT, CW_FMT_OPENMETRICS};

    for (size_t f = 0; f < CW_ARRAY_LEN(fmts); f++) {
        struct cw_buf out;
        size_t len;
        char *full = render(fmts[f], items, CW_ARRAY_LEN(items));

        len = strlen(full);
        /* Exactly enough fits... */
        cw_buf_init(&out, len);
        ck_assert_int_eq(cw_render(&out, fmts[f], items, CW_ARRAY_LEN(items)), CW_OK);
        ck_assert_str_eq(cw_buf_str(&out), full);
        cw_buf_reset(&out);
        /* ...and every smaller limit fails without writing past it. */
        for (size_t limit = 0; limit < len; limit += 7) {
            cw_buf_init(&out, limit);
            ck_assert_int_eq(cw_render(&out, fmts[f], items, CW_ARRAY_LEN(items)), CW_ETOOBIG);
            ck_assert_uint_le(out.len, limit);
            cw_buf_reset(&out);
        }
        cw_buf_init(&out, len - 1);
        ck_assert_int_eq(cw_render(&out, fmts[f], items, CW_ARRAY_LEN(items)), CW_ETOOBIG);
        cw_buf_reset(&out);
        free(full);
    }
}
END_TEST

START_TEST(test_render_rejects_histogram_item_without_counts)
{
    struct cw_render_item it = mk(&desc_duration, NULL, 1, NULL);
    struct cw_buf out;

    cw_buf_init(&out, 4096);
    ck_assert_int_eq(cw_render(&out, CW_FMT_TEXT, &it, 1), CW_EINVAL);
    cw_buf_reset(&out);
}
END_TEST

/* Series of one family with different bounds (icmp histogram_buckets per
 * check): each is written with its own le set, under one HELP/TYPE. */
START_TEST(test_render_histogram_with_other_bounds_in_family)
{
    static const double few[] = {1};
    static const struct cw_desc other = {
        .name = "connwatch_test_duration_seconds",
        .help = "Same family, other bounds.",
        .type = CW_HISTOGRAM,
        .buckets = few,
        .nbuckets = 1,
    };
    const uint64_t h5[] = {1, 2, 3, 4, 5};
    const uint64_t h2[] = {1, 2};
    struct cw_render_item items[] = {
        mk(&desc_duration, "phase=\"a\"", 1, h5),
        mk(&other, "phase=\"b\"", 0.5, h2),
    };
    struct cw_buf out;
    const char *text;

    cw_buf_init(&out, 4096);
    ck_assert_int_eq(cw_render(&out, CW_FMT_TEXT, items, 2), CW_OK);
    text = cw_buf_str(&out);
    ck_assert_ptr_nonnull(
        strstr(text, "connwatch_test_duration_seconds_bucket{phase=\"b\",le=\"1\"} 1\n"
                     "connwatch_test_duration_seconds_bucket{phase=\"b\",le=\"+Inf\"} 2\n"
                     "connwatch_test_duration_seconds_sum{phase=\"b\"} 0.5\n"
                     "connwatch_test_duration_seconds_count{phase=\"b\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "connwatch_test_duration_seconds_bucket{phase=\"a\",le=\"+Inf\"} 5\n"));
    /* one family header */
    ck_assert_ptr_eq(strstr(strstr(text, "# TYPE") + 1, "# TYPE"), NULL);
    cw_buf_reset(&out);
}
END_TEST

/* ---- cw_format_double ---- */

static const char *fmt_double(double v)
{
    static char buf[32];

    ck_assert_uint_eq(cw_format_double(v, buf), strlen(buf));
    return buf;
}

START_TEST(test_format_double_spells_special_values)
{
    ck_assert_str_eq(fmt_double(NAN), "NaN");
    ck_assert_str_eq(fmt_double(-NAN), "NaN");
    ck_assert_str_eq(fmt_double(INFINITY), "+Inf");
    ck_assert_str_eq(fmt_double(-INFINITY), "-Inf");
}
END_TEST

START_TEST(test_format_double_prints_integers_without_exponent)
{
    ck_assert_str_eq(fmt_double(0), "0");
    ck_assert_str_eq(fmt_double(-0.0), "-0");
    ck_assert_str_eq(fmt_double(1), "1");
    ck_assert_str_eq(fmt_double(-42), "-42");
    ck_assert_str_eq(fmt_double(1e6), "1000000");
    ck_assert_str_eq(fmt_double(1e15), "1000000000000000");
    ck_assert_str_eq(fmt_double(9007199254740991.0), "9007199254740991");
    ck_assert_str_eq(fmt_double(-9007199254740991.0), "-9007199254740991");
    ck_assert_str_eq(fmt_double(18446744073709551616.0), "1.8446744073709552e+19");
    ck_assert_str_eq(fmt_double(1e21), "1e+21");
}
END_TEST

START_TEST(test_format_double_prints_shortest_decimals)
{
    ck_assert_str_eq(fmt_double(0.1), "0.1");
    ck_assert_str_eq(fmt_double(0.005), "0.005");
    ck_assert_str_eq(fmt_double(-2.5), "-2.5");
    ck_assert_str_eq(fmt_double(0.0001), "0.0001");
    ck_assert_str_eq(fmt_double(123456.789), "123456.789");
    ck_assert_str_eq(fmt_double(0.1 + 0.2), "0.30000000000000004");
    ck_assert_str_eq(fmt_double(1.0 / 3), "0.3333333333333333");
    ck_assert_str_eq(fmt_double(2.0 / 3), "0.6666666666666666");
    ck_assert_str_eq(fmt_double(0.00009), "9e-05");
    ck_assert_str_eq(fmt_double(1.5e-7), "1.5e-07");
    ck_assert_str_eq(fmt_double(1e300), "1e+300");
    ck_assert_str_eq(fmt_double(1.7976931348623157e308), "1.7976931348623157e+308");
}
END_TEST

/* check_round_trip() asserts that 'v' prints as text strtod() reads back
 * bit for bit. Plain ifs: in fork mode every passing ck_assert costs a
 * message to the parent, too much for a loop of 10^5 values. */
static void check_round_trip(double v)
{
    char buf[32];
    size_t len = cw_format_double(v, buf);
    char *end;
    double back;

    if (len != strlen(buf) || len >= 32)
        ck_abort_msg("bad length %zu for %s", len, buf);
    back = strtod(buf, &end);
    if (*end != '\0')
        ck_abort_msg("trailing text in %s", buf);
    if (memcmp(&back, &v, sizeof(v)) != 0)
        ck_abort_msg("%.17g printed as %s", v, buf);
    if (strpbrk(buf, ",inf") != NULL)
        ck_abort_msg("%.17g printed as %s", v, buf);
}

START_TEST(test_format_double_round_trips)
{
    /* Fewer values under valgrind, which is ~50 times slower here. */
    const int count = getenv("CW_UNDER_VALGRIND") != NULL ? 20000 : 200000;
    uint64_t rng = 0x2545f4914f6cdd1dULL;
    char dec[40];

    /* Arbitrary bit patterns, all exponents. */
    for (int i = 0; i < count; i++) {
        uint64_t bits = rng_next(&rng);
        double v;

        memcpy(&v, &bits, sizeof(v));
        if (isnan(v) || isinf(v))
            continue;
        check_round_trip(v);
    }
    /* Short decimals, the common case: never longer than how they were written. */
    for (int i = 0; i < count; i++) {
        unsigned long long m = rng_next(&rng) % 1000000000ULL;
        int k = (int)(rng_next(&rng) % 10);
        unsigned long long p10 = 1;
        char buf[32];
        double v;
        int n;

        for (int j = 0; j < k; j++)
            p10 *= 10;
        if (k == 0)
            n = snprintf(dec, sizeof(dec), "%llu", m);
        else
            n = snprintf(dec, sizeof(dec), "%llu.%0*llu", m / p10, k, m % p10);
        if (n <= 0)
            ck_abort_msg("snprintf failed");
        v = strtod(dec, NULL);
        check_round_trip(v);
        check_round_trip(-v);
        check_round_trip(v / 1e6);
        if (cw_format_double(v, buf) > strlen(dec))
            ck_abort_msg("%s printed as %s", dec, buf);
    }
    check_round_trip(5e-324);
    check_round_trip(2.2250738585072014e-308);
    check_round_trip(9007199254740993.0);
    check_round_trip(0.1 + 0.7);
}
END_TEST

/* ---- negotiation ---- */

static const char accept_prom2[] =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
static const char accept_prom3[] =
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/"
    "openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
static const char accept_prom3_proto[] =
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
    "q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/"
    "openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

START_TEST(test_render_negotiates_openmetrics_for_prometheus2)
{
    ck_assert_int_eq(cw_render_negotiate(accept_prom2), CW_FMT_OPENMETRICS);
}
END_TEST

START_TEST(test_render_negotiates_openmetrics_for_prometheus3)
{
    ck_assert_int_eq(cw_render_negotiate(accept_prom3), CW_FMT_OPENMETRICS);
    ck_assert_int_eq(cw_render_negotiate(accept_prom3_proto), CW_FMT_OPENMETRICS);
}
END_TEST

START_TEST(test_render_negotiates_text_for_any_empty_or_garbage)
{
    static const char *const texts[] = {
        "",
        "*/*",
        "text/plain",
        "text/plain;version=0.0.4",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/openmetrics-text;version=0.0.1",
        "application/openmetrics-text;version=2.0.0",
        "application/openmetrics-text;q=0",
        "application/openmetrics-text;version=1.0.0;q=0.000",
        "application/openmetrics-text;q=0.4,text/plain;q=0.5",
        "application/openmetrics-text;q=0.4,*/*",
        "application/openmetrics-text;q=bogus",
        "application/openmetrics-text;q=1.5",
        "application/openmetrics-text-not;version=1.0.0",
        "application/openmetrics",
        ";;;,,,;=;=\"",
        "\"application/openmetrics-text\"",
        "application/openmetrics-text;version=\"1.0.0",
        "\xff\xfe garbage \x01",
    };

    ck_assert_int_eq(cw_render_negotiate(NULL), CW_FMT_TEXT);
    for (size_t i = 0; i < CW_ARRAY_LEN(texts); i++)
        ck_assert_msg(cw_render_negotiate(texts[i]) == CW_FMT_TEXT, "chose OpenMetrics for '%s'",
                      texts[i]);
}
END_TEST

START_TEST(test_render_negotiates_openmetrics_when_listed_first_or_equal)
{
    static const char *const oms[] = {
        "application/openmetrics-text",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "APPLICATION/OpenMetrics-Text ; Version=\"1.0.0\" ; Q=1",
        "text/plain;q=0.5, application/openmetrics-text;q=0.5",
        ("*/*;q=0.2,application/openmetrics-text;version=0.0.1,"
         "application/openmetrics-text;version=1.0.0;q=0.3"),
        "  ,  application/openmetrics-text ;q=.9 , text/plain;q=0.8",
        "text/plain;q=0, application/openmetrics-text;q=0.001",
    };

    for (size_t i = 0; i < CW_ARRAY_LEN(oms); i++)
        ck_assert_msg(cw_render_negotiate(oms[i]) == CW_FMT_OPENMETRICS, "chose text for '%s'",
                      oms[i]);
}
END_TEST

START_TEST(test_render_content_type_matches_format)
{
    ck_assert_str_eq(cw_render_content_type(CW_FMT_TEXT),
                     "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_str_eq(cw_render_content_type(CW_FMT_OPENMETRICS),
                     "application/openmetrics-text; version=1.0.0; charset=utf-8");
}
END_TEST

START_TEST(test_render_accepts_gzip_only_when_allowed)
{
    static const char *const yes[] = {
        "gzip",
        "GZip",
        "deflate, gzip",
        " gzip ; q=0.5 ",
        "*",
        "br;q=1, *;q=0.1",
        "x-gzip",
        "identity;q=0, gzip;q=1.0",
        "gzip;q=0.001",
    };
    static const char *const no[] = {
        "",      "identity",    "deflate, br", "gzip;q=0", "gzip;q=0.000",
        "*;q=0", "gzip;q=0, *", "*, gzip;q=0", "gzipper",  "gzip;q=bogus",
        ",,;;",  "gz ip",
    };

    ck_assert(!cw_accepts_gzip(NULL));
    for (size_t i = 0; i < CW_ARRAY_LEN(yes); i++)
        ck_assert_msg(cw_accepts_gzip(yes[i]), "refused '%s'", yes[i]);
    for (size_t i = 0; i < CW_ARRAY_LEN(no); i++)
        ck_assert_msg(!cw_accepts_gzip(no[i]), "accepted '%s'", no[i]);
}
END_TEST

/* ---- gzip ---- */

/* gunzip() inflates a gzip stream into 'out' and wants every input byte
 * used: one member, nothing after it (what curl and browsers read). */
static int gunzip(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    z_stream zs;
    int rc;

    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return -1;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    rc = inflate(&zs, Z_FINISH);
    *out_len = cap - zs.avail_out;
    inflateEnd(&zs);
    return rc == Z_STREAM_END && zs.avail_in == 0 ? 0 : -1;
}

START_TEST(test_render_gzip_round_trips)
{
    const uint64_t h[] = {1, 2, 3, 4, 5};
    struct cw_render_item items[300];
    char labels[300][24];
    struct cw_buf gz;
    char *text, *back;
    size_t len, back_len;

    for (size_t i = 0; i < CW_ARRAY_LEN(items); i++) {
        ck_assert_int_gt(snprintf(labels[i], sizeof(labels[i]), "phase=\"p%zu\"", i), 0);
        items[i] = mk(&desc_duration, labels[i], (double)i / 8, h);
    }
    text = render(CW_FMT_TEXT, items, CW_ARRAY_LEN(items));
    len = strlen(text);

    cw_buf_init(&gz, 1 << 20);
    ck_assert_int_eq(cw_buf_adds(&gz, "kept"), CW_OK);
    ck_assert_int_eq(cw_gzip(text, len, 6, &gz), CW_OK);
    ck_assert_uint_lt(gz.len, len / 4);
    ck_assert_mem_eq(gz.data, "kept\x1f\x8b", 6);
    back = malloc(len + 1);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(gunzip(gz.data + 4, gz.len - 4, back, len + 1, &back_len), 0);
    ck_assert_uint_eq(back_len, len);
    ck_assert_mem_eq(back, text, len);

    /* An empty body is a valid, empty gzip stream. */
    cw_buf_clear(&gz);
    ck_assert_int_eq(cw_gzip("", 0, 1, &gz), CW_OK);
    ck_assert_int_eq(gunzip(gz.data, gz.len, back, len + 1, &back_len), 0);
    ck_assert_uint_eq(back_len, 0);

    free(back);
    free(text);
    cw_buf_reset(&gz);
}
END_TEST

START_TEST(test_render_gzip_join_is_one_member)
{
    static const char *const heads[] = {"", "connwatch_check_success{check=\"tcp\"} 1\n"};
    static const char *const tails[] = {"", "connwatch_build_info{version=\"0.1.0\"} 1\n# EOF\n"};
    char big[20000], back[30000];
    size_t back_len, i, j;

    for (i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)('a' + (i * 7 + i / 13) % 26);
    big[sizeof(big) - 1] = '\0';
    for (i = 0; i < 3; i++) {
        for (j = 0; j < 2; j++) {
            const char *head = i < 2 ? heads[i] : big;
            struct cw_buf raw, out;
            uint32_t crc = 1;
            char want[30000];

            cw_buf_init(&raw, 1 << 20);
            cw_buf_init(&out, 1 << 20);
            ck_assert_int_eq(cw_buf_adds(&out, "kept"), CW_OK);
            ck_assert_int_eq(cw_gzip_part(head, strlen(head), 1, &raw, &crc), CW_OK);
            ck_assert_int_eq(cw_gzip_join(&out, raw.data, raw.len, crc, strlen(head), tails[j],
                                          strlen(tails[j]), 1),
                             CW_OK);
            ck_assert_mem_eq(out.data, "kept\x1f\x8b", 6);
            ck_assert_int_eq(gunzip(out.data + 4, out.len - 4, back, sizeof(back), &back_len), 0);
            ck_assert_int_ge(snprintf(want, sizeof(want), "%s%s", head, tails[j]), 0);
            ck_assert_uint_eq(back_len, strlen(want));
            ck_assert_mem_eq(back, want, back_len);
            cw_buf_reset(&raw);
            cw_buf_reset(&out);
        }
    }
}
END_TEST

START_TEST(test_render_gzip_reports_too_big_and_keeps_buffer)
{
    char noise[4096];
    uint64_t rng = 7;
    struct cw_buf gz;

    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (char)rng_next(&rng);
    cw_buf_init(&gz, 1000);
    ck_assert_int_eq(cw_buf_adds(&gz, "head"), CW_OK);
    ck_assert_int_eq(cw_gzip(noise, sizeof(noise), 9, &gz), CW_ETOOBIG);
    ck_assert_uint_eq(gz.len, 4);
    ck_assert_str_eq(cw_buf_str(&gz), "head");
    ck_assert_int_eq(cw_gzip(noise, 10, 0, &gz), CW_EINVAL);
    ck_assert_int_eq(cw_gzip(noise, 10, 10, &gz), CW_EINVAL);
    cw_buf_reset(&gz);
}
END_TEST

/* ---- golden files ---- */

/* golden_items() fills 'items' with the golden set and returns how many.
 * The batches stay referenced in 'batches' until the caller unrefs them. */
static size_t golden_items(struct cw_render_item *items, struct cw_batch *batches[2])
{
    static const uint64_t h_connect[] = {0, 3, 9, 10, 10};
    static const uint64_t h_tls[] = {0, 0, 2, 7, 8};
    const char *tricky[] = {"C:\\probe \"main\"\nline 2"};
    struct cw_buf prefix;
    size_t n = 0;

    /* Batch 0: a plain instance prefix. */
    batches[0] = cw_batch_new("service=\"web\",target=\"db1:3306\"");
    ck_assert_ptr_nonnull(batches[0]);
    cw_batch_add(batches[0], &desc_up, NULL, 1, NULL, NULL);
    cw_batch_add(batches[0], &desc_requests, NULL, 12345, (const char *[]){"200"}, NULL);
    cw_batch_add(batches[0], &desc_requests, NULL, 7, (const char *[]){"500"}, NULL);
    cw_batch_add(batches[0], &desc_duration, NULL, 0.4125, (const char *[]){"connect"}, h_connect);
    cw_batch_add(batches[0], &desc_duration, NULL, 13.75, (const char *[]){"tls"}, h_tls);
    cw_batch_add(batches[0], &desc_ratio, NULL, NAN, (const char *[]){"nan"}, NULL);
    cw_batch_add(batches[0], &desc_ratio, NULL, INFINITY, (const char *[]){"pos_inf"}, NULL);
    cw_batch_add(batches[0], &desc_ratio, NULL, -INFINITY, (const char *[]){"neg_inf"}, NULL);
    cw_batch_add(batches[0], &desc_ratio, NULL, 1.0 / 3, (const char *[]){"third"}, NULL);
    cw_batch_add(batches[0], &desc_ratio, NULL, 2.5e-7, (const char *[]){"tiny"}, NULL);
    ck_assert_int_eq(cw_batch_err(batches[0]), CW_OK);

    /* Batch 1: a prefix with every escape, built the way the core builds it. */
    cw_buf_init(&prefix, 1024);
    ck_assert_int_eq(cw_buf_adds(&prefix, "service=\""), CW_OK);
    ck_assert_int_eq(cw_label_escape(&prefix, "odd \"svc\" \\ name"), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&prefix, "\""), CW_OK);
    batches[1] = cw_batch_new(cw_buf_str(&prefix));
    ck_assert_ptr_nonnull(batches[1]);
    cw_batch_add(batches[1], &desc_temp, NULL, -12.5, tricky, NULL);
    cw_batch_add(batches[1], &desc_up, NULL, 0, NULL, NULL);
    cw_batch_add(batches[1], &desc_up, NULL, 1, NULL, NULL); /* duplicate: dropped */
    cw_batch_add(batches[1], &desc_failures, "reason=\"timeout\"", 3, NULL, NULL);
    ck_assert_int_eq(cw_batch_err(batches[1]), CW_OK);
    cw_buf_reset(&prefix); /* borrowed by the batch for the emits only */

    /* A series without any label, and the batches interleaved as a scrape would. */
    items[n++] = mk(&desc_up, NULL, 1, NULL);
    cw_batch_items(batches[1], items + n);
    n += cw_batch_len(batches[1]);
    cw_batch_items(batches[0], items + n);
    n += cw_batch_len(batches[0]);
    return n;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct cw_buf b;
    char chunk[4096];
    size_t got;
    char *s;

    if (f == NULL)
        return NULL;
    cw_buf_init(&b, 1 << 20);
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        ck_assert_int_eq(cw_buf_add(&b, chunk, got), CW_OK);
    ck_assert_int_eq(ferror(f), 0);
    fclose(f);
    s = cw_buf_take(&b, len);
    return s != NULL ? s : strdup("");
}

static void check_golden(enum cw_format fmt, const char *file)
{
    struct cw_render_item items[32];
    struct cw_batch *batches[2];
    const char *update = getenv("CW_UPDATE_GOLDEN");
    char path[1024], what[1100];
    size_t n, want_len;
    char *got, *want;

    ck_assert_int_lt(snprintf(path, sizeof(path), "%s/%s", CW_GOLDEN_DIR, file), (int)sizeof(path));
    n = golden_items(items, batches);
    got = render(fmt, items, n);

    if (update != NULL && strcmp(update, "1") == 0) {
        FILE *f = fopen(path, "wb");

        ck_assert_msg(f != NULL, "cannot write %s", path);
        ck_assert_uint_eq(fwrite(got, 1, strlen(got), f), strlen(got));
        ck_assert_int_eq(fclose(f), 0);
    } else {
        want = read_file(path, &want_len);
        ck_assert_msg(want != NULL, "cannot read %s (CW_UPDATE_GOLDEN=1 creates it)", path);
        /* CW_UPDATE_GOLDEN=1 rewrites the file when the change is intended. */
        ck_assert_int_lt(snprintf(what, sizeof(what), "%s (CW_UPDATE_GOLDEN=1 rewrites it)", path),
                         (int)sizeof(what));
        assert_same_text(got, want, what);
        free(want);
    }
    free(got);
    cw_batch_unref(batches[0]);
    cw_batch_unref(batches[1]);
}

START_TEST(test_render_matches_golden_text)
{
    check_golden(CW_FMT_TEXT, "render_text.prom");
}
END_TEST

/* cw_render_batches(): the batches' samples as one exposition, the same
 * bytes as cw_render() over their items; CW_RENDER_NO_EOF leaves out the
 * OpenMetrics "# EOF" and nothing else; CW_RENDER_GZIP is one gzip member of
 * those bytes; a batch with a sticky error gives that error. */
START_TEST(test_render_batches_flags)
{
    struct cw_batch *b[3] = {cw_batch_new("a=\"1\""), NULL, cw_batch_new("a=\"2\"")};
    struct cw_render_item items[2];
    struct cw_buf out, gz;
    char back[4096], *want;
    size_t back_len;

    ck_assert_ptr_nonnull(b[0]);
    ck_assert_ptr_nonnull(b[2]);
    cw_batch_add(b[2], &desc_bare_counter, NULL, 2, NULL, NULL);
    cw_batch_add(b[0], &desc_bare_counter, NULL, 1, NULL, NULL);
    cw_batch_items(b[0], items);
    cw_batch_items(b[2], items + 1);
    want = render(CW_FMT_OPENMETRICS, items, 2);
    ck_assert_uint_gt(strlen(want), 6);
    ck_assert_str_eq(want + strlen(want) - 6, "# EOF\n");

    cw_buf_init(&out, 1 << 20);
    ck_assert_int_eq(cw_render_batches(&out, CW_FMT_OPENMETRICS, 0, b, 3), CW_OK);
    ck_assert_str_eq(cw_buf_str(&out), want);
    cw_buf_clear(&out);
    ck_assert_int_eq(cw_render_batches(&out, CW_FMT_OPENMETRICS, CW_RENDER_NO_EOF, b, 3), CW_OK);
    ck_assert_uint_eq(out.len, strlen(want) - 6);
    ck_assert_int_eq(memcmp(out.data, want, out.len), 0);
    cw_buf_clear(&out);
    /* Text has no "# EOF" to leave out. */
    ck_assert_int_eq(cw_render_batches(&out, CW_FMT_TEXT, CW_RENDER_NO_EOF, b, 3), CW_OK);
    ck_assert_ptr_null(strstr(cw_buf_str(&out), "# EOF"));

    cw_buf_init(&gz, 1 << 20);
    ck_assert_int_eq(cw_render_batches(&gz, CW_FMT_OPENMETRICS, CW_RENDER_GZIP, b, 3), CW_OK);
    ck_assert_int_eq(gunzip(gz.data, gz.len, back, sizeof(back), &back_len), 0);
    ck_assert_uint_eq(back_len, strlen(want));
    ck_assert_int_eq(memcmp(back, want, back_len), 0);

    /* A sticky error: a family with labels added without their values. */
    cw_batch_add(b[2], &desc_temp, NULL, 3, NULL, NULL);
    ck_assert_int_ne(cw_batch_err(b[2]), CW_OK);
    cw_buf_clear(&out);
    ck_assert_int_eq(cw_render_batches(&out, CW_FMT_TEXT, 0, b, 3), cw_batch_err(b[2]));
    ck_assert_uint_eq(out.len, 0);

    free(want);
    cw_buf_reset(&out);
    cw_buf_reset(&gz);
    cw_batch_unref(b[0]);
    cw_batch_unref(b[2]);
}
END_TEST

START_TEST(test_render_matches_golden_openmetrics)
{
    check_golden(CW_FMT_OPENMETRICS, "render_openmetrics.prom");
}
END_TEST

static Suite *render_suite(void)
{
    Suite *s = suite_create("render");
    TCase *tc;

    tc = tcase_create("layout");
    tcase_add_test(tc, test_render_escapes_quote_in_label_value);
    tcase_add_test(tc, test_render_openmetrics_escapes_quote_in_help);
    tcase_add_test(tc, test_render_omits_braces_without_labels);
    tcase_add_test(tc, test_render_joins_prefix_and_labels_and_orders_the_whole_text);
    tcase_add_test(tc, test_render_empty_text_is_empty_and_openmetrics_is_eof);
    tcase_add_test(tc, test_render_text_keeps_total_in_counter_family);
    tcase_add_test(tc, test_render_openmetrics_strips_total_from_counter_family);
    tcase_add_test(tc, test_render_openmetrics_adds_total_to_bare_counter_samples);
    tcase_add_test(tc, test_render_histogram_inf_bucket_equals_count);
    tcase_add_test(tc, test_render_openmetrics_histogram_le_is_canonical);
    tcase_add_test(tc, test_render_formats_bounds_beyond_the_le_cache);
    tcase_add_test(tc, test_render_spells_special_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("order");
    tcase_add_test(tc, test_render_sorts_families_and_series);
    tcase_add_test(tc, test_render_keeps_first_duplicate_and_drops_the_rest);
    tcase_add_test(tc, test_render_large_shuffled_input_matches_sorted_unique_input);
    tcase_add_test(tc, test_render_sorts_many_families_by_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_render_reports_too_big_when_limit_is_hit);
    tcase_add_test(tc, test_render_rejects_histogram_item_without_counts);
    tcase_add_test(tc, test_render_histogram_with_other_bounds_in_family);
    suite_add_tcase(s, tc);

    tc = tcase_create("format_double");
    tcase_add_test(tc, test_format_double_spells_special_values);
    tcase_add_test(tc, test_format_double_prints_integers_without_exponent);
    tcase_add_test(tc, test_format_double_prints_shortest_decimals);
    tcase_add_test(tc, test_format_double_round_trips);
    tcase_set_timeout(tc, 60); /* valgrind */
    suite_add_tcase(s, tc);

    tc = tcase_create("negotiate");
    tcase_add_test(tc, test_render_negotiates_openmetrics_for_prometheus2);
    tcase_add_test(tc, test_render_negotiates_openmetrics_for_prometheus3);
    tcase_add_test(tc, test_render_negotiates_text_for_any_empty_or_garbage);
    tcase_add_test(tc, test_render_negotiates_openmetrics_when_listed_first_or_equal);
    tcase_add_test(tc, test_render_content_type_matches_format);
    tcase_add_test(tc, test_render_accepts_gzip_only_when_allowed);
    suite_add_tcase(s, tc);

    tc = tcase_create("gzip");
    tcase_add_test(tc, test_render_gzip_round_trips);
    tcase_add_test(tc, test_render_gzip_join_is_one_member);
    tcase_add_test(tc, test_render_gzip_reports_too_big_and_keeps_buffer);
    suite_add_tcase(s, tc);

    tc = tcase_create("golden");
    tcase_add_test(tc, test_render_batches_flags);
    tcase_add_test(tc, test_render_matches_golden_text);
    tcase_add_test(tc, test_render_matches_golden_openmetrics);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(render_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
