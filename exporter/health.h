/* SPDX-License-Identifier: Apache-2.0 */
/*
 * health.h - the connection health page served at "/": one row per
 * service, one column per layer (network, tls, http, database, cache,
 * host), each cell ok / degraded / failing / pending / not reached with the
 * current reason and since when, a verdict naming the lowest broken layer,
 * and below it one row per check with its figures, its last run and its
 * last failure (kept after recovery), linking to /metrics and /probe.
 *
 * Served from the published results only (never a probe): the cost of a
 * page is one copy of each instance's status under its lock. Works without
 * JavaScript (a <meta refresh>), in English or Chinese; everything that
 * comes from the configuration or a target is HTML-escaped.
 */
#ifndef CW_HEALTH_H
#define CW_HEALTH_H

#include "check.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/words.h"

#include <stdbool.h>
#include <time.h>

struct cw_batch;
struct cw_settings;

/* cw_health_lang() picks the page's language: 'query' (the lang= parameter,
 * "zh" or "en"; NULL or anything else: not given) wins; otherwise the
 * Accept-Language header (NULL: absent): Chinese when a zh tag has a higher
 * q-value than every en tag, English otherwise. */
enum cw_lang cw_health_lang(const char *query, const char *accept_language);

/* The page's surroundings: borrowed, valid during the call. */
struct cw_health_page {
    const char *telemetry_path; /* linked as the metrics endpoint */
    enum cw_lang lang;
    cw_mono now;   /* cw_now() of the render: "since" and "ago" are relative to it */
    time_t wall;   /* time() at 'now', to print those moments in local time */
    int refresh_s; /* <meta refresh> period; 0: none */
};

/* cw_health_render() appends the page for the checks of 's' (NULL: none
 * loaded yet) to 'out'. Returns CW_OK, or the buffer's error (CW_ENOMEM,
 * CW_ETOOBIG). */
int cw_health_render(struct cw_buf *out, const struct cw_settings *s,
                     const struct cw_health_page *page);

/* cw_health_figures() writes the figures the page shows of a result of
 * 'kind' (its published batch 'b') in 'lang': "rtt 12.0 ms · loss 0.0 %".
 * CW_FIG_HTML wraps each in a <span> ("fig over" when it crossed its
 * threshold); CW_FIG_ONLY_OVER writes only those. *over_any (may be NULL)
 * tells whether any figure crossed SPEC.md's default threshold: a
 * succeeding check is then degraded. Also used by `connwatch diagnose`. */
#define CW_FIG_HTML      0x1u
#define CW_FIG_ONLY_OVER 0x2u
int cw_health_figures(struct cw_buf *out, const char *kind, const struct cw_batch *b, time_t wall,
                      enum cw_lang lang, unsigned flags, bool *over_any);

/* cw_health_over_layer() is the layer of the first figure of a result of
 * 'kind' that crossed its threshold (an http check's clock skew: the TLS
 * layer, where the rules page it), or 'dflt' when none did. */
enum cw_layer cw_health_over_layer(const char *kind, const struct cw_batch *b, time_t wall,
                                   enum cw_layer dflt);

#endif
