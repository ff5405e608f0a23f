/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dns_wire.c - libFuzzer target for collectors/dns_wire.c: the reply
 * checks (over libresolv's parser) of the dns check, and the query builder
 * fed the input as a name.
 *
 * The input is a reply datagram; its own id is used as the expected one so
 * that the fuzzer gets past the id check, and it is checked against the
 * questions of the corpus (one.test, multi.test, alias.test, missing.test;
 * A and AAAA). tests/fuzz/replay_main.c replays tests/fuzz/corpus/dns_wire/
 * as a plain test. Single-threaded; owns nothing between inputs.
 */
#include "collectors/dns_wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"one.test", "multi.test", "alias.test", "missing.test"};
    static const uint16_t types[] = {CW_DNS_TYPE_A, CW_DNS_TYPE_AAAA};
    uint8_t q[CW_DNS_QUERY_MAX];
    size_t i, j, qlen = 0;
    uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    char *name;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (j = 0; j < sizeof(types) / sizeof(types[0]); j++) {
            struct cw_dns_reply r;
            const char *why = NULL;
            int rc = cw_dns_reply_parse(data, size, id, names[i], types[j], &r, &why);

            if (rc == CW_OK && (r.answers > r.ancount || why != NULL))
                abort();
            if (rc != CW_OK && why == NULL)
                abort();
        }
    }

    /* The input as a name: the builder either rejects it or writes a query
     * that fits and that its own checks would accept as the question. */
    name = malloc(size + 1);
    if (name == NULL)
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    if (cw_dns_query_build(q, sizeof(q), &qlen, 7, name, CW_DNS_TYPE_A, CW_DNS_EDNS_SIZE) ==
        CW_OK) {
        if (qlen > sizeof(q) || !cw_dns_name_is_valid(name))
            abort();
    }
    free(name);
    return 0;
}
