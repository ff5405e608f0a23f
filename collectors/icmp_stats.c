/* SPDX-License-Identifier: Apache-2.0 */
/*
 * icmp_stats.c - echo request building, ICMP/ICMPv6 parsing and the probe
 * ring of the "icmp" check. See icmp_stats.h. Pure: no I/O, no locks; only
 * cw_icmp_ring_init() allocates. Called by the ICMP engine thread and run()
 * (under the engine lock), the unit tests and the fuzz target.
 */
#include "collectors/icmp_stats.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

const double cw_icmp_buckets[CW_ICMP_NBUCKETS] = {
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
};

#define ICMP4_ECHO_REPLY  0
#define ICMP4_UNREACH     3
#define ICMP4_ECHO        8
#define ICMP4_TIME_EXCEED 11
#define ICMP6_UNREACH     1
#define ICMP6_TOO_BIG     2
#define ICMP6_TIME_EXCEED 3
#define ICMP6_ECHO        128
#define ICMP6_ECHO_REPLY  129
#define IP4_PROTO_ICMP    1
#define IP6_NEXT_ICMP     58
#define IP6_HDR_LEN       40u

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint16_t cw_icmp_checksum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += get16(p + i);
    if (len & 1u)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

size_t cw_icmp_build_echo(uint8_t *buf, size_t cap, int family, uint16_t id, uint16_t seq,
                          const struct cw_icmp_cookie *cookie, size_t payload)
{
    size_t len = CW_ICMP_HDR_LEN + payload, i;

    if (payload < CW_ICMP_PAYLOAD_MIN || len > cap)
        return 0;
    buf[0] = family == AF_INET6 ? ICMP6_ECHO : ICMP4_ECHO;
    buf[1] = 0;
    put16(buf + 2, 0);
    put16(buf + 4, id);
    put16(buf + 6, seq);
    put32(buf + 8, CW_ICMP_MAGIC);
    put32(buf + 12, cookie->slot);
    put32(buf + 16, cookie->gen);
    put32(buf + 20, cookie->probe);
    for (i = CW_ICMP_HDR_LEN + CW_ICMP_COOKIE_LEN; i < len; i++)
        buf[i] = (uint8_t)i; /* ping's pattern: recognisable in captures */
    if (family != AF_INET6)
        put16(buf + 2, cw_icmp_checksum(buf, len));
    return len;
}

/* icmp_echo_fields() reads id, seq and the cookie (if present and ours)
 * of an echo message of 'len' >= 8 bytes. */
static void icmp_echo_fields(const uint8_t *p, size_t len, struct cw_icmp_pkt *out)
{
    out->id = get16(p + 4);
    out->seq = get16(p + 6);
    out->have_cookie = false;
    if (len >= CW_ICMP_HDR_LEN + CW_ICMP_COOKIE_LEN && get32(p + 8) == CW_ICMP_MAGIC) {
        out->have_cookie = true;
        out->cookie.slot = get32(p + 12);
        out->cookie.gen = get32(p + 16);
        out->cookie.probe = get32(p + 20);
    }
}

/* icmp_quoted4() parses the IPv4 packet quoted by an ICMPv4 error. */
static int icmp_quoted4(const uint8_t *p, size_t len, struct cw_icmp_pkt *out)
{
    size_t ihl;

    if (len < 20 || (p[0] >> 4) != 4)
        return CW_EPARSE;
    ihl = (size_t)(p[0] & 0x0fu) * 4;
    if (ihl < 20 || ihl > len)
        return CW_EPARSE;
    memcpy(out->dst, p + 16, 4);
    out->dst_len = 4;
    if (p[9] != IP4_PROTO_ICMP || len - ihl < CW_ICMP_HDR_LEN || p[ihl] != ICMP4_ECHO)
        return CW_OK; /* not a quoted echo request: ignore */
    icmp_echo_fields(p + ihl, len - ihl, out);
    out->what = CW_ICMP_PKT_ERROR;
    return CW_OK;
}

/* icmp_quoted6() parses the IPv6 packet quoted by an ICMPv6 error. */
static int icmp_quoted6(const uint8_t *p, size_t len, struct cw_icmp_pkt *out)
{
    if (len < IP6_HDR_LEN || (p[0] >> 4) != 6)
        return CW_EPARSE;
    memcpy(out->dst, p + 24, 16);
    out->dst_len = 16;
    /* Extension headers are not followed: we never send any. */
    if (p[6] != IP6_NEXT_ICMP || len - IP6_HDR_LEN < CW_ICMP_HDR_LEN ||
        p[IP6_HDR_LEN] != ICMP6_ECHO)
        return CW_OK;
    icmp_echo_fields(p + IP6_HDR_LEN, len - IP6_HDR_LEN, out);
    out->what = CW_ICMP_PKT_ERROR;
    return CW_OK;
}

int cw_icmp_parse(const uint8_t *p, size_t len, int family, bool ip_header, struct cw_icmp_pkt *out)
{
    memset(out, 0, sizeof(*out));
    if (family == AF_INET && ip_header) {
        size_t ihl;

        if (len < 20 || (p[0] >> 4) != 4)
            return CW_EPARSE;
        ihl = (size_t)(p[0] & 0x0fu) * 4;
        if (ihl < 20 || ihl > len || p[9] != IP4_PROTO_ICMP)
            return CW_EPARSE;
        p += ihl;
        len -= ihl;
    }
    if (len < CW_ICMP_HDR_LEN)
        return CW_EPARSE;
    out->type = p[0];
    out->code = p[1];
    if (family == AF_INET6) {
        switch (p[0]) {
        case ICMP6_ECHO_REPLY:
            icmp_echo_fields(p, len, out);
            out->what = CW_ICMP_PKT_REPLY;
            return CW_OK;
        case ICMP6_UNREACH:
        case ICMP6_TOO_BIG:
        case ICMP6_TIME_EXCEED:
            return icmp_quoted6(p + CW_ICMP_HDR_LEN, len - CW_ICMP_HDR_LEN, out);
        default:
            return CW_OK;
        }
    }
    switch (p[0]) {
    case ICMP4_ECHO_REPLY:
        icmp_echo_fields(p, len, out);
        out->what = CW_ICMP_PKT_REPLY;
        return CW_OK;
    case ICMP4_UNREACH:
    case ICMP4_TIME_EXCEED:
        return icmp_quoted4(p + CW_ICMP_HDR_LEN, len - CW_ICMP_HDR_LEN, out);
    default:
        return CW_OK;
    }
}

int cw_icmp_parse_request(const uint8_t *p, size_t len, int family, struct cw_icmp_pkt *out)
{
    memset(out, 0, sizeof(*out));
    if (len < CW_ICMP_HDR_LEN || p[0] != (family == AF_INET6 ? ICMP6_ECHO : ICMP4_ECHO))
        return CW_EPARSE;
    icmp_echo_fields(p, len, out);
    out->what = CW_ICMP_PKT_ERROR;
    return CW_OK;
}

/* ---- Ring ----------------------------------------------------------------- */

int cw_icmp_ring_init(struct cw_icmp_ring *r, uint32_t window, uint32_t inflight,
                      int64_t timeout_ns)
{
    memset(r, 0, sizeof(*r));
    if (window == 0)
        window = 1;
    if (inflight == 0)
        inflight = 1;
    /* A power of two, so that probe % cap stays contiguous across the
     * 2^32 wrap of probe numbers. */
    r->cap = 1;
    while (r->cap < window + inflight)
        r->cap <<= 1;
    r->slots = calloc(r->cap, sizeof(*r->slots));
    if (r->slots == NULL)
        return CW_ENOMEM;
    r->window = window;
    r->timeout_ns = timeout_ns;
    r->bounds = cw_icmp_buckets;
    r->nbounds = CW_ICMP_NBUCKETS;
    return CW_OK;
}

int cw_icmp_ring_set_buckets(struct cw_icmp_ring *r, const double *bounds, uint32_t n)
{
    if (n > CW_ICMP_MAX_BUCKETS || (n > 0 && bounds == NULL))
        return CW_EINVAL;
    r->bounds = bounds;
    r->nbounds = n;
    memset(r->hist, 0, sizeof(r->hist));
    return CW_OK;
}

void cw_icmp_ring_reset(struct cw_icmp_ring *r)
{
    free(r->slots);
    memset(r, 0, sizeof(*r));
}

void cw_icmp_ring_record(struct cw_icmp_ring *r, int64_t sent_ns, enum cw_icmp_slot_state state)
{
    struct cw_icmp_slot *s = &r->slots[r->next % r->cap];

    s->sent_ns = sent_ns;
    s->rtt_ns = 0;
    s->probe = r->next;
    s->state = (uint8_t)state;
    r->next++;
    r->sent++;
    if (state == CW_ICMP_SLOT_UNREACH)
        r->unreachable++;
    else if (state == CW_ICMP_SLOT_FAILED)
        r->send_errors++;
}

/* ring_slot() returns the slot of a probe that was sent and not yet
 * overwritten, or NULL. */
static struct cw_icmp_slot *ring_slot(struct cw_icmp_ring *r, uint32_t probe, bool *stale)
{
    struct cw_icmp_slot *s;
    uint32_t age = r->next - probe;

    *stale = false;
    if (r->cap == 0 || age == 0 || age > 0x80000000u || age > r->sent)
        return NULL; /* never sent */
    s = &r->slots[probe % r->cap];
    if (s->state == CW_ICMP_SLOT_EMPTY || s->probe != probe) {
        *stale = true;
        return NULL;
    }
    return s;
}

enum cw_icmp_verdict cw_icmp_ring_reply(struct cw_icmp_ring *r, uint32_t probe, int64_t recv_ns)
{
    bool stale;
    struct cw_icmp_slot *s = ring_slot(r, probe, &stale);
    int64_t rtt;
    size_t b;

    if (s == NULL) {
        if (!stale)
            return CW_ICMP_V_UNKNOWN;
        r->late++;
        return CW_ICMP_V_LATE;
    }
    switch (s->state) {
    case CW_ICMP_SLOT_PENDING:
        break;
    case CW_ICMP_SLOT_ANSWERED:
    case CW_ICMP_SLOT_LATE:
        r->duplicates++;
        return CW_ICMP_V_DUP;
    default: /* an answer after an error or a failed send: count it late */
        r->late++;
        return CW_ICMP_V_LATE;
    }
    rtt = recv_ns - s->sent_ns;
    if (rtt < 0)
        rtt = 0; /* the wall clock stepped back between send and receive */
    if (rtt > r->timeout_ns) {
        s->state = CW_ICMP_SLOT_LATE;
        r->late++;
        return CW_ICMP_V_LATE;
    }
    s->state = CW_ICMP_SLOT_ANSWERED;
    s->rtt_ns = rtt;
    r->received++;
    r->rtt_sum += (double)rtt / 1e9;
    for (b = 0; b < r->nbounds && (double)rtt / 1e9 > r->bounds[b]; b++)
        ;
    r->hist[b]++;
    return CW_ICMP_V_OK;
}

void cw_icmp_ring_unreach(struct cw_icmp_ring *r, uint32_t probe)
{
    bool stale;
    struct cw_icmp_slot *s = ring_slot(r, probe, &stale);

    if (s == NULL || s->state != CW_ICMP_SLOT_PENDING)
        return;
    s->state = CW_ICMP_SLOT_UNREACH;
    r->unreachable++;
}

void cw_icmp_ring_summarize(const struct cw_icmp_ring *r, int64_t now_ns, struct cw_icmp_summary *s)
{
    uint32_t lo, end, start, p;
    int64_t prev = -1;
    double sum = 0, jsum = 0;
    uint64_t cum = 0;
    size_t b;

    memset(s, 0, sizeof(*s));
    s->sent = r->sent;
    s->received = r->received;
    s->late = r->late;
    s->duplicates = r->duplicates;
    s->unreachable = r->unreachable;
    s->send_errors = r->send_errors;
    s->rtt_sum = r->rtt_sum;
    s->nbounds = r->nbounds;
    for (b = 0; b < r->nbounds; b++) {
        cum += r->hist[b];
        s->cumulative[b] = cum;
    }
    if (r->cap == 0)
        return;
    lo = r->sent >= r->cap ? r->next - r->cap : r->next - (uint32_t)r->sent;
    /* The window ends before the oldest undecided probe. */
    for (end = lo; end != r->next; end++) {
        const struct cw_icmp_slot *sl = &r->slots[end % r->cap];

        if (sl->state == CW_ICMP_SLOT_PENDING && now_ns - sl->sent_ns <= r->timeout_ns)
            break;
    }
    start = end - lo > r->window ? end - r->window : lo;
    for (p = start; p != end; p++) {
        const struct cw_icmp_slot *sl = &r->slots[p % r->cap];

        s->probes++;
        s->last_unreach = sl->state == CW_ICMP_SLOT_UNREACH;
        if (sl->state == CW_ICMP_SLOT_UNREACH)
            s->unreach++;
        if (sl->state != CW_ICMP_SLOT_ANSWERED)
            continue;
        if (s->answered == 0 || sl->rtt_ns < s->rtt_min_ns)
            s->rtt_min_ns = sl->rtt_ns;
        if (s->answered == 0 || sl->rtt_ns > s->rtt_max_ns)
            s->rtt_max_ns = sl->rtt_ns;
        s->answered++;
        sum += (double)sl->rtt_ns;
        if (prev >= 0) {
            jsum += (double)(sl->rtt_ns > prev ? sl->rtt_ns - prev : prev - sl->rtt_ns);
            s->jitter_n++;
        }
        prev = sl->rtt_ns;
    }
    if (s->probes > 0)
        s->loss_ratio = (double)(s->probes - s->answered) / (double)s->probes;
    if (s->answered > 0)
        s->rtt_avg_ns = sum / s->answered;
    if (s->jitter_n > 0)
        s->jitter_ns = jsum / s->jitter_n;
}
