/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - the "http" check: one HTTP(S) request per run through libcurl,
 * with per-phase timing, status, version, redirects, size, clock skew from
 * the Date header, and the TLS certificate series of collectors/tlsinspect.c.
 *
 * Threads. The kind's shared state (shared_new) owns the process' one
 * libcurl multi handle and the thread that drives it (curl_multi_perform /
 * curl_multi_poll); no other thread calls curl_multi_*, except
 * curl_multi_wakeup(). run(), on a scheduler worker, queues the instance's
 * transfer under the shared mutex, wakes the curl thread and waits on the
 * instance's condition variable until the transfer is done or the run's
 * deadline passed; in the latter case it asks the curl thread to remove the
 * handle and waits for that. So all transfers of the process run
 * concurrently in one thread, each under its own deadline
 * (CURLOPT_TIMEOUT_MS = the time left).
 *
 * Memory. What a transfer needs (the easy handle with its buffers, the TLS
 * facts, the body kept for expect_body, the error texts: ~12 KiB) is a
 * struct http_xfer taken from the shared pool for the run and given back
 * after it, so the pool holds about as many as run at once, not one per
 * check. A check keeps only its options and what configure() derived from
 * them; run() resets the pooled handle and sets the check's options again
 * (some fifty setopt calls, a few microseconds against a probe's hundreds).
 *
 * TLS. Peer verification is left off in libcurl so that a bad certificate
 * is still measured: CURLOPT_SSL_CTX_FUNCTION installs the trust store and
 * an OpenSSL info callback that, at the end of the handshake (on the curl
 * thread), copies the chain, the verification result and the host name
 * match into the instance state (cw_tls_collect). run() then fails the
 * check with cert_* unless insecure_skip_verify is set.
 *
 * /probe. A /probe run carries the probe.allow rule that admitted its URL
 * (cw_run_info()->probe_rule). libcurl still follows redirects itself, but
 * every connection it is about to resolve, open or send a request on is
 * checked first (CURLOPT_RESOLVER_START_FUNCTION, CURLOPT_OPENSOCKETFUNCTION,
 * CURLOPT_PREREQFUNCTION, on the curl thread) against that rule: the probed
 * URL's own host and port, or a hop the rule lists; anything else is vetoed
 * before a socket exists and the run fails with redirect_refused.
 *
 * Fields written by the curl thread during a transfer (the xfer's tls,
 * body, date, error texts; the state's body_bytes, hop_refused) are read by
 * run() only after the transfer is done, which the shared mutex orders.
 */
#include "collectors/http_util.h"
#include "collectors/netconn.h"
#include "collectors/tlsinspect.h"
#include "exporter/check.h"
#include "exporter/core/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define HTTP_BODY_LIMIT  ((size_t)1024 * 1024) /* bytes of body kept for expect_body */
#define HTTP_POLL_MS     1000                  /* curl thread's longest sleep */
#define HTTP_CURL_MARGIN CW_MS(20)             /* curl gives up this long before the deadline */
#define HTTP_POOL_KEEP   8                     /* idle transfers kept beyond those running */
#define HTTP_BODY_KEEP   ((size_t)64 * 1024)   /* a pooled body buffer above this is freed */

enum http_phase { HTTP_IDLE = 0, HTTP_QUEUED, HTTP_ACTIVE, HTTP_DONE };

struct http_state;

/* The trust store of one ca_file (one version of it: same path, inode, size
 * and mtime), shared by the checks naming it; loaded once, freed with the
 * last of them. */
struct http_ca {
    struct http_ca *next; /* the shared list sh->cas, which owns the nodes */
    char *path;           /* owned */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    X509_STORE *store; /* owned */
    size_t refs;
};

/* What one transfer needs, pooled (see the file comment). Used by one run
 * at a time: the run's thread, and the curl thread while it is active. */
struct http_xfer {
    struct http_xfer *next;  /* the pool's idle list (sh->idle), which owns the idle ones */
    CURL *easy;              /* owned */
    struct cw_tls_facts tls; /* written by the curl thread at the end of a handshake */
    struct cw_buf body_buf;  /* the body kept for expect_body */
    char date[64];           /* the last Date header */
    bool have_date;
    char errbuf[CURL_ERROR_SIZE];
    char hop_why[200]; /* which hop a /probe run refused, for the log */
};

/* Process-wide: the multi handle and its thread. */
struct http_shared {
    CURLM *multi; /* owned */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    bool stop;                 /* under mu */
    struct http_state *queued; /* borrowed, under mu: LIFO of instances to add */
    struct http_state *active; /* borrowed, under mu: doubly linked, handles in the multi */
    size_t ncancel;            /* under mu: active instances with cancel set */
    X509_STORE *default_store; /* owned: system trust store, loaded on first use (under mu) */
    struct http_ca *cas;       /* owned, under mu: ca_file stores in use */
    struct http_xfer *idle;    /* owned, under mu: the pool's idle transfers */
    size_t nidle;              /* under mu: length of idle */
    size_t nbusy;              /* under mu: transfers taken from the pool */
};

struct http_state {
    /* Options (owned, freed by cw_opts_release()). */
    char *url;                       /* owned */
    char *method;                    /* owned */
    struct cw_strmap headers;        /* owned */
    char *body;                      /* owned, or NULL */
    struct cw_intlist expect_status; /* owned */
    char *expect_body;               /* owned, or NULL */
    int64_t follow_redirects;
    char *username;            /* owned, or NULL */
    struct cw_secret password; /* owned, wiped when freed */
    char *ca_file;             /* owned, or NULL */
    char *cert_file;           /* owned, or NULL */
    char *key_file;            /* owned, or NULL */
    char *server_name;         /* owned, or NULL */
    bool insecure;
    int ip_family; /* enum cw_net_family */
    char *proxy;   /* owned, or NULL */

    /* Built by configure(). */
    struct http_shared *sh;  /* borrowed */
    struct curl_slist *hdrs; /* owned: the headers option as libcurl's list */
    char *verify_host;       /* owned: name checked against the certificate; url_eff's host */
    char *url_host; /* owned: the URL's host, brackets off (where server_name is reached) */
    char *url_port; /* owned: the URL's port (the scheme's default when absent) */
    char *url_eff;  /* owned: URL actually requested (server_name applied) */
    struct curl_slist *connect_to; /* owned, or NULL without server_name */
    struct http_ca *ca;            /* reference to the ca_file's shared store, or NULL */
    regex_t body_re;
    bool have_re;
    bool tls_possible; /* https, redirects or a proxy: the run may meet TLS */
    pthread_cond_t cv;
    bool cv_init;

    /* Transfer status, under sh->mu. */
    enum http_phase phase;
    bool cancel;
    CURLcode result;
    struct http_state *next, *prev; /* borrowed: queued / active lists */
    int64_t start_real;             /* ns, when the handle was added */

    /* A /probe run's rule (borrowed, set by run(); NULL for a configured
     * check): every hop libcurl takes must be one it allows. */
    const struct cw_probe_rule *rule;

    /* The run's transfer: borrowed from the pool by run() for the run,
     * NULL between runs. */
    struct http_xfer *x;

    /* Written by the curl thread during a transfer. */
    uint64_t body_bytes;
    bool hop_refused; /* a hop was vetoed against 'rule' (why in x->hop_why) */
};

static const struct cw_opt http_opts[] = {
    CW_OPT("url", CW_OPT_T_URL, struct http_state, url, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("method", CW_OPT_T_STRING, struct http_state, method, "GET", 0, 0, 0),
    CW_OPT("headers", CW_OPT_T_STRING_MAP, struct http_state, headers, NULL, 0, 0, 0),
    CW_OPT("body", CW_OPT_T_STRING, struct http_state, body, NULL, 0, 0, 0),
    CW_OPT("expect_status", CW_OPT_T_INT_LIST, struct http_state, expect_status, NULL, 100, 599, 0),
    CW_OPT("expect_body", CW_OPT_T_STRING, struct http_state, expect_body, NULL, 0, 0, 0),
    CW_OPT("follow_redirects", CW_OPT_T_INT, struct http_state, follow_redirects, "0", 0, 50, 0),
    CW_OPT("username", CW_OPT_T_STRING, struct http_state, username, NULL, 0, 0, 0),
    CW_OPT("password_file", CW_OPT_T_SECRET_FILE, struct http_state, password, NULL, 0, 0, 0),
    CW_OPT("ca_file", CW_OPT_T_PATH, struct http_state, ca_file, NULL, 0, 0, 0),
    CW_OPT("cert_file", CW_OPT_T_PATH, struct http_state, cert_file, NULL, 0, 0, 0),
    CW_OPT("key_file", CW_OPT_T_PATH, struct http_state, key_file, NULL, 0, 0, 0),
    CW_OPT("server_name", CW_OPT_T_HOST, struct http_state, server_name, NULL, 0, 0, 0),
    CW_OPT("insecure_skip_verify", CW_OPT_T_BOOL, struct http_state, insecure, "false", 0, 0, 0),
    CW_OPT_ENUM("ip_family", struct http_state, ip_family, "auto", cw_net_family_names, 0),
    CW_OPT("proxy", CW_OPT_T_STRING, struct http_state, proxy, NULL, 0, 0, 0),
    CW_OPT_END,
};

/* ---- Metric families ------------------------------------------------------ */

static const struct cw_desc desc_phase = {
    .name = "connwatch_http_phase_seconds",
    .help = "Time spent in each phase of the request: dns, connect, tls, processing (request "
            "sent to first response byte), transfer (rest of the body).",
    .type = CW_GAUGE,
    .labels = {"phase"},
    .nlabels = 1,
};
static const struct cw_desc desc_duration = {
    .name = "connwatch_http_duration_seconds",
    .help = "Total time of the request, redirects included.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_status = {
    .name = "connwatch_http_status_code",
    .help = "HTTP status code of the last response (0 when none arrived).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_version = {
    .name = "connwatch_http_version",
    .help = "HTTP version of the last response: 1, 1.1, 2 or 3 (0 when none arrived).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_redirects = {
    .name = "connwatch_http_redirects",
    .help = "Redirects followed.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_bytes = {
    .name = "connwatch_http_response_bytes",
    .help = "Size of the response body as received (after the last redirect).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_skew = {
    .name = "connwatch_clock_skew_seconds",
    .help = "Server Date header minus local time, corrected by half the round trip; the Date "
            "header has a resolution of one second.",
    .type = CW_GAUGE,
};

/* ---- Shared state: the multi handle and its thread -------------------------- */

static void http_list_unlink(struct http_state **head, struct http_state *st)
{
    if (st->prev != NULL)
        st->prev->next = st->next;
    else if (*head == st)
        *head = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    st->next = st->prev = NULL;
}

static void http_list_push(struct http_state **head, struct http_state *st)
{
    st->prev = NULL;
    st->next = *head;
    if (*head != NULL)
        (*head)->prev = st;
    *head = st;
}

/* http_finish() marks 'st' done with 'res' and wakes its run(). Under mu. */
static void http_finish(struct http_shared *sh, struct http_state *st, CURLcode res)
{
    http_list_unlink(&sh->active, st);
    if (st->cancel) {
        st->cancel = false;
        sh->ncancel--;
    }
    st->phase = HTTP_DONE;
    st->result = res;
    pthread_cond_signal(&st->cv);
}

static void *http_thread(void *arg)
{
    struct http_shared *sh = arg;
    int running = 0;

    pthread_mutex_lock(&sh->mu);
    while (!sh->stop) {
        CURLMsg *msg;
        int left;

        /* New transfers. */
        while (sh->queued != NULL) {
            struct http_state *st = sh->queued;

            http_list_unlink(&sh->queued, st);
            st->start_real = cw_now_real();
            http_list_push(&sh->active, st);
            st->phase = HTTP_ACTIVE;
            if (curl_multi_add_handle(sh->multi, st->x->easy) != CURLM_OK)
                http_finish(sh, st, CURLE_OUT_OF_MEMORY);
        }
        /* Runs past their deadline. */
        if (sh->ncancel > 0) {
            struct http_state *st = sh->active, *next;

            for (; st != NULL; st = next) {
                next = st->next;
                if (st->cancel) {
                    (void)curl_multi_remove_handle(sh->multi, st->x->easy);
                    http_finish(sh, st, CURLE_OPERATION_TIMEDOUT);
                }
            }
        }
        pthread_mutex_unlock(&sh->mu);

        (void)curl_multi_perform(sh->multi, &running);
        while ((msg = curl_multi_info_read(sh->multi, &left)) != NULL) {
            struct http_state *st = NULL;
            CURLcode res;
            CURL *e;

            if (msg->msg != CURLMSG_DONE)
                continue;
            res = msg->data.result;
            e = msg->easy_handle;
            if (curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&st) != CURLE_OK || st == NULL)
                continue;
            (void)curl_multi_remove_handle(sh->multi, e);
            pthread_mutex_lock(&sh->mu);
            http_finish(sh, st, res);
            pthread_mutex_unlock(&sh->mu);
        }
        (void)curl_multi_poll(sh->multi, NULL, 0, HTTP_POLL_MS, NULL);
        pthread_mutex_lock(&sh->mu);
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

/* ---- The transfer pool ------------------------------------------------------ */

static void http_xfer_free(struct http_xfer *x)
{
    if (x == NULL)
        return;
    if (x->easy != NULL)
        curl_easy_cleanup(x->easy);
    cw_buf_reset(&x->body_buf);
    free(x);
}

/* http_xfer_get() takes an idle transfer from the pool, or makes one; NULL
 * when out of memory. Any thread but the curl thread. */
static struct http_xfer *http_xfer_get(struct http_shared *sh)
{
    struct http_xfer *x;

    pthread_mutex_lock(&sh->mu);
    x = sh->idle;
    if (x != NULL) {
        sh->idle = x->next;
        sh->nidle--;
    }
    sh->nbusy++;
    pthread_mutex_unlock(&sh->mu);
    if (x == NULL) {
        x = calloc(1, sizeof(*x));
        if (x != NULL) {
            x->easy = curl_easy_init();
            cw_buf_init(&x->body_buf, HTTP_BODY_LIMIT);
        }
        if (x == NULL || x->easy == NULL) {
            http_xfer_free(x);
            pthread_mutex_lock(&sh->mu);
            sh->nbusy--;
            pthread_mutex_unlock(&sh->mu);
            return NULL;
        }
    }
    x->next = NULL;
    return x;
}

/* http_xfer_put() gives 'x' (from http_xfer_get(), not in the multi handle)
 * back: kept idle while the pool holds fewer than HTTP_POOL_KEEP more than
 * the transfers running, freed otherwise, so that after a burst the pool
 * shrinks back. NULL-safe. */
static void http_xfer_put(struct http_shared *sh, struct http_xfer *x)
{
    bool keep;

    if (x == NULL)
        return;
    /* Back to libcurl's defaults: the handle holds no pointer into the
     * check (its headers, body, callbacks' data) once it is idle. */
    curl_easy_reset(x->easy);
    if (x->body_buf.cap > HTTP_BODY_KEEP)
        cw_buf_reset(&x->body_buf);
    else
        cw_buf_clear(&x->body_buf);
    pthread_mutex_lock(&sh->mu);
    sh->nbusy--;
    keep = sh->nidle < sh->nbusy + HTTP_POOL_KEEP;
    if (keep) {
        x->next = sh->idle;
        sh->idle = x;
        sh->nidle++;
    }
    pthread_mutex_unlock(&sh->mu);
    if (!keep)
        http_xfer_free(x);
}

static void http_shared_free(void *p)
{
    struct http_shared *sh = p;

    if (sh == NULL)
        return;
    if (sh->thread_started) {
        pthread_mutex_lock(&sh->mu);
        sh->stop = true;
        pthread_mutex_unlock(&sh->mu);
        (void)curl_multi_wakeup(sh->multi);
        pthread_join(sh->thread, NULL);
    }
    while (sh->idle != NULL) {
        struct http_xfer *x = sh->idle;

        sh->idle = x->next;
        http_xfer_free(x);
    }
    if (sh->multi != NULL)
        (void)curl_multi_cleanup(sh->multi);
    X509_STORE_free(sh->default_store);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
    curl_global_cleanup();
}

static void *http_shared_new(void)
{
    struct http_shared *sh;

    /* Thread-safe since libcurl 7.84; balanced in http_shared_free(). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return NULL;
    sh = calloc(1, sizeof(*sh));
    if (sh == NULL) {
        curl_global_cleanup();
        return NULL;
    }
    if (pthread_mutex_init(&sh->mu, NULL) != 0) {
        free(sh);
        curl_global_cleanup();
        return NULL;
    }
    sh->multi = curl_multi_init();
    if (sh->multi == NULL)
        goto out_fail;
    if (pthread_create(&sh->thread, NULL, http_thread, sh) != 0)
        goto out_fail;
    sh->thread_started = true;
    return sh;

out_fail:
    http_shared_free(sh);
    return NULL;
}

/* http_default_store() returns the system trust store, loaded once. */
static X509_STORE *http_default_store(struct http_shared *sh)
{
    return cw_tls_system_store(&sh->mu, &sh->default_store);
}

/* http_ca_get() finds or loads the store of 'path' into *out (a reference).
 * CW_OK, CW_EPARSE (unreadable, no certificate) or CW_ENOMEM. Loading
 * thread only (configure). */
static int http_ca_get(struct http_shared *sh, const char *path, struct http_ca **out)
{
    struct http_ca *ca;
    struct stat sb;

    if (stat(path, &sb) != 0)
        return CW_EPARSE;
    pthread_mutex_lock(&sh->mu);
    for (ca = sh->cas; ca != NULL; ca = ca->next) {
        if (strcmp(ca->path, path) == 0 && ca->dev == sb.st_dev && ca->ino == sb.st_ino &&
            ca->size == sb.st_size && ca->mtime.tv_sec == sb.st_mtim.tv_sec &&
            ca->mtime.tv_nsec == sb.st_mtim.tv_nsec) {
            ca->refs++;
            pthread_mutex_unlock(&sh->mu);
            *out = ca;
            return CW_OK;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    ca = calloc(1, sizeof(*ca));
    if (ca == NULL)
        return CW_ENOMEM;
    ca->path = strdup(path);
    ca->store = X509_STORE_new();
    if (ca->path == NULL || ca->store == NULL) {
        X509_STORE_free(ca->store);
        free(ca->path);
        free(ca);
        return CW_ENOMEM;
    }
    if (X509_STORE_load_file(ca->store, path) != 1) {
        ERR_clear_error();
        X509_STORE_free(ca->store);
        free(ca->path);
        free(ca);
        return CW_EPARSE;
    }
    ca->dev = sb.st_dev;
    ca->ino = sb.st_ino;
    ca->size = sb.st_size;
    ca->mtime = sb.st_mtim;
    ca->refs = 1;
    pthread_mutex_lock(&sh->mu);
    ca->next = sh->cas;
    sh->cas = ca;
    pthread_mutex_unlock(&sh->mu);
    *out = ca;
    return CW_OK;
}

/* http_ca_put() drops a reference taken by http_ca_get(); NULL-safe. */
static void http_ca_put(struct http_shared *sh, struct http_ca *ca)
{
    struct http_ca **pp;

    if (ca == NULL)
        return;
    pthread_mutex_lock(&sh->mu);
    if (--ca->refs > 0) {
        pthread_mutex_unlock(&sh->mu);
        return;
    }
    for (pp = &sh->cas; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == ca) {
            *pp = ca->next;
            break;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    X509_STORE_free(ca->store);
    free(ca->path);
    free(ca);
}

/* ---- libcurl callbacks (curl thread) --------------------------------------- */

static void http_tls_info(const SSL *ssl, int where, int ret)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    struct http_state *st;

    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE) || ctx == NULL)
        return;
    /* libcurl makes one SSL_CTX per connection and leaves its app data to us. */
    st = SSL_CTX_get_app_data(ctx);
    if (st == NULL)
        return;
    if (st->tls_possible && st->x != NULL)
        cw_tls_collect(ssl, st->verify_host, &st->x->tls);
}

static CURLcode http_ssl_ctx(CURL *curl, void *sslctx, void *userptr)
{
    struct http_state *st = userptr;
    SSL_CTX *ctx = sslctx;
    X509_STORE *store;

    (void)curl;
    store = st->ca != NULL ? st->ca->store : http_default_store(st->sh);
    if (store != NULL)
        SSL_CTX_set1_cert_store(ctx, store);
    if (SSL_CTX_set_app_data(ctx, st) != 1)
        return CURLE_OUT_OF_MEMORY;
    SSL_CTX_set_info_callback(ctx, http_tls_info);
    return CURLE_OK;
}

static size_t http_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct http_state *st = userdata;
    size_t n = size * nmemb;

    st->body_bytes += n;
    if (st->have_re && st->x->body_buf.len < HTTP_BODY_LIMIT) {
        size_t room = HTTP_BODY_LIMIT - st->x->body_buf.len;

        if (cw_buf_add(&st->x->body_buf, ptr, n < room ? n : room) != CW_OK)
            return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

static size_t http_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct http_state *st = userdata;
    struct http_xfer *x = st->x;
    size_t n = size * nitems;

    /* A new response (after a redirect or a 100 Continue) starts over. */
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        x->have_date = false;
        st->body_bytes = 0;
        cw_buf_clear(&x->body_buf);
    } else if (n > 5 && strncasecmp(buf, "date:", 5) == 0 && n - 5 < sizeof(x->date)) {
        memcpy(x->date, buf + 5, n - 5);
        x->date[n - 5] = '\0';
        x->have_date = true;
    }
    return n;
}

/* http_hop_check() decides whether libcurl may go on to the URL it is
 * about to resolve, connect to or send a request to in a /probe run (the
 * probed URL itself, or a redirect): its host, as libcurl parsed it, must be
 * one the rule allows. 'addr' is the address being connected (NULL before
 * resolution): for an IP-literal host it is what the rule is matched
 * against, the address actually connected; a name is matched as written,
 * never by what it resolves to (no DNS rebinding around the list). Through
 * a proxy the URL's host is what counts; with server_name, the URL's host
 * is where CURLOPT_CONNECT_TO takes that name. A refusal is recorded for
 * run(). */
static bool http_hop_check(struct http_state *st, const char *addr)
{
    char *url = NULL, *scheme = NULL, *host = NULL, *port = NULL;
    char why[sizeof(st->x->hop_why)];
    const char *dest, *h, *what;
    unsigned char ip[16];
    bool ok = false;
    CURLU *u = curl_url();
    long hops = 0;
    size_t n;

    if (curl_easy_getinfo(st->x->easy, CURLINFO_REDIRECT_COUNT, &hops) != CURLE_OK)
        hops = 1;
    what = hops > 0 ? "redirect" : "connection";
    snprintf(why, sizeof(why), "%s to a URL libcurl cannot parse", what);
    if (u == NULL || curl_easy_getinfo(st->x->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK ||
        url == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    n = strlen(host);
    if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
        host[n - 1] = '\0';
        memmove(host, host + 1, n - 1);
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        snprintf(why, sizeof(why), "%s to a %.20s: URL (http and https only)", what, scheme);
        goto out;
    }
    dest = host;
    if (st->connect_to != NULL && strcasecmp(host, st->verify_host) == 0 &&
        strcmp(port, st->url_port) == 0)
        dest = st->url_host;
    h = dest;
    if (addr != NULL && st->proxy == NULL &&
        (inet_pton(AF_INET, dest, ip) == 1 || inet_pton(AF_INET6, dest, ip) == 1))
        h = addr;
    ok = cw_probe_rule_allows(st->rule, h, port);
    if (!ok)
        snprintf(why, sizeof(why), "%s to %s%.100s%s:%.8s%s%.46s is not allowed by probe.allow",
                 what, strchr(dest, ':') != NULL ? "[" : "", dest,
                 strchr(dest, ':') != NULL ? "]" : "", port, strcmp(h, dest) != 0 ? " at " : "",
                 strcmp(h, dest) != 0 ? h : "");
out:
    if (!ok && !st->hop_refused) { /* the first refusal tells the story */
        st->hop_refused = true;
        memcpy(st->x->hop_why, why, sizeof(why));
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

/* Before a name is resolved (or an IP literal taken as is). */
static int http_resolver_start(void *resolver, void *reserved, void *userdata)
{
    (void)resolver;
    (void)reserved;
    return http_hop_check(userdata, NULL) ? 0 : 1;
}

/* Before each socket, with the address it would connect to. */
static curl_socket_t http_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    char addr[INET6_ADDRSTRLEN];
    const void *ip = NULL;

    if (a->family == AF_INET)
        ip = &((const struct sockaddr_in *)(const void *)&a->addr)->sin_addr;
    else if (a->family == AF_INET6)
        ip = &((const struct sockaddr_in6 *)(const void *)&a->addr)->sin6_addr;
    if (purpose != CURLSOCKTYPE_IPCXN || ip == NULL ||
        inet_ntop(a->family, ip, addr, sizeof(addr)) == NULL) {
        struct http_state *st = clientp;

        if (!st->hop_refused) {
            st->hop_refused = true;
            snprintf(st->x->hop_why, sizeof(st->x->hop_why),
                     "a connection of another kind than TCP/IP");
        }
        return CURL_SOCKET_BAD;
    }
    if (!http_hop_check(clientp, addr))
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype, a->protocol);
}

/* Before each request, also on a connection libcurl reuses. */
static int http_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                       int local_port)
{
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    return http_hop_check(clientp, primary_ip) ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

/* ---- configure / release ---------------------------------------------------- */

/* SETOPT() sets one option on the handle 'e'; a refusal names it in *bad. */
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (curl_easy_setopt(e, opt, val) != CURLE_OK) {                                           \
            *bad = #opt;                                                                           \
            return CW_ECONFIG;                                                                     \
        }                                                                                          \
    } while (0)

/* http_url_setup() derives the name checked against the certificate and,
 * with server_name, the URL on that name plus a CONNECT_TO to the URL's
 * real host. */
static int http_url_setup(struct http_state *st, const struct cw_node *node, struct cw_diag *diag)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL, *s = NULL;
    int rc = CW_ECONFIG;

    if (u == NULL)
        return CW_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, st->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        cw_diagf(diag, cw_node_get(node, "url"), "libcurl cannot parse this URL");
        goto out;
    }
    /* Brackets off an IPv6 literal. */
    if (host[0] == '[') {
        size_t l = strlen(host);

        memmove(host, host + 1, l - 1);
        host[l - 2] = '\0';
    }
    st->url_host = strdup(host);
    st->url_port = strdup(port);
    if (st->server_name == NULL) {
        st->verify_host = strdup(host);
        st->url_eff = strdup(st->url);
    } else {
        char buf[600];
        int n;

        st->verify_host = strdup(st->server_name);
        if (curl_url_set(u, CURLUPART_HOST, st->server_name, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK) {
            cw_diagf(diag, cw_node_get(node, "server_name"), "cannot put this name in the URL");
            goto out;
        }
        st->url_eff = strdup(s);
        n = snprintf(buf, sizeof(buf), "%s:%s:%s%s%s:%s", st->server_name, port,
                     strchr(host, ':') != NULL ? "[" : "", host,
                     strchr(host, ':') != NULL ? "]" : "", port);
        if (n < 0 || (size_t)n >= sizeof(buf)) {
            cw_diagf(diag, node, "host name too long");
            goto out;
        }
        st->connect_to = curl_slist_append(NULL, buf);
        if (st->connect_to == NULL) {
            rc = CW_ENOMEM;
            goto out;
        }
    }
    rc = CW_ENOMEM;
    if (st->verify_host != NULL && st->url_eff != NULL && st->url_host != NULL &&
        st->url_port != NULL)
        rc = CW_OK;
out:
    curl_free(host);
    curl_free(port);
    curl_free(s);
    curl_url_cleanup(u);
    return rc;
}

/* http_check_options() checks what the option table cannot: options that go
 * together, and the body's regular expression (compiled here). */
static int http_check_options(struct http_state *st, const struct cw_node *node,
                              struct cw_diag *diag)
{
    if ((st->cert_file == NULL) != (st->key_file == NULL)) {
        cw_diagf(diag, node, "cert_file and key_file go together");
        return CW_ECONFIG;
    }
    if (st->password.value != NULL && st->username == NULL) {
        cw_diagf(diag, cw_node_get(node, "password_file"), "password_file needs username");
        return CW_ECONFIG;
    }
    if (st->expect_body != NULL) {
        int e = regcomp(&st->body_re, st->expect_body, REG_EXTENDED | REG_NOSUB);

        if (e != 0) {
            char msg[128];

            regerror(e, &st->body_re, msg, sizeof(msg));
            cw_diagf(diag, cw_node_get(node, "expect_body"), "bad regular expression: %s", msg);
            return CW_ECONFIG;
        }
        st->have_re = true;
    }
    return CW_OK;
}

/* http_headers_setup() turns the headers option into libcurl's list. */
static int http_headers_setup(struct http_state *st, const struct cw_node *node,
                              struct cw_diag *diag)
{
    size_t i;

    for (i = 0; i < st->headers.n; i++) {
        struct curl_slist *l;
        char *h;
        size_t len = strlen(st->headers.keys[i]) + strlen(st->headers.values[i]) + 3;

        if (strpbrk(st->headers.keys[i], ":\r\n") != NULL ||
            strpbrk(st->headers.values[i], "\r\n") != NULL) {
            cw_diagf(diag, cw_node_get(cw_node_get(node, "headers"), st->headers.keys[i]),
                     "header names cannot hold ':' and headers cannot hold line breaks");
            return CW_ECONFIG;
        }
        h = malloc(len);
        if (h == NULL)
            return CW_ENOMEM;
        /* "Name;" sends an empty header in libcurl; "Name:" would remove it. */
        snprintf(h, len, "%s%s %s", st->headers.keys[i],
                 st->headers.values[i][0] == '\0' ? ";" : ":", st->headers.values[i]);
        l = curl_slist_append(st->hdrs, h);
        free(h);
        if (l == NULL)
            return CW_ENOMEM;
        st->hdrs = l;
    }
    return CW_OK;
}

/* http_tls_setup() loads the trust store the check verifies against and
 * makes room for the TLS facts of checks that can meet TLS. */
static int http_tls_setup(struct http_state *st, const struct cw_node *node, struct cw_diag *diag)
{
    int rc;

    if (st->ca_file != NULL) {
        rc = http_ca_get(st->sh, st->ca_file, &st->ca);
        if (rc != CW_OK) {
            cw_diagf(diag, cw_node_get(node, "ca_file"), "no certificate could be read from %s",
                     st->ca_file);
            return rc == CW_ENOMEM ? CW_ENOMEM : CW_ECONFIG;
        }
    } else if (strncasecmp(st->url_eff, "https:", 6) == 0) {
        /* Load the system store now rather than on the curl thread. */
        (void)http_default_store(st->sh);
    }

    /* Only checks that can meet TLS collect and emit its facts. */
    st->tls_possible =
        strncasecmp(st->url_eff, "https:", 6) == 0 || st->follow_redirects > 0 || st->proxy != NULL;
    return CW_OK;
}

/* http_cv_init() makes the condition run() waits on, on the monotonic clock. */
static int http_cv_init(struct http_state *st)
{
    pthread_condattr_t ca;

    if (pthread_condattr_init(&ca) != 0)
        return CW_ENOMEM;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&st->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        return CW_ENOMEM;
    }
    pthread_condattr_destroy(&ca);
    st->cv_init = true;
    return CW_OK;
}

/* http_easy_fixed() sets what every check's handle has in common. */
static int http_easy_fixed(struct http_state *st, struct http_xfer *x, const char **bad)
{
    CURL *e = x->easy;

    SETOPT(CURLOPT_PRIVATE, (void *)st);
    SETOPT(CURLOPT_URL, st->url_eff);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_FRESH_CONNECT, 1L);
    SETOPT(CURLOPT_FORBID_REUSE, 1L);
    SETOPT(CURLOPT_SSL_SESSIONID_CACHE, 0L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    /* No CURLOPT_BUFFERSIZE: libcurl 7.88 refuses it on a handle that
     * still holds its receive buffer (after a transfer a callback ended),
     * and the handles are pooled, so the default 16 KiB costs little. */
    SETOPT(CURLOPT_WRITEFUNCTION, http_write);
    SETOPT(CURLOPT_WRITEDATA, (void *)st);
    SETOPT(CURLOPT_HEADERFUNCTION, http_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)st);
    SETOPT(CURLOPT_USERAGENT, "connwatch/" CW_VERSION);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Verification is ours (see the file comment): libcurl must not abort. */
    SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
    SETOPT(CURLOPT_CAINFO, (char *)NULL);
    SETOPT(CURLOPT_CAPATH, (char *)NULL);
    SETOPT(CURLOPT_SSL_CTX_FUNCTION, http_ssl_ctx);
    SETOPT(CURLOPT_SSL_CTX_DATA, (void *)st);
    return CW_OK;
}

/* http_easy_options() sets what the check's options ask for. */
static int http_easy_options(struct http_state *st, CURL *e, const char **bad)
{
    if (st->cert_file != NULL) {
        SETOPT(CURLOPT_SSLCERT, st->cert_file);
        SETOPT(CURLOPT_SSLKEY, st->key_file);
    }
    if (st->connect_to != NULL)
        SETOPT(CURLOPT_CONNECT_TO, st->connect_to);
    if (st->follow_redirects > 0) {
        SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
        SETOPT(CURLOPT_MAXREDIRS, (long)st->follow_redirects);
    }
    SETOPT(CURLOPT_IPRESOLVE, st->ip_family == CW_NET_FAMILY_IP4   ? (long)CURL_IPRESOLVE_V4
                              : st->ip_family == CW_NET_FAMILY_IP6 ? (long)CURL_IPRESOLVE_V6
                                                                   : (long)CURL_IPRESOLVE_WHATEVER);
    if (st->proxy != NULL)
        SETOPT(CURLOPT_PROXY, st->proxy);
    else
        SETOPT(CURLOPT_PROXY, ""); /* ignore http_proxy from the environment */
    if (st->username != NULL) {
        SETOPT(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SETOPT(CURLOPT_USERNAME, st->username);
        SETOPT(CURLOPT_PASSWORD, st->password.value != NULL ? st->password.value : "");
    }
    if (st->body != NULL) {
        SETOPT(CURLOPT_POSTFIELDSIZE, (long)strlen(st->body));
        SETOPT(CURLOPT_POSTFIELDS, st->body);
    }
    if (strcmp(st->method, "HEAD") == 0)
        SETOPT(CURLOPT_NOBODY, 1L);
    else if (strcmp(st->method, "GET") != 0 || st->body != NULL)
        SETOPT(CURLOPT_CUSTOMREQUEST, st->method);
    if (st->hdrs != NULL)
        SETOPT(CURLOPT_HTTPHEADER, st->hdrs);
    return CW_OK;
}

/* http_easy_setup() sets every option of 'st' on the pooled handle of 'x'
 * (reset when it went back to the pool). CW_OK, or CW_ECONFIG with the
 * option libcurl refused in *bad. */
static int http_easy_setup(struct http_state *st, struct http_xfer *x, const char **bad)
{
    int rc = http_easy_fixed(st, x, bad);

    return rc == CW_OK ? http_easy_options(st, x->easy, bad) : rc;
}

static int http_configure(void *state, const struct cw_node *node, const struct cw_check_info *info,
                          struct cw_diag *diag)
{
    struct http_state *st = state;
    struct http_xfer *x;
    const char *bad = "?";
    int rc;

    rc = cw_opts_apply(http_opts, st, node, cw_check_common_keys, diag);
    if (rc != CW_OK)
        return rc;
    st->sh = info->shared;
    if (st->sh == NULL) {
        cw_diagf(diag, node, "the HTTP engine (libcurl) could not be started");
        return CW_ECONFIG;
    }
    rc = http_check_options(st, node, diag);
    if (rc == CW_OK)
        rc = http_headers_setup(st, node, diag);
    if (rc == CW_OK)
        rc = http_url_setup(st, node, diag);
    if (rc == CW_OK)
        rc = http_tls_setup(st, node, diag);
    if (rc == CW_OK)
        rc = http_cv_init(st);
    if (rc != CW_OK)
        return rc;
    /* The options are set on a pooled handle once here, so that one libcurl
     * refuses is a configuration error rather than a failing run. */
    x = http_xfer_get(st->sh);
    if (x == NULL)
        return CW_ENOMEM;
    rc = http_easy_setup(st, x, &bad);
    http_xfer_put(st->sh, x);
    if (rc != CW_OK)
        cw_diagf(diag, node, "libcurl rejected option %s", bad);
    return rc;
}

static const char *http_target(const void *state)
{
    const struct http_state *st = state;

    return st->url;
}

static void http_release(void *state)
{
    struct http_state *st = state;

    curl_slist_free_all(st->hdrs);
    curl_slist_free_all(st->connect_to);
    free(st->verify_host);
    free(st->url_host);
    free(st->url_port);
    free(st->url_eff);
    http_ca_put(st->sh, st->ca);
    if (st->have_re)
        regfree(&st->body_re);
    if (st->cv_init)
        pthread_cond_destroy(&st->cv);
    cw_opts_release(http_opts, st);
}

/* ---- run -------------------------------------------------------------------- */

static bool http_status_expected(const struct http_state *st, long code)
{
    size_t i;

    if (st->expect_status.n == 0)
        return code >= 200 && code <= 299;
    for (i = 0; i < st->expect_status.n; i++) {
        if (st->expect_status.items[i] == code)
            return true;
    }
    return false;
}

static double http_secs(CURL *e, CURLINFO what)
{
    curl_off_t v = 0;

    if (curl_easy_getinfo(e, what, &v) != CURLE_OK || v < 0)
        return 0;
    return (double)v / 1e6;
}

static void http_emit(struct http_state *st, struct cw_run *run, long code)
{
    CURL *e = st->x->easy;
    double dns = http_secs(e, CURLINFO_NAMELOOKUP_TIME_T);
    double conn = http_secs(e, CURLINFO_CONNECT_TIME_T);
    double app = http_secs(e, CURLINFO_APPCONNECT_TIME_T);
    double pre = http_secs(e, CURLINFO_PRETRANSFER_TIME_T);
    double first = http_secs(e, CURLINFO_STARTTRANSFER_TIME_T);
    double total = http_secs(e, CURLINFO_TOTAL_TIME_T);
    long ver = 0, redirects = 0;
    double v;
    struct {
        const char *name;
        double secs;
    } ph[5];
    size_t i;

    ph[0].name = "dns", ph[0].secs = dns;
    ph[1].name = "connect", ph[1].secs = conn > dns ? conn - dns : 0;
    ph[2].name = "tls", ph[2].secs = app > conn ? app - conn : 0;
    ph[3].name = "processing", ph[3].secs = first > pre ? first - pre : 0;
    ph[4].name = "transfer", ph[4].secs = total > first && first > 0 ? total - first : 0;
    for (i = 0; i < 5; i++) {
        const char *lv[1] = {ph[i].name};

        cw_emit(run, &desc_phase, ph[i].secs, lv);
    }
    cw_emit(run, &desc_duration, total, NULL);
    cw_emit(run, &desc_status, (double)code, NULL);
    if (curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &ver) != CURLE_OK)
        ver = 0;
    switch (ver) {
    case CURL_HTTP_VERSION_1_0:
        v = 1.0;
        break;
    case CURL_HTTP_VERSION_1_1:
        v = 1.1;
        break;
    case CURL_HTTP_VERSION_2_0:
        v = 2;
        break;
    case CURL_HTTP_VERSION_3:
        v = 3;
        break;
    default:
        v = 0;
    }
    cw_emit(run, &desc_version, code > 0 ? v : 0, NULL);
    if (curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects) != CURLE_OK)
        redirects = 0;
    cw_emit(run, &desc_redirects, (double)redirects, NULL);
    cw_emit(run, &desc_bytes, (double)st->body_bytes, NULL);

    if (st->x->have_date && code > 0) {
        int64_t date;

        if (cw_http_parse_date(st->x->date, strlen(st->x->date), &date) == CW_OK) {
            double start = (double)st->start_real / 1e9;

            cw_emit(run, &desc_skew, cw_http_clock_skew(date, start + pre, start + first), NULL);
        }
    }
}

/* http_guard() installs the hop checks of a /probe run on the run's handle
 * (see the file comment); without them the run must not start. */
static int http_guard(struct http_state *st, const struct cw_probe_rule *rule)
{
    CURL *e = st->x->easy;

    st->rule = NULL;
    if (rule == NULL)
        return CW_OK;
    if (curl_easy_setopt(e, CURLOPT_RESOLVER_START_FUNCTION, http_resolver_start) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_RESOLVER_START_DATA, (void *)st) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, http_open_socket) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, (void *)st) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, http_prereq) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PREREQDATA, (void *)st) != CURLE_OK)
        return CW_EINVAL;
    st->rule = rule;
    return CW_OK;
}

/* http_prepare() readies the run's transfer st->x: fresh facts, every
 * option, the time left and a /probe run's hop checks. false (the run
 * failed) when libcurl refuses one. */
static bool http_prepare(struct http_state *st, struct cw_run *run)
{
    struct http_xfer *x = st->x;
    cw_duration left = cw_run_remaining(run) - HTTP_CURL_MARGIN;
    const char *bad = "?";

    if (left < CW_MS(1))
        left = CW_MS(1);
    memset(&x->tls, 0, sizeof(x->tls));
    x->have_date = false;
    x->errbuf[0] = '\0';
    x->hop_why[0] = '\0';
    st->body_bytes = 0;
    st->hop_refused = false;
    if (http_easy_setup(st, x, &bad) != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "libcurl rejected option %s", bad);
        return false;
    }
    if (curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)(left / CW_MS(1))) != CURLE_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "libcurl rejected the timeout");
        return false;
    }
    if (http_guard(st, cw_run_info(run)->probe_rule) != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "libcurl rejected the /probe hop checks");
        return false;
    }
    return true;
}

/* http_transfer() hands the prepared transfer to the curl thread and waits
 * until it is done or the run's deadline passed (then it is removed). */
static CURLcode http_transfer(struct http_state *st, struct cw_run *run)
{
    struct http_shared *sh = st->sh;
    cw_mono deadline = cw_run_deadline(run);
    struct timespec ts;
    CURLcode res;

    ts.tv_sec = (time_t)(deadline / CW_S(1));
    ts.tv_nsec = (long)(deadline % CW_S(1));
    pthread_mutex_lock(&sh->mu);
    st->phase = HTTP_QUEUED;
    http_list_push(&sh->queued, st);
    pthread_mutex_unlock(&sh->mu);
    (void)curl_multi_wakeup(sh->multi);

    pthread_mutex_lock(&sh->mu);
    while (st->phase != HTTP_DONE) {
        int e = pthread_cond_timedwait(&st->cv, &sh->mu, &ts);

        if (e == ETIMEDOUT && st->phase != HTTP_DONE) {
            if (st->phase == HTTP_QUEUED) {
                http_list_unlink(&sh->queued, st);
                st->phase = HTTP_DONE;
                st->result = CURLE_OPERATION_TIMEDOUT;
                break;
            }
            if (!st->cancel) {
                st->cancel = true;
                sh->ncancel++;
                (void)curl_multi_wakeup(sh->multi);
            }
            while (st->phase != HTTP_DONE)
                pthread_cond_wait(&st->cv, &sh->mu);
        }
    }
    res = st->result;
    st->phase = HTTP_IDLE;
    pthread_mutex_unlock(&sh->mu);
    return res;
}

/* http_judge() emits the finished transfer's series and fails the run on
 * the first problem on the way: transport, TLS, status, body. A /probe
 * redirect out of probe.allow (or to another scheme) is refused. */
static void http_judge(struct http_state *st, struct cw_run *run, CURLcode res)
{
    struct http_xfer *x = st->x;
    long code = 0, verify = 0, oserr = 0;
    enum cw_reason r;
    const char *why;
    bool is_tls;

    if (curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
        code = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_SSL_VERIFYRESULT, &verify) != CURLE_OK)
        verify = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr) != CURLE_OK)
        oserr = 0;
    http_emit(st, run, code);

    is_tls = st->tls_possible && (x->tls.have || strncasecmp(st->url_eff, "https:", 6) == 0);
    if (is_tls)
        cw_tls_emit(run, &x->tls, st->insecure);

    if (res != CURLE_OK && st->rule != NULL &&
        (st->hop_refused || res == CURLE_UNSUPPORTED_PROTOCOL)) {
        cw_run_fail(run, CW_REASON_REDIRECT_REFUSED, "%s",
                    st->hop_refused ? x->hop_why
                                    : "redirect to another scheme (http and https only)");
        return;
    }
    if (res != CURLE_OK) {
        r = cw_http_reason_from_curl(res, verify, oserr);
        cw_run_fail(run, r, "%s", x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(res));
        return;
    }
    if (is_tls && !st->insecure) {
        r = cw_tls_facts_reason(&x->tls, &why);
        if (r != CW_REASON_NONE) {
            cw_run_fail(run, r, "%s", why);
            return;
        }
    }
    if (!http_status_expected(st, code)) {
        cw_run_fail(run, code == 401 || code == 407 ? CW_REASON_AUTH : CW_REASON_HTTP_STATUS,
                    "unexpected status %ld", code);
        return;
    }
    if (st->have_re && regexec(&st->body_re, cw_buf_str(&x->body_buf), 0, NULL, 0) != 0)
        cw_run_fail(run, CW_REASON_PROTOCOL, "body does not match expect_body");
}

static void http_run(void *state, struct cw_run *run)
{
    struct http_state *st = state;

    st->x = http_xfer_get(st->sh);
    if (st->x == NULL) {
        cw_run_fail(run, CW_REASON_INTERNAL, "out of memory for the transfer");
        return;
    }
    if (http_prepare(st, run))
        http_judge(st, run, http_transfer(st, run));
    http_xfer_put(st->sh, st->x);
    st->x = NULL;
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const http_descs[] = {
    &desc_phase,     &desc_duration, &desc_status, &desc_version,
    &desc_redirects, &desc_bytes,    &desc_skew,   NULL,
};
const struct cw_check_kind cw_kind_http = {
    .name = "http",
    .layer = CW_LAYER_HTTP,
    .state_size = sizeof(struct http_state),
    .reasons = 1u << CW_REASON_DNS | 1u << CW_REASON_REFUSED | 1u << CW_REASON_TIMEOUT |
               1u << CW_REASON_UNREACHABLE | 1u << CW_REASON_TLS_HANDSHAKE |
               1u << CW_REASON_CERT_EXPIRED | 1u << CW_REASON_CERT_NOT_YET_VALID |
               1u << CW_REASON_CERT_UNTRUSTED | 1u << CW_REASON_CERT_HOSTNAME |
               1u << CW_REASON_HTTP_STATUS | 1u << CW_REASON_AUTH | 1u << CW_REASON_PROTOCOL |
               1u << CW_REASON_INTERNAL,
    .configure = http_configure,
    .target = http_target,
    .run = http_run,
    .release = http_release,
    .shared_new = http_shared_new,
    .shared_free = http_shared_free,
    .probe_option = "url",
    .descs = {http_descs, cw_tls_descs},
};
