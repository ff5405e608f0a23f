/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_num.c - cw_parse_u64(), the one decimal parser: every accepted form
 * and every refusal (empty, not a digit, trailing text, overflow).
 */
#include "exporter/core/num.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_parse_u64_accepts_decimal)
{
    static const struct {
        const char *text;
        uint64_t value;
    } ok[] = {
        {"0", 0},
        {"7", 7},
        {"0042", 42},
        {"65535", 65535},
        {"4294967296", 4294967296u},
        {"18446744073709551615", UINT64_MAX},
        {"000000000000000000000018446744073709551615", UINT64_MAX},
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;

        ck_assert_msg(cw_parse_u64(ok[i].text, strlen(ok[i].text), &v) == CW_OK, "%s", ok[i].text);
        ck_assert_msg(v == ok[i].value, "%s", ok[i].text);
    }
}
END_TEST

START_TEST(test_parse_u64_refuses_what_is_not_a_number)
{
    static const char *const bad[] = {
        "", " 1", "1 ", "+1", "-1", "0x10", "1e3", "12a", "1.5", "１",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 99;

        ck_assert_msg(cw_parse_u64(bad[i], strlen(bad[i]), &v) == CW_EPARSE, "'%s'", bad[i]);
        ck_assert_msg(v == 99, "'%s' changed the output", bad[i]);
    }
}
END_TEST

START_TEST(test_parse_u64_refuses_overflow)
{
    uint64_t v = 99;

    ck_assert_int_eq(cw_parse_u64("18446744073709551616", 20, &v), CW_ETOOBIG);
    ck_assert_int_eq(cw_parse_u64("99999999999999999999", 20, &v), CW_ETOOBIG);
    ck_assert_int_eq(cw_parse_u64("184467440737095516150", 21, &v), CW_ETOOBIG);
    ck_assert(v == 99);
    /* garbage after the overflow is still garbage */
    ck_assert_int_eq(cw_parse_u64("99999999999999999999x", 21, &v), CW_EPARSE);
    ck_assert(v == 99);
}
END_TEST

/* Exactly 'len' bytes: what follows is not looked at, a NUL inside is not a digit. */
START_TEST(test_parse_u64_reads_exactly_len_bytes)
{
    uint64_t v = 0;

    ck_assert_int_eq(cw_parse_u64("12x", 2, &v), CW_OK);
    ck_assert(v == 12);
    ck_assert_int_eq(cw_parse_u64("12345", 0, &v), CW_EPARSE);
    ck_assert_int_eq(cw_parse_u64("1\0"
                                  "2",
                                  3, &v),
                     CW_EPARSE);
    ck_assert(v == 12);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("num");
    TCase *t = tcase_create("parse_u64");
    SRunner *sr;
    int failed;

    tcase_add_test(t, test_parse_u64_accepts_decimal);
    tcase_add_test(t, test_parse_u64_refuses_what_is_not_a_number);
    tcase_add_test(t, test_parse_u64_refuses_overflow);
    tcase_add_test(t, test_parse_u64_reads_exactly_len_bytes);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
