/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - the HTTP server of connwatch and connwatch-relay, on
 * libmicrohttpd: listen sockets, one MHD daemon per listener, routing,
 * bounded request bodies, and the exporter-toolkit web config at run time
 * (TLS, client certificates, basic auth with a cache, extra headers, a
 * token-bucket rate limit). Who may ask (basic auth, client certificates)
 * is decided in http_auth.c, the listen sockets are bound in http_listen.c,
 * the connection guard (idle and read deadlines) is http_guard.c; the types
 * these files share are in http_int.h.
 *
 * Ownership: the server owns its listen sockets (bound here, handed to MHD
 * with MHD_OPTION_LISTEN_SOCKET), its daemons and a reference to the current
 * web config (struct http_cfg, reference counted). Each request holds its
 * own reference to the config it started with, so a reload never pulls a
 * config from under a handler.
 *
 * Threads: MHD's polling threads run http_access() and the handlers. The
 * caller's thread runs start, reload, quiesce and stop; reload may also run
 * from a handler (e.g. /-/reload). A reload that changes TLS settings starts
 * new daemons on the same sockets and retires the old ones; a reaper thread
 * stops a retired daemon once its connections are gone or the connection
 * timeout has passed, so no thread ever stops the daemon it runs on.
 * Lock order: reload_lock, then lock or reap_lock (never both).
 */
#include "clock.h"
#include "http_int.h"
#include "log.h"
#include "metric.h"
#include "num.h"
#include "strindex.h"
#include "webcfg.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- web config generations ---------------------------------------------- */

/* http_cfg_new() takes ownership of 'wc' (which may be NULL) in all cases. */
static struct http_cfg *http_cfg_new(struct cw_webcfg *wc)
{
    struct http_cfg *c = calloc(1, sizeof(*c));

    if (c == NULL)
        goto out_free_wc;
    if (RAND_bytes(c->salt, (int)sizeof(c->salt)) != 1)
        goto out_free_c;
    if (pthread_mutex_init(&c->cache_lock, NULL) != 0)
        goto out_free_c;
    if (pthread_mutex_init(&c->bcrypt_lock, NULL) != 0)
        goto out_destroy_cache_lock;
    atomic_init(&c->refs, 1);
    c->wc = wc;
    return c;

out_destroy_cache_lock:
    pthread_mutex_destroy(&c->cache_lock);
out_free_c:
    free(c);
out_free_wc:
    cw_webcfg_free(wc);
    return NULL;
}

static struct http_cfg *http_cfg_ref(struct http_cfg *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

static void http_cfg_unref(struct http_cfg *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&c->cache_lock);
    pthread_mutex_destroy(&c->bcrypt_lock);
    OPENSSL_cleanse(c->cache, sizeof(c->cache));
    OPENSSL_cleanse(c->salt, sizeof(c->salt));
    cw_webcfg_free(c->wc);
    free(c);
}

static void http_log_cfg(const struct http_cfg *c)
{
    char n[32];

    if (c->wc == NULL || !c->wc->tls || c->wc->ignored_cipher_suites == 0)
        return;
    snprintf(n, sizeof(n), "%zu", c->wc->ignored_cipher_suites);
    cw_log(CW_LOG_WARN, "http", "tls cipher_suites ignored", "count", n, "reason",
           "GnuTLS priorities cannot express a list of Go cipher suites", (char *)NULL);
}

/* ---- rate limit ---------------------------------------------------------- */

/* http_rate_configure_locked() adopts the limit of 'wc'; a changed limit
 * starts with a full bucket. Caller holds s->lock. */
static void http_rate_configure_locked(struct cw_http_server *s, const struct cw_webcfg *wc)
{
    cw_duration interval = wc != NULL ? wc->rate_interval : 0;
    int64_t burst = wc != NULL ? wc->rate_burst : 0;

    if (interval == s->rl_interval && burst == s->rl_burst)
        return;
    s->rl_interval = interval;
    s->rl_burst = burst;
    s->rl_tokens = (double)burst;
    s->rl_last = cw_now();
}

/* http_rate_allow() takes one token: one comes back every interval, at most
 * 'burst' are kept (Go's rate.NewLimiter(rate.Every(interval), burst)). */
static bool http_rate_allow(struct cw_http_server *s)
{
    bool ok = true;

    pthread_mutex_lock(&s->lock);
    if (s->rl_interval > 0) {
        cw_mono now = cw_now();

        s->rl_tokens += (double)(now - s->rl_last) / (double)s->rl_interval;
        if (s->rl_tokens > (double)s->rl_burst)
            s->rl_tokens = (double)s->rl_burst;
        s->rl_last = now;
        if (s->rl_tokens >= 1.0)
            s->rl_tokens -= 1.0;
        else
            ok = false;
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* http_notify_connection() tracks every connection for the guard and, on
 * TLS, sets how hard the handshake asks for a client certificate:
 * libmicrohttpd itself only "requests" one when a trust list is set, so a
 * required certificate is enforced here, before the handshake. */
static void http_notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                                   enum MHD_ConnectionNotificationCode toe)
{
    struct http_daemon *d = cls;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        http_conn_untrack(d->srv, socket_context);
        return;
    }
    http_conn_track(d->srv, conn, socket_context);
    http_cert_request_setup(d, conn);
}

static bool http_path_matches(const struct cw_http_route *rt, const char *path)
{
    if (rt->prefix)
        return strncmp(path, rt->path, strlen(rt->path)) == 0;
    return strcmp(path, rt->path) == 0;
}

static bool http_method_matches(const struct cw_http_route *rt, const char *method)
{
    if (strcmp(rt->method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

/* http_route() picks the route for (method, path): an exact path beats a
 * prefix, a longer prefix beats a shorter one. *known tells whether any
 * route has this path (for 405 versus 404). */
static const struct cw_http_route *http_route(const struct cw_http_route *routes,
                                              const char *method, const char *path, bool *known)
{
    const struct cw_http_route *best = NULL;
    size_t best_score = 0;
    const struct cw_http_route *rt;

    *known = false;
    for (rt = routes; rt->fn != NULL; rt++) {
        size_t score;

        if (!http_path_matches(rt, path))
            continue;
        *known = true;
        if (!http_method_matches(rt, method))
            continue;
        score = rt->prefix ? strlen(rt->path) + 1 : SIZE_MAX;
        if (best == NULL || score > best_score) {
            best = rt;
            best_score = score;
        }
    }
    return best;
}

/* http_allow() writes the methods accepted on 'path' ("GET, HEAD, POST"). */
static int http_allow(const struct cw_http_route *routes, const char *path, struct cw_buf *out)
{
    const struct cw_http_route *rt;
    const struct cw_http_route *prev;
    int rc = CW_OK;

    for (rt = routes; rt->fn != NULL && rc == CW_OK; rt++) {
        bool dup = false;

        if (!http_path_matches(rt, path))
            continue;
        for (prev = routes; prev != rt; prev++) {
            if (http_path_matches(prev, path) && strcmp(prev->method, rt->method) == 0)
                dup = true;
        }
        if (dup)
            continue;
        if (out->len > 0)
            rc = cw_buf_adds(out, ", ");
        if (rc == CW_OK)
            rc = cw_buf_adds(out, rt->method);
        if (rc == CW_OK && strcmp(rt->method, "GET") == 0)
            rc = cw_buf_adds(out, ", HEAD");
    }
    return rc;
}

/* ---- responses ----------------------------------------------------------- */

static void http_response_init(struct cw_http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    resp->status = 200;
    resp->content_type = HTTP_DEFAULT_CONTENT_TYPE;
    cw_buf_init(&resp->body, HTTP_RESPONSE_LIMIT);
}

static void http_response_reset(struct cw_http_response *resp)
{
    size_t i;

    cw_buf_reset(&resp->body);
    for (i = 0; i < resp->nheaders; i++)
        free(resp->header_values[i]);
    resp->nheaders = 0;
}

int cw_http_set_header(struct cw_http_response *resp, const char *name, const char *value)
{
    char *v;

    if (resp->nheaders >= CW_HTTP_MAX_HEADERS)
        return CW_ETOOBIG;
    v = strdup(value);
    if (v == NULL)
        return CW_ENOMEM;
    resp->header_names[resp->nheaders] = name;
    resp->header_values[resp->nheaders] = v;
    resp->nheaders++;
    return CW_OK;
}

/* http_add_headers() puts every header on 'mr'; returns the name of the
 * first one libmicrohttpd refused, or NULL. */
static const char *http_add_headers(const struct cw_http_request *r, struct MHD_Response *mr,
                                    const struct cw_http_response *resp)
{
    const struct cw_webcfg *wc = r->cfg != NULL ? r->cfg->wc : NULL;
    size_t i;

    if (MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type != NULL ? resp->content_type
                                                           : HTTP_DEFAULT_CONTENT_TYPE) != MHD_YES)
        return MHD_HTTP_HEADER_CONTENT_TYPE;
    if (resp->content_encoding != NULL &&
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_ENCODING, resp->content_encoding) !=
            MHD_YES)
        return MHD_HTTP_HEADER_CONTENT_ENCODING;
    for (i = 0; i < resp->nheaders; i++) {
        if (MHD_add_response_header(mr, resp->header_names[i], resp->header_values[i]) != MHD_YES)
            return resp->header_names[i];
    }
    for (i = 0; wc != NULL && i < wc->headers.n; i++) {
        if (MHD_add_response_header(mr, wc->headers.keys[i], wc->headers.values[i]) != MHD_YES)
            return wc->headers.keys[i];
    }
    return NULL;
}

static HTTP_RESULT http_queue_text(struct cw_http_request *r, unsigned status, const char *text,
                                   bool fallback);

/* http_queue() hands 'resp' to libmicrohttpd (the body without a copy) and
 * releases it. 'fallback' is set for the 500 sent when headers were refused. */
static HTTP_RESULT http_queue(struct cw_http_request *r, struct cw_http_response *resp,
                              bool fallback)
{
    struct MHD_Response *mr;
    const char *bad;
    HTTP_RESULT ret;
    size_t len = 0;
    char *data;

    data = cw_buf_take(&resp->body, &len);
    mr = MHD_create_response_from_buffer_with_free_callback(len, data, &free);
    if (mr == NULL) {
        free(data);
        http_response_reset(resp);
        cw_log(CW_LOG_ERROR, "http", "cannot create response", "path", r->path, (char *)NULL);
        return MHD_NO;
    }
    bad = http_add_headers(r, mr, resp);
    if (bad != NULL) {
        MHD_destroy_response(mr);
        http_response_reset(resp);
        cw_log(CW_LOG_ERROR, "http", "response header refused", "path", r->path, "header", bad,
               (char *)NULL);
        if (fallback)
            return MHD_NO;
        return http_queue_text(r, 500, "internal error: invalid response header\n", true);
    }
    ret = MHD_queue_response(r->conn, resp->status != 0 ? resp->status : 200, mr);
    MHD_destroy_response(mr);
    http_response_reset(resp);
    return ret;
}

static HTTP_RESULT http_queue_text(struct cw_http_request *r, unsigned status, const char *text,
                                   bool fallback)
{
    struct cw_http_response resp;

    http_response_init(&resp);
    resp.status = status;
    if (cw_buf_adds(&resp.body, text) != CW_OK) {
        http_response_reset(&resp);
        return MHD_NO;
    }
    return http_queue(r, &resp, fallback);
}

/* http_queue_reject() answers a request refused before its handler ran. */
static HTTP_RESULT http_queue_reject(struct cw_http_request *r)
{
    const struct cw_http_route *routes = r->dmn->srv->routes;
    struct cw_http_response resp;
    struct cw_buf allow;
    int rc = CW_OK;

    http_response_init(&resp);
    switch (r->reject) {
    case HTTP_REJECT_NOT_FOUND:
        resp.status = 404;
        rc = cw_buf_adds(&resp.body, "404 page not found\n");
        break;
    case HTTP_REJECT_METHOD:
        resp.status = 405;
        cw_buf_init(&allow, 1024);
        rc = http_allow(routes, r->path, &allow);
        if (rc == CW_OK)
            rc = cw_http_set_header(&resp, MHD_HTTP_HEADER_ALLOW, cw_buf_str(&allow));
        if (rc == CW_OK)
            rc = cw_buf_addf(&resp.body, "405 method not allowed (allowed: %s)\n",
                             cw_buf_str(&allow));
        cw_buf_reset(&allow);
        break;
    case HTTP_REJECT_TOO_BIG:
        resp.status = 413;
        rc = cw_buf_addf(&resp.body, "413 request body is larger than the limit of %zu bytes\n",
                         r->route != NULL ? r->route->max_body : (size_t)0);
        break;
    case HTTP_REJECT_RATE:
        resp.status = 429;
        rc = cw_buf_adds(&resp.body, "429 too many requests\n");
        break;
    case HTTP_REJECT_AUTH:
        resp.status = 401;
        rc = cw_http_set_header(&resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, HTTP_REALM_HEADER);
        if (rc == CW_OK)
            rc = cw_buf_adds(&resp.body, "401 unauthorized\n");
        break;
    case HTTP_REJECT_AUTH_THROTTLED:
        resp.status = 429;
        rc = cw_http_set_header(&resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        if (rc == CW_OK)
            rc = cw_buf_adds(&resp.body, "429 too many unverified logins from this address, "
                                         "retry later\n");
        break;
    case HTTP_REJECT_CERT_MISSING:
        resp.status = 403;
        rc = cw_buf_adds(&resp.body, "403 a client certificate is required\n");
        break;
    case HTTP_REJECT_CERT_UNTRUSTED:
        resp.status = 403;
        rc = cw_buf_adds(&resp.body, "403 the client certificate is not trusted\n");
        break;
    case HTTP_REJECT_CERT_SAN:
        resp.status = 403;
        rc = cw_buf_adds(&resp.body, "403 the client certificate has no allowed name\n");
        break;
    case HTTP_REJECT_NOMEM:
    case HTTP_REJECT_NONE:
        resp.status = 500;
        rc = cw_buf_addf(&resp.body, "internal error: %s\n", cw_strerror(CW_ENOMEM));
        break;
    }
    if (rc != CW_OK) {
        http_response_reset(&resp);
        return http_queue_text(r, 500, "internal error: out of memory\n", true);
    }
    return http_queue(r, &resp, false);
}

/* ---- request lifecycle --------------------------------------------------- */

static bool http_length_over(struct MHD_Connection *conn, size_t limit)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t v;

    if (cl == NULL)
        return false;
    if (cw_parse_u64(cl, strlen(cl), &v) != CW_OK)
        return false; /* libmicrohttpd answers malformed lengths itself */
    return v > limit;
}

/* http_admit() decides, before any body arrives, whether the request is
 * served: client certificate, rate limit, basic auth, route, declared size
 * (the toolkit's order, which puts the limiter before the bcrypt cost). */
static enum http_reject http_admit(struct cw_http_request *r)
{
    struct cw_http_server *s = r->dmn->srv;
    enum http_reject rej;
    bool known;

    rej = http_check_client_cert(r);
    if (rej != HTTP_REJECT_NONE)
        return rej;
    if (!http_rate_allow(s))
        return HTTP_REJECT_RATE;
    rej = http_authorize(r);
    if (rej != HTTP_REJECT_NONE)
        return rej;
    r->route = http_route(s->routes, r->method, r->path, &known);
    if (r->route == NULL)
        return known ? HTTP_REJECT_METHOD : HTTP_REJECT_NOT_FOUND;
    cw_buf_init(&r->body, r->route->max_body);
    if (http_length_over(r->conn, r->route->max_body))
        return HTTP_REJECT_TOO_BIG;
    return HTTP_REJECT_NONE;
}

/* http_slow_end() counts one slow handler as finished and wakes
 * cw_http_stop(), which waits for all of them. */
static void http_slow_end(struct cw_http_server *s, bool auth)
{
    pthread_mutex_lock(&s->slow_lock);
    s->slow_running--;
    if (auth)
        s->auth_running--;
    pthread_cond_broadcast(&s->slow_cond);
    pthread_mutex_unlock(&s->slow_lock);
}

/* http_slow_main() runs a slow route's handler on its own thread, then
 * resumes the suspended connection so that its polling thread queues the
 * answer (http_serve() again). */
static void *http_slow_main(void *arg)
{
    struct cw_http_request *r = arg;
    struct cw_http_server *s = r->dmn->srv;
    bool auth = r->auth_pending;

    if (auth)
        r->reject = http_auth_verify(r);
    if (r->reject == HTTP_REJECT_NONE)
        r->slow_rc = r->route->fn(r->route->ctx != NULL ? r->route->ctx : s->ctx, r, &r->slow_resp);
    r->slow_done = true;
    MHD_resume_connection(r->conn);
    http_slow_end(s, auth);
    return NULL;
}

/* http_slow_start() suspends the connection and starts the thread that
 * checks pending credentials and runs the handler; 503 when too many slow
 * handlers run, 429 when too many credential checks do. */
static HTTP_RESULT http_slow_start(struct cw_http_request *r)
{
    struct cw_http_server *s = r->dmn->srv;
    pthread_attr_t attr;
    pthread_t t;
    bool admitted = false;
    int rc;

    pthread_mutex_lock(&s->slow_lock);
    if (r->auth_pending ? s->auth_running < HTTP_AUTH_RUNNING
                        : s->slow_running < CW_HTTP_MAX_SLOW) {
        s->slow_running++;
        s->auth_running += r->auth_pending ? 1u : 0u;
        admitted = true;
    }
    pthread_mutex_unlock(&s->slow_lock);
    if (!admitted && r->auth_pending) {
        atomic_fetch_add(&s->auth_throttled, 1);
        http_auth_forget(r);
        r->reject = HTTP_REJECT_AUTH_THROTTLED;
        return http_queue_reject(r);
    }
    if (!admitted)
        return http_queue_text(r, 503, "too many probes running, try again\n", false);
    http_response_init(&r->slow_resp);
    r->slow_started = true;
    MHD_suspend_connection(r->conn);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &attr, http_slow_main, r);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        r->slow_rc = CW_ENOMEM;
        r->slow_done = true;
        MHD_resume_connection(r->conn);
        http_slow_end(s, r->auth_pending);
    }
    return MHD_YES;
}

static HTTP_RESULT http_serve(struct cw_http_request *r)
{
    struct cw_http_server *s = r->dmn->srv;
    struct cw_http_response resp;
    int rc;

    http_conn_busy(s, r->hc);
    if (r->reject != HTTP_REJECT_NONE)
        return http_queue_reject(r);
    if ((r->route->slow || r->auth_pending) && !r->slow_started)
        return http_slow_start(r);
    if (r->slow_started) {
        if (!r->slow_done)
            return MHD_YES; /* a call before the resume */
        resp = r->slow_resp;
        http_response_init(&r->slow_resp);
        rc = r->slow_rc;
    } else {
        http_response_init(&resp);
        rc = r->route->fn(r->route->ctx != NULL ? r->route->ctx : s->ctx, r, &resp);
    }
    if (rc != CW_OK) {
        char text[128];

        cw_log(CW_LOG_ERROR, "http", "request handler failed", "path", r->path, "err",
               cw_strerror(rc), (char *)NULL);
        http_response_reset(&resp);
        snprintf(text, sizeof(text), "internal error: %s\n", cw_strerror(rc));
        return http_queue_text(r, 500, text, false);
    }
    return http_queue(r, &resp, false);
}

static HTTP_RESULT http_access(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls)
{
    struct http_daemon *d = cls;
    struct cw_http_request *r = *req_cls;

    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        r->dmn = d;
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->head = strcmp(method, "HEAD") == 0;
        r->hc = http_conn_of(conn);
        cw_buf_init(&r->body, 0);
        pthread_mutex_lock(&d->srv->lock);
        r->cfg = http_cfg_ref(d->srv->cfg);
        pthread_mutex_unlock(&d->srv->lock);
        *req_cls = r;
        r->reject = http_admit(r);
        /* A refused request is answered at once, so that a large or
         * unwanted body is never read; libmicrohttpd then closes the
         * connection instead of reading the rest. */
        if (r->reject != HTTP_REJECT_NONE) {
            http_conn_busy(d->srv, r->hc);
            return http_queue_reject(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        if (r->reject == HTTP_REJECT_NONE) {
            int rc = cw_buf_add(&r->body, upload_data, *upload_data_size);

            if (rc != CW_OK) {
                /* Chunked bodies have no declared size: keep reading and
                 * discarding, and answer 413 at the end. */
                r->reject = rc == CW_ETOOBIG ? HTTP_REJECT_TOO_BIG : HTTP_REJECT_NOMEM;
                cw_buf_reset(&r->body);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return http_serve(r);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
    struct http_daemon *d = cls;
    struct cw_http_request *r = *req_cls;

    (void)toe;
    http_conn_ready(d->srv, http_conn_of(conn));
    if (r == NULL)
        return;
    cw_buf_reset(&r->body);
    http_response_reset(&r->slow_resp);
    http_auth_forget(r);
    http_cfg_unref(r->cfg);
    free(r);
    *req_cls = NULL;
}

/* libmicrohttpd reports every client that misbehaves (a closed or
 * malformed request, a connection over a limit): a client can cause those
 * lines at will, so each kind of message (its format string, a constant in
 * the library) has its own rate limit. */
#define HTTP_MHD_LOG_KINDS 32

static struct cw_log_limit http_mhd_log_limits[HTTP_MHD_LOG_KINDS];

static void http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t len;
    uintptr_t key = (uintptr_t)fmt;

    (void)cls;
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        return;
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    key ^= key >> 7;
    cw_log_limited(&http_mhd_log_limits[key % HTTP_MHD_LOG_KINDS], CW_LOG_WARN, "http",
                   "libmicrohttpd message", "detail", msg, (char *)NULL);
}

/* ---- request accessors --------------------------------------------------- */

const char *cw_http_method(const struct cw_http_request *r)
{
    return r->method;
}

const char *cw_http_path(const struct cw_http_request *r)
{
    return r->path;
}

const char *cw_http_header(const struct cw_http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *cw_http_query(const struct cw_http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *cw_http_body(const struct cw_http_request *r, size_t *len)
{
    if (len != NULL)
        *len = r->body.len;
    return cw_buf_str(&r->body);
}

bool cw_http_is_head(const struct cw_http_request *r)
{
    return r->head;
}

/* ---- daemons ------------------------------------------------------------- */

/* http_share() is one listener's share of 'total', at least 1. */
static unsigned http_share(unsigned total, size_t nlis)
{
    unsigned share = nlis > 1 ? (unsigned)(total / nlis) : total;

    return share != 0 ? share : 1;
}

static struct http_daemon *http_daemon_start(struct cw_http_server *s, struct http_listener *l,
                                             struct http_cfg *cfg, struct cw_diag *diag)
{
    const struct cw_webcfg *wc = cfg->wc;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem ops[16];
    struct http_daemon *d;
    size_t n = 0;

    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        cw_diagf(diag, NULL, "listen address %s: out of memory", l->addr);
        return NULL;
    }
    d->srv = s;
    /* The logger goes first so that libmicrohttpd reports option errors through it. */
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)http_mhd_log, d};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_SOCKET, l->fd, NULL};
    if (s->threads > 1)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->threads, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                       http_share(s->max_connections, s->nlis), NULL};
    if (s->max_per_ip != 0)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->max_per_ip, NULL};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, s->connection_timeout_s, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, d};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http_notify_connection, d};
    if (wc != NULL && wc->tls) {
        d->tls = http_cfg_ref(cfg);
        flags |= MHD_USE_TLS;
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, wc->cert_pem};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, wc->key_pem};
        if (wc->client_ca_pem != NULL)
            ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, wc->client_ca_pem};
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, wc->priorities};
    }
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    if (wc != NULL && wc->tls && (wc->cert_pem == NULL || wc->key_pem == NULL)) {
        cw_diagf(diag, NULL, "listen address %s: TLS material was not loaded", l->addr);
        goto out_free;
    }
    d->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_access, d, MHD_OPTION_ARRAY, ops,
                              MHD_OPTION_END);
    if (d->mhd == NULL) {
        cw_diagf(diag, NULL, "listen address %s: libmicrohttpd failed to start (see its log)",
                 l->addr);
        cw_log(CW_LOG_ERROR, "http", "cannot start server", "address", l->addr, (char *)NULL);
        goto out_free;
    }
    return d;

out_free:
    http_cfg_unref(d->tls);
    free(d);
    return NULL;
}

/* http_daemon_stop() stops and frees 'd'. The listen socket stays open: it
 * belongs to the listener. Must not run on one of d's own threads. */
static void http_daemon_stop(struct http_daemon *d)
{
    if (d == NULL)
        return;
    /* Quiescing first makes libmicrohttpd give the socket back instead of
     * closing it; it is a no-op for a daemon that is already quiesced. */
    (void)MHD_quiesce_daemon(d->mhd);
    MHD_stop_daemon(d->mhd);
    http_cfg_unref(d->tls);
    free(d);
}

static unsigned http_daemon_connections(struct http_daemon *d)
{
    const union MHD_DaemonInfo *info;

    info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info != NULL ? info->num_connections : 0;
}

static void *http_reaper(void *arg)
{
    struct cw_http_server *s = arg;

    pthread_mutex_lock(&s->reap_lock);
    while (!s->reap_stop) {
        struct http_daemon **pp = &s->retired;
        cw_mono now = cw_now();

        while (*pp != NULL) {
            struct http_daemon *d = *pp;

            if (now < d->deadline && http_daemon_connections(d) > 0) {
                pp = &d->next;
                continue;
            }
            *pp = d->next;
            pthread_mutex_unlock(&s->reap_lock);
            http_daemon_stop(d);
            pthread_mutex_lock(&s->reap_lock);
            pp = &s->retired;
        }
        if (s->reap_stop)
            break;
        if (s->retired == NULL) {
            pthread_cond_wait(&s->reap_cond, &s->reap_lock);
            continue;
        }
        http_wait_ms(&s->reap_cond, &s->reap_lock, HTTP_REAP_TICK_MS);
    }
    pthread_mutex_unlock(&s->reap_lock);
    return NULL;
}

/* http_retire() quiesces 'd' and hands it to the reaper thread, which stops
 * it once its connections are gone or the connection timeout has passed. If
 * the reaper cannot start, 'd' stays listed and cw_http_stop() stops it. */
static void http_retire(struct cw_http_server *s, struct http_daemon *d)
{
    (void)MHD_quiesce_daemon(d->mhd);
    d->deadline = cw_now() + CW_S(s->connection_timeout_s);
    pthread_mutex_lock(&s->reap_lock);
    d->next = s->retired;
    s->retired = d;
    if (!s->reaper_running) {
        if (pthread_create(&s->reaper, NULL, http_reaper, s) == 0)
            s->reaper_running = true;
        else
            cw_log(CW_LOG_WARN, "http", "cannot start reaper thread", (char *)NULL);
    }
    pthread_cond_signal(&s->reap_cond);
    pthread_mutex_unlock(&s->reap_lock);
}

/* ---- server -------------------------------------------------------------- */

static void http_log_listening(const struct cw_http_server *s)
{
    const struct cw_webcfg *wc = s->cfg->wc;
    size_t i;

    for (i = 0; i < s->nlis; i++) {
        cw_log(CW_LOG_INFO, "http", "listening", "address", s->lis[i].addr, "tls",
               wc != NULL && wc->tls ? "true" : "false", "client_auth",
               wc != NULL && wc->tls ? cw_webcfg_client_auth_name(wc->client_auth) : "",
               (char *)NULL);
    }
}

/* http_cond_init_mono() makes a condition variable whose timed waits run
 * on CLOCK_MONOTONIC. */
static int http_cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int rc;

    if (pthread_condattr_init(&ca) != 0)
        return CW_ENOMEM;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(c, &ca) == 0
             ? CW_OK
             : CW_ENOMEM;
    pthread_condattr_destroy(&ca);
    return rc;
}

static int http_server_init_locks(struct cw_http_server *s)
{
    if (pthread_mutex_init(&s->reload_lock, NULL) != 0)
        return CW_ENOMEM;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto out_reload_lock;
    if (pthread_mutex_init(&s->reap_lock, NULL) != 0)
        goto out_lock;
    if (http_cond_init_mono(&s->reap_cond) != CW_OK)
        goto out_reap_lock;
    if (pthread_mutex_init(&s->slow_lock, NULL) != 0)
        goto out_reap_cond;
    if (pthread_cond_init(&s->slow_cond, NULL) != 0)
        goto out_slow_lock;
    if (pthread_mutex_init(&s->conn_lock, NULL) != 0)
        goto out_slow_cond;
    if (pthread_mutex_init(&s->guard_lock, NULL) != 0)
        goto out_conn_lock;
    if (pthread_mutex_init(&s->throttle_lock, NULL) != 0) {
        pthread_mutex_destroy(&s->guard_lock);
        goto out_conn_lock;
    }
    if (http_cond_init_mono(&s->guard_cond) != CW_OK)
        goto out_throttle_lock;
    return CW_OK;

out_throttle_lock:
    pthread_mutex_destroy(&s->throttle_lock);
    pthread_mutex_destroy(&s->guard_lock);
out_conn_lock:
    pthread_mutex_destroy(&s->conn_lock);
out_slow_cond:
    pthread_cond_destroy(&s->slow_cond);
out_slow_lock:
    pthread_mutex_destroy(&s->slow_lock);
out_reap_cond:
    pthread_cond_destroy(&s->reap_cond);
out_reap_lock:
    pthread_mutex_destroy(&s->reap_lock);
out_lock:
    pthread_mutex_destroy(&s->lock);
out_reload_lock:
    pthread_mutex_destroy(&s->reload_lock);
    return CW_ENOMEM;
}

static void http_server_free(struct cw_http_server *s)
{
    size_t i;

    http_guard_stop(s);
    for (i = 0; i < s->nlis; i++) {
        struct http_daemon *d = s->lis[i].live;

        if (d != NULL && !s->quiesced) {
            /* Stopped without quiescing, libmicrohttpd closes the socket
             * itself once its threads are joined. Quiescing a daemon whose
             * pool threads still run races with them in libmicrohttpd
             * 0.9.75: both remove the socket from the epoll set and the
             * loser aborts the process ("Failed to remove listen FD from
             * epoll set", seen once in test_http under load). */
            MHD_stop_daemon(d->mhd);
            http_cfg_unref(d->tls);
            free(d);
            s->lis[i].fd = -1;
        } else {
            http_daemon_stop(d);
        }
        if (s->lis[i].fd >= 0)
            close(s->lis[i].fd);
        free(s->lis[i].addr);
    }
    free(s->lis);
    http_cfg_unref(s->cfg);
    free(s->web_config_file);
    pthread_cond_destroy(&s->guard_cond);
    pthread_mutex_destroy(&s->throttle_lock);
    pthread_mutex_destroy(&s->guard_lock);
    pthread_mutex_destroy(&s->conn_lock);
    pthread_cond_destroy(&s->slow_cond);
    pthread_mutex_destroy(&s->slow_lock);
    pthread_cond_destroy(&s->reap_cond);
    pthread_mutex_destroy(&s->reap_lock);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->reload_lock);
    free(s);
}

void cw_http_limits_init(struct cw_http_limits *l)
{
    l->max_connections = -1;
    l->max_connections_per_ip = -1;
    l->read_timeout = -1;
    l->idle_timeout = -1;
}

unsigned long cw_http_raise_fd_limit(void)
{
    struct rlimit rl;
    rlim_t before;
    char from[32], to[32];

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur == rl.rlim_max)
        return (unsigned long)rl.rlim_cur;
    before = rl.rlim_cur;
    snprintf(from, sizeof(from), "%llu", (unsigned long long)before);
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        cw_log(CW_LOG_WARN, "http", "cannot raise the descriptor limit", "soft", from,
               (char *)NULL);
        return (unsigned long)before;
    }
    snprintf(to, sizeof(to), "%llu", (unsigned long long)rl.rlim_cur);
    cw_log(CW_LOG_INFO, "http", "descriptor limit raised", "from", from, "to", to, (char *)NULL);
    return (unsigned long)rl.rlim_cur;
}

/* http_apply_limits() fills the server's limits from 'l' (NULL or negative
 * fields: the defaults, see cw_http_limits). */
static void http_apply_limits(struct cw_http_server *s, const struct cw_http_limits *l)
{
    struct cw_http_limits d;
    struct rlimit rl;
    unsigned long fds = 1024;
    cw_duration longest;

    cw_http_limits_init(&d);
    if (l == NULL)
        l = &d;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        fds = (unsigned long)rl.rlim_cur;
    if (l->max_connections > 0) {
        s->max_connections =
            l->max_connections > UINT_MAX ? UINT_MAX : (unsigned)l->max_connections;
    } else {
        unsigned long half = fds / HTTP_FD_RESERVE_DIVISOR;

        s->max_connections = half < CW_HTTP_MIN_CONNECTIONS ? CW_HTTP_MIN_CONNECTIONS
                             : half > UINT_MAX              ? UINT_MAX
                                                            : (unsigned)half;
    }
    if (l->max_connections_per_ip >= 0)
        s->max_per_ip =
            l->max_connections_per_ip > UINT_MAX ? UINT_MAX : (unsigned)l->max_connections_per_ip;
    else
        s->max_per_ip = s->max_connections / HTTP_PER_IP_DIVISOR > 0
                            ? s->max_connections / HTTP_PER_IP_DIVISOR
                            : 1;
    s->read_timeout = l->read_timeout > 0 ? l->read_timeout : CW_HTTP_DEFAULT_READ_TIMEOUT;
    s->idle_timeout = l->idle_timeout > 0 ? l->idle_timeout : CW_HTTP_DEFAULT_IDLE_TIMEOUT;
    /* libmicrohttpd's inactivity timeout backs the guard up while a
     * response is written (a client that stops reading). */
    longest = s->read_timeout > s->idle_timeout ? s->read_timeout : s->idle_timeout;
    s->connection_timeout_s = (unsigned)((longest + CW_S(1) - 1) / CW_S(1));
}

struct cw_http_server *cw_http_start(const struct cw_http_options *opt,
                                     const struct cw_http_route *routes, void *ctx,
                                     struct cw_diag *diag)
{
    struct cw_webcfg *wc = NULL;
    struct cw_http_server *s;
    size_t i;

    if (opt == NULL || routes == NULL || opt->nlisten == 0 || opt->listen == NULL) {
        cw_diagf(diag, NULL, "no listen address");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out_nomem;
    if (http_server_init_locks(s) != CW_OK) {
        free(s);
        goto out_nomem;
    }
    s->routes = routes;
    s->ctx = ctx;
    s->threads = opt->threads != 0 ? opt->threads : HTTP_DEFAULT_THREADS;
    http_apply_limits(s, opt->limits);
    s->lis = calloc(opt->nlisten, sizeof(*s->lis));
    if (s->lis == NULL)
        goto out_free_nomem;

    if (opt->web_config_file != NULL && opt->web_config_file[0] != '\0') {
        s->web_config_file = strdup(opt->web_config_file);
        if (s->web_config_file == NULL)
            goto out_free_nomem;
        wc = cw_webcfg_load(s->web_config_file, diag);
        if (wc == NULL)
            goto out_free;
    }
    s->cfg = http_cfg_new(wc);
    if (s->cfg == NULL)
        goto out_free_nomem;
    http_rate_configure_locked(s, s->cfg->wc);
    http_log_cfg(s->cfg);

    for (i = 0; i < opt->nlisten; i++) {
        s->lis[i].fd = -1;
        s->nlis = i + 1;
        if (http_listen(opt->listen[i], &s->lis[i], diag) != CW_OK)
            goto out_free;
    }
    for (i = 0; i < s->nlis; i++) {
        s->lis[i].live = http_daemon_start(s, &s->lis[i], s->cfg, diag);
        if (s->lis[i].live == NULL)
            goto out_free;
    }
    if (http_guard_start(s, diag) != CW_OK)
        goto out_free;
    http_log_listening(s);
    return s;

out_free_nomem:
    cw_diagf(diag, NULL, "cannot start the HTTP server: %s", cw_strerror(CW_ENOMEM));
out_free:
    http_server_free(s);
    return NULL;
out_nomem:
    cw_diagf(diag, NULL, "cannot start the HTTP server: %s", cw_strerror(CW_ENOMEM));
    return NULL;
}

int cw_http_reload_web_config(struct cw_http_server *s, struct cw_diag *diag)
{
    struct http_daemon **fresh = NULL;
    struct http_cfg *ncfg;
    struct http_cfg *old;
    struct cw_webcfg *wc;
    bool restart;
    size_t i;

    if (s->web_config_file == NULL)
        return CW_OK;
    wc = cw_webcfg_load(s->web_config_file, diag);
    if (wc == NULL)
        return CW_ECONFIG;
    ncfg = http_cfg_new(wc);
    if (ncfg == NULL) {
        cw_diag_fileerr(diag, s->web_config_file, "%s", cw_strerror(CW_ENOMEM));
        return CW_ECONFIG;
    }

    pthread_mutex_lock(&s->reload_lock);
    if (s->stopping) {
        pthread_mutex_unlock(&s->reload_lock);
        http_cfg_unref(ncfg);
        return CW_OK;
    }
    /* TLS settings live in the daemon (GnuTLS credentials are set when it
     * starts), so changing them means new daemons on the same sockets. */
    restart = !s->quiesced && !cw_webcfg_tls_equal(s->cfg->wc, ncfg->wc);
    if (restart) {
        fresh = calloc(s->nlis, sizeof(*fresh));
        if (fresh == NULL) {
            cw_diag_fileerr(diag, s->web_config_file, "%s", cw_strerror(CW_ENOMEM));
            goto out_fail;
        }
        for (i = 0; i < s->nlis; i++) {
            fresh[i] = http_daemon_start(s, &s->lis[i], ncfg, diag);
            if (fresh[i] == NULL) {
                while (i-- > 0)
                    http_daemon_stop(fresh[i]);
                free(fresh);
                goto out_fail;
            }
        }
    }
    http_log_cfg(ncfg);
    pthread_mutex_lock(&s->lock);
    old = s->cfg;
    s->cfg = ncfg;
    http_rate_configure_locked(s, ncfg->wc);
    pthread_mutex_unlock(&s->lock);
    if (restart) {
        for (i = 0; i < s->nlis; i++) {
            http_retire(s, s->lis[i].live);
            s->lis[i].live = fresh[i];
        }
        free(fresh);
    }
    pthread_mutex_unlock(&s->reload_lock);
    http_cfg_unref(old);
    cw_log(CW_LOG_INFO, "http", "web config reloaded", "tls",
           ncfg->wc != NULL && ncfg->wc->tls ? "true" : "false", "restarted",
           restart ? "true" : "false", (char *)NULL);
    return CW_OK;

out_fail:
    pthread_mutex_unlock(&s->reload_lock);
    http_cfg_unref(ncfg);
    return CW_ECONFIG;
}

const char *cw_http_bound_address(const struct cw_http_server *s, size_t i)
{
    if (s == NULL || i >= s->nlis)
        return NULL;
    return s->lis[i].addr;
}

static const struct cw_desc desc_conns = {
    .name = "connwatch_http_connections",
    .help = "Client connections open to this program's HTTP server.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_conns_max = {
    .name = "connwatch_http_connections_max",
    .help = "The limit on client connections (--web.max-connections).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_conns_closed = {
    .name = "connwatch_http_connections_closed_total",
    .help = "Client connections closed by the server at a deadline: read_timeout (a request "
            "not complete in time) or idle_timeout.",
    .type = CW_COUNTER,
    .labels = {"reason"},
    .nlabels = 1,
};
static const struct cw_desc desc_auth_throttled = {
    .name = "connwatch_http_logins_throttled_total",
    .help = "Logins with unverified credentials answered 429 before any bcrypt run.",
    .type = CW_COUNTER,
};

void cw_http_emit(struct cw_http_server *s, struct cw_batch *b)
{
    unsigned long open;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->conn_lock);
    open = s->conns_open;
    pthread_mutex_unlock(&s->conn_lock);
    cw_batch_add(b, &desc_conns, NULL, (double)open, NULL, NULL);
    cw_batch_add(b, &desc_conns_max, NULL, (double)s->max_connections, NULL, NULL);
    cw_batch_add(b, &desc_conns_closed, NULL, (double)atomic_load(&s->closed_read_timeout),
                 (const char *const[]){"read_timeout"}, NULL);
    cw_batch_add(b, &desc_conns_closed, NULL, (double)atomic_load(&s->closed_idle),
                 (const char *const[]){"idle_timeout"}, NULL);
    cw_batch_add(b, &desc_auth_throttled, NULL, (double)atomic_load(&s->auth_throttled), NULL,
                 NULL);
}

void cw_http_quiesce(struct cw_http_server *s)
{
    size_t i;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->reload_lock);
    if (!s->quiesced) {
        /* Every daemon on a socket must let go of it before it is closed:
         * retired ones already have. Closing it makes new connections fail
         * fast instead of waiting in the backlog. */
        for (i = 0; i < s->nlis; i++) {
            if (s->lis[i].live != NULL)
                (void)MHD_quiesce_daemon(s->lis[i].live->mhd);
            if (s->lis[i].fd >= 0)
                close(s->lis[i].fd);
            s->lis[i].fd = -1;
        }
        s->quiesced = true;
    }
    pthread_mutex_unlock(&s->reload_lock);
}

void cw_http_stop(struct cw_http_server *s)
{
    bool joined;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->reload_lock);
    s->stopping = true;
    pthread_mutex_unlock(&s->reload_lock);
    /* Suspended connections must be resumed before their daemon stops:
     * wait for the slow handlers, whose work is bounded by deadlines. */
    pthread_mutex_lock(&s->slow_lock);
    while (s->slow_running != 0)
        pthread_cond_wait(&s->slow_cond, &s->slow_lock);
    pthread_mutex_unlock(&s->slow_lock);

    pthread_mutex_lock(&s->reap_lock);
    s->reap_stop = true;
    joined = s->reaper_running;
    pthread_cond_signal(&s->reap_cond);
    pthread_mutex_unlock(&s->reap_lock);
    if (joined)
        pthread_join(s->reaper, NULL);
    while (s->retired != NULL) {
        struct http_daemon *d = s->retired;

        s->retired = d->next;
        http_daemon_stop(d);
    }
    http_server_free(s);
}

int cw_http_answer_reload(struct cw_http_response *resp, int rc, const char *why)
{
    if (rc == CW_OK)
        return cw_buf_adds(&resp->body, "configuration reloaded\n");
    resp->status = 500;
    return cw_buf_addf(&resp->body, "reload failed, the running configuration is kept:\n%s", why);
}
