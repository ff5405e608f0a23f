/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_guard.c - the connection guard of the HTTP server: every connection
 * is tracked from accept to close, and one thread closes those whose request
 * has not begun within the idle timeout or not completed within the read
 * timeout after its first byte (TCP_INFO's received-bytes count tells when
 * it began, so a trickling client cannot extend its deadline). Closing is a
 * shutdown(): the socket stays libmicrohttpd's, its polling thread sees the
 * end and cleans up.
 *
 * Threads: libmicrohttpd's polling threads track, untrack and mark
 * connections; the guard thread sweeps. conn_lock guards the list and every
 * struct http_conn; guard_lock only the guard's stop flag.
 */
#include "clock.h"
#include "http_int.h"

#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's lacks it) */
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* http_wait_ms() waits on 'c' (a CLOCK_MONOTONIC condition, 'm' held) for at
 * most 'ms' milliseconds. */
void http_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    (void)pthread_cond_timedwait(c, m, &ts);
}

/* http_rx_bytes() reads how many bytes the kernel has received on 'fd'
 * (TCP_INFO, Linux 4.1+); false when it cannot tell. */
static bool http_rx_bytes(int fd, uint64_t *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return false;
    *out = ti.tcpi_bytes_received;
    return true;
}

void http_conn_track(struct cw_http_server *s, struct MHD_Connection *conn, void **socket_context)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct http_conn *c;

    c = ci != NULL ? calloc(1, sizeof(*c)) : NULL;
    if (c == NULL)
        return; /* untracked: libmicrohttpd's inactivity timeout still applies */
    c->fd = ci->connect_fd;
    c->since = cw_now();
    pthread_mutex_lock(&s->conn_lock);
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->conns_open++;
    pthread_mutex_unlock(&s->conn_lock);
    *socket_context = c;
}

void http_conn_untrack(struct cw_http_server *s, void **socket_context)
{
    struct http_conn *c = *socket_context;

    if (c == NULL)
        return;
    pthread_mutex_lock(&s->conn_lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->conns_open--;
    pthread_mutex_unlock(&s->conn_lock);
    free(c);
    *socket_context = NULL;
}

struct http_conn *http_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci != NULL ? ci->socket_context : NULL;
}

/* http_conn_busy() marks the connection's request complete: from now on it
 * is being answered and the guard leaves it alone. */
void http_conn_busy(struct cw_http_server *s, struct http_conn *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&s->conn_lock);
    c->busy = true;
    pthread_mutex_unlock(&s->conn_lock);
}

/* http_conn_ready() starts the wait for the connection's next request. */
void http_conn_ready(struct cw_http_server *s, struct http_conn *c)
{
    uint64_t rx = 0;
    bool known;

    if (c == NULL)
        return;
    known = http_rx_bytes(c->fd, &rx);
    pthread_mutex_lock(&s->conn_lock);
    c->busy = false;
    c->since = cw_now();
    c->first_byte = known ? 0 : c->since;
    c->rx_base = rx;
    pthread_mutex_unlock(&s->conn_lock);
}

/* http_guard_sweep() closes the connections past their deadline. Shutting
 * the socket down (not closing it: it is libmicrohttpd's) makes its polling
 * thread see the end of the connection and clean it up. Caller holds no lock. */
static void http_guard_sweep(struct cw_http_server *s)
{
    cw_mono now = cw_now();
    struct http_conn *c;

    pthread_mutex_lock(&s->conn_lock);
    for (c = s->conns; c != NULL; c = c->next) {
        uint64_t rx;

        if (c->busy || c->shut)
            continue;
        if (c->first_byte == 0 && http_rx_bytes(c->fd, &rx) && rx > c->rx_base)
            c->first_byte = now;
        if (c->first_byte != 0 ? now - c->first_byte > s->read_timeout
                               : now - c->since > s->idle_timeout) {
            atomic_fetch_add(c->first_byte != 0 ? &s->closed_read_timeout : &s->closed_idle, 1);
            (void)shutdown(c->fd, SHUT_RDWR);
            c->shut = true;
        }
    }
    pthread_mutex_unlock(&s->conn_lock);
}

static void *http_guard_main(void *arg)
{
    struct cw_http_server *s = arg;

    pthread_mutex_lock(&s->guard_lock);
    while (!s->guard_stop) {
        pthread_mutex_unlock(&s->guard_lock);
        http_guard_sweep(s);
        pthread_mutex_lock(&s->guard_lock);
        if (!s->guard_stop)
            http_wait_ms(&s->guard_cond, &s->guard_lock, HTTP_GUARD_TICK_MS);
    }
    pthread_mutex_unlock(&s->guard_lock);
    return NULL;
}

void http_guard_stop(struct cw_http_server *s)
{
    if (!s->guard_running)
        return;
    pthread_mutex_lock(&s->guard_lock);
    s->guard_stop = true;
    pthread_cond_signal(&s->guard_cond);
    pthread_mutex_unlock(&s->guard_lock);
    pthread_join(s->guard, NULL);
    s->guard_running = false;
}

int http_guard_start(struct cw_http_server *s, struct cw_diag *diag)
{
    if (pthread_create(&s->guard, NULL, http_guard_main, s) != 0) {
        cw_diagf(diag, NULL, "cannot start the HTTP server: cannot start the connection guard");
        return CW_EIO;
    }
    s->guard_running = true;
    return CW_OK;
}
