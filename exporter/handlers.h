/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handlers.h - the exporter's own HTTP endpoints: the metrics endpoint, the
 * landing page and /probe. Each is a cw_http_handler whose context is a
 * struct cw_web; they read the configuration through cw_live_settings()
 * and instances through instance.h's functions only.
 */
#ifndef CW_HANDLERS_H
#define CW_HANDLERS_H

#include "core/http.h"

struct cw_live;
struct cw_registry;

/* What the handlers serve from; everything borrowed, outliving the server. */
struct cw_web {
    struct cw_live *live;
    struct cw_registry *registry;
    const char *telemetry_path; /* linked from the landing page */
};

/* cw_handle_metrics() renders every series, in the format the Accept header
 * asks for, gzip compressed when Accept-Encoding allows it. */
int cw_handle_metrics(void *web, const struct cw_http_request *req, struct cw_http_response *resp);

/* cw_handle_landing() writes the connection health page (health.h) in the
 * language of ?lang= or Accept-Language. */
int cw_handle_landing(void *web, const struct cw_http_request *req, struct cw_http_response *resp);

/* cw_handle_probe() runs one check now for /probe?check=KIND&target=T, only
 * for targets probe.allow names (no open proxy), and answers with that
 * run's series. A slow route: register it with .slow set. */
int cw_handle_probe(void *web, const struct cw_http_request *req, struct cw_http_response *resp);

#endif
