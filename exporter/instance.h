/* SPDX-License-Identifier: Apache-2.0 */
/*
 * instance.h - one configured check: its configuration (immutable once
 * loaded), its published results (guarded by its lock) and the scheduler's
 * entry for it (struct cw_sched_entry, guarded by the scheduler's lock).
 *
 * The loader (settings.c) builds instances with cw_instance_alloc() and
 * fills the configuration part; instance.c runs them and publishes their
 * results; scheduler.c alone touches the 'sched' entry. Instances are
 * reference counted because a worker may still run one after a reload
 * removed it; kind->release() runs on the last unref.
 *
 * Outside these three files an instance is read through functions
 * (cw_instance_status(), cw_instance_snapshot()), never field by field.
 */
#ifndef CW_INSTANCE_H
#define CW_INSTANCE_H

#include "check.h"
#include "core/clock.h"
#include "core/metric.h"
#include "core/words.h"
#include "scheduler.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cw_instance {
    atomic_int refs;

    /* Configuration, set by the loader and immutable afterwards. */
    const struct cw_check_kind *kind; /* borrowed: static */
    void *state;                      /* owned: kind->state_size bytes */
    bool configured;                  /* configure() returned CW_OK */
    struct cw_check_info info;        /* strings point into service/name below */
    char *service;                    /* owned; NULL for section kinds */
    char *name;                       /* owned; the "name" option or NULL */
    char *target;                     /* owned: value of the target label ("" for section kinds) */
    char *prefix;                     /* owned: escaped instance labels for kind samples */
    char *common_prefix;              /* owned: check="kind" plus prefix, for the core's samples */
    char *key;                        /* owned: identity (kind, service, target) */
    char *fingerprint;                /* owned: canonical config text, for reload reuse */
    cw_duration interval;
    cw_duration timeout;
    double phase;       /* in [0,1): fraction of the interval, from a hash of the key */
    unsigned line, col; /* position of the check in its file, for messages */
    bool probe;         /* a one-shot /probe instance: transitions log at debug */

    /* Results, guarded by 'lock' (held only to swap pointers and bump counters). */
    pthread_mutex_t lock;
    struct cw_batch *published; /* owned reference; NULL before the first run */
    uint64_t failures[CW_REASON_COUNT];
    uint64_t skipped; /* ticks skipped because the previous run was still going */
    uint64_t runs;
    enum cw_reason reason; /* current failure reason, CW_REASON_NONE when succeeding */
    bool has_run;
    bool overran; /* the watchdog published a timeout for the current run */
    cw_mono failing_since;
    cw_mono state_since;   /* last change of state: first result, failing, recovered, new reason */
    cw_mono last_run_at;   /* end of the last published run */
    cw_duration last_took; /* duration of the last published run */
    cw_mono last_failure_at; /* end of the last failed run (0: none yet) */
    char last_error[256]; /* detail of the last failure, kept after recovery: logs, health page */

    /* The scheduler's, guarded by its lock (scheduler.h). */
    struct cw_sched_entry sched;
};

/* What the health page shows of an instance, copied under its lock. The
 * times are on the monotonic clock (cw_now()). */
struct cw_instance_status {
    const char *kind;                  /* borrowed from the instance */
    const char *service;               /* borrowed; "" for section kinds */
    const char *target;                /* borrowed */
    const struct cw_check_kind *check; /* borrowed: static */
    const char *address; /* borrowed: what /probe would be given (the kind's target()), or NULL */
    cw_duration interval;
    bool has_run;
    enum cw_reason reason; /* CW_REASON_NONE while succeeding */
    char last_error[256];  /* "" while succeeding */
    cw_mono state_since;   /* valid once has_run */
    cw_mono last_run_at;
    cw_duration last_took;
    cw_mono last_failure_at;      /* 0: never failed */
    char last_failure_error[256]; /* detail of the last failure, even after recovery */
};

/* cw_layer_label() returns the name of 'layer' ("network", "tls", "http",
 * "database", "cache", "host"), the value of the rules' layer label. */
const char *cw_layer_label(enum cw_layer layer);

/* cw_check_layer() returns the layer a result of 'kind' belongs to: the
 * kind's own layer when it succeeds (CW_REASON_NONE) or fails in its own
 * protocol; the network layer for dns, refused, timeout and unreachable
 * (the connection never got as far as the kind's protocol); the TLS layer
 * for a handshake or certificate failure (of an http check, or of a tcp
 * check with tls: true). */
enum cw_layer cw_check_layer(const struct cw_check_kind *kind, enum cw_reason reason);

/* cw_server_full() names the limit a mysql or redis check was refused at by
 * the server itself ("max_connections", "maxclients": the port accepted,
 * the protocol said no; the reason is "refused" as for a port nobody
 * listens on), from its failure's 'error' text; NULL otherwise. Such a
 * failure is the kind's own layer, not the network's
 * (cw_result_layer()). cw_server_full_words() says it in 'lang'. */
const char *cw_server_full(const char *kind, enum cw_reason reason, const char *error);
const char *cw_server_full_words(const char *limit, enum cw_lang lang);
enum cw_layer cw_result_layer(const struct cw_check_kind *kind, enum cw_reason reason,
                              const char *error);

/* cw_instance_alloc() returns a zeroed instance of 'kind' with one
 * reference and its lock initialised, or NULL. */
struct cw_instance *cw_instance_alloc(const struct cw_check_kind *kind);

struct cw_instance *cw_instance_ref(struct cw_instance *in);
void cw_instance_unref(struct cw_instance *in);

/* cw_instance_execute() runs the check once now (on the calling thread):
 * kind->run() with a fresh batch and deadline, then the core's samples, then
 * publication. Logs state transitions. Thread-safe against scrapes; the
 * caller guarantees one execution per instance at a time. */
void cw_instance_execute(struct cw_instance *in);

/* cw_instance_execute_clock() is the same on the clock 'now(ctx)': the
 * run's start, deadline, duration and cw_run_remaining() read it. */
void cw_instance_execute_clock(struct cw_instance *in, cw_mono (*now)(void *ctx), void *ctx);

/* cw_instance_publish_overrun() publishes a timeout failure for a run that
 * has been going for 'running_for' at 'now' (called by the scheduler's
 * watchdog, once per run). */
void cw_instance_publish_overrun(struct cw_instance *in, cw_duration running_for, cw_mono now);

/* cw_instance_overran() tells whether the watchdog already published a
 * timeout for the current run. */
bool cw_instance_overran(struct cw_instance *in);

/* cw_instance_count_skip() counts one tick skipped because the previous run
 * was still going (connwatch_check_runs_skipped_total). */
void cw_instance_count_skip(struct cw_instance *in);

/* cw_instance_has_run() tells whether the instance published a result. */
bool cw_instance_has_run(struct cw_instance *in);

/* cw_instance_status() copies what the landing page shows. */
void cw_instance_status(struct cw_instance *in, struct cw_instance_status *out);

/* cw_instance_generation() returns a process-wide counter that grows with
 * every publication of any instance, so a scrape can tell whether anything
 * changed since it last rendered. */
uint64_t cw_instance_generation(void);

/* cw_instance_probe_redirects_refused() returns how many /probe runs of the
 * process failed with redirect_refused (a hop probe.allow does not list). */
uint64_t cw_instance_probe_redirects_refused(void);

/* cw_instance_snapshot() returns a reference to the published batch (or NULL). */
struct cw_batch *cw_instance_snapshot(struct cw_instance *in);

#endif
