/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_info.h - pure parsers for the text replies the redis check reads:
 * INFO (and CLUSTER INFO, which has the same key:value shape) and CLUSTER
 * NODES.
 *
 * No I/O, no allocation, no global state: every function works on the bytes
 * it is given and fills a caller-owned struct, so any thread may call them.
 * Input need not be NUL-terminated and may hold anything: unknown keys,
 * CRLF or LF line ends, garbage lines and NUL bytes are skipped, and only
 * lines ended by a newline are used (a reply cut short loses its last line
 * rather than yielding a shortened number).
 */
#ifndef CW_REDIS_INFO_H
#define CW_REDIS_INFO_H

#include "exporter/core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The INFO and CLUSTER INFO fields the check uses. */
enum cw_redis_field {
    CW_REDIS_CONNECTED_CLIENTS = 0,  /* clients */
    CW_REDIS_MAXCLIENTS,             /* clients, Redis >= 7.0 */
    CW_REDIS_REJECTED_CONNECTIONS,   /* stats */
    CW_REDIS_KEYSPACE_HITS,          /* stats */
    CW_REDIS_KEYSPACE_MISSES,        /* stats */
    CW_REDIS_EVICTED_KEYS,           /* stats */
    CW_REDIS_EXPIRED_KEYS,           /* stats */
    CW_REDIS_USED_MEMORY,            /* memory */
    CW_REDIS_MAXMEMORY,              /* memory */
    CW_REDIS_UPTIME,                 /* server: uptime_in_seconds */
    CW_REDIS_CLUSTER_ENABLED,        /* cluster: 0 or 1 */
    CW_REDIS_CLUSTER_STATE_OK,       /* CLUSTER INFO cluster_state: 1 for "ok", else 0 */
    CW_REDIS_CLUSTER_SLOTS_ASSIGNED, /* CLUSTER INFO */
    CW_REDIS_NFIELDS
};

#define CW_REDIS_RUN_ID_LEN 40  /* hex digits of run_id */
#define CW_REDIS_MAX_DBS    256 /* keyspace lines kept; more are counted in dbs_dropped */

struct cw_redis_db {
    unsigned index;   /* N of "dbN" */
    uint64_t keys;    /* keys=  */
    uint64_t expires; /* expires= (keys with a TTL) */
};

struct cw_redis_info {
    uint32_t present; /* bit (1u << field) for every field found */
    uint64_t v[CW_REDIS_NFIELDS];
    char run_id[CW_REDIS_RUN_ID_LEN + 1]; /* "" when absent or malformed */
    struct cw_redis_db db[CW_REDIS_MAX_DBS];
    size_t ndb;         /* valid entries of db[], in reply order, indexes unique */
    size_t dbs_dropped; /* well-formed db lines past CW_REDIS_MAX_DBS or repeated */
};

/* cw_redis_parse_info() parses 'len' bytes of an INFO or CLUSTER INFO reply
 * into *out (zeroed first). Unknown keys, sections and malformed lines are
 * ignored; a numeric field whose value is not a plain unsigned decimal that
 * fits 64 bits is treated as absent. Returns CW_OK when at least one
 * "key:value" line was found, else CW_EPARSE. */
int cw_redis_parse_info(const char *text, size_t len, struct cw_redis_info *out);

/* cw_redis_info_has() tells whether 'f' was found. */
static inline bool cw_redis_info_has(const struct cw_redis_info *in, enum cw_redis_field f)
{
    return (in->present & (1u << f)) != 0;
}

/* cw_redis_parse_u64() parses exactly 'len' bytes of unsigned decimal (1 to
 * 20 digits, no sign, no space) that fits 64 bits. */
bool cw_redis_parse_u64(const char *s, size_t len, uint64_t *out);

/* cw_redis_field_name() returns the INFO key of 'f' ("?" when out of range). */
const char *cw_redis_field_name(enum cw_redis_field f);

/* cw_redis_hit_ratio() computes the hit ratio between two snapshots of the
 * counters. When the server restarted in between ('restarted': its run_id
 * changed) or a counter went down (CONFIG RESETSTAT), the current values are
 * the lookups since the reset. Returns false (no ratio) when there were no
 * lookups in the interval; else true with *ratio in [0, 1]. */
bool cw_redis_hit_ratio(uint64_t prev_hits, uint64_t prev_misses, uint64_t hits, uint64_t misses,
                        bool restarted, double *ratio);

/* One node of CLUSTER NODES. */
#define CW_REDIS_NODE_ID_MAX   64  /* node ids are 40 hex digits; longer ones are refused */
#define CW_REDIS_NODE_HOST_MAX 256 /* bytes of host, NUL included */

struct cw_redis_node {
    char id[CW_REDIS_NODE_ID_MAX + 1];
    char host[CW_REDIS_NODE_HOST_MAX]; /* IPv4, IPv6 (no brackets) or name; "" for noaddr */
    unsigned port;                     /* client port; 0 when unknown */
    bool myself;                       /* the node that answered */
    bool master;
    bool failing;   /* flags fail, fail? (pfail), handshake or noaddr */
    unsigned slots; /* slots served (ranges and single slots; importing/migrating not counted) */
};

/* cw_redis_parse_nodes() parses 'len' bytes of a CLUSTER NODES reply into
 * out[0..max-1]; *n receives the number of nodes stored and *dropped the
 * number of well-formed node lines that did not fit. Malformed lines are
 * skipped. Returns CW_OK when at least one node was parsed, else CW_EPARSE. */
int cw_redis_parse_nodes(const char *text, size_t len, struct cw_redis_node *out, size_t max,
                         size_t *n, size_t *dropped);

#endif
