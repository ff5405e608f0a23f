/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webcfg.c - the exporter-toolkit web configuration file: YAML through the
 * project's option tables, the toolkit's cross-field rules, PEM material
 * read and checked with GnuTLS (the TLS library libmicrohttpd uses on
 * Debian), and bcrypt password checks with libxcrypt.
 *
 * A cw_webcfg owns copies of everything it needs (PEM text, header values,
 * hashes) and is immutable once loaded; the key PEM is wiped when freed.
 * No global state: loading runs on whichever thread reloads, password
 * checks on the HTTP threads.
 */
#include "webcfg.h"

#include "buf.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WEBCFG_PEM_MAX (1u << 20)

/* ---- option tables ------------------------------------------------------- */

struct webcfg_root_opts {
    struct cw_strmap basic_auth_users;
};

struct webcfg_tls_opts {
    char *cert_file;
    char *key_file;
    char *client_ca_file;
    char *cert;
    char *key; /* secret: wiped before release */
    char *client_ca;
    int client_auth_type;
    int min_version;
    int max_version;
    struct cw_strlist client_allowed_sans;
    struct cw_strlist cipher_suites;
    struct cw_strlist curve_preferences;
    bool prefer_server_cipher_suites;
};

struct webcfg_http_opts {
    bool http2;
    struct cw_strmap headers;
};

struct webcfg_rate_opts {
    cw_duration interval;
    int64_t burst;
};

static const char *const root_sections[] = {"tls_server_config", "http_server_config", "rate_limit",
                                            NULL};

static const struct cw_opt root_opts[] = {
    CW_OPT("basic_auth_users", CW_OPT_T_STRING_MAP, struct webcfg_root_opts, basic_auth_users, NULL,
           0, 0, 0),
    CW_OPT_END,
};

/* Index i of this list maps to client_auth_values[i]. */
static const char *const client_auth_choices[] = {
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
    NULL,
};
static const enum cw_webcfg_client_auth client_auth_values[] = {
    CW_CLIENT_AUTH_NONE,        CW_CLIENT_AUTH_REQUEST,         CW_CLIENT_AUTH_REQUIRE_ANY,
    CW_CLIENT_AUTH_REQUIRE_ANY, CW_CLIENT_AUTH_VERIFY_IF_GIVEN, CW_CLIENT_AUTH_REQUIRE_AND_VERIFY,
};

static const char *const version_choices[] = {"TLS10", "TLS11", "TLS12", "TLS13", NULL};
static const char *const version_gnutls[] = {"VERS-TLS1.0", "VERS-TLS1.1", "VERS-TLS1.2",
                                             "VERS-TLS1.3"};

static const struct cw_opt tls_opts[] = {
    CW_OPT("cert_file", CW_OPT_T_STRING, struct webcfg_tls_opts, cert_file, NULL, 0, 0, 0),
    CW_OPT("key_file", CW_OPT_T_STRING, struct webcfg_tls_opts, key_file, NULL, 0, 0, 0),
    CW_OPT("client_ca_file", CW_OPT_T_STRING, struct webcfg_tls_opts, client_ca_file, NULL, 0, 0,
           0),
    CW_OPT("cert", CW_OPT_T_STRING, struct webcfg_tls_opts, cert, NULL, 0, 0, 0),
    CW_OPT("key", CW_OPT_T_STRING, struct webcfg_tls_opts, key, NULL, 0, 0, 0),
    CW_OPT("client_ca", CW_OPT_T_STRING, struct webcfg_tls_opts, client_ca, NULL, 0, 0, 0),
    CW_OPT_ENUM("client_auth_type", struct webcfg_tls_opts, client_auth_type, "NoClientCert",
                client_auth_choices, 0),
    CW_OPT_ENUM("min_version", struct webcfg_tls_opts, min_version, "TLS12", version_choices, 0),
    CW_OPT_ENUM("max_version", struct webcfg_tls_opts, max_version, "TLS13", version_choices, 0),
    CW_OPT("client_allowed_sans", CW_OPT_T_STRING_LIST, struct webcfg_tls_opts, client_allowed_sans,
           NULL, 0, 0, 0),
    CW_OPT("cipher_suites", CW_OPT_T_STRING_LIST, struct webcfg_tls_opts, cipher_suites, NULL, 0, 0,
           0),
    CW_OPT("curve_preferences", CW_OPT_T_STRING_LIST, struct webcfg_tls_opts, curve_preferences,
           NULL, 0, 0, 0),
    CW_OPT("prefer_server_cipher_suites", CW_OPT_T_BOOL, struct webcfg_tls_opts,
           prefer_server_cipher_suites, "true", 0, 0, 0),
    CW_OPT_END,
};

static const struct cw_opt http_opts[] = {
    CW_OPT("http2", CW_OPT_T_BOOL, struct webcfg_http_opts, http2, "true", 0, 0, 0),
    CW_OPT("headers", CW_OPT_T_STRING_MAP, struct webcfg_http_opts, headers, NULL, 0, 0, 0),
    CW_OPT_END,
};

static const struct cw_opt rate_opts[] = {
    CW_OPT("interval", CW_OPT_T_DURATION, struct webcfg_rate_opts, interval, "0", 0, 0, 0),
    CW_OPT("burst", CW_OPT_T_INT, struct webcfg_rate_opts, burst, "0", 0, 1e9, 0),
    CW_OPT_END,
};

/* The toolkit's list of configurable headers; NULL values mean "any value". */
static const struct {
    const char *name;
    const char *const *values;
} allowed_headers[] = {
    {"Content-Security-Policy", NULL},
    {"Strict-Transport-Security", NULL},
    {"X-Content-Type-Options", (const char *const[]){"nosniff", NULL}},
    {"X-Frame-Options", (const char *const[]){"deny", "sameorigin", NULL}},
    {"X-XSS-Protection", NULL},
};

/* Go's tls.CipherSuites() names, which the toolkit accepts. */
static const char *const go_cipher_suites[] = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
};

static const struct {
    const char *go;
    const char *gnutls;
} curves[] = {
    {"CurveP256", "GROUP-SECP256R1"},
    {"CurveP384", "GROUP-SECP384R1"},
    {"CurveP521", "GROUP-SECP521R1"},
    {"X25519", "GROUP-X25519"},
};

/* ---- small helpers ------------------------------------------------------- */

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static void wipe_string(char *s)
{
    if (s != NULL)
        explicit_bzero(s, strlen(s));
}

/* webcfg_item() returns item 'i' of the list under 'key' in 'map', for messages. */
static const struct cw_node *webcfg_item(const struct cw_node *map, const char *key, size_t i)
{
    const struct cw_node *l = cw_node_get(map, key);

    if (l == NULL || l->type != CW_NODE_SEQ || i >= l->nitems)
        return l != NULL ? l : map;
    return l->items[i];
}

/* webcfg_at() returns the node of 'key' in 'map', or 'map' itself. */
static const struct cw_node *webcfg_at(const struct cw_node *map, const char *key)
{
    const struct cw_node *n = cw_node_get(map, key);

    return n != NULL ? n : map;
}

/* webcfg_resolve() joins a relative 'path' to the directory of the file 'at' came from. */
static char *webcfg_resolve(const struct cw_node *at, const char *path)
{
    struct cw_buf b;
    char *dir;
    int rc;

    if (path[0] == '/')
        return strdup(path);
    dir = cw_node_dir(at);
    if (dir == NULL)
        return NULL;
    cw_buf_init(&b, 16384);
    rc = cw_buf_addf(&b, "%s/%s", dir, path);
    free(dir);
    if (rc != CW_OK) {
        cw_buf_reset(&b);
        return NULL;
    }
    return cw_buf_take(&b, NULL);
}

/* webcfg_read_file() reads a whole (PEM) file named by node 'at' into a
 * NUL-terminated string. 'secret' wipes partial reads. */
static char *webcfg_read_file(const struct cw_node *at, const char *name, bool secret,
                              struct cw_diag *d)
{
    char why[160];
    struct cw_buf b;
    char *path;
    char *out = NULL;

    path = webcfg_resolve(at, name);
    if (path == NULL) {
        cw_diagf(d, at, "out of memory");
        return NULL;
    }
    cw_buf_init(&b, WEBCFG_PEM_MAX);
    if (cw_buf_read_file(&b, path, why, sizeof(why)) != CW_OK) {
        cw_diagf(d, at, "cannot read %s: %s", path, why);
        goto out_free_buf;
    }
    if (b.len == 0) {
        cw_diagf(d, at, "%s is empty", path);
        goto out_free_buf;
    }
    if (memchr(b.data, '\0', b.len) != NULL) {
        cw_diagf(d, at, "%s is not a PEM file", path);
        goto out_free_buf;
    }
    out = cw_buf_take(&b, NULL);

out_free_buf:
    if (out == NULL && secret && b.data != NULL)
        explicit_bzero(b.data, b.cap);
    cw_buf_reset(&b);
    free(path);
    return out;
}

static gnutls_datum_t datum(const char *s)
{
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)s, (unsigned)strlen(s)};

    return d;
}

/* webcfg_count_certs() returns the number of PEM certificates in 'pem', or a
 * negative GnuTLS error. */
static int webcfg_count_certs(const char *pem)
{
    gnutls_datum_t d = datum(pem);
    gnutls_x509_crt_t *list = NULL;
    unsigned n = 0;
    unsigned i;
    int rc;

    rc = gnutls_x509_crt_list_import2(&list, &n, &d, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0)
        return rc;
    for (i = 0; i < n; i++)
        gnutls_x509_crt_deinit(list[i]);
    gnutls_free(list);
    return (int)n;
}

/* webcfg_check_key() tells whether 'pem' holds a usable private key. */
static int webcfg_check_key(const char *pem)
{
    gnutls_datum_t d = datum(pem);
    gnutls_x509_privkey_t key;
    int rc;

    rc = gnutls_x509_privkey_init(&key);
    if (rc < 0)
        return rc;
    rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_x509_privkey_deinit(key);
    return rc;
}

/* webcfg_check_pair() tells whether certificate and key belong together. */
static int webcfg_check_pair(const char *cert, const char *key)
{
    gnutls_certificate_credentials_t cred;
    gnutls_datum_t c = datum(cert);
    gnutls_datum_t k = datum(key);
    int rc;

    rc = gnutls_certificate_allocate_credentials(&cred);
    if (rc < 0)
        return rc;
    rc = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
    gnutls_certificate_free_credentials(cred);
    return rc;
}

/* ---- the sections -------------------------------------------------------- */

/* webcfg_load_pem() fills *out from the file option or the inline option
 * ('file_key'/'inline_key' name them). Returns false after a diagnostic. */
static bool webcfg_load_pem(const struct cw_node *tls, const char *file_key, const char *file_val,
                            const char *inline_key, const char *inline_val, bool secret,
                            unsigned flags, struct cw_diag *d, char **out)
{
    *out = NULL;
    if (is_set(file_val) && is_set(inline_val)) {
        cw_diagf(d, webcfg_at(tls, inline_key), "cannot specify both %s and %s", file_key,
                 inline_key);
        return false;
    }
    if (is_set(inline_val)) {
        *out = strdup(inline_val);
        if (*out == NULL) {
            cw_diagf(d, webcfg_at(tls, inline_key), "out of memory");
            return false;
        }
        return true;
    }
    if (is_set(file_val) && !(flags & CW_WEBCFG_NO_FILES)) {
        *out = webcfg_read_file(webcfg_at(tls, file_key), file_val, secret, d);
        return *out != NULL;
    }
    return true;
}

static int webcfg_build_priorities(struct cw_webcfg *c, const struct webcfg_tls_opts *t)
{
    struct cw_buf b;
    int rc;
    int v;
    size_t i;
    size_t j;

    cw_buf_init(&b, 4096);
    rc = cw_buf_adds(&b, "NORMAL:-VERS-ALL");
    for (v = (int)c->min_version; rc == CW_OK && v <= (int)c->max_version; v++)
        rc = cw_buf_addf(&b, ":+%s", version_gnutls[v]);
    if (rc == CW_OK && t->prefer_server_cipher_suites)
        rc = cw_buf_adds(&b, ":%SERVER_PRECEDENCE");
    if (rc == CW_OK && t->curve_preferences.n > 0)
        rc = cw_buf_adds(&b, ":-GROUP-ALL");
    for (i = 0; rc == CW_OK && i < t->curve_preferences.n; i++) {
        for (j = 0; j < CW_ARRAY_LEN(curves); j++) {
            if (strcmp(t->curve_preferences.items[i], curves[j].go) == 0)
                rc = cw_buf_addf(&b, ":+%s", curves[j].gnutls);
        }
    }
    if (rc != CW_OK) {
        cw_buf_reset(&b);
        return rc;
    }
    c->priorities = cw_buf_take(&b, NULL);
    return c->priorities != NULL ? CW_OK : CW_ENOMEM;
}

/* webcfg_tls() applies tls_server_config's rules and loads its material. */
static bool webcfg_tls(struct cw_webcfg *c, const struct cw_node *tls, struct webcfg_tls_opts *t,
                       unsigned flags, struct cw_diag *d)
{
    const struct cw_node *auth_node = cw_node_get(tls, "client_auth_type");
    bool ok = true;
    bool has_ca;
    size_t i;
    size_t j;
    int rc;

    c->client_auth = client_auth_values[t->client_auth_type];
    c->min_version = (enum cw_tls_version)t->min_version;
    c->max_version = (enum cw_tls_version)t->max_version;
    c->tls = is_set(t->cert_file) || is_set(t->cert) || is_set(t->key_file) || is_set(t->key) ||
             is_set(t->client_ca_file) || is_set(t->client_ca) ||
             (auth_node != NULL && !cw_node_is_null(auth_node));
    if (!c->tls)
        return true;

    if (!is_set(t->cert_file) && !is_set(t->cert)) {
        cw_diagf(d, tls, "missing one of cert or cert_file");
        ok = false;
    }
    if (!is_set(t->key_file) && !is_set(t->key)) {
        cw_diagf(d, tls, "missing one of key or key_file");
        ok = false;
    }
    has_ca = is_set(t->client_ca_file) || is_set(t->client_ca);
    if (has_ca && c->client_auth == CW_CLIENT_AUTH_NONE) {
        cw_diagf(d, webcfg_at(tls, is_set(t->client_ca_file) ? "client_ca_file" : "client_ca"),
                 "a client CA is set but client_auth_type is NoClientCert "
                 "(use RequireAndVerifyClientCert)");
        ok = false;
    }
    if (!has_ca && (c->client_auth == CW_CLIENT_AUTH_VERIFY_IF_GIVEN ||
                    c->client_auth == CW_CLIENT_AUTH_REQUIRE_AND_VERIFY)) {
        cw_diagf(d, webcfg_at(tls, "client_auth_type"),
                 "%s needs client_ca_file or client_ca to verify client certificates",
                 cw_webcfg_client_auth_name(c->client_auth));
        ok = false;
    }
    if (t->client_allowed_sans.n > 0 && c->client_auth != CW_CLIENT_AUTH_REQUIRE_ANY &&
        c->client_auth != CW_CLIENT_AUTH_REQUIRE_AND_VERIFY) {
        cw_diagf(d, webcfg_at(tls, "client_allowed_sans"),
                 "client_allowed_sans requires client_auth_type RequireAnyClientCert or "
                 "RequireAndVerifyClientCert");
        ok = false;
    }
    if (c->min_version > c->max_version) {
        cw_diagf(d, webcfg_at(tls, "min_version"), "min_version %s is above max_version %s",
                 version_choices[c->min_version], version_choices[c->max_version]);
        ok = false;
    }
    for (i = 0; i < t->curve_preferences.n; i++) {
        for (j = 0; j < CW_ARRAY_LEN(curves); j++) {
            if (strcmp(t->curve_preferences.items[i], curves[j].go) == 0)
                break;
        }
        if (j == CW_ARRAY_LEN(curves)) {
            cw_diagf(d, webcfg_item(tls, "curve_preferences", i),
                     "unknown curve \"%s\" (use CurveP256, CurveP384, CurveP521 or X25519)",
                     t->curve_preferences.items[i]);
            ok = false;
        }
    }
    for (i = 0; i < t->cipher_suites.n; i++) {
        for (j = 0; j < CW_ARRAY_LEN(go_cipher_suites); j++) {
            if (strcmp(t->cipher_suites.items[i], go_cipher_suites[j]) == 0)
                break;
        }
        if (j == CW_ARRAY_LEN(go_cipher_suites)) {
            cw_diagf(d, webcfg_item(tls, "cipher_suites", i), "unknown cipher suite \"%s\"",
                     t->cipher_suites.items[i]);
            ok = false;
        }
    }
    /* GnuTLS priorities select key exchange, cipher and MAC separately, so a
     * list of Go suites cannot be reproduced exactly: they are accepted and
     * reported as ignored (http.c logs it). */
    c->ignored_cipher_suites = t->cipher_suites.n;
    if (!ok)
        return false;

    if (!webcfg_load_pem(tls, "cert_file", t->cert_file, "cert", t->cert, false, flags, d,
                         &c->cert_pem))
        ok = false;
    if (!webcfg_load_pem(tls, "key_file", t->key_file, "key", t->key, true, flags, d, &c->key_pem))
        ok = false;
    if (!webcfg_load_pem(tls, "client_ca_file", t->client_ca_file, "client_ca", t->client_ca, false,
                         flags, d, &c->client_ca_pem))
        ok = false;
    if (c->key_pem != NULL)
        c->key_len = strlen(c->key_pem);
    if (!ok)
        return false;

    if (c->cert_pem != NULL) {
        const char *k = is_set(t->cert_file) ? "cert_file" : "cert";

        rc = webcfg_count_certs(c->cert_pem);
        if (rc <= 0) {
            cw_diagf(d, webcfg_at(tls, k), "no usable PEM certificate (GnuTLS: %s)",
                     gnutls_strerror(rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND));
            ok = false;
        }
    }
    if (c->key_pem != NULL) {
        const char *k = is_set(t->key_file) ? "key_file" : "key";

        rc = webcfg_check_key(c->key_pem);
        if (rc < 0) {
            cw_diagf(d, webcfg_at(tls, k), "no usable PEM private key (GnuTLS: %s)",
                     gnutls_strerror(rc));
            ok = false;
        }
    }
    if (ok && c->cert_pem != NULL && c->key_pem != NULL) {
        rc = webcfg_check_pair(c->cert_pem, c->key_pem);
        if (rc < 0) {
            cw_diagf(d, webcfg_at(tls, is_set(t->key_file) ? "key_file" : "key"),
                     "the key does not match the certificate (GnuTLS: %s)", gnutls_strerror(rc));
            ok = false;
        }
    }
    if (c->client_ca_pem != NULL) {
        const char *k = is_set(t->client_ca_file) ? "client_ca_file" : "client_ca";

        rc = webcfg_count_certs(c->client_ca_pem);
        if (rc <= 0) {
            cw_diagf(d, webcfg_at(tls, k), "no usable PEM certificate (GnuTLS: %s)",
                     gnutls_strerror(rc < 0 ? rc : GNUTLS_E_NO_CERTIFICATE_FOUND));
            ok = false;
        }
    }

    rc = webcfg_build_priorities(c, t);
    if (rc != CW_OK) {
        cw_diagf(d, tls, "out of memory");
        return false;
    }
    {
        gnutls_priority_t prio;
        const char *err_pos = NULL;

        rc = gnutls_priority_init(&prio, c->priorities, &err_pos);
        if (rc < 0) {
            cw_diagf(d, tls, "GnuTLS rejects the TLS settings (%s at \"%s\")", gnutls_strerror(rc),
                     err_pos != NULL ? err_pos : "");
            ok = false;
        } else {
            gnutls_priority_deinit(prio);
        }
    }
    return ok;
}

static bool webcfg_headers(const struct cw_node *http, const struct cw_strmap *h, struct cw_diag *d)
{
    const struct cw_node *hn = cw_node_get(http, "headers");
    bool ok = true;
    size_t i;

    for (i = 0; i < h->n; i++) {
        const struct cw_node *at = cw_node_get(hn, h->keys[i]);
        const char *v = h->values[i];
        size_t j;
        size_t k;

        for (j = 0; j < CW_ARRAY_LEN(allowed_headers); j++) {
            if (strcmp(h->keys[i], allowed_headers[j].name) == 0)
                break;
        }
        if (j == CW_ARRAY_LEN(allowed_headers)) {
            cw_diagf_key(d, at != NULL ? at : hn,
                         "header \"%s\" can not be configured (allowed: Content-Security-Policy, "
                         "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, "
                         "X-XSS-Protection)",
                         h->keys[i]);
            ok = false;
            continue;
        }
        for (k = 0; v[k] != '\0'; k++) {
            unsigned char ch = (unsigned char)v[k];

            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                break;
        }
        if (v[k] != '\0') {
            cw_diagf(d, at != NULL ? at : hn, "header value contains a control character");
            ok = false;
            continue;
        }
        if (allowed_headers[j].values != NULL) {
            const char *const *a;

            for (a = allowed_headers[j].values; *a != NULL; a++) {
                if (strcmp(v, *a) == 0)
                    break;
            }
            if (*a == NULL) {
                cw_diagf(d, at != NULL ? at : hn, "\"%s\" is not one of: %s%s%s", v,
                         allowed_headers[j].values[0], allowed_headers[j].values[1] ? ", " : "",
                         allowed_headers[j].values[1] ? allowed_headers[j].values[1] : "");
                ok = false;
            }
        }
    }
    return ok;
}

/* webcfg_is_bcrypt() accepts "$2a$", "$2b$" or "$2y$", a two-digit cost
 * from 04 to 31, "$", then 53 characters of bcrypt's base64. */
static bool webcfg_is_bcrypt(const char *h)
{
    static const char alphabet[] =
        "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int cost;
    size_t i;

    if (strlen(h) != 60 || h[0] != '$' || h[1] != '2' ||
        (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' || h[6] != '$')
        return false;
    if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9')
        return false;
    cost = (h[4] - '0') * 10 + (h[5] - '0');
    if (cost < 4 || cost > 31)
        return false;
    for (i = 7; i < 60; i++) {
        if (strchr(alphabet, h[i]) == NULL)
            return false;
    }
    return true;
}

static bool webcfg_users(const struct cw_node *root, const struct cw_strmap *u, struct cw_diag *d)
{
    const struct cw_node *un = cw_node_get(root, "basic_auth_users");
    bool ok = true;
    size_t i;

    for (i = 0; i < u->n; i++) {
        const struct cw_node *at = cw_node_get(un, u->keys[i]);

        if (at == NULL)
            at = un;
        if (u->keys[i][0] == '\0' || strchr(u->keys[i], ':') != NULL) {
            cw_diagf_key(d, at, "user names must be non-empty and cannot contain ':'");
            ok = false;
        }
        if (!webcfg_is_bcrypt(u->values[i])) {
            cw_diagf(d, at,
                     "not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')");
            ok = false;
        }
    }
    return ok;
}

/* ---- loading ------------------------------------------------------------- */

static void strmap_move(struct cw_strmap *dst, struct cw_strmap *src)
{
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

static struct cw_webcfg *webcfg_from_node(const struct cw_node *root, unsigned flags,
                                          struct cw_diag *d)
{
    const struct cw_node *tls = cw_node_get(root, "tls_server_config");
    const struct cw_node *http = cw_node_get(root, "http_server_config");
    const struct cw_node *rate = cw_node_get(root, "rate_limit");
    struct webcfg_root_opts ro;
    struct webcfg_tls_opts to;
    struct webcfg_http_opts ho;
    struct webcfg_rate_opts rl;
    struct cw_webcfg *c;
    bool ok = true;

    memset(&ro, 0, sizeof(ro));
    memset(&to, 0, sizeof(to));
    memset(&ho, 0, sizeof(ho));
    memset(&rl, 0, sizeof(rl));
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cw_diag_fileerr(d, root->file, "out of memory");
        return NULL;
    }
    c->file = strdup(root->file);
    if (c->file == NULL) {
        cw_diag_fileerr(d, root->file, "out of memory");
        ok = false;
    }

    if (cw_opts_apply(root_opts, &ro, root, root_sections, d) != CW_OK)
        ok = false;
    if (cw_opts_apply(tls_opts, &to, tls, NULL, d) != CW_OK)
        ok = false;
    else if (!webcfg_tls(c, tls, &to, flags, d))
        ok = false;
    if (cw_opts_apply(http_opts, &ho, http, NULL, d) != CW_OK)
        ok = false;
    else if (!webcfg_headers(http, &ho.headers, d))
        ok = false;
    if (cw_opts_apply(rate_opts, &rl, rate, NULL, d) != CW_OK) {
        ok = false;
    } else if (rl.interval > 0 && rl.burst < 1) {
        cw_diagf(d, webcfg_at(rate, "burst"),
                 "burst must be at least 1 when interval is set (0s disables the limit)");
        ok = false;
    }
    if (!webcfg_users(root, &ro.basic_auth_users, d))
        ok = false;

    c->http2 = ho.http2;
    strmap_move(&c->headers, &ho.headers);
    strmap_move(&c->users, &ro.basic_auth_users);
    c->client_allowed_sans = to.client_allowed_sans;
    memset(&to.client_allowed_sans, 0, sizeof(to.client_allowed_sans));
    c->rate_interval = rl.interval;
    c->rate_burst = rl.burst;

    wipe_string(to.key);
    cw_opts_release(tls_opts, &to);
    cw_opts_release(http_opts, &ho);
    cw_opts_release(root_opts, &ro);
    cw_opts_release(rate_opts, &rl);
    if (!ok) {
        cw_webcfg_free(c);
        return NULL;
    }
    return c;
}

struct cw_webcfg *cw_webcfg_parse(const char *file, const char *text, size_t len, unsigned flags,
                                  struct cw_diag *diag)
{
    struct cw_node *root;
    struct cw_webcfg *c;

    root = cw_node_parse(file, text, len, diag);
    if (root == NULL)
        return NULL;
    c = webcfg_from_node(root, flags, diag);
    cw_node_free(root);
    return c;
}

struct cw_webcfg *cw_webcfg_load(const char *path, struct cw_diag *diag)
{
    struct cw_node *root;
    struct cw_webcfg *c;

    root = cw_node_parse_file(path, diag);
    if (root == NULL)
        return NULL;
    c = webcfg_from_node(root, 0, diag);
    cw_node_free(root);
    return c;
}

static void strmap_free(struct cw_strmap *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

void cw_webcfg_free(struct cw_webcfg *c)
{
    size_t i;

    if (c == NULL)
        return;
    free(c->file);
    free(c->cert_pem);
    if (c->key_pem != NULL) {
        explicit_bzero(c->key_pem, c->key_len);
        free(c->key_pem);
    }
    free(c->client_ca_pem);
    free(c->priorities);
    for (i = 0; i < c->client_allowed_sans.n; i++)
        free(c->client_allowed_sans.items[i]);
    free(c->client_allowed_sans.items);
    strmap_free(&c->headers);
    strmap_free(&c->users);
    free(c);
}

/* ---- use ----------------------------------------------------------------- */

bool cw_webcfg_has_users(const struct cw_webcfg *c)
{
    return c != NULL && c->users.n > 0;
}

int cw_webcfg_check_password(const struct cw_webcfg *c, const char *user, const char *password,
                             bool *ok)
{
    struct crypt_data *cd;
    const char *hash = NULL;
    const char *out;
    size_t hlen;
    size_t i;

    *ok = false;
    if (!cw_webcfg_has_users(c))
        return CW_OK;
    for (i = 0; i < c->users.n; i++) {
        if (strcmp(c->users.keys[i], user) == 0) {
            hash = c->users.values[i];
            break;
        }
    }
    cd = calloc(1, sizeof(*cd));
    if (cd == NULL)
        return CW_ENOMEM;
    /* An unknown user still costs one bcrypt run, with the cost of a real
     * hash, so that response times do not reveal user names. */
    out = crypt_rn(password, hash != NULL ? hash : c->users.values[0], cd, (int)sizeof(*cd));
    if (hash != NULL && out != NULL) {
        hlen = strlen(hash);
        *ok = strlen(out) == hlen && CRYPTO_memcmp(out, hash, hlen) == 0;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return CW_OK;
}

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

bool cw_webcfg_tls_equal(const struct cw_webcfg *a, const struct cw_webcfg *b)
{
    bool ta = a != NULL && a->tls;
    bool tb = b != NULL && b->tls;
    size_t i;

    if (!ta || !tb)
        return ta == tb;
    if (!str_eq(a->cert_pem, b->cert_pem) || !str_eq(a->key_pem, b->key_pem) ||
        !str_eq(a->client_ca_pem, b->client_ca_pem) || a->client_auth != b->client_auth ||
        !str_eq(a->priorities, b->priorities) ||
        a->client_allowed_sans.n != b->client_allowed_sans.n)
        return false;
    for (i = 0; i < a->client_allowed_sans.n; i++) {
        if (strcmp(a->client_allowed_sans.items[i], b->client_allowed_sans.items[i]) != 0)
            return false;
    }
    return true;
}

const char *cw_webcfg_client_auth_name(enum cw_webcfg_client_auth a)
{
    switch (a) {
    case CW_CLIENT_AUTH_NONE:
        return "NoClientCert";
    case CW_CLIENT_AUTH_REQUEST:
        return "RequestClientCert";
    case CW_CLIENT_AUTH_REQUIRE_ANY:
        return "RequireAnyClientCert";
    case CW_CLIENT_AUTH_VERIFY_IF_GIVEN:
        return "VerifyClientCertIfGiven";
    case CW_CLIENT_AUTH_REQUIRE_AND_VERIFY:
        return "RequireAndVerifyClientCert";
    }
    return "?";
}
