/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webcfg.h - the exporter-toolkit web configuration file (--web.config.file):
 * TLS server settings, extra response headers, basic-auth users with bcrypt
 * hashes, and a request rate limit.
 *
 * cw_webcfg_load() reads and checks the whole file, including the PEM files
 * it names (relative paths are resolved against the file's directory), and
 * records every problem as "file:line:col: path: message". A loaded
 * cw_webcfg is immutable: any number of threads may read it. The HTTP layer
 * (http.c) owns the runtime state built on top of it (password cache, token
 * bucket, daemons) and swaps configs on reload.
 */
#ifndef CW_WEBCFG_H
#define CW_WEBCFG_H

#include "clock.h"
#include "config.h"
#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* client_auth_type, in the order of Go's tls.ClientAuthType. */
enum cw_webcfg_client_auth {
    CW_CLIENT_AUTH_NONE = 0,           /* NoClientCert */
    CW_CLIENT_AUTH_REQUEST,            /* RequestClientCert: asked for, never verified */
    CW_CLIENT_AUTH_REQUIRE_ANY,        /* RequireAnyClientCert (alias RequireClientCert) */
    CW_CLIENT_AUTH_VERIFY_IF_GIVEN,    /* VerifyClientCertIfGiven */
    CW_CLIENT_AUTH_REQUIRE_AND_VERIFY, /* RequireAndVerifyClientCert */
};

enum cw_tls_version { CW_TLS10 = 0, CW_TLS11, CW_TLS12, CW_TLS13 };

struct cw_webcfg {
    char *file; /* owned: the path (or name) it was loaded from */

    /* tls_server_config */
    bool tls;            /* TLS is enabled (any cert/key/CA/client-auth field set) */
    char *cert_pem;      /* owned: certificate chain, PEM, NUL-terminated; NULL without TLS */
    char *key_pem;       /* owned, secret: private key, PEM; wiped by cw_webcfg_free() */
    size_t key_len;      /* strlen(key_pem) */
    char *client_ca_pem; /* owned: client CA bundle, PEM, or NULL */
    enum cw_webcfg_client_auth client_auth;
    enum cw_tls_version min_version; /* default TLS12 */
    enum cw_tls_version max_version; /* default TLS13 */
    char *priorities;                /* owned: GnuTLS priority string derived from the above */
    struct cw_strlist client_allowed_sans; /* owned: empty = any */
    size_t ignored_cipher_suites;          /* cipher_suites entries accepted but not applied */

    /* http_server_config */
    bool http2;               /* accepted for compatibility; libmicrohttpd serves HTTP/1.1 */
    struct cw_strmap headers; /* owned: extra response headers, allowed names only */

    struct cw_strmap users; /* owned: basic_auth_users, user -> bcrypt hash */

    cw_duration rate_interval; /* one token per interval; 0 disables the limit */
    int64_t rate_burst;        /* bucket size */
};

/* cw_webcfg_parse() flag: do not read the files the config names (the
 * result cannot serve TLS then); used by the fuzzer and config checks of
 * text without a directory. */
#define CW_WEBCFG_NO_FILES 0x1u

/* cw_webcfg_load() reads the web config file 'path'. Returns a new config
 * the caller frees with cw_webcfg_free(), or NULL with every problem in
 * 'diag'. Thread-safe; touches no global state. */
struct cw_webcfg *cw_webcfg_load(const char *path, struct cw_diag *diag);

/* cw_webcfg_parse() is cw_webcfg_load() on 'len' bytes of YAML named 'file'
 * (relative paths resolve against the directory part of 'file'). */
struct cw_webcfg *cw_webcfg_parse(const char *file, const char *text, size_t len, unsigned flags,
                                  struct cw_diag *diag);

/* cw_webcfg_free() frees 'c' and wipes the key; NULL is fine. */
void cw_webcfg_free(struct cw_webcfg *c);

/* cw_webcfg_has_users() tells whether basic auth is required. */
bool cw_webcfg_has_users(const struct cw_webcfg *c);

/* cw_webcfg_check_password() checks 'password' for 'user' against the
 * user's bcrypt hash with libxcrypt and a constant-time comparison. An
 * unknown user is checked against a fixed hash so that timing does not tell
 * which users exist. This costs one bcrypt run (~70 ms at cost 10): callers
 * cache successes. *ok receives the verdict. Returns CW_OK, or CW_ENOMEM.
 * Thread-safe. Never logs. */
CW_MUST_CHECK int cw_webcfg_check_password(const struct cw_webcfg *c, const char *user,
                                           const char *password, bool *ok);

/* cw_webcfg_tls_equal() tells whether 'a' and 'b' (either may be NULL, which
 * means plain HTTP) need the same TLS server: same certificate, key, CA,
 * client auth, priorities and allowed SANs. */
bool cw_webcfg_tls_equal(const struct cw_webcfg *a, const struct cw_webcfg *b);

/* cw_webcfg_client_auth_name() returns the toolkit spelling of 'a'. */
const char *cw_webcfg_client_auth_name(enum cw_webcfg_client_auth a);

#endif
