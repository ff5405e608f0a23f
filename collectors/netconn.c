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
#include <stdarg.h>
#include <stdio.h>
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

static struct cw_net_lookup *lookup_new(const char *host, const char *service, int af, int socktype,
                                        int flags)
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
    l->hints.ai_flags = flags;
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

int cw_net_resolve(const char *host, const char *service, int af, int socktype, int flags,
                   cw_mono deadline, struct cw_net_lookup **pending, struct addrinfo **out,
                   int *gai_err, int *sys_errno)
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

    l = lookup_new(host, service, af, socktype, flags);
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

/* ---- The layer ---------------------------------------------------------------- */

static void net_fail(struct cw_net_fail *f, enum cw_reason reason, int gai, const char *fmt, ...)
    CW_PRINTF(4, 5);

static void net_fail(struct cw_net_fail *f, enum cw_reason reason, int gai, const char *fmt, ...)
{
    va_list ap;

    f->reason = reason;
    f->gai = gai;
    va_start(ap, fmt);
    (void)vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
    va_end(ap);
}

/* net_numeric() resolves an IP literal without a thread: getaddrinfo() with
 * AI_NUMERICHOST does no I/O. Returns false when 'host' is not a literal. */
static bool net_numeric(const char *host, const char *service, int af, int socktype,
                        struct addrinfo **out, int *gai)
{
    struct addrinfo hints, *res = NULL;
    struct in6_addr a6;
    struct in_addr a4;
    char plain[INET6_ADDRSTRLEN + 1];
    const char *pct = strchr(host, '%');

    /* "fe80::1%eth0" is a literal too: check the part before the scope. */
    if (pct != NULL && (size_t)(pct - host) < sizeof(plain)) {
        memcpy(plain, host, (size_t)(pct - host));
        plain[pct - host] = '\0';
    } else {
        (void)snprintf(plain, sizeof(plain), "%s", host);
    }
    if (inet_pton(AF_INET, plain, &a4) != 1 && inet_pton(AF_INET6, plain, &a6) != 1)
        return false;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = af;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICHOST | (service != NULL ? AI_NUMERICSERV : 0);
    *gai = getaddrinfo(host, service, &hints, &res);
    *out = *gai == 0 ? res : NULL;
    if (*gai == 0 && res == NULL)
        *gai = EAI_NONAME;
    return true;
}

bool cw_net_addrs(const char *host, unsigned port, int family, int socktype, int flags,
                  cw_mono deadline, struct cw_net_lookup **pending, struct addrinfo **out,
                  struct cw_net_fail *f)
{
    char service[16], eb[128];
    const char *svc = NULL;
    int gai = 0, se = 0, rc, af = cw_net_family_af(family);

    *out = NULL;
    if (port != 0) {
        (void)snprintf(service, sizeof(service), "%u", port);
        svc = service;
    }
    if (net_numeric(host, svc, af, socktype, out, &gai))
        rc = gai == 0 ? CW_OK : CW_EPARSE;
    else
        rc = cw_net_resolve(host, svc, af, socktype, flags, deadline, pending, out, &gai, &se);
    switch (rc) {
    case CW_OK:
        return true;
    case CW_EPARSE:
        net_fail(f, cw_net_reason_from_gai(gai, se), gai, "resolve %s: %s", host,
                 gai == EAI_SYSTEM ? cw_strerror_r(se, eb, sizeof(eb)) : gai_strerror(gai));
        return false;
    case CW_ETIMEDOUT:
        net_fail(f, CW_REASON_DNS, 0, "resolve %s: no answer from the resolver within the deadline",
                 host);
        return false;
    case CW_EIO:
        net_fail(f, CW_REASON_DNS, 0,
                 "resolve %s: the previous lookup has not finished yet (resolver not answering)",
                 host);
        return false;
    default:
        net_fail(f, CW_REASON_INTERNAL, 0, "resolve %s: out of memory or threads", host);
        return false;
    }
}

bool cw_net_first(const char *host, unsigned port, int family, cw_mono deadline,
                  struct cw_net_lookup **pending, struct sockaddr_storage *ss, socklen_t *len,
                  struct cw_net_fail *f)
{
    struct addrinfo *res = NULL;

    if (!cw_net_addrs(host, port, family, SOCK_STREAM, 0, deadline, pending, &res, f))
        return false;
    if (res->ai_addrlen > sizeof(*ss)) {
        freeaddrinfo(res);
        net_fail(f, CW_REASON_INTERNAL, 0, "resolve %s: address too long", host);
        return false;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

static unsigned net_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return 0;
}

void cw_net_connect_fail(int rc, int err, const struct sockaddr *sa, cw_duration elapsed,
                         struct cw_net_fail *f)
{
    char ab[INET6_ADDRSTRLEN], eb[128];

    (void)cw_net_addr_format(sa, ab, sizeof(ab));
    if (rc == CW_ETIMEDOUT)
        net_fail(f, CW_REASON_TIMEOUT, 0,
                 "connect to %s port %u: no answer to the SYN within %.3fs", ab, net_port(sa),
                 cw_seconds(elapsed));
    else
        net_fail(f, cw_reason_from_errno(err), 0, "connect to %s port %u: %s", ab, net_port(sa),
                 cw_strerror_r(err, eb, sizeof(eb)));
}

bool cw_net_dial(const char *host, unsigned port, int family, unsigned max_addrs, cw_mono deadline,
                 struct cw_net_lookup **pending, struct cw_net_conn *c, struct cw_net_fail *f)
{
    struct addrinfo *res = NULL, *ai;
    unsigned tried = 0;
    int rc = CW_EIO, err = 0;

    c->fd = -1;
    c->addrlen = 0;
    c->elapsed = 0;
    if (!cw_net_addrs(host, port, family, SOCK_STREAM, 0, deadline, pending, &res, f))
        return false;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(c->addr) ||
            (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
            continue;
        if (tried > 0 && ((max_addrs != 0 && tried >= max_addrs) || cw_now() >= deadline))
            break; /* the last attempt's failure stands */
        if (c->fd >= 0)
            (void)close(c->fd);
        memset(&c->addr, 0, sizeof(c->addr));
        memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
        c->addrlen = ai->ai_addrlen;
        tried++;
        rc = cw_net_connect(ai->ai_addr, ai->ai_addrlen, deadline, &c->fd, &err, &c->elapsed);
        if (rc == CW_OK || rc == CW_ETIMEDOUT)
            break; /* connected, or the deadline is spent */
    }
    freeaddrinfo(res);
    if (rc == CW_OK)
        return true;
    if (tried == 0) {
        net_fail(f, CW_REASON_DNS, 0, "resolve %s: no IPv4 or IPv6 address", host);
        return false;
    }
    cw_net_connect_fail(rc, err, (const struct sockaddr *)&c->addr, c->elapsed, f);
    return false;
}
