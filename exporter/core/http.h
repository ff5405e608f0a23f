/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the HTTP server shared by connwatch and connwatch-relay, on
 * libmicrohttpd: one routing table, bounded request bodies, exporter-toolkit
 * web configuration (TLS, basic auth with bcrypt hashes, extra headers).
 *
 * Threads: libmicrohttpd's internal polling threads (a small pool, epoll)
 * call the handlers; handlers must be thread-safe and must not block on
 * probes. A handler fills a cw_http_response; the glue owns turning it into
 * an MHD response (ownership of the body buffer moves to MHD without a copy).
 */
#ifndef CW_HTTP_H
#define CW_HTTP_H

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "err.h"

#include <stdbool.h>
#include <stddef.h>

struct cw_http_request; /* opaque; valid during the handler call */

#define CW_HTTP_MAX_HEADERS 8

struct cw_http_response {
    unsigned status;              /* default 200 */
    const char *content_type;     /* static string; default "text/plain; charset=utf-8" */
    const char *content_encoding; /* static string or NULL */
    struct cw_buf body;           /* owned by the glue; the handler appends */
    const char *header_names[CW_HTTP_MAX_HEADERS]; /* static strings */
    char *header_values[CW_HTTP_MAX_HEADERS];      /* owned (strdup'ed) */
    size_t nheaders;
};

/* A handler answers one request. Return CW_OK after filling 'resp' (any
 * status); any other value makes the glue answer 500 with cw_strerror(). */
typedef int (*cw_http_handler)(void *ctx, const struct cw_http_request *req,
                               struct cw_http_response *resp);

struct cw_http_route {
    const char *method; /* "GET" (also serves HEAD), "POST", ... */
    const char *path;   /* exact path, or a prefix when it ends with '/' and prefix is set */
    bool prefix;
    size_t max_body; /* bytes accepted in the body; larger gets 413 */
    cw_http_handler fn;
    bool slow; /* the handler may block for seconds (a probe): it runs on its own
                * thread while the connection is suspended, so the polling
                * threads keep serving scrapes; at most CW_HTTP_MAX_SLOW run
                * at once, more get 503 */
    void *ctx; /* borrowed: the handler's context; NULL: the server's (cw_http_start()) */
};

#define CW_HTTP_MAX_SLOW 32

/* What one client and all clients together may hold; a negative field takes
 * its default (cw_http_limits_init() sets every field so). The defaults are
 * documented in the README's reliability section. */
struct cw_http_limits {
    /* Concurrent connections over all listeners. Default: half the
     * RLIMIT_NOFILE soft limit (the other half stays for the checks), at
     * least 16. More are accepted and closed at once. */
    long max_connections;
    /* Concurrent connections from one client address; 0 means no limit.
     * Default: a quarter of max_connections. */
    long max_connections_per_ip;
    /* A request (headers and body) must be complete within this time of its
     * first byte (for the first request: of the connection's first byte),
     * however slowly it trickles; else the connection is closed. Default 10 s. */
    cw_duration read_timeout;
    /* A kept-alive connection waiting for its next request is closed after
     * this long; so is a connection that never sends a byte. Default 10 s. */
    cw_duration idle_timeout;
};

#define CW_HTTP_DEFAULT_READ_TIMEOUT CW_S(10)
#define CW_HTTP_DEFAULT_IDLE_TIMEOUT CW_S(10)
#define CW_HTTP_MIN_CONNECTIONS      16

/* cw_http_limits_init() sets every field to "default". */
void cw_http_limits_init(struct cw_http_limits *l);

struct cw_http_options {
    const char *const *listen; /* addresses: ":19367", "127.0.0.1:0", "[::1]:19367", "host:port" */
    size_t nlisten;
    const char *web_config_file;         /* exporter-toolkit web config, or NULL */
    unsigned threads;                    /* polling threads per listener (default 2) */
    const struct cw_http_limits *limits; /* borrowed during cw_http_start(); NULL: defaults */
};

/* cw_http_raise_fd_limit() raises the RLIMIT_NOFILE soft limit to the hard
 * limit, so that idle connections cost descriptors and nothing else. Call
 * once at start; logs what it did. Returns the soft limit now in force. */
unsigned long cw_http_raise_fd_limit(void);

struct cw_http_server;

/* cw_http_start() loads the web config (errors go to 'diag' with
 * file:line:col), binds every listen address and starts serving 'routes'
 * (terminated by a route with fn == NULL) with 'ctx' passed to handlers.
 * Returns NULL on failure: config problems in 'diag', bind failures logged
 * and recorded in 'diag' as well. */
struct cw_http_server *cw_http_start(const struct cw_http_options *opt,
                                     const struct cw_http_route *routes, void *ctx,
                                     struct cw_diag *diag);

/* cw_http_reload_web_config() re-reads the web config file; on error the old
 * one stays and 'diag' says why. Returns CW_OK or CW_ECONFIG. */
CW_MUST_CHECK int cw_http_reload_web_config(struct cw_http_server *s, struct cw_diag *diag);

/* cw_http_bound_address() returns the address listener 'i' is bound to, with
 * the real port ("127.0.0.1:41234", "[::]:19367"), or NULL past the last. */
const char *cw_http_bound_address(const struct cw_http_server *s, size_t i);

/* cw_http_emit() adds the server's own series to 'b': open connections and
 * their limit, connections closed by the guard (by reason) and logins
 * answered 429 before bcrypt. NULL-safe. */
struct cw_batch;
void cw_http_emit(struct cw_http_server *s, struct cw_batch *b);

/* cw_http_quiesce() stops accepting new connections (in-flight ones finish). */
void cw_http_quiesce(struct cw_http_server *s);

/* cw_http_stop() stops and frees the server; NULL-safe. */
void cw_http_stop(struct cw_http_server *s);

/* cw_http_answer_reload() fills 'resp' for a /-/reload outcome: 200
 * "configuration reloaded" when 'rc' is CW_OK, else 500 with 'why' (the
 * diagnostics). Returns CW_OK or the buffer's error. */
CW_MUST_CHECK int cw_http_answer_reload(struct cw_http_response *resp, int rc, const char *why);

/* Request accessors (borrowed, valid during the handler call). */
const char *cw_http_method(const struct cw_http_request *r);
const char *cw_http_path(const struct cw_http_request *r);
const char *cw_http_header(const struct cw_http_request *r, const char *name);
const char *cw_http_query(const struct cw_http_request *r, const char *name);
const char *cw_http_body(const struct cw_http_request *r, size_t *len);
bool cw_http_is_head(const struct cw_http_request *r);

/* cw_http_set_header() adds a response header (value copied). */
CW_MUST_CHECK int cw_http_set_header(struct cw_http_response *resp, const char *name,
                                     const char *value);

#endif
