/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scheduler.h - the scheduler: every check instance runs at its own interval,
 * with a per-check phase offset, on a pool of worker threads.
 *
 * One scheduler thread keeps a min-heap of due times on the monotonic clock
 * and hands due instances to workers. A tick that finds the previous run
 * still going is skipped and counted. The pool grows when every worker is
 * busy (up to the configuration's max_concurrent_checks), so a hanging check
 * occupies one worker and delays nothing else; idle workers above the
 * minimum exit. A watchdog publishes a timeout for a run that is still going
 * one second past its deadline, so a stuck check shows up as failing.
 *
 * The clock is injectable: a scheduler made by cw_sched_new_manual() has no
 * scheduler thread and reads no clock; the caller (a unit test) moves time
 * with cw_sched_step(), and runs see that time as theirs (start, deadline,
 * duration). Its workers are real threads.
 */
#ifndef CW_SCHEDULER_H
#define CW_SCHEDULER_H

#include "core/clock.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

struct cw_sched;
struct cw_settings;

/* Runs due within CW_SCHED_BATCH after a wake-up of the scheduler start with
 * it: one wake-up per batch rather than per run (1,000 checks at 1 s with
 * well-spread phases are one due run per millisecond). A run so starts at
 * most this much before its tick; its grid does not move. */
#define CW_SCHED_BATCH CW_MS(2)

/* The scheduler's entry for one instance, embedded in struct cw_instance as
 * 'sched' and touched only by scheduler.c, under the scheduler's lock. An
 * instance kept across a reload keeps its entry, hence its schedule. */
struct cw_sched_entry {
    cw_mono next_due;    /* when the next tick is due */
    cw_mono run_started; /* start of the run in flight (valid while 'running') */
    bool placed;         /* next_due was set by a first cw_sched_apply() */
    bool scheduled_once; /* the first, short-phase run has been queued */
    bool running;        /* a run is queued or in flight: further ticks are skipped */
    size_t heap_idx;     /* position in the scheduler's heap */
};

/* cw_sched_new() starts the scheduler thread (no checks yet). NULL on failure. */
struct cw_sched *cw_sched_new(void);

/* cw_sched_new_manual() returns a scheduler without a thread whose clock
 * reads 'now' until cw_sched_step() moves it. NULL on failure. */
struct cw_sched *cw_sched_new_manual(cw_mono now);

/* cw_sched_step() sets a manual scheduler's clock to 'now' (never backwards)
 * and does what the scheduler thread does at that time: queues due runs,
 * counts skipped ticks, grows the pool, runs the watchdog. Returns when it
 * wants to be stepped next (the next due tick or watchdog limit). On a
 * scheduler with its own thread it does nothing and returns 'now'. */
cw_mono cw_sched_step(struct cw_sched *s, cw_mono now);

/* cw_sched_wait_busy() waits until no run is queued and at most 'busy'
 * workers are running a check; false if that did not happen within
 * 'timeout' of real time (a guard against a hang, not a measurement). */
bool cw_sched_wait_busy(struct cw_sched *s, size_t busy, cw_duration timeout);

/* cw_sched_apply() makes 'settings' the set of scheduled checks: instances
 * new to it start within their phase offset (at most one second), kept
 * instances keep their schedule, removed ones are no longer started (a run
 * in flight finishes and is dropped). Takes its own reference. */
void cw_sched_apply(struct cw_sched *s, struct cw_settings *settings);

/* cw_sched_first_round_done() tells whether every instance of the first
 * applied settings has published a result (readiness). */
bool cw_sched_first_round_done(struct cw_sched *s);

/* cw_sched_stats() reports the worker pool: threads alive, busy, and queued runs. */
void cw_sched_stats(struct cw_sched *s, size_t *workers, size_t *busy, size_t *queued);

/* cw_sched_free() stops scheduling, waits up to 'grace' for running checks,
 * and frees everything if they finished. If a check is still stuck after
 * the grace it returns false and leaves 's' allocated: the caller may exit
 * anyway, or call again to wait more. NULL-safe. */
bool cw_sched_free(struct cw_sched *s, cw_duration grace);

#endif
