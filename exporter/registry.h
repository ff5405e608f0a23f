/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registry.h - what /metrics renders: the published batch of every check of
 * a configuration, plus connwatch's own series.
 *
 * The registry holds no configuration: each render is given the settings
 * to render (a reference the caller took from the live configuration's
 * owner, live.h), so checks removed by a reload vanish from the next
 * scrape. A scrape never waits on a probe: it takes a reference to each
 * instance's last published batch, then renders with no lock held. Its own
 * series beyond the process's come from self emitters (callbacks), so the
 * registry calls into no other part of the exporter.
 */
#ifndef CW_REGISTRY_H
#define CW_REGISTRY_H

#include "core/buf.h"
#include "core/render.h"
#include "settings.h"

#include <stdbool.h>

#define CW_REGISTRY_MAX_SELF 4

struct cw_registry;

/* A self emitter adds series to the self part of every scrape. */
typedef void (*cw_registry_self_fn)(void *ctx, struct cw_batch *b);

/* cw_registry_new() returns a registry with no self emitter. */
struct cw_registry *cw_registry_new(void);

/* cw_registry_add_self() adds 'fn(ctx, batch)' to the self part of every
 * scrape (the HTTP server's series, the scheduler's, ...); 'ctx' is
 * borrowed until the registry is freed. CW_ETOOBIG past
 * CW_REGISTRY_MAX_SELF emitters. Thread-safe. */
CW_MUST_CHECK int cw_registry_add_self(struct cw_registry *r, cw_registry_self_fn fn, void *ctx);

/* cw_registry_render() renders every series of 'settings' (borrowed; NULL:
 * no checks) and the self part in 'fmt' into 'out', gzip compressed when
 * 'gzip' is set. The checks' part of the body is cached and only rendered
 * again after some check published a new result or for other settings;
 * connwatch's own series (build info, checks configured, process_*, the
 * self emitters') are rendered fresh every time and follow the checks'
 * part, each part sorted by family name (the two parts never share a
 * family). A gzip body is two gzip members (RFC 1952 2.2). Returns CW_OK or
 * the renderer's error (CW_ETOOBIG, CW_ENOMEM). Thread-safe. */
CW_MUST_CHECK int cw_registry_render(struct cw_registry *r, struct cw_settings *settings,
                                     enum cw_format fmt, bool gzip, struct cw_buf *out);

/* cw_registry_free() releases the registry; NULL-safe. */
void cw_registry_free(struct cw_registry *r);

#endif
