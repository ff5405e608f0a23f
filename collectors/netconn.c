/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netconn.c - error classification, bounded name resolution and bounded TCP
 * connect for the network check kinds (see netconn.h).
 *
 * getaddrinfo() has no timeout. cw_net_resolve() runs it on a detached
 * thread and waits on a condition variable until the caller's deadline; the
 * lookup record is reference-counted between the waiter and the thread, so
 * a lookup that outlives its deadline frees itself when it finally returns
 * and the check's run still ends on time. The caller keeps the abandoned
 * record in its state and starts no new lookup while it runs, so a dead
 * resolver costs at most one thread per check instance.
 *
 * Called from scheduler workers (any number at once) and from the lookup
 * threads this file starts. No static mutable state.
 */
#include "collectors/netconn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const cw_net_family_names[] = {"auto", "ip4", "ip6", NULL};

int cw_net_family_af(int f)
{
    switch (f) {
    case CW_NET_FAMILY_IP4:
        return AF_INET;
    case CW_NET_FAMILY_IP6:
        return AF_INET6;
    default:
        return AF_UNSPEC;
    }
}

enum cw_reason cw_net_reason_from_errno(int err)
{
    switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
        return CW_REASON_REFUSED;
    case ETIMEDOUT:
        return CW_REASON_TIMEOUT;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
    case ENONET:
    case EADDRNOTAVAIL:
    case EPERM:  /* a local firewall (nft/iptables OUTPUT) rejected the SYN */
    case EACCES: /* same, or a broadcast address */
        return CW_REASON_UNREACHABLE;
    default:
        return CW_REASON_INTERNAL;
    }
}

enum cw_reason cw_net_reason_from_gai(int gai_err, int sys_errno)
{
    switch (gai_err) {
    case 0:
        return CW_REASON_NONE;
    case EAI_MEMORY:
        return CW_REASON_INTERNAL;
    case EAI_SYSTEM:
        /* glibc reports some resolver failures (no reachable server) as
         * EAI_SYSTEM with a socket errno: still a DNS problem. */
        switch (sys_errno) {
        case ENOMEM:
        case EMFILE:
        case ENFILE:
        case EAGAIN:
            return CW_REASON_INTERNAL;
        default:
            return CW_REASON_DNS;
        }
    default:
        return CW_REASON_DNS;
    }
}

bool cw_net_literal(const char *host, unsigned port, int family, struct sockaddr_storage *ss,
                    socklen_t *len)
{
    struct addrinfo hints, *res = NULL;
    bool ok = false;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = cw_net_family_af(family);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    /* Numeric only: no lookup, no I/O. */
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return false;
    if (res->ai_addrlen <= sizeof(*ss)) {
        memset(ss, 0, sizeof(*ss));
        memcpy(ss, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
        if (ss->ss_family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        else if (ss->ss_family == AF_INET6)
            ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        ok = ss->ss_family == AF_INET || ss->ss_family == AF_INET6;
    }
    freeaddrinfo(res);
    return ok;
}

const char *cw_net_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    const void *a = NULL;

    if (sa->sa_family == AF_INET)
        a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (len == 0)
        return buf;
    if (a == NULL || inet_ntop(sa->sa_family, a, buf, (socklen_t)len) == NULL)
        buf[0] = '\0';
    return buf;
}

/* ---- Resolution -------------------------------------------------------------- */

struct cw_net_lookup {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    int refs;            /* the waiter's and the thread's; under 'lock' */
    bool done;           /* under 'lock' */
    int rc;              /* getaddrinfo()'s result, once done */
    int sys_errno;
    struct addrinfo *res; /* owned until taken by the waiter */
    struct addrinfo hints;
    char *host;    /* owned */
    char *service; /* owned; may be NULL */
};

static void lookup_free(struct cw_net_lookup *l)
{
    if (l->res != NULL)
        freeaddrinfo(l->res);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free(l->host);
    free(l->service);
    free(l);
}

static void lookup_unref(struct cw_net_lookup *l)
{
    bool last;

    pthread_mutex_lock(&l->lock);
    last = --l->refs == 0;
    pthread_mutex_unlock(&l->lock);
    if (last)
        lookup_free(l);
}

static void *lookup_thread(void *arg)
{
    struct cw_net_lookup *l = arg;
    struct addrinfo *res = NULL;
    int rc, e;

    errno = 0;
    rc = getaddrinfo(l->host, l->service, &l->hints, &res);
    e = errno;
    pthread_mutex_lock(&l->lock);
    l->rc = rc;
    l->sys_errno = e;
    l->res = rc == 0 ? res : NULL;
    l->done = true;
    pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->lock);
    lookup_unref(l);
    return NULL;
}

static struct cw_net_lookup *lookup_new(const char *host, const char *service, int af, int socktype)
{
    struct cw_net_lookup *l = calloc(1, sizeof(*l));
    pthread_condattr_t ca;

    if (l == NULL)
        return NULL;
    l->host = strdup(host);
    l->service = service != NULL ? strdup(service) : NULL;
    if (l->host == NULL || (service != NULL && l->service == NULL))
        goto out_free;
    if (pthread_mutex_init(&l->lock, NULL) != 0)
        goto out_free;
    if (pthread_condattr_init(&ca) != 0)
        goto out_mutex;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&l->cond, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        goto out_mutex;
    }
    pthread_condattr_destroy(&ca);
    l->hints.ai_family = af;
    l->hints.ai_socktype = socktype;
    l->refs = 2;
    return l;

out_mutex:
    pthread_mutex_destroy(&l->lock);
out_free:
    free(l->host);
    free(l->service);
    free(l);
    return NULL;
}

void cw_net_lookup_abandon(struct cw_net_lookup **pending)
{
    if (*pending != NULL) {
        lookup_unref(*pending);
        *pending = NULL;
    }
}

int cw_net_resolve(const char *host, const char *service, int af, int socktype, cw_mono deadline,
                   struct cw_net_lookup **pending, struct addrinfo **out, int *gai_err,
                   int *sys_errno)
{
    struct cw_net_lookup *l;
    pthread_attr_t attr;
    pthread_t tid;
    struct timespec ts;
    bool done;
    int rc;

    *out = NULL;
    *gai_err = 0;
    *sys_errno = 0;
    if (*pending != NULL) {
        pthread_mutex_lock(&(*pending)->lock);
        done = (*pending)->done;
        pthread_mutex_unlock(&(*pending)->lock);
        if (!done)
            return CW_EIO;
        cw_net_lookup_abandon(pending);
    }

    l = lookup_new(host, service, af, socktype);
    if (l == NULL)
        return CW_ENOMEM;
    if (pthread_attr_init(&attr) != 0) {
        lookup_free(l);
        return CW_ENOMEM;
    }
    rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc == 0)
        rc = pthread_create(&tid, &attr, lookup_thread, l);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        lookup_free(l);
        return CW_ENOMEM;
    }

    ts.tv_sec = (time_t)(deadline / CW_S(1));
    ts.tv_nsec = (long)(deadline % CW_S(1));
    pthread_mutex_lock(&l->lock);
    while (!l->done) {
        if (pthread_cond_timedwait(&l->cond, &l->lock, &ts) == ETIMEDOUT)
            break;
    }
    done = l->done;
    if (done) {
        *out = l->res;
        l->res = NULL;
        *gai_err = l->rc;
        *sys_errno = l->sys_errno;
    }
    pthread_mutex_unlock(&l->lock);
    if (!done) {
        *pending = l; /* keeps the waiter's reference */
        return CW_ETIMEDOUT;
    }
    lookup_unref(l);
    if (*gai_err != 0)
        return CW_EPARSE;
    if (*out == NULL) {
        *gai_err = EAI_NONAME;
        return CW_EPARSE;
    }
    return CW_OK;
}

/* ---- Connect ----------------------------------------------------------------- */

int cw_net_wait(int fd, short events, cw_mono deadline)
{
    struct pollfd pfd;
    struct timespec ts;
    cw_duration left;
    int r;

    for (;;) {
        left = deadline - cw_now();
        if (left < 0)
            left = 0;
        ts.tv_sec = (time_t)(left / CW_S(1));
        ts.tv_nsec = (long)(left % CW_S(1));
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        r = ppoll(&pfd, 1, &ts, NULL);
        if (r > 0)
            return pfd.revents != 0 ? pfd.revents : POLLERR;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

int cw_net_connect(const struct sockaddr *sa, socklen_t salen, cw_mono deadline, int *fd, int *err,
                   cw_duration *elapsed)
{
    cw_mono t0;
    socklen_t elen = sizeof(int);
    int s, r, e = 0;

    *fd = -1;
    *err = 0;
    *elapsed = 0;
    s = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (s < 0) {
        *err = errno;
        return CW_EIO;
    }
    *fd = s;
    t0 = cw_now();
    if (connect(s, sa, salen) == 0) {
        *elapsed = cw_now() - t0;
        return CW_OK;
    }
    if (errno != EINPROGRESS) {
        *err = errno;
        *elapsed = cw_now() - t0;
        return CW_EIO;
    }
    r = cw_net_wait(s, POLLOUT, deadline);
    *elapsed = cw_now() - t0;
    if (r < 0) {
        *err = errno;
        return CW_EIO;
    }
    if (r == 0) {
        *err = ETIMEDOUT;
        return CW_ETIMEDOUT;
    }
    /* Writable without an error flag: connected (one syscall saved per
     * probe). Otherwise SO_ERROR tells what happened (ECONNREFUSED after a
     * RST, EHOSTUNREACH after an ICMP unreachable, ...). */
    if ((r & (POLLERR | POLLHUP)) == 0 && (r & POLLOUT) != 0)
        return CW_OK;
    if (getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &elen) != 0) {
        *err = errno;
        return CW_EIO;
    }
    if (e != 0) {
        *err = e;
        return CW_EIO;
    }
    return CW_OK;
}
