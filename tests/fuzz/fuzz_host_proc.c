/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_host_proc.c - libFuzzer target for every parser of
 * collectors/host_proc.c: /proc/stat, /proc/meminfo, /proc/net/snmp,
 * /proc/net/netstat and /proc/net/tcp{,6} (whole and fed in two chunks,
 * the way host_sockdiag.c streams it).
 *
 * tests/fuzz/replay_main.c replays the corpus in tests/fuzz/corpus/host_proc/
 * as a plain test without clang.
 * Single-threaded; owns nothing between inputs.
 */
#include "collectors/host_proc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_check_net_tcp() feeds 'text' as the first 'split' bytes, then the
 * unconsumed rest plus the remainder, and checks the invariants of
 * cw_host_parse_net_tcp(). */
static void fuzz_check_net_tcp(const char *text, size_t size, size_t split)
{
    struct cw_host_tcp_states st = {{0}, 0};
    size_t used = 0;
    char *rest;
    size_t rest_len;

    if (cw_host_parse_net_tcp(text, split, &st, &used) != CW_OK)
        return;
    if (used > split)
        abort();
    rest_len = size - used;
    rest = malloc(rest_len > 0 ? rest_len : 1);
    if (rest == NULL)
        return;
    memcpy(rest, text + used, rest_len);
    if (cw_host_parse_net_tcp(rest, rest_len, &st, &used) == CW_OK && used > rest_len)
        abort();
    free(rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct cw_host_cpu cpu;
    struct cw_host_mem mem;
    struct cw_host_tcp_counters tcp = {{0}, 0};
    struct cw_host_tcp_states st = {{0}, 0};
    size_t used = 0;
    int rc;

    if (cw_host_parse_stat(text, size, &cpu) == CW_OK) {
        double usage, iowait;

        cw_host_cpu_ratios(NULL, &cpu, &usage, &iowait);
        if (usage < 0 || usage > 1 || iowait < 0 || iowait > 1)
            abort();
        (void)cw_host_cpu_total(&cpu);
    }
    rc = cw_host_parse_meminfo(text, size, &mem);
    if (rc != CW_OK && rc != CW_EPARSE)
        abort();
    if (rc == CW_OK && (mem.present & CW_HOST_MEM_TOTAL) == 0)
        abort();
    if (cw_host_parse_snmp(text, size, &tcp) == CW_OK &&
        cw_host_tcp_has(&tcp, CW_HOST_TCP_OUT_SEGS) &&
        cw_host_tcp_has(&tcp, CW_HOST_TCP_RETRANS_SEGS))
        (void)cw_host_retransmit_ratio(NULL, &tcp);
    rc = cw_host_parse_netstat(text, size, &tcp);
    if (rc != CW_OK && rc != CW_EPARSE)
        abort();
    if (cw_host_parse_net_tcp(text, size, &st, &used) == CW_OK && used > size)
        abort();
    fuzz_check_net_tcp(text, size, size / 2);
    return 0;
}
