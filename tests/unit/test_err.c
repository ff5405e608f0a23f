/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_err.c - exporter/core/err.c: the one errno -> reason table, row by
 * row. The expected rows are written out here independently of the table,
 * and the table must hold exactly these rows: a row added, dropped or
 * changed without this test fails it. Also the reason labels and
 * cw_strerror().
 */
#include "exporter/core/err.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

static const struct cw_errno_reason expected[] = {
    {ECONNREFUSED, CW_REASON_REFUSED},     {ECONNRESET, CW_REASON_REFUSED},
    {ETIMEDOUT, CW_REASON_TIMEOUT},        {EINPROGRESS, CW_REASON_TIMEOUT},
    {EHOSTUNREACH, CW_REASON_UNREACHABLE}, {ENETUNREACH, CW_REASON_UNREACHABLE},
    {ENETDOWN, CW_REASON_UNREACHABLE},     {EHOSTDOWN, CW_REASON_UNREACHABLE},
    {ENONET, CW_REASON_UNREACHABLE},       {EADDRNOTAVAIL, CW_REASON_UNREACHABLE},
    {EPERM, CW_REASON_UNREACHABLE},        {EACCES, CW_REASON_UNREACHABLE},
};

/* One test per row (a loop test over _i). */
START_TEST(test_row)
{
    const struct cw_errno_reason *e = &expected[_i];
    unsigned found = 0;

    ck_assert_msg(cw_reason_from_errno(e->err) == e->reason, "errno %d (%s): %s, want %s", e->err,
                  strerrorname_np(e->err), cw_reason_label(cw_reason_from_errno(e->err)),
                  cw_reason_label(e->reason));
    for (unsigned i = 0; i < cw_errno_reasons_len; i++)
        if (cw_errno_reasons[i].err == e->err) {
            found++;
            ck_assert_int_eq(cw_errno_reasons[i].reason, e->reason);
        }
    ck_assert_msg(found == 1, "errno %d is in the table %u times", e->err, found);
}
END_TEST

START_TEST(test_table_has_exactly_the_rows)
{
    ck_assert_uint_eq(cw_errno_reasons_len, sizeof(expected) / sizeof(expected[0]));
    for (unsigned i = 0; i < cw_errno_reasons_len; i++) {
        bool listed = false;

        for (size_t j = 0; j < sizeof(expected) / sizeof(expected[0]); j++)
            listed |= expected[j].err == cw_errno_reasons[i].err;
        ck_assert_msg(listed, "table row errno %d is not tested", cw_errno_reasons[i].err);
        ck_assert_int_ne(cw_errno_reasons[i].reason, CW_REASON_NONE);
        ck_assert_int_ne(cw_errno_reasons[i].reason, CW_REASON_INTERNAL);
    }
}
END_TEST

START_TEST(test_unlisted_errnos_are_internal)
{
    static const int others[] = {0,     EMFILE, ENFILE, ENOBUFS, ENOMEM, EAGAIN,
                                 EBADF, EINVAL, EPIPE,  ENOENT,  -1,     100000};

    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        ck_assert_msg(cw_reason_from_errno(others[i]) == CW_REASON_INTERNAL, "errno %d: %s",
                      others[i], cw_reason_label(cw_reason_from_errno(others[i])));
}
END_TEST

START_TEST(test_labels)
{
    ck_assert_str_eq(cw_reason_label(CW_REASON_NONE), "");
    ck_assert_str_eq(cw_reason_label(CW_REASON_REFUSED), "refused");
    ck_assert_str_eq(cw_reason_label(CW_REASON_UNREACHABLE), "unreachable");
    ck_assert_str_eq(cw_reason_label(CW_REASON_TIMEOUT), "timeout");
    ck_assert_str_eq(cw_reason_label(CW_REASON_COUNT), "internal");
    ck_assert_str_eq(cw_reason_label((enum cw_reason) - 1), "internal");
    for (int r = 1; r < CW_REASON_COUNT; r++)
        ck_assert_str_ne(cw_reason_label((enum cw_reason)r), "");
    ck_assert_str_eq(cw_strerror(CW_ETIMEDOUT), "deadline passed");
    ck_assert_str_eq(cw_strerror(CW_ERR_COUNT), "unknown error");
}
END_TEST

static Suite *err_suite(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");

    tcase_add_loop_test(tc, test_row, 0, (int)(sizeof(expected) / sizeof(expected[0])));
    tcase_add_test(tc, test_table_has_exactly_the_rows);
    tcase_add_test(tc, test_unlisted_errnos_are_internal);
    tcase_add_test(tc, test_labels);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(err_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
