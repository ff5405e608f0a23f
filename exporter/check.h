/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.h - THE collector interface. A check kind is one file in
 * collectors/ ending with a `const struct cw_check_kind`, listed once in
 * exporter/kinds.c. Collectors include this header and nothing else from the
 * core.
 *
 * Lifecycle, driven by the core:
 *   configure()  once per configured instance, on the loading thread; no I/O
 *                beyond reading files named in the configuration;
 *   run()        at each interval on a scheduler worker, never twice at once
 *                for one instance, always before the previous state is released;
 *   release()    once, after the last run() returned.
 * State blocks are zeroed by the core and belong to one instance; there is no
 * static mutable state in a collector.
 *
 * Around every run() the core emits connwatch_check_success,
 * connwatch_check_duration_seconds, connwatch_check_failures_total{reason}
 * and connwatch_check_failure_info{reason}, and adds the instance labels
 * (service, target and the service's own labels) to every sample.
 */
#ifndef CW_CHECK_H
#define CW_CHECK_H

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metric.h"

#include <stdbool.h>

struct cw_run;        /* one execution: deadline, sample sink, failure slot */
struct cw_probe_rule; /* one probe.allow entry (settings.h) */

/* What the core tells configure() about the instance. Borrowed; valid for
 * the instance's lifetime. */
struct cw_check_info {
    const char *service; /* service name; NULL for section kinds (host) */
    const char *name;    /* the "name" option, or NULL when unset */
    cw_duration interval;
    cw_duration timeout;
    void *shared; /* the kind's process-wide state from shared_new(), or NULL */
    /* A /probe run: the probe.allow rule that admitted its target, against
     * which every further hop (a redirect) must be checked with
     * cw_probe_rule_allows() before connecting. NULL for configured checks.
     * Seen by run() (cw_run_info), not by configure(). */
    const struct cw_probe_rule *probe_rule;
};

/* Flags of a kind. */
#define CW_KIND_SECTION 0x1u /* configured from its own top-level section, not under services */
#define CW_KIND_ON_BY_DEFAULT                                                                      \
    0x2u /* a section kind that runs when its section is absent (host); else only when present */

#define CW_KIND_MAX_DESC_LISTS 3

/* The layer of the connection a kind watches, lowest first: where the
 * health page and `diagnose` put its result. A failure for a network reason
 * (dns, refused, timeout, unreachable) belongs to the network layer whatever
 * the kind; a certificate or handshake failure to the TLS layer
 * (cw_check_layer() in instance.h). */
enum cw_layer {
    CW_LAYER_NETWORK = 0, /* icmp, tcp, dns */
    CW_LAYER_TLS,         /* tls, tls_file */
    CW_LAYER_HTTP,        /* http */
    CW_LAYER_DATABASE,    /* mysql */
    CW_LAYER_CACHE,       /* redis */
    CW_LAYER_HOST,        /* host: the machine connwatch (the client) runs on */
    CW_LAYER_COUNT
};

struct cw_check_kind {
    const char *name;  /* YAML key and value of the "check" label */
    size_t state_size; /* bytes of per-instance state, zeroed by the core */
    unsigned flags;
    enum cw_layer layer; /* the layer its results belong to when it succeeds */
    unsigned reasons;    /* bitmask 1u<<CW_REASON_x this kind can report; the core
                          * exports failures_total{reason} = 0 for each from the start */

    /* configure() reads this kind's options from 'node' (a mapping; may be
     * NULL for section kinds with no section) into 'state'. The keys
     * interval, timeout and name are handled by the core: pass
     * cw_check_common_keys as also_known to cw_opts_apply(). Reports every
     * problem to 'diag' and returns CW_OK or CW_ECONFIG. */
    int (*configure)(void *state, const struct cw_node *node, const struct cw_check_info *info,
                     struct cw_diag *diag);

    /* target() returns the default "target" label value (the address, URL or
     * path), borrowed from the state. NULL for section kinds. */
    const char *(*target)(const void *state);

    /* run() performs one check before cw_run_deadline(run), emits samples and,
     * on failure, calls cw_run_fail() once. It must not block past the deadline. */
    void (*run)(void *state, struct cw_run *run);

    /* release() frees everything the state owns. It must accept a state whose
     * configure() failed halfway or whose run() never happened. */
    void (*release)(void *state);

    /* Optional. shared_new() creates the kind's process-wide state (an ICMP
     * engine with its sockets and receiver thread, a libcurl multi handle),
     * once, on the loading thread, before the kind's first configure(); it
     * is handed to every instance as info->shared and lives until exit,
     * across reloads. Returns NULL on failure (configure() then sees NULL
     * and reports it). shared_free() releases it at exit, after every
     * instance was released. */
    void *(*shared_new)(void);
    void (*shared_free)(void *shared);

    /* Optional: the option that /probe?check=KIND&target=T sets to T
     * ("target", "name", "url", "address"). NULL: the kind cannot be probed. */
    const char *probe_option;

    /* Every family run() emits, as up to CW_KIND_MAX_DESC_LISTS
     * NULL-terminated lists: the kind's own and those of the helpers it
     * calls (cw_tls_descs). The core derives from their label names the
     * labels a service may not set. */
    const struct cw_desc *const *descs[CW_KIND_MAX_DESC_LISTS];
};

/* Keys every check accepts, handled by the core (NULL-terminated). */
extern const char *const cw_check_common_keys[];

/* ---- What run() may call ------------------------------------------------ */

/* cw_run_deadline() returns the monotonic time by which run() must return. */
cw_mono cw_run_deadline(const struct cw_run *run);

/* cw_run_remaining() returns the time left until the deadline (>= 0). */
cw_duration cw_run_remaining(const struct cw_run *run);

/* cw_run_info() returns the instance description given to configure(). */
const struct cw_check_info *cw_run_info(const struct cw_run *run);

/* cw_emit() adds one sample of family 'd'. 'label_values' holds d->nlabels
 * strings in the order of d->labels (NULL when there are none); they are
 * copied. If memory runs out, the error is latched in the run: it becomes a
 * failure with reason "internal" and its batch is discarded, so callers need
 * not check each emit. */
void cw_emit(struct cw_run *run, const struct cw_desc *d, double value,
             const char *const *label_values);

/* cw_emit_histogram() adds one histogram sample: 'cumulative' holds
 * d->nbuckets cumulative counts (bucket i counts observations <= d->buckets[i]),
 * 'count' all observations and 'sum' their sum. */
void cw_emit_histogram(struct cw_run *run, const struct cw_desc *d, const char *const *label_values,
                       const uint64_t *cumulative, uint64_t count, double sum);

/* cw_run_fail() marks the run as failed with 'reason' and records a short
 * human-readable detail for the log. Only the first call counts. */
void cw_run_fail(struct cw_run *run, enum cw_reason reason, const char *fmt, ...) CW_PRINTF(3, 4);

/* cw_run_failed() tells whether cw_run_fail() was called. */
bool cw_run_failed(const struct cw_run *run);

/* cw_probe_rule_allows() tells whether some target pattern of 'rule' (NULL:
 * none) matches 'host' (a name or an IP literal, without brackets) and
 * 'port' (decimal; "" when unknown). Patterns are name globs
 * (case-insensitive, matched as written, never resolved), IP addresses,
 * address-shaped globs ("10.*", "[fd00::*]": IP literals only, never a
 * name), or CIDR prefixes ("10.0.0.0/8", "[fd00::]/8"), each optionally
 * followed by ":PORTGLOB". Thread-safe. */
bool cw_probe_rule_allows(const struct cw_probe_rule *rule, const char *host, const char *port);

/* cw_run_log() writes one log line for the run's check, as cw_log() does
 * (NULL-terminated key/value pairs after 'msg', at most 8 pairs), with the
 * check's identity added: component=KIND msg=MSG target=TARGET <pairs>
 * service=SERVICE check=KIND (target and service left out for section
 * kinds, which have neither). TARGET is the instance's target label (its
 * name when set), unless the first pair is "target": then that value (e.g.
 * the address a named check talks to) stands in its place. Thread-safe. */
void cw_run_log(const struct cw_run *run, enum cw_log_level level, const char *msg,
                ...) CW_SENTINEL;

#endif
