/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis.c - the "redis" check: hit ratio, evictions, expiries, client and
 * memory pressure, keys per database and, on a cluster, state, slots and
 * keys per master node.
 *
 * Each instance owns one persistent hiredis connection to its address and,
 * in cluster mode, one to every other master named by CLUSTER NODES. A run
 * is two round trips on an established connection: a timed PING, then one
 * pipeline of INFO (the six sections it reads, in one command), CONFIG GET
 * maxclients, CONFIG GET maxmemory and, on a cluster, CLUSTER INFO and
 * CLUSTER NODES; the masters' DBSIZE are then asked all at once.
 *
 * The connection pipeline (connect through the network layer, AUTH, the
 * reconnect backoff, pipelined exchanges on many connections at once, all
 * bounded by the run's deadline) is redis_conn.c. A connection found dead
 * when a run starts (server restart, idle timeout) is replaced once within
 * the run.
 *
 * Parsing is in redis_info.c (pure, fuzzed). The state, connections
 * included, is used by one scheduler worker at a time.
 */
#include "collectors/redis_conn.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REDIS_DEFAULT_PORT 6379
#define REDIS_CONFIG_RETRY CW_MIN(5) /* after CONFIG was refused */

/* Another master of the cluster. */
struct redis_node {
    char host[CW_REDIS_NODE_HOST_MAX];
    unsigned port;
    struct cw_redis_conn conn; /* owned: the persistent connection to the master */
    bool seen;                 /* listed by the last CLUSTER NODES */
};

struct redis_state {
    /* options */
    struct cw_hostport address;     /* owned (option table) */
    char *username;                 /* owned (option table) */
    struct cw_secret password;      /* owned (option table): ${ENV} */
    struct cw_secret password_file; /* owned (option table): read at load */
    bool cluster;                   /* the value of "cluster" when set */
    bool cluster_set;               /* "cluster" was written; else detected */

    struct cw_redis_conn main; /* owned: the connection to 'address' */
    struct cw_redis_auth auth; /* borrowed pointers: username, password or password_file */

    /* previous run's counters: the hit ratio is over the last interval */
    bool have_prev;
    uint64_t prev_hits, prev_misses;
    char prev_run_id[CW_REDIS_RUN_ID_LEN + 1];

    bool info_single;   /* server refused INFO with several sections (< 7.0): plain INFO */
    bool cluster_known; /* INFO said cluster_enabled:1 once: send the CLUSTER commands */
    cw_mono config_refused_at;
    bool config_refused;

    struct redis_node *nodes; /* owned: other masters, persistent connections */
    size_t nnodes;
    struct cw_redis_node *scratch_nodes; /* owned: REDIS_MAX_NODES, on first cluster run */
    struct cw_redis_info info;           /* scratch of one run */
    struct cw_redis_info cinfo;          /* scratch: CLUSTER INFO */
};

static const struct cw_opt redis_opts[] = {
    CW_OPT("address", CW_OPT_T_HOSTPORT, struct redis_state, address, NULL, REDIS_DEFAULT_PORT, 0,
           CW_OPT_REQUIRED),
    CW_OPT("username", CW_OPT_T_STRING, struct redis_state, username, NULL, 0, 0, 0),
    CW_OPT("password", CW_OPT_T_SECRET, struct redis_state, password, NULL, 0, 0, 0),
    CW_OPT("password_file", CW_OPT_T_SECRET_FILE, struct redis_state, password_file, NULL, 0, 0, 0),
    CW_OPT("cluster", CW_OPT_T_BOOL, struct redis_state, cluster, "false", 0, 0, 0),
    CW_OPT_END,
};

/* ---- Metric families ------------------------------------------------------ */

static const struct cw_desc desc_up = {
    .name = "connwatch_redis_up",
    .help = "1 if the server accepted the connection and the credentials and answered PING.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_hits = {
    .name = "connwatch_redis_keyspace_hits_total",
    .help = "Successful key lookups since the server started (INFO keyspace_hits).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_misses = {
    .name = "connwatch_redis_keyspace_misses_total",
    .help = "Failed key lookups since the server started (INFO keyspace_misses).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_hit_ratio = {
    .name = "connwatch_redis_hit_ratio",
    .help = "Key lookups that found the key, per lookup, over the last interval; absent when "
            "there was no lookup.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_evicted = {
    .name = "connwatch_redis_evicted_keys_total",
    .help = "Keys evicted because of the maxmemory limit (INFO evicted_keys).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_expired = {
    .name = "connwatch_redis_expired_keys_total",
    .help = "Keys deleted because their TTL passed (INFO expired_keys).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_clients = {
    .name = "connwatch_redis_connected_clients",
    .help = "Client connections, replicas excluded (INFO connected_clients).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_max_clients = {
    .name = "connwatch_redis_max_clients",
    .help = "Most client connections the server accepts (maxclients).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_rejected = {
    .name = "connwatch_redis_rejected_connections_total",
    .help = "Connections refused because maxclients was reached (INFO rejected_connections).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_mem_used = {
    .name = "connwatch_redis_memory_used_bytes",
    .help = "Memory allocated by the server (INFO used_memory).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_mem_max = {
    .name = "connwatch_redis_memory_max_bytes",
    .help = "The maxmemory limit; 0 means no limit.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_keys = {
    .name = "connwatch_redis_keys",
    .help = "Keys in the database.",
    .type = CW_GAUGE,
    .labels = {"db"},
    .nlabels = 1,
};
static const struct cw_desc desc_keys_expiry = {
    .name = "connwatch_redis_keys_with_expiry",
    .help = "Keys with a TTL in the database.",
    .type = CW_GAUGE,
    .labels = {"db"},
    .nlabels = 1,
};
static const struct cw_desc desc_ping = {
    .name = "connwatch_redis_ping_seconds",
    .help = "Round trip of a PING on the check's connection.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_cluster_ok = {
    .name = "connwatch_redis_cluster_state_ok",
    .help = "1 if the contacted node reports cluster_state:ok.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_cluster_slots = {
    .name = "connwatch_redis_cluster_slots_assigned",
    .help = "Hash slots assigned to a node of the cluster (of 16384).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_node_keys = {
    .name = "connwatch_redis_cluster_node_keys",
    .help = "Keys held by each master node of the cluster.",
    .type = CW_GAUGE,
    .labels = {"node"},
    .nlabels = 1,
};
static const struct cw_desc desc_node_slots = {
    .name = "connwatch_redis_cluster_node_slots",
    .help = "Hash slots served by each master node of the cluster.",
    .type = CW_GAUGE,
    .labels = {"node"},
    .nlabels = 1,
};

/* ---- One run -------------------------------------------------------------- */

/* redis_ping() sends a PING and times it. Returns true on PONG. An I/O
 * error on a connection made by an earlier run ('fresh' false) only closes
 * it and sets *stale: the server restarted or dropped an idle client, and
 * the caller reconnects at once. */
static bool redis_ping(struct redis_state *st, struct cw_run *run, bool fresh, cw_mono deadline,
                       double *secs, bool *stale)
{
    struct cw_redis_xfer x, *xp = &x;
    cw_mono t0;
    bool ok = false;

    *stale = false;
    cw_redis_xfer_init(&x, &st->main);
    cw_redis_xfer_cmd(&x, "PING", NULL, NULL);
    t0 = cw_now();
    cw_redis_exchange(&xp, 1, deadline);
    *secs = cw_seconds(cw_now() - t0);
    if (x.failed && !fresh && x.reason != CW_REASON_TIMEOUT) {
        *stale = true;
        cw_redis_conn_close(&st->main);
    } else if (x.failed) {
        cw_redis_conn_failed(&st->main, run, x.reason, "PING: %s", x.err);
    } else if (x.r[0]->type == REDIS_REPLY_ERROR) {
        /* NOAUTH, LOADING, MASTERDOWN...: answered, but not usable. */
        cw_redis_conn_failed(&st->main, run, cw_redis_err_reason(x.r[0]->str), "PING: %.120s",
                             x.r[0]->str);
    } else if (x.r[0]->type == REDIS_REPLY_STATUS && strcmp(x.r[0]->str, "PONG") == 0) {
        cw_redis_conn_ok(&st->main, run);
        ok = true;
    } else {
        cw_redis_conn_failed(&st->main, run, CW_REASON_PROTOCOL, "PING: unexpected reply type %d",
                             x.r[0]->type);
    }
    cw_redis_xfer_reset(&x);
    return ok;
}

/* redis_config_value() reads a CONFIG GET reply ["name", "value"]. Returns
 * 1 with *v, 0 when the server has no such parameter, -1 on an error reply. */
static int redis_config_value(const redisReply *r, uint64_t *v)
{
    if (r->type == REDIS_REPLY_ERROR)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return 0;
    return cw_redis_parse_u64(r->element[1]->str, r->element[1]->len, v) ? 1 : 0;
}

static void redis_emit_info(struct redis_state *st, struct cw_run *run,
                            const struct cw_redis_info *in)
{
    static const struct {
        enum cw_redis_field f;
        const struct cw_desc *d;
    } direct[] = {
        {CW_REDIS_KEYSPACE_HITS, &desc_hits},
        {CW_REDIS_KEYSPACE_MISSES, &desc_misses},
        {CW_REDIS_EVICTED_KEYS, &desc_evicted},
        {CW_REDIS_EXPIRED_KEYS, &desc_expired},
        {CW_REDIS_CONNECTED_CLIENTS, &desc_clients},
        {CW_REDIS_REJECTED_CONNECTIONS, &desc_rejected},
        {CW_REDIS_USED_MEMORY, &desc_mem_used},
    };
    bool have_db0 = false;
    double ratio;

    for (size_t i = 0; i < CW_ARRAY_LEN(direct); i++) {
        if (cw_redis_info_has(in, direct[i].f))
            cw_emit(run, direct[i].d, (double)in->v[direct[i].f], NULL);
        else
            cw_run_fail(run, CW_REASON_PROTOCOL, "INFO reply has no %s",
                        cw_redis_field_name(direct[i].f));
    }
    for (size_t i = 0; i < in->ndb; i++) {
        char db[16];
        const char *lv[1] = {db};

        snprintf(db, sizeof(db), "db%u", in->db[i].index);
        have_db0 |= in->db[i].index == 0;
        cw_emit(run, &desc_keys, (double)in->db[i].keys, lv);
        cw_emit(run, &desc_keys_expiry, (double)in->db[i].expires, lv);
    }
    if (!have_db0) {
        /* INFO lists only non-empty databases; db0 always exists. */
        const char *lv[1] = {"db0"};

        cw_emit(run, &desc_keys, 0, lv);
        cw_emit(run, &desc_keys_expiry, 0, lv);
    }

    if (!cw_redis_info_has(in, CW_REDIS_KEYSPACE_HITS) ||
        !cw_redis_info_has(in, CW_REDIS_KEYSPACE_MISSES))
        return;
    if (st->have_prev) {
        bool restarted = st->prev_run_id[0] != '\0' && in->run_id[0] != '\0' &&
                         strcmp(st->prev_run_id, in->run_id) != 0;

        if (restarted)
            cw_run_log(run, CW_LOG_INFO, "server restarted", "run_id", in->run_id, (char *)NULL);
        if (cw_redis_hit_ratio(st->prev_hits, st->prev_misses, in->v[CW_REDIS_KEYSPACE_HITS],
                               in->v[CW_REDIS_KEYSPACE_MISSES], restarted, &ratio))
            cw_emit(run, &desc_hit_ratio, ratio, NULL);
    }
    st->have_prev = true;
    st->prev_hits = in->v[CW_REDIS_KEYSPACE_HITS];
    st->prev_misses = in->v[CW_REDIS_KEYSPACE_MISSES];
    memcpy(st->prev_run_id, in->run_id, sizeof(st->prev_run_id));
}

static void redis_node_label(char *buf, size_t len, const char *host, unsigned port)
{
    if (strchr(host, ':') != NULL)
        snprintf(buf, len, "[%s]:%u", host, port);
    else
        snprintf(buf, len, "%s:%u", host, port);
}

/* redis_node_find() returns the pooled node host:port, adding it. */
static struct redis_node *redis_node_find(struct redis_state *st, const char *host, unsigned port)
{
    struct redis_node *grown;

    for (size_t i = 0; i < st->nnodes; i++) {
        if (st->nodes[i].port == port && strcmp(st->nodes[i].host, host) == 0)
            return &st->nodes[i];
    }
    if (st->nnodes >= REDIS_MAX_NODES)
        return NULL;
    grown = realloc(st->nodes, (st->nnodes + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    st->nodes = grown;
    memset(&st->nodes[st->nnodes], 0, sizeof(st->nodes[0]));
    snprintf(st->nodes[st->nnodes].host, sizeof(st->nodes[0].host), "%s", host);
    st->nodes[st->nnodes].port = port;
    redis_node_label(st->nodes[st->nnodes].conn.node, sizeof(st->nodes[0].conn.node), host, port);
    return &st->nodes[st->nnodes++];
}

/* redis_nodes_prune() closes the connections of nodes no longer listed. */
static void redis_nodes_prune(struct redis_state *st)
{
    size_t k = 0;

    for (size_t i = 0; i < st->nnodes; i++) {
        if (st->nodes[i].seen) {
            st->nodes[k++] = st->nodes[i]; /* the connection moves with its node */
            continue;
        }
        cw_redis_conn_release(&st->nodes[i].conn);
    }
    st->nnodes = k;
}

/* The DBSIZE round of one cluster run: a transfer per other master. */
struct redis_round {
    struct cw_redis_xfer *xfers; /* owned: one per master asked */
    struct cw_redis_xfer **xps;  /* owned: the transfers of the current exchange */
    size_t *owner;               /* owned: index into st->nodes of each transfer (nodes may move) */
    size_t nx;
};

/* redis_cluster_state() checks the CLUSTER INFO and CLUSTER NODES replies,
 * emits the cluster state and slots and parses the nodes into
 * st->scratch_nodes. Returns how many nodes were read and sets *dropped to
 * those left out, or fails the run and returns 0. */
static size_t redis_cluster_state(struct redis_state *st, struct cw_run *run,
                                  const redisReply *cinfo, const redisReply *cnodes,
                                  size_t *dropped)
{
    size_t nn = 0;

    if (cinfo->type == REDIS_REPLY_ERROR || cnodes->type == REDIS_REPLY_ERROR) {
        const redisReply *e = cinfo->type == REDIS_REPLY_ERROR ? cinfo : cnodes;

        cw_run_fail(run, cw_redis_err_reason(e->str), "CLUSTER: %.120s", e->str);
        return 0;
    }
    if (cinfo->type != REDIS_REPLY_STRING || cnodes->type != REDIS_REPLY_STRING ||
        cw_redis_parse_info(cinfo->str, cinfo->len, &st->cinfo) != CW_OK ||
        !cw_redis_info_has(&st->cinfo, CW_REDIS_CLUSTER_STATE_OK)) {
        cw_run_fail(run, CW_REASON_PROTOCOL, "CLUSTER INFO: unexpected reply");
        return 0;
    }
    cw_emit(run, &desc_cluster_ok, (double)st->cinfo.v[CW_REDIS_CLUSTER_STATE_OK], NULL);
    if (cw_redis_info_has(&st->cinfo, CW_REDIS_CLUSTER_SLOTS_ASSIGNED))
        cw_emit(run, &desc_cluster_slots, (double)st->cinfo.v[CW_REDIS_CLUSTER_SLOTS_ASSIGNED],
                NULL);

    if (st->scratch_nodes == NULL) {
        st->scratch_nodes = calloc(REDIS_MAX_NODES, sizeof(*st->scratch_nodes));
        if (st->scratch_nodes == NULL) {
            cw_run_fail(run, CW_REASON_INTERNAL, "out of memory");
            return 0;
        }
    }
    if (cw_redis_parse_nodes(cnodes->str, cnodes->len, st->scratch_nodes, REDIS_MAX_NODES, &nn,
                             dropped) != CW_OK) {
        cw_run_fail(run, CW_REASON_PROTOCOL, "CLUSTER NODES: no node in the reply");
        return 0;
    }
    return nn;
}

/* redis_cluster_queue() emits every master's slots (and this node's keys),
 * connects to every other master if needed and queues a DBSIZE on it. */
static void redis_cluster_queue(struct redis_state *st, struct cw_run *run, size_t nn,
                                uint64_t self_keys, struct redis_round *rd)
{
    cw_mono deadline = cw_run_deadline(run);

    for (size_t i = 0; i < st->nnodes; i++)
        st->nodes[i].seen = false;
    for (size_t i = 0; i < nn; i++) {
        const struct cw_redis_node *n = &st->scratch_nodes[i];
        struct redis_node *pn;
        char label[CW_REDIS_NODE_HOST_MAX + 16];
        const char *lv[1] = {label};
        bool fresh;

        if (!n->master || n->host[0] == '\0')
            continue;
        redis_node_label(label, sizeof(label), n->host, n->port);
        cw_emit(run, &desc_node_slots, n->slots, lv);
        if (n->myself) {
            cw_emit(run, &desc_node_keys, (double)self_keys, lv);
            continue;
        }
        pn = redis_node_find(st, n->host, n->port);
        if (pn == NULL) {
            cw_run_fail(run, CW_REASON_INTERNAL, "too many cluster nodes or out of memory");
            continue;
        }
        if (pn->seen)
            continue; /* listed twice: asked once */
        pn->seen = true;
        if (n->failing) {
            cw_run_fail(run, CW_REASON_PROTOCOL, "cluster node %s is failing", label);
            continue;
        }
        if (!cw_redis_conn_ensure(&pn->conn, run, &st->auth, n->host, n->port, deadline, false,
                                  &fresh)) {
            cw_run_fail(run, pn->conn.last_reason, "node %s: %s", label, pn->conn.last_err);
            continue;
        }
        cw_redis_xfer_init(&rd->xfers[rd->nx], &pn->conn);
        rd->xfers[rd->nx].fresh = fresh;
        cw_redis_xfer_cmd(&rd->xfers[rd->nx], "DBSIZE", NULL, NULL);
        rd->xps[rd->nx] = &rd->xfers[rd->nx];
        rd->owner[rd->nx++] = (size_t)(pn - st->nodes);
    }
    /* st->nodes may have moved while it grew: point at the final places. */
    for (size_t i = 0; i < rd->nx; i++)
        rd->xfers[i].conn = &st->nodes[rd->owner[i]].conn;
}

/* redis_cluster_retry() reconnects once, and asks again, every master
 * that restarted or dropped the idle connection since the last run, as
 * for the main connection. */
static void redis_cluster_retry(struct redis_state *st, struct cw_run *run, struct redis_round *rd)
{
    size_t nr = 0;

    for (size_t i = 0; i < rd->nx; i++) {
        struct cw_redis_xfer *x = &rd->xfers[i];
        struct redis_node *pn = &st->nodes[rd->owner[i]];
        bool fresh;

        if (!x->failed || x->fresh || x->reason == CW_REASON_TIMEOUT)
            continue;
        cw_redis_xfer_reset(x);
        cw_redis_conn_close(&pn->conn);
        cw_redis_xfer_init(x, &pn->conn);
        if (!cw_redis_conn_ensure(&pn->conn, run, &st->auth, pn->host, pn->port,
                                  cw_run_deadline(run), true, &fresh)) {
            x->failed = true;
            x->reason = pn->conn.last_reason;
            snprintf(x->err, sizeof(x->err), "%s", pn->conn.last_err);
            continue;
        }
        x->fresh = true;
        cw_redis_xfer_cmd(x, "DBSIZE", NULL, NULL);
        rd->xps[nr++] = x;
    }
    cw_redis_exchange(rd->xps, nr, cw_run_deadline(run));
}

/* redis_cluster_collect() emits the masters' key counts from their DBSIZE
 * replies, or fails the run with the node's reason. */
static void redis_cluster_collect(struct redis_state *st, struct cw_run *run,
                                  struct redis_round *rd)
{
    for (size_t i = 0; i < rd->nx; i++) {
        struct cw_redis_xfer *x = &rd->xfers[i];
        struct redis_node *pn = &st->nodes[rd->owner[i]];
        char label[CW_REDIS_NODE_HOST_MAX + 16];
        const char *lv[1] = {label};

        redis_node_label(label, sizeof(label), pn->host, pn->port);
        if (x->failed) {
            if (pn->conn.ctx != NULL) /* else the reconnect failed and said so */
                cw_redis_conn_failed(&pn->conn, run, x->reason, "DBSIZE: %s", x->err);
            cw_run_fail(run, x->reason, "node %s: %s", label, x->err);
        } else if (x->r[0]->type == REDIS_REPLY_INTEGER && x->r[0]->integer >= 0) {
            cw_redis_conn_ok(&pn->conn, run);
            cw_emit(run, &desc_node_keys, (double)x->r[0]->integer, lv);
        } else {
            bool err = x->r[0]->type == REDIS_REPLY_ERROR;

            cw_run_fail(run, err ? cw_redis_err_reason(x->r[0]->str) : CW_REASON_PROTOCOL,
                        "node %s: DBSIZE: %.120s", label, err ? x->r[0]->str : "unexpected reply");
        }
        cw_redis_xfer_reset(x);
    }
}

/* redis_run_cluster() emits the cluster series from the CLUSTER INFO and
 * CLUSTER NODES replies and the DBSIZE of every other master. */
static void redis_run_cluster(struct redis_state *st, struct cw_run *run, const redisReply *cinfo,
                              const redisReply *cnodes, uint64_t self_keys)
{
    struct redis_round rd = {0};
    size_t dropped = 0, nn;

    nn = redis_cluster_state(st, run, cinfo, cnodes, &dropped);
    if (nn == 0)
        return;
    rd.xfers = calloc(nn + 1, sizeof(*rd.xfers));
    rd.xps = calloc(nn + 1, sizeof(*rd.xps));
    rd.owner = calloc(nn + 1, sizeof(*rd.owner));
    if (rd.xfers == NULL || rd.xps == NULL || rd.owner == NULL) {
        cw_run_fail(run, CW_REASON_INTERNAL, "out of memory");
        goto out_free;
    }
    redis_cluster_queue(st, run, nn, self_keys, &rd);
    cw_redis_exchange(rd.xps, rd.nx, cw_run_deadline(run));
    redis_cluster_retry(st, run, &rd);
    redis_cluster_collect(st, run, &rd);
    redis_nodes_prune(st);
    if (dropped > 0)
        cw_run_fail(run, CW_REASON_INTERNAL, "CLUSTER NODES lists more than %d nodes",
                    REDIS_MAX_NODES);

out_free:
    free(rd.xfers);
    free(rd.xps);
    free(rd.owner);
}

/* redis_up() makes sure the main connection is up (connecting, or finding
 * it dead and replacing it once) and answers PING. Returns false when it is
 * not, the reason being in st->main; *fresh tells whether it was made now. */
static bool redis_up(struct redis_state *st, struct cw_run *run, double *ping, bool *fresh)
{
    cw_mono deadline = cw_run_deadline(run);
    bool stale = false;

    *fresh = false;
    if (!cw_redis_conn_ensure(&st->main, run, &st->auth, st->address.host, st->address.port,
                              deadline, false, fresh))
        return false;
    if (redis_ping(st, run, *fresh, deadline, ping, &stale))
        return true;
    if (!stale)
        return false;
    return cw_redis_conn_ensure(&st->main, run, &st->auth, st->address.host, st->address.port,
                                deadline, true, fresh) &&
           redis_ping(st, run, *fresh, deadline, ping, &stale);
}

/* Where the replies of the main pipeline are; 0 means not asked (INFO is
 * always first). */
struct redis_pipe {
    bool config, cluster;
    size_t maxcl, maxmem, cinfo, cnodes;
};

/* redis_queue() queues the main pipeline on 'x': INFO, then CONFIG GET
 * maxclients/maxmemory unless CONFIG was refused lately, then the CLUSTER
 * commands when the server is (or is configured as) a cluster node. */
static void redis_queue(struct redis_state *st, struct cw_redis_xfer *x, struct redis_pipe *p)
{
    memset(p, 0, sizeof(*p));
    p->config = !st->config_refused || cw_now() - st->config_refused_at >= REDIS_CONFIG_RETRY;
    p->cluster = st->cluster_set ? st->cluster : st->cluster_known;
    cw_redis_xfer_init(x, &st->main);
    /* One INFO with the six sections read (Redis >= 7.0): one reply of
     * ~3.5 KiB instead of six commands, or of plain INFO's ~5 KiB with
     * sections nobody reads (about 21 us in Redis against 190 us for INFO
     * ALL, see bench/README.md). */
    if (st->info_single)
        cw_redis_xfer_cmd(x, "INFO", NULL, NULL);
    else
        cw_redis_xfer_append(
            x, 7,
            (const char *[]){"INFO", "server", "clients", "memory", "stats", "keyspace", "cluster"},
            (const size_t[]){4, 6, 7, 6, 5, 8, 7});
    if (p->config) {
        p->maxcl = x->want;
        cw_redis_xfer_cmd(x, "CONFIG", "GET", "maxclients");
        p->maxmem = x->want;
        cw_redis_xfer_cmd(x, "CONFIG", "GET", "maxmemory");
    }
    if (p->cluster) {
        p->cinfo = x->want;
        cw_redis_xfer_cmd(x, "CLUSTER", "INFO", NULL);
        p->cnodes = x->want;
        cw_redis_xfer_cmd(x, "CLUSTER", "NODES", NULL);
    }
}

/* redis_exchange_main() runs the transfer on the main connection; a failure
 * drops the connection and fails the run. Returns true on success. */
static bool redis_exchange_main(struct redis_state *st, struct cw_run *run, struct cw_redis_xfer *x)
{
    cw_redis_exchange(&x, 1, cw_run_deadline(run));
    if (!x->failed)
        return true;
    cw_redis_conn_failed(&st->main, run, x->reason, "%s", x->err);
    cw_run_fail(run, x->reason, "%s", x->err);
    return false;
}

/* redis_info() parses the INFO reply into st->info, switching to plain INFO
 * once (and asking again) when the server takes one section only (< 7.0);
 * the CONFIG and CLUSTER replies of the first pipeline are then gone.
 * Returns false when the run failed. */
static bool redis_info(struct redis_state *st, struct cw_run *run, struct cw_redis_xfer *x,
                       struct redis_pipe *p)
{
    const redisReply *info = x->r[0];

    if (info->type == REDIS_REPLY_ERROR && !st->info_single && strncmp(info->str, "ERR", 3) == 0 &&
        cw_redis_err_reason(info->str) != CW_REASON_AUTH) {
        st->info_single = true;
        cw_run_log(run, CW_LOG_INFO, "server takes one INFO section, using plain INFO",
                   (char *)NULL);
        cw_redis_xfer_reset(x);
        cw_redis_xfer_init(x, &st->main);
        cw_redis_xfer_cmd(x, "INFO", NULL, NULL);
        if (!redis_exchange_main(st, run, x))
            return false;
        info = x->r[0];
        p->config = p->cluster = false;
    }
    if (info->type == REDIS_REPLY_ERROR) {
        cw_run_fail(run, cw_redis_err_reason(info->str), "INFO: %.120s", info->str);
        return false;
    }
    if (info->type != REDIS_REPLY_STRING ||
        cw_redis_parse_info(info->str, info->len, &st->info) != CW_OK) {
        cw_run_fail(run, CW_REASON_PROTOCOL, "INFO: unexpected reply");
        return false;
    }
    return true;
}

/* redis_emit_limits() emits maxclients and maxmemory: from CONFIG GET when
 * it was asked and answered, else from INFO (maxclients is in INFO from 7.0
 * on), else not at all. A refused CONFIG GET is logged once and not asked
 * again for REDIS_CONFIG_RETRY. */
static void redis_emit_limits(struct redis_state *st, struct cw_run *run,
                              const struct cw_redis_xfer *x, const struct redis_pipe *p)
{
    uint64_t mc = 0, mm = 0;
    int a = 0, b = 0;

    if (p->config) {
        a = redis_config_value(x->r[p->maxcl], &mc);
        b = redis_config_value(x->r[p->maxmem], &mm);
        if (a < 0 || b < 0) {
            const redisReply *e = a < 0 ? x->r[p->maxcl] : x->r[p->maxmem];

            if (!st->config_refused)
                cw_run_log(run, CW_LOG_INFO, "CONFIG GET refused, reading limits from INFO", "err",
                           e->str, (char *)NULL);
            st->config_refused = true;
            st->config_refused_at = cw_now();
        } else {
            st->config_refused = false;
        }
    }
    if (a > 0)
        cw_emit(run, &desc_max_clients, (double)mc, NULL);
    else if (cw_redis_info_has(&st->info, CW_REDIS_MAXCLIENTS))
        cw_emit(run, &desc_max_clients, (double)st->info.v[CW_REDIS_MAXCLIENTS], NULL);
    if (b > 0)
        cw_emit(run, &desc_mem_max, (double)mm, NULL);
    else if (cw_redis_info_has(&st->info, CW_REDIS_MAXMEMORY))
        cw_emit(run, &desc_mem_max, (double)st->info.v[CW_REDIS_MAXMEMORY], NULL);
}

/* redis_cluster() runs the cluster part: as configured, or as INFO says
 * (then from this run on); with replies of the main pipeline, or asked now
 * when they were not in it. A node that stopped being a cluster node drops
 * its masters' connections. */
static void redis_cluster(struct redis_state *st, struct cw_run *run, struct cw_redis_xfer *x,
                          const struct redis_pipe *p, uint64_t self_keys)
{
    if (!st->cluster_set && cw_redis_info_has(&st->info, CW_REDIS_CLUSTER_ENABLED))
        st->cluster_known = st->info.v[CW_REDIS_CLUSTER_ENABLED] == 1;
    if (p->cluster) {
        redis_run_cluster(st, run, x->r[p->cinfo], x->r[p->cnodes], self_keys);
    } else if (st->cluster_set ? st->cluster : st->cluster_known) {
        cw_redis_xfer_reset(x);
        cw_redis_xfer_init(x, &st->main);
        cw_redis_xfer_cmd(x, "CLUSTER", "INFO", NULL);
        cw_redis_xfer_cmd(x, "CLUSTER", "NODES", NULL);
        if (redis_exchange_main(st, run, x))
            redis_run_cluster(st, run, x->r[0], x->r[1], self_keys);
    } else if (st->nnodes > 0) {
        for (size_t i = 0; i < st->nnodes; i++)
            st->nodes[i].seen = false;
        redis_nodes_prune(st);
    }
}

static void redis_run(void *state, struct cw_run *run)
{
    struct redis_state *st = state;
    struct cw_redis_xfer x;
    struct redis_pipe p;
    bool fresh = false;
    double ping = 0;
    uint64_t self_keys = 0;

    if (!redis_up(st, run, &ping, &fresh)) {
        cw_emit(run, &desc_up, 0, NULL);
        if (st->main.ctx == NULL && st->main.next_try > cw_now() && !fresh)
            cw_run_fail(run, st->main.last_reason, "%s (next attempt in %lld ms)",
                        st->main.last_err, (long long)((st->main.next_try - cw_now()) / CW_MS(1)));
        else
            cw_run_fail(run, st->main.last_reason, "%s", st->main.last_err);
        return;
    }
    cw_emit(run, &desc_up, 1, NULL);
    cw_emit(run, &desc_ping, ping, NULL);

    /* One pipeline for everything else. */
    redis_queue(st, &x, &p);
    if (!redis_exchange_main(st, run, &x) || !redis_info(st, run, &x, &p))
        goto out_reset;
    redis_emit_info(st, run, &st->info);
    for (size_t i = 0; i < st->info.ndb; i++)
        self_keys += st->info.db[i].keys;
    redis_emit_limits(st, run, &x, &p);
    redis_cluster(st, run, &x, &p, self_keys);

out_reset:
    cw_redis_xfer_reset(&x);
}

/* ---- The kind ------------------------------------------------------------- */

static int redis_configure(void *state, const struct cw_node *node,
                           const struct cw_check_info *info, struct cw_diag *diag)
{
    struct redis_state *st = state;
    int rc;

    (void)info;
    rc = cw_opts_apply(redis_opts, st, node, cw_check_common_keys, diag);
    st->cluster_set = node != NULL && cw_node_get(node, "cluster") != NULL;
    if (st->password.value != NULL && st->password_file.value != NULL) {
        cw_diagf(diag, cw_node_get(node, "password"), "set password or password_file, not both");
        rc = CW_ECONFIG;
    }
    if (st->username != NULL && st->password.value == NULL && st->password_file.value == NULL &&
        node != NULL && cw_node_get(node, "password") == NULL &&
        cw_node_get(node, "password_file") == NULL) {
        cw_diagf(diag, cw_node_get(node, "username"),
                 "an ACL username needs password or password_file");
        rc = CW_ECONFIG;
    }
    if (st->username != NULL && st->username[0] == '\0') {
        cw_diagf(diag, cw_node_get(node, "username"), "must not be empty");
        rc = CW_ECONFIG;
    }
    st->auth.username = st->username;
    st->auth.secret = st->password.value != NULL        ? &st->password
                      : st->password_file.value != NULL ? &st->password_file
                                                        : NULL;
    return rc;
}

static const char *redis_target(const void *state)
{
    const struct redis_state *st = state;

    return st->address.text;
}

static void redis_release(void *state)
{
    struct redis_state *st = state;

    cw_redis_conn_release(&st->main);
    for (size_t i = 0; i < st->nnodes; i++)
        cw_redis_conn_release(&st->nodes[i].conn);
    free(st->nodes);
    st->nodes = NULL;
    st->nnodes = 0;
    free(st->scratch_nodes);
    st->scratch_nodes = NULL;
    st->auth.secret = NULL;
    st->auth.username = NULL;
    cw_opts_release(redis_opts, st);
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const redis_descs[] = {
    &desc_up,
    &desc_hits,
    &desc_misses,
    &desc_hit_ratio,
    &desc_evicted,
    &desc_expired,
    &desc_clients,
    &desc_max_clients,
    &desc_rejected,
    &desc_mem_used,
    &desc_mem_max,
    &desc_keys,
    &desc_keys_expiry,
    &desc_ping,
    &desc_cluster_ok,
    &desc_cluster_slots,
    &desc_node_keys,
    &desc_node_slots,
    NULL,
};
const struct cw_check_kind cw_kind_redis = {
    .name = "redis",
    .layer = CW_LAYER_CACHE,
    .state_size = sizeof(struct redis_state),
    .reasons = 1u << CW_REASON_DNS | 1u << CW_REASON_REFUSED | 1u << CW_REASON_TIMEOUT |
               1u << CW_REASON_UNREACHABLE | 1u << CW_REASON_AUTH | 1u << CW_REASON_PROTOCOL |
               1u << CW_REASON_INTERNAL,
    .configure = redis_configure,
    .target = redis_target,
    .run = redis_run,
    .release = redis_release,
    .probe_option = "address",
    .descs = {redis_descs},
};
