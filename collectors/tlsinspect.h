/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tlsinspect.h - what the http, tls and tls_file checks learn from X.509
 * certificates, and the TLS metric families they share.
 *
 * cw_tls_collect() reads a finished handshake (an SSL* from libcurl's
 * handshake callback or from the tls check's own SSL_connect) into a plain
 * struct cw_tls_facts: the presented chain (leaf first), the chain that
 * actually verified, the verification result, the hostname match, the
 * negotiated version and cipher. The handshake is always done with
 * SSL_VERIFY_NONE so that a bad certificate is still measured; the verdict
 * comes from SSL_get_verify_result() and X509_check_host() and becomes a
 * reason with cw_tls_facts_reason(). cw_tls_emit() turns the facts into the
 * connwatch_tls_* series. cw_tls_pem_each() walks a PEM bundle (tls_file).
 *
 * Nothing here allocates beyond OpenSSL temporaries or keeps state: every
 * function is thread-safe, called by the check's worker or by the http
 * check's curl thread (cw_tls_collect only).
 */
#ifndef CW_TLSINSPECT_H
#define CW_TLSINSPECT_H

#include "exporter/check.h"
#include "exporter/core/err.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_TLS_MAX_CERTS 8   /* certificates of a presented chain that are reported */
#define CW_TLS_NAME_MAX  256 /* subject/issuer text, truncated beyond */

struct cw_tls_cert {
    int64_t not_before;            /* Unix seconds */
    int64_t not_after;             /* Unix seconds */
    char subject[CW_TLS_NAME_MAX]; /* RFC 2253 text */
    char issuer[CW_TLS_NAME_MAX];
    char serial[96];         /* upper-case hex */
    char not_after_text[24]; /* 2026-12-15T08:00:00Z */
};

struct cw_tls_facts {
    bool have;     /* a handshake completed and the fields below are set */
    size_t ncerts; /* presented certificates kept, leaf first */
    size_t ntotal; /* presented certificates (may exceed CW_TLS_MAX_CERTS) */
    struct cw_tls_cert certs[CW_TLS_MAX_CERTS];
    bool verified;           /* chain verified against the trust store */
    int64_t verified_expiry; /* earliest notAfter of the verified chain, when verified */
    long verify_result;      /* X509_V_OK or X509_V_ERR_* */
    bool host_checked;       /* a name was given and checked against the leaf */
    bool host_ok;
    char version[16]; /* "TLSv1.3" */
    char cipher[64];
};

/* cw_tls_time() converts an ASN1_TIME to Unix seconds. CW_OK or CW_EPARSE. */
CW_MUST_CHECK int cw_tls_time(const ASN1_TIME *t, int64_t *out);

/* cw_tls_cert_read() fills 'out' from 'x'. CW_OK or CW_EPARSE (bad dates). */
CW_MUST_CHECK int cw_tls_cert_read(X509 *x, struct cw_tls_cert *out);

/* cw_tls_collect() fills 'f' from the finished handshake of 'ssl'. 'host'
 * (a DNS name or an IP literal) is checked against the leaf when not NULL
 * and the chain verified. */
void cw_tls_collect(const SSL *ssl, const char *host, struct cw_tls_facts *f);

/* cw_tls_verify_reason() maps an X509_V_ERR_* code to a reason:
 * expired -> cert_expired, not yet valid -> cert_not_yet_valid, hostname or
 * IP mismatch -> cert_hostname, any other failure -> cert_untrusted,
 * X509_V_OK -> CW_REASON_NONE. */
enum cw_reason cw_tls_verify_reason(long verify_result);

/* cw_tls_facts_reason() is the verdict of 'f': CW_REASON_NONE when the chain
 * verified and the host name matched. A short text goes to 'why'. */
enum cw_reason cw_tls_facts_reason(const struct cw_tls_facts *f, const char **why);

/* cw_tls_emit() emits the connwatch_tls_* series of 'f' (nothing but
 * connwatch_tls_insecure_skip_verify when no handshake completed).
 * 'skip_verify' is the check's insecure_skip_verify option, reported as
 * connwatch_tls_insecure_skip_verify. */
void cw_tls_emit(struct cw_run *run, const struct cw_tls_facts *f, bool skip_verify);

/* cw_tls_descs lists the families cw_tls_emit() emits (NULL-terminated), for
 * the descriptor lists of the kinds that call it. */
extern const struct cw_desc *const cw_tls_descs[];

/* cw_tls_pem_each() calls 'fn' for every certificate of the PEM text
 * [data, data+len) in file order (other PEM blocks, such as keys, are
 * skipped). Stops when fn returns non-zero. Returns CW_OK with *count set
 * when at least one certificate was read and none was malformed, CW_EPARSE
 * otherwise (no certificate, a CERTIFICATE block that does not decode, or
 * dates that do not convert); *count is set in both cases. */
typedef int (*cw_tls_cert_fn)(void *arg, const struct cw_tls_cert *cert);
CW_MUST_CHECK int cw_tls_pem_each(const char *data, size_t len, cw_tls_cert_fn fn, void *arg,
                                  size_t *count);

/* ---- TLS client on a connected socket (tls check, tcp check with tls: true) ---- */

/* cw_tls_client_ctx() makes a client SSL_CTX that verifies nothing by itself
 * (SSL_VERIFY_NONE: the verdict is read afterwards) and trusts 'ca_file', or
 * 'store' (taken by reference) when ca_file is NULL, or the system store
 * when both are NULL; 'cert_file'/'key_file' (both or neither) are the
 * client certificate chain and key. Returns NULL with a static reason in
 * *why. For configure(). */
SSL_CTX *cw_tls_client_ctx(const char *ca_file, X509_STORE *store, const char *cert_file,
                           const char *key_file, const char **why);

/* cw_tls_handshake() runs a non-blocking SSL_connect() over the connected
 * socket 'fd' until it completes or 'deadline' (cw_now() clock) passes,
 * sending SNI 'name' unless it is an IP literal, then fills 'f' (verdict
 * against 'name'), sends close_notify and frees the session (the caller
 * closes fd). Returns CW_REASON_NONE when the handshake completed (check
 * cw_tls_facts_reason() for the certificate), CW_REASON_TIMEOUT at the
 * deadline, CW_REASON_TLS_HANDSHAKE when the handshake failed, or
 * CW_REASON_INTERNAL, with a detail in 'detail'. */
enum cw_reason cw_tls_handshake(SSL_CTX *ctx, int fd, const char *name, cw_mono deadline,
                                struct cw_tls_facts *f, char *detail, size_t len);

/* cw_tls_is_ip() tells whether 's' is an IPv4 or IPv6 literal. */
bool cw_tls_is_ip(const char *s);

/* cw_tls_system_store() returns the system trust store cached in '*slot',
 * loading it on first use under 'mu' (the caller's lock, which guards the
 * slot). NULL when it cannot be loaded. The caller frees *slot at exit. */
X509_STORE *cw_tls_system_store(pthread_mutex_t *mu, X509_STORE **slot);

#endif
