/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_icmp.c - libFuzzer target for the ICMP packet parsers of
 * collectors/icmp_stats.c: every input is parsed as a datagram of a raw
 * IPv4 socket (with IP header), an IPv4 or IPv6 datagram socket, and as a
 * request handed back by the error queue; a parsed cookie is then fed to a
 * small probe ring as a reply and as an error, whose summary must stay
 * consistent.
 *
 * tests/fuzz/replay_main.c replays the corpus in tests/fuzz/corpus/icmp/ as
 * a plain test without clang. Single-threaded; owns nothing between inputs.
 */
#include "collectors/icmp_stats.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(const struct cw_icmp_pkt *pk, struct cw_icmp_ring *r)
{
    struct cw_icmp_summary s;

    if (pk->what > CW_ICMP_PKT_ERROR || pk->dst_len > 16)
        abort();
    if (!pk->have_cookie)
        return;
    if (pk->what == CW_ICMP_PKT_REPLY)
        (void)cw_icmp_ring_reply(r, pk->cookie.probe, (int64_t)pk->cookie.gen * 1000);
    else
        cw_icmp_ring_unreach(r, pk->cookie.probe);
    cw_icmp_ring_summarize(r, (int64_t)pk->cookie.slot * 1000, &s);
    if (s.answered > s.probes || s.loss_ratio < 0 || s.loss_ratio > 1 || s.received > s.sent ||
        s.probes > r->window)
        abort();
    if (s.answered > 0 && (s.rtt_min_ns > s.rtt_max_ns || s.rtt_min_ns < 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_icmp_ring r;
    struct cw_icmp_pkt pk;
    int i;

    if (cw_icmp_ring_init(&r, 4, 2, 1000000) != CW_OK)
        return 0;
    for (i = 0; i < 5; i++)
        cw_icmp_ring_record(&r, i * 1000, CW_ICMP_SLOT_PENDING);
    if (cw_icmp_parse(data, size, AF_INET, true, &pk) == CW_OK)
        fuzz_check(&pk, &r);
    if (cw_icmp_parse(data, size, AF_INET, false, &pk) == CW_OK)
        fuzz_check(&pk, &r);
    if (cw_icmp_parse(data, size, AF_INET6, false, &pk) == CW_OK)
        fuzz_check(&pk, &r);
    if (cw_icmp_parse_request(data, size, AF_INET, &pk) == CW_OK)
        fuzz_check(&pk, &r);
    if (cw_icmp_parse_request(data, size, AF_INET6, &pk) == CW_OK)
        fuzz_check(&pk, &r);
    cw_icmp_ring_reset(&r);
    return 0;
}
