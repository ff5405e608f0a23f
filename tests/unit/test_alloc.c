/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_alloc.c - allocation failure walk (curl's torture idea): the
 * allocator functions of connwatch's own objects are wrapped at link time
 * (-Wl,--wrap=malloc,...) so that the Nth allocation fails; N walks through
 * every allocation of loading a configuration, and of filling and rendering
 * a batch. Each step must fail cleanly (an error, never a crash), and leave
 * nothing allocated: ASan and valgrind runs of this test check the leaks.
 * Libraries' own allocations (libyaml, zlib) are not wrapped.
 */
#include "exporter/check.h"
#include "exporter/core/buf.h"
#include "exporter/core/metric.h"
#include "exporter/core/render.h"
#include "exporter/kinds.h"
#include "exporter/settings.h"

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

/* Allocations left before one fails; negative: never fail. Test-only. */
static long alloc_countdown = -1;
static bool alloc_failed;

static bool alloc_should_fail(void)
{
    if (alloc_countdown < 0)
        return false;
    if (alloc_countdown-- == 0) {
        alloc_failed = true;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    return alloc_should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return alloc_should_fail() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return alloc_should_fail() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return alloc_should_fail() ? NULL : __real_strndup(s, n);
}

extern const struct cw_check_kind cw_kind_host;
const struct cw_check_kind *const cw_check_kinds[] = {&cw_kind_host, NULL};

static const char config_text[] = "global: {interval: 10s, timeout: 2s}\n"
                                  "host: {enabled: true, interval: 5s, connection_states: proc}\n"
                                  "services:\n"
                                  "  - name: &n inv\n"
                                  "    labels: {env: prod, team: \"a\\\"b\"}\n"
                                  "    checks: []\n"
                                  "  - name: other\n"
                                  "    checks: []\n";

START_TEST(test_alloc_config_load_fails_cleanly_at_every_allocation)
{
    long n;
    int failures = 0;

    for (n = 0;; n++) {
        struct cw_diag d;
        struct cw_settings *s;

        cw_diag_init(&d);
        alloc_failed = false;
        alloc_countdown = n;
        s = cw_settings_load_text("t.yml", config_text, &d);
        alloc_countdown = -1;
        if (!alloc_failed) {
            /* Every allocation succeeded: the walk is complete. */
            ck_assert_ptr_nonnull(s);
            cw_settings_unref(s);
            cw_diag_reset(&d);
            break;
        }
        /* A failed allocation may still end in a valid configuration (a
         * diagnostic that could not be recorded, say) but never in a crash. */
        if (s == NULL)
            failures++;
        cw_settings_unref(s);
        cw_diag_reset(&d);
    }
    ck_assert_int_gt(n, 20); /* the walk really went through the loader */
    ck_assert_int_gt(failures, 0);
}
END_TEST

static const struct cw_desc desc_g = {
    .name = "test_gauge",
    .help = "A gauge.",
    .type = CW_GAUGE,
    .labels = {"state"},
    .nlabels = 1,
};
static const double buckets[] = {0.1, 1};
static const struct cw_desc desc_h = {
    .name = "test_seconds",
    .help = "A histogram.",
    .type = CW_HISTOGRAM,
    .buckets = buckets,
    .nbuckets = 2,
};

START_TEST(test_alloc_batch_and_render_fail_cleanly_at_every_allocation)
{
    long n;

    for (n = 0;; n++) {
        struct cw_batch *b;
        struct cw_buf gz;
        const char *lv1[] = {"open \"x\""};
        const char *lv2[] = {"closed"};
        const uint64_t h[] = {1, 2, 3};
        int rc = CW_OK;

        alloc_failed = false;
        alloc_countdown = n;
        b = cw_batch_new("service=\"a\"");
        if (b != NULL) {
            cw_batch_add(b, &desc_g, NULL, 1, lv1, NULL);
            cw_batch_add(b, &desc_g, NULL, 2, lv2, NULL);
            cw_batch_add(b, &desc_h, NULL, 0.5, NULL, h);
            if (cw_batch_err(b) == CW_OK) {
                cw_buf_init(&gz, 1 << 20);
                rc = cw_render_batches(&gz, CW_FMT_OPENMETRICS, CW_RENDER_GZIP, &b, 1);
                cw_buf_reset(&gz);
            }
        }
        alloc_countdown = -1;
        if (!alloc_failed) {
            ck_assert_ptr_nonnull(b);
            ck_assert_int_eq(cw_batch_err(b), CW_OK);
            ck_assert_int_eq(rc, CW_OK);
            cw_batch_unref(b);
            break;
        }
        ck_assert(b == NULL || cw_batch_err(b) != CW_OK || rc != CW_OK);
        cw_batch_unref(b);
    }
    ck_assert_int_gt(n, 3);
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("walk");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_alloc_config_load_fails_cleanly_at_every_allocation);
    tcase_add_test(tc, test_alloc_batch_and_render_fail_cleanly_at_every_allocation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(alloc_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
