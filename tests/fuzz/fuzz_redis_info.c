/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_redis_info.c - libFuzzer target for the parsers of
 * collectors/redis_info.c: INFO / CLUSTER INFO and CLUSTER NODES, on the
 * same input, with their invariants checked (bounded counts, NUL-terminated
 * strings, slots within 16384, ratios in [0, 1]).
 *
 * tests/fuzz/replay_main.c replays the corpus in tests/fuzz/corpus/redis_info/
 * (the fixtures captured from redis-server 7.0 plus crafted ones) as a plain
 * test without clang. Single-threaded; owns nothing between inputs.
 */
#include "collectors/redis_info.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NODES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cw_redis_info in; /* large; the fuzzer is single-threaded */
    struct cw_redis_node nodes[FUZZ_NODES];
    const char *text = (const char *)data;
    size_t n = 0, dropped = 0;
    int rc;

    rc = cw_redis_parse_info(text, size, &in);
    if (rc != CW_OK && rc != CW_EPARSE)
        abort();
    if (in.ndb > CW_REDIS_MAX_DBS || strlen(in.run_id) > CW_REDIS_RUN_ID_LEN)
        abort();
    if (rc == CW_EPARSE && in.present != 0)
        abort();
    for (size_t i = 0; i < in.ndb; i++) {
        for (size_t j = i + 1; j < in.ndb; j++) {
            if (in.db[i].index == in.db[j].index)
                abort();
        }
    }
    if (cw_redis_info_has(&in, CW_REDIS_CLUSTER_STATE_OK) && in.v[CW_REDIS_CLUSTER_STATE_OK] > 1)
        abort();
    if (cw_redis_info_has(&in, CW_REDIS_KEYSPACE_HITS) &&
        cw_redis_info_has(&in, CW_REDIS_KEYSPACE_MISSES)) {
        double r;

        if (cw_redis_hit_ratio(in.v[CW_REDIS_KEYSPACE_MISSES], in.v[CW_REDIS_KEYSPACE_HITS],
                               in.v[CW_REDIS_KEYSPACE_HITS], in.v[CW_REDIS_KEYSPACE_MISSES], false,
                               &r) &&
            !(r >= 0 && r <= 1))
            abort();
    }

    rc = cw_redis_parse_nodes(text, size, nodes, FUZZ_NODES, &n, &dropped);
    if (rc != CW_OK && rc != CW_EPARSE)
        abort();
    if (n > FUZZ_NODES || (rc == CW_EPARSE && (n != 0 || dropped != 0)))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (strlen(nodes[i].id) > CW_REDIS_NODE_ID_MAX ||
            strlen(nodes[i].host) >= CW_REDIS_NODE_HOST_MAX || nodes[i].port > 65535 ||
            nodes[i].slots > 16384)
            abort();
    }
    return 0;
}
