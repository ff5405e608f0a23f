/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_icmp_stats.c - Check suite "icmp_stats": echo request building and
 * the ICMP/ICMPv6 parsers of collectors/icmp_stats.c on synthetic packets
 * (replies, errors quoting a request, foreign and truncated packets), and
 * the probe ring: window loss, RTT avg/min/max, jitter, late replies,
 * duplicates, stale and unknown probes, unreachable probes, the histogram
 * and probe-number wrap-around. Single-threaded; Check forks each test.
 */
#include "collectors/icmp_stats.h"

#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MS (1000000LL)

/* ---- Packets -------------------------------------------------------------- */

static const struct cw_icmp_cookie cookie = {.slot = 7, .gen = 3, .probe = 0x10002};

/* mk_reply() turns an echo request of 'family' into its reply, in place. */
static void mk_reply(uint8_t *p, size_t len, int family)
{
    p[0] = family == AF_INET6 ? 129 : 0;
    p[2] = p[3] = 0;
    if (family == AF_INET) {
        uint16_t c = cw_icmp_checksum(p, len);

        p[2] = (uint8_t)(c >> 8);
        p[3] = (uint8_t)c;
    }
}

START_TEST(build_and_parse_reply)
{
    int fams[] = {AF_INET, AF_INET6};
    size_t i;

    for (i = 0; i < 2; i++) {
        uint8_t p[128];
        struct cw_icmp_pkt pk;
        size_t n = cw_icmp_build_echo(p, sizeof(p), fams[i], 0x1234, 0x0002, &cookie, 56);

        ck_assert_uint_eq(n, 64);
        if (fams[i] == AF_INET)
            ck_assert_uint_eq(cw_icmp_checksum(p, n), 0);
        mk_reply(p, n, fams[i]);
        ck_assert_int_eq(cw_icmp_parse(p, n, fams[i], false, &pk), CW_OK);
        ck_assert_int_eq(pk.what, CW_ICMP_PKT_REPLY);
        ck_assert_uint_eq(pk.id, 0x1234);
        ck_assert_uint_eq(pk.seq, 2);
        ck_assert(pk.have_cookie);
        ck_assert_uint_eq(pk.cookie.slot, 7);
        ck_assert_uint_eq(pk.cookie.gen, 3);
        ck_assert_uint_eq(pk.cookie.probe, 0x10002);
    }
    /* too small a payload or buffer */
    {
        uint8_t p[64];

        ck_assert_uint_eq(cw_icmp_build_echo(p, sizeof(p), AF_INET, 1, 1, &cookie, 15), 0);
        ck_assert_uint_eq(cw_icmp_build_echo(p, sizeof(p), AF_INET, 1, 1, &cookie, 57), 0);
    }
}
END_TEST

START_TEST(parse_raw_ipv4)
{
    uint8_t p[20 + 64];
    struct cw_icmp_pkt pk;
    size_t n, cut;

    memset(p, 0, 20);
    p[0] = 0x45;
    p[9] = 1;
    n = 20 + cw_icmp_build_echo(p + 20, 64, AF_INET, 9, 2, &cookie, 56);
    mk_reply(p + 20, 64, AF_INET);
    ck_assert_int_eq(cw_icmp_parse(p, n, AF_INET, true, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_REPLY);
    ck_assert_uint_eq(pk.id, 9);
    ck_assert(pk.have_cookie);
    /* every truncation is rejected or parsed without the cookie */
    for (cut = 0; cut < n; cut++) {
        int rc = cw_icmp_parse(p, cut, AF_INET, true, &pk);

        if (cut < 28)
            ck_assert_int_eq(rc, CW_EPARSE);
        else
            ck_assert(rc == CW_OK && pk.have_cookie == (cut >= 20 + 8 + 16));
    }
    /* not ICMP, bad IHL */
    p[9] = 6;
    ck_assert_int_eq(cw_icmp_parse(p, n, AF_INET, true, &pk), CW_EPARSE);
    p[9] = 1;
    p[0] = 0x4f;
    ck_assert_int_eq(cw_icmp_parse(p, 40, AF_INET, true, &pk), CW_EPARSE);
}
END_TEST

START_TEST(parse_foreign)
{
    uint8_t p[64];
    struct cw_icmp_pkt pk;

    /* a ping(8) reply: no magic */
    memset(p, 0xab, sizeof(p));
    p[0] = 0;
    p[1] = 0;
    ck_assert_int_eq(cw_icmp_parse(p, sizeof(p), AF_INET, false, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_REPLY);
    ck_assert(!pk.have_cookie);
    /* an echo request, a router advertisement: ignored */
    p[0] = 8;
    ck_assert_int_eq(cw_icmp_parse(p, sizeof(p), AF_INET, false, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_IGNORE);
    p[0] = 134;
    ck_assert_int_eq(cw_icmp_parse(p, sizeof(p), AF_INET6, false, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_IGNORE);
    ck_assert_int_eq(cw_icmp_parse(p, 7, AF_INET6, false, &pk), CW_EPARSE);
}
END_TEST

START_TEST(parse_unreach_ipv4)
{
    /* ICMP dest unreachable (host) quoting IPv4 header + our request */
    uint8_t p[8 + 20 + 64];
    struct cw_icmp_pkt pk;
    size_t cut;

    memset(p, 0, sizeof(p));
    p[0] = 3;
    p[1] = 1;
    p[8] = 0x45;
    p[8 + 9] = 1;
    p[8 + 16] = 10;
    p[8 + 17] = 9;
    p[8 + 18] = 8;
    p[8 + 19] = 7;
    ck_assert_uint_eq(cw_icmp_build_echo(p + 28, 64, AF_INET, 5, 2, &cookie, 56), 64);
    ck_assert_int_eq(cw_icmp_parse(p, sizeof(p), AF_INET, false, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_ERROR);
    ck_assert_uint_eq(pk.type, 3);
    ck_assert_uint_eq(pk.code, 1);
    ck_assert_uint_eq(pk.dst_len, 4);
    ck_assert_mem_eq(pk.dst, "\x0a\x09\x08\x07", 4);
    ck_assert(pk.have_cookie);
    ck_assert_uint_eq(pk.cookie.probe, cookie.probe);
    /* only 8 bytes of the request quoted (RFC 792 minimum): no cookie */
    ck_assert_int_eq(cw_icmp_parse(p, 8 + 20 + 8, AF_INET, false, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_ERROR);
    ck_assert(!pk.have_cookie);
    for (cut = 0; cut < 8 + 20; cut++)
        ck_assert_int_eq(cw_icmp_parse(p, cut, AF_INET, false, &pk), CW_EPARSE);
    /* time exceeded quoting a TCP segment: ignored */
    p[0] = 11;
    p[8 + 9] = 6;
    ck_assert_int_eq(cw_icmp_parse(p, sizeof(p), AF_INET, false, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_IGNORE);
}
END_TEST

START_TEST(parse_unreach_ipv6)
{
    uint8_t p[8 + 40 + 64];
    struct cw_icmp_pkt pk;

    memset(p, 0, sizeof(p));
    p[0] = 1; /* destination unreachable */
    p[1] = 3; /* address unreachable */
    p[8] = 0x60;
    p[8 + 6] = 58;
    p[8 + 24] = 0x20;
    p[8 + 25] = 0x01;
    p[8 + 39] = 0x42;
    ck_assert_uint_eq(cw_icmp_build_echo(p + 48, 64, AF_INET6, 5, 2, &cookie, 56), 64);
    ck_assert_int_eq(cw_icmp_parse(p, sizeof(p), AF_INET6, false, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_ERROR);
    ck_assert_uint_eq(pk.dst_len, 16);
    ck_assert_uint_eq(pk.dst[0], 0x20);
    ck_assert_uint_eq(pk.dst[15], 0x42);
    ck_assert(pk.have_cookie);
    ck_assert_int_eq(cw_icmp_parse(p, 8 + 39, AF_INET6, false, &pk), CW_EPARSE);
    /* the error queue hands back the request itself */
    ck_assert_int_eq(cw_icmp_parse_request(p + 48, 64, AF_INET6, &pk), CW_OK);
    ck_assert_int_eq(pk.what, CW_ICMP_PKT_ERROR);
    ck_assert(pk.have_cookie);
    ck_assert_int_eq(cw_icmp_parse_request(p + 48, 64, AF_INET, &pk), CW_EPARSE);
    ck_assert_int_eq(cw_icmp_parse_request(p + 48, 7, AF_INET6, &pk), CW_EPARSE);
}
END_TEST

/* ---- Ring ----------------------------------------------------------------- */

/* send_answer() sends one probe at 't' and answers it after 'rtt' (< 0: never). */
static void send_answer(struct cw_icmp_ring *r, int64_t t, int64_t rtt)
{
    uint32_t p = r->next;

    cw_icmp_ring_record(r, t, CW_ICMP_SLOT_PENDING);
    if (rtt >= 0)
        ck_assert_int_eq(cw_icmp_ring_reply(r, p, t + rtt), CW_ICMP_V_OK);
}

START_TEST(ring_rtt_and_jitter)
{
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;
    int64_t rtts[] = {10 * MS, 20 * MS, 10 * MS, 40 * MS};
    size_t i;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 10, 3, 1000 * MS), CW_OK);
    cw_icmp_ring_summarize(&r, 0, &s);
    ck_assert_uint_eq(s.probes, 0);
    for (i = 0; i < 4; i++)
        send_answer(&r, (int64_t)i * 100 * MS, rtts[i]);
    cw_icmp_ring_summarize(&r, 400 * MS, &s);
    ck_assert_uint_eq(s.probes, 4);
    ck_assert_uint_eq(s.answered, 4);
    ck_assert_double_eq(s.loss_ratio, 0);
    ck_assert_int_eq(s.rtt_min_ns, 10 * MS);
    ck_assert_int_eq(s.rtt_max_ns, 40 * MS);
    ck_assert_double_eq_tol(s.rtt_avg_ns, 20.0 * MS, 1);
    /* |20-10| + |10-20| + |40-10| = 50 over 3 differences */
    ck_assert_uint_eq(s.jitter_n, 3);
    ck_assert_double_eq_tol(s.jitter_ns, 50.0 * MS / 3, 1);
    ck_assert_uint_eq(s.sent, 4);
    ck_assert_uint_eq(s.received, 4);
    ck_assert_double_eq_tol(s.rtt_sum, 0.08, 1e-9);
    /* 10 ms and 20 ms buckets */
    ck_assert_uint_eq(s.nbounds, CW_ICMP_NBUCKETS);
    ck_assert_double_eq(cw_icmp_buckets[4], 0.005);
    ck_assert_uint_eq(s.cumulative[4], 0); /* <= 5 ms */
    ck_assert_uint_eq(s.cumulative[5], 2); /* <= 10 ms */
    ck_assert_uint_eq(s.cumulative[6], 3); /* <= 20 ms */
    ck_assert_uint_eq(s.cumulative[7], 4); /* <= 50 ms */
    ck_assert_uint_eq(s.cumulative[CW_ICMP_NBUCKETS - 1], 4);
    cw_icmp_ring_reset(&r);
    cw_icmp_ring_reset(&r);
}
END_TEST

/* A configured layout (histogram_buckets): replies are counted in its
 * buckets, RTTs above the last bound only in the total (+Inf). */
START_TEST(ring_configured_buckets)
{
    static const double bounds[] = {0.001, 0.015};
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;
    int64_t rtts[] = {1 * MS, 2 * MS, 15 * MS, 16 * MS, 900 * MS};
    size_t i;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 10, 3, 1000 * MS), CW_OK);
    ck_assert_int_eq(cw_icmp_ring_set_buckets(&r, bounds, 2), CW_OK);
    ck_assert_int_eq(cw_icmp_ring_set_buckets(&r, bounds, CW_ICMP_MAX_BUCKETS + 1), CW_EINVAL);
    for (i = 0; i < sizeof(rtts) / sizeof(rtts[0]); i++)
        send_answer(&r, (int64_t)i * 1000 * MS, rtts[i]);
    cw_icmp_ring_summarize(&r, 6000 * MS, &s);
    ck_assert_uint_eq(s.nbounds, 2);
    ck_assert_uint_eq(s.cumulative[0], 1); /* <= 1 ms: the bound is inclusive */
    ck_assert_uint_eq(s.cumulative[1], 3); /* <= 15 ms */
    ck_assert_uint_eq(s.received, 5);      /* +Inf */
    /* no buckets at all: only the count and the sum */
    ck_assert_int_eq(cw_icmp_ring_set_buckets(&r, NULL, 0), CW_OK);
    send_answer(&r, 6000 * MS, 1 * MS);
    cw_icmp_ring_summarize(&r, 7000 * MS, &s);
    ck_assert_uint_eq(s.nbounds, 0);
    ck_assert_uint_eq(s.received, 6);
    cw_icmp_ring_reset(&r);
}
END_TEST

START_TEST(ring_loss_and_window)
{
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;
    int i;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 10, 3, 500 * MS), CW_OK);
    /* 30 probes, every third lost: the window holds the last 10 */
    for (i = 0; i < 30; i++)
        send_answer(&r, i * 100 * MS, i % 3 == 0 ? -1 : 5 * MS);
    /* at 3.5 s: probe 27 (2.7 s) lost for sure; 28, 29 answered */
    cw_icmp_ring_summarize(&r, 3500 * MS, &s);
    ck_assert_uint_eq(s.probes, 10);
    ck_assert_uint_eq(s.answered, 7); /* 20..29: lost 21, 24, 27 */
    ck_assert_double_eq_tol(s.loss_ratio, 0.3, 1e-12);
    ck_assert_uint_eq(s.sent, 30);
    ck_assert_uint_eq(s.received, 20);
    /* jitter ignores the gaps: all answers 5 ms */
    ck_assert_double_eq(s.jitter_ns, 0);
    cw_icmp_ring_reset(&r);
}
END_TEST

START_TEST(ring_pending_blocks_window)
{
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;
    int i;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 100, 10, 1000 * MS), CW_OK);
    for (i = 0; i < 5; i++)
        send_answer(&r, i * 100 * MS, 1 * MS);
    send_answer(&r, 500 * MS, -1); /* probe 5 pending */
    send_answer(&r, 600 * MS, 1 * MS);
    send_answer(&r, 700 * MS, 1 * MS);
    cw_icmp_ring_summarize(&r, 800 * MS, &s);
    ck_assert_uint_eq(s.probes, 5); /* 6 and 7 wait behind 5 */
    ck_assert_double_eq(s.loss_ratio, 0);
    /* once 5 times out, it and the later answers are in */
    cw_icmp_ring_summarize(&r, 1501 * MS, &s);
    ck_assert_uint_eq(s.probes, 8);
    ck_assert_uint_eq(s.answered, 7);
    ck_assert_double_eq_tol(s.loss_ratio, 1.0 / 8, 1e-12);
    cw_icmp_ring_reset(&r);
}
END_TEST

START_TEST(ring_late_and_duplicate)
{
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 10, 2, 100 * MS), CW_OK);
    cw_icmp_ring_record(&r, 0, CW_ICMP_SLOT_PENDING);
    cw_icmp_ring_record(&r, 10 * MS, CW_ICMP_SLOT_PENDING);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 0, 5 * MS), CW_ICMP_V_OK);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 0, 6 * MS), CW_ICMP_V_DUP);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 1, 200 * MS), CW_ICMP_V_LATE);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 1, 201 * MS), CW_ICMP_V_DUP);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 2, 201 * MS), CW_ICMP_V_UNKNOWN);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 0xffffffffu, 201 * MS), CW_ICMP_V_UNKNOWN);
    cw_icmp_ring_summarize(&r, 300 * MS, &s);
    ck_assert_uint_eq(s.probes, 2);
    ck_assert_uint_eq(s.answered, 1);
    ck_assert_double_eq_tol(s.loss_ratio, 0.5, 1e-12);
    ck_assert_uint_eq(s.received, 1);
    ck_assert_uint_eq(s.duplicates, 2);
    ck_assert_uint_eq(s.late, 1);
    ck_assert_uint_eq(s.cumulative[CW_ICMP_NBUCKETS - 1], 1);
    /* a probe so old its slot was reused: late */
    for (int i = 0; i < 20; i++)
        cw_icmp_ring_record(&r, 300 * MS + i, CW_ICMP_SLOT_PENDING);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 1, 400 * MS), CW_ICMP_V_LATE);
    ck_assert_uint_eq(r.late, 2);
    /* a clock step back: RTT 0, not negative */
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 21, 0), CW_ICMP_V_OK);
    cw_icmp_ring_reset(&r);
}
END_TEST

START_TEST(ring_unreachable)
{
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 4, 2, 100 * MS), CW_OK);
    cw_icmp_ring_record(&r, 0, CW_ICMP_SLOT_PENDING);
    cw_icmp_ring_unreach(&r, 0);
    cw_icmp_ring_unreach(&r, 0); /* twice: counted once */
    cw_icmp_ring_record(&r, 1, CW_ICMP_SLOT_UNREACH);
    cw_icmp_ring_record(&r, 2, CW_ICMP_SLOT_FAILED);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 0, 3), CW_ICMP_V_LATE);
    cw_icmp_ring_summarize(&r, 3, &s);
    ck_assert_uint_eq(s.probes, 3);
    ck_assert_uint_eq(s.answered, 0);
    ck_assert_uint_eq(s.unreach, 2);
    ck_assert(!s.last_unreach);
    ck_assert_double_eq(s.loss_ratio, 1);
    ck_assert_uint_eq(s.unreachable, 2);
    ck_assert_uint_eq(s.send_errors, 1);
    cw_icmp_ring_record(&r, 4, CW_ICMP_SLOT_UNREACH);
    cw_icmp_ring_summarize(&r, 4, &s);
    ck_assert(s.last_unreach);
    cw_icmp_ring_reset(&r);
}
END_TEST

START_TEST(ring_wraparound)
{
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;
    int i;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 8, 2, 100 * MS), CW_OK);
    r.next = 0xfffffff0u;
    for (i = 0; i < 32; i++)
        send_answer(&r, i * MS, i % 4 == 0 ? -1 : 2 * MS);
    ck_assert_uint_eq(r.next, 16);
    cw_icmp_ring_summarize(&r, 500 * MS, &s);
    ck_assert_uint_eq(s.probes, 8);
    ck_assert_uint_eq(s.answered, 6);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 15, 1000 * MS), CW_ICMP_V_DUP);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 16, 1000 * MS), CW_ICMP_V_UNKNOWN);
    ck_assert_int_eq(cw_icmp_ring_reply(&r, 0xfffffff1u, 1000 * MS), CW_ICMP_V_LATE);
    cw_icmp_ring_reset(&r);
}
END_TEST

/* Binomial loss estimate with a fixed seed: the window reports exactly the
 * share of unanswered probes among its last N. */
START_TEST(ring_loss_statistics)
{
    struct cw_icmp_ring r;
    struct cw_icmp_summary s;
    unsigned seed = 12345, lost = 0;
    int i;

    ck_assert_int_eq(cw_icmp_ring_init(&r, 1000, 2, 50 * MS), CW_OK);
    for (i = 0; i < 3000; i++) {
        bool drop = rand_r(&seed) % 100 < 20;

        if (i >= 2000)
            lost += drop;
        send_answer(&r, (int64_t)i * 10 * MS, drop ? -1 : 1 * MS);
    }
    cw_icmp_ring_summarize(&r, 3000 * 10 * MS + 51 * MS, &s);
    ck_assert_uint_eq(s.probes, 1000);
    ck_assert_double_eq_tol(s.loss_ratio, lost / 1000.0, 1e-12);
    ck_assert_double_eq_tol(s.loss_ratio, 0.2, 4 * 0.0127); /* 4 sigma */
    cw_icmp_ring_reset(&r);
}
END_TEST

static Suite *icmp_suite(void)
{
    Suite *s = suite_create("icmp_stats");
    TCase *tp = tcase_create("packets");
    TCase *tr = tcase_create("ring");

    tcase_add_test(tp, build_and_parse_reply);
    tcase_add_test(tp, parse_raw_ipv4);
    tcase_add_test(tp, parse_foreign);
    tcase_add_test(tp, parse_unreach_ipv4);
    tcase_add_test(tp, parse_unreach_ipv6);
    tcase_add_test(tr, ring_rtt_and_jitter);
    tcase_add_test(tr, ring_configured_buckets);
    tcase_add_test(tr, ring_loss_and_window);
    tcase_add_test(tr, ring_pending_blocks_window);
    tcase_add_test(tr, ring_late_and_duplicate);
    tcase_add_test(tr, ring_unreachable);
    tcase_add_test(tr, ring_wraparound);
    tcase_add_test(tr, ring_loss_statistics);
    suite_add_tcase(s, tp);
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(icmp_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
