/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_info.c - pure parsers of INFO, CLUSTER INFO and CLUSTER NODES
 * replies (see redis_info.h). Owns nothing; callable from any thread.
 * Fuzzed by tests/fuzz/fuzz_redis_info.c.
 */
#include "collectors/redis_info.h"

#include "exporter/core/num.h"

#include <string.h>

static const char *const redis_field_names[CW_REDIS_NFIELDS] = {
    [CW_REDIS_CONNECTED_CLIENTS] = "connected_clients",
    [CW_REDIS_MAXCLIENTS] = "maxclients",
    [CW_REDIS_REJECTED_CONNECTIONS] = "rejected_connections",
    [CW_REDIS_KEYSPACE_HITS] = "keyspace_hits",
    [CW_REDIS_KEYSPACE_MISSES] = "keyspace_misses",
    [CW_REDIS_EVICTED_KEYS] = "evicted_keys",
    [CW_REDIS_EXPIRED_KEYS] = "expired_keys",
    [CW_REDIS_USED_MEMORY] = "used_memory",
    [CW_REDIS_MAXMEMORY] = "maxmemory",
    [CW_REDIS_UPTIME] = "uptime_in_seconds",
    [CW_REDIS_CLUSTER_ENABLED] = "cluster_enabled",
    [CW_REDIS_CLUSTER_STATE_OK] = "cluster_state",
    [CW_REDIS_CLUSTER_SLOTS_ASSIGNED] = "cluster_slots_assigned",
};

const char *cw_redis_field_name(enum cw_redis_field f)
{
    if ((unsigned)f >= CW_REDIS_NFIELDS)
        return "?";
    return redis_field_names[f];
}

bool cw_redis_parse_u64(const char *s, size_t len, uint64_t *out)
{
    return len <= 20 && cw_parse_u64(s, len, out) == CW_OK;
}

static bool redis_eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    return len == n && memcmp(s, lit, n) == 0;
}

/* redis_next_line() returns the next newline-terminated line of
 * [*p, end) without its "\n" or "\r\n" in *line and *llen, and advances *p.
 * A last line without a newline is not returned. */
static bool redis_next_line(const char **p, const char *end, const char **line, size_t *llen)
{
    const char *nl;

    if (*p >= end)
        return false;
    nl = memchr(*p, '\n', (size_t)(end - *p));
    if (nl == NULL)
        return false;
    *line = *p;
    *llen = (size_t)(nl - *p);
    if (*llen > 0 && (*line)[*llen - 1] == '\r')
        (*llen)--;
    *p = nl + 1;
    return true;
}

/* redis_parse_db() parses "keys=1,expires=0,avg_ttl=0[,more=..]" for "dbN". */
static void redis_parse_db(struct cw_redis_info *out, const char *key, size_t klen, const char *val,
                           size_t vlen)
{
    struct cw_redis_db db = {0, 0, 0};
    uint64_t idx;
    bool have_keys = false, have_expires = false;
    const char *p = val, *end = val + vlen;

    if (!cw_redis_parse_u64(key + 2, klen - 2, &idx) || idx > 0xffffffu)
        return;
    db.index = (unsigned)idx;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *fend = comma != NULL ? comma : end;
        const char *eq = memchr(p, '=', (size_t)(fend - p));

        if (eq != NULL) {
            size_t nlen = (size_t)(eq - p);
            const char *v = eq + 1;
            size_t len = (size_t)(fend - v);

            if (redis_eq(p, nlen, "keys"))
                have_keys = cw_redis_parse_u64(v, len, &db.keys);
            else if (redis_eq(p, nlen, "expires"))
                have_expires = cw_redis_parse_u64(v, len, &db.expires);
        }
        p = fend + (comma != NULL ? 1 : 0);
    }
    if (!have_keys || !have_expires)
        return;
    for (size_t i = 0; i < out->ndb; i++) {
        if (out->db[i].index == db.index) {
            out->dbs_dropped++;
            return;
        }
    }
    if (out->ndb >= CW_REDIS_MAX_DBS) {
        out->dbs_dropped++;
        return;
    }
    out->db[out->ndb++] = db;
}

static bool redis_is_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

int cw_redis_parse_info(const char *text, size_t len, struct cw_redis_info *out)
{
    const char *p = text, *end;
    const char *line;
    size_t llen;
    bool any = false;

    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return CW_EPARSE;
    end = text + len;
    while (redis_next_line(&p, end, &line, &llen)) {
        const char *colon;
        size_t klen, vlen;
        const char *val;

        if (llen == 0 || line[0] == '#')
            continue;
        colon = memchr(line, ':', llen);
        if (colon == NULL || colon == line)
            continue;
        any = true;
        klen = (size_t)(colon - line);
        val = colon + 1;
        vlen = llen - klen - 1;

        if (klen > 2 && line[0] == 'd' && line[1] == 'b') {
            redis_parse_db(out, line, klen, val, vlen);
            continue;
        }
        if (redis_eq(line, klen, "run_id")) {
            if (vlen == CW_REDIS_RUN_ID_LEN && redis_is_hex(val, vlen)) {
                memcpy(out->run_id, val, vlen);
                out->run_id[vlen] = '\0';
            }
            continue;
        }
        for (unsigned f = 0; f < CW_REDIS_NFIELDS; f++) {
            uint64_t v;

            if (!redis_eq(line, klen, redis_field_names[f]))
                continue;
            if (f == CW_REDIS_CLUSTER_STATE_OK) {
                v = redis_eq(val, vlen, "ok") ? 1 : 0;
            } else if (!cw_redis_parse_u64(val, vlen, &v)) {
                out->present &= ~(1u << f); /* a later bad value voids an earlier one */
                break;
            }
            out->v[f] = v;
            out->present |= 1u << f;
            break;
        }
    }
    return any ? CW_OK : CW_EPARSE;
}

bool cw_redis_hit_ratio(uint64_t prev_hits, uint64_t prev_misses, uint64_t hits, uint64_t misses,
                        bool restarted, double *ratio)
{
    uint64_t dh, dm;

    if (restarted || hits < prev_hits || misses < prev_misses) {
        /* A reset: what the server counts now happened since it. */
        dh = hits;
        dm = misses;
    } else {
        dh = hits - prev_hits;
        dm = misses - prev_misses;
    }
    if (dh == 0 && dm == 0)
        return false;
    *ratio = (double)dh / ((double)dh + (double)dm);
    return true;
}

/* ---- CLUSTER NODES ---------------------------------------------------------
 * <id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv>
 * <config-epoch> <link-state> <slot> <slot> ... ; a slot is "N", "A-B", or
 * "[N->-id]" / "[N-<-id]" while migrating or importing. */

#define REDIS_NODE_FIELDS 8

/* redis_token() returns the next space-separated token of [*p, end). */
static bool redis_token(const char **p, const char *end, const char **tok, size_t *tlen)
{
    while (*p < end && **p == ' ')
        (*p)++;
    if (*p >= end)
        return false;
    *tok = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    *tlen = (size_t)(*p - *tok);
    return true;
}

/* redis_has_flag() tells whether the comma-separated 'flags' holds 'flag'. */
static bool redis_has_flag(const char *flags, size_t len, const char *flag)
{
    const char *p = flags, *end = flags + len;

    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *fend = comma != NULL ? comma : end;

        if (redis_eq(p, (size_t)(fend - p), flag))
            return true;
        p = fend + 1;
    }
    return false;
}

/* redis_parse_addr() splits "host:port@cport[,hostname]" (IPv6 hosts are
 * written without brackets, so the port follows the last colon). */
static bool redis_parse_addr(const char *a, size_t len, struct cw_redis_node *n)
{
    const char *at = memchr(a, '@', len);
    const char *end = at != NULL ? at : a + len;
    const char *colon = NULL;
    uint64_t port;
    size_t hlen;

    for (const char *q = a; q < end; q++) {
        if (*q == ':')
            colon = q;
    }
    if (colon == NULL)
        return false;
    hlen = (size_t)(colon - a);
    if (!cw_redis_parse_u64(colon + 1, (size_t)(end - colon - 1), &port) || port > 65535)
        return false;
    if (hlen >= sizeof(n->host) || memchr(a, '\0', hlen) != NULL)
        return false;
    memcpy(n->host, a, hlen);
    n->host[hlen] = '\0';
    n->port = (unsigned)port;
    return true;
}

/* redis_slot_count() returns the slots of one slot token, 0 for brackets
 * and malformed tokens. */
static unsigned redis_slot_count(const char *t, size_t len)
{
    const char *dash;
    uint64_t a, b;

    if (len == 0 || t[0] == '[')
        return 0;
    dash = memchr(t, '-', len);
    if (dash == NULL)
        return cw_redis_parse_u64(t, len, &a) && a < 16384 ? 1 : 0;
    if (!cw_redis_parse_u64(t, (size_t)(dash - t), &a) ||
        !cw_redis_parse_u64(dash + 1, len - (size_t)(dash - t) - 1, &b) || a > b || b >= 16384)
        return 0;
    return (unsigned)(b - a + 1);
}

int cw_redis_parse_nodes(const char *text, size_t len, struct cw_redis_node *out, size_t max,
                         size_t *n, size_t *dropped)
{
    const char *p = text, *end;
    const char *line;
    size_t llen;

    *n = 0;
    *dropped = 0;
    if (text == NULL)
        return CW_EPARSE;
    end = text + len;
    while (redis_next_line(&p, end, &line, &llen)) {
        struct cw_redis_node node;
        const char *q = line, *lend = line + llen;
        const char *tok[REDIS_NODE_FIELDS];
        size_t tlen[REDIS_NODE_FIELDS];
        size_t i;
        const char *s;
        size_t slen;

        for (i = 0; i < REDIS_NODE_FIELDS; i++) {
            if (!redis_token(&q, lend, &tok[i], &tlen[i]))
                break;
        }
        if (i < REDIS_NODE_FIELDS)
            continue;
        memset(&node, 0, sizeof(node));
        if (tlen[0] > CW_REDIS_NODE_ID_MAX || !redis_is_hex(tok[0], tlen[0]))
            continue;
        memcpy(node.id, tok[0], tlen[0]);
        node.id[tlen[0]] = '\0';
        if (!redis_parse_addr(tok[1], tlen[1], &node))
            continue;
        node.myself = redis_has_flag(tok[2], tlen[2], "myself");
        node.master = redis_has_flag(tok[2], tlen[2], "master");
        node.failing =
            redis_has_flag(tok[2], tlen[2], "fail") || redis_has_flag(tok[2], tlen[2], "fail?") ||
            redis_has_flag(tok[2], tlen[2], "handshake") ||
            redis_has_flag(tok[2], tlen[2], "noaddr") || node.host[0] == '\0' || node.port == 0;
        while (redis_token(&q, lend, &s, &slen)) {
            unsigned c = redis_slot_count(s, slen);

            if (node.slots + c <= 16384)
                node.slots += c;
        }
        if (*n >= max) {
            (*dropped)++;
            continue;
        }
        out[(*n)++] = node;
    }
    return *n > 0 || *dropped > 0 ? CW_OK : CW_EPARSE;
}
