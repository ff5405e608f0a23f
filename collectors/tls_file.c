/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls_file.c - the "tls_file" check: expiry of every certificate in PEM
 * files on disk (a path or a glob pattern; fullchain files hold several).
 *
 * Each run expands the pattern, reads each file (at most 4 MiB) and walks its
 * PEM blocks with cw_tls_pem_each(). A file that cannot be read fails the
 * check with reason "internal" (a local I/O problem, its cause in the log
 * detail); a file with no certificate or a malformed one fails it with
 * "protocol" (the content is not what a certificate file must hold). Either
 * way the other files are still reported. The state owns only its options;
 * run() is called by one scheduler worker at a time.
 */
#include "collectors/tlsinspect.h"
#include "exporter/check.h"
#include "exporter/core/buf.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_FILE_LIMIT ((size_t)4 * 1024 * 1024)
#define TLS_FILE_CERTS 64 /* certificates per file reported */

struct tls_file_state {
    char *path; /* owned */
};

static const struct cw_opt tls_file_opts[] = {
    CW_OPT("path", CW_OPT_T_STRING, struct tls_file_state, path, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT_END,
};

static const struct cw_desc desc_expiry = {
    .name = "connwatch_cert_file_expiry_timestamp_seconds",
    .help = "notAfter of each certificate in the file (Unix seconds); the earliest when a file "
            "holds several with the same subject.",
    .type = CW_GAUGE,
    .labels = {"path", "subject"},
    .nlabels = 2,
};
static const struct cw_desc desc_not_before = {
    .name = "connwatch_cert_file_not_before_timestamp_seconds",
    .help = "notBefore of each certificate in the file (Unix seconds).",
    .type = CW_GAUGE,
    .labels = {"path", "subject"},
    .nlabels = 2,
};
static const struct cw_desc desc_files = {
    .name = "connwatch_cert_files",
    .help = "Paths the pattern expanded to (the pattern itself when nothing matched).",
    .type = CW_GAUGE,
};

/* Certificates of one file, merged by subject. */
struct tls_file_acc {
    struct cw_tls_cert certs[TLS_FILE_CERTS];
    size_t n;
};

static int tls_file_add(void *arg, const struct cw_tls_cert *c)
{
    struct tls_file_acc *acc = arg;
    size_t i;

    for (i = 0; i < acc->n; i++) {
        if (strcmp(acc->certs[i].subject, c->subject) == 0) {
            if (c->not_after < acc->certs[i].not_after)
                acc->certs[i] = *c;
            return 0;
        }
    }
    if (acc->n < TLS_FILE_CERTS)
        acc->certs[acc->n++] = *c;
    return 0;
}

static int tls_file_configure(void *state, const struct cw_node *node,
                              const struct cw_check_info *info, struct cw_diag *diag)
{
    struct tls_file_state *st = state;
    int rc;

    (void)info;
    rc = cw_opts_apply(tls_file_opts, st, node, cw_check_common_keys, diag);
    if (rc != CW_OK)
        return rc;
    if (st->path[0] == '\0') {
        cw_diagf(diag, cw_node_get(node, "path"), "empty path");
        return CW_ECONFIG;
    }
    /* A relative path is relative to the configuration file, like every path option. */
    if (st->path[0] != '/') {
        char *dir = cw_node_dir(cw_node_get(node, "path"));
        char *full;
        size_t len;

        if (dir == NULL)
            return CW_ENOMEM;
        len = strlen(dir) + strlen(st->path) + 2;
        full = malloc(len);
        if (full == NULL) {
            free(dir);
            return CW_ENOMEM;
        }
        snprintf(full, len, "%s/%s", dir, st->path);
        free(dir);
        free(st->path);
        st->path = full;
    }
    return CW_OK;
}

static const char *tls_file_target(const void *state)
{
    const struct tls_file_state *st = state;

    return st->path;
}

static void tls_file_release(void *state)
{
    cw_opts_release(tls_file_opts, state);
}

static void tls_file_one(struct cw_run *run, const char *path, struct tls_file_acc *acc)
{
    struct cw_buf file;
    char why[160];
    size_t count = 0, i;
    int rc;

    cw_buf_init(&file, TLS_FILE_LIMIT);
    if (cw_buf_read_file(&file, path, why, sizeof(why)) != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "read %s: %s", path, why);
        cw_buf_reset(&file);
        return;
    }
    acc->n = 0;
    rc = cw_tls_pem_each(cw_buf_str(&file), file.len, tls_file_add, acc, &count);
    cw_buf_reset(&file);
    for (i = 0; i < acc->n; i++) {
        const char *lv[2] = {path, acc->certs[i].subject};

        cw_emit(run, &desc_expiry, (double)acc->certs[i].not_after, lv);
        cw_emit(run, &desc_not_before, (double)acc->certs[i].not_before, lv);
    }
    if (rc == CW_ENOMEM)
        cw_run_fail(run, CW_REASON_INTERNAL, "out of memory reading %s", path);
    else if (rc != CW_OK && count == 0)
        cw_run_fail(run, CW_REASON_PROTOCOL, "%s holds no PEM certificate", path);
    else if (rc != CW_OK)
        cw_run_fail(run, CW_REASON_PROTOCOL, "%s: certificate %zu is malformed", path, count + 1);
}

static void tls_file_run(void *state, struct cw_run *run)
{
    struct tls_file_state *st = state;
    struct tls_file_acc *acc;
    glob_t g;
    size_t i;
    int rc;

    acc = malloc(sizeof(*acc));
    if (acc == NULL) {
        cw_run_fail(run, CW_REASON_INTERNAL, "out of memory");
        return;
    }
    memset(&g, 0, sizeof(g));
    rc = glob(st->path, GLOB_ERR | GLOB_NOCHECK, NULL, &g);
    if (rc != 0) {
        cw_run_fail(run, CW_REASON_INTERNAL, "cannot expand %s", st->path);
        cw_emit(run, &desc_files, 0, NULL);
        goto out;
    }
    /* GLOB_NOCHECK: no match gives back the pattern itself, whose open() then
     * names the problem (ENOENT, EACCES). */
    cw_emit(run, &desc_files, (double)g.gl_pathc, NULL);
    for (i = 0; i < g.gl_pathc; i++)
        tls_file_one(run, g.gl_pathv[i], acc);
out:
    globfree(&g);
    free(acc);
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const tls_file_descs[] = {
    &desc_expiry,
    &desc_not_before,
    &desc_files,
    NULL,
};
const struct cw_check_kind cw_kind_tls_file = {
    .name = "tls_file",
    .layer = CW_LAYER_TLS,
    .state_size = sizeof(struct tls_file_state),
    .reasons = 1u << CW_REASON_PROTOCOL | 1u << CW_REASON_INTERNAL,
    .configure = tls_file_configure,
    .target = tls_file_target,
    .run = tls_file_run,
    .release = tls_file_release,
    .probe_option = NULL,
    .descs = {tls_file_descs},
};
