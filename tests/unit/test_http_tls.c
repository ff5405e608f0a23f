/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http_tls.c - Check suite "http_tls": the pure helpers of the http,
 * tls and tls_file checks. Reason mapping of libcurl results and of OpenSSL
 * verification codes, HTTP-date parsing (three forms, malformed inputs,
 * unterminated buffers), the clock-skew estimate, and PEM bundle walking on
 * fixtures in tests/fixtures/tls/ (made with openssl; their dates are below).
 *
 * Fixtures are loaded into buffers of their exact size without a NUL.
 * Single-threaded; Check forks each test.
 */
#include "collectors/http_util.h"
#include "collectors/tlsinspect.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CW_FIXTURES
#define CW_FIXTURES "tests/fixtures"
#endif

/* Dates of the fixture certificates (openssl x509 -enddate/-startdate). */
#define LEAF_NOT_AFTER  1803414876 /* Feb 23 20:34:36 2027 GMT */
#define LEAF_NOT_BEFORE 1795638876 /* Nov 25 20:34:36 2026 GMT */
#define CA_NOT_AFTER    2110998876 /* Nov 22 20:34:36 2036 GMT */

static char *load(const char *name, size_t *len)
{
    const char *dir = getenv("CW_FIXTURES") != NULL ? getenv("CW_FIXTURES") : CW_FIXTURES;
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/tls/%s", dir, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

START_TEST(test_reason_from_curl)
{
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_OK, 0, 0), CW_REASON_NONE);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_COULDNT_RESOLVE_HOST, 0, 0), CW_REASON_DNS);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_COULDNT_CONNECT, 0, ECONNREFUSED),
                     CW_REASON_REFUSED);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_COULDNT_CONNECT, 0, EHOSTUNREACH),
                     CW_REASON_UNREACHABLE);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_COULDNT_CONNECT, 0, ENETUNREACH),
                     CW_REASON_UNREACHABLE);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_OPERATION_TIMEDOUT, 0, 0), CW_REASON_TIMEOUT);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_SSL_CONNECT_ERROR, 0, 0),
                     CW_REASON_TLS_HANDSHAKE);
    ck_assert_int_eq(
        cw_http_reason_from_curl(CURLE_PEER_FAILED_VERIFICATION, X509_V_ERR_CERT_HAS_EXPIRED, 0),
        CW_REASON_CERT_EXPIRED);
    ck_assert_int_eq(
        cw_http_reason_from_curl(CURLE_PEER_FAILED_VERIFICATION, X509_V_ERR_CERT_NOT_YET_VALID, 0),
        CW_REASON_CERT_NOT_YET_VALID);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_PEER_FAILED_VERIFICATION,
                                              X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0),
                     CW_REASON_CERT_UNTRUSTED);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_PEER_FAILED_VERIFICATION, 0, 0),
                     CW_REASON_CERT_HOSTNAME);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_LOGIN_DENIED, 0, 0), CW_REASON_AUTH);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_TOO_MANY_REDIRECTS, 0, 0), CW_REASON_PROTOCOL);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_GOT_NOTHING, 0, 0), CW_REASON_PROTOCOL);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_RECV_ERROR, 0, ECONNRESET), CW_REASON_PROTOCOL);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_OUT_OF_MEMORY, 0, 0), CW_REASON_INTERNAL);
    ck_assert_int_eq(cw_http_reason_from_curl(CURLE_SSL_CACERT_BADFILE, 0, 0), CW_REASON_INTERNAL);
}
END_TEST

START_TEST(test_verify_reason)
{
    ck_assert_int_eq(cw_tls_verify_reason(X509_V_OK), CW_REASON_NONE);
    ck_assert_int_eq(cw_tls_verify_reason(X509_V_ERR_CERT_HAS_EXPIRED), CW_REASON_CERT_EXPIRED);
    ck_assert_int_eq(cw_tls_verify_reason(X509_V_ERR_CERT_NOT_YET_VALID),
                     CW_REASON_CERT_NOT_YET_VALID);
    ck_assert_int_eq(cw_tls_verify_reason(X509_V_ERR_HOSTNAME_MISMATCH), CW_REASON_CERT_HOSTNAME);
    ck_assert_int_eq(cw_tls_verify_reason(X509_V_ERR_IP_ADDRESS_MISMATCH), CW_REASON_CERT_HOSTNAME);
    ck_assert_int_eq(cw_tls_verify_reason(X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN),
                     CW_REASON_CERT_UNTRUSTED);
    ck_assert_int_eq(cw_tls_verify_reason(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
                     CW_REASON_CERT_UNTRUSTED);
}
END_TEST

START_TEST(test_facts_reason)
{
    struct cw_tls_facts f;
    const char *why;

    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(cw_tls_facts_reason(&f, &why), CW_REASON_TLS_HANDSHAKE);
    f.have = true;
    ck_assert_int_eq(cw_tls_facts_reason(&f, &why), CW_REASON_NONE);
    f.host_checked = true;
    ck_assert_int_eq(cw_tls_facts_reason(&f, &why), CW_REASON_CERT_HOSTNAME);
    /* A broken chain is reported before the name. */
    f.verify_result = X509_V_ERR_CERT_HAS_EXPIRED;
    ck_assert_int_eq(cw_tls_facts_reason(&f, &why), CW_REASON_CERT_EXPIRED);
    ck_assert_str_eq(why, "certificate has expired");
}
END_TEST

/* parse() runs the parser on an exact-size heap copy (ASan sees overreads). */
static int parse(const char *s, int64_t *out)
{
    size_t n = strlen(s);
    char *b = malloc(n > 0 ? n : 1);
    int rc;

    ck_assert_ptr_nonnull(b);
    memcpy(b, s, n);
    rc = cw_http_parse_date(b, n, out);
    free(b);
    return rc;
}

START_TEST(test_date_forms)
{
    int64_t t = 0;

    ck_assert_int_eq(parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), CW_OK);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(parse("Sunday, 06-Nov-94 08:49:37 GMT", &t), CW_OK);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(parse("Sun Nov  6 08:49:37 1994", &t), CW_OK);
    ck_assert_int_eq(t, 784111777);
    ck_assert_int_eq(parse("  Wed, 25 Nov 2026 20:34:36 GMT\r\n", &t), CW_OK);
    ck_assert_int_eq(t, 1795638876);
    ck_assert_int_eq(parse("Thu, 29 Feb 2024 00:00:00 GMT", &t), CW_OK);
    ck_assert_int_eq(t, 1709164800);
    ck_assert_int_eq(parse("Thu, 01 Jan 1970 00:00:00 GMT", &t), CW_OK);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(parse("Fri, 31 Dec 1999 23:59:60 GMT", &t), CW_OK);
    ck_assert_int_eq(t, 946684799);
}
END_TEST

START_TEST(test_date_malformed)
{
    static const char *const bad[] = {
        "",
        "Sun",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 2023 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sun Nov  6 08:49:37",
    };
    int64_t t;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(parse(bad[i], &t) == CW_EPARSE, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_clock_skew)
{
    /* Server 3600 s ahead; request sent at 1000.0, answer at 1000.2: the
     * server read its clock at ~1000.1 + 3600 = 4600.1, Date says 4600. */
    ck_assert(fabs(cw_http_clock_skew(4600, 1000.0, 1000.2) - 3600.4) < 1e-9);
    ck_assert(fabs(cw_http_clock_skew(1000, 1000.0, 1000.0) - 0.5) < 1e-9);
    ck_assert(fabs(cw_http_clock_skew(990, 1000.0, 1000.0) + 9.5) < 1e-9);
}
END_TEST

struct collect {
    struct cw_tls_cert c[8];
    size_t n;
};

static int collect_cb(void *arg, const struct cw_tls_cert *c)
{
    struct collect *k = arg;

    if (k->n < 8)
        k->c[k->n++] = *c;
    return 0;
}

START_TEST(test_pem_fullchain)
{
    struct collect k = {.n = 0};
    size_t len, count;
    char *buf = load("fullchain.pem", &len);

    ck_assert_int_eq(cw_tls_pem_each(buf, len, collect_cb, &k, &count), CW_OK);
    ck_assert_uint_eq(count, 2);
    ck_assert_uint_eq(k.n, 2);
    ck_assert_int_eq(k.c[0].not_after, LEAF_NOT_AFTER);
    ck_assert_int_eq(k.c[0].not_before, LEAF_NOT_BEFORE);
    ck_assert_str_eq(k.c[0].subject, "CN=leaf.example");
    ck_assert_str_eq(k.c[0].issuer, "O=connwatch,CN=fixture-ca");
    ck_assert_str_eq(k.c[0].serial, "1234");
    ck_assert_str_eq(k.c[0].not_after_text, "2027-02-23T20:34:36Z");
    ck_assert_int_eq(k.c[1].not_after, CA_NOT_AFTER);
    ck_assert_str_eq(k.c[1].subject, "O=connwatch,CN=fixture-ca");
    free(buf);
}
END_TEST

START_TEST(test_pem_key_then_cert)
{
    struct collect k = {.n = 0};
    size_t len, count;
    char *buf = load("key_and_cert.pem", &len);

    ck_assert_int_eq(cw_tls_pem_each(buf, len, collect_cb, &k, &count), CW_OK);
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(k.c[0].not_after, LEAF_NOT_AFTER);
    free(buf);
}
END_TEST

START_TEST(test_pem_bad)
{
    static const char *const names[] = {"garbage.pem", "broken.pem", "empty.pem"};
    size_t i;

    for (i = 0; i < 3; i++) {
        struct collect k = {.n = 0};
        size_t len, count = 99;
        char *buf = load(names[i], &len);

        ck_assert_msg(cw_tls_pem_each(buf, len, collect_cb, &k, &count) == CW_EPARSE, "%s accepted",
                      names[i]);
        ck_assert_uint_eq(count, 0);
        free(buf);
    }
}
END_TEST

START_TEST(test_pem_stop)
{
    size_t len, count;
    char *buf = load("fullchain.pem", &len);

    /* A good certificate followed by a truncated one: the first is still seen. */
    ck_assert_int_eq(cw_tls_pem_each(buf, len - 40, NULL, NULL, &count), CW_EPARSE);
    ck_assert_uint_eq(count, 1);
    free(buf);
}
END_TEST

START_TEST(test_is_ip)
{
    ck_assert(cw_tls_is_ip("127.0.0.1"));
    ck_assert(cw_tls_is_ip("::1"));
    ck_assert(!cw_tls_is_ip("localhost"));
    ck_assert(!cw_tls_is_ip("[::1]"));
}
END_TEST

static Suite *http_tls_suite(void)
{
    Suite *s = suite_create("http_tls");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_reason_from_curl);
    tcase_add_test(tc, test_verify_reason);
    tcase_add_test(tc, test_facts_reason);
    tcase_add_test(tc, test_date_forms);
    tcase_add_test(tc, test_date_malformed);
    tcase_add_test(tc, test_clock_skew);
    tcase_add_test(tc, test_pem_fullchain);
    tcase_add_test(tc, test_pem_key_then_cert);
    tcase_add_test(tc, test_pem_bad);
    tcase_add_test(tc, test_pem_stop);
    tcase_add_test(tc, test_is_ip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http_tls_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
