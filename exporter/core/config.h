/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - YAML into a position-keeping node tree, diagnostics, and typed
 * option tables.
 *
 * cw_node_parse() turns YAML text (libyaml) into a tree of cw_node, each
 * knowing its file, line, column and field path ("services[0].checks[2].http.url").
 * Option tables (struct cw_opt) describe what a section accepts: type, where
 * it is stored, default, bounds. cw_opts_apply() checks a mapping node
 * against a table and fills a struct, recording every problem in a cw_diag
 * as "file:line:col: path: message". Nothing here exits or logs.
 *
 * Ownership: a node tree is owned by whoever called cw_node_parse() and freed
 * with cw_node_free(); option values (strings, lists) are owned by the
 * destination struct and freed with cw_opts_release().
 */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include "clock.h"
#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cw_node_type { CW_NODE_SCALAR, CW_NODE_MAP, CW_NODE_SEQ };

struct cw_node {
    enum cw_node_type type;
    const char *file; /* borrowed from the tree's root; valid while the tree lives */
    unsigned line;    /* 1-based */
    unsigned col;     /* 1-based */
    unsigned kline;   /* position of the key of this node in its map (= line/col otherwise) */
    unsigned kcol;
    char *path;             /* owned: field path from the root, "" for the root */
    char *scalar;           /* owned: CW_NODE_SCALAR value */
    bool quoted;            /* scalar was quoted (so "null" or "1" stay strings) */
    char *key;              /* owned: key under which this node sits in its map, or NULL */
    struct cw_node **items; /* owned: children of a MAP (values, with ->key) or SEQ */
    size_t nitems;
};

struct cw_diag_entry {
    char *text; /* owned: "file:line:col: path: message" */
};

/* struct cw_diag collects the errors of one load. */
struct cw_diag {
    struct cw_diag_entry *entries; /* owned */
    size_t n;
    size_t cap;
};

void cw_diag_init(struct cw_diag *d);
void cw_diag_reset(struct cw_diag *d);

/* cw_diagf() records one error at the position of 'at' ("file:line:col: path: ...").
 * 'at' may be NULL (then only the message is recorded). Allocation failure of
 * the diagnostic itself is recorded as a fixed "out of memory" entry. */
void cw_diagf(struct cw_diag *d, const struct cw_node *at, const char *fmt, ...) CW_PRINTF(3, 4);

/* cw_diagf_key() is cw_diagf() at the position of the node's key (unknown
 * or duplicate keys). */
void cw_diagf_key(struct cw_diag *d, const struct cw_node *at, const char *fmt, ...)
    CW_PRINTF(3, 4);

/* cw_diag_fileerr() records an error about a whole file ("file: message"). */
void cw_diag_fileerr(struct cw_diag *d, const char *file, const char *fmt, ...) CW_PRINTF(3, 4);

/* cw_node_parse() parses 'len' bytes of YAML text named 'file' (the name is
 * copied). Returns the root node, or NULL with errors in 'diag' (syntax
 * errors carry the parser's position; duplicate keys and aliases that expand
 * too far are errors too). An empty document yields an empty map. */
struct cw_node *cw_node_parse(const char *file, const char *text, size_t len, struct cw_diag *diag);

/* cw_node_parse_file() reads 'path' (a regular file of at most 32 MiB;
 * FIFOs and devices are refused without blocking) and parses it. The
 * limits of a document are listed in config.c and the README. */
struct cw_node *cw_node_parse_file(const char *path, struct cw_diag *diag);

/* cw_node_free() frees a tree; NULL is fine. */
void cw_node_free(struct cw_node *n);

/* cw_node_get() returns the value under 'key' in a MAP, or NULL. */
const struct cw_node *cw_node_get(const struct cw_node *map, const char *key);

/* cw_node_fingerprint() appends a canonical serialisation of 'n' (keys in
 * order, positions ignored) to 'out'; equal configs give equal text. */
struct cw_buf;
CW_MUST_CHECK int cw_node_fingerprint(const struct cw_node *n, struct cw_buf *out);

/* cw_node_is_null() tells whether a scalar is YAML null ("", "~", "null"
 * unquoted). */
bool cw_node_is_null(const struct cw_node *n);

/* cw_node_dir() returns the directory of the file 'n' came from ("." when
 * it has none), in a malloc'ed string, or NULL. */
char *cw_node_dir(const struct cw_node *n);

/* cw_node_path() resolves the file name 'p' given at node 'n': absolute as
 * it is, else relative to cw_node_dir(n); a malloc'ed string, or NULL. */
char *cw_node_path(const struct cw_node *n, const char *p);

/* cw_node_type_name() returns "string", "mapping" or "list". */
const char *cw_node_type_name(const struct cw_node *n);

/* ---- Typed option tables ------------------------------------------------- */

enum cw_opt_type {
    CW_OPT_T_END = 0,
    CW_OPT_T_STRING,      /* char *                                           */
    CW_OPT_T_BOOL,        /* bool                                             */
    CW_OPT_T_DURATION,    /* cw_duration; bounds in ns                        */
    CW_OPT_T_INT,         /* int64_t; bounds                                  */
    CW_OPT_T_DOUBLE,      /* double; bounds                                   */
    CW_OPT_T_ENUM,        /* int: index into opt->choices                     */
    CW_OPT_T_STRING_LIST, /* struct cw_strlist                                */
    CW_OPT_T_INT_LIST,    /* struct cw_intlist; bounds apply to each item     */
    CW_OPT_T_DOUBLE_LIST, /* struct cw_doublelist; bounds apply to each item  */
    CW_OPT_T_STRING_MAP,  /* struct cw_strmap                                 */
    CW_OPT_T_HOSTPORT,    /* struct cw_hostport; opt->min is the default port */
    CW_OPT_T_HOST,        /* char *: IPv4, IPv6 or a DNS name                 */
    CW_OPT_T_URL,         /* char *: http:// or https:// with a host          */
    CW_OPT_T_SECRET,      /* struct cw_secret: inline "${ENV}" only           */
    CW_OPT_T_SECRET_FILE, /* struct cw_secret: read from the named file       */
    CW_OPT_T_PATH,        /* char *: a path that must exist and be readable   */
};

#define CW_OPT_REQUIRED 0x1u

struct cw_opt {
    const char *name;
    enum cw_opt_type type;
    size_t offset;              /* where in the destination struct */
    const char *def;            /* default as YAML text, or NULL (zero value) */
    double min, max;            /* bounds for numbers, durations (ns), list items; 0,0 = none */
    unsigned flags;             /* CW_OPT_REQUIRED */
    const char *const *choices; /* CW_OPT_T_ENUM: NULL-terminated */
};

struct cw_strlist {
    char **items; /* owned */
    size_t n;
};

struct cw_intlist {
    int64_t *items; /* owned */
    size_t n;
};

struct cw_doublelist {
    double *items; /* owned */
    size_t n;
};

struct cw_strmap {
    char **keys;   /* owned, in file order, unique */
    char **values; /* owned */
    size_t n;
};

struct cw_hostport {
    char *host; /* owned; IPv6 without brackets */
    unsigned port;
    char *text; /* owned: "host:port" as written (brackets kept) */
};

/* A secret prints as <secret>; its bytes are wiped on release. */
struct cw_secret {
    char *value; /* owned; NULL when unset */
    size_t len;
};

#define CW_OPT(n, t, st, field, d, lo, hi, fl)                                                     \
    {                                                                                              \
        .name = (n), .type = (t), .offset = offsetof(st, field), .def = (d), .min = (lo),          \
        .max = (hi), .flags = (fl)                                                                 \
    }
#define CW_OPT_ENUM(n, st, field, d, ch, fl)                                                       \
    {                                                                                              \
        .name = (n), .type = CW_OPT_T_ENUM, .offset = offsetof(st, field), .def = (d),             \
        .flags = (fl), .choices = (ch)                                                             \
    }
#define CW_OPT_END                                                                                 \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* cw_opts_apply() reads mapping 'node' into 'dst' according to 'opts':
 * defaults first, then each key. Unknown keys (other than those in
 * 'also_known', a NULL-terminated list of keys handled by the caller, or
 * NULL), wrong types, out-of-range values and missing required keys are
 * recorded in 'diag'. Returns CW_OK or CW_ECONFIG. 'node' may be NULL
 * (defaults only). On CW_ECONFIG, 'dst' may be partly filled: release it
 * with cw_opts_release(). */
CW_MUST_CHECK int cw_opts_apply(const struct cw_opt *opts, void *dst, const struct cw_node *node,
                                const char *const *also_known, struct cw_diag *diag);

/* cw_opts_release() frees every value 'opts' put into 'dst' and zeroes them. */
void cw_opts_release(const struct cw_opt *opts, void *dst);

/* cw_secret_wipe() zeroes and frees a secret. */
void cw_secret_wipe(struct cw_secret *s);

/* cw_hostport_parse() parses "host:port", "[v6]:port", or a bare host when
 * default_port != 0. Returns CW_OK or CW_EPARSE with a reason in *why. */
CW_MUST_CHECK int cw_hostport_parse(const char *s, unsigned default_port, struct cw_hostport *out,
                                    const char **why);
void cw_hostport_reset(struct cw_hostport *hp);

/* cw_host_is_valid() accepts IPv4/IPv6 literals and RFC 1123 host names. */
bool cw_host_is_valid(const char *s);

#endif
