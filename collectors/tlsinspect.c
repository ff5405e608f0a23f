/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tlsinspect.c - X.509 chain inspection and the connwatch_tls_* series,
 * shared by the http, tls and tls_file checks (see tlsinspect.h).
 *
 * Stateless; OpenSSL's per-thread error queue is cleared after use. Called
 * from scheduler workers and from the http check's curl thread.
 */
#include "collectors/tlsinspect.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct cw_desc desc_earliest = {
    .name = "connwatch_tls_earliest_cert_expiry_timestamp_seconds",
    .help = "Earliest notAfter among the certificates the server presented (Unix seconds).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_leaf_expiry = {
    .name = "connwatch_tls_leaf_cert_expiry_timestamp_seconds",
    .help = "notAfter of the server's own (leaf) certificate (Unix seconds).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_verified_expiry = {
    .name = "connwatch_tls_verified_chain_expiry_timestamp_seconds",
    .help = "Earliest notAfter within the chain that verified against the trust store, "
            "root included (Unix seconds); absent when verification failed.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_leaf_not_before = {
    .name = "connwatch_tls_leaf_cert_not_before_timestamp_seconds",
    .help = "notBefore of the leaf certificate (Unix seconds).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_cert_info = {
    .name = "connwatch_tls_cert_info",
    .help = "One series per presented certificate (depth 0 = leaf), value 1.",
    .type = CW_GAUGE,
    .labels = {"depth", "subject", "issuer", "serial", "not_after"},
    .nlabels = 5,
};
static const struct cw_desc desc_version_info = {
    .name = "connwatch_tls_version_info",
    .help = "Negotiated TLS version and cipher, value 1.",
    .type = CW_GAUGE,
    .labels = {"version", "cipher"},
    .nlabels = 2,
};
static const struct cw_desc desc_verify = {
    .name = "connwatch_tls_verify_success",
    .help = "1 when the chain verified against the trust store and the name matched the leaf.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_chain_len = {
    .name = "connwatch_tls_presented_chain_length",
    .help = "Number of certificates the server presented.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_skip = {
    .name = "connwatch_tls_insecure_skip_verify",
    .help = "1 when the check is configured with insecure_skip_verify: a failed verification "
            "does not fail the check (verify_success still tells).",
    .type = CW_GAUGE,
};

/* Every family cw_tls_emit() and its helpers emit (see tlsinspect.h). */
const struct cw_desc *const cw_tls_descs[] = {
    &desc_earliest,
    &desc_leaf_expiry,
    &desc_verified_expiry,
    &desc_leaf_not_before,
    &desc_cert_info,
    &desc_version_info,
    &desc_verify,
    &desc_chain_len,
    &desc_skip,
    NULL,
};

int cw_tls_time(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    time_t v;

    if (t == NULL)
        return CW_EPARSE;
    memset(&tm, 0, sizeof(tm));
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return CW_EPARSE;
    v = timegm(&tm);
    if (v == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
        return CW_EPARSE;
    *out = (int64_t)v;
    return CW_OK;
}

/* tls_name() writes 'n' as RFC 2253 text into buf (truncated, "" on error). */
static void tls_name(const X509_NAME *n, char *buf, size_t len)
{
    BIO *b;
    int got;

    buf[0] = '\0';
    b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        got = BIO_read(b, buf, (int)len - 1);
        buf[got > 0 ? got : 0] = '\0';
    }
    BIO_free(b);
}

int cw_tls_cert_read(X509 *x, struct cw_tls_cert *out)
{
    const ASN1_INTEGER *sn;
    BIGNUM *bn;
    char *hex;
    struct tm tm;
    time_t t;

    memset(out, 0, sizeof(*out));
    if (cw_tls_time(X509_get0_notAfter(x), &out->not_after) != CW_OK ||
        cw_tls_time(X509_get0_notBefore(x), &out->not_before) != CW_OK)
        return CW_EPARSE;
    tls_name(X509_get_subject_name(x), out->subject, sizeof(out->subject));
    tls_name(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer));
    sn = X509_get0_serialNumber(x);
    bn = sn != NULL ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
    if (bn != NULL) {
        hex = BN_bn2hex(bn);
        if (hex != NULL) {
            snprintf(out->serial, sizeof(out->serial), "%s", hex);
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    t = (time_t)out->not_after;
    if (gmtime_r(&t, &tm) != NULL)
        strftime(out->not_after_text, sizeof(out->not_after_text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return CW_OK;
}

bool cw_tls_is_ip(const char *s)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

void cw_tls_collect(const SSL *ssl, const char *host, struct cw_tls_facts *f)
{
    STACK_OF(X509) * chain;
    STACK_OF(X509) * vchain;
    X509 *leaf;
    const SSL_CIPHER *c;
    int i, n;

    memset(f, 0, sizeof(*f));
    f->have = true;
    snprintf(f->version, sizeof(f->version), "%s", SSL_get_version(ssl));
    c = SSL_get_current_cipher(ssl);
    snprintf(f->cipher, sizeof(f->cipher), "%s", c != NULL ? SSL_CIPHER_get_name(c) : "");

    /* On the client side the peer chain includes the leaf. */
    chain = SSL_get_peer_cert_chain(ssl);
    n = chain != NULL ? sk_X509_num(chain) : 0;
    f->ntotal = (size_t)(n > 0 ? n : 0);
    for (i = 0; i < n && f->ncerts < CW_TLS_MAX_CERTS; i++) {
        if (cw_tls_cert_read(sk_X509_value(chain, i), &f->certs[f->ncerts]) == CW_OK)
            f->ncerts++;
    }

    f->verify_result = SSL_get_verify_result(ssl);
    leaf = SSL_get0_peer_certificate(ssl);
    if (leaf == NULL && f->verify_result == X509_V_OK)
        f->verify_result = X509_V_ERR_UNSPECIFIED;
    f->verified = f->verify_result == X509_V_OK;
    if (f->verified) {
        vchain = SSL_get0_verified_chain(ssl);
        n = vchain != NULL ? sk_X509_num(vchain) : 0;
        f->verified_expiry = INT64_MAX;
        for (i = 0; i < n; i++) {
            int64_t t;

            if (cw_tls_time(X509_get0_notAfter(sk_X509_value(vchain, i)), &t) == CW_OK &&
                t < f->verified_expiry)
                f->verified_expiry = t;
        }
        if (n == 0)
            f->verified = false;
    }
    if (host != NULL && host[0] != '\0' && leaf != NULL) {
        f->host_checked = true;
        if (cw_tls_is_ip(host))
            f->host_ok = X509_check_ip_asc(leaf, host, 0) == 1;
        else
            f->host_ok = X509_check_host(leaf, host, 0, 0, NULL) == 1;
    }
    ERR_clear_error();
}

enum cw_reason cw_tls_verify_reason(long v)
{
    switch (v) {
    case X509_V_OK:
        return CW_REASON_NONE;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        return CW_REASON_CERT_EXPIRED;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return CW_REASON_CERT_NOT_YET_VALID;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return CW_REASON_CERT_HOSTNAME;
    default:
        return CW_REASON_CERT_UNTRUSTED;
    }
}

enum cw_reason cw_tls_facts_reason(const struct cw_tls_facts *f, const char **why)
{
    *why = "";
    if (!f->have) {
        *why = "no TLS handshake";
        return CW_REASON_TLS_HANDSHAKE;
    }
    if (f->verify_result != X509_V_OK) {
        *why = X509_verify_cert_error_string(f->verify_result);
        return cw_tls_verify_reason(f->verify_result);
    }
    if (f->host_checked && !f->host_ok) {
        *why = "certificate does not match the host name";
        return CW_REASON_CERT_HOSTNAME;
    }
    return CW_REASON_NONE;
}

void cw_tls_emit(struct cw_run *run, const struct cw_tls_facts *f, bool skip_verify)
{
    int64_t earliest = INT64_MAX;
    const char *why;
    size_t i;

    cw_emit(run, &desc_skip, skip_verify ? 1 : 0, NULL);
    if (!f->have)
        return;
    cw_emit(run, &desc_chain_len, (double)f->ntotal, NULL);
    for (i = 0; i < f->ncerts; i++) {
        const struct cw_tls_cert *c = &f->certs[i];
        char depth[24];
        const char *lv[5] = {depth, c->subject, c->issuer, c->serial, c->not_after_text};

        if (c->not_after < earliest)
            earliest = c->not_after;
        snprintf(depth, sizeof(depth), "%zu", i);
        cw_emit(run, &desc_cert_info, 1, lv);
    }
    if (f->ncerts > 0) {
        cw_emit(run, &desc_earliest, (double)earliest, NULL);
        cw_emit(run, &desc_leaf_expiry, (double)f->certs[0].not_after, NULL);
        cw_emit(run, &desc_leaf_not_before, (double)f->certs[0].not_before, NULL);
    }
    if (f->verified)
        cw_emit(run, &desc_verified_expiry, (double)f->verified_expiry, NULL);
    {
        const char *lv[2] = {f->version, f->cipher};

        cw_emit(run, &desc_version_info, 1, lv);
    }
    cw_emit(run, &desc_verify, cw_tls_facts_reason(f, &why) == CW_REASON_NONE ? 1 : 0, NULL);
}

static bool tls_is_cert_block(const char *name)
{
    return strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0 ||
           strcmp(name, PEM_STRING_X509_TRUSTED) == 0;
}

int cw_tls_pem_each(const char *data, size_t len, cw_tls_cert_fn fn, void *arg, size_t *count)
{
    BIO *b;
    int rc = CW_OK;
    bool stop = false;

    *count = 0;
    if (len > INT32_MAX)
        return CW_EPARSE;
    b = BIO_new_mem_buf(data, (int)len);
    if (b == NULL)
        return CW_ENOMEM;
    while (!stop) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long dlen = 0;
        unsigned long e;

        if (PEM_read_bio(b, &name, &header, &der, &dlen) != 1) {
            e = ERR_peek_last_error();
            /* The normal end: no further BEGIN line. */
            if (!(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
                rc = CW_EPARSE;
            break;
        }
        if (tls_is_cert_block(name)) {
            const unsigned char *p = der;
            X509 *x = strcmp(name, PEM_STRING_X509_TRUSTED) == 0 ? d2i_X509_AUX(NULL, &p, dlen)
                                                                 : d2i_X509(NULL, &p, dlen);
            struct cw_tls_cert c;

            if (x == NULL || cw_tls_cert_read(x, &c) != CW_OK) {
                rc = CW_EPARSE;
                stop = true;
            } else {
                (*count)++;
                if (fn != NULL && fn(arg, &c) != 0)
                    stop = true;
            }
            X509_free(x);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
    }
    BIO_free(b);
    ERR_clear_error();
    if (rc == CW_OK && *count == 0)
        rc = CW_EPARSE;
    return rc;
}

SSL_CTX *cw_tls_client_ctx(const char *ca_file, X509_STORE *store, const char *cert_file,
                           const char *key_file, const char **why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    *why = "out of memory";
    if (ctx == NULL)
        goto out_fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (ca_file != NULL) {
        *why = "no certificate could be read from ca_file";
        if (SSL_CTX_load_verify_file(ctx, ca_file) != 1)
            goto out_fail;
    } else if (store != NULL) {
        SSL_CTX_set1_cert_store(ctx, store);
    } else {
        *why = "cannot load the system trust store";
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            goto out_fail;
    }
    if (cert_file != NULL) {
        *why = "cannot load a certificate from cert_file";
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
            goto out_fail;
        *why = "cannot load a private key matching cert_file from key_file";
        if (key_file == NULL || SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1)
            goto out_fail;
    }
    ERR_clear_error();
    return ctx;

out_fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

/* tls_wait() polls 'fd' until 'deadline': 1 ready, 0 deadline, -1 error. */
static int tls_wait(int fd, short events, cw_mono deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        cw_duration left = deadline - cw_now();
        int n;

        if (left <= 0)
            return 0;
        n = poll(&p, 1, (int)((left + CW_MS(1) - 1) / CW_MS(1)));
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

enum cw_reason cw_tls_handshake(SSL_CTX *ctx, int fd, const char *name, cw_mono deadline,
                                struct cw_tls_facts *f, char *detail, size_t len)
{
    enum cw_reason r = CW_REASON_INTERNAL;
    SSL *ssl;

    memset(f, 0, sizeof(*f));
    detail[0] = '\0';
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        snprintf(detail, len, "cannot create a TLS session");
        goto out;
    }
    if (name != NULL && !cw_tls_is_ip(name) && SSL_set_tlsext_host_name(ssl, name) != 1) {
        snprintf(detail, len, "cannot set the server name");
        goto out;
    }
    for (;;) {
        int rc = SSL_connect(ssl), e, w;
        unsigned long le;

        if (rc == 1)
            break;
        e = SSL_get_error(ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            w = tls_wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
            if (w == 0) {
                snprintf(detail, len, "no TLS handshake before the deadline");
                r = CW_REASON_TIMEOUT;
                goto out;
            }
            if (w < 0) {
                snprintf(detail, len, "poll failed");
                goto out;
            }
            continue;
        }
        le = ERR_peek_error();
        if (le != 0)
            ERR_error_string_n(le, detail, len);
        else if (e == SSL_ERROR_SYSCALL)
            snprintf(detail, len, "connection closed during the TLS handshake");
        else
            snprintf(detail, len, "TLS handshake failed (SSL error %d)", e);
        r = CW_REASON_TLS_HANDSHAKE;
        goto out;
    }
    cw_tls_collect(ssl, name, f);
    (void)SSL_shutdown(ssl); /* one close_notify; no wait for the peer's */
    r = CW_REASON_NONE;
out:
    ERR_clear_error();
    SSL_free(ssl);
    return r;
}

X509_STORE *cw_tls_system_store(pthread_mutex_t *mu, X509_STORE **slot)
{
    X509_STORE *s;

    pthread_mutex_lock(mu);
    if (*slot == NULL) {
        s = X509_STORE_new();
        if (s != NULL && X509_STORE_set_default_paths(s) != 1) {
            X509_STORE_free(s);
            s = NULL;
        }
        *slot = s;
    }
    s = *slot;
    pthread_mutex_unlock(mu);
    return s;
}
