/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_conn.c - the redis check's connection pipeline (see redis_conn.h):
 * connecting through the network layer, AUTH and CLIENT SETNAME, the
 * reconnect backoff, and pipelines of commands exchanged on any number of
 * connections at once, all bounded by the run's deadline.
 *
 * I/O: the TCP connection comes from collectors/netconn.c (the name
 * resolved within the deadline, a non-blocking connect polled against it,
 * the errno classified by the core's one table) and is handed to hiredis
 * with redisConnectFd(); replies are read with poll() + redisBufferRead(),
 * never by hiredis' blocking calls, so no run outlives its deadline
 * whatever the server or the resolver does. hiredis cannot reuse a context
 * after an I/O error or with replies left unread: such a context is freed
 * and the next attempt reconnects, with a backoff that doubles from 0.5 s
 * to 30 s while the server keeps failing.
 *
 * Each connection belongs to one check instance and is used by one
 * scheduler worker at a time; nothing here is shared.
 */
#include "collectors/redis_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REDIS_BACKOFF_FIRST CW_MS(500)
#define REDIS_BACKOFF_MAX   CW_S(30)
#define REDIS_CLIENT_NAME   "connwatch"

void cw_redis_conn_close(struct cw_redis_conn *c)
{
    if (c->ctx != NULL)
        redisFree(c->ctx); /* closes the socket */
    c->ctx = NULL;
}

void cw_redis_conn_release(struct cw_redis_conn *c)
{
    cw_redis_conn_close(c);
    cw_net_lookup_abandon(&c->lookup);
}

void cw_redis_conn_failed(struct cw_redis_conn *c, struct cw_run *run, enum cw_reason reason,
                          const char *fmt, ...)
{
    va_list ap;

    cw_redis_conn_close(c);
    c->last_reason = reason;
    va_start(ap, fmt);
    vsnprintf(c->last_err, sizeof(c->last_err), fmt, ap);
    va_end(ap);
    c->backoff = c->backoff == 0 ? REDIS_BACKOFF_FIRST : c->backoff * 2;
    if (c->backoff > REDIS_BACKOFF_MAX)
        c->backoff = REDIS_BACKOFF_MAX;
    c->next_try = cw_now() + c->backoff;
    if (!c->failing && c->node[0] != '\0')
        cw_run_log(run, CW_LOG_WARN, "connection failing", "node", c->node, "reason",
                   cw_reason_label(reason), "err", c->last_err, (char *)NULL);
    else if (!c->failing)
        cw_run_log(run, CW_LOG_WARN, "connection failing", "reason", cw_reason_label(reason), "err",
                   c->last_err, (char *)NULL);
    c->failing = true;
}

enum cw_reason cw_redis_err_reason(const char *s)
{
    if (strncmp(s, "NOAUTH", 6) == 0 || strncmp(s, "WRONGPASS", 9) == 0 ||
        strncmp(s, "NOPERM", 6) == 0 || strstr(s, "password") != NULL || strstr(s, "AUTH") != NULL)
        return CW_REASON_AUTH;
    return CW_REASON_PROTOCOL;
}

void cw_redis_xfer_init(struct cw_redis_xfer *x, struct cw_redis_conn *c)
{
    memset(x, 0, sizeof(*x));
    x->conn = c;
}

void cw_redis_xfer_reset(struct cw_redis_xfer *x)
{
    for (size_t i = 0; i < x->got; i++)
        freeReplyObject(x->r[i]);
    x->got = 0;
    x->want = 0;
}

void cw_redis_xfer_append(struct cw_redis_xfer *x, int argc, const char **argv,
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

void cw_redis_xfer_cmd(struct cw_redis_xfer *x, const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    size_t len[3];
    int argc = a2 != NULL ? 3 : (a1 != NULL ? 2 : 1);

    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    cw_redis_xfer_append(x, argc, argv, len);
}

static void xfer_io_error(struct cw_redis_xfer *x, const char *op)
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

/* xfer_drain() moves the complete replies hiredis holds into x->r. */
static void xfer_drain(struct cw_redis_xfer *x)
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

/* xfer_events() writes more of x's commands and reads its replies as
 * poll() reported 'revents' for its socket. */
static void xfer_events(struct cw_redis_xfer *x, short revents)
{
    if ((revents & POLLOUT) != 0 && !x->wdone) {
        int done = 0;

        if (redisBufferWrite(x->conn->ctx, &done) != REDIS_OK) {
            xfer_io_error(x, "send");
            return;
        }
        x->wdone = done != 0;
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) == 0)
        return;
    if (redisBufferRead(x->conn->ctx) != REDIS_OK) {
        int e = errno;

        xfer_drain(x); /* replies that came before the close */
        errno = e;
        if (x->got < x->want)
            xfer_io_error(x, "receive");
        return;
    }
    xfer_drain(x);
}

void cw_redis_exchange(struct cw_redis_xfer **xs, size_t n, cw_mono deadline)
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
            xfer_io_error(xs[i], "send");
        xs[i]->wdone = done != 0;
    }
    for (;;) {
        size_t k = 0;
        cw_duration left;
        int rc;

        for (size_t i = 0; i < n; i++) {
            struct cw_redis_xfer *x = xs[i];

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
                struct cw_redis_xfer *x = xs[map[j]];

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
                xfer_io_error(xs[map[j]], "poll");
            return;
        }
        for (size_t j = 0; rc > 0 && j < k; j++)
            xfer_events(xs[map[j]], pfd[j].revents);
    }
}

/* conn_tcp() opens a TCP connection to host:port through the network layer
 * (collectors/netconn.c): the name is resolved within 'deadline' with the
 * connection's own pending-lookup slot, then each address is tried in turn
 * while time is left. Returns the socket, or -1 with *f filled. */
static int conn_tcp(struct cw_redis_conn *c, const char *host, unsigned port, cw_mono deadline,
                    struct cw_net_fail *f)
{
    struct cw_net_conn nc;
    int one = 1;

    if (!cw_net_dial(host, port, CW_NET_FAMILY_AUTO, 0, deadline, &c->lookup, &nc, f)) {
        if (nc.fd >= 0)
            (void)close(nc.fd);
        return -1;
    }
    /* Small pipelines: do not let Nagle hold the second write. */
    (void)setsockopt(nc.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(nc.fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    return nc.fd;
}

/* conn_connect() makes c->ctx: TCP, then AUTH and CLIENT SETNAME in one
 * round trip. Returns true on success; on failure the connection is marked
 * failed (reason and detail in c). */
static bool conn_connect(struct cw_redis_conn *c, struct cw_run *run,
                         const struct cw_redis_auth *auth, const char *host, unsigned port,
                         cw_mono deadline)
{
    struct cw_redis_xfer x, *xp = &x;
    struct cw_net_fail f;
    size_t setname;
    int fd;

    fd = conn_tcp(c, host, port, deadline, &f);
    if (fd < 0) {
        cw_redis_conn_failed(c, run, f.reason, "%s", f.detail);
        return false;
    }
    c->ctx = redisConnectFd(fd);
    if (c->ctx == NULL || c->ctx->err != 0) {
        if (c->ctx == NULL)
            close(fd);
        cw_redis_conn_failed(c, run, CW_REASON_INTERNAL, "out of memory");
        return false;
    }
    /* All waiting is done by poll(); hiredis must treat EAGAIN as "later". */
    c->ctx->flags &= ~REDIS_BLOCK;

    cw_redis_xfer_init(&x, c);
    if (auth->secret != NULL) {
        const char *argv[3] = {"AUTH", NULL, NULL};
        size_t len[3] = {4, 0, 0};
        int argc = 1;

        if (auth->username != NULL) {
            argv[argc] = auth->username;
            len[argc++] = strlen(auth->username);
        }
        argv[argc] = auth->secret->value;
        len[argc++] = auth->secret->len;
        cw_redis_xfer_append(&x, argc, argv, len);
    }
    setname = x.want;
    cw_redis_xfer_cmd(&x, "CLIENT", "SETNAME", REDIS_CLIENT_NAME);
    cw_redis_exchange(&xp, 1, deadline);
    /* A server at maxclients accepts, answers this error and closes. */
    for (size_t i = 0; i < x.got; i++) {
        if (x.r[i]->type == REDIS_REPLY_ERROR && strstr(x.r[i]->str, "max number of clients")) {
            cw_redis_conn_failed(c, run, CW_REASON_REFUSED, "%.120s", x.r[i]->str);
            cw_redis_xfer_reset(&x);
            return false;
        }
    }
    if (x.failed) {
        cw_redis_conn_failed(c, run, x.reason, "%s", x.err);
        cw_redis_xfer_reset(&x);
        return false;
    }
    if (setname == 1 && x.r[0]->type == REDIS_REPLY_ERROR) {
        /* The server's message says which (WRONGPASS, no password set...);
         * it never contains the password. */
        cw_redis_conn_failed(c, run, CW_REASON_AUTH, "AUTH: %.120s", x.r[0]->str);
        cw_redis_xfer_reset(&x);
        return false;
    }
    /* CLIENT SETNAME may be forbidden by an ACL or unknown to a proxy: only a nicety. */
    cw_redis_xfer_reset(&x);
    return true;
}

void cw_redis_conn_ok(struct cw_redis_conn *c, struct cw_run *run)
{
    c->backoff = 0;
    c->next_try = 0;
    if (c->failing && c->node[0] != '\0')
        cw_run_log(run, CW_LOG_INFO, "connection restored", "node", c->node, (char *)NULL);
    else if (c->failing)
        cw_run_log(run, CW_LOG_INFO, "connection restored", (char *)NULL);
    c->failing = false;
}

bool cw_redis_conn_ensure(struct cw_redis_conn *c, struct cw_run *run,
                          const struct cw_redis_auth *auth, const char *host, unsigned port,
                          cw_mono deadline, bool force, bool *fresh)
{
    *fresh = false;
    if (c->ctx != NULL)
        return true;
    if (!force && c->next_try != 0 && cw_now() < c->next_try)
        return false;
    *fresh = true;
    return conn_connect(c, run, auth, host, port, deadline);
}
