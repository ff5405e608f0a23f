/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_conn.h - the redis check's connection pipeline: one persistent
 * hiredis connection with its reconnect schedule, made through the network
 * layer (collectors/netconn.c) within the run's deadline, and pipelines of
 * commands exchanged on several connections at once (redis_conn.c).
 *
 * Not thread-safe: a connection and its transfers belong to one check
 * instance, used by one scheduler worker at a time.
 */
#ifndef CW_COLLECTORS_REDIS_CONN_H
#define CW_COLLECTORS_REDIS_CONN_H

#include "collectors/netconn.h"
#include "collectors/redis_info.h"
#include "exporter/check.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>

#define REDIS_MAX_PIPE  8   /* replies of one exchange on one connection */
#define REDIS_MAX_NODES 256 /* CLUSTER NODES entries read; connections of one exchange */
#define REDIS_ERR_MAX   160

/* One connection and its reconnect schedule. Zeroed means disconnected. */
struct cw_redis_conn {
    redisContext *ctx;            /* owned; NULL while disconnected */
    struct cw_net_lookup *lookup; /* owned: a name lookup that outlived its run, or NULL */
    cw_mono next_try;             /* no connect attempt before this */
    cw_duration backoff;          /* current backoff; 0 after a success */
    enum cw_reason last_reason;
    char last_err[REDIS_ERR_MAX];
    bool failing;                           /* the last attempt or exchange failed (logged once) */
    char node[CW_REDIS_NODE_HOST_MAX + 16]; /* cluster master "host:port", "" for the main one */
};

/* The credentials a connection sends (AUTH [username] password). */
struct cw_redis_auth {
    const char *username;           /* borrowed; NULL: none */
    const struct cw_secret *secret; /* borrowed; NULL: no AUTH */
};

/* A pipeline on one connection: the commands are appended to its context
 * first, then cw_redis_exchange() writes them and collects 'want' replies. */
struct cw_redis_xfer {
    struct cw_redis_conn *conn; /* borrowed: the connection it runs on */
    size_t want, got;
    redisReply *r[REDIS_MAX_PIPE]; /* owned: the 'got' replies, freed by cw_redis_xfer_reset() */
    bool wdone;
    bool fresh; /* the connection was made in this run */
    bool failed;
    enum cw_reason reason;
    char err[REDIS_ERR_MAX];
};

/* cw_redis_conn_close() frees the context (and closes its socket); the
 * schedule stays. */
void cw_redis_conn_close(struct cw_redis_conn *c);

/* cw_redis_conn_release() closes the connection and gives up a lookup still
 * running (for release()). */
void cw_redis_conn_release(struct cw_redis_conn *c);

/* cw_redis_conn_failed() records a failure: the context is dropped, the
 * next connect attempt is scheduled after the backoff, and the first
 * failure after a success is logged through 'run'. */
void cw_redis_conn_failed(struct cw_redis_conn *c, struct cw_run *run, enum cw_reason reason,
                          const char *fmt, ...) CW_PRINTF(4, 5);

/* cw_redis_conn_ok() records that the connection served a command: the
 * backoff is reset, and a recovery is logged. */
void cw_redis_conn_ok(struct cw_redis_conn *c, struct cw_run *run);

/* cw_redis_conn_ensure() returns true with a live c->ctx, connecting to
 * host:port with 'auth' (TCP through the layer, then AUTH and CLIENT
 * SETNAME in one round trip) if needed and allowed by the backoff ('force'
 * ignores it), by 'deadline'. *fresh tells whether the connection was made
 * now. On failure the reason and detail are in c->last_reason/last_err. */
bool cw_redis_conn_ensure(struct cw_redis_conn *c, struct cw_run *run,
                          const struct cw_redis_auth *auth, const char *host, unsigned port,
                          cw_mono deadline, bool force, bool *fresh);

/* cw_redis_err_reason() maps an error reply's text to a reason: auth for
 * NOAUTH, WRONGPASS, NOPERM and password trouble, else protocol. */
enum cw_reason cw_redis_err_reason(const char *s);

/* cw_redis_xfer_init() starts an empty transfer on 'c'. */
void cw_redis_xfer_init(struct cw_redis_xfer *x, struct cw_redis_conn *c);

/* cw_redis_xfer_reset() frees the replies collected and empties 'x'. */
void cw_redis_xfer_reset(struct cw_redis_xfer *x);

/* cw_redis_xfer_append() queues one command (argv form: binary-safe);
 * cw_redis_xfer_cmd() one of up to three words (a1, a2 may be NULL). */
void cw_redis_xfer_append(struct cw_redis_xfer *x, int argc, const char **argv,
                          const size_t *argvlen);
void cw_redis_xfer_cmd(struct cw_redis_xfer *x, const char *a0, const char *a1, const char *a2);

/* cw_redis_exchange() writes every transfer's queued commands and reads
 * their replies, all connections at once, until each has its replies or
 * failed, or 'deadline' passes (then the rest fail with reason timeout). */
void cw_redis_exchange(struct cw_redis_xfer **xs, size_t n, cw_mono deadline);

#endif
