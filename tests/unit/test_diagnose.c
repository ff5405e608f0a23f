/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_diagnose.c - the judgement and advice of `connwatch diagnose`
 * (exporter/diagnose.c), on steps made up by the test: the first broken
 * layer decides, failures above it read "not reached", ICMP unanswered
 * while TCP works is "filtered" (not down), a lost echo and a lost SYN
 * name the SYN, degraded figures, exit codes, the next command with the
 * target's host and port in it (both languages), and the address splitter.
 */
#include "exporter/core/buf.h"
#include "exporter/diagnose.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct cw_dx_step step(const char *kind, enum cw_layer layer, enum cw_reason reason)
{
    struct cw_dx_step s;

    memset(&s, 0, sizeof(s));
    s.kind = kind;
    s.layer = layer;
    s.ok = reason == CW_REASON_NONE;
    s.reason = reason;
    snprintf(s.target, sizeof(s.target), "%s-target", kind);
    snprintf(s.host, sizeof(s.host), "10.0.0.5");
    snprintf(s.port, sizeof(s.port), "8443");
    return s;
}

#define NET  CW_LAYER_NETWORK
#define TLS  CW_LAYER_TLS
#define HTTP CW_LAYER_HTTP

START_TEST(test_all_ok)
{
    struct cw_dx_step s[] = {step("dns", NET, 0), step("icmp", NET, 0), step("tcp", NET, 0),
                             step("http", HTTP, 0)};
    struct cw_dx_verdict v = cw_dx_judge(s, 4);

    ck_assert_int_eq(v.state, CW_DX_OK);
    ck_assert_uint_eq(v.step, 4);
    ck_assert_int_eq(cw_dx_exit_code(&v), CW_DX_EXIT_OK);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(s[i].state, CW_DX_OK);
}
END_TEST

/* A refused connection: tcp is broken, the http check (refused too) was
 * not reached, the verdict is the network's. */
START_TEST(test_refused_breaks_network_http_not_reached)
{
    struct cw_dx_step s[] = {step("icmp", NET, 0), step("tcp", NET, CW_REASON_REFUSED),
                             step("tls", TLS, CW_REASON_REFUSED),
                             step("http", HTTP, CW_REASON_REFUSED)};
    struct cw_dx_verdict v = cw_dx_judge(s, 4);

    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    ck_assert_uint_eq(v.step, 1);
    ck_assert_int_eq(s[1].state, CW_DX_BROKEN);
    ck_assert_int_eq(s[2].state, CW_DX_NOT_REACHED);
    ck_assert_int_eq(s[3].state, CW_DX_NOT_REACHED);
    ck_assert_int_eq(cw_dx_exit_code(&v), CW_DX_EXIT_BROKEN);
}
END_TEST

/* Echoes lost, TCP and HTTP fine: ICMP is filtered, the target is up. */
START_TEST(test_icmp_filtered_is_not_down)
{
    struct cw_dx_step s[] = {step("icmp", NET, CW_REASON_TIMEOUT), step("tcp", NET, 0),
                             step("http", HTTP, 0)};
    struct cw_dx_verdict v = cw_dx_judge(s, 3);
    struct cw_buf b;

    ck_assert_int_eq(s[0].state, CW_DX_FILTERED);
    ck_assert_int_eq(v.state, CW_DX_OK);
    ck_assert_int_eq(cw_dx_exit_code(&v), CW_DX_EXIT_OK);
    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_dx_cause(&b, &s[0], CW_LANG_EN), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b),
                     "ICMP filtered: no echo replies while TCP connects (not down)");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_dx_cause(&b, &s[0], CW_LANG_ZH), CW_OK);
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&b), "ICMP 被过滤"));
    cw_buf_reset(&b);
}
END_TEST

/* Echoes and SYNs both lost: the verdict names the tcp check (its port and
 * a firewall rule say more than the echoes). */
START_TEST(test_lost_echo_and_syn_name_the_syn)
{
    struct cw_dx_step s[] = {step("icmp", NET, CW_REASON_TIMEOUT),
                             step("tcp", NET, CW_REASON_TIMEOUT),
                             step("http", HTTP, CW_REASON_TIMEOUT)};
    struct cw_dx_verdict v = cw_dx_judge(s, 3);
    struct cw_dx_context ctx = {0};
    struct cw_buf b;

    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    ck_assert_uint_eq(v.step, 1);
    ck_assert_int_eq(s[0].state, CW_DX_BROKEN);
    ck_assert_int_eq(s[2].state, CW_DX_NOT_REACHED);
    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_dx_next(&b, &s[1], &ctx, CW_LANG_EN), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "nft list ruleset | grep -n -w 8443; traceroute -T -p 8443 "
                                     "10.0.0.5   # a firewall dropping the SYNs, or a route that "
                                     "goes nowhere");
    cw_buf_reset(&b);
}
END_TEST

/* A certificate for another name: the TLS layer breaks; the http check
 * failing for the same reason was not reached; the advice uses the server
 * name the person gave. */
START_TEST(test_cert_hostname_breaks_tls)
{
    struct cw_dx_step s[] = {step("tcp", NET, 0), step("tls", TLS, CW_REASON_CERT_HOSTNAME),
                             step("http", HTTP, CW_REASON_CERT_HOSTNAME)};
    struct cw_dx_verdict v = cw_dx_judge(s, 3);
    struct cw_dx_context ctx = {.server_name = "invoice.example.com"};
    struct cw_buf b;

    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    ck_assert_uint_eq(v.step, 1);
    ck_assert_int_eq(s[2].state, CW_DX_NOT_REACHED);
    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_dx_next(&b, &s[1], &ctx, CW_LANG_ZH), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b),
                     "openssl s_client -connect 10.0.0.5:8443 -servername invoice.example.com "
                     "</dev/null 2>/dev/null | openssl x509 -noout -subject -ext subjectAltName"
                     "   # 证书包含的名称，与 invoice.example.com 对比");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_dx_cause(&b, &s[1], CW_LANG_EN), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "host name not in the certificate");
    cw_buf_reset(&b);
}
END_TEST

/* An HTTP 502 with TLS and TCP fine breaks the HTTP layer. */
START_TEST(test_http_status_breaks_http)
{
    struct cw_dx_step s[] = {step("tcp", NET, 0), step("tls", TLS, 0),
                             step("http", HTTP, CW_REASON_HTTP_STATUS)};
    struct cw_dx_verdict v = cw_dx_judge(s, 3);
    struct cw_dx_context ctx = {.url = "https://10.0.0.5:8443/api"};
    struct cw_buf b;

    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    ck_assert_uint_eq(v.step, 2);
    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_dx_next(&b, &s[2], &ctx, CW_LANG_EN), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "curl -sv -o /dev/null https://10.0.0.5:8443/api   # the "
                                     "status, and which server or gateway answered it");
    cw_buf_reset(&b);
}
END_TEST

/* A succeeding check over a threshold is degraded (exit 1); a broken one
 * elsewhere wins over it; the host failing alone is broken. */
START_TEST(test_degraded_and_host)
{
    struct cw_dx_step s[] = {step("tcp", NET, 0), step("mysql", CW_LAYER_DATABASE, 0),
                             step("host", CW_LAYER_HOST, 0)};
    struct cw_dx_verdict v;
    struct cw_dx_context ctx = {.user = "monitor"};
    struct cw_buf b;

    s[1].over = true;
    snprintf(s[1].over_text, sizeof(s[1].over_text), "pool usage 93.0 %%");
    v = cw_dx_judge(s, 3);
    ck_assert_int_eq(v.state, CW_DX_DEGRADED);
    ck_assert_uint_eq(v.step, 1);
    ck_assert_int_eq(cw_dx_exit_code(&v), CW_DX_EXIT_DEGRADED);
    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_dx_cause(&b, &s[1], CW_LANG_EN), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "over the alert threshold: pool usage 93.0 %");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_dx_next(&b, &s[1], &ctx, CW_LANG_EN), CW_OK);
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&b), "mysql -h 10.0.0.5 -P 8443 -u monitor -p -e "
                                                 "'SHOW FULL PROCESSLIST'"));
    cw_buf_reset(&b);

    s[0] = step("tcp", NET, CW_REASON_UNREACHABLE);
    v = cw_dx_judge(s, 3);
    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    ck_assert_uint_eq(v.step, 0);

    s[0] = step("tcp", NET, 0);
    s[1] = step("mysql", CW_LAYER_DATABASE, 0);
    s[2] = step("host", CW_LAYER_HOST, CW_REASON_INTERNAL);
    v = cw_dx_judge(s, 3);
    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    ck_assert_uint_eq(v.step, 2);
}
END_TEST

/* An http check that succeeds with its server's clock hours off is degraded
 * at the TLS layer, where ConnwatchClockSkew pages it (sc_network_web read
 * "degraded/http" while the alert said layer=tls); a failing one refused by
 * the network is the network's; an ok one is its kind's. */
START_TEST(test_degraded_layer_is_the_figures)
{
    struct cw_dx_step s[] = {step("tcp", NET, 0), step("http", CW_LAYER_HTTP, 0)};
    struct cw_dx_verdict v;

    ck_assert_int_eq(cw_dx_step_layer(&s[1]), CW_LAYER_HTTP);
    s[1].over = true;
    s[1].over_layer = CW_LAYER_TLS;
    snprintf(s[1].over_text, sizeof(s[1].over_text), "clock skew 10800.00 s");
    v = cw_dx_judge(s, 2);
    ck_assert_int_eq(v.state, CW_DX_DEGRADED);
    ck_assert_uint_eq(v.step, 1);
    ck_assert_int_eq(cw_dx_step_layer(&s[v.step]), CW_LAYER_TLS);
    s[1] = step("http", CW_LAYER_HTTP, CW_REASON_TIMEOUT);
    ck_assert_int_eq(cw_dx_step_layer(&s[1]), CW_LAYER_NETWORK);
}
END_TEST

/* MariaDB at max_connections and Redis at maxclients accept the connection
 * and refuse the client in their protocol: the database and cache layers,
 * "the server is full", not "nothing listens on the port" at the network
 * layer (sc_data_host read "broken/network/refused: 连接被拒绝（端口无服务监听）"
 * for both). A refused port stays the network's. */
START_TEST(test_server_full_is_its_layer)
{
    struct cw_dx_step s[] = {step("tcp", NET, 0),
                             step("mysql", CW_LAYER_DATABASE, CW_REASON_REFUSED)};
    struct cw_dx_context ctx = {.user = "monitor"};
    struct cw_dx_verdict v;
    struct cw_buf b;

    snprintf(s[1].error, sizeof(s[1].error), "connect: Too many connections (1040)");
    v = cw_dx_judge(s, 2);
    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    ck_assert_uint_eq(v.step, 1);
    ck_assert_str_eq(cw_dx_server_full(&s[1]), "max_connections");
    ck_assert_int_eq(cw_dx_step_layer(&s[1]), CW_LAYER_DATABASE);
    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_dx_cause(&b, &s[1], CW_LANG_ZH), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "服务器已满，拒绝新客户端（已达 max_connections）");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_dx_next(&b, &s[1], &ctx, CW_LANG_EN), CW_OK);
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&b), "SHOW PROCESSLIST"));
    cw_buf_clear(&b);

    s[1] = step("redis", CW_LAYER_CACHE, CW_REASON_REFUSED);
    snprintf(s[1].error, sizeof(s[1].error), "ERR max number of clients reached");
    v = cw_dx_judge(s, 2);
    ck_assert_uint_eq(v.step, 1);
    ck_assert_int_eq(cw_dx_step_layer(&s[1]), CW_LAYER_CACHE);
    ck_assert_int_eq(cw_dx_cause(&b, &s[1], CW_LANG_EN), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "the server refuses new clients (maxclients reached)");
    cw_buf_reset(&b);

    snprintf(s[1].error, sizeof(s[1].error), "connect: Connection refused");
    ck_assert_ptr_null(cw_dx_server_full(&s[1]));
    ck_assert_int_eq(cw_dx_step_layer(&s[1]), NET);
}
END_TEST

/* A host that answers no echo (ICMP only: no port) is not "a firewall
 * dropping SYNs" with "grep -w PORT" as the next step (read so by hand
 * against a peer dropping every echo request). */
START_TEST(test_icmp_timeout_words)
{
    struct cw_dx_step s[] = {step("icmp", NET, CW_REASON_TIMEOUT)};
    struct cw_dx_context ctx = {0};
    struct cw_dx_verdict v;
    struct cw_buf b;

    s[0].port[0] = '\0';
    v = cw_dx_judge(s, 1);
    ck_assert_int_eq(v.state, CW_DX_BROKEN);
    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_dx_cause(&b, &s[0], CW_LANG_EN), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b),
                     "no echo replies (the host is down, or a firewall drops ICMP)");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_dx_next(&b, &s[0], &ctx, CW_LANG_EN), CW_OK);
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&b), "mtr -rwc 20 10.0.0.5"));
    ck_assert_ptr_null(strstr(cw_buf_str(&b), "PORT"));
    ck_assert_ptr_null(strstr(cw_buf_str(&b), "SYN"));
    cw_buf_reset(&b);
}
END_TEST

/* Every reason a broken step can have gets advice; the ok states none. */
START_TEST(test_every_reason_has_advice)
{
    struct cw_dx_context ctx = {0};
    struct cw_buf b;

    cw_buf_init(&b, 4096);
    for (int r = CW_REASON_DNS; r < CW_REASON_COUNT; r++) {
        struct cw_dx_step s = step("tcp", NET, (enum cw_reason)r);

        if (r == CW_REASON_REDIRECT_REFUSED)
            continue; /* /probe only */
        s.state = CW_DX_BROKEN;
        cw_buf_clear(&b);
        ck_assert_int_eq(cw_dx_next(&b, &s, &ctx, CW_LANG_EN), CW_OK);
        ck_assert_msg(b.len > 0, "no advice for %s", cw_reason_label((enum cw_reason)r));
        ck_assert_msg(strchr(cw_buf_str(&b), '%') == NULL, "unsubstituted: %s", cw_buf_str(&b));
    }
    for (int st = CW_DX_OK; st <= CW_DX_FILTERED; st++) {
        struct cw_dx_step s = step("icmp", NET, CW_REASON_TIMEOUT);

        s.state = (enum cw_dx_state)st;
        cw_buf_clear(&b);
        ck_assert_int_eq(cw_dx_next(&b, &s, &ctx, CW_LANG_EN), CW_OK);
        ck_assert_uint_eq(b.len, 0);
    }
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_split_address)
{
    static const struct {
        const char *in, *host, *port;
    } ok[] = {
        {"10.0.0.5:3306", "10.0.0.5", "3306"},
        {"db.internal", "db.internal", ""},
        {"[fd00::1]:6379", "fd00::1", "6379"},
        {"fd00::1", "fd00::1", ""},
        {"https://invoice.example.com:8443/api/health?x=1", "invoice.example.com", "8443"},
        {"https://invoice.example.com/api", "invoice.example.com", "443"},
        {"http://user:pw@10.0.0.5/x", "10.0.0.5", "80"},
        {"redis://cache.internal", "cache.internal", "6379"},
        {"mysql://monitor@db:3307", "db", "3307"},
        {"https://[fd00::2]/", "fd00::2", "443"},
    };
    char host[256], port[8];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(cw_dx_split_address(ok[i].in, host, sizeof(host), port, sizeof(port)), "%s",
                      ok[i].in);
        ck_assert_str_eq(host, ok[i].host);
        ck_assert_str_eq(port, ok[i].port);
    }
    ck_assert(!cw_dx_split_address("", host, sizeof(host), port, sizeof(port)));
    ck_assert(!cw_dx_split_address("[fd00::1", host, sizeof(host), port, sizeof(port)));
    ck_assert(!cw_dx_split_address("https:///x", host, sizeof(host), port, sizeof(port)));
    ck_assert(!cw_dx_split_address("abcdefgh:1", host, 4, port, sizeof(port)));
    ck_assert(cw_dx_split_address("h:123456789", host, sizeof(host), port, sizeof(port)));
    ck_assert_str_eq(port, ""); /* a port too long for the buffer is dropped */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("diagnose");
    TCase *t = tcase_create("judge");
    SRunner *sr;
    int failed;

    tcase_add_test(t, test_all_ok);
    tcase_add_test(t, test_degraded_layer_is_the_figures);
    tcase_add_test(t, test_server_full_is_its_layer);
    tcase_add_test(t, test_icmp_timeout_words);
    tcase_add_test(t, test_refused_breaks_network_http_not_reached);
    tcase_add_test(t, test_icmp_filtered_is_not_down);
    tcase_add_test(t, test_lost_echo_and_syn_name_the_syn);
    tcase_add_test(t, test_cert_hostname_breaks_tls);
    tcase_add_test(t, test_http_status_breaks_http);
    tcase_add_test(t, test_degraded_and_host);
    tcase_add_test(t, test_every_reason_has_advice);
    tcase_add_test(t, test_split_address);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
