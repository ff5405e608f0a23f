/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls.c - the "tls" check: a TLS handshake with any TCP service (8443,
 * 993, 3306 behind a TLS proxy, ...) and the certificate series of
 * collectors/tlsinspect.c.
 *
 * Each run resolves the target (bounded by the deadline, collectors/netconn.c),
 * connects non-blocking to the first address, and runs SSL_connect()
 * non-blocking (cw_tls_handshake), polling until the run's deadline. The
 * handshake uses SSL_VERIFY_NONE: the chain is still verified by OpenSSL and
 * the result recorded (SSL_get_verify_result), so a bad certificate is
 * measured and reported with its reason instead of aborting the handshake.
 *
 * The state owns its SSL_CTX (built by configure() with the trust store and
 * client certificate) and a lookup that outlived a deadline; the process-wide shared
 * state holds the system trust store, loaded once and shared by reference.
 * run() is called by one scheduler worker at a time.
 */
#include "collectors/netconn.h"
#include "collectors/tlsinspect.h"
#include "exporter/check.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct tls_shared {
    pthread_mutex_t mu;
    X509_STORE *default_store; /* owned, under mu: system trust store, loaded on first use */
};

struct tls_state {
    struct cw_hostport target; /* owned (option table) */
    char *server_name;         /* owned (option table) */
    char *ca_file;             /* owned (option table) */
    char *cert_file;           /* owned (option table) */
    char *key_file;            /* owned (option table) */
    bool insecure;
    int ip_family; /* enum cw_net_family */

    SSL_CTX *ctx;                 /* owned */
    struct cw_net_lookup *lookup; /* owned: a lookup that outlived its run, or NULL */
    struct cw_tls_facts facts;
};

static const struct cw_opt tls_opts[] = {
    CW_OPT("target", CW_OPT_T_HOSTPORT, struct tls_state, target, NULL, 443, 0, CW_OPT_REQUIRED),
    CW_OPT("server_name", CW_OPT_T_HOST, struct tls_state, server_name, NULL, 0, 0, 0),
    CW_OPT("ca_file", CW_OPT_T_PATH, struct tls_state, ca_file, NULL, 0, 0, 0),
    CW_OPT("cert_file", CW_OPT_T_PATH, struct tls_state, cert_file, NULL, 0, 0, 0),
    CW_OPT("key_file", CW_OPT_T_PATH, struct tls_state, key_file, NULL, 0, 0, 0),
    CW_OPT("insecure_skip_verify", CW_OPT_T_BOOL, struct tls_state, insecure, "false", 0, 0, 0),
    CW_OPT_ENUM("ip_family", struct tls_state, ip_family, "auto", cw_net_family_names, 0),
    CW_OPT_END,
};

static const struct cw_desc desc_connect = {
    .name = "connwatch_tls_connect_seconds",
    .help = "Time to establish the TCP connection (after name resolution).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_handshake = {
    .name = "connwatch_tls_handshake_seconds",
    .help = "Time of the TLS handshake.",
    .type = CW_GAUGE,
};

static void *tls_shared_new(void)
{
    struct tls_shared *sh = calloc(1, sizeof(*sh));

    if (sh == NULL)
        return NULL;
    if (pthread_mutex_init(&sh->mu, NULL) != 0) {
        free(sh);
        return NULL;
    }
    return sh;
}

static void tls_shared_free(void *p)
{
    struct tls_shared *sh = p;

    if (sh == NULL)
        return;
    X509_STORE_free(sh->default_store);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

static X509_STORE *tls_default_store(struct tls_shared *sh)
{
    return cw_tls_system_store(&sh->mu, &sh->default_store);
}

static int tls_configure(void *state, const struct cw_node *node, const struct cw_check_info *info,
                         struct cw_diag *diag)
{
    struct tls_state *st = state;
    const char *why;
    int rc;

    rc = cw_opts_apply(tls_opts, st, node, cw_check_common_keys, diag);
    if (rc != CW_OK)
        return rc;
    if (info->shared == NULL) {
        cw_diagf(diag, node, "out of memory");
        return CW_ENOMEM;
    }
    if ((st->cert_file == NULL) != (st->key_file == NULL)) {
        cw_diagf(diag, node, "cert_file and key_file go together");
        return CW_ECONFIG;
    }
    st->ctx =
        cw_tls_client_ctx(st->ca_file, st->ca_file == NULL ? tls_default_store(info->shared) : NULL,
                          st->cert_file, st->key_file, &why);
    if (st->ctx == NULL) {
        cw_diagf(diag, node, "%s", why);
        return CW_ECONFIG;
    }
    return CW_OK;
}

static const char *tls_target(const void *state)
{
    const struct tls_state *st = state;

    return st->target.text;
}

static void tls_release(void *state)
{
    struct tls_state *st = state;

    SSL_CTX_free(st->ctx);
    cw_net_lookup_abandon(&st->lookup);
    cw_opts_release(tls_opts, st);
}

static void tls_run(void *state, struct cw_run *run)
{
    struct tls_state *st = state;
    struct cw_net_conn c = {.fd = -1};
    struct cw_net_fail f;
    char detail[256];
    const char *why, *name;
    enum cw_reason r;
    cw_mono t1;

    memset(&st->facts, 0, sizeof(st->facts));
    if (!cw_net_dial(st->target.host, st->target.port, st->ip_family, 1, cw_run_deadline(run),
                     &st->lookup, &c, &f)) {
        cw_run_fail(run, f.reason, "%s", f.detail);
        goto out;
    }
    cw_emit(run, &desc_connect, cw_seconds(c.elapsed), NULL);
    name = st->server_name != NULL ? st->server_name : st->target.host;
    t1 = cw_now();
    r = cw_tls_handshake(st->ctx, c.fd, name, cw_run_deadline(run), &st->facts, detail,
                         sizeof(detail));
    if (r != CW_REASON_NONE) {
        cw_run_fail(run, r, "%s", detail);
        goto out;
    }
    cw_emit(run, &desc_handshake, cw_seconds(cw_now() - t1), NULL);
    if (!st->insecure) {
        r = cw_tls_facts_reason(&st->facts, &why);
        if (r != CW_REASON_NONE)
            cw_run_fail(run, r, "%s", why);
    }
out:
    if (c.fd >= 0)
        (void)close(c.fd);
    cw_tls_emit(run, &st->facts, st->insecure);
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const tls_descs[] = {
    &desc_connect,
    &desc_handshake,
    NULL,
};
const struct cw_check_kind cw_kind_tls = {
    .name = "tls",
    .layer = CW_LAYER_TLS,
    .state_size = sizeof(struct tls_state),
    .reasons = 1u << CW_REASON_DNS | 1u << CW_REASON_REFUSED | 1u << CW_REASON_TIMEOUT |
               1u << CW_REASON_UNREACHABLE | 1u << CW_REASON_TLS_HANDSHAKE |
               1u << CW_REASON_CERT_EXPIRED | 1u << CW_REASON_CERT_NOT_YET_VALID |
               1u << CW_REASON_CERT_UNTRUSTED | 1u << CW_REASON_CERT_HOSTNAME |
               1u << CW_REASON_INTERNAL,
    .configure = tls_configure,
    .target = tls_target,
    .run = tls_run,
    .release = tls_release,
    .shared_new = tls_shared_new,
    .shared_free = tls_shared_free,
    .probe_option = "target",
    .descs = {tls_descs, cw_tls_descs},
};
