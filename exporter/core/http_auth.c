/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_auth.c - who may use the HTTP server: basic auth (bcrypt off the
 * polling threads, a per-config cache of checked logins, a per-address
 * throttle of uncached checks) and client certificates (client_auth_type,
 * client_allowed_sans). Called by http.c's request lifecycle; the types are
 * in http_int.h.
 *
 * Threads: http_authorize() and the certificate checks run on MHD's polling
 * threads, http_auth_verify() on a slow-handler thread. The login cache is
 * guarded by the config's cache_lock, bcrypt by its bcrypt_lock, the
 * throttle by the server's throttle_lock; none is held with another.
 */
#include "http_int.h"
#include "log.h"
#include "strindex.h"

#include <arpa/inet.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- basic auth ---------------------------------------------------------- */

static int http_auth_digest(const struct http_cfg *c, const char *user, const char *pass,
                            unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned len = 0;
    int ok;

    if (md == NULL)
        return CW_ENOMEM;
    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, c->salt, sizeof(c->salt)) == 1 &&
         EVP_DigestUpdate(md, user, strlen(user) + 1) == 1 &&
         EVP_DigestUpdate(md, pass, strlen(pass)) == 1 && EVP_DigestFinal_ex(md, out, &len) == 1 &&
         len == 32;
    EVP_MD_CTX_free(md);
    return ok ? CW_OK : CW_ENOMEM;
}

static bool http_auth_cached(struct http_cfg *c, const unsigned char digest[32])
{
    bool hit = false;
    size_t i;

    pthread_mutex_lock(&c->cache_lock);
    for (i = 0; i < HTTP_AUTH_CACHE_SIZE; i++) {
        if (c->cache[i].used && CRYPTO_memcmp(c->cache[i].digest, digest, 32) == 0)
            hit = true;
    }
    pthread_mutex_unlock(&c->cache_lock);
    return hit;
}

static void http_auth_remember(struct http_cfg *c, const unsigned char digest[32])
{
    pthread_mutex_lock(&c->cache_lock);
    c->cache[c->cache_next].used = true;
    memcpy(c->cache[c->cache_next].digest, digest, 32);
    c->cache_next = (c->cache_next + 1) % HTTP_AUTH_CACHE_SIZE;
    pthread_mutex_unlock(&c->cache_lock);
}

/* http_auth_throttle() takes one uncached credential check from the
 * allowance of the request's client address; false when it has none left. */
static bool http_auth_throttle(struct cw_http_server *s, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    unsigned char addr[16] = {0};
    struct http_auth_slot *slot;
    cw_mono now = cw_now();
    bool ok = true;
    int family;

    if (ci == NULL || ci->client_addr == NULL)
        return true;
    family = ci->client_addr->sa_family;
    if (family == AF_INET)
        memcpy(addr, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr, 4);
    else if (family == AF_INET6)
        memcpy(addr, &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr, 16);
    else
        return true;
    slot = &s->throttle[cw_hash_bytes(addr, sizeof(addr)) % HTTP_AUTH_THROTTLE_SLOTS];
    pthread_mutex_lock(&s->throttle_lock);
    if (slot->family != family || memcmp(slot->addr, addr, sizeof(addr)) != 0) {
        /* A new address (or one that shares the slot): a full allowance. */
        memcpy(slot->addr, addr, sizeof(addr));
        slot->family = family;
        slot->tokens = HTTP_AUTH_BURST;
        slot->last = now;
    }
    slot->tokens += cw_seconds(now - slot->last) * HTTP_AUTH_PER_SECOND;
    if (slot->tokens > HTTP_AUTH_BURST)
        slot->tokens = HTTP_AUTH_BURST;
    slot->last = now;
    if (slot->tokens >= 1.0)
        slot->tokens -= 1.0;
    else
        ok = false;
    pthread_mutex_unlock(&s->throttle_lock);
    return ok;
}

void http_auth_forget(struct cw_http_request *r)
{
    if (r->auth_pass != NULL) {
        OPENSSL_cleanse(r->auth_pass, strlen(r->auth_pass));
        free(r->auth_pass);
    }
    free(r->auth_user);
    r->auth_user = NULL;
    r->auth_pass = NULL;
}

enum http_reject http_authorize(struct cw_http_request *r)
{
    struct http_cfg *c = r->cfg;
    enum http_reject rej = HTTP_REJECT_AUTH;
    unsigned char digest[32];
    char *pass = NULL;
    char *user;

    if (!cw_webcfg_has_users(c->wc))
        return HTTP_REJECT_NONE;
    user = MHD_basic_auth_get_username_password(r->conn, &pass);
    if (user == NULL || pass == NULL)
        goto out_free;
    if (http_auth_digest(c, user, pass, digest) != CW_OK) {
        rej = HTTP_REJECT_NOMEM;
        goto out_free;
    }
    if (http_auth_cached(c, digest)) {
        rej = HTTP_REJECT_NONE;
        goto out_free;
    }
    if (!http_auth_throttle(r->dmn->srv, r->conn)) {
        atomic_fetch_add(&r->dmn->srv->auth_throttled, 1);
        rej = HTTP_REJECT_AUTH_THROTTLED;
        goto out_free;
    }
    r->auth_user = strdup(user);
    r->auth_pass = strdup(pass);
    if (r->auth_user == NULL || r->auth_pass == NULL) {
        http_auth_forget(r);
        rej = HTTP_REJECT_NOMEM;
        goto out_free;
    }
    r->auth_pending = true;
    rej = HTTP_REJECT_NONE;

out_free:
    OPENSSL_cleanse(digest, sizeof(digest));
    if (pass != NULL) {
        OPENSSL_cleanse(pass, strlen(pass));
        MHD_free(pass);
    }
    if (user != NULL)
        MHD_free(user);
    return rej;
}

static struct cw_log_limit http_auth_log_limit = CW_LOG_LIMIT_INIT;

enum http_reject http_auth_verify(struct cw_http_request *r)
{
    struct http_cfg *c = r->cfg;
    unsigned char digest[32];
    bool ok = false;
    int rc;

    pthread_mutex_lock(&c->bcrypt_lock);
    rc = cw_webcfg_check_password(c->wc, r->auth_user, r->auth_pass, &ok);
    pthread_mutex_unlock(&c->bcrypt_lock);
    if (rc == CW_OK && ok && http_auth_digest(c, r->auth_user, r->auth_pass, digest) == CW_OK)
        http_auth_remember(c, digest);
    OPENSSL_cleanse(digest, sizeof(digest));
    if (rc == CW_OK && !ok)
        cw_log_limited(&http_auth_log_limit, CW_LOG_WARN, "http", "authentication failed", "user",
                       r->auth_user, "path", r->path, (char *)NULL);
    http_auth_forget(r);
    return rc != CW_OK ? HTTP_REJECT_NOMEM : ok ? HTTP_REJECT_NONE : HTTP_REJECT_AUTH;
}

/* ---- client certificates ------------------------------------------------- */

static gnutls_session_t http_tls_session(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci == NULL)
        return NULL;
    return (gnutls_session_t)ci->tls_session;
}

static gnutls_certificate_request_t http_cert_request(enum cw_webcfg_client_auth a)
{
    switch (a) {
    case CW_CLIENT_AUTH_NONE:
        return GNUTLS_CERT_IGNORE;
    case CW_CLIENT_AUTH_REQUEST:
    case CW_CLIENT_AUTH_VERIFY_IF_GIVEN:
        return GNUTLS_CERT_REQUEST;
    case CW_CLIENT_AUTH_REQUIRE_ANY:
    case CW_CLIENT_AUTH_REQUIRE_AND_VERIFY:
        return GNUTLS_CERT_REQUIRE;
    }
    return GNUTLS_CERT_REQUIRE;
}

void http_cert_request_setup(const struct http_daemon *d, struct MHD_Connection *conn)
{
    gnutls_session_t session;

    if (d->tls == NULL)
        return;
    session = http_tls_session(conn);
    if (session == NULL)
        return;
    gnutls_certificate_server_set_request(session, http_cert_request(d->tls->wc->client_auth));
    /* Verify during the handshake when a verified certificate is required,
     * as Go does; http_check_client_cert() checks again per request. */
    if (d->tls->wc->client_auth == CW_CLIENT_AUTH_REQUIRE_AND_VERIFY)
        gnutls_session_set_verify_cert(session, NULL, 0);
}

static bool http_san_allowed(const struct cw_strlist *sans, const gnutls_datum_t *der)
{
    gnutls_x509_crt_t crt;
    bool found = false;
    unsigned seq;

    if (gnutls_x509_crt_init(&crt) < 0)
        return false;
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0)
        goto out_deinit;
    for (seq = 0; seq < 1024 && !found; seq++) {
        char buf[1024];
        char text[INET6_ADDRSTRLEN];
        const char *value = buf;
        size_t size = sizeof(buf) - 1;
        unsigned critical = 0;
        size_t i;
        int type;

        type = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size, &critical);
        if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (type < 0)
            continue;
        switch (type) {
        case GNUTLS_SAN_DNSNAME:
        case GNUTLS_SAN_RFC822NAME:
        case GNUTLS_SAN_URI:
            buf[size] = '\0';
            if (strlen(buf) != size)
                continue;
            break;
        case GNUTLS_SAN_IPADDRESS:
            if (size != 4 && size != 16)
                continue;
            if (inet_ntop(size == 4 ? AF_INET : AF_INET6, buf, text, sizeof(text)) == NULL)
                continue;
            value = text;
            break;
        default:
            continue;
        }
        for (i = 0; i < sans->n; i++) {
            if (strcmp(sans->items[i], value) == 0)
                found = true;
        }
    }

out_deinit:
    gnutls_x509_crt_deinit(crt);
    return found;
}

enum http_reject http_check_client_cert(const struct cw_http_request *r)
{
    const struct cw_webcfg *wc = r->dmn->tls != NULL ? r->dmn->tls->wc : NULL;
    const gnutls_datum_t *peers;
    gnutls_session_t session;
    unsigned npeers = 0;
    unsigned status = 0;
    bool verify;

    if (wc == NULL || !wc->tls)
        return HTTP_REJECT_NONE;
    if (wc->client_auth == CW_CLIENT_AUTH_NONE || wc->client_auth == CW_CLIENT_AUTH_REQUEST)
        return HTTP_REJECT_NONE;
    session = http_tls_session(r->conn);
    if (session == NULL)
        return HTTP_REJECT_CERT_MISSING;
    peers = gnutls_certificate_get_peers(session, &npeers);
    if (peers == NULL || npeers == 0) {
        if (wc->client_auth == CW_CLIENT_AUTH_VERIFY_IF_GIVEN)
            return HTTP_REJECT_NONE;
        return HTTP_REJECT_CERT_MISSING;
    }
    verify = wc->client_auth == CW_CLIENT_AUTH_VERIFY_IF_GIVEN ||
             wc->client_auth == CW_CLIENT_AUTH_REQUIRE_AND_VERIFY;
    if (verify && (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0))
        return HTTP_REJECT_CERT_UNTRUSTED;
    if (wc->client_allowed_sans.n > 0 && !http_san_allowed(&wc->client_allowed_sans, &peers[0]))
        return HTTP_REJECT_CERT_SAN;
    return HTTP_REJECT_NONE;
}
