/* SPDX-License-Identifier: Apache-2.0 */
/*
 * icmp_stats.h - the pure parts of the "icmp" check: building echo requests,
 * parsing what an ICMP socket delivers (echo replies and the errors that
 * quote one of our requests), and the per-target probe ring from which the
 * window statistics (loss, RTT avg/min/max, jitter) and the cumulative
 * counters and histogram are read.
 *
 * Nothing here does I/O, takes a lock or allocates, except
 * cw_icmp_ring_init()/cw_icmp_ring_reset(). Parsers never read outside
 * [p, p+len). The ring is not thread-safe: collectors/icmp.c guards each
 * ring with its engine lock. Used by icmp.c, the unit tests and the fuzz
 * target.
 */
#ifndef CW_ICMP_STATS_H
#define CW_ICMP_STATS_H

#include "exporter/core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Packets -------------------------------------------------------------- */

#define CW_ICMP_HDR_LEN     8u  /* type, code, checksum, identifier, sequence */
#define CW_ICMP_COOKIE_LEN  16u /* magic, slot, generation, probe number */
#define CW_ICMP_MAGIC       0x6377706eu
#define CW_ICMP_PAYLOAD_MIN CW_ICMP_COOKIE_LEN
#define CW_ICMP_PAYLOAD_MAX 1472u

/* What identifies a probe inside its payload: the engine slot of the
 * target, that slot's generation (a reused slot never matches an old
 * reply) and the target's probe number. */
struct cw_icmp_cookie {
    uint32_t slot;
    uint32_t gen;
    uint32_t probe;
};

enum cw_icmp_what {
    CW_ICMP_PKT_IGNORE = 0, /* well-formed but not for us (other types, no cookie) */
    CW_ICMP_PKT_REPLY,      /* an echo reply */
    CW_ICMP_PKT_ERROR,      /* unreachable / time exceeded quoting an echo request */
};

struct cw_icmp_pkt {
    enum cw_icmp_what what;
    uint8_t type, code; /* of the message itself */
    uint16_t id, seq;   /* of the echo (the quoted request for errors) */
    bool have_cookie;
    struct cw_icmp_cookie cookie;
    uint8_t dst[16]; /* errors: destination of the quoted request */
    size_t dst_len;  /* 4, 16, or 0 when not quoted */
};

/* cw_icmp_checksum() returns the Internet checksum of 'len' bytes. */
uint16_t cw_icmp_checksum(const uint8_t *p, size_t len);

/* cw_icmp_build_echo() writes an echo request for 'family' (AF_INET or
 * AF_INET6) with 'payload' data bytes (>= CW_ICMP_PAYLOAD_MIN) into 'buf'
 * and returns its length, or 0 when 'cap' is too small. The IPv4 checksum
 * is filled in; the kernel computes the ICMPv6 one. */
size_t cw_icmp_build_echo(uint8_t *buf, size_t cap, int family, uint16_t id, uint16_t seq,
                          const struct cw_icmp_cookie *cookie, size_t payload);

/* cw_icmp_parse() parses one datagram read from an ICMP socket of
 * 'family'. 'ip_header' tells whether it starts with an IPv4 header (raw
 * IPv4 sockets). Returns CW_OK with *out filled (what may be IGNORE), or
 * CW_EPARSE for truncated or malformed input. */
int cw_icmp_parse(const uint8_t *p, size_t len, int family, bool ip_header,
                  struct cw_icmp_pkt *out);

/* cw_icmp_parse_request() parses one of our own echo requests as the
 * kernel hands it back with an error from the error queue (datagram
 * sockets). Returns CW_OK (out->what = ERROR) or CW_EPARSE. */
int cw_icmp_parse_request(const uint8_t *p, size_t len, int family, struct cw_icmp_pkt *out);

/* ---- Probe ring and window statistics ------------------------------------ */

/* Default histogram upper bounds in seconds (a ring's layout until
 * cw_icmp_ring_set_buckets()): 1-2-5 steps from 200 µs to 1 s, which spans
 * a LAN to another continent with 12 buckets; slower answers are in +Inf
 * (and in the avg/max gauges). Before issue 14 there were 18, from 50 µs to
 * 20 s. */
#define CW_ICMP_NBUCKETS 12
extern const double cw_icmp_buckets[CW_ICMP_NBUCKETS];

/* Most buckets a configured layout may have. */
#define CW_ICMP_MAX_BUCKETS 24

enum cw_icmp_slot_state {
    CW_ICMP_SLOT_EMPTY = 0,
    CW_ICMP_SLOT_PENDING,  /* sent, no answer yet */
    CW_ICMP_SLOT_ANSWERED, /* answered within the timeout */
    CW_ICMP_SLOT_LATE,     /* answered after the timeout: lost */
    CW_ICMP_SLOT_UNREACH,  /* an ICMP error or a local EHOSTUNREACH: lost */
    CW_ICMP_SLOT_FAILED,   /* sendto() failed otherwise: lost */
};

struct cw_icmp_slot {
    int64_t sent_ns; /* wall clock at send */
    int64_t rtt_ns;  /* ANSWERED only */
    uint32_t probe;
    uint8_t state;
};

struct cw_icmp_ring {
    struct cw_icmp_slot *slots; /* owned, cap entries */
    uint32_t cap;               /* a power of two >= window + in-flight probes */
    uint32_t window;            /* probes in the statistics window */
    int64_t timeout_ns;         /* a probe unanswered this long is lost */
    uint32_t next;              /* probe number of the next send */
    /* cumulative since the ring was made */
    uint64_t sent, received, late, duplicates, unreachable, send_errors;
    const double *bounds; /* borrowed, process lifetime: ascending upper bounds (s) */
    uint32_t nbounds;     /* <= CW_ICMP_MAX_BUCKETS */
    uint64_t hist[CW_ICMP_MAX_BUCKETS + 1]; /* per bucket (not cumulative), [nbounds]: +Inf */
    double rtt_sum;                         /* seconds, of received */
};

struct cw_icmp_summary {
    uint32_t probes;   /* settled probes in the window */
    uint32_t answered; /* of which answered in time */
    uint32_t unreach;  /* of which unreachable */
    bool last_unreach; /* the newest settled probe was unreachable */
    double loss_ratio; /* (probes - answered) / probes; 0 when probes == 0 */
    int64_t rtt_min_ns, rtt_max_ns;
    double rtt_avg_ns;
    double jitter_ns;  /* mean |rtt[i] - rtt[i-1]| over consecutive answers */
    uint32_t jitter_n; /* number of differences in jitter_ns */
    uint64_t sent, received, late, duplicates, unreachable, send_errors;
    uint64_t cumulative[CW_ICMP_MAX_BUCKETS]; /* histogram, cumulative, nbounds of them */
    uint32_t nbounds;                         /* the ring's layout */
    double rtt_sum;                           /* seconds */
};

enum cw_icmp_verdict {
    CW_ICMP_V_OK = 0, /* counted */
    CW_ICMP_V_LATE,   /* after the timeout, or so old its slot was reused */
    CW_ICMP_V_DUP,    /* already answered */
    CW_ICMP_V_UNKNOWN /* never sent */
};

/* cw_icmp_ring_init() allocates a ring holding a window of 'window' probes
 * plus room for the probes in flight ('inflight', >= 1). Returns CW_OK or
 * CW_ENOMEM. */
int cw_icmp_ring_init(struct cw_icmp_ring *r, uint32_t window, uint32_t inflight,
                      int64_t timeout_ns);

/* cw_icmp_ring_set_buckets() makes 'bounds' (n ascending upper bounds in
 * seconds, n <= CW_ICMP_MAX_BUCKETS, kept by the caller for the ring's
 * life) the ring's histogram layout. Call it before the first probe; a
 * fresh ring has cw_icmp_buckets. Returns CW_OK or CW_EINVAL (n too big). */
int cw_icmp_ring_set_buckets(struct cw_icmp_ring *r, const double *bounds, uint32_t n);

/* cw_icmp_ring_reset() frees the slots; NULL-safe and idempotent. */
void cw_icmp_ring_reset(struct cw_icmp_ring *r);

/* cw_icmp_ring_record() records that probe r->next was sent at 'sent_ns'
 * (wall clock) with outcome 'state' (PENDING, UNREACH or FAILED) and
 * advances r->next. */
void cw_icmp_ring_record(struct cw_icmp_ring *r, int64_t sent_ns, enum cw_icmp_slot_state state);

/* cw_icmp_ring_reply() accounts a reply to 'probe' received at 'recv_ns'. */
enum cw_icmp_verdict cw_icmp_ring_reply(struct cw_icmp_ring *r, uint32_t probe, int64_t recv_ns);

/* cw_icmp_ring_unreach() marks a pending 'probe' unreachable (ICMP error). */
void cw_icmp_ring_unreach(struct cw_icmp_ring *r, uint32_t probe);

/* cw_icmp_ring_summarize() computes the window statistics at wall time
 * 'now_ns'. The window is the last r->window probes before the oldest probe
 * still undecided (unanswered and younger than the timeout), so every probe
 * in it is settled and an answer never overtakes an older pending probe. */
void cw_icmp_ring_summarize(const struct cw_icmp_ring *r, int64_t now_ns,
                            struct cw_icmp_summary *s);

#endif
