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
 * I/O: connections are made here (non-blocking connect, polled against the
 * run's deadline, so the errno gives the reason) and handed to hiredis with
 * redisConnectFd(); replies are read with poll() + redisBufferRead(), never
 * by hiredis' blocking calls, so no run outlives its deadline whatever the
 * server does. hiredis cannot reuse a context after an I/O error or with
 * replies left unread: such a context is freed and the next attempt
 * reconnects, with a backoff that doubles from 0.5 s to 30 s while the
 * server keeps failing. A connection found dead when a run starts (server
 * restart, idle timeout) is replaced once within the run.
 *
 * Parsing is in redis_info.c (pure, fuzzed). The state, connections
 * included, is used by one scheduler worker at a time.
 */
#include "collectors/redis_info.h"
#include "exporter/check.h"
#include "exporter/core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REDIS_DEFAULT_PORT  6379
#define REDIS_BACKOFF_FIRST CW_MS(500)
#define REDIS_BACKOFF_MAX   CW_S(30)
#define REDIS_CONFIG_RETRY  CW_MIN(5) /* after CONFIG was refused */
#define REDIS_MAX_PIPE      8         /* replies of one exchange on one connection */
#define REDIS_MAX_NODES     256       /* CLUSTER NODES entries read */
#define REDIS_CLIENT_NAME   "connwatch"
#define REDIS_ERR_MAX       160

/* One connection and its reconnect schedule. */
struct redis_conn {
    redisContext *ctx;   /* owned; NULL while disconnected */
    cw_mono next_try;    /* no connect attempt before this */
    cw_duration backoff; /* current backoff; 0 after a success */
    enum cw_reason last_reason;
    char last_err[REDIS_ERR_MAX];
    bool failing;                           /* the last attempt or exchange failed (logged once) */
    const char *target;                     /* borrowed: the check's label for logs */
    char node[CW_REDIS_NODE_HOST_MAX + 16]; /* cluster master "host:port", "" for the main one */
};

/* Another master of the cluster. */
struct redis_node {
    char host[CW_REDIS_NODE_HOST_MAX];
    unsigned port;
    struct redis_conn conn;
    bool seen; /* listed by the last CLUSTER NODES */
};

struct redis_state {
    /* options */
    struct cw_hostport address;
    char *username;
    struct cw_secret password;      /* ${ENV} */
    struct cw_secret password_file; /* read at load */
    bool cluster;                   /* the value of "cluster" when set */
    bool cluster_set;               /* "cluster" was written; else detected */

    char *label; /* owned: the "name" option or the address, for logs */
    struct redis_conn main;
    const struct cw_secret *secret; /* password or password_file, or NULL */

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

/* ---- Connections ---------------------------------------------------------- */

static void redis_conn_close(struct redis_conn *c)
{
    if (c->ctx != NULL)
        redisFree(c->ctx); /* closes the socket */
    c->ctx = NULL;
}

/* redis_conn_failed() records a failure: the context is dropped, the next
 * connect attempt is scheduled, and the first failure after a success is
 * logged. */
static void redis_conn_failed(struct redis_conn *c, enum cw_reason reason, const char *fmt, ...)
    CW_PRINTF(3, 4);

static void redis_conn_failed(struct redis_conn *c, enum cw_reason reason, const char *fmt, ...)
{
    va_list ap;

    redis_conn_close(c);
    c->last_reason = reason;
    va_start(ap, fmt);
    vsnprintf(c->last_err, sizeof(c->last_err), fmt, ap);
    va_end(ap);
    c->backoff = c->backoff == 0 ? REDIS_BACKOFF_FIRST : c->backoff * 2;
    if (c->backoff > REDIS_BACKOFF_MAX)
        c->backoff = REDIS_BACKOFF_MAX;
    c->next_try = cw_now() + c->backoff;
    if (!c->failing && c->node[0] != '\0')
        cw_log(CW_LOG_WARN, "redis", "connection failing", "target", c->target, "node", c->node,
               "reason", cw_reason_label(reason), "err", c->last_err, (char *)NULL);
    else if (!c->failing)
        cw_log(CW_LOG_WARN, "redis", "connection failing", "target", c->target, "reason",
               cw_reason_label(reason), "err", c->last_err, (char *)NULL);
    c->failing = true;
}

/* redis_err_reason() maps an error reply to a reason. */
static enum cw_reason redis_err_reason(const char *s)
{
    if (strncmp(s, "NOAUTH", 6) == 0 || strncmp(s, "WRONGPASS", 9) == 0 ||
        strncmp(s, "NOPERM", 6) == 0 || strstr(s, "password") != NULL || strstr(s, "AUTH") != NULL)
        return CW_REASON_AUTH;
    return CW_REASON_PROTOCOL;
}

/* A pipeline on one connection: the commands are appended to its context
 * first, then redis_exchange() writes them and collects 'want' replies. */
struct redis_xfer {
    struct redis_conn *conn;
    size_t want, got;
    redisReply *r[REDIS_MAX_PIPE];
    bool wdone;
    bool fresh; /* the connection was made in this run */
    bool failed;
    enum cw_reason reason;
    char err[REDIS_ERR_MAX];
};

static void redis_xfer_init(struct redis_xfer *x, struct redis_conn *c)
{
    memset(x, 0, sizeof(*x));
    x->conn = c;
}

static void redis_xfer_reset(struct redis_xfer *x)
{
    for (size_t i = 0; i < x->got; i++)
        freeReplyObject(x->r[i]);
    x->got = 0;
    x->want = 0;
}

/* redis_xfer_append() queues one command (argv form: binary-safe). */
static void redis_xfer_append(struct redis_xfer *x, int argc, const char **argv,
                              const size_t *argvlen)
{
    if (x->failed)
        return;
    if (x->want >= REDIS_MAX_PIPE ||
        redisAppendCommandArgv(x->conn->ctx, argc, argv, argvlen) != REDIS_OK) {
        x->failed = true;
        x->reason = CW_REASON_INTERNAL;
        snprintf(x->err, sizeof(x->err), "cannot queue a command");
        return;
    }
    x->want++;
}

static void redis_xfer_cmd(struct redis_xfer *x, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    size_t len[3];
    int argc = a2 != NULL ? 3 : (a1 != NULL ? 2 : 1);

    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    redis_xfer_append(x, argc, argv, len);
}

static void redis_xfer_io_error(struct redis_xfer *x, const char *op)
{
    redisContext *c = x->conn->ctx;
    int e = errno;
    char ebuf[128];

    x->failed = true;
    if (c->err == REDIS_ERR_EOF) {
        x->reason = CW_REASON_PROTOCOL;
        snprintf(x->err, sizeof(x->err), "%s: connection closed by the server", op);
    } else if (c->err == REDIS_ERR_IO) {
        x->reason = e == ECONNRESET || e == EPIPE ? CW_REASON_PROTOCOL : cw_reason_from_errno(e);
        snprintf(x->err, sizeof(x->err), "%s: %s", op, cw_strerror_r(e, ebuf, sizeof(ebuf)));
    } else {
        x->reason = CW_REASON_PROTOCOL;
        snprintf(x->err, sizeof(x->err), "%s: %s", op, c->errstr);
    }
}

/* redis_drain() moves the complete replies hiredis holds into x->r. */
static void redis_drain(struct redis_xfer *x)
{
    while (!x->failed && x->got < x->want) {
        void *rep = NULL;

        if (redisGetReplyFromReader(x->conn->ctx, &rep) != REDIS_OK) {
            x->failed = true;
            x->reason = CW_REASON_PROTOCOL;
            snprintf(x->err, sizeof(x->err), "bad reply: %s", x->conn->ctx->errstr);
            return;
        }
        if (rep == NULL)
            return;
        x->r[x->got++] = rep;
    }
}

/* redis_exchange() writes every transfer's queued commands and reads their
 * replies, all connections at once, until each has its replies or failed,
 * or 'deadline' passes (then the rest fail with reason timeout). */
static void redis_exchange(struct redis_xfer **xs, size_t n, cw_mono deadline)
{
    struct pollfd pfd[REDIS_MAX_NODES + 1];
    size_t map[REDIS_MAX_NODES + 1];

    if (n > CW_ARRAY_LEN(pfd))
        n = CW_ARRAY_LEN(pfd);
    for (size_t i = 0; i < n; i++) {
        int done = 0;

        if (xs[i]->failed || xs[i]->want == 0) {
            xs[i]->wdone = true;
            continue;
        }
        if (redisBufferWrite(xs[i]->conn->ctx, &done) != REDIS_OK)
            redis_xfer_io_error(xs[i], "send");
        xs[i]->wdone = done != 0;
    }
    for (;;) {
        size_t k = 0;
        cw_duration left;
        int rc;

        for (size_t i = 0; i < n; i++) {
            struct redis_xfer *x = xs[i];

            if (x->failed || x->got >= x->want)
                continue;
            pfd[k].fd = x->conn->ctx->fd;
            pfd[k].events = (short)(POLLIN | (x->wdone ? 0 : POLLOUT));
            pfd[k].revents = 0;
            map[k++] = i;
        }
        if (k == 0)
            return;
        left = deadline - cw_now();
        if (left <= 0) {
            for (size_t j = 0; j < k; j++) {
                struct redis_xfer *x = xs[map[j]];

                x->failed = true;
                x->reason = CW_REASON_TIMEOUT;
                snprintf(x->err, sizeof(x->err), "no reply before the deadline (%zu of %zu)",
                         x->got, x->want);
            }
            return;
        }
        rc = poll(pfd, (nfds_t)k, (int)((left + CW_MS(1) - 1) / CW_MS(1)));
        if (rc < 0 && errno != EINTR) {
            for (size_t j = 0; j < k; j++)
                redis_xfer_io_error(xs[map[j]], "poll");
            return;
        }
        for (size_t j = 0; rc > 0 && j < k; j++) {
            struct redis_xfer *x = xs[map[j]];

            if ((pfd[j].revents & POLLOUT) != 0 && !x->wdone) {
                int done = 0;

                if (redisBufferWrite(x->conn->ctx, &done) != REDIS_OK) {
                    redis_xfer_io_error(x, "send");
                    continue;
                }
                x->wdone = done != 0;
            }
            if ((pfd[j].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0) {
                if (redisBufferRead(x->conn->ctx) != REDIS_OK) {
                    int e = errno;

                    redis_drain(x); /* replies that came before the close */
                    errno = e;
                    if (x->got < x->want)
                        redis_xfer_io_error(x, "receive");
                    continue;
                }
                redis_drain(x);
            }
        }
    }
}

static bool redis_numeric_host(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
}

/* redis_tcp_connect() opens a TCP connection to host:port by 'deadline'.
 * Returns the socket, or -1 with *reason and err filled. */
static int redis_tcp_connect(const char *host, unsigned port, cw_mono deadline,
                             enum cw_reason *reason, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[8];
    char ebuf[128];
    int last_errno = 0;
    int fd = -1;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    /* No AI_ADDRCONFIG: it hides ::1 on hosts without a global IPv6 address. */
    hints.ai_flags = redis_numeric_host(host) ? AI_NUMERICHOST : 0;
    snprintf(portstr, sizeof(portstr), "%u", port);
    /* getaddrinfo() cannot be bounded by the deadline; a name that does not
     * resolve in time makes the core publish a timeout for the run. */
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        *reason = rc == EAI_SYSTEM || rc == EAI_MEMORY ? CW_REASON_INTERNAL : CW_REASON_DNS;
        snprintf(err, errlen, "resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd p;
        socklen_t sl = sizeof(last_errno);
        cw_duration left;

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        last_errno = errno;
        if (last_errno != EINPROGRESS)
            goto next;
        p.fd = fd;
        p.events = POLLOUT;
        for (;;) {
            left = deadline - cw_now();
            if (left <= 0) {
                last_errno = ETIMEDOUT;
                goto next;
            }
            p.revents = 0;
            rc = poll(&p, 1, (int)((left + CW_MS(1) - 1) / CW_MS(1)));
            if (rc > 0)
                break;
            if (rc < 0 && errno != EINTR) {
                last_errno = errno;
                goto next;
            }
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &last_errno, &sl) != 0)
            last_errno = errno;
        if (last_errno == 0)
            break;
    next:
        close(fd);
        fd = -1;
        if (last_errno == ETIMEDOUT)
            break; /* the deadline is spent: no time for the next address */
    }
    freeaddrinfo(res);
    if (fd < 0) {
        *reason = cw_reason_from_errno(last_errno);
        snprintf(err, errlen, "connect %s port %u: %s", host, port,
                 cw_strerror_r(last_errno, ebuf, sizeof(ebuf)));
        return -1;
    }
    {
        int one = 1;

        /* Small pipelines: do not let Nagle hold the second write. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    }
    return fd;
}

/* redis_connect() makes c->ctx: TCP, then AUTH and CLIENT SETNAME in one
 * round trip. Returns true on success; on failure the connection is marked
 * failed (reason and detail in c). */
static bool redis_connect(struct redis_state *st, struct redis_conn *c, const char *host,
                          unsigned port, cw_mono deadline)
{
    struct redis_xfer x, *xp = &x;
    enum cw_reason reason = CW_REASON_INTERNAL;
    char err[REDIS_ERR_MAX];
    size_t setname;
    int fd;

    fd = redis_tcp_connect(host, port, deadline, &reason, err, sizeof(err));
    if (fd < 0) {
        redis_conn_failed(c, reason, "%s", err);
        return false;
    }
    c->ctx = redisConnectFd(fd);
    if (c->ctx == NULL || c->ctx->err != 0) {
        if (c->ctx == NULL)
            close(fd);
        redis_conn_failed(c, CW_REASON_INTERNAL, "out of memory");
        return false;
    }
    /* All waiting is done by poll(); hiredis must treat EAGAIN as "later". */
    c->ctx->flags &= ~REDIS_BLOCK;

    redis_xfer_init(&x, c);
    if (st->secret != NULL) {
        const char *argv[3] = {"AUTH", NULL, NULL};
        size_t len[3] = {4, 0, 0};
        int argc = 1;

        if (st->username != NULL) {
            argv[argc] = st->username;
            len[argc++] = strlen(st->username);
        }
        argv[argc] = st->secret->value;
        len[argc++] = st->secret->len;
        redis_xfer_append(&x, argc, argv, len);
    }
    setname = x.want;
    redis_xfer_cmd(&x, "CLIENT", "SETNAME", REDIS_CLIENT_NAME);
    redis_exchange(&xp, 1, deadline);
    /* A server at maxclients accepts, answers this error and closes. */
    for (size_t i = 0; i < x.got; i++) {
        if (x.r[i]->type == REDIS_REPLY_ERROR && strstr(x.r[i]->str, "max number of clients")) {
            redis_conn_failed(c, CW_REASON_REFUSED, "%.120s", x.r[i]->str);
            redis_xfer_reset(&x);
            return false;
        }
    }
    if (x.failed) {
        redis_conn_failed(c, x.reason, "%s", x.err);
        redis_xfer_reset(&x);
        return false;
    }
    if (setname == 1 && x.r[0]->type == REDIS_REPLY_ERROR) {
        /* The server's message says which (WRONGPASS, no password set...);
         * it never contains the password. */
        redis_conn_failed(c, CW_REASON_AUTH, "AUTH: %.120s", x.r[0]->str);
        redis_xfer_reset(&x);
        return false;
    }
    /* CLIENT SETNAME may be forbidden by an ACL or unknown to a proxy: only a nicety. */
    redis_xfer_reset(&x);
    return true;
}

/* redis_conn_ok() records that a connection served a command: the backoff
 * is reset, and a recovery is logged. */
static void redis_conn_ok(struct redis_conn *c)
{
    c->backoff = 0;
    c->next_try = 0;
    if (c->failing && c->node[0] != '\0')
        cw_log(CW_LOG_INFO, "redis", "connection restored", "target", c->target, "node", c->node,
               (char *)NULL);
    else if (c->failing)
        cw_log(CW_LOG_INFO, "redis", "connection restored", "target", c->target, (char *)NULL);
    c->failing = false;
}

/* redis_ensure() returns true with a live c->ctx, connecting if needed and
 * allowed by the backoff ('force' ignores it). *fresh tells whether the
 * connection was made now. */
static bool redis_ensure(struct redis_state *st, struct redis_conn *c, const char *host,
                         unsigned port, cw_mono deadline, bool force, bool *fresh)
{
    *fresh = false;
    if (c->ctx != NULL)
        return true;
    if (!force && c->next_try != 0 && cw_now() < c->next_try)
        return false;
    *fresh = true;
    return redis_connect(st, c, host, port, deadline);
}

/* ---- One run -------------------------------------------------------------- */

/* redis_ping() sends a PING and times it. Returns true on PONG. An I/O
 * error on a connection made by an earlier run ('fresh' false) only closes
 * it and sets *stale: the server restarted or dropped an idle client, and
 * the caller reconnects at once. */
static bool redis_ping(struct redis_state *st, bool fresh, cw_mono deadline, double *secs,
                       bool *stale)
{
    struct redis_xfer x, *xp = &x;
    cw_mono t0;
    bool ok = false;

    *stale = false;
    redis_xfer_init(&x, &st->main);
    redis_xfer_cmd(&x, "PING", NULL, NULL);
    t0 = cw_now();
    redis_exchange(&xp, 1, deadline);
    *secs = cw_seconds(cw_now() - t0);
    if (x.failed && !fresh && x.reason != CW_REASON_TIMEOUT) {
        *stale = true;
        redis_conn_close(&st->main);
    } else if (x.failed) {
        redis_conn_failed(&st->main, x.reason, "PING: %s", x.err);
    } else if (x.r[0]->type == REDIS_REPLY_ERROR) {
        /* NOAUTH, LOADING, MASTERDOWN...: answered, but not usable. */
        redis_conn_failed(&st->main, redis_err_reason(x.r[0]->str), "PING: %.120s", x.r[0]->str);
    } else if (x.r[0]->type == REDIS_REPLY_STATUS && strcmp(x.r[0]->str, "PONG") == 0) {
        redis_conn_ok(&st->main);
        ok = true;
    } else {
        redis_conn_failed(&st->main, CW_REASON_PROTOCOL, "PING: unexpected reply type %d",
                          x.r[0]->type);
    }
    redis_xfer_reset(&x);
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
            cw_log(CW_LOG_INFO, "redis", "server restarted", "target", st->label, "run_id",
                   in->run_id, (char *)NULL);
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
    st->nodes[st->nnodes].conn.target = st->label;
    redis_node_label(st->nodes[st->nnodes].conn.node, sizeof(st->nodes[0].conn.node), host, port);
    return &st->nodes[st->nnodes++];
}

/* redis_nodes_prune() closes the connections of nodes no longer listed. */
static void redis_nodes_prune(struct redis_state *st)
{
    size_t k = 0;

    for (size_t i = 0; i < st->nnodes; i++) {
        if (st->nodes[i].seen) {
            st->nodes[k++] = st->nodes[i];
            continue;
        }
        redis_conn_close(&st->nodes[i].conn);
    }
    st->nnodes = k;
}

/* redis_run_cluster() emits the cluster series from the CLUSTER INFO and
 * CLUSTER NODES replies and the DBSIZE of every other master. */
static void redis_run_cluster(struct redis_state *st, struct cw_run *run, const redisReply *cinfo,
                              const redisReply *cnodes, uint64_t self_keys)
{
    struct redis_xfer *xfers = NULL, **xps = NULL;
    size_t *owner = NULL; /* indexes into st->nodes, which may move while it grows */
    size_t nn = 0, dropped = 0, nx = 0, nr;
    cw_mono deadline = cw_run_deadline(run);

    if (cinfo->type == REDIS_REPLY_ERROR || cnodes->type == REDIS_REPLY_ERROR) {
        const redisReply *e = cinfo->type == REDIS_REPLY_ERROR ? cinfo : cnodes;

        cw_run_fail(run, redis_err_reason(e->str), "CLUSTER: %.120s", e->str);
        return;
    }
    if (cinfo->type != REDIS_REPLY_STRING || cnodes->type != REDIS_REPLY_STRING ||
        cw_redis_parse_info(cinfo->str, cinfo->len, &st->cinfo) != CW_OK ||
        !cw_redis_info_has(&st->cinfo, CW_REDIS_CLUSTER_STATE_OK)) {
        cw_run_fail(run, CW_REASON_PROTOCOL, "CLUSTER INFO: unexpected reply");
        return;
    }
    cw_emit(run, &desc_cluster_ok, (double)st->cinfo.v[CW_REDIS_CLUSTER_STATE_OK], NULL);
    if (cw_redis_info_has(&st->cinfo, CW_REDIS_CLUSTER_SLOTS_ASSIGNED))
        cw_emit(run, &desc_cluster_slots, (double)st->cinfo.v[CW_REDIS_CLUSTER_SLOTS_ASSIGNED],
                NULL);

    if (st->scratch_nodes == NULL) {
        st->scratch_nodes = calloc(REDIS_MAX_NODES, sizeof(*st->scratch_nodes));
        if (st->scratch_nodes == NULL) {
            cw_run_fail(run, CW_REASON_INTERNAL, "out of memory");
            return;
        }
    }
    if (cw_redis_parse_nodes(cnodes->str, cnodes->len, st->scratch_nodes, REDIS_MAX_NODES, &nn,
                             &dropped) != CW_OK) {
        cw_run_fail(run, CW_REASON_PROTOCOL, "CLUSTER NODES: no node in the reply");
        return;
    }
    xfers = calloc(nn + 1, sizeof(*xfers));
    xps = calloc(nn + 1, sizeof(*xps));
    owner = calloc(nn + 1, sizeof(*owner));
    if (xfers == NULL || xps == NULL || owner == NULL) {
        cw_run_fail(run, CW_REASON_INTERNAL, "out of memory");
        goto out_free;
    }
    for (size_t i = 0; i < st->nnodes; i++)
        st->nodes[i].seen = false;

    /* Every other master: connect if needed, queue a DBSIZE. */
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
        if (!redis_ensure(st, &pn->conn, n->host, n->port, deadline, false, &fresh)) {
            cw_run_fail(run, pn->conn.last_reason, "node %s: %s", label, pn->conn.last_err);
            continue;
        }
        redis_xfer_init(&xfers[nx], &pn->conn);
        xfers[nx].fresh = fresh;
        redis_xfer_cmd(&xfers[nx], "DBSIZE", NULL, NULL);
        xps[nx] = &xfers[nx];
        owner[nx++] = (size_t)(pn - st->nodes);
    }
    for (size_t i = 0; i < nx; i++)
        xfers[i].conn = &st->nodes[owner[i]].conn;
    redis_exchange(xps, nx, deadline);

    /* A master that restarted or dropped the idle connection since the last
     * run: reconnect once and ask again, as for the main connection. */
    nr = 0;
    for (size_t i = 0; i < nx; i++) {
        struct redis_xfer *x = &xfers[i];
        struct redis_node *pn = &st->nodes[owner[i]];
        bool fresh;

        if (!x->failed || x->fresh || x->reason == CW_REASON_TIMEOUT)
            continue;
        redis_xfer_reset(x);
        redis_conn_close(&pn->conn);
        redis_xfer_init(x, &pn->conn);
        if (!redis_ensure(st, &pn->conn, pn->host, pn->port, deadline, true, &fresh)) {
            x->failed = true;
            x->reason = pn->conn.last_reason;
            snprintf(x->err, sizeof(x->err), "%s", pn->conn.last_err);
            continue;
        }
        x->fresh = true;
        redis_xfer_cmd(x, "DBSIZE", NULL, NULL);
        xps[nr++] = x;
    }
    redis_exchange(xps, nr, deadline);

    for (size_t i = 0; i < nx; i++) {
        struct redis_xfer *x = &xfers[i];
        struct redis_node *pn = &st->nodes[owner[i]];
        char label[CW_REDIS_NODE_HOST_MAX + 16];
        const char *lv[1] = {label};

        redis_node_label(label, sizeof(label), pn->host, pn->port);
        if (x->failed) {
            if (pn->conn.ctx != NULL) /* else the reconnect failed and said so */
                redis_conn_failed(&pn->conn, x->reason, "DBSIZE: %s", x->err);
            cw_run_fail(run, x->reason, "node %s: %s", label, x->err);
        } else if (x->r[0]->type == REDIS_REPLY_INTEGER && x->r[0]->integer >= 0) {
            redis_conn_ok(&pn->conn);
            cw_emit(run, &desc_node_keys, (double)x->r[0]->integer, lv);
        } else {
            enum cw_reason r = x->r[0]->type == REDIS_REPLY_ERROR ? redis_err_reason(x->r[0]->str)
                                                                  : CW_REASON_PROTOCOL;

            cw_run_fail(run, r, "node %s: DBSIZE: %.120s", label,
                        x->r[0]->type == REDIS_REPLY_ERROR ? x->r[0]->str : "unexpected reply");
        }
        redis_xfer_reset(x);
    }
    redis_nodes_prune(st);
    if (dropped > 0)
        cw_run_fail(run, CW_REASON_INTERNAL, "CLUSTER NODES lists more than %d nodes",
                    REDIS_MAX_NODES);

out_free:
    free(xfers);
    free(xps);
    free(owner);
}

static void redis_run(void *state, struct cw_run *run)
{
    struct redis_state *st = state;
    cw_mono deadline = cw_run_deadline(run);
    struct redis_xfer x, *xp = &x;
    bool fresh = false, stale = false;
    bool want_config, want_cluster;
    size_t i_info = 0, i_maxcl = 0, i_maxmem = 0, i_cinfo = 0, i_cnodes = 0;
    double ping = 0;
    const redisReply *info;
    uint64_t v, self_keys = 0;

    /* Connect (or find the connection dead and replace it once), then PING. */
    if (!redis_ensure(st, &st->main, st->address.host, st->address.port, deadline, false, &fresh))
        goto out_down;
    if (!redis_ping(st, fresh, deadline, &ping, &stale)) {
        if (!stale)
            goto out_down;
        if (!redis_ensure(st, &st->main, st->address.host, st->address.port, deadline, true,
                          &fresh) ||
            !redis_ping(st, fresh, deadline, &ping, &stale))
            goto out_down;
    }
    cw_emit(run, &desc_up, 1, NULL);
    cw_emit(run, &desc_ping, ping, NULL);

    /* One pipeline for everything else. */
    want_config = !st->config_refused || cw_now() - st->config_refused_at >= REDIS_CONFIG_RETRY;
    want_cluster = st->cluster_set ? st->cluster : st->cluster_known;
    redis_xfer_init(&x, &st->main);
    /* One INFO with the six sections read (Redis >= 7.0): one reply of
     * ~3.5 KiB instead of six commands, or of plain INFO's ~5 KiB with
     * sections nobody reads (about 21 us in Redis against 190 us for INFO
     * ALL, see bench/README.md). */
    if (st->info_single)
        redis_xfer_cmd(&x, "INFO", NULL, NULL);
    else
        redis_xfer_append(
            &x, 7,
            (const char *[]){"INFO", "server", "clients", "memory", "stats", "keyspace", "cluster"},
            (const size_t[]){4, 6, 7, 6, 5, 8, 7});
    if (want_config) {
        i_maxcl = x.want;
        redis_xfer_cmd(&x, "CONFIG", "GET", "maxclients");
        i_maxmem = x.want;
        redis_xfer_cmd(&x, "CONFIG", "GET", "maxmemory");
    }
    if (want_cluster) {
        i_cinfo = x.want;
        redis_xfer_cmd(&x, "CLUSTER", "INFO", NULL);
        i_cnodes = x.want;
        redis_xfer_cmd(&x, "CLUSTER", "NODES", NULL);
    }
    redis_exchange(&xp, 1, deadline);
    if (x.failed) {
        redis_conn_failed(&st->main, x.reason, "%s", x.err);
        cw_run_fail(run, x.reason, "%s", x.err);
        goto out_reset;
    }
    info = x.r[i_info];
    if (info->type == REDIS_REPLY_ERROR && !st->info_single && strncmp(info->str, "ERR", 3) == 0 &&
        redis_err_reason(info->str) != CW_REASON_AUTH) {
        /* Before 7.0, INFO takes one section: ask for all of them from now on. */
        st->info_single = true;
        cw_log(CW_LOG_INFO, "redis", "server takes one INFO section, using plain INFO", "target",
               st->label, (char *)NULL);
        redis_xfer_reset(&x);
        redis_xfer_init(&x, &st->main);
        redis_xfer_cmd(&x, "INFO", NULL, NULL);
        redis_exchange(&xp, 1, deadline);
        if (x.failed) {
            redis_conn_failed(&st->main, x.reason, "%s", x.err);
            cw_run_fail(run, x.reason, "%s", x.err);
            goto out_reset;
        }
        info = x.r[0];
        want_config = want_cluster = false; /* their replies went with the first pipeline */
    }
    if (info->type == REDIS_REPLY_ERROR) {
        cw_run_fail(run, redis_err_reason(info->str), "INFO: %.120s", info->str);
        goto out_reset;
    }
    if (info->type != REDIS_REPLY_STRING ||
        cw_redis_parse_info(info->str, info->len, &st->info) != CW_OK) {
        cw_run_fail(run, CW_REASON_PROTOCOL, "INFO: unexpected reply");
        goto out_reset;
    }
    redis_emit_info(st, run, &st->info);
    for (size_t i = 0; i < st->info.ndb; i++)
        self_keys += st->info.db[i].keys;

    /* maxclients and maxmemory: CONFIG GET, else INFO (maxclients is in
     * INFO from 7.0 on), else absent. */
    if (want_config) {
        int a = redis_config_value(x.r[i_maxcl], &v);
        uint64_t mm;
        int b = redis_config_value(x.r[i_maxmem], &mm);

        if (a < 0 || b < 0) {
            const redisReply *e = a < 0 ? x.r[i_maxcl] : x.r[i_maxmem];

            if (!st->config_refused)
                cw_log(CW_LOG_INFO, "redis", "CONFIG GET refused, reading limits from INFO",
                       "target", st->label, "err", e->str, (char *)NULL);
            st->config_refused = true;
            st->config_refused_at = cw_now();
        } else {
            st->config_refused = false;
        }
        if (a > 0)
            cw_emit(run, &desc_max_clients, (double)v, NULL);
        else if (cw_redis_info_has(&st->info, CW_REDIS_MAXCLIENTS))
            cw_emit(run, &desc_max_clients, (double)st->info.v[CW_REDIS_MAXCLIENTS], NULL);
        if (b > 0)
            cw_emit(run, &desc_mem_max, (double)mm, NULL);
        else if (cw_redis_info_has(&st->info, CW_REDIS_MAXMEMORY))
            cw_emit(run, &desc_mem_max, (double)st->info.v[CW_REDIS_MAXMEMORY], NULL);
    } else {
        if (cw_redis_info_has(&st->info, CW_REDIS_MAXCLIENTS))
            cw_emit(run, &desc_max_clients, (double)st->info.v[CW_REDIS_MAXCLIENTS], NULL);
        if (cw_redis_info_has(&st->info, CW_REDIS_MAXMEMORY))
            cw_emit(run, &desc_mem_max, (double)st->info.v[CW_REDIS_MAXMEMORY], NULL);
    }

    /* Cluster: as configured, or as INFO says (then from this run on). */
    if (!st->cluster_set && cw_redis_info_has(&st->info, CW_REDIS_CLUSTER_ENABLED))
        st->cluster_known = st->info.v[CW_REDIS_CLUSTER_ENABLED] == 1;
    if (want_cluster) {
        redis_run_cluster(st, run, x.r[i_cinfo], x.r[i_cnodes], self_keys);
    } else if ((st->cluster_set && st->cluster) || (!st->cluster_set && st->cluster_known)) {
        redis_xfer_reset(&x);
        redis_xfer_init(&x, &st->main);
        redis_xfer_cmd(&x, "CLUSTER", "INFO", NULL);
        redis_xfer_cmd(&x, "CLUSTER", "NODES", NULL);
        redis_exchange(&xp, 1, deadline);
        if (x.failed) {
            redis_conn_failed(&st->main, x.reason, "%s", x.err);
            cw_run_fail(run, x.reason, "%s", x.err);
            goto out_reset;
        }
        redis_run_cluster(st, run, x.r[0], x.r[1], self_keys);
    } else if (st->nnodes > 0) {
        for (size_t i = 0; i < st->nnodes; i++)
            st->nodes[i].seen = false;
        redis_nodes_prune(st);
    }

out_reset:
    redis_xfer_reset(&x);
    return;

out_down:
    cw_emit(run, &desc_up, 0, NULL);
    if (st->main.ctx == NULL && st->main.next_try > cw_now() && !fresh)
        cw_run_fail(run, st->main.last_reason, "%s (next attempt in %lld ms)", st->main.last_err,
                    (long long)((st->main.next_try - cw_now()) / CW_MS(1)));
    else
        cw_run_fail(run, st->main.last_reason, "%s", st->main.last_err);
}

/* ---- The kind ------------------------------------------------------------- */

static int redis_configure(void *state, const struct cw_node *node,
                           const struct cw_check_info *info, struct cw_diag *diag)
{
    struct redis_state *st = state;
    int rc;

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
    if (st->address.text != NULL) {
        st->label = strdup(info != NULL && info->name != NULL ? info->name : st->address.text);
        if (st->label == NULL) {
            cw_diagf(diag, node, "out of memory");
            rc = CW_ECONFIG;
        }
    }
    st->main.target = st->label;
    st->secret = st->password.value != NULL        ? &st->password
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

    redis_conn_close(&st->main);
    for (size_t i = 0; i < st->nnodes; i++)
        redis_conn_close(&st->nodes[i].conn);
    free(st->nodes);
    st->nodes = NULL;
    st->nnodes = 0;
    free(st->scratch_nodes);
    st->scratch_nodes = NULL;
    st->secret = NULL;
    free(st->label);
    st->label = NULL;
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
