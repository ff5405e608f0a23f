/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool.h - the durable per-receiver queue of connwatch-relay.
 *
 * Each accepted notification is one file in the receiver's directory,
 * "<20-digit sequence>-<dedupe key>.json", written to a temporary name,
 * fsync'ed, renamed and the directory fsync'ed before cw_spool_put()
 * returns, so the 2xx that follows is never a lie. Entries leave in
 * sequence order, only through cw_spool_remove() after a confirmed delivery
 * or cw_spool_bury() into "dead/" when the receiver can never take it.
 * Opening a directory resumes what a previous process left.
 *
 * Threads: HTTP handlers put, the receiver's delivery thread waits, peeks
 * and removes; everything is under the spool's own mutex.
 */
#ifndef CW_SPOOL_H
#define CW_SPOOL_H

#include "exporter/core/clock.h"
#include "exporter/core/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cw_spool;

struct cw_spool_item {
    uint64_t seq;
    char key[33];
    char *body; /* owned by the caller of cw_spool_peek(): free() */
    size_t len;
    bool fell_back; /* already copied to the fallback receiver */
    cw_mono queued; /* when it was queued (or found at start) */
};

enum cw_spool_outcome { CW_SPOOL_ADDED = 0, CW_SPOOL_DUPLICATE, CW_SPOOL_FULL };

/* cw_spool_open() opens (creating it, mode 0700) 'dir' and loads the list of
 * entries found there; leftover temporary files are removed. 'dedupe_window'
 * is how long a delivered key still counts as a duplicate. NULL on failure
 * with the reason in 'why'. */
struct cw_spool *cw_spool_open(const char *dir, cw_duration dedupe_window, size_t max_entries,
                               char *why, size_t whylen);
void cw_spool_close(struct cw_spool *sp);

/* cw_spool_put() stores one notification durably, unless its key is queued
 * or was delivered within the dedupe window (CW_SPOOL_DUPLICATE) or the
 * queue is full (CW_SPOOL_FULL; logged once per key while the queue stays
 * full, however often Alertmanager retries it). Returns CW_OK or CW_EIO
 * (logged). */
CW_MUST_CHECK int cw_spool_put(struct cw_spool *sp, const char *body, size_t len, const char *key,
                               enum cw_spool_outcome *outcome);

/* cw_spool_length() returns the number of queued entries. */
size_t cw_spool_length(struct cw_spool *sp);

/* cw_spool_wait() blocks until an entry is queued and the monotonic time
 * reaches 'not_before', or 'stop' is set, or cw_spool_kick(). Returns
 * whether an entry is ready. */
bool cw_spool_wait(struct cw_spool *sp, cw_mono not_before, atomic_bool *stop);
void cw_spool_kick(struct cw_spool *sp);

/* cw_spool_peek() copies up to 'max' head entries (bodies read from disk)
 * into 'out' and returns how many. A file that cannot be read is moved
 * aside as "*.bad" and skipped (logged). */
size_t cw_spool_peek(struct cw_spool *sp, size_t max, struct cw_spool_item *out);
void cw_spool_items_free(struct cw_spool_item *items, size_t n);

/* cw_spool_remove() deletes the entry 'seq' (a confirmed delivery) and
 * remembers its key for the dedupe window. */
CW_MUST_CHECK int cw_spool_remove(struct cw_spool *sp, uint64_t seq);

/* cw_spool_quarantine() moves entry 'seq' aside as "*.bad" (unparsable). */
void cw_spool_quarantine(struct cw_spool *sp, uint64_t seq);

/* cw_spool_bury() moves entry 'seq' into the dead-letter directory
 * "<dir>/dead/" under its own file name (written to 'name', >= 80 bytes),
 * fsyncs both directories and drops it from the queue. Its key is not
 * remembered: the same notification sent again is queued again. Returns
 * CW_OK, or CW_EIO (logged) when the file could not be moved: the entry then
 * stays queued. */
CW_MUST_CHECK int cw_spool_bury(struct cw_spool *sp, uint64_t seq, char *name, size_t namelen);

/* cw_spool_rescan() queues entry files of the directory that the spool does
 * not know yet (an operator moved a dead letter back), in sequence order.
 * Returns how many it added. */
size_t cw_spool_rescan(struct cw_spool *sp);

/* cw_spool_mark_fallback() records that entry 'seq' went to the fallback. */
void cw_spool_mark_fallback(struct cw_spool *sp, uint64_t seq);

#endif
