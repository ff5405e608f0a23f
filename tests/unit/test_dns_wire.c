/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_wire.c - the dns check's query builder and reply checks, on
 * replies captured from a real dnsmasq (the .bin files of tests/fixtures/dns, made by
 * tests/fixtures/dns/capture.py with message id 0x1234) and on damaged
 * copies of them.
 *
 * CW_FIXTURES (compile-time define, overridden by the environment variable
 * of the same name) is the fixtures directory.
 */
#include "collectors/dns_wire.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CW_FIXTURES
#define CW_FIXTURES "tests/fixtures"
#endif

#define QID 0x1234

struct blob {
    uint8_t data[4096];
    size_t len;
};

static struct blob fixture(const char *name)
{
    const char *env = getenv("CW_FIXTURES");
    char path[1024];
    struct blob b;
    FILE *f;

    snprintf(path, sizeof(path), "%s/dns/%s.bin", env != NULL && env[0] != '\0' ? env : CW_FIXTURES,
             name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    b.len = fread(b.data, 1, sizeof(b.data), f);
    fclose(f);
    ck_assert_uint_gt(b.len, 12);
    return b;
}

/* parse() parses a fixture for (name, qtype) and returns the status. */
static int parse(const char *fx, const char *name, uint16_t qtype, struct cw_dns_reply *r,
                 const char **why)
{
    struct blob b = fixture(fx);

    return cw_dns_reply_parse(b.data, b.len, QID, name, qtype, r, why);
}

START_TEST(test_dns_query_bytes)
{
    /* The same bytes capture.py sends: header, QNAME, QTYPE A, QCLASS IN, OPT. */
    static const uint8_t want[] = {0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x01, 3,    'o',  'n',  'e',  4,    't',  'e',  's',
                                   't',  0,    0x00, 0x01, 0x00, 0x01, 0,    0x00, 41,   0x04,
                                   0xd0, 0,    0,    0,    0,    0,    0};
    uint8_t q[CW_DNS_QUERY_MAX];
    size_t len = 0;

    ck_assert_int_eq(
        cw_dns_query_build(q, sizeof(q), &len, QID, "one.test", CW_DNS_TYPE_A, CW_DNS_EDNS_SIZE),
        CW_OK);
    ck_assert_uint_eq(len, sizeof(want));
    ck_assert_mem_eq(q, want, sizeof(want));
    /* A trailing dot is the same name; no OPT when edns_size is 0. */
    ck_assert_int_eq(cw_dns_query_build(q, sizeof(q), &len, QID, "one.test.", CW_DNS_TYPE_A, 0),
                     CW_OK);
    ck_assert_uint_eq(len, sizeof(want) - 11);
    ck_assert_mem_eq(q, want, 10);
    ck_assert_uint_eq(q[11], 0); /* ARCOUNT */
    ck_assert_mem_eq(q + 12, want + 12, len - 12);
}
END_TEST

START_TEST(test_dns_query_rejects_bad_names)
{
    char label64[80], long_name[300];
    uint8_t q[CW_DNS_QUERY_MAX];
    size_t len = 0, i;

    memset(label64, 'a', 64);
    label64[64] = '\0';
    for (i = 0; i + 2 < sizeof(long_name); i += 2) {
        long_name[i] = 'a';
        long_name[i + 1] = '.';
    }
    long_name[sizeof(long_name) - 2] = 'a';
    long_name[sizeof(long_name) - 1] = '\0';

    ck_assert(!cw_dns_name_is_valid(""));
    ck_assert(!cw_dns_name_is_valid("."));
    ck_assert(!cw_dns_name_is_valid("a..b"));
    ck_assert(!cw_dns_name_is_valid(label64));
    ck_assert(!cw_dns_name_is_valid(long_name));
    ck_assert(cw_dns_name_is_valid("invoice.example.com"));
    ck_assert(cw_dns_name_is_valid("_dmarc.example.com."));
    ck_assert_int_eq(cw_dns_query_build(q, sizeof(q), &len, 1, "a..b", CW_DNS_TYPE_A, 0),
                     CW_EPARSE);
    ck_assert_int_eq(cw_dns_query_build(q, 20, &len, 1, "invoice.example.com", CW_DNS_TYPE_A, 0),
                     CW_ETOOBIG);
}
END_TEST

START_TEST(test_dns_counts_real_answers)
{
    struct cw_dns_reply r;
    const char *why = NULL;

    ck_assert_int_eq(parse("a_one", "one.test", CW_DNS_TYPE_A, &r, &why), CW_OK);
    ck_assert_int_eq(r.rcode, 0);
    ck_assert_uint_eq(r.answers, 1);
    ck_assert(!r.truncated);

    ck_assert_int_eq(parse("a_multi", "multi.test", CW_DNS_TYPE_A, &r, &why), CW_OK);
    ck_assert_uint_eq(r.answers, 3);

    ck_assert_int_eq(parse("aaaa_one", "one.test", CW_DNS_TYPE_AAAA, &r, &why), CW_OK);
    ck_assert_uint_eq(r.answers, 1);

    /* The CNAME is in the answer section but is not an address. */
    ck_assert_int_eq(parse("a_cname", "alias.test", CW_DNS_TYPE_A, &r, &why), CW_OK);
    ck_assert_uint_eq(r.ancount, 4);
    ck_assert_uint_eq(r.answers, 3);

    /* Names compare case-insensitively, with or without the final dot. */
    ck_assert_int_eq(parse("a_one", "ONE.Test.", CW_DNS_TYPE_A, &r, &why), CW_OK);
    ck_assert_uint_eq(r.answers, 1);
}
END_TEST

START_TEST(test_dns_reports_rcodes)
{
    struct cw_dns_reply r;
    const char *why = NULL;
    char b[16];

    ck_assert_int_eq(parse("a_nxdomain", "missing.test", CW_DNS_TYPE_A, &r, &why), CW_OK);
    ck_assert_int_eq(r.rcode, 3);
    ck_assert_uint_eq(r.answers, 0);
    ck_assert_str_eq(cw_dns_rcode_name(r.rcode, b, sizeof(b)), "NXDOMAIN");

    ck_assert_int_eq(parse("aaaa_nodata", "multi.test", CW_DNS_TYPE_AAAA, &r, &why), CW_OK);
    ck_assert_int_eq(r.rcode, 0);
    ck_assert_uint_eq(r.answers, 0);

    ck_assert_str_eq(cw_dns_rcode_name(0, b, sizeof(b)), "NOERROR");
    ck_assert_str_eq(cw_dns_rcode_name(2, b, sizeof(b)), "SERVFAIL");
    ck_assert_str_eq(cw_dns_rcode_name(5, b, sizeof(b)), "REFUSED");
    ck_assert_str_eq(cw_dns_rcode_name(15, b, sizeof(b)), "RCODE15");
}
END_TEST

START_TEST(test_dns_ignores_replies_to_other_queries)
{
    struct cw_dns_reply r;
    struct blob b = fixture("a_one");
    const char *why = NULL;

    ck_assert_int_eq(
        cw_dns_reply_parse(b.data, b.len, QID + 1, "one.test", CW_DNS_TYPE_A, &r, &why), CW_EPARSE);
    ck_assert_str_eq(why, "message id does not match the query");

    ck_assert_int_eq(parse("a_one", "two.test", CW_DNS_TYPE_A, &r, &why), CW_EPARSE);
    ck_assert_str_eq(why, "question does not match the query");
    ck_assert_int_eq(parse("a_one", "one.test", CW_DNS_TYPE_AAAA, &r, &why), CW_EPARSE);
    ck_assert_str_eq(why, "question does not match the query");

    /* Our own query looped back is not a response. */
    b.data[2] &= 0x7f;
    ck_assert_int_eq(cw_dns_reply_parse(b.data, b.len, QID, "one.test", CW_DNS_TYPE_A, &r, &why),
                     CW_EPARSE);
    ck_assert_str_eq(why, "not a response to a standard query");
}
END_TEST

START_TEST(test_dns_rejects_every_truncation)
{
    const char *names[] = {"a_one", "a_multi", "aaaa_one", "a_cname", "a_nxdomain"};
    const char *qnames[] = {"one.test", "multi.test", "one.test", "alias.test", "missing.test"};
    const uint16_t types[] = {CW_DNS_TYPE_A, CW_DNS_TYPE_A, CW_DNS_TYPE_AAAA, CW_DNS_TYPE_A,
                              CW_DNS_TYPE_A};
    size_t i, n;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct blob b = fixture(names[i]);

        for (n = 0; n < b.len; n++) {
            struct cw_dns_reply r;
            const char *why = NULL;
            /* A copy of exactly n bytes, so ASan sees any read past it. */
            uint8_t *cut = malloc(n > 0 ? n : 1);

            ck_assert_ptr_nonnull(cut);
            memcpy(cut, b.data, n);
            ck_assert_int_eq(cw_dns_reply_parse(cut, n, QID, qnames[i], types[i], &r, &why),
                             CW_EPARSE);
            ck_assert_ptr_nonnull(why);
            free(cut);
        }
    }
}
END_TEST

START_TEST(test_dns_rejects_damaged_records)
{
    struct cw_dns_reply r;
    struct blob b = fixture("a_one");
    const char *why = NULL;
    size_t rdlen_at;

    /* a_one: header, question one.test (10+4 bytes), answer c00c 0001 0001
     * TTL(4) RDLEN(2) RDATA(4), OPT. RDLEN sits at 12+14+10. */
    rdlen_at = 12 + 14 + 10;
    ck_assert_uint_eq(b.data[rdlen_at], 0);
    ck_assert_uint_eq(b.data[rdlen_at + 1], 4);

    /* A compression pointer to itself in the answer's owner name. */
    {
        struct blob l = b;

        l.data[12 + 14] = 0xc0;
        l.data[12 + 14 + 1] = 12 + 14;
        ck_assert_int_eq(
            cw_dns_reply_parse(l.data, l.len, QID, "one.test", CW_DNS_TYPE_A, &r, &why), CW_EPARSE);
    }
    /* An A record of 5 bytes: the message still walks (the OPT record's
     * first byte becomes its data) but the record is not an address. */
    {
        struct blob l = b;

        l.data[rdlen_at + 1] = 5;
        ck_assert_int_eq(
            cw_dns_reply_parse(l.data, l.len, QID, "one.test", CW_DNS_TYPE_A, &r, &why), CW_EPARSE);
    }
    /* An answer count larger than the records present. */
    {
        struct blob l = b;

        l.data[7] = 9;
        ck_assert_int_eq(
            cw_dns_reply_parse(l.data, l.len, QID, "one.test", CW_DNS_TYPE_A, &r, &why), CW_EPARSE);
        ck_assert_str_eq(why, "malformed DNS message");
    }
    /* Two questions. */
    {
        struct blob l = b;

        l.data[5] = 2;
        ck_assert_int_eq(
            cw_dns_reply_parse(l.data, l.len, QID, "one.test", CW_DNS_TYPE_A, &r, &why), CW_EPARSE);
    }
}
END_TEST

START_TEST(test_dns_accepts_error_reply_without_question)
{
    /* SERVFAIL, no records at all. */
    static const uint8_t m[] = {0x12, 0x34, 0x81, 0x82, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t ok[] = {0x12, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0};
    struct cw_dns_reply r;
    const char *why = NULL;

    ck_assert_int_eq(cw_dns_reply_parse(m, sizeof(m), QID, "one.test", CW_DNS_TYPE_A, &r, &why),
                     CW_OK);
    ck_assert_int_eq(r.rcode, 2);
    /* NOERROR without the question proves nothing about our query. */
    ck_assert_int_eq(cw_dns_reply_parse(ok, sizeof(ok), QID, "one.test", CW_DNS_TYPE_A, &r, &why),
                     CW_EPARSE);
}
END_TEST

static Suite *dns_wire_suite(void)
{
    Suite *s = suite_create("dns_wire");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_dns_query_bytes);
    tcase_add_test(tc, test_dns_query_rejects_bad_names);
    tcase_add_test(tc, test_dns_counts_real_answers);
    tcase_add_test(tc, test_dns_reports_rcodes);
    tcase_add_test(tc, test_dns_ignores_replies_to_other_queries);
    tcase_add_test(tc, test_dns_rejects_every_truncation);
    tcase_add_test(tc, test_dns_rejects_damaged_records);
    tcase_add_test(tc, test_dns_accepts_error_reply_without_question);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dns_wire_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
