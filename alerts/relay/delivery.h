/* SPDX-License-Identifier: Apache-2.0 */
/*
 * delivery.h - the delivery engine of connwatch-relay (delivery.c): one
 * slot (spool and counters) per receiver name, kept across reloads, and one
 * delivery thread per receiver of the live configuration, with retries,
 * backoff with jitter, the rate limit, merging, the fallback receiver and
 * dead letters.
 *
 * Threads: HTTP handlers count on slots and put into their spools; each
 * receiver's delivery thread takes from its own spool; the reload path
 * (serialised by the caller) attaches, stops and starts. The slot list is
 * under cw_slots.lock; counters are atomics; the histogram has its own lock.
 */
#ifndef CW_RELAY_DELIVERY_H
#define CW_RELAY_DELIVERY_H

#include "alerts/relay/config.h"
#include "alerts/relay/spool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CW_DELIVERY_NBUCKETS 9

/* cw_delivery_buckets[] are the upper bounds of connwatch_relay_delivery_seconds. */
extern const double cw_delivery_buckets[CW_DELIVERY_NBUCKETS];

/* Values of the "result" label of connwatch_relay_notifications_total. */
enum cw_notif_result {
    CW_NOTIF_RECEIVED = 0, /* accepted and spooled */
    CW_NOTIF_DUPLICATE,    /* accepted, already queued or delivered (dedupe) */
    CW_NOTIF_REJECTED,     /* refused: queue full or spool error (5xx, Alertmanager retries) */
    CW_NOTIF_DELIVERED,    /* confirmed by the receiver */
    CW_NOTIF_FAILED,       /* one failed attempt (retried) */
    CW_NOTIF_FALLBACK,     /* copied to the fallback receiver */
    CW_NOTIF_FILTERED,     /* not sent: below min_severity, or resolved with send_resolved off */
    CW_NOTIF_DROPPED,      /* spool entry unreadable, moved aside */
    CW_NOTIF_DEAD, /* rejected dead_letter_after times: moved to the dead-letter directory */
    CW_NOTIF_COUNT
};

/* A slot: what outlives reloads for one receiver name. */
struct cw_slot {
    char *name;             /* owned */
    struct cw_spool *spool; /* owned */
    atomic_uint_fast64_t counts[CW_NOTIF_COUNT];
    pthread_mutex_t hist_lock;
    uint64_t hist[CW_DELIVERY_NBUCKETS + 1]; /* raw per bucket; made cumulative when rendered */
    double hist_sum;
    atomic_llong failing_since; /* cw_mono of the first failure in a row, 0 when healthy */
    struct cw_slot *next;       /* owned by the list (struct cw_slots) */
};

/* The slots of the process: a list that never shrinks. */
struct cw_slots {
    pthread_mutex_t lock;
    struct cw_slot *head; /* owned */
};

/* cw_slots_init() makes an empty list; cw_slots_reset() closes every spool
 * and frees the slots, once no thread uses them (after cw_delivery_stop()). */
void cw_slots_init(struct cw_slots *slots);
void cw_slots_reset(struct cw_slots *slots);

/* cw_slot_count() adds 'n' to the slot's counter 'r'; any thread. */
void cw_slot_count(struct cw_slot *s, enum cw_notif_result r, uint64_t n);

/* cw_delivery_attach() gives every receiver of 'cfg' its slot, opening the
 * spools of new names under cfg->spool_dir. Returns CW_OK, or CW_EIO with
 * the reason in 'why' (the receivers attached so far keep their slots). */
CW_MUST_CHECK int cw_delivery_attach(struct cw_slots *slots, struct cw_relay_config *cfg, char *why,
                                     size_t whylen);

/* cw_delivery_rescan() queues the entry files put back by hand into the
 * spool directories of an attached 'cfg' (a replayed dead letter). Call it
 * while no delivery thread runs, so that no request is aborted half-way by
 * a reload and sent twice. */
void cw_delivery_rescan(struct cw_relay_config *cfg);

/* cw_delivery_start() starts one delivery thread per receiver of an attached
 * 'cfg'. Returns CW_OK or CW_EIO with the reason in 'why'. */
CW_MUST_CHECK int cw_delivery_start(struct cw_relay_config *cfg, char *why, size_t whylen);

/* cw_delivery_stop() makes the delivery threads of 'cfg' stop between
 * attempts (a request in flight is aborted) and joins them; NULL does
 * nothing. What is queued stays in the spools. */
void cw_delivery_stop(struct cw_relay_config *cfg);

#endif
