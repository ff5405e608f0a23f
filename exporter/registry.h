/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.h - what /metrics renders: the published batch of every check of
 * the live configuration, plus connwatch's own series.
 *
 * A scrape never waits on a probe: it takes a reference to the live
 * settings and to each instance's last published batch, then renders with
 * no lock held. Checks removed by a reload are not in the live settings, so
 * their series vanish from the next scrape.
 */
#ifndef CW_REGISTRY_H
#define CW_REGISTRY_H

#include "core/buf.h"
#include "core/render.h"
#include "settings.h"

#include <stdbool.h>

struct cw_sched;
struct cw_registry;

/* cw_registry_new() returns an empty registry; 'sched' (borrowed, may be
 * NULL) supplies the worker-pool gauges. */
struct cw_registry *cw_registry_new(struct cw_sched *sched);

/* cw_registry_set_self_emitter() adds 'fn(ctx, batch)' to the self part of
 * every scrape (the HTTP server's own series, say); 'ctx' is borrowed until
 * the emitter is replaced or the registry freed. NULL 'fn' removes it. */
struct cw_batch;
void cw_registry_set_self_emitter(struct cw_registry *r, void (*fn)(void *, struct cw_batch *),
                                  void *ctx);

/* cw_registry_set() makes 'settings' the live configuration (takes a reference). */
void cw_registry_set(struct cw_registry *r, struct cw_settings *settings);

/* cw_registry_settings() returns a reference to the live settings (or NULL). */
struct cw_settings *cw_registry_settings(struct cw_registry *r);

/* cw_registry_reload_result() records the outcome of a configuration load
 * for connwatch_config_last_reload_successful and _success_timestamp_seconds. */
void cw_registry_reload_result(struct cw_registry *r, bool ok);

/* cw_registry_render() renders every series in 'fmt' into 'out', gzip
 * compressed when 'gzip' is set. The checks' part of the body is cached and
 * only rendered again after some check published a new result; connwatch's
 * own series (process_*, scheduler) are rendered fresh every time and
 * follow the checks' part, each part sorted by family name (the two parts
 * never share a family). A gzip body is two gzip members (RFC 1952 2.2).
 * Returns CW_OK or the renderer's error (CW_ETOOBIG, CW_ENOMEM). Thread-safe. */
CW_MUST_CHECK int cw_registry_render(struct cw_registry *r, enum cw_format fmt, bool gzip,
                                     struct cw_buf *out);

/* cw_registry_free() releases the registry; NULL-safe. */
void cw_registry_free(struct cw_registry *r);

#endif
