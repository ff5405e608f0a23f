/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_netconn.c - collectors/netconn.c: the errno and getaddrinfo error
 * classification that becomes the "reason" label, IP literal parsing, and
 * live connects on loopback: a listener (success), a closed port (refused)
 * and a listener whose accept queue is full, which drops SYNs like a
 * firewall (timeout within the deadline). The bounded resolver is run on
 * names that need no network (/etc/hosts, an empty name) and with a
 * deadline that is already over, to exercise the abandoned-lookup path.
 */
#include "collectors/netconn.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* slack() stretches timing margins under valgrind. */
static cw_duration slack(cw_duration d)
{
    return getenv("CW_UNDER_VALGRIND") != NULL ? d * 10 : d;
}

START_TEST(test_reason_from_gai)
{
    ck_assert_int_eq(cw_net_reason_from_gai(0, 0), CW_REASON_NONE);
    ck_assert_int_eq(cw_net_reason_from_gai(EAI_NONAME, 0), CW_REASON_DNS);
    ck_assert_int_eq(cw_net_reason_from_gai(EAI_AGAIN, 0), CW_REASON_DNS);
    ck_assert_int_eq(cw_net_reason_from_gai(EAI_FAIL, 0), CW_REASON_DNS);
    ck_assert_int_eq(cw_net_reason_from_gai(EAI_NODATA, 0), CW_REASON_DNS);
    ck_assert_int_eq(cw_net_reason_from_gai(EAI_MEMORY, 0), CW_REASON_INTERNAL);
    ck_assert_int_eq(cw_net_reason_from_gai(EAI_SYSTEM, ENETUNREACH), CW_REASON_DNS);
    ck_assert_int_eq(cw_net_reason_from_gai(EAI_SYSTEM, EMFILE), CW_REASON_INTERNAL);
}
END_TEST

START_TEST(test_literal_parsing)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char b[64];

    ck_assert(cw_net_literal("127.0.0.1", 80, CW_NET_FAMILY_AUTO, &ss, &len));
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
    ck_assert_str_eq(cw_net_addr_format((struct sockaddr *)&ss, b, sizeof(b)), "127.0.0.1");
    ck_assert(cw_net_literal("127.0.0.1", 80, CW_NET_FAMILY_IP4, &ss, &len));
    ck_assert(!cw_net_literal("127.0.0.1", 80, CW_NET_FAMILY_IP6, &ss, &len));
    ck_assert(cw_net_literal("::1", 443, CW_NET_FAMILY_IP6, &ss, &len));
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 443);
    ck_assert_str_eq(cw_net_addr_format((struct sockaddr *)&ss, b, sizeof(b)), "::1");
    ck_assert(!cw_net_literal("::1", 443, CW_NET_FAMILY_IP4, &ss, &len));
    ck_assert(!cw_net_literal("localhost", 80, CW_NET_FAMILY_AUTO, &ss, &len));
    ck_assert(!cw_net_literal("", 80, CW_NET_FAMILY_AUTO, &ss, &len));
}
END_TEST

/* listener() returns a socket listening on 127.0.0.1 with 'backlog' and
 * its address in 'sin'. */
static int listener(int backlog, struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)sin, sizeof(*sin)), 0);
    ck_assert_int_eq(listen(fd, backlog), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)sin, &len), 0);
    return fd;
}

START_TEST(test_connect_success)
{
    struct sockaddr_in sin;
    cw_duration el = 0;
    int l = listener(16, &sin), fd = -1, err = -1;

    ck_assert_int_eq(
        cw_net_connect((struct sockaddr *)&sin, sizeof(sin), cw_now() + CW_S(2), &fd, &err, &el),
        CW_OK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(err, 0);
    ck_assert_int_gt(el, 0);
    ck_assert_int_lt(el, CW_S(2));
    close(fd);
    close(l);
}
END_TEST

START_TEST(test_connect_refused)
{
    struct sockaddr_in sin;
    cw_duration el = 0;
    int l = listener(16, &sin), fd = -1, err = 0;

    close(l); /* the port is now closed: the kernel answers RST */
    ck_assert_int_eq(
        cw_net_connect((struct sockaddr *)&sin, sizeof(sin), cw_now() + CW_S(2), &fd, &err, &el),
        CW_EIO);
    ck_assert_int_eq(err, ECONNREFUSED);
    ck_assert_int_eq(cw_reason_from_errno(err), CW_REASON_REFUSED);
    ck_assert_int_lt(el, CW_S(1));
    if (fd >= 0)
        close(fd);
}
END_TEST

START_TEST(test_connect_times_out_at_the_deadline)
{
    struct sockaddr_in sin;
    cw_duration el = 0;
    cw_mono t0, deadline;
    int l = listener(0, &sin), first = -1, fd = -1, err = 0;

    /* Backlog 0 holds one connection; the next SYNs are dropped. */
    ck_assert_int_eq(
        cw_net_connect((struct sockaddr *)&sin, sizeof(sin), cw_now() + CW_S(2), &first, &err, &el),
        CW_OK);
    t0 = cw_now();
    deadline = t0 + CW_MS(300);
    ck_assert_int_eq(cw_net_connect((struct sockaddr *)&sin, sizeof(sin), deadline, &fd, &err, &el),
                     CW_ETIMEDOUT);
    ck_assert_int_eq(err, ETIMEDOUT);
    ck_assert_int_ge(cw_now(), deadline);
    ck_assert_int_lt(cw_now() - deadline, slack(CW_MS(100)));
    ck_assert_int_ge(fd, 0);
    close(fd);
    close(first);
    close(l);
}
END_TEST

START_TEST(test_resolve_hosts_file_and_errors)
{
    struct cw_net_lookup *pending = NULL;
    struct addrinfo *res = NULL;
    int gai = 0, se = 0;

    ck_assert_int_eq(cw_net_resolve("localhost", "80", AF_INET, SOCK_STREAM, 0, cw_now() + CW_S(5),
                                    &pending, &res, &gai, &se),
                     CW_OK);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(res->ai_family, AF_INET);
    ck_assert_ptr_null(pending);
    freeaddrinfo(res);

    /* A bad service name fails in getaddrinfo() itself, without network. */
    ck_assert_int_eq(cw_net_resolve("localhost", "no-such-service-xyz", AF_INET, SOCK_STREAM, 0,
                                    cw_now() + CW_S(5), &pending, &res, &gai, &se),
                     CW_EPARSE);
    ck_assert_int_ne(gai, 0);
    ck_assert_int_eq(cw_net_reason_from_gai(gai, se), CW_REASON_DNS);
    ck_assert_ptr_null(res);
}
END_TEST

START_TEST(test_resolve_past_deadline_is_bounded)
{
    struct cw_net_lookup *pending = NULL;
    struct addrinfo *res = NULL;
    cw_mono t0 = cw_now();
    int gai = 0, se = 0, rc, i;

    /* A deadline already over: either the thread won the race (CW_OK) or
     * the lookup is left behind in 'pending'; the call never waits. */
    rc = cw_net_resolve("localhost", NULL, AF_INET, SOCK_STREAM, 0, t0 - CW_MS(1), &pending, &res,
                        &gai, &se);
    ck_assert_int_lt(cw_now() - t0, slack(CW_MS(200)));
    if (rc == CW_OK) {
        freeaddrinfo(res);
        return;
    }
    ck_assert_int_eq(rc, CW_ETIMEDOUT);
    ck_assert_ptr_nonnull(pending);
    /* The next call reaps it once it finished, then resolves normally. */
    for (i = 0; i < 500; i++) {
        rc = cw_net_resolve("localhost", NULL, AF_INET, SOCK_STREAM, 0, cw_now() + CW_S(5),
                            &pending, &res, &gai, &se);
        if (rc != CW_EIO)
            break;
        usleep(10000);
    }
    ck_assert_int_eq(rc, CW_OK);
    ck_assert_ptr_null(pending);
    freeaddrinfo(res);

    /* Abandoning a finished or running lookup frees it (ASan/valgrind). */
    rc = cw_net_resolve("localhost", NULL, AF_INET, SOCK_STREAM, 0, cw_now() - CW_MS(1), &pending,
                        &res, &gai, &se);
    if (rc == CW_OK)
        freeaddrinfo(res);
    cw_net_lookup_abandon(&pending);
    ck_assert_ptr_null(pending);
    usleep(100000); /* let a detached lookup end before the leak check */
}
END_TEST

START_TEST(test_layer_literal_needs_no_lookup)
{
    struct cw_net_lookup *pending = NULL;
    struct sockaddr_storage ss;
    struct cw_net_fail f;
    socklen_t len = 0;

    /* A deadline already over: a literal never waits for a lookup. */
    ck_assert(cw_net_first("127.0.0.1", 81, CW_NET_FAMILY_AUTO, cw_now() - CW_S(1), &pending, &ss,
                           &len, &f));
    ck_assert_ptr_null(pending);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 81);
    ck_assert(
        cw_net_first("::1", 82, CW_NET_FAMILY_IP6, cw_now() - CW_S(1), &pending, &ss, &len, &f));
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    /* A literal of the other family is a dns failure, as getaddrinfo() says. */
    ck_assert(!cw_net_first("127.0.0.1", 81, CW_NET_FAMILY_IP6, cw_now() + CW_S(1), &pending, &ss,
                            &len, &f));
    ck_assert_int_eq(f.reason, CW_REASON_DNS);
    ck_assert_ptr_nonnull(strstr(f.detail, "resolve 127.0.0.1: "));
    ck_assert_ptr_null(pending);
}
END_TEST

START_TEST(test_layer_dial)
{
    struct cw_net_lookup *pending = NULL;
    struct cw_net_conn c;
    struct cw_net_fail f;
    struct sockaddr_in sin;
    char want[96];
    int l = listener(16, &sin);
    unsigned port = ntohs(sin.sin_port);

    ck_assert(cw_net_dial("127.0.0.1", port, CW_NET_FAMILY_AUTO, 0, cw_now() + CW_S(2), &pending,
                          &c, &f));
    ck_assert_int_ge(c.fd, 0);
    ck_assert_int_eq(c.addr.ss_family, AF_INET);
    close(c.fd);
    /* "localhost" goes through the bounded lookup (/etc/hosts). */
    ck_assert(
        cw_net_dial("localhost", port, CW_NET_FAMILY_IP4, 1, cw_now() + CW_S(5), &pending, &c, &f));
    close(c.fd);
    close(l);

    /* Closed now: refused, with the address and port in the detail. */
    ck_assert(!cw_net_dial("127.0.0.1", port, CW_NET_FAMILY_AUTO, 0, cw_now() + CW_S(2), &pending,
                           &c, &f));
    ck_assert_int_eq(f.reason, CW_REASON_REFUSED);
    snprintf(want, sizeof(want), "connect to 127.0.0.1 port %u: ", port);
    ck_assert_msg(strncmp(f.detail, want, strlen(want)) == 0, "%s", f.detail);
    if (c.fd >= 0)
        close(c.fd);
    ck_assert_ptr_null(pending);
}
END_TEST

START_TEST(test_layer_connect_fail_text)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(443)};
    struct cw_net_fail f;

    sin.sin_addr.s_addr = htonl(0x0a000002);
    cw_net_connect_fail(CW_ETIMEDOUT, ETIMEDOUT, (struct sockaddr *)&sin, CW_MS(1500), &f);
    ck_assert_int_eq(f.reason, CW_REASON_TIMEOUT);
    ck_assert_str_eq(f.detail, "connect to 10.0.0.2 port 443: no answer to the SYN within 1.500s");
    cw_net_connect_fail(CW_EIO, EPERM, (struct sockaddr *)&sin, 0, &f);
    ck_assert_int_eq(f.reason, CW_REASON_UNREACHABLE);
    cw_net_connect_fail(CW_EIO, EHOSTUNREACH, (struct sockaddr *)&sin, 0, &f);
    ck_assert_int_eq(f.reason, CW_REASON_UNREACHABLE);
    ck_assert_str_eq(f.detail, "connect to 10.0.0.2 port 443: No route to host");
}
END_TEST

static Suite *netconn_suite(void)
{
    Suite *s = suite_create("netconn");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_reason_from_gai);
    tcase_add_test(tc, test_layer_literal_needs_no_lookup);
    tcase_add_test(tc, test_layer_dial);
    tcase_add_test(tc, test_layer_connect_fail_text);
    tcase_add_test(tc, test_literal_parsing);
    tcase_add_test(tc, test_connect_success);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_connect_times_out_at_the_deadline);
    tcase_add_test(tc, test_resolve_hosts_file_and_errors);
    tcase_add_test(tc, test_resolve_past_deadline_is_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(netconn_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
