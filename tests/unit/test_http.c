/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_http.c - Check suite "http": the HTTP layer (http.c) against a real
 * server on 127.0.0.1 port 0 with libcurl as the client, and the web config
 * parser (webcfg.c) with exact diagnostics.
 *
 * Each test makes its own temporary directory (certificates are generated
 * with the OpenSSL API, bcrypt hashes with libxcrypt at the lowest cost) and
 * removes it. Check's fork mode keeps the servers of different tests apart.
 */
#include "exporter/core/buf.h"
#include "exporter/core/config.h"
#include "exporter/core/http.h"
#include "exporter/core/log.h"
#include "exporter/core/webcfg.h"

#include <check.h>
#include <crypt.h>
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- scratch directory --------------------------------------------------- */

static char tdir[64];

static void tdir_make(void)
{
    snprintf(tdir, sizeof(tdir), "/tmp/cw-test-http-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tdir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tdir_remove(void)
{
    if (tdir[0] != '\0')
        ck_assert_int_eq(nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    tdir[0] = '\0';
}

/* tpath() returns tdir/name in a static buffer per slot. */
static const char *tpath(const char *name)
{
    static char bufs[8][256];
    static unsigned next;
    char *b = bufs[next++ % 8];

    snprintf(b, 256, "%s/%s", tdir, name);
    return b;
}

static void write_file(const char *name, const char *text)
{
    FILE *f = fopen(tpath(name), "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- certificates -------------------------------------------------------- */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ck_assert_ptr_nonnull(ext);
    ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* make_cert() creates a P-256 key and a certificate for it, self-signed
 * when 'issuer' is NULL, and writes name.crt and name.key. */
static void make_cert(const char *name, const char *cn, const char *san, X509 *issuer,
                      EVP_PKEY *issuer_key, X509 **out_cert, EVP_PKEY **out_key)
{
    static long serial = 1;
    char file[128];
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *subj;
    FILE *f;

    ck_assert_ptr_nonnull(key);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(X509_set_version(x, 2), 1);
    ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    ck_assert_int_eq(X509_set_pubkey(x, key), 1);
    subj = X509_get_subject_name(x);
    ck_assert_int_eq(
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    ck_assert_int_eq(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : subj),
                     1);
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (issuer == NULL) {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
        add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
        add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    }
    if (san != NULL)
        add_ext(x, issuer, NID_subject_alt_name, san);
    ck_assert_int_ne(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()), 0);

    snprintf(file, sizeof(file), "%s.crt", name);
    f = fopen(tpath(file), "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, x), 1);
    ck_assert_int_eq(fclose(f), 0);
    snprintf(file, sizeof(file), "%s.key", name);
    f = fopen(tpath(file), "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    ck_assert_int_eq(fclose(f), 0);

    if (out_cert != NULL)
        *out_cert = x;
    else
        X509_free(x);
    if (out_key != NULL)
        *out_key = key;
    else
        EVP_PKEY_free(key);
}

/* make_pki() writes ca.crt/key, server.crt/key (127.0.0.1, localhost),
 * client.crt/key (DNS:client.example) signed by ca, and a self-signed
 * rogue.crt/key. */
static void make_pki(void)
{
    X509 *ca;
    EVP_PKEY *ca_key;

    make_cert("ca", "connwatch test CA", NULL, NULL, NULL, &ca, &ca_key);
    make_cert("server", "server", "IP:127.0.0.1,DNS:localhost", ca, ca_key, NULL, NULL);
    make_cert("client", "client", "DNS:client.example,email:ops@client.example", ca, ca_key, NULL,
              NULL);
    make_cert("rogue", "rogue", "DNS:client.example", NULL, NULL, NULL, NULL);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
}

/* bcrypt_hash() hashes 'password' at cost 4 (the lowest) to keep tests fast. */
static char *bcrypt_hash(const char *password)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    const char *h;

    ck_assert_ptr_nonnull(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof(salt)));
    memset(&cd, 0, sizeof(cd));
    h = crypt_rn(password, salt, &cd, sizeof(cd));
    ck_assert_ptr_nonnull(h);
    return strdup(h);
}

/* ---- the server under test ----------------------------------------------- */

struct tctx {
    struct cw_http_server *srv;
    int reload_rc;
};

static int h_hello(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return cw_buf_adds(&resp->body, "hello\n");
}

static int h_echo(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    size_t len;
    const char *body = cw_http_body(req, &len);
    const char *q = cw_http_query(req, "q");
    const char *h = cw_http_header(req, "X-Test");
    int rc;

    (void)ctx;
    rc = cw_http_set_header(resp, "X-Path", cw_http_path(req));
    if (rc == CW_OK)
        rc = cw_http_set_header(resp, "X-Method", cw_http_method(req));
    if (rc == CW_OK && q != NULL)
        rc = cw_http_set_header(resp, "X-Query", q);
    if (rc == CW_OK && h != NULL)
        rc = cw_http_set_header(resp, "X-Test-Echo", h);
    if (rc == CW_OK)
        rc = cw_buf_add(&resp->body, body, len);
    return rc;
}

static int h_fail(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    (void)resp;
    return CW_EIO;
}

static int h_created(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    resp->status = 201;
    resp->content_type = "application/json";
    return cw_buf_adds(&resp->body, "{}\n");
}

static int h_empty(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    (void)resp;
    return CW_OK;
}

static int h_bad_header(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    return cw_http_set_header(resp, "X-Bad", "line\r\nInjected: yes");
}

static int h_reload(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    struct tctx *t = ctx;
    struct cw_diag d;

    (void)req;
    cw_diag_init(&d);
    t->reload_rc = cw_http_reload_web_config(t->srv, &d);
    cw_diag_reset(&d);
    return cw_buf_adds(&resp->body, t->reload_rc == CW_OK ? "ok\n" : "failed\n");
}

static const struct cw_http_route routes[] = {
    {.method = "GET", .path = "/metrics", .fn = h_hello},
    {.method = "POST", .path = "/echo", .max_body = 1024, .fn = h_echo},
    {.method = "PUT", .path = "/echo", .max_body = 1024, .fn = h_echo},
    {.method = "GET", .path = "/fail", .fn = h_fail},
    {.method = "GET", .path = "/created", .fn = h_created},
    {.method = "GET", .path = "/bad-header", .fn = h_bad_header},
    {.method = "GET", .path = "/empty", .fn = h_empty},
    {.method = "POST", .path = "/webhook/", .prefix = true, .max_body = 1024, .fn = h_echo},
    {.method = "POST", .path = "/-/reload", .fn = h_reload},
    {.method = NULL, .path = NULL, .fn = NULL},
};

static struct tctx tc;

/* start() serves 'routes' on 127.0.0.1:0 with an optional web config file
 * from the scratch directory. */
static struct cw_http_server *start_on(const char *listen, const char *webcfg_name)
{
    const char *addrs[1] = {listen};
    struct cw_http_options opt = {
        .listen = addrs,
        .nlisten = 1,
        .web_config_file = webcfg_name != NULL ? tpath(webcfg_name) : NULL,
        .threads = 2,
    };
    struct cw_diag d;
    size_t i;

    cw_diag_init(&d);
    tc.srv = cw_http_start(&opt, routes, &tc, &d);
    for (i = 0; i < d.n; i++)
        fprintf(stderr, "diag: %s\n", d.entries[i].text);
    ck_assert_ptr_nonnull(tc.srv);
    ck_assert_uint_eq(d.n, 0);
    cw_diag_reset(&d);
    return tc.srv;
}

static struct cw_http_server *start(const char *webcfg_name)
{
    return start_on("127.0.0.1:0", webcfg_name);
}

static unsigned bound_port(const struct cw_http_server *s)
{
    const char *a = cw_http_bound_address(s, 0);
    const char *colon;

    ck_assert_ptr_nonnull(a);
    colon = strrchr(a, ':');
    ck_assert_ptr_nonnull(colon);
    return (unsigned)strtoul(colon + 1, NULL, 10);
}

static const char *url(const struct cw_http_server *s, const char *scheme, const char *path)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s://127.0.0.1:%u%s", scheme, bound_port(s), path);
    return buf;
}

/* ---- the client ---------------------------------------------------------- */

struct fetch {
    const char *method; /* default GET */
    const char *body;   /* request body or NULL */
    size_t body_len;
    bool chunked;     /* send the body with chunked encoding */
    const char *user; /* basic auth */
    const char *pass;
    const char *ca;   /* TLS: CA file to trust */
    const char *cert; /* TLS: client certificate and key */
    const char *key;
    const char *header; /* one extra request header */
    bool head;

    /* results */
    CURLcode code;
    long status;
    struct cw_buf resp;    /* body */
    struct cw_buf headers; /* raw response headers */
    size_t sent;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct cw_buf *b = arg;

    return cw_buf_add(b, p, size * n) == CW_OK ? size * n : 0;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
    struct fetch *f = arg;
    size_t want = size * n;
    size_t left = f->body_len - f->sent;

    if (want > left)
        want = left;
    if (want > 100)
        want = 100; /* several chunks */
    memcpy(p, f->body + f->sent, want);
    f->sent += want;
    return want;
}

static void fetch_init(struct fetch *f)
{
    memset(f, 0, sizeof(*f));
    cw_buf_init(&f->resp, 1u << 20);
    cw_buf_init(&f->headers, 1u << 16);
}

static void fetch_reset(struct fetch *f)
{
    cw_buf_reset(&f->resp);
    cw_buf_reset(&f->headers);
}

static void do_fetch(struct fetch *f, const char *u)
{
    struct curl_slist *hdrs = NULL;
    CURL *c = curl_easy_init();

    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_URL, u), CURLE_OK);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_NOPROXY, "*"), CURLE_OK);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L), CURLE_OK);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body), CURLE_OK);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_WRITEDATA, &f->resp), CURLE_OK);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body), CURLE_OK);
    ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_HEADERDATA, &f->headers), CURLE_OK);
    if (f->head)
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_NOBODY, 1L), CURLE_OK);
    if (f->body != NULL && f->chunked) {
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_POST, 1L), CURLE_OK);
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read), CURLE_OK);
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_READDATA, f), CURLE_OK);
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    } else if (f->body != NULL) {
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_POSTFIELDS, f->body), CURLE_OK);
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)f->body_len), CURLE_OK);
    }
    if (f->method != NULL)
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, f->method), CURLE_OK);
    if (f->user != NULL) {
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC), CURLE_OK);
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_USERNAME, f->user), CURLE_OK);
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_PASSWORD, f->pass), CURLE_OK);
    }
    if (f->ca != NULL)
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_CAINFO, f->ca), CURLE_OK);
    if (f->cert != NULL) {
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_SSLCERT, f->cert), CURLE_OK);
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_SSLKEY, f->key), CURLE_OK);
    }
    if (f->header != NULL)
        hdrs = curl_slist_append(hdrs, f->header);
    if (hdrs != NULL)
        ck_assert_int_eq(curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs), CURLE_OK);
    f->code = curl_easy_perform(c);
    f->status = 0;
    ck_assert_int_eq(curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status), CURLE_OK);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
}

/* get() fetches 'u' with a fresh fetch whose results stay in *f. */
static long get(struct fetch *f, const char *u)
{
    do_fetch(f, u);
    return f->status;
}

static bool has_header(const struct fetch *f, const char *line)
{
    return strstr(cw_buf_str(&f->headers), line) != NULL;
}

/* ---- routing and bodies --------------------------------------------------- */

START_TEST(test_http_routes_exact_path)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    ck_assert_str_eq(cw_buf_str(&f.resp), "hello\n");
    ck_assert(has_header(&f, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    fetch_reset(&f);

    /* Exact routes do not match longer paths. */
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics/extra")), 404);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_routes_prefix_path)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    f.body = "{\"version\":\"4\"}";
    f.body_len = strlen(f.body);
    ck_assert_int_eq(get(&f, url(s, "http", "/webhook/dingtalk?q=1")), 200);
    ck_assert_str_eq(cw_buf_str(&f.resp), "{\"version\":\"4\"}");
    ck_assert(has_header(&f, "X-Path: /webhook/dingtalk\r\n"));
    ck_assert(has_header(&f, "X-Query: 1\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_unknown_path_is_404)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/nothing")), 404);
    ck_assert_str_eq(cw_buf_str(&f.resp), "404 page not found\n");
    ck_assert(has_header(&f, "Content-Type: text/plain; charset=utf-8\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_wrong_method_is_405_with_allow)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    f.method = "DELETE";
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 405);
    ck_assert(has_header(&f, "Allow: GET, HEAD\r\n"));
    fetch_reset(&f);

    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/echo")), 405);
    ck_assert(has_header(&f, "Allow: POST, PUT\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_head_has_no_body)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    f.head = true;
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    ck_assert_int_eq(f.code, CURLE_OK);
    ck_assert_uint_eq(f.resp.len, 0);
    ck_assert(has_header(&f, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    ck_assert(has_header(&f, "Content-Length: 6\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_body_reaches_handler)
{
    struct cw_http_server *s;
    struct fetch f;
    char body[1024];

    tdir_make();
    s = start(NULL);
    memset(body, 'a', sizeof(body));
    fetch_init(&f);
    f.body = body;
    f.body_len = sizeof(body); /* exactly the limit */
    f.header = "X-Test: yes";
    ck_assert_int_eq(get(&f, url(s, "http", "/echo")), 200);
    ck_assert_uint_eq(f.resp.len, sizeof(body));
    ck_assert(has_header(&f, "X-Test-Echo: yes\r\n"));
    ck_assert(has_header(&f, "X-Method: POST\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_body_over_limit_is_413)
{
    struct cw_http_server *s;
    struct fetch f;
    char *body = malloc(64 * 1024);

    ck_assert_ptr_nonnull(body);
    memset(body, 'b', 64 * 1024);
    tdir_make();
    s = start(NULL);

    /* Declared length: refused before the body is read. */
    fetch_init(&f);
    f.body = body;
    f.body_len = 64 * 1024;
    ck_assert_int_eq(get(&f, url(s, "http", "/echo")), 413);
    ck_assert_int_eq(f.code, CURLE_OK);
    ck_assert_str_eq(cw_buf_str(&f.resp),
                     "413 request body is larger than the limit of 1024 bytes\n");
    fetch_reset(&f);

    /* Chunked: discovered while reading, still a 413 and not a reset. */
    fetch_init(&f);
    f.body = body;
    f.body_len = 1025;
    f.chunked = true;
    ck_assert_int_eq(get(&f, url(s, "http", "/echo")), 413);
    ck_assert_int_eq(f.code, CURLE_OK);
    ck_assert_str_eq(cw_buf_str(&f.resp),
                     "413 request body is larger than the limit of 1024 bytes\n");
    fetch_reset(&f);

    /* The server is still fine. */
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
    free(body);
}
END_TEST

START_TEST(test_http_chunked_body_within_limit_reaches_handler)
{
    struct cw_http_server *s;
    struct fetch f;
    char body[700];

    memset(body, 'c', sizeof(body));
    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    f.body = body;
    f.body_len = sizeof(body);
    f.chunked = true;
    ck_assert_int_eq(get(&f, url(s, "http", "/echo")), 200);
    ck_assert_uint_eq(f.resp.len, sizeof(body));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_handler_error_is_500)
{
    struct cw_http_server *s;
    struct fetch f;
    char want[128];

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/fail")), 500);
    snprintf(want, sizeof(want), "internal error: %s\n", cw_strerror(CW_EIO));
    ck_assert_str_eq(cw_buf_str(&f.resp), want);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_handler_status_and_content_type_are_sent)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/created")), 201);
    ck_assert(has_header(&f, "Content-Type: application/json\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_empty_body_is_sent_with_zero_length)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/empty")), 200);
    ck_assert_int_eq(f.code, CURLE_OK);
    ck_assert_uint_eq(f.resp.len, 0);
    ck_assert(has_header(&f, "Content-Length: 0\r\n"));
    ck_assert(has_header(&f, "Content-Type: text/plain; charset=utf-8\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_refused_response_header_is_500)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/bad-header")), 500);
    ck_assert(!has_header(&f, "Injected"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_set_header_is_bounded)
{
    struct cw_http_response resp;
    size_t i;

    memset(&resp, 0, sizeof(resp));
    for (i = 0; i < CW_HTTP_MAX_HEADERS; i++)
        ck_assert_int_eq(cw_http_set_header(&resp, "X-N", "v"), CW_OK);
    ck_assert_int_eq(cw_http_set_header(&resp, "X-N", "v"), CW_ETOOBIG);
    for (i = 0; i < resp.nheaders; i++)
        free(resp.header_values[i]);
}
END_TEST

/* ---- listen addresses ---------------------------------------------------- */

START_TEST(test_http_binds_port_zero_and_reports_it)
{
    struct cw_http_server *s;
    const char *a;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    a = cw_http_bound_address(s, 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(strncmp(a, "127.0.0.1:", 10), 0);
    ck_assert_uint_ne(bound_port(s), 0);
    ck_assert_ptr_null(cw_http_bound_address(s, 1));
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_listens_on_all_addresses_for_colon_port)
{
    struct cw_http_server *s;
    const char *a;
    struct fetch f;

    tdir_make();
    s = start_on(":0", NULL);
    a = cw_http_bound_address(s, 0);
    ck_assert(strncmp(a, "[::]:", 5) == 0 || strncmp(a, "0.0.0.0:", 8) == 0);
    /* Dual stack: IPv4 clients reach the IPv6 "any" socket. */
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_listens_on_bracketed_ipv6_and_host_names)
{
    struct cw_http_server *s;
    const char *addrs[2] = {"[::1]:0", "localhost:0"};
    struct cw_http_options opt = {.listen = addrs, .nlisten = 2};
    struct cw_diag d;
    char u[512];
    struct fetch f;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);

    if (fd < 0)
        return; /* no IPv6 on this host: nothing to test */
    close(fd);
    cw_diag_init(&d);
    s = cw_http_start(&opt, routes, NULL, &d);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(strncmp(cw_http_bound_address(s, 0), "[::1]:", 6), 0);
    ck_assert_ptr_nonnull(cw_http_bound_address(s, 1));
    snprintf(u, sizeof(u), "http://%s/metrics", cw_http_bound_address(s, 0));
    fetch_init(&f);
    ck_assert_int_eq(get(&f, u), 200);
    fetch_reset(&f);
    snprintf(u, sizeof(u), "http://%s/metrics", cw_http_bound_address(s, 1));
    fetch_init(&f);
    ck_assert_int_eq(get(&f, u), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    cw_diag_reset(&d);
}
END_TEST

START_TEST(test_http_rejects_bad_listen_addresses)
{
    static const struct {
        const char *addr;
        const char *diag;
    } cases[] = {
        {"127.0.0.1", "listen address \"127.0.0.1\": missing port (write host:port or :port)"},
        {"127.0.0.1:65536",
         "listen address \"127.0.0.1:65536\": port must be a number from 0 to 65535"},
        {":http", "listen address \":http\": port must be a number from 0 to 65535"},
        {"[::1:9100", "listen address \"[::1:9100\": missing ']' after an IPv6 address"},
        {"::1:9100", "listen address \"::1:9100\": IPv6 addresses must be written in "
                     "brackets, e.g. [::1]:9100"},
    };
    size_t i;

    for (i = 0; i < CW_ARRAY_LEN(cases); i++) {
        const char *addrs[1] = {cases[i].addr};
        struct cw_http_options opt = {.listen = addrs, .nlisten = 1};
        struct cw_diag d;

        cw_diag_init(&d);
        ck_assert_ptr_null(cw_http_start(&opt, routes, NULL, &d));
        ck_assert_uint_eq(d.n, 1);
        ck_assert_str_eq(d.entries[0].text, cases[i].diag);
        cw_diag_reset(&d);
    }
}
END_TEST

START_TEST(test_http_reports_address_in_use)
{
    struct cw_http_server *s;
    const char *addrs[1];
    struct cw_http_options opt = {.nlisten = 1};
    struct cw_diag d;

    tdir_make();
    s = start(NULL);
    addrs[0] = cw_http_bound_address(s, 0);
    opt.listen = addrs;
    cw_diag_init(&d);
    ck_assert_ptr_null(cw_http_start(&opt, routes, NULL, &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_ptr_nonnull(strstr(d.entries[0].text, "cannot listen: Address already in use"));
    cw_diag_reset(&d);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_quiesce_refuses_new_connections)
{
    struct cw_http_server *s;
    struct fetch f;
    char u[512];

    tdir_make();
    s = start(NULL);
    snprintf(u, sizeof(u), "%s", url(s, "http", "/metrics"));
    cw_http_quiesce(s);
    fetch_init(&f);
    get(&f, u);
    ck_assert_int_eq(f.code, CURLE_COULDNT_CONNECT);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

/* ---- web config at run time ---------------------------------------------- */

static void write_users_config(const char *name, const char *user, const char *password)
{
    char *hash = bcrypt_hash(password);
    char text[512];

    snprintf(text, sizeof(text), "basic_auth_users:\n  %s: %s\n", user, hash);
    write_file(name, text);
    free(hash);
}

START_TEST(test_http_basic_auth_rejects_wrong_password)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    write_users_config("web.yml", "prometheus", "s3cret");
    s = start("web.yml");

    fetch_init(&f);
    f.user = "prometheus";
    f.pass = "wrong";
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 401);
    ck_assert(has_header(&f, "WWW-Authenticate: Basic realm=\"connwatch\"\r\n"));
    fetch_reset(&f);

    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 401);
    fetch_reset(&f);

    fetch_init(&f);
    f.user = "nobody";
    f.pass = "s3cret";
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 401);
    fetch_reset(&f);

    /* Unauthenticated requests learn nothing about paths. */
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/nothing")), 401);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_basic_auth_accepts_bcrypt_hash)
{
    struct cw_http_server *s;
    struct fetch f;
    int i;

    tdir_make();
    write_users_config("web.yml", "prometheus", "s3cret:with:colons");
    s = start("web.yml");
    /* The second and third requests are answered from the cache. */
    for (i = 0; i < 3; i++) {
        fetch_init(&f);
        f.user = "prometheus";
        f.pass = "s3cret:with:colons";
        ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
        ck_assert_str_eq(cw_buf_str(&f.resp), "hello\n");
        fetch_reset(&f);
    }
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_check_password_uses_bcrypt)
{
    struct cw_webcfg *c;
    struct cw_diag d;
    bool ok = true;

    tdir_make();
    write_users_config("web.yml", "alice", "pw");
    cw_diag_init(&d);
    c = cw_webcfg_load(tpath("web.yml"), &d);
    ck_assert_ptr_nonnull(c);
    ck_assert(cw_webcfg_has_users(c));
    ck_assert_int_eq(cw_webcfg_check_password(c, "alice", "pw", &ok), CW_OK);
    ck_assert(ok);
    ck_assert_int_eq(cw_webcfg_check_password(c, "alice", "pW", &ok), CW_OK);
    ck_assert(!ok);
    ck_assert_int_eq(cw_webcfg_check_password(c, "bob", "pw", &ok), CW_OK);
    ck_assert(!ok);
    cw_webcfg_free(c);
    cw_diag_reset(&d);
    tdir_remove();
}
END_TEST

START_TEST(test_http_adds_configured_headers_to_every_response)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    write_file("web.yml", "http_server_config:\n"
                          "  headers:\n"
                          "    X-Content-Type-Options: nosniff\n"
                          "    X-Frame-Options: deny\n");
    s = start("web.yml");
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    ck_assert(has_header(&f, "X-Content-Type-Options: nosniff\r\n"));
    ck_assert(has_header(&f, "X-Frame-Options: deny\r\n"));
    fetch_reset(&f);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/nothing")), 404);
    ck_assert(has_header(&f, "X-Content-Type-Options: nosniff\r\n"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_sends_no_extra_headers_unless_configured)
{
    struct cw_http_server *s;
    struct fetch f;

    tdir_make();
    s = start(NULL);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    ck_assert(!has_header(&f, "X-Content-Type-Options"));
    ck_assert(!has_header(&f, "X-Frame-Options"));
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_rate_limit_answers_429)
{
    struct cw_http_server *s;
    struct fetch f;
    int i;

    tdir_make();
    write_file("web.yml", "rate_limit:\n  interval: 1h\n  burst: 2\n");
    s = start("web.yml");
    for (i = 0; i < 2; i++) {
        fetch_init(&f);
        ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
        fetch_reset(&f);
    }
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 429);
    ck_assert_str_eq(cw_buf_str(&f.resp), "429 too many requests\n");
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_rate_limit_interval_zero_disables_it)
{
    struct cw_http_server *s;
    struct fetch f;
    int i;

    tdir_make();
    write_file("web.yml", "rate_limit:\n  interval: 0s\n  burst: 0\n");
    s = start("web.yml");
    for (i = 0; i < 5; i++) {
        fetch_init(&f);
        ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
        fetch_reset(&f);
    }
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_reload_applies_new_users)
{
    struct cw_http_server *s;
    struct cw_diag d;
    struct fetch f;

    tdir_make();
    write_file("web.yml", "");
    s = start("web.yml");
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    fetch_reset(&f);

    write_users_config("web.yml", "prometheus", "s3cret");
    cw_diag_init(&d);
    ck_assert_int_eq(cw_http_reload_web_config(s, &d), CW_OK);
    ck_assert_uint_eq(d.n, 0);
    cw_diag_reset(&d);
    fetch_init(&f);
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 401);
    fetch_reset(&f);
    fetch_init(&f);
    f.user = "prometheus";
    f.pass = "s3cret";
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    fetch_reset(&f);

    /* A changed password replaces cached logins. */
    write_users_config("web.yml", "prometheus", "n3w");
    cw_diag_init(&d);
    ck_assert_int_eq(cw_http_reload_web_config(s, &d), CW_OK);
    cw_diag_reset(&d);
    fetch_init(&f);
    f.user = "prometheus";
    f.pass = "s3cret";
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 401);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_reload_keeps_old_config_on_error)
{
    struct cw_http_server *s;
    struct cw_diag d;
    struct fetch f;
    char want[512];

    tdir_make();
    write_users_config("web.yml", "prometheus", "s3cret");
    s = start("web.yml");
    write_file("web.yml", "basic_auth_users:\n  prometheus: plaintext\n");
    cw_diag_init(&d);
    ck_assert_int_eq(cw_http_reload_web_config(s, &d), CW_ECONFIG);
    ck_assert_uint_eq(d.n, 1);
    snprintf(want, sizeof(want),
             "%s:2:15: basic_auth_users.prometheus: not a bcrypt hash "
             "(make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')",
             tpath("web.yml"));
    ck_assert_str_eq(d.entries[0].text, want);
    cw_diag_reset(&d);
    fetch_init(&f);
    f.user = "prometheus";
    f.pass = "s3cret";
    ck_assert_int_eq(get(&f, url(s, "http", "/metrics")), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

/* ---- TLS ----------------------------------------------------------------- */

static void write_tls_config(const char *name, const char *extra)
{
    char text[1024];

    snprintf(text, sizeof(text),
             "tls_server_config:\n"
             "  cert_file: server.crt\n"
             "  key_file: server.key\n"
             "%s",
             extra != NULL ? extra : "");
    write_file(name, text);
}

START_TEST(test_http_tls_serves_with_cert_from_web_config)
{
    struct cw_http_server *s;
    struct fetch f;
    char ca[256];

    tdir_make();
    make_pki();
    write_tls_config("web.yml", "  min_version: TLS12\n");
    snprintf(ca, sizeof(ca), "%s", tpath("ca.crt"));
    s = start("web.yml");
    fetch_init(&f);
    f.ca = ca;
    ck_assert_int_eq(get(&f, url(s, "https", "/metrics")), 200);
    ck_assert_int_eq(f.code, CURLE_OK);
    ck_assert_str_eq(cw_buf_str(&f.resp), "hello\n");
    fetch_reset(&f);

    /* Plain HTTP on a TLS listener does not get served. */
    fetch_init(&f);
    get(&f, url(s, "http", "/metrics"));
    ck_assert_int_ne(f.status, 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_tls_requires_client_cert_when_configured)
{
    struct cw_http_server *s;
    struct fetch f;
    char ca[256];
    char cert[256];
    char key[256];

    tdir_make();
    make_pki();
    write_tls_config("web.yml", "  client_auth_type: RequireAndVerifyClientCert\n"
                                "  client_ca_file: ca.crt\n");
    snprintf(ca, sizeof(ca), "%s", tpath("ca.crt"));
    s = start("web.yml");

    /* No certificate: the handshake (or at the latest the request) fails. */
    fetch_init(&f);
    f.ca = ca;
    get(&f, url(s, "https", "/metrics"));
    ck_assert_int_ne(f.status, 200);
    fetch_reset(&f);

    /* A certificate from another CA is refused. */
    snprintf(cert, sizeof(cert), "%s", tpath("rogue.crt"));
    snprintf(key, sizeof(key), "%s", tpath("rogue.key"));
    fetch_init(&f);
    f.ca = ca;
    f.cert = cert;
    f.key = key;
    get(&f, url(s, "https", "/metrics"));
    ck_assert_int_ne(f.status, 200);
    fetch_reset(&f);

    /* A certificate signed by the configured CA is accepted. */
    snprintf(cert, sizeof(cert), "%s", tpath("client.crt"));
    snprintf(key, sizeof(key), "%s", tpath("client.key"));
    fetch_init(&f);
    f.ca = ca;
    f.cert = cert;
    f.key = key;
    ck_assert_int_eq(get(&f, url(s, "https", "/metrics")), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_tls_checks_client_allowed_sans)
{
    struct cw_http_server *s;
    struct fetch f;
    char ca[256];
    char cert[256];
    char key[256];

    tdir_make();
    make_pki();
    write_tls_config("web.yml", "  client_auth_type: RequireAndVerifyClientCert\n"
                                "  client_ca_file: ca.crt\n"
                                "  client_allowed_sans: [other.example]\n");
    write_tls_config("web2.yml", "  client_auth_type: RequireAndVerifyClientCert\n"
                                 "  client_ca_file: ca.crt\n"
                                 "  client_allowed_sans: [other.example, ops@client.example]\n");
    snprintf(ca, sizeof(ca), "%s", tpath("ca.crt"));
    snprintf(cert, sizeof(cert), "%s", tpath("client.crt"));
    snprintf(key, sizeof(key), "%s", tpath("client.key"));

    s = start("web.yml");
    fetch_init(&f);
    f.ca = ca;
    f.cert = cert;
    f.key = key;
    ck_assert_int_eq(get(&f, url(s, "https", "/metrics")), 403);
    ck_assert_str_eq(cw_buf_str(&f.resp), "403 the client certificate has no allowed name\n");
    fetch_reset(&f);
    cw_http_stop(s);

    s = start("web2.yml");
    fetch_init(&f);
    f.ca = ca;
    f.cert = cert;
    f.key = key;
    ck_assert_int_eq(get(&f, url(s, "https", "/metrics")), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_tls_verify_if_given_accepts_no_cert)
{
    struct cw_http_server *s;
    struct fetch f;
    char ca[256];
    char cert[256];
    char key[256];

    tdir_make();
    make_pki();
    write_tls_config("web.yml", "  client_auth_type: VerifyClientCertIfGiven\n"
                                "  client_ca_file: ca.crt\n");
    snprintf(ca, sizeof(ca), "%s", tpath("ca.crt"));
    s = start("web.yml");
    fetch_init(&f);
    f.ca = ca;
    ck_assert_int_eq(get(&f, url(s, "https", "/metrics")), 200);
    fetch_reset(&f);

    snprintf(cert, sizeof(cert), "%s", tpath("rogue.crt"));
    snprintf(key, sizeof(key), "%s", tpath("rogue.key"));
    fetch_init(&f);
    f.ca = ca;
    f.cert = cert;
    f.key = key;
    get(&f, url(s, "https", "/metrics"));
    ck_assert_int_ne(f.status, 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

START_TEST(test_http_reload_from_handler_switches_to_tls)
{
    struct cw_http_server *s;
    struct fetch f;
    char ca[256];
    char plain[256];
    int i;

    tdir_make();
    make_pki();
    write_file("web.yml", "");
    snprintf(ca, sizeof(ca), "%s", tpath("ca.crt"));
    s = start("web.yml");
    snprintf(plain, sizeof(plain), "%s", url(s, "http", "/metrics"));
    fetch_init(&f);
    ck_assert_int_eq(get(&f, plain), 200);
    fetch_reset(&f);

    /* The reload runs on a thread of the daemon it replaces. */
    write_tls_config("web.yml", NULL);
    fetch_init(&f);
    f.body = "";
    ck_assert_int_eq(get(&f, url(s, "http", "/-/reload")), 200);
    ck_assert_str_eq(cw_buf_str(&f.resp), "ok\n");
    fetch_reset(&f);

    for (i = 0; i < 3; i++) {
        fetch_init(&f);
        f.ca = ca;
        ck_assert_int_eq(get(&f, url(s, "https", "/metrics")), 200);
        fetch_reset(&f);
    }
    fetch_init(&f);
    get(&f, plain);
    ck_assert_int_ne(f.status, 200);
    fetch_reset(&f);

    /* And back to plain HTTP, from the caller's thread. */
    write_file("web.yml", "");
    {
        struct cw_diag d;

        cw_diag_init(&d);
        ck_assert_int_eq(cw_http_reload_web_config(s, &d), CW_OK);
        cw_diag_reset(&d);
    }
    fetch_init(&f);
    ck_assert_int_eq(get(&f, plain), 200);
    fetch_reset(&f);
    cw_http_stop(s);
    tdir_remove();
}
END_TEST

/* ---- web config diagnostics ---------------------------------------------- */

/* load_err() loads 'text' as web.yml and returns the diagnostics, joined by
 * newlines, with the scratch directory replaced by "DIR". */
static char *load_err(const char *text)
{
    struct cw_webcfg *c;
    struct cw_diag d;
    struct cw_buf out;
    size_t i;

    write_file("web.yml", text);
    cw_diag_init(&d);
    c = cw_webcfg_load(tpath("web.yml"), &d);
    ck_assert_ptr_null(c);
    ck_assert_uint_ge(d.n, 1);
    cw_buf_init(&out, 1u << 16);
    for (i = 0; i < d.n; i++) {
        const char *t = d.entries[i].text;
        const char *p;

        if (i > 0)
            ck_assert_int_eq(cw_buf_addc(&out, '\n'), CW_OK);
        for (p = strstr(t, tdir); p != NULL; p = strstr(t, tdir)) {
            ck_assert_int_eq(cw_buf_add(&out, t, (size_t)(p - t)), CW_OK);
            ck_assert_int_eq(cw_buf_adds(&out, "DIR"), CW_OK);
            t = p + strlen(tdir);
        }
        ck_assert_int_eq(cw_buf_adds(&out, t), CW_OK);
    }
    cw_diag_reset(&d);
    return cw_buf_take(&out, NULL);
}

#define ASSERT_LOAD_ERR(text, want)                                                                \
    do {                                                                                           \
        char *got_ = load_err(text);                                                               \
        ck_assert_str_eq(got_, want);                                                              \
        free(got_);                                                                                \
    } while (0)

START_TEST(test_webcfg_rejects_unknown_key)
{
    tdir_make();
    ASSERT_LOAD_ERR("tls_server_config:\n"
                    "  cert_file: server.crt\n"
                    "  key_file: server.key\n"
                    "  cert_fiel: other.crt\n",
                    "DIR/web.yml:4:3: tls_server_config.cert_fiel: unknown field \"cert_fiel\"");
    ASSERT_LOAD_ERR("basic_auth_user:\n  a: b\n",
                    "DIR/web.yml:1:1: basic_auth_user: unknown field \"basic_auth_user\"");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_wrong_type)
{
    tdir_make();
    ASSERT_LOAD_ERR("rate_limit:\n  interval: often\n",
                    "DIR/web.yml:2:13: rate_limit.interval: \"often\" is not a duration "
                    "(use e.g. 15s, 1m30s, 250ms)");
    ASSERT_LOAD_ERR("tls_server_config: [a]\n",
                    "DIR/web.yml:1:20: tls_server_config: must be a mapping, not a list");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_requires_key_with_cert)
{
    tdir_make();
    ASSERT_LOAD_ERR("tls_server_config:\n  cert_file: server.crt\n",
                    "DIR/web.yml:2:3: tls_server_config: missing one of key or key_file");
    ASSERT_LOAD_ERR("tls_server_config:\n  key_file: server.key\n",
                    "DIR/web.yml:2:3: tls_server_config: missing one of cert or cert_file");
    ASSERT_LOAD_ERR("tls_server_config:\n  client_auth_type: NoClientCert\n",
                    "DIR/web.yml:2:3: tls_server_config: missing one of cert or cert_file\n"
                    "DIR/web.yml:2:3: tls_server_config: missing one of key or key_file");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_client_ca_without_client_auth)
{
    tdir_make();
    make_pki();
    ASSERT_LOAD_ERR("tls_server_config:\n"
                    "  cert_file: server.crt\n"
                    "  key_file: server.key\n"
                    "  client_ca_file: ca.crt\n",
                    "DIR/web.yml:4:19: tls_server_config.client_ca_file: a client CA is set but "
                    "client_auth_type is NoClientCert (use RequireAndVerifyClientCert)");
    ASSERT_LOAD_ERR("tls_server_config:\n"
                    "  cert_file: server.crt\n"
                    "  key_file: server.key\n"
                    "  client_auth_type: RequireAndVerifyClientCert\n",
                    "DIR/web.yml:4:21: tls_server_config.client_auth_type: "
                    "RequireAndVerifyClientCert needs client_ca_file or client_ca to verify "
                    "client certificates");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_sans_without_required_client_cert)
{
    tdir_make();
    make_pki();
    ASSERT_LOAD_ERR("tls_server_config:\n"
                    "  cert_file: server.crt\n"
                    "  key_file: server.key\n"
                    "  client_auth_type: VerifyClientCertIfGiven\n"
                    "  client_ca_file: ca.crt\n"
                    "  client_allowed_sans: [a.example]\n",
                    "DIR/web.yml:6:24: tls_server_config.client_allowed_sans: "
                    "client_allowed_sans requires client_auth_type RequireAnyClientCert or "
                    "RequireAndVerifyClientCert");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_min_version_above_max)
{
    tdir_make();
    make_pki();
    ASSERT_LOAD_ERR("tls_server_config:\n"
                    "  cert_file: server.crt\n"
                    "  key_file: server.key\n"
                    "  min_version: TLS13\n"
                    "  max_version: TLS12\n",
                    "DIR/web.yml:4:16: tls_server_config.min_version: min_version TLS13 is "
                    "above max_version TLS12");
    ASSERT_LOAD_ERR("tls_server_config:\n"
                    "  cert_file: server.crt\n"
                    "  key_file: server.key\n"
                    "  min_version: TLS14\n",
                    "DIR/web.yml:4:16: tls_server_config.min_version: \"TLS14\" is not one of: "
                    "TLS10, TLS11, TLS12, TLS13");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_unknown_curve_and_cipher)
{
    tdir_make();
    make_pki();
    ASSERT_LOAD_ERR("tls_server_config:\n"
                    "  cert_file: server.crt\n"
                    "  key_file: server.key\n"
                    "  curve_preferences: [CurveP256, CurveP999]\n"
                    "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
                    "DIR/web.yml:4:34: tls_server_config.curve_preferences[1]: unknown curve "
                    "\"CurveP999\" (use CurveP256, CurveP384, CurveP521 or X25519)\n"
                    "DIR/web.yml:5:19: tls_server_config.cipher_suites[0]: unknown cipher suite "
                    "\"TLS_RSA_WITH_RC4_128_SHA\"");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_maps_versions_and_curves_to_priorities)
{
    struct cw_webcfg *c;
    struct cw_diag d;

    tdir_make();
    make_pki();
    write_tls_config("web.yml", "  min_version: TLS13\n"
                                "  curve_preferences: [X25519, CurveP256]\n"
                                "  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\n"
                                "  prefer_server_cipher_suites: false\n");
    cw_diag_init(&d);
    c = cw_webcfg_load(tpath("web.yml"), &d);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->priorities,
                     "NORMAL:-VERS-ALL:+VERS-TLS1.3:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1");
    ck_assert_uint_eq(c->ignored_cipher_suites, 1);
    ck_assert(c->tls);
    cw_webcfg_free(c);
    cw_diag_reset(&d);
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_resolves_relative_paths)
{
    struct cw_webcfg *c;
    struct cw_diag d;
    char *cwd = getcwd(NULL, 0);

    tdir_make();
    make_pki();
    write_tls_config("web.yml", NULL);
    /* The config names server.crt, which exists only next to it. */
    ck_assert_int_eq(chdir("/"), 0);
    cw_diag_init(&d);
    c = cw_webcfg_load(tpath("web.yml"), &d);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(strstr(c->cert_pem, "BEGIN CERTIFICATE"));
    ck_assert_ptr_nonnull(strstr(c->key_pem, "PRIVATE KEY"));
    cw_webcfg_free(c);
    cw_diag_reset(&d);
    ck_assert_int_eq(chdir(cwd), 0);
    free(cwd);
    ASSERT_LOAD_ERR("tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
                    "DIR/web.yml:2:14: tls_server_config.cert_file: cannot read "
                    "DIR/missing.crt: No such file or directory");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_mismatched_key)
{
    static const char want[] = "DIR/web.yml:3:13: tls_server_config.key_file: the key does not "
                               "match the certificate (GnuTLS: ";
    char *got;

    tdir_make();
    make_pki();
    got = load_err("tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n");
    ck_assert_msg(strncmp(got, want, strlen(want)) == 0, "got %s", got);
    free(got);
    ASSERT_LOAD_ERR("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n",
                    "DIR/web.yml:2:14: tls_server_config.cert_file: no usable PEM certificate "
                    "(GnuTLS: No certificate was found.)");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_header_not_allowed)
{
    tdir_make();
    ASSERT_LOAD_ERR("http_server_config:\n  headers:\n    Server: connwatch\n",
                    "DIR/web.yml:3:5: http_server_config.headers.Server: header \"Server\" can not "
                    "be configured (allowed: Content-Security-Policy, Strict-Transport-Security, "
                    "X-Content-Type-Options, X-Frame-Options, X-XSS-Protection)");
    ASSERT_LOAD_ERR("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                    "DIR/web.yml:3:22: http_server_config.headers.X-Frame-Options: \"allow\" is "
                    "not one of: deny, sameorigin");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_rejects_burst_zero_with_interval)
{
    tdir_make();
    ASSERT_LOAD_ERR("rate_limit:\n  interval: 1s\n",
                    "DIR/web.yml:2:3: rate_limit: burst must be at least 1 when interval is set "
                    "(0s disables the limit)");
    tdir_remove();
}
END_TEST

START_TEST(test_webcfg_empty_file_is_plain_http)
{
    struct cw_webcfg *c;
    struct cw_diag d;

    cw_diag_init(&d);
    c = cw_webcfg_parse("web.yml", "", 0, 0, &d);
    ck_assert_ptr_nonnull(c);
    ck_assert(!c->tls);
    ck_assert(!cw_webcfg_has_users(c));
    ck_assert(c->http2);
    ck_assert_int_eq(c->rate_interval, 0);
    ck_assert(cw_webcfg_tls_equal(c, NULL));
    cw_webcfg_free(c);
    cw_diag_reset(&d);
}
END_TEST

START_TEST(test_webcfg_accepts_inline_pem)
{
    struct cw_webcfg *c;
    struct cw_diag d;
    struct cw_buf y;
    FILE *f;
    char line[256];

    tdir_make();
    make_pki();
    cw_buf_init(&y, 1u << 16);
    ck_assert_int_eq(cw_buf_adds(&y, "tls_server_config:\n  cert: |\n"), CW_OK);
    f = fopen(tpath("server.crt"), "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL)
        ck_assert_int_eq(cw_buf_addf(&y, "    %s", line), CW_OK);
    fclose(f);
    ck_assert_int_eq(cw_buf_adds(&y, "  key_file: server.key\n"), CW_OK);
    write_file("web.yml", cw_buf_str(&y));
    cw_diag_init(&d);
    c = cw_webcfg_load(tpath("web.yml"), &d);
    ck_assert_ptr_nonnull(c);
    ck_assert(c->tls);
    cw_webcfg_free(c);
    cw_diag_reset(&d);
    cw_buf_reset(&y);
    tdir_remove();
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc_route = tcase_create("routing");
    TCase *tc_listen = tcase_create("listen");
    TCase *tc_web = tcase_create("webcfg_runtime");
    TCase *tc_tls = tcase_create("tls");
    TCase *tc_cfg = tcase_create("webcfg");

    tcase_set_timeout(tc_route, 60);
    tcase_set_timeout(tc_listen, 60);
    tcase_set_timeout(tc_web, 60);
    tcase_set_timeout(tc_tls, 120);
    tcase_set_timeout(tc_cfg, 60);

    tcase_add_test(tc_route, test_http_routes_exact_path);
    tcase_add_test(tc_route, test_http_routes_prefix_path);
    tcase_add_test(tc_route, test_http_unknown_path_is_404);
    tcase_add_test(tc_route, test_http_wrong_method_is_405_with_allow);
    tcase_add_test(tc_route, test_http_head_has_no_body);
    tcase_add_test(tc_route, test_http_body_reaches_handler);
    tcase_add_test(tc_route, test_http_body_over_limit_is_413);
    tcase_add_test(tc_route, test_http_chunked_body_within_limit_reaches_handler);
    tcase_add_test(tc_route, test_http_handler_error_is_500);
    tcase_add_test(tc_route, test_http_handler_status_and_content_type_are_sent);
    tcase_add_test(tc_route, test_http_empty_body_is_sent_with_zero_length);
    tcase_add_test(tc_route, test_http_refused_response_header_is_500);
    tcase_add_test(tc_route, test_http_set_header_is_bounded);

    tcase_add_test(tc_listen, test_http_binds_port_zero_and_reports_it);
    tcase_add_test(tc_listen, test_http_listens_on_all_addresses_for_colon_port);
    tcase_add_test(tc_listen, test_http_listens_on_bracketed_ipv6_and_host_names);
    tcase_add_test(tc_listen, test_http_rejects_bad_listen_addresses);
    tcase_add_test(tc_listen, test_http_reports_address_in_use);
    tcase_add_test(tc_listen, test_http_quiesce_refuses_new_connections);

    tcase_add_test(tc_web, test_http_basic_auth_rejects_wrong_password);
    tcase_add_test(tc_web, test_http_basic_auth_accepts_bcrypt_hash);
    tcase_add_test(tc_web, test_webcfg_check_password_uses_bcrypt);
    tcase_add_test(tc_web, test_http_adds_configured_headers_to_every_response);
    tcase_add_test(tc_web, test_http_sends_no_extra_headers_unless_configured);
    tcase_add_test(tc_web, test_http_rate_limit_answers_429);
    tcase_add_test(tc_web, test_http_rate_limit_interval_zero_disables_it);
    tcase_add_test(tc_web, test_http_reload_applies_new_users);
    tcase_add_test(tc_web, test_http_reload_keeps_old_config_on_error);

    tcase_add_test(tc_tls, test_http_tls_serves_with_cert_from_web_config);
    tcase_add_test(tc_tls, test_http_tls_requires_client_cert_when_configured);
    tcase_add_test(tc_tls, test_http_tls_checks_client_allowed_sans);
    tcase_add_test(tc_tls, test_http_tls_verify_if_given_accepts_no_cert);
    tcase_add_test(tc_tls, test_http_reload_from_handler_switches_to_tls);

    tcase_add_test(tc_cfg, test_webcfg_rejects_unknown_key);
    tcase_add_test(tc_cfg, test_webcfg_rejects_wrong_type);
    tcase_add_test(tc_cfg, test_webcfg_requires_key_with_cert);
    tcase_add_test(tc_cfg, test_webcfg_rejects_client_ca_without_client_auth);
    tcase_add_test(tc_cfg, test_webcfg_rejects_sans_without_required_client_cert);
    tcase_add_test(tc_cfg, test_webcfg_rejects_min_version_above_max);
    tcase_add_test(tc_cfg, test_webcfg_rejects_unknown_curve_and_cipher);
    tcase_add_test(tc_cfg, test_webcfg_maps_versions_and_curves_to_priorities);
    tcase_add_test(tc_cfg, test_webcfg_resolves_relative_paths);
    tcase_add_test(tc_cfg, test_webcfg_rejects_mismatched_key);
    tcase_add_test(tc_cfg, test_webcfg_rejects_header_not_allowed);
    tcase_add_test(tc_cfg, test_webcfg_rejects_burst_zero_with_interval);
    tcase_add_test(tc_cfg, test_webcfg_empty_file_is_plain_http);
    tcase_add_test(tc_cfg, test_webcfg_accepts_inline_pem);

    suite_add_tcase(s, tc_route);
    suite_add_tcase(s, tc_listen);
    suite_add_tcase(s, tc_web);
    suite_add_tcase(s, tc_tls);
    suite_add_tcase(s, tc_cfg);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    cw_log_setup(CW_LOG_ERROR, CW_LOG_LOGFMT);
    sr = srunner_create(http_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? 0 : 1;
}
