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
 */
#ifndef CW_SCHEDULER_H
#define CW_SCHEDULER_H

#include "core/err.h"
#include "settings.h"

#include <stdbool.h>
#include <stddef.h>

struct cw_sched;

/* cw_sched_new() starts the scheduler thread (no checks yet). NULL on failure. */
struct cw_sched *cw_sched_new(void);

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
