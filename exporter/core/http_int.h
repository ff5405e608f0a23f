/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_int.h - the HTTP server's insides, shared by http.c (sockets,
 * daemons, routing, the request lifecycle) and http_auth.c (basic auth and
 * client certificates). Not for anyone else: the server's public face is
 * http.h. Ownership and threads are described at the top of http.c.
 */
#ifndef CW_HTTP_INT_H
#define CW_HTTP_INT_H

#include "clock.h"
#include "http.h"
#include "webcfg.h"

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- libmicrohttpd compatibility: the only version-dependent code -------- */

/* libmicrohttpd 0.9.71 changed callback results from int to enum MHD_Result. */
#if MHD_VERSION >= 0x00097002
#define HTTP_RESULT enum MHD_Result
#else
#define HTTP_RESULT int
#endif

/* ---- constants ----------------------------------------------------------- */

#define HTTP_DEFAULT_THREADS    2u
#define HTTP_FD_RESERVE_DIVISOR 2 /* default: half the descriptors for connections */
#define HTTP_PER_IP_DIVISOR     4 /* default per-address share of the connection limit */
#define HTTP_GUARD_TICK_MS      100
#define HTTP_RESPONSE_LIMIT     (256u << 20) /* handlers may lower resp->body.limit */
#define HTTP_AUTH_CACHE_SIZE    64u
/* Credentials not in the cache cost a bcrypt run (tens of milliseconds at
 * cost 10): those runs happen off the polling threads, at most
 * HTTP_AUTH_RUNNING at a time (more get 429), and each client address may
 * start HTTP_AUTH_BURST of them at once, then one a second (more get 429
 * with Retry-After), so a flood of wrong passwords never delays a scrape
 * whose credentials are cached. */
#define HTTP_AUTH_RUNNING         2u
#define HTTP_AUTH_BURST           5.0
#define HTTP_AUTH_PER_SECOND      1.0
#define HTTP_AUTH_THROTTLE_SLOTS  1024u
#define HTTP_REALM_HEADER         "Basic realm=\"connwatch\""
#define HTTP_DEFAULT_CONTENT_TYPE "text/plain; charset=utf-8"
#define HTTP_REAP_TICK_MS         200

/* ---- types --------------------------------------------------------------- */

struct http_auth_entry {
    bool used;
    unsigned char digest[32]; /* SHA-256(salt, user, password) of a checked login */
};

/* One client address's allowance of uncached credential checks. */
struct http_auth_slot {
    unsigned char addr[16]; /* IPv4 in the first 4 bytes */
    int family;             /* 0: unused */
    double tokens;
    cw_mono last;
};

/* One generation of the web config plus the run-time state that belongs to it. */
struct http_cfg {
    atomic_int refs;
    struct cw_webcfg *wc;        /* owned; NULL: no web config (plain HTTP, no auth) */
    pthread_mutex_t cache_lock;  /* guards cache and cache_next */
    pthread_mutex_t bcrypt_lock; /* one bcrypt at a time, as exporter-toolkit does */
    unsigned char salt[32];      /* random; cache digests are useless outside this process */
    struct http_auth_entry cache[HTTP_AUTH_CACHE_SIZE];
    size_t cache_next;
};

/* One client connection, as the guard thread sees it. libmicrohttpd's own
 * timeout only measures inactivity, so a client that trickles one byte a
 * second holds a connection forever; the guard closes a connection whose
 * request is not complete within read_timeout of its first byte, or that
 * has waited idle_timeout without a byte. Lives from MHD's
 * NOTIFY_CONNECTION STARTED to CLOSED (the socket context); its fields are
 * guarded by the server's conn_lock. */
struct http_conn {
    struct http_conn *prev, *next; /* the server's list (which owns the nodes) */
    int fd;             /* borrowed from MHD: valid until CLOSED, which takes conn_lock */
    bool busy;          /* the request is complete and being answered: exempt */
    bool shut;          /* the guard has shut it down */
    cw_mono since;      /* accepted, or the previous response was completed */
    cw_mono first_byte; /* when a byte of the next request was first seen; 0: none */
    uint64_t rx_base;   /* bytes received up to 'since' */
};

/* One MHD daemon serving one listen socket. */
struct http_daemon {
    struct cw_http_server *srv; /* borrowed: the owner */
    struct http_cfg *tls;       /* reference to the config whose TLS settings it serves, or NULL */
    struct MHD_Daemon *mhd;     /* owned */
    cw_mono deadline;           /* once retired: stopped by then at the latest */
    struct http_daemon *next;   /* once retired: the server's retired list (owner) */
};

struct http_listener {
    int fd;                   /* owned; -1 once quiesced */
    char *addr;               /* owned: bound address, "127.0.0.1:41234" or "[::]:19367" */
    struct http_daemon *live; /* owned */
};

struct cw_http_server {
    const struct cw_http_route *routes; /* borrowed from the caller until cw_http_stop() */
    void *ctx;                          /* borrowed: passed to handlers */
    char *web_config_file;              /* owned, or NULL */
    unsigned threads;
    unsigned max_connections; /* over all listeners */
    unsigned max_per_ip;      /* 0: none */
    cw_duration read_timeout;
    cw_duration idle_timeout;
    unsigned connection_timeout_s; /* libmicrohttpd's inactivity timeout (whole seconds) */

    pthread_mutex_t conn_lock;  /* guards conns and every http_conn's fields */
    struct http_conn *conns;    /* owned list (by the notify callbacks) */
    pthread_mutex_t guard_lock; /* guards guard_stop */
    pthread_cond_t guard_cond;
    bool guard_stop;
    bool guard_running;
    pthread_t guard;
    unsigned long conns_open;          /* tracked connections; under conn_lock */
    atomic_ullong closed_read_timeout; /* connections closed for a trickling request */
    atomic_ullong closed_idle;         /* connections closed for sending nothing */
    atomic_ullong auth_throttled;      /* logins answered 429 before bcrypt */

    pthread_mutex_t reload_lock; /* serialises reload, quiesce and stop; guards lis[].live */
    bool quiesced;
    bool stopping;

    pthread_mutex_t lock; /* guards cfg and the token bucket */
    struct http_cfg *cfg; /* reference: the current web config */
    cw_duration rl_interval;
    int64_t rl_burst;
    double rl_tokens;
    cw_mono rl_last;

    struct http_listener *lis; /* owned */
    size_t nlis;

    pthread_mutex_t slow_lock; /* guards slow_running and auth_running */
    pthread_cond_t slow_cond;  /* signalled when a slow handler ends */
    unsigned slow_running;     /* slow handlers and credential checks in flight */
    unsigned auth_running;     /* credential checks (bcrypt) in flight */

    pthread_mutex_t throttle_lock; /* guards throttle */
    struct http_auth_slot throttle[HTTP_AUTH_THROTTLE_SLOTS];

    pthread_mutex_t reap_lock; /* guards retired, reap_stop and reaper_running */
    pthread_cond_t reap_cond;
    struct http_daemon *retired; /* owned list: quiesced daemons finishing their connections */
    bool reap_stop;
    bool reaper_running;
    pthread_t reaper;
};

enum http_reject {
    HTTP_REJECT_NONE = 0,
    HTTP_REJECT_NOT_FOUND,
    HTTP_REJECT_METHOD,
    HTTP_REJECT_TOO_BIG,
    HTTP_REJECT_RATE,
    HTTP_REJECT_AUTH,
    HTTP_REJECT_CERT_MISSING,
    HTTP_REJECT_CERT_UNTRUSTED,
    HTTP_REJECT_CERT_SAN,
    HTTP_REJECT_AUTH_THROTTLED,
    HTTP_REJECT_NOMEM,
};

struct cw_http_request {
    struct http_daemon *dmn;           /* borrowed: the daemon serving the connection */
    struct MHD_Connection *conn;       /* borrowed from MHD until NOTIFY_COMPLETED */
    const char *method;                /* borrowed from MHD, same lifetime */
    const char *path;                  /* borrowed from MHD, same lifetime */
    const struct cw_http_route *route; /* borrowed: the matched route, or NULL */
    struct http_cfg *cfg;              /* reference taken at the first call */
    bool head;
    enum http_reject reject;
    struct cw_buf body;   /* owned, limited to route->max_body */
    struct http_conn *hc; /* borrowed: the connection's tracking, or NULL */
    /* Credentials that need a bcrypt run, done on a thread of its own
     * before the handler (auth_pending); owned, wiped when freed. */
    bool auth_pending;
    char *auth_user; /* owned */
    char *auth_pass; /* owned, wiped when freed */
    /* Slow routes: the handler's thread fills these while the connection is
     * suspended; the polling thread queues them after the resume. */
    bool slow_started;
    bool slow_done;
    int slow_rc;
    struct cw_http_response slow_resp;
};

/* ---- authentication (http_auth.c) ---------------------------------------- */

/* http_authorize() checks the request's basic-auth credentials against the
 * config without running bcrypt: HTTP_REJECT_NONE when there are no users
 * or the credentials are cached, with r->auth_pending set when they need
 * the bcrypt run (http_auth_verify(), on a thread of its own), else the
 * rejection. The password is wiped before returning. */
enum http_reject http_authorize(struct cw_http_request *r);

/* http_auth_verify() runs bcrypt for the pending credentials (one run at a
 * time, as exporter-toolkit does) and caches them when they are right.
 * Returns the rejection, or HTTP_REJECT_NONE. */
enum http_reject http_auth_verify(struct cw_http_request *r);

/* http_auth_forget() wipes and frees the request's pending credentials. */
void http_auth_forget(struct cw_http_request *r);

/* http_cert_request_setup() asks a new TLS connection of daemon 'd' for a
 * client certificate as its client_auth_type says (nothing on plain HTTP). */
void http_cert_request_setup(const struct http_daemon *d, struct MHD_Connection *conn);

/* http_check_client_cert() applies the daemon's client_auth_type and
 * client_allowed_sans to the connection's peer certificate. */
enum http_reject http_check_client_cert(const struct cw_http_request *r);

/* ---- the connection guard (http_guard.c) --------------------------------- */

/* http_wait_ms() waits on 'c' (a CLOCK_MONOTONIC condition, 'm' held) for at
 * most 'ms' milliseconds. */
void http_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, long ms);

/* http_conn_track() starts tracking a new connection (its struct http_conn,
 * owned by the list until http_conn_untrack(), becomes *socket_context). */
void http_conn_track(struct cw_http_server *s, struct MHD_Connection *conn, void **socket_context);
void http_conn_untrack(struct cw_http_server *s, void **socket_context);

/* http_conn_of() returns the tracking of a connection, or NULL. */
struct http_conn *http_conn_of(struct MHD_Connection *conn);

/* http_conn_busy() marks the connection's request complete: from now on it
 * is being answered and the guard leaves it alone. */
void http_conn_busy(struct cw_http_server *s, struct http_conn *c);

/* http_conn_ready() starts the wait for the connection's next request. */
void http_conn_ready(struct cw_http_server *s, struct http_conn *c);

/* http_guard_start() starts the guard thread; http_guard_stop() ends it
 * (a no-op when it is not running). */
int http_guard_start(struct cw_http_server *s, struct cw_diag *diag);
void http_guard_stop(struct cw_http_server *s);

/* ---- listen sockets (http_listen.c) -------------------------------------- */

/* http_listen() binds the listener 'l' for 'spec' ("host:port", "[v6]:port"
 * or ":port"); every problem goes to 'diag'. */
int http_listen(const char *spec, struct http_listener *l, struct cw_diag *diag);

#endif
