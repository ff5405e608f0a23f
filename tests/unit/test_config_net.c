/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config_net.c - every configuration mistake of the tcp and dns check
 * kinds, through the real loader (cw_settings_load_text), asserting the
 * exact "file:line:col: path: message" text users see; and the values a
 * good configuration leaves in the state.
 */
#include "exporter/check.h"
#include "exporter/core/buf.h"
#include "exporter/core/config.h"
#include "exporter/kinds.h"
#include "exporter/settings.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

extern const struct cw_check_kind cw_kind_dns, cw_kind_tcp;
const struct cw_check_kind *const cw_check_kinds[] = {&cw_kind_dns, &cw_kind_tcp, NULL};

/* load() loads "services: [{name: a, checks: [CHECK]}]" from a file named
 * t.yml where CHECK is on line 4, column 9, and returns the diagnostics
 * joined by newlines ("" when it loaded). */
static char *load(const char *check, struct cw_settings **out)
{
    struct cw_diag d;
    struct cw_settings *s;
    struct cw_buf y, b;
    size_t i;
    char *r;

    cw_buf_init(&y, 1 << 16);
    ck_assert_int_eq(cw_buf_addf(&y, "services:\n  - name: a\n    checks:\n      - %s\n", check),
                     CW_OK);
    cw_diag_init(&d);
    s = cw_settings_load_text("t.yml", cw_buf_str(&y), &d);
    cw_buf_reset(&y);
    cw_buf_init(&b, 1 << 20);
    for (i = 0; i < d.n; i++)
        ck_assert_int_eq(cw_buf_addf(&b, "%s%s", i ? "\n" : "", d.entries[i].text), CW_OK);
    cw_diag_reset(&d);
    if (out != NULL)
        *out = s;
    else
        cw_settings_unref(s);
    if (s == NULL)
        ck_assert_uint_gt(b.len, 0);
    r = strdup(cw_buf_str(&b));
    cw_buf_reset(&b);
    return r;
}

#define ASSERT_ERROR(check, expected)                                                              \
    do {                                                                                           \
        char *got_ = load(check, NULL);                                                            \
        ck_assert_str_eq(got_, expected);                                                          \
        free(got_);                                                                                \
    } while (0)

#define ASSERT_LOADS(check)                                                                        \
    do {                                                                                           \
        char *got_ = load(check, NULL);                                                            \
        ck_assert_str_eq(got_, "");                                                                \
        free(got_);                                                                                \
    } while (0)

START_TEST(test_tcp_missing_target)
{
    ASSERT_ERROR("tcp: {ip_family: ip4}",
                 "t.yml:4:14: services[0].checks[0].tcp: missing required field \"target\"");
}
END_TEST

START_TEST(test_tcp_target_without_port)
{
    ASSERT_ERROR("tcp: {target: db.internal}",
                 "t.yml:4:23: services[0].checks[0].tcp.target: \"db.internal\": missing port "
                 "(write host:port)");
}
END_TEST

START_TEST(test_tcp_target_bad_port)
{
    ASSERT_ERROR("tcp: {target: \"db.internal:0\"}",
                 "t.yml:4:23: services[0].checks[0].tcp.target: \"db.internal:0\": port must be a "
                 "number from 1 to 65535");
}
END_TEST

START_TEST(test_tcp_target_bad_host)
{
    ASSERT_ERROR("tcp: {target: \"db_internal!:80\"}",
                 "t.yml:4:23: services[0].checks[0].tcp.target: \"db_internal!:80\": not a valid "
                 "IP address or host name");
    ASSERT_ERROR("tcp: {target: \"[::1:80\"}",
                 "t.yml:4:23: services[0].checks[0].tcp.target: \"[::1:80\": missing ']' after "
                 "an IPv6 address");
}
END_TEST

START_TEST(test_tcp_target_not_a_string)
{
    ASSERT_ERROR(
        "tcp: {target: [a, b]}",
        "t.yml:4:23: services[0].checks[0].tcp.target: must be an address (host:port), not a list");
}
END_TEST

START_TEST(test_tcp_bad_ip_family)
{
    ASSERT_ERROR("tcp: {target: \"h:1\", ip_family: ipv4}",
                 "t.yml:4:41: services[0].checks[0].tcp.ip_family: \"ipv4\" is not one of: auto, "
                 "ip4, ip6");
}
END_TEST

START_TEST(test_tcp_ip_family_contradicts_target)
{
    ASSERT_ERROR("tcp: {target: \"10.0.0.5:8443\", ip_family: ip6}",
                 "t.yml:4:51: services[0].checks[0].tcp.ip_family: target \"10.0.0.5:8443\" is an "
                 "IPv4 address: ip_family must be auto or ip4");
    ASSERT_ERROR("tcp: {target: \"[::1]:8443\", ip_family: ip4}",
                 "t.yml:4:48: services[0].checks[0].tcp.ip_family: target \"[::1]:8443\" is an "
                 "IPv6 address: ip_family must be auto or ip6");
}
END_TEST

START_TEST(test_tcp_unknown_key)
{
    ASSERT_ERROR("tcp: {target: \"h:1\", bogus: true}",
                 "t.yml:4:30: services[0].checks[0].tcp.bogus: unknown field \"bogus\"");
}
END_TEST

START_TEST(test_tcp_accepts_good_forms)
{
    struct cw_settings *s;
    char *err = load("tcp: {target: \"[::1]:8443\", ip_family: ip6, timeout: 2s}", &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_str_eq(s->inst[0]->target, "[::1]:8443");
    ck_assert_int_eq(s->inst[0]->timeout, CW_S(2));
    cw_settings_unref(s);
    ASSERT_LOADS("tcp: {target: \"invoice.example.com:443\", ip_family: ip4}");
    ASSERT_LOADS("tcp: {target: \"10.0.0.5:8443\", name: invoice-db}");
}
END_TEST

START_TEST(test_dns_missing_name)
{
    ASSERT_ERROR("dns: {record: AAAA}",
                 "t.yml:4:14: services[0].checks[0].dns: missing required field \"name\" (the "
                 "name to look up)");
}
END_TEST

START_TEST(test_dns_invalid_name)
{
    ASSERT_ERROR("dns: {name: \"invoice..example.com\"}",
                 "t.yml:4:21: services[0].checks[0].dns.name: \"invoice..example.com\" is not a "
                 "valid domain name");
}
END_TEST

START_TEST(test_dns_bad_record)
{
    ASSERT_ERROR("dns: {name: a.example, record: MX}",
                 "t.yml:4:40: services[0].checks[0].dns.record: \"MX\" is not one of: A, AAAA");
}
END_TEST

START_TEST(test_dns_server_by_name)
{
    ASSERT_ERROR("dns: {name: a.example, server: ns1.example.com}",
                 "t.yml:4:40: services[0].checks[0].dns.server: \"ns1.example.com\": the server "
                 "must be an IP address, with an optional port (it is not looked up by name)");
}
END_TEST

START_TEST(test_dns_server_bad_port)
{
    ASSERT_ERROR("dns: {name: a.example, server: \"10.0.0.53:99999\"}",
                 "t.yml:4:40: services[0].checks[0].dns.server: \"10.0.0.53:99999\": port must be "
                 "a number from 1 to 65535");
}
END_TEST

START_TEST(test_dns_unknown_key)
{
    ASSERT_ERROR("dns: {name: a.example, type: A}",
                 "t.yml:4:32: services[0].checks[0].dns.type: unknown field \"type\"");
}
END_TEST

START_TEST(test_dns_accepts_good_forms)
{
    struct cw_settings *s;
    char *err = load("dns: {name: invoice.example.com, record: AAAA, server: \"[::1]:5353\"}", &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_str_eq(s->inst[0]->target, "invoice.example.com");
    cw_settings_unref(s);
    ASSERT_LOADS("dns: {name: invoice.example.com, server: 10.0.0.53}");
    ASSERT_LOADS("dns: {name: invoice.example.com.}");
}
END_TEST

START_TEST(test_net_kinds_report_every_error_at_once)
{
    char *got = load("tcp: {ip_family: ip5}", NULL);

    ck_assert_str_eq(got, "t.yml:4:26: services[0].checks[0].tcp.ip_family: \"ip5\" is not one "
                          "of: auto, ip4, ip6\n"
                          "t.yml:4:14: services[0].checks[0].tcp: missing required field "
                          "\"target\"");
    free(got);
}
END_TEST

static Suite *config_net_suite(void)
{
    Suite *s = suite_create("config_net");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_tcp_missing_target);
    tcase_add_test(tc, test_tcp_target_without_port);
    tcase_add_test(tc, test_tcp_target_bad_port);
    tcase_add_test(tc, test_tcp_target_bad_host);
    tcase_add_test(tc, test_tcp_target_not_a_string);
    tcase_add_test(tc, test_tcp_bad_ip_family);
    tcase_add_test(tc, test_tcp_ip_family_contradicts_target);
    tcase_add_test(tc, test_tcp_unknown_key);
    tcase_add_test(tc, test_tcp_accepts_good_forms);
    tcase_add_test(tc, test_dns_missing_name);
    tcase_add_test(tc, test_dns_invalid_name);
    tcase_add_test(tc, test_dns_bad_record);
    tcase_add_test(tc, test_dns_server_by_name);
    tcase_add_test(tc, test_dns_server_bad_port);
    tcase_add_test(tc, test_dns_unknown_key);
    tcase_add_test(tc, test_dns_accepts_good_forms);
    tcase_add_test(tc, test_net_kinds_report_every_error_at_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_net_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
