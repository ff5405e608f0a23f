/* SPDX-License-Identifier: Apache-2.0 */
/*
 * icmp.c - the "icmp" check: ICMP/ICMPv6 echo latency, jitter and loss to
 * one target, measured by a process-wide engine.
 *
 * The engine (shared_new/shared_free) owns one socket per address family
 * (an unprivileged ICMP datagram socket when net.ipv4.ping_group_range
 * allows it, else a raw socket, which needs CAP_NET_RAW), a table of
 * targets with their probe rings (icmp_stats.c) and one I/O thread. That
 * thread sends each target's probes at its probe interval, paced from a
 * min-heap of send times, and reads replies with recvmmsg(); the receive
 * time is the kernel's SO_TIMESTAMPNS stamp, the send time is the wall
 * clock read right before sendto(). Replies are matched in O(1): the
 * payload carries the target's slot, the slot's generation and the probe
 * number; the ICMP sequence (probe number mod 2^16), the identifier (raw
 * mode) and the source address must agree too. The hot path does not
 * allocate.
 *
 * Instances register their target with the engine on their first run()
 * (name resolution is I/O, so not in configure()) and unregister in
 * release(); each instance owns its own engine slot, so an unchanged
 * instance kept across a reload keeps probing without a gap and a changed
 * one is a new slot. run() reads the target's window statistics under the
 * engine lock; the first run waits (up to its deadline) for the first probe
 * to be decided so that /probe and the first scrape have data.
 *
 * Threads: configure() on the loading thread; run() on scheduler workers;
 * the engine thread. The engine lock guards the table, heap and rings.
 */
#include "collectors/icmp_stats.h"
#include "collectors/netconn.h"
#include "exporter/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ICMP_BATCH        64            /* datagrams per recvmmsg() */
#define ICMP_RXBUF        2048          /* bytes per received datagram */
#define ICMP_CTLBUF       256           /* control bytes per datagram */
#define ICMP_START_GAP_NS 100000        /* new targets start at most 10,000 per second */
#define ICMP_MAX_PROBES   10000u        /* window or in-flight probes per target */
#define ICMP_SNDBUF       (1024 * 1024) /* socket buffers: bursts of thousands of probes */
#define ICMP_RCVBUF       (4 * 1024 * 1024)
#define ICMP_ENOSOCKET    1 /* icmp_resolve(): only families without a socket (EAI_* are < 0) */
#define ICMP_DRAIN_MARGIN CW_MS(1)  /* kernel stamp to socket queue, with room to spare */
#define ICMP_RERESOLVE    CW_MIN(5) /* names are looked up again this often */
#define ICMP_SEND_SLACK   CW_MS(1)  /* probes due this soon go out with the current batch */

/* ---- Engine ----------------------------------------------------------------- */

struct icmp_target {
    int fi; /* family index: 0 IPv4, 1 IPv6 */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    socklen_t addrlen;
    cw_duration interval;
    cw_mono next_send;
    size_t heap_pos;
    uint32_t payload;
    struct cw_icmp_ring ring;
};

struct icmp_engine {
    pthread_mutex_t lock;
    pthread_t thread;
    bool thread_started;
    bool stop;          /* under lock */
    int evfd;           /* wakes the thread: new target, stop */
    int fd[2];          /* IPv4, IPv6; -1 when not available */
    bool dgram[2];      /* datagram (unprivileged) or raw */
    const char *why[2]; /* borrowed (static text): why fd[i] is -1 */
    uint16_t ident;     /* raw mode identifier */

    struct icmp_target **slots; /* owned; NULL for free slots */
    uint32_t *gens;             /* owned: generation of each slot */
    uint32_t nslots;
    uint32_t *heap; /* owned: slot numbers, min-heap on next_send */
    size_t nheap;
    cw_mono last_start;
    int64_t drained_at; /* wall clock up to which every received reply was read */

    /* engine thread only */
    uint8_t tx[CW_ICMP_HDR_LEN + CW_ICMP_PAYLOAD_MAX];
    uint8_t rx[ICMP_BATCH][ICMP_RXBUF];
    uint8_t ctl[ICMP_BATCH][ICMP_CTLBUF];
    union {
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } from[ICMP_BATCH];
    struct iovec iov[ICMP_BATCH];
    struct mmsghdr msgs[ICMP_BATCH];
};

static int64_t icmp_realtime(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- Heap of send times (engine lock held) ---- */

static bool heap_less(const struct icmp_engine *e, size_t a, size_t b)
{
    return e->slots[e->heap[a]]->next_send < e->slots[e->heap[b]]->next_send;
}

static void heap_swap(struct icmp_engine *e, size_t a, size_t b)
{
    uint32_t t = e->heap[a];

    e->heap[a] = e->heap[b];
    e->heap[b] = t;
    e->slots[e->heap[a]]->heap_pos = a;
    e->slots[e->heap[b]]->heap_pos = b;
}

static void heap_up(struct icmp_engine *e, size_t i)
{
    while (i > 0 && heap_less(e, i, (i - 1) / 2)) {
        heap_swap(e, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct icmp_engine *e, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < e->nheap && heap_less(e, l, m))
            m = l;
        if (r < e->nheap && heap_less(e, r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(e, i, m);
        i = m;
    }
}

static void heap_remove(struct icmp_engine *e, size_t i)
{
    e->nheap--;
    if (i == e->nheap)
        return;
    heap_swap(e, i, e->nheap);
    heap_up(e, i);
    heap_down(e, e->slots[e->heap[i]]->heap_pos);
}

/* ---- Sending (engine thread, lock held) ---- */

static void icmp_send_one(struct icmp_engine *e, uint32_t slot, struct icmp_target *t)
{
    struct cw_icmp_cookie c = {.slot = slot, .gen = e->gens[slot], .probe = t->ring.next};
    size_t len = cw_icmp_build_echo(e->tx, sizeof(e->tx), t->fi ? AF_INET6 : AF_INET, e->ident,
                                    (uint16_t)t->ring.next, &c, t->payload);
    enum cw_icmp_slot_state st = CW_ICMP_SLOT_PENDING;
    int64_t now = icmp_realtime();
    ssize_t n = sendto(e->fd[t->fi], e->tx, len, MSG_DONTWAIT, &t->addr.sa, t->addrlen);

    /* Refused locally: no route, or a local firewall (the core's one errno
     * table says which errno is "unreachable"). */
    if (n < 0)
        st = cw_reason_from_errno(errno) == CW_REASON_UNREACHABLE ? CW_ICMP_SLOT_UNREACH
                                                                  : CW_ICMP_SLOT_FAILED;
    cw_icmp_ring_record(&t->ring, now, st);
}

/* icmp_send_due() sends every probe due by 'now' and returns the time of
 * the next one (or now + 1 s when there is none). */
static cw_mono icmp_send_due(struct icmp_engine *e, cw_mono now)
{
    while (e->nheap > 0) {
        uint32_t slot = e->heap[0];
        struct icmp_target *t = e->slots[slot];

        /* Coalescing sends due within the slack makes at most one wakeup
         * per millisecond at any rate; the RTT uses the real send time. */
        if (t->next_send > now + ICMP_SEND_SLACK)
            return t->next_send;
        icmp_send_one(e, slot, t);
        t->next_send += t->interval;
        if (t->next_send < now - t->interval)
            t->next_send = now; /* we fell behind (stopped clock, overload): skip, don't burst */
        heap_down(e, 0);
    }
    return now + CW_S(1);
}

/* ---- Receiving (engine thread) ---- */

static bool icmp_addr_matches(const struct icmp_target *t, const void *from, socklen_t fromlen)
{
    if (t->fi == 0) {
        const struct sockaddr_in *a = from;

        return fromlen >= (socklen_t)sizeof(*a) && a->sin_family == AF_INET &&
               a->sin_addr.s_addr == t->addr.in4.sin_addr.s_addr;
    }
    const struct sockaddr_in6 *a6 = from;

    return fromlen >= (socklen_t)sizeof(*a6) && a6->sin6_family == AF_INET6 &&
           memcmp(&a6->sin6_addr, &t->addr.in6.sin6_addr, 16) == 0;
}

static bool icmp_dst_matches(const struct icmp_target *t, const struct cw_icmp_pkt *pk)
{
    if (pk->dst_len == 0)
        return true;
    if (t->fi == 0)
        return pk->dst_len == 4 && memcmp(pk->dst, &t->addr.in4.sin_addr, 4) == 0;
    return pk->dst_len == 16 && memcmp(pk->dst, &t->addr.in6.sin6_addr, 16) == 0;
}

/* icmp_lookup() returns the target a packet's cookie names, after checking
 * the cookie's generation, the identifier (raw mode) and the sequence. */
static struct icmp_target *icmp_lookup(struct icmp_engine *e, int fi, const struct cw_icmp_pkt *pk)
{
    struct icmp_target *t;

    if (!pk->have_cookie || pk->cookie.slot >= e->nslots)
        return NULL;
    t = e->slots[pk->cookie.slot];
    if (t == NULL || e->gens[pk->cookie.slot] != pk->cookie.gen || t->fi != fi)
        return NULL;
    if (!e->dgram[fi] && pk->id != e->ident)
        return NULL;
    if (pk->seq != (uint16_t)pk->cookie.probe)
        return NULL;
    return t;
}

static int64_t icmp_msg_stamp(struct msghdr *mh)
{
    struct cmsghdr *c;

    for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;

            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        }
    }
    return icmp_realtime(); /* no stamp: the socket option failed; still usable */
}

static void icmp_handle(struct icmp_engine *e, int fi, struct msghdr *mh, const uint8_t *p,
                        size_t len, bool errqueue)
{
    struct cw_icmp_pkt pk;
    struct icmp_target *t;
    int rc;

    if (errqueue)
        rc = cw_icmp_parse_request(p, len, fi ? AF_INET6 : AF_INET, &pk);
    else
        rc = cw_icmp_parse(p, len, fi ? AF_INET6 : AF_INET, fi == 0 && !e->dgram[fi], &pk);
    if (rc != CW_OK || pk.what == CW_ICMP_PKT_IGNORE)
        return;
    t = icmp_lookup(e, fi, &pk);
    if (t == NULL)
        return;
    if (pk.what == CW_ICMP_PKT_REPLY) {
        if (!icmp_addr_matches(t, mh->msg_name, mh->msg_namelen))
            return;
        (void)cw_icmp_ring_reply(&t->ring, pk.cookie.probe, icmp_msg_stamp(mh));
    } else if (errqueue || icmp_dst_matches(t, &pk)) {
        cw_icmp_ring_unreach(&t->ring, pk.cookie.probe);
    }
}

/* icmp_drain() reads every pending datagram (or queued error) of fd[fi]. */
static void icmp_drain(struct icmp_engine *e, int fi, bool errqueue)
{
    for (;;) {
        int i, n;

        for (i = 0; i < ICMP_BATCH; i++) {
            struct msghdr *mh = &e->msgs[i].msg_hdr;

            e->iov[i].iov_base = e->rx[i];
            e->iov[i].iov_len = ICMP_RXBUF;
            memset(mh, 0, sizeof(*mh));
            mh->msg_name = &e->from[i];
            mh->msg_namelen = sizeof(e->from[i]);
            mh->msg_iov = &e->iov[i];
            mh->msg_iovlen = 1;
            mh->msg_control = e->ctl[i];
            mh->msg_controllen = ICMP_CTLBUF;
        }
        n = recvmmsg(e->fd[fi], e->msgs, ICMP_BATCH, MSG_DONTWAIT | (errqueue ? MSG_ERRQUEUE : 0),
                     NULL);
        if (n <= 0)
            return; /* EAGAIN, or an error we cannot act on: poll again */
        pthread_mutex_lock(&e->lock);
        for (i = 0; i < n; i++) {
            size_t len = e->msgs[i].msg_len;

            if (len > ICMP_RXBUF)
                len = ICMP_RXBUF;
            icmp_handle(e, fi, &e->msgs[i].msg_hdr, e->rx[i], len, errqueue);
        }
        pthread_mutex_unlock(&e->lock);
        if (n < ICMP_BATCH)
            return;
    }
}

static void *icmp_thread(void *arg)
{
    struct icmp_engine *e = arg;
    int64_t drained = 0;

    for (;;) {
        struct pollfd pf[3];
        struct timespec ts;
        cw_mono now, next;
        cw_duration wait;
        int i, n;

        pthread_mutex_lock(&e->lock);
        if (e->stop) {
            pthread_mutex_unlock(&e->lock);
            return NULL;
        }
        if (drained > e->drained_at)
            e->drained_at = drained;
        now = cw_now();
        next = icmp_send_due(e, now);
        pthread_mutex_unlock(&e->lock);

        wait = next - cw_now();
        if (wait < 0)
            wait = 0;
        ts.tv_sec = wait / CW_S(1);
        ts.tv_nsec = wait % CW_S(1);
        pf[0] = (struct pollfd){.fd = e->evfd, .events = POLLIN};
        pf[1] = (struct pollfd){.fd = e->fd[0], .events = POLLIN};
        pf[2] = (struct pollfd){.fd = e->fd[1], .events = POLLIN};
        n = ppoll(pf, 3, &ts, NULL);
        if (n < 0)
            continue; /* EINTR */
        if (pf[0].revents & POLLIN) {
            uint64_t v;

            if (read(e->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                cw_log(CW_LOG_WARN, "icmp", "eventfd read failed", (char *)NULL);
        }
        /* Every reply the kernel stamped before 'drained' is read by the
         * end of this pass, so a probe unanswered by then is really late:
         * a busy engine thread never turns a timely reply into a loss. */
        drained = icmp_realtime() - ICMP_DRAIN_MARGIN;
        for (i = 0; i < 2; i++) {
            if (e->fd[i] < 0)
                continue;
            if (pf[i + 1].revents & POLLERR)
                icmp_drain(e, i, true);
            icmp_drain(e, i, false);
        }
    }
}

static void icmp_wake(struct icmp_engine *e)
{
    uint64_t one = 1;

    if (write(e->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        cw_log(CW_LOG_WARN, "icmp", "eventfd write failed", (char *)NULL);
}

/* icmp_open() opens the ICMP socket of one family: datagram first, raw as
 * the fallback. */
static void icmp_open(struct icmp_engine *e, int fi)
{
    int family = fi ? AF_INET6 : AF_INET;
    int proto = fi ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
    int on = 1, rcv = ICMP_RCVBUF, snd = ICMP_SNDBUF;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
    int derr = errno;

    e->dgram[fi] = fd >= 0;
    if (fd < 0) {
        fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        if (fd < 0) {
            if (derr == EAFNOSUPPORT || errno == EAFNOSUPPORT)
                e->why[fi] = "address family not supported by the kernel";
            else
                e->why[fi] = "ICMP datagram sockets not allowed (net.ipv4.ping_group_range "
                             "excludes our group) and raw sockets need CAP_NET_RAW";
            return;
        }
    }
    /* Best effort: a failure only costs precision or burst capacity. */
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) != 0)
        cw_log(CW_LOG_WARN, "icmp", "no kernel receive timestamps, using user-space clock",
               (char *)NULL);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
    if (e->dgram[fi]) {
        /* Errors (unreachable) of datagram sockets arrive on the error queue. */
        if (fi == 0)
            (void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof(on));
        else
            (void)setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on));
    } else if (fi == 0) {
        /* Raw sockets see every ICMP packet: keep replies and errors only. */
        struct icmp_filter f = {.data = ~((1u << ICMP_ECHOREPLY) | (1u << ICMP_DEST_UNREACH) |
                                          (1u << ICMP_TIME_EXCEEDED))};

        (void)setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof(f));
    } else {
        struct icmp6_filter f;

        ICMP6_FILTER_SETBLOCKALL(&f);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
        ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &f);
        ICMP6_FILTER_SETPASS(ICMP6_PACKET_TOO_BIG, &f);
        ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &f);
        (void)setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
    }
    e->fd[fi] = fd;
}

static const char *icmp_mode(const struct icmp_engine *e, int fi)
{
    if (e->fd[fi] < 0)
        return "unavailable";
    return e->dgram[fi] ? "unprivileged" : "raw";
}

static void icmp_engine_free(void *shared)
{
    struct icmp_engine *e = shared;
    uint32_t i;

    if (e == NULL)
        return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->lock);
        e->stop = true;
        pthread_mutex_unlock(&e->lock);
        icmp_wake(e);
        pthread_join(e->thread, NULL);
    }
    for (i = 0; i < e->nslots; i++) {
        if (e->slots[i] != NULL) {
            cw_icmp_ring_reset(&e->slots[i]->ring);
            free(e->slots[i]);
        }
    }
    free(e->slots);
    free(e->gens);
    free(e->heap);
    for (i = 0; i < 2; i++)
        if (e->fd[i] >= 0)
            close(e->fd[i]);
    if (e->evfd >= 0)
        close(e->evfd);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

static void *icmp_engine_new(void)
{
    struct icmp_engine *e = calloc(1, sizeof(*e));
    char gid[32];

    if (e == NULL)
        return NULL;
    e->fd[0] = e->fd[1] = -1;
    e->evfd = -1;
    if (pthread_mutex_init(&e->lock, NULL) != 0) {
        free(e);
        return NULL;
    }
    e->ident = (uint16_t)(getpid() ^ (icmp_realtime() >> 10));
    icmp_open(e, 0);
    icmp_open(e, 1);
    (void)snprintf(gid, sizeof(gid), "%u", (unsigned)getegid());
    if (e->fd[0] < 0 && e->fd[1] < 0) {
        cw_log(CW_LOG_ERROR, "icmp", "cannot open an icmp socket", "reason", e->why[0], "gid", gid,
               "hint", "allow the group in net.ipv4.ping_group_range or grant CAP_NET_RAW",
               (char *)NULL);
        goto out_fail;
    }
    e->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->evfd < 0)
        goto out_fail;
    if (pthread_create(&e->thread, NULL, icmp_thread, e) != 0)
        goto out_fail;
    e->thread_started = true;
    (void)pthread_setname_np(e->thread, "cw-icmp"); /* visible in top -H and the bench */
    cw_log(CW_LOG_INFO, "icmp", "icmp engine started", "ip4", icmp_mode(e, 0), "ip6",
           icmp_mode(e, 1), (char *)NULL);
    return e;
out_fail:
    icmp_engine_free(e);
    return NULL;
}

/* icmp_engine_add() registers a target and returns its slot and generation. */
static int icmp_engine_add(struct icmp_engine *e, const struct sockaddr *sa, socklen_t salen,
                           cw_duration interval, cw_duration timeout, uint32_t window,
                           uint32_t payload, const struct cw_desc *rtt, uint32_t *slot_out,
                           uint32_t *gen_out, cw_mono *first_send)
{
    struct icmp_target *t = calloc(1, sizeof(*t));
    uint32_t slot, inflight = (uint32_t)(timeout / interval) + 2;
    cw_mono now;

    if (t == NULL)
        return CW_ENOMEM;
    if (cw_icmp_ring_init(&t->ring, window, inflight, timeout) != CW_OK) {
        free(t);
        return CW_ENOMEM;
    }
    /* The check's layout (process lifetime: icmp_layout()); none without a
     * histogram. */
    if (cw_icmp_ring_set_buckets(&t->ring, rtt != NULL ? rtt->buckets : NULL,
                                 rtt != NULL ? (uint32_t)rtt->nbuckets : 0) != CW_OK) {
        cw_icmp_ring_reset(&t->ring);
        free(t);
        return CW_EINVAL;
    }
    t->fi = sa->sa_family == AF_INET6;
    memcpy(&t->addr, sa, (size_t)salen);
    t->addrlen = salen;
    t->interval = interval;
    t->payload = payload;

    pthread_mutex_lock(&e->lock);
    for (slot = 0; slot < e->nslots && e->slots[slot] != NULL; slot++)
        ;
    if (slot == e->nslots) {
        uint32_t n = e->nslots ? e->nslots * 2 : 64;
        struct icmp_target **ns = realloc(e->slots, n * sizeof(*ns));
        uint32_t *ng, *nh;

        if (ns != NULL)
            e->slots = ns;
        ng = ns != NULL ? realloc(e->gens, n * sizeof(*ng)) : NULL;
        if (ng != NULL)
            e->gens = ng;
        nh = ng != NULL ? realloc(e->heap, n * sizeof(*nh)) : NULL;
        if (nh == NULL) {
            pthread_mutex_unlock(&e->lock);
            cw_icmp_ring_reset(&t->ring);
            free(t);
            return CW_ENOMEM;
        }
        e->heap = nh;
        memset(e->slots + e->nslots, 0, (n - e->nslots) * sizeof(*ns));
        memset(e->gens + e->nslots, 0, (n - e->nslots) * sizeof(*ng));
        e->nslots = n;
    }
    /* New targets start paced, so that a large configuration spreads its
     * probes instead of sending them all in the same millisecond. */
    now = cw_now();
    e->last_start =
        e->last_start + ICMP_START_GAP_NS > now ? e->last_start + ICMP_START_GAP_NS : now;
    t->next_send = e->last_start;
    *first_send = t->next_send;
    e->slots[slot] = t;
    t->heap_pos = e->nheap;
    e->heap[e->nheap++] = slot;
    heap_up(e, t->heap_pos);
    *slot_out = slot;
    *gen_out = e->gens[slot];
    pthread_mutex_unlock(&e->lock);
    icmp_wake(e);
    return CW_OK;
}

static void icmp_engine_remove(struct icmp_engine *e, uint32_t slot, uint32_t gen)
{
    struct icmp_target *t = NULL;

    pthread_mutex_lock(&e->lock);
    if (slot < e->nslots && e->slots[slot] != NULL && e->gens[slot] == gen) {
        t = e->slots[slot];
        heap_remove(e, t->heap_pos);
        e->slots[slot] = NULL;
        e->gens[slot]++;
    }
    pthread_mutex_unlock(&e->lock);
    if (t != NULL) {
        cw_icmp_ring_reset(&t->ring);
        free(t);
    }
}

static bool icmp_engine_summary(struct icmp_engine *e, uint32_t slot, uint32_t gen,
                                struct cw_icmp_summary *s)
{
    bool ok = false;

    pthread_mutex_lock(&e->lock);
    if (slot < e->nslots && e->slots[slot] != NULL && e->gens[slot] == gen) {
        /* Probes are judged as of the last complete read of the sockets,
         * not now: see icmp_thread(). */
        cw_icmp_ring_summarize(&e->slots[slot]->ring, e->drained_at, s);
        ok = true;
    }
    pthread_mutex_unlock(&e->lock);
    return ok;
}

/* ---- The check ---------------------------------------------------------------- */

struct icmp_state {
    char *target; /* owned (option table): host name or address */
    int family;   /* enum cw_net_family */
    cw_duration probe_interval, probe_timeout, window;
    int64_t payload_size;
    bool histogram;                 /* export connwatch_icmp_rtt_seconds */
    struct cw_doublelist buckets;   /* owned (option table): histogram_buckets, seconds */
    const struct cw_desc *rtt_desc; /* borrowed, process lifetime: the histogram's layout */

    struct icmp_engine *engine; /* borrowed: info->shared */
    uint32_t nwindow;           /* probes in the window */
    bool registered;
    uint32_t slot, gen;
    char addr[INET6_ADDRSTRLEN];  /* the address being probed */
    bool is_name;                 /* target is a name, not an address literal */
    cw_mono resolved_at;          /* last lookup of a name */
    bool dns_failing;             /* logged */
    struct cw_net_lookup *lookup; /* owned: a name lookup that outlived its run, or NULL */
};

static const struct cw_opt icmp_opts[] = {
    CW_OPT("target", CW_OPT_T_HOST, struct icmp_state, target, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT_ENUM("ip_family", struct icmp_state, family, "auto", cw_net_family_names, 0),
    CW_OPT("probe_interval", CW_OPT_T_DURATION, struct icmp_state, probe_interval, NULL, CW_MS(10),
           CW_S(3600), 0),
    CW_OPT("probe_timeout", CW_OPT_T_DURATION, struct icmp_state, probe_timeout, NULL, CW_MS(1),
           CW_S(60), 0),
    CW_OPT("window", CW_OPT_T_DURATION, struct icmp_state, window, "60s", CW_MS(10), CW_S(86400),
           0),
    CW_OPT("payload_size", CW_OPT_T_INT, struct icmp_state, payload_size, "56", CW_ICMP_PAYLOAD_MIN,
           CW_ICMP_PAYLOAD_MAX, 0),
    CW_OPT("histogram", CW_OPT_T_BOOL, struct icmp_state, histogram, "true", 0, 0, 0),
    CW_OPT("histogram_buckets", CW_OPT_T_DOUBLE_LIST, struct icmp_state, buckets, NULL, 0, 0, 0),
    CW_OPT_END,
};

static const struct cw_desc desc_rtt = {
    .name = "connwatch_icmp_rtt_seconds",
    .help = "Round-trip time of echo replies received within the probe timeout.",
    .type = CW_HISTOGRAM,
    .buckets = cw_icmp_buckets,
    .nbuckets = CW_ICMP_NBUCKETS,
};
/* ---- Histogram layouts ------------------------------------------------------- */

/* One bucket layout of connwatch_icmp_rtt_seconds. Published series point at
 * their descriptor, and a published batch can outlive the check that made
 * it (a scrape holds it across a reload), so the layouts configured are
 * kept for the life of the process: one per distinct list of bounds,
 * shared by every check naming it (a handful in practice; each reload
 * with a new list adds one). */
struct icmp_layout {
    struct icmp_layout *next;
    struct cw_desc desc;
    double bounds[CW_ICMP_MAX_BUCKETS];
};

static pthread_mutex_t icmp_layouts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct icmp_layout *icmp_layouts; /* owned; reachable until exit */

/* same_bounds() compares two lists of n bounds by value. */
static bool same_bounds(const double *a, const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* icmp_layout() returns the descriptor of the layout 'bounds' (n of them,
 * 1..CW_ICMP_MAX_BUCKETS, ascending), or NULL when out of memory. */
static const struct cw_desc *icmp_layout(const double *bounds, size_t n)
{
    const struct cw_desc *d = NULL;
    struct icmp_layout *l;

    if (n == CW_ICMP_NBUCKETS && same_bounds(bounds, cw_icmp_buckets, n))
        return &desc_rtt;
    pthread_mutex_lock(&icmp_layouts_lock);
    for (l = icmp_layouts; l != NULL; l = l->next) {
        if (l->desc.nbuckets == n && same_bounds(l->bounds, bounds, n)) {
            d = &l->desc;
            goto out_unlock;
        }
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL)
        goto out_unlock;
    memcpy(l->bounds, bounds, n * sizeof(*bounds));
    l->desc = desc_rtt;
    l->desc.buckets = l->bounds;
    l->desc.nbuckets = n;
    l->next = icmp_layouts;
    icmp_layouts = l;
    d = &l->desc;

out_unlock:
    pthread_mutex_unlock(&icmp_layouts_lock);
    return d;
}

/* icmp_configure_histogram() checks histogram_buckets (positive, strictly
 * ascending, at most CW_ICMP_MAX_BUCKETS; only with histogram: true) and
 * sets st->rtt_desc. */
static int icmp_configure_histogram(struct icmp_state *st, const struct cw_node *node,
                                    struct cw_diag *diag)
{
    const struct cw_node *at = node != NULL ? cw_node_get(node, "histogram_buckets") : NULL;
    int rc = CW_OK;

    st->rtt_desc = &desc_rtt;
    if (at == NULL)
        return CW_OK;
    if (!st->histogram) {
        cw_diagf(diag, at, "histogram_buckets needs histogram: true");
        return CW_ECONFIG;
    }
    if (st->buckets.n == 0 || st->buckets.n > CW_ICMP_MAX_BUCKETS) {
        cw_diagf(diag, at, "must list 1 to %d bounds in seconds (histogram: false for none)",
                 CW_ICMP_MAX_BUCKETS);
        return CW_ECONFIG;
    }
    for (size_t i = 0; i < st->buckets.n; i++) {
        const struct cw_node *item = i < at->nitems ? at->items[i] : at;
        double v = st->buckets.items[i];

        if (!(v > 0)) {
            cw_diagf(diag, item, "%g is not a positive number of seconds", v);
            rc = CW_ECONFIG;
        } else if (i > 0 && v <= st->buckets.items[i - 1]) {
            cw_diagf(diag, item, "%g is not above the bound before it (%g): list them ascending", v,
                     st->buckets.items[i - 1]);
            rc = CW_ECONFIG;
        }
    }
    if (rc != CW_OK)
        return rc;
    st->rtt_desc = icmp_layout(st->buckets.items, st->buckets.n);
    if (st->rtt_desc == NULL) {
        cw_diagf(diag, at, "out of memory");
        return CW_ENOMEM;
    }
    return CW_OK;
}

static const struct cw_desc desc_avg = {
    .name = "connwatch_icmp_rtt_avg_seconds",
    .help = "Mean round-trip time over the recent window.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_min = {
    .name = "connwatch_icmp_rtt_min_seconds",
    .help = "Smallest round-trip time over the recent window.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_max = {
    .name = "connwatch_icmp_rtt_max_seconds",
    .help = "Largest round-trip time over the recent window.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_jitter = {
    .name = "connwatch_icmp_jitter_seconds",
    .help = "Mean absolute difference of consecutive round-trip times over the recent window.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_loss = {
    .name = "connwatch_icmp_loss_ratio",
    .help = "Share of the probes of the recent window not answered within the probe timeout.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_window = {
    .name = "connwatch_icmp_window_probes",
    .help = "Probes in the recent window the loss ratio and RTT statistics are computed over.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_sent = {
    .name = "connwatch_icmp_packets_sent_total",
    .help = "Echo requests sent (including those whose send failed).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_received = {
    .name = "connwatch_icmp_packets_received_total",
    .help = "Echo replies received within the probe timeout, each probe counted once.",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_dups = {
    .name = "connwatch_icmp_duplicates_total",
    .help = "Duplicate echo replies (not counted as received).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_late = {
    .name = "connwatch_icmp_late_replies_total",
    .help = "Echo replies received after the probe timeout (their probes count as lost).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_unreach = {
    .name = "connwatch_icmp_unreachable_total",
    .help = "Probes answered by an ICMP unreachable or time-exceeded error, or refused locally "
            "for lack of a route.",
    .type = CW_COUNTER,
};

static int icmp_configure(void *state, const struct cw_node *node, const struct cw_check_info *info,
                          struct cw_diag *diag)
{
    struct icmp_state *st = state;
    int rc = cw_opts_apply(icmp_opts, st, node, cw_check_common_keys, diag);
    struct in_addr a4;
    struct in6_addr a6;
    uint64_t n;

    st->engine = info->shared;
    if (rc != CW_OK)
        return rc;
    if (st->probe_interval == 0)
        st->probe_interval = info->interval;
    if (st->probe_timeout == 0)
        st->probe_timeout = st->probe_interval < CW_S(1) ? st->probe_interval : CW_S(1);
    if (st->probe_timeout > st->probe_interval * (cw_duration)ICMP_MAX_PROBES) {
        cw_diagf(diag, cw_node_get(node, "probe_timeout"),
                 "more than %u probes would be in flight; raise probe_interval", ICMP_MAX_PROBES);
        rc = CW_ECONFIG;
    }
    n = (uint64_t)((st->window + st->probe_interval - 1) / st->probe_interval);
    if (n > ICMP_MAX_PROBES) {
        cw_diagf(diag, cw_node_get(node, "window"),
                 "window holds %llu probes, at most %u; shorten it or raise probe_interval",
                 (unsigned long long)n, ICMP_MAX_PROBES);
        rc = CW_ECONFIG;
    }
    st->nwindow = n > 0 ? (uint32_t)n : 1;
    if (icmp_configure_histogram(st, node, diag) != CW_OK)
        rc = CW_ECONFIG;
    st->is_name =
        inet_pton(AF_INET, st->target, &a4) != 1 && inet_pton(AF_INET6, st->target, &a6) != 1;
    if (st->family == CW_NET_FAMILY_IP6 && inet_pton(AF_INET, st->target, &a4) == 1) {
        cw_diagf(diag, cw_node_get(node, "target"), "%s is an IPv4 address but ip_family is ip6",
                 st->target);
        rc = CW_ECONFIG;
    }
    if (st->family == CW_NET_FAMILY_IP4 && inet_pton(AF_INET6, st->target, &a6) == 1) {
        cw_diagf(diag, cw_node_get(node, "target"), "%s is an IPv6 address but ip_family is ip4",
                 st->target);
        rc = CW_ECONFIG;
    }
    return rc;
}

static const char *icmp_target(const void *state)
{
    const struct icmp_state *st = state;

    return st->target;
}

/* icmp_resolve() resolves the target through the network layer by
 * 'deadline' (collectors/netconn.c: a silent resolver costs the run no more
 * than its deadline) to the first address of a family the engine has a
 * socket for. Returns 0; ICMP_ENOSOCKET when only families without a
 * socket came back (*fi_out then names the family); or -1 with *f (dns,
 * internal). With ip_family auto, AI_ADDRCONFIG is asked first and dropped
 * when it hides every address (::1 and 127/8 on a host without others). */
static int icmp_resolve(struct icmp_state *st, cw_mono deadline, struct sockaddr_storage *out,
                        socklen_t *outlen, char *text, size_t textlen, int *fi_out,
                        struct cw_net_fail *f)
{
    struct addrinfo *res = NULL, *ai;
    int flags = st->family == CW_NET_FAMILY_AUTO ? AI_ADDRCONFIG : 0, fi = 0;

    if (!cw_net_addrs(st->target, 0, st->family, SOCK_DGRAM, flags, deadline, &st->lookup, &res,
                      f)) {
        if (flags == 0 || f->gai != EAI_NONAME)
            return -1;
        if (!cw_net_addrs(st->target, 0, st->family, SOCK_DGRAM, 0, deadline, &st->lookup, &res, f))
            return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fi = ai->ai_family == AF_INET6;
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) && st->engine->fd[fi] >= 0 &&
            ai->ai_addrlen <= sizeof(*out))
            break;
    }
    if (ai == NULL) {
        *fi_out = res->ai_family == AF_INET6;
        freeaddrinfo(res);
        return ICMP_ENOSOCKET;
    }
    *fi_out = fi;
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    *outlen = ai->ai_addrlen;
    (void)cw_net_addr_format(ai->ai_addr, text, textlen);
    freeaddrinfo(res);
    return 0;
}

/* icmp_register() resolves the target and registers it with the engine.
 * Fails the run (dns, internal) when it cannot. *wait_until receives how
 * long the first run may wait for the first probe (0: not at all). */
static bool icmp_register(struct icmp_state *st, struct cw_run *run, cw_mono *wait_until)
{
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    struct cw_net_fail f;
    cw_mono first_send;
    int rc, fi = 0;

    rc = icmp_resolve(st, cw_run_deadline(run), &sa, &salen, st->addr, sizeof(st->addr), &fi, &f);
    if (rc == ICMP_ENOSOCKET) {
        cw_run_fail(run, CW_REASON_INTERNAL, "no ICMP%s socket: %s", fi ? "v6" : "",
                    st->engine->why[fi] != NULL ? st->engine->why[fi] : "unsupported family");
        return false;
    }
    if (rc != 0) {
        if (!st->dns_failing)
            cw_run_log(run, CW_LOG_WARN, "cannot resolve target", "error", f.detail, (char *)NULL);
        st->dns_failing = true;
        cw_run_fail(run, f.reason, "%s", f.detail);
        return false;
    }
    st->dns_failing = false;
    st->resolved_at = cw_now();
    rc = icmp_engine_add(st->engine, (struct sockaddr *)&sa, salen, st->probe_interval,
                         st->probe_timeout, st->nwindow, (uint32_t)st->payload_size,
                         st->histogram ? st->rtt_desc : NULL, &st->slot, &st->gen, &first_send);
    if (rc != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "out of memory");
        return false;
    }
    st->registered = true;
    /* Wait for the first probe only when it goes out at once: with
     * thousands of targets starting together, the paced ones would hold
     * scheduler workers for nothing. */
    *wait_until = first_send - cw_now() <= CW_MS(10)
                      ? first_send + st->probe_timeout + ICMP_DRAIN_MARGIN + CW_MS(20)
                      : 0;
    return true;
}

/* icmp_reresolve() looks a target name up again (every ICMP_RERESOLVE)
 * and moves the probes to the new address when it changed; the statistics
 * then start afresh. A failed lookup keeps the old address (the dns check
 * is the one that reports resolver trouble). The lookup may take half of
 * what is left of the run, so that the run still reports its statistics
 * on time when the resolver is silent. */
static void icmp_reresolve(struct icmp_state *st, struct cw_run *run)
{
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    struct cw_net_fail f;
    char text[INET6_ADDRSTRLEN];
    cw_mono first_send;
    uint32_t slot, gen;
    int fi = 0, rc;

    st->resolved_at = cw_now();
    rc = icmp_resolve(st, cw_now() + cw_run_remaining(run) / 2, &sa, &salen, text, sizeof(text),
                      &fi, &f);
    if (rc != 0) {
        if (!st->dns_failing)
            cw_run_log(run, CW_LOG_WARN, "cannot resolve target again, probing the old address",
                       "address", st->addr, "error",
                       rc == ICMP_ENOSOCKET ? "no socket for the family" : f.detail, (char *)NULL);
        st->dns_failing = true;
        return;
    }
    st->dns_failing = false;
    if (strcmp(text, st->addr) == 0)
        return;
    if (icmp_engine_add(st->engine, (struct sockaddr *)&sa, salen, st->probe_interval,
                        st->probe_timeout, st->nwindow, (uint32_t)st->payload_size,
                        st->histogram ? st->rtt_desc : NULL, &slot, &gen, &first_send) != CW_OK)
        return; /* out of memory: keep the old address */
    cw_run_log(run, CW_LOG_INFO, "target address changed", "old", st->addr, "new", text,
               (char *)NULL);
    icmp_engine_remove(st->engine, st->slot, st->gen);
    st->slot = slot;
    st->gen = gen;
    memcpy(st->addr, text, sizeof(text));
}

static void icmp_run(void *state, struct cw_run *run)
{
    struct icmp_state *st = state;
    struct cw_icmp_summary s;
    bool first = false;
    cw_mono wait_until = 0;

    if (st->engine == NULL) {
        cw_run_fail(run, CW_REASON_INTERNAL,
                    "no ICMP socket: allow the group in net.ipv4.ping_group_range or grant "
                    "CAP_NET_RAW (see the log at start)");
        return;
    }
    if (!st->registered) {
        if (!icmp_register(st, run, &wait_until))
            return;
        first = true;
    } else if (st->is_name && cw_now() - st->resolved_at >= ICMP_RERESOLVE) {
        icmp_reresolve(st, run);
    }
    for (;;) {
        if (!icmp_engine_summary(st->engine, st->slot, st->gen, &s)) {
            cw_run_fail(run, CW_REASON_INTERNAL, "target vanished from the icmp engine");
            return;
        }
        /* The first run waits for the first probe to be decided. */
        if (!first || s.probes > 0 || cw_run_remaining(run) < CW_MS(5) || cw_now() >= wait_until)
            break;
        struct timespec ts = {0, 2000000};
        (void)nanosleep(&ts, NULL);
    }

    if (st->histogram)
        cw_emit_histogram(run, st->rtt_desc, NULL, s.cumulative, s.received, s.rtt_sum);
    cw_emit(run, &desc_sent, (double)s.sent, NULL);
    cw_emit(run, &desc_received, (double)s.received, NULL);
    cw_emit(run, &desc_dups, (double)s.duplicates, NULL);
    cw_emit(run, &desc_late, (double)s.late, NULL);
    cw_emit(run, &desc_unreach, (double)s.unreachable, NULL);
    cw_emit(run, &desc_window, (double)s.probes, NULL);
    if (s.probes == 0) {
        /* Nothing decided yet. A first run that waited for its probe (a
         * /probe request) ran out of time: the target did not answer
         * within the run's deadline. Paced first runs export counters. */
        if (wait_until != 0)
            cw_run_fail(run, CW_REASON_TIMEOUT, "no reply from %s before the deadline", st->addr);
        return;
    }
    cw_emit(run, &desc_loss, s.loss_ratio, NULL);
    if (s.answered > 0) {
        cw_emit(run, &desc_avg, s.rtt_avg_ns / 1e9, NULL);
        cw_emit(run, &desc_min, (double)s.rtt_min_ns / 1e9, NULL);
        cw_emit(run, &desc_max, (double)s.rtt_max_ns / 1e9, NULL);
    }
    if (s.jitter_n > 0)
        cw_emit(run, &desc_jitter, s.jitter_ns / 1e9, NULL);
    if (s.answered == 0) {
        if (s.unreach > 0)
            cw_run_fail(run, CW_REASON_UNREACHABLE, "%s unreachable (%u of %u probes)", st->addr,
                        s.unreach, s.probes);
        else
            cw_run_fail(run, CW_REASON_TIMEOUT, "no reply from %s to %u probes", st->addr,
                        s.probes);
    }
}

static void icmp_release(void *state)
{
    struct icmp_state *st = state;

    if (st->registered && st->engine != NULL)
        icmp_engine_remove(st->engine, st->slot, st->gen);
    st->registered = false;
    cw_net_lookup_abandon(&st->lookup);
    cw_opts_release(icmp_opts, st);
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const icmp_descs[] = {
    &desc_rtt,  &desc_avg,      &desc_min,  &desc_max,  &desc_jitter,  &desc_loss, &desc_window,
    &desc_sent, &desc_received, &desc_dups, &desc_late, &desc_unreach, NULL,
};
const struct cw_check_kind cw_kind_icmp = {
    .name = "icmp",
    .layer = CW_LAYER_NETWORK,
    .state_size = sizeof(struct icmp_state),
    .reasons = 1u << CW_REASON_DNS | 1u << CW_REASON_TIMEOUT | 1u << CW_REASON_UNREACHABLE |
               1u << CW_REASON_INTERNAL,
    .configure = icmp_configure,
    .target = icmp_target,
    .run = icmp_run,
    .release = icmp_release,
    .shared_new = icmp_engine_new,
    .shared_free = icmp_engine_free,
    .probe_option = "target",
    .descs = {icmp_descs},
};
