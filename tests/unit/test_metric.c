/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metric.c - Check suite "metric": batches (label text joining and
 * escaping, histogram counts, sticky errors, reference counting) and
 * cw_label_escape(). Single-threaded.
 */
#include "exporter/core/metric.h"
#include "exporter/core/metric_impl.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct cw_desc desc_up = {
    .name = "connwatch_test_up",
    .help = "Test gauge without labels.",
    .type = CW_GAUGE,
};

static const struct cw_desc desc_state = {
    .name = "connwatch_test_connections",
    .help = "Test gauge with two labels.",
    .type = CW_GAUGE,
    .labels = {"state", "family"},
    .nlabels = 2,
};

static const double test_bounds[] = {0.1, 1};

static const struct cw_desc desc_hist = {
    .name = "connwatch_test_duration_seconds",
    .help = "Test histogram.",
    .type = CW_HISTOGRAM,
    .labels = {"phase"},
    .nlabels = 1,
    .buckets = test_bounds,
    .nbuckets = 2,
};

/* item_text() returns the whole label text of a render item (prefix, ","
 * when both parts are there, own labels) as a string, in a static buffer
 * (each test runs in one thread). */
static const char *item_text(const struct cw_render_item *it)
{
    static char text[1024];

    ck_assert_uint_lt(it->prefix_len + it->labels_len + 1, sizeof(text));
    if (it->prefix_len == 0)
        ck_assert_ptr_null(it->prefix);
    if (it->labels_len == 0)
        ck_assert_ptr_null(it->labels);
    snprintf(text, sizeof(text), "%.*s%s%.*s", (int)it->prefix_len,
             it->prefix != NULL ? it->prefix : "",
             it->prefix_len > 0 && it->labels_len > 0 ? "," : "", (int)it->labels_len,
             it->labels != NULL ? it->labels : "");
    return text;
}

/* labels_of() returns the label text of sample i of 'b' (item_text()). */
static const char *labels_of(const struct cw_batch *b, size_t i)
{
    struct cw_render_item items[64];

    ck_assert_uint_le(cw_batch_len(b), CW_ARRAY_LEN(items));
    cw_batch_items(b, items);
    return item_text(&items[i]);
}

START_TEST(test_metric_joins_prefix_labels_and_extra)
{
    struct cw_batch *b = cw_batch_new("service=\"web\",target=\"db1:3306\"");
    const char *vals[] = {"listen", "inet6"};

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_state, "reason=\"refused\"", 3, vals, NULL);
    cw_batch_add(b, &desc_state, NULL, 4, vals, NULL);
    cw_batch_add(b, &desc_up, NULL, 1, NULL, NULL);
    cw_batch_add(b, &desc_up, "reason=\"dns\"", 0, NULL, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    ck_assert_uint_eq(cw_batch_len(b), 4);
    ck_assert_str_eq(labels_of(b, 0),
                     "service=\"web\",target=\"db1:3306\",state=\"listen\",family=\"inet6\","
                     "reason=\"refused\"");
    ck_assert_str_eq(labels_of(b, 1),
                     "service=\"web\",target=\"db1:3306\",state=\"listen\",family=\"inet6\"");
    ck_assert_str_eq(labels_of(b, 2), "service=\"web\",target=\"db1:3306\"");
    ck_assert_str_eq(labels_of(b, 3), "service=\"web\",target=\"db1:3306\",reason=\"dns\"");
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_joins_without_prefix)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *vals[] = {"listen", "inet"};

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_up, NULL, 1, NULL, NULL);
    cw_batch_add(b, &desc_up, "", 1, NULL, NULL);
    cw_batch_add(b, &desc_state, NULL, 2, vals, NULL);
    cw_batch_add(b, &desc_up, "reason=\"dns\"", 0, NULL, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    ck_assert_str_eq(labels_of(b, 0), "");
    ck_assert_str_eq(labels_of(b, 1), "");
    ck_assert_str_eq(labels_of(b, 2), "state=\"listen\",family=\"inet\"");
    ck_assert_str_eq(labels_of(b, 3), "reason=\"dns\"");
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_empty_prefix_is_no_prefix)
{
    struct cw_batch *b = cw_batch_new("");
    const char *vals[] = {"a", "b"};

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_state, NULL, 2, vals, NULL);
    ck_assert_str_eq(labels_of(b, 0), "state=\"a\",family=\"b\"");
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_escapes_backslash_quote_and_newline_in_values)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *vals[] = {"C:\\dir \"x\"\nnext", "\\\\"};

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_state, NULL, 1, vals, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    ck_assert_str_eq(labels_of(b, 0), "state=\"C:\\\\dir \\\"x\\\"\\nnext\",family=\"\\\\\\\\\"");
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_keeps_value_and_histogram_counts)
{
    struct cw_batch *b = cw_batch_new("service=\"s\"");
    const char *fast[] = {"connect"};
    const char *slow[] = {"tls"};
    const uint64_t h1[] = {1, 2, 3};
    const uint64_t h2[] = {0, 5, 9};
    struct cw_render_item items[3];

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_hist, NULL, 0.25, fast, h1);
    cw_batch_add(b, &desc_up, NULL, 42.5, NULL, NULL);
    cw_batch_add(b, &desc_hist, NULL, 12.5, slow, h2);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    ck_assert_uint_eq(b->nhist, 6);
    cw_batch_items(b, items);
    ck_assert_ptr_eq(items[0].desc, &desc_hist);
    ck_assert_double_eq(items[0].value, 0.25);
    ck_assert_mem_eq(items[0].hist, h1, sizeof(h1));
    ck_assert_ptr_null(items[1].hist);
    ck_assert_double_eq(items[1].value, 42.5);
    ck_assert_ptr_eq(items[2].desc, &desc_hist);
    ck_assert_double_eq(items[2].value, 12.5);
    ck_assert_mem_eq(items[2].hist, h2, sizeof(h2));
    ck_assert_str_eq(item_text(&items[2]), "service=\"s\",phase=\"tls\"");
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_grows_past_initial_capacity)
{
    struct cw_batch *b = cw_batch_new("target=\"t\"");
    struct cw_render_item *items;
    const uint64_t h[] = {1, 2, 3};
    const char *vals[] = {"x"};
    const size_t n = 5000;

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 0)
            cw_batch_add(b, &desc_up, NULL, (double)i, NULL, NULL);
        else
            cw_batch_add(b, &desc_hist, NULL, (double)i, vals, h);
    }
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    ck_assert_uint_eq(cw_batch_len(b), n);
    items = calloc(n, sizeof(*items));
    ck_assert_ptr_nonnull(items);
    cw_batch_items(b, items);
    for (size_t i = 0; i < n; i++) {
        ck_assert_double_eq(items[i].value, (double)i);
        if (i % 2 == 1)
            ck_assert_mem_eq(items[i].hist, h, sizeof(h));
    }
    ck_assert_str_eq(item_text(&items[n - 1]), "target=\"t\",phase=\"x\"");
    free(items);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_seal_gives_back_growth_room_and_keeps_samples)
{
    /* 17 samples grow the arrays to 32 and the text to 1 KiB; sealed, a
     * published batch keeps what it holds and nothing more. */
    struct cw_batch *b = cw_batch_new("target=\"t\"");
    struct cw_batch *empty = cw_batch_new(NULL);
    const uint64_t h[] = {1, 2, 3};
    const char *vals[] = {"x"};
    struct cw_render_item items[17];
    size_t i;

    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(empty);
    for (i = 0; i < 17; i++)
        cw_batch_add(b, &desc_hist, NULL, (double)i, vals, h);
    ck_assert_uint_gt(b->cap, 17);
    ck_assert_uint_gt(b->caphist, 17 * 3);
    ck_assert_uint_gt(b->text.cap, b->text.len + 1);
    cw_batch_seal(b);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    ck_assert_uint_eq(b->cap, 17);
    ck_assert_uint_eq(b->caphist, 17 * 3);
    ck_assert_uint_eq(b->text.cap, b->text.len + 1);
    cw_batch_items(b, items);
    for (i = 0; i < 17; i++) {
        ck_assert_double_eq(items[i].value, (double)i);
        ck_assert_mem_eq(items[i].hist, h, sizeof(h));
        ck_assert_str_eq(item_text(&items[i]), "target=\"t\",phase=\"x\"");
    }
    /* Still a batch: one more sample grows it again. */
    cw_batch_add(b, &desc_up, NULL, 1, NULL, NULL);
    ck_assert_uint_eq(cw_batch_len(b), 18);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    cw_batch_seal(empty);
    ck_assert_uint_eq(cw_batch_len(empty), 0);
    cw_batch_unref(empty);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_keeps_each_prefix_once)
{
    /* 1,000 samples under a 60-byte prefix: the text holds the prefix once
     * and each sample's own labels; switching back to a prefix the batch
     * holds reuses it. */
    const char *p1 = "check=\"http\",service=\"billing\",target=\"https://e.example/x\"";
    const char *p2 = "check=\"http\",service=\"billing\"";
    const char *vals[2] = {"listen", "inet"};
    struct cw_batch *b = cw_batch_new(p1);
    struct cw_render_item *items;
    size_t i, own = strlen("state=\"listen\",family=\"inet\"");

    ck_assert_ptr_nonnull(b);
    for (i = 0; i < 1000; i++)
        cw_batch_add(b, &desc_state, NULL, (double)i, vals, NULL);
    cw_batch_set_prefix(b, p2);
    cw_batch_add(b, &desc_up, NULL, 1, NULL, NULL);
    cw_batch_set_prefix(b, p1);
    cw_batch_add(b, &desc_up, NULL, 2, NULL, NULL);
    cw_batch_set_prefix(b, NULL);
    cw_batch_add(b, &desc_up, NULL, 3, NULL, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    ck_assert_uint_eq(b->nprefix, 2);
    ck_assert_uint_eq(b->text.len, strlen(p1) + strlen(p2) + 1000 * own);
    items = calloc(1003, sizeof(*items));
    ck_assert_ptr_nonnull(items);
    cw_batch_items(b, items);
    ck_assert_ptr_eq(items[0].prefix, items[999].prefix);
    ck_assert_str_eq(item_text(&items[999]),
                     "check=\"http\",service=\"billing\",target=\"https://e.example/x\","
                     "state=\"listen\",family=\"inet\"");
    ck_assert_str_eq(item_text(&items[1000]), p2);
    ck_assert_str_eq(item_text(&items[1001]), p1);
    ck_assert_ptr_eq(items[1001].prefix, items[0].prefix);
    ck_assert_str_eq(item_text(&items[1002]), "");
    free(items);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_fails_past_the_prefix_limit)
{
    struct cw_batch *b = cw_batch_new(NULL);
    char p[32];
    int i;

    ck_assert_ptr_nonnull(b);
    for (i = 0; i < CW_BATCH_MAX_PREFIXES; i++) {
        snprintf(p, sizeof(p), "n=\"%d\"", i);
        cw_batch_set_prefix(b, p);
        cw_batch_add(b, &desc_up, NULL, i, NULL, NULL);
    }
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    cw_batch_set_prefix(b, "n=\"one too many\"");
    ck_assert_int_eq(cw_batch_err(b), CW_ETOOBIG);
    cw_batch_add(b, &desc_up, NULL, 9, NULL, NULL);
    ck_assert_uint_eq(cw_batch_len(b), CW_BATCH_MAX_PREFIXES);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_error_is_sticky_when_text_limit_is_hit)
{
    struct cw_batch *b = cw_batch_new("service=\"s\"");
    const char *vals[] = {"a-rather-long-label-value", "b"};

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(cw_buf_setlimit(&b->text, 40),
                     CW_OK); /* a test-only shortcut to the real 64 MiB bound */
    cw_batch_add(b, &desc_up, NULL, 1, NULL, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_OK);
    cw_batch_add(b, &desc_state, NULL, 2, vals, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_ETOOBIG);
    ck_assert_uint_eq(cw_batch_len(b), 1);
    /* A later add that would fit does nothing: the first error is kept. */
    cw_batch_add(b, &desc_up, NULL, 3, NULL, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_ETOOBIG);
    ck_assert_uint_eq(cw_batch_len(b), 1);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_rejects_missing_label_values)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *vals[] = {"a", NULL};

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_state, NULL, 1, vals, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_EINVAL);
    ck_assert_uint_eq(cw_batch_len(b), 0);
    cw_batch_unref(b);

    b = cw_batch_new(NULL);
    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_state, NULL, 1, NULL, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_EINVAL);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_rejects_histogram_without_counts)
{
    struct cw_batch *b = cw_batch_new(NULL);
    const char *vals[] = {"connect"};

    ck_assert_ptr_nonnull(b);
    cw_batch_add(b, &desc_hist, NULL, 1, vals, NULL);
    ck_assert_int_eq(cw_batch_err(b), CW_EINVAL);
    ck_assert_uint_eq(cw_batch_len(b), 0);
    cw_batch_unref(b);
}
END_TEST

START_TEST(test_metric_refcount_frees_on_last_unref)
{
    struct cw_batch *b = cw_batch_new(NULL);

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(atomic_load(&b->refs), 1);
    ck_assert_ptr_eq(cw_batch_ref(b), b);
    ck_assert_ptr_eq(cw_batch_ref(b), b);
    ck_assert_int_eq(atomic_load(&b->refs), 3);
    cw_batch_add(b, &desc_up, "a=\"b\"", 1, NULL, NULL);
    cw_batch_unref(b);
    cw_batch_unref(b);
    ck_assert_int_eq(atomic_load(&b->refs), 1);
    ck_assert_uint_eq(cw_batch_len(b), 1);
    cw_batch_unref(b); /* frees; ASan and valgrind check there is no leak */
}
END_TEST

START_TEST(test_metric_ref_and_unref_accept_null)
{
    ck_assert_ptr_null(cw_batch_ref(NULL));
    cw_batch_unref(NULL);
}
END_TEST

START_TEST(test_label_escape_appends_escaped_value)
{
    struct cw_buf out;

    cw_buf_init(&out, 1024);
    ck_assert_int_eq(cw_buf_adds(&out, "v=\""), CW_OK);
    ck_assert_int_eq(cw_label_escape(&out, "plain"), CW_OK);
    ck_assert_int_eq(cw_label_escape(&out, ""), CW_OK);
    ck_assert_int_eq(cw_label_escape(&out, "\"q\"\\\n"), CW_OK);
    ck_assert_int_eq(cw_label_escape(&out, "tab\tand utf-8 \xc3\xa9 stay raw"), CW_OK);
    ck_assert_str_eq(cw_buf_str(&out), "v=\"plain\\\"q\\\"\\\\\\ntab\tand utf-8 \xc3\xa9 stay raw");
    cw_buf_reset(&out);
}
END_TEST

START_TEST(test_label_escape_reports_too_big)
{
    struct cw_buf out;

    cw_buf_init(&out, 4);
    ck_assert_int_eq(cw_label_escape(&out, "ab\"c"), CW_ETOOBIG);
    ck_assert_uint_le(out.len, 4);
    cw_buf_reset(&out);
}
END_TEST

static Suite *metric_suite(void)
{
    Suite *s = suite_create("metric");
    TCase *tc;

    tc = tcase_create("batch_labels");
    tcase_add_test(tc, test_metric_joins_prefix_labels_and_extra);
    tcase_add_test(tc, test_metric_seal_gives_back_growth_room_and_keeps_samples);
    tcase_add_test(tc, test_metric_keeps_each_prefix_once);
    tcase_add_test(tc, test_metric_fails_past_the_prefix_limit);
    tcase_add_test(tc, test_metric_joins_without_prefix);
    tcase_add_test(tc, test_metric_empty_prefix_is_no_prefix);
    tcase_add_test(tc, test_metric_escapes_backslash_quote_and_newline_in_values);
    suite_add_tcase(s, tc);

    tc = tcase_create("batch_samples");
    tcase_add_test(tc, test_metric_keeps_value_and_histogram_counts);
    tcase_add_test(tc, test_metric_grows_past_initial_capacity);
    suite_add_tcase(s, tc);

    tc = tcase_create("batch_errors");
    tcase_add_test(tc, test_metric_error_is_sticky_when_text_limit_is_hit);
    tcase_add_test(tc, test_metric_rejects_missing_label_values);
    tcase_add_test(tc, test_metric_rejects_histogram_without_counts);
    suite_add_tcase(s, tc);

    tc = tcase_create("batch_refs");
    tcase_add_test(tc, test_metric_refcount_frees_on_last_unref);
    tcase_add_test(tc, test_metric_ref_and_unref_accept_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("label_escape");
    tcase_add_test(tc, test_label_escape_appends_escaped_value);
    tcase_add_test(tc, test_label_escape_reports_too_big);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metric_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
