/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.h - connwatch's configuration as typed structures: global
 * defaults, the host section, services and their check instances.
 *
 * cw_settings_load() is the one loader used by --config.check, startup and
 * reload. It builds every instance completely (kind->configure() included)
 * or fails with every problem in the cw_diag; it never exits and never
 * touches the running configuration. A cw_settings is immutable once loaded
 * and shared by reference: the scheduler and scrapes hold references.
 *
 * A cw_instance is one configured check: kind, state block, labels, timing,
 * and its published results. Instances are reference counted because a
 * worker may still run one after a reload removed it; kind->release() runs
 * on the last unref.
 */
#ifndef CW_SETTINGS_H
#define CW_SETTINGS_H

#include "check.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/metric.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct cw_instance {
    atomic_int refs;
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
    cw_mono failing_since;
    char last_error[256]; /* detail of the last failure, for logs and /-/status */

    /* Scheduling, guarded by the scheduler's lock. */
    cw_mono next_due;
    cw_mono run_started;
    bool running;
    bool overran;        /* the watchdog published a timeout for the current run (instance lock) */
    bool scheduled_once; /* the first, short-phase run has been queued */
    size_t heap_idx;
};

/* One entry of probe.allow: which targets /probe may check with a kind. */
struct cw_probe_rule {
    const struct cw_check_kind *kind; /* borrowed: static */
    struct cw_strlist targets;        /* owned: HOST[:PORT] patterns (globs, CIDRs) */
    cw_duration timeout;              /* deadline of one probe */
    struct cw_strmap options;         /* owned: fixed options of the probed check (user, ...) */
};

struct cw_settings {
    atomic_int refs;
    char *file; /* owned: the file it came from, or "<built-in>" */
    cw_duration interval;
    cw_duration timeout;
    int64_t max_concurrent;    /* upper bound of worker threads */
    struct cw_instance **inst; /* owned references */
    size_t ninst;
    size_t capinst;
    struct cw_probe_rule *probe; /* owned: probe.allow */
    size_t nprobe;
};

/* The built-in default configuration (YAML), used without --config.file. */
extern const char cw_default_config[];

/* cw_settings_load() loads 'path', or the built-in default when NULL.
 * Returns a settings object with one reference, or NULL with the problems
 * in 'diag'. */
struct cw_settings *cw_settings_load(const char *path, struct cw_diag *diag);

/* cw_settings_load_text() is the same for YAML text named 'name'. */
struct cw_settings *cw_settings_load_text(const char *name, const char *text, struct cw_diag *diag);

/* cw_settings_adopt() replaces each instance of 'fresh' whose key and
 * fingerprint match an instance of 'old' by that old instance, so counters,
 * schedules and interval-based ratios survive a reload. Returns how many
 * instances were kept. */
size_t cw_settings_adopt(struct cw_settings *fresh, const struct cw_settings *old);

/* cw_settings_probe_rule() returns the probe.allow rule of 'kind' that lets
 * /probe check 'target' (borrowed from 's'), or NULL: some pattern of the
 * rule must match the target's host (and port), as cw_probe_rule_allows()
 * tells. URLs with user information are refused. */
const struct cw_probe_rule *cw_settings_probe_rule(const struct cw_settings *s,
                                                   const struct cw_check_kind *kind,
                                                   const char *target);

/* cw_settings_probe_instance() builds a one-shot instance of 'kind' whose
 * probe option is 'target', with the fixed options of 'rule' (the rule that
 * admitted the target; NULL: none) and no service labels, configured exactly
 * as a check in a file would be. Its run() sees 'rule' as
 * cw_run_info(run)->probe_rule, to check every further hop (a redirect), so
 * 'rule' (and the settings holding it) must outlive the instance's runs.
 * NULL with the reason in 'diag'. */
struct cw_instance *cw_settings_probe_instance(const struct cw_check_kind *kind, const char *target,
                                               cw_duration timeout,
                                               const struct cw_probe_rule *rule,
                                               struct cw_diag *diag);

struct cw_settings *cw_settings_ref(struct cw_settings *s);
void cw_settings_unref(struct cw_settings *s);

struct cw_instance *cw_instance_ref(struct cw_instance *in);
void cw_instance_unref(struct cw_instance *in);

/* cw_instance_execute() runs the check once now (on the calling thread):
 * kind->run() with a fresh batch and deadline, then the core's samples, then
 * publication. Logs state transitions. Thread-safe against scrapes; the
 * caller guarantees one execution per instance at a time. */
void cw_instance_execute(struct cw_instance *in);

/* cw_instance_publish_overrun() publishes a timeout failure for a run that
 * is still going past its deadline (called by the scheduler's watchdog). */
void cw_instance_publish_overrun(struct cw_instance *in, cw_duration running_for);

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
