/* SPDX-License-Identifier: Apache-2.0 */
/*
 * opts.c - typed option tables: node -> struct, with every problem recorded
 * as "file:line:col: path: message". Defaults come from the table only.
 * Thread-safe on distinct destinations.
 */
#include "buf.h"
#include "config.h"
#include "num.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_MAX (64u * 1024)

static void *field(void *dst, const struct cw_opt *o)
{
    return (char *)dst + o->offset;
}

static bool has_bounds(const struct cw_opt *o)
{
    return o->min != 0 || o->max != 0;
}

static void opt_free_value(const struct cw_opt *o, void *dst)
{
    void *f = field(dst, o);
    size_t i;

    switch (o->type) {
    case CW_OPT_T_STRING:
    case CW_OPT_T_HOST:
    case CW_OPT_T_URL:
    case CW_OPT_T_PATH: {
        char **s = f;

        free(*s);
        *s = NULL;
        break;
    }
    case CW_OPT_T_STRING_LIST: {
        struct cw_strlist *l = f;

        for (i = 0; i < l->n; i++)
            free(l->items[i]);
        free(l->items);
        l->items = NULL;
        l->n = 0;
        break;
    }
    case CW_OPT_T_INT_LIST: {
        struct cw_intlist *l = f;

        free(l->items);
        l->items = NULL;
        l->n = 0;
        break;
    }
    case CW_OPT_T_DOUBLE_LIST: {
        struct cw_doublelist *l = f;

        free(l->items);
        l->items = NULL;
        l->n = 0;
        break;
    }
    case CW_OPT_T_STRING_MAP: {
        struct cw_strmap *m = f;

        for (i = 0; i < m->n; i++) {
            free(m->keys[i]);
            free(m->values[i]);
        }
        free(m->keys);
        free(m->values);
        m->keys = NULL;
        m->values = NULL;
        m->n = 0;
        break;
    }
    case CW_OPT_T_HOSTPORT:
        cw_hostport_reset(f);
        break;
    case CW_OPT_T_SECRET:
    case CW_OPT_T_SECRET_FILE:
        cw_secret_wipe(f);
        break;
    default:
        break;
    }
}

void cw_opts_release(const struct cw_opt *opts, void *dst)
{
    const struct cw_opt *o;

    for (o = opts; o->name != NULL; o++)
        opt_free_value(o, dst);
}

void cw_secret_wipe(struct cw_secret *s)
{
    if (s->value != NULL) {
        explicit_bzero(s->value, s->len);
        free(s->value);
    }
    s->value = NULL;
    s->len = 0;
}

void cw_hostport_reset(struct cw_hostport *hp)
{
    free(hp->host);
    free(hp->text);
    hp->host = NULL;
    hp->text = NULL;
    hp->port = 0;
}

bool cw_host_is_valid(const char *s)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    size_t label = 0;
    size_t len = strlen(s);
    const char *p;
    bool all_numeric = true;

    if (inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1)
        return true;
    if (len == 0 || len > 253)
        return false;
    for (p = s; *p != '\0'; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
        if (*p == '-' && label == 0)
            return false;
        if (!isdigit((unsigned char)*p))
            all_numeric = false;
        if (++label > 63)
            return false;
    }
    /* "300.1.2.3" and friends are bad IPv4 addresses, not host names. */
    return !all_numeric;
}

int cw_hostport_parse(const char *s, unsigned default_port, struct cw_hostport *out,
                      const char **why)
{
    const char *host = s;
    size_t hostlen;
    const char *portstr = NULL;
    uint64_t port = default_port;

    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL) {
            *why = "missing ']' after an IPv6 address";
            return CW_EPARSE;
        }
        host = s + 1;
        hostlen = (size_t)(close - host);
        if (close[1] == ':')
            portstr = close + 2;
        else if (close[1] != '\0') {
            *why = "unexpected text after ']'";
            return CW_EPARSE;
        }
    } else {
        const char *colon = strrchr(s, ':');

        if (colon != NULL && strchr(s, ':') != colon) {
            /* Several colons and no brackets: a bare IPv6 address. */
            colon = NULL;
        }
        hostlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
        if (colon != NULL)
            portstr = colon + 1;
    }
    if (portstr != NULL) {
        if (cw_parse_u64(portstr, strlen(portstr), &port) != CW_OK || port == 0 || port > 65535) {
            *why = "port must be a number from 1 to 65535";
            return CW_EPARSE;
        }
    } else if (default_port == 0) {
        *why = "missing port (write host:port)";
        return CW_EPARSE;
    }
    out->host = strndup(host, hostlen);
    if (out->host == NULL)
        return CW_ENOMEM;
    if (hostlen == 0 || !cw_host_is_valid(out->host)) {
        *why = hostlen == 0 ? "missing host" : "not a valid IP address or host name";
        cw_hostport_reset(out);
        return CW_EPARSE;
    }
    out->port = (unsigned)port;
    out->text = strdup(s);
    if (out->text == NULL) {
        cw_hostport_reset(out);
        return CW_ENOMEM;
    }
    return CW_OK;
}

/* ---- conversion of one value --------------------------------------------- */

static bool want_scalar(const struct cw_node *n, const char *what, struct cw_diag *d)
{
    if (n->type != CW_NODE_SCALAR) {
        cw_diagf(d, n, "must be %s, not a %s", what, cw_node_type_name(n));
        return false;
    }
    if (cw_node_is_null(n)) {
        cw_diagf(d, n, "missing value (expected %s)", what);
        return false;
    }
    return true;
}

static int parse_int(const struct cw_node *n, const struct cw_opt *o, int64_t *out,
                     struct cw_diag *d)
{
    char *end;
    long long v;

    if (!want_scalar(n, "an integer", d))
        return CW_ECONFIG;
    errno = 0;
    v = strtoll(n->scalar, &end, 10);
    if (*end != '\0' || errno != 0 || end == n->scalar) {
        cw_diagf(d, n, "\"%s\" is not an integer", n->scalar);
        return CW_ECONFIG;
    }
    if (has_bounds(o) && ((double)v < o->min || (double)v > o->max)) {
        cw_diagf(d, n, "%lld is out of range (%.0f to %.0f)", v, o->min, o->max);
        return CW_ECONFIG;
    }
    *out = v;
    return CW_OK;
}

static int read_secret_file(const struct cw_node *n, const char *path, struct cw_secret *s,
                            struct cw_diag *d)
{
    struct cw_buf b;
    char why[160];
    size_t len;

    cw_buf_init(&b, SECRET_MAX);
    if (cw_buf_read_file(&b, path, why, sizeof(why)) != CW_OK) {
        cw_diagf(d, n, "cannot read %s: %s", path, why);
        goto out_fail;
    }
    /* Files written by editors and echo end with a newline that is not part of the secret. */
    len = b.len;
    while (len > 0 && (b.data[len - 1] == '\n' || b.data[len - 1] == '\r'))
        len--;
    if (len == 0) {
        cw_diagf(d, n, "%s is empty", path);
        cw_buf_reset(&b);
        return CW_ECONFIG;
    }
    if (cw_buf_setlen(&b, len) != CW_OK) /* a cut: cannot fail */
        goto out_fail;
    s->value = cw_buf_take(&b, &s->len);
    return CW_OK;

out_fail:
    if (b.data != NULL)
        explicit_bzero(b.data, b.cap);
    cw_buf_reset(&b);
    return CW_ECONFIG;
}

/* ---- one converter per option type ------------------------------------
 * Each converts node 'n' for option 'o' into its field 'f' (already freed),
 * and returns CW_OK, CW_ECONFIG with the problem in 'd', or CW_ENOMEM. */

/* set_copy() stores a copy of the scalar. */
static int set_copy(void *f, const struct cw_node *n)
{
    *(char **)f = strdup(n->scalar);
    return *(char **)f != NULL ? CW_OK : CW_ENOMEM;
}

static int set_string(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    (void)o;
    if (!want_scalar(n, "a string", d))
        return CW_ECONFIG;
    return set_copy(f, n);
}

static int set_bool(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    (void)o;
    if (!want_scalar(n, "true or false", d))
        return CW_ECONFIG;
    if (strcmp(n->scalar, "true") == 0 || strcmp(n->scalar, "True") == 0 ||
        strcmp(n->scalar, "TRUE") == 0) {
        *(bool *)f = true;
    } else if (strcmp(n->scalar, "false") == 0 || strcmp(n->scalar, "False") == 0 ||
               strcmp(n->scalar, "FALSE") == 0) {
        *(bool *)f = false;
    } else {
        cw_diagf(d, n, "\"%s\" is not true or false", n->scalar);
        return CW_ECONFIG;
    }
    return CW_OK;
}

static int set_duration(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    char dbuf[64];
    cw_duration v;

    if (!want_scalar(n, "a duration", d))
        return CW_ECONFIG;
    if (cw_duration_parse(n->scalar, &v) != CW_OK) {
        cw_diagf(d, n, "\"%s\" is not a duration (use e.g. 15s, 1m30s, 250ms)", n->scalar);
        return CW_ECONFIG;
    }
    if (has_bounds(o) && (double)v < o->min) {
        cw_diagf(d, n, "%s is below the minimum %s", n->scalar,
                 cw_duration_format((cw_duration)o->min, dbuf, sizeof(dbuf)));
        return CW_ECONFIG;
    }
    if (has_bounds(o) && (double)v > o->max) {
        cw_diagf(d, n, "%s is above the maximum %s", n->scalar,
                 cw_duration_format((cw_duration)o->max, dbuf, sizeof(dbuf)));
        return CW_ECONFIG;
    }
    *(cw_duration *)f = v;
    return CW_OK;
}

static int set_int(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    return parse_int(n, o, f, d);
}

/* parse_double() reads a finite number within o's bounds from scalar 'n'. */
static int parse_double(const struct cw_node *n, const struct cw_opt *o, double *out,
                        struct cw_diag *d)
{
    char *end;
    double v;

    if (!want_scalar(n, "a number", d))
        return CW_ECONFIG;
    errno = 0;
    v = strtod(n->scalar, &end);
    if (*end != '\0' || end == n->scalar || errno != 0 || !isfinite(v)) {
        cw_diagf(d, n, "\"%s\" is not a number", n->scalar);
        return CW_ECONFIG;
    }
    if (has_bounds(o) && (v < o->min || v > o->max)) {
        cw_diagf(d, n, "%s is out of range (%g to %g)", n->scalar, o->min, o->max);
        return CW_ECONFIG;
    }
    *out = v;
    return CW_OK;
}

static int set_double(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    return parse_double(n, o, (double *)f, d);
}

static int set_enum(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    struct cw_buf b;
    size_t i;

    if (!want_scalar(n, "one of the listed values", d))
        return CW_ECONFIG;
    for (i = 0; o->choices[i] != NULL; i++) {
        if (strcmp(n->scalar, o->choices[i]) == 0) {
            *(int *)f = (int)i;
            return CW_OK;
        }
    }
    cw_buf_init(&b, 4096);
    for (i = 0; o->choices[i] != NULL; i++) {
        if (cw_buf_addf(&b, "%s%s", i != 0 ? ", " : "", o->choices[i]) != CW_OK)
            break;
    }
    cw_diagf(d, n, "\"%s\" is not one of: %s", n->scalar, cw_buf_str(&b));
    cw_buf_reset(&b);
    return CW_ECONFIG;
}

static int set_string_list(const struct cw_opt *o, void *f, const struct cw_node *n,
                           struct cw_diag *d)
{
    struct cw_strlist *l = f;
    size_t i;

    (void)o;
    if (n->type != CW_NODE_SEQ) {
        cw_diagf(d, n, "must be a list of strings, not a %s", cw_node_type_name(n));
        return CW_ECONFIG;
    }
    l->items = calloc(n->nitems ? n->nitems : 1, sizeof(*l->items));
    if (l->items == NULL)
        return CW_ENOMEM;
    for (i = 0; i < n->nitems; i++) {
        if (!want_scalar(n->items[i], "a string", d))
            return CW_ECONFIG;
        l->items[i] = strdup(n->items[i]->scalar);
        if (l->items[i] == NULL)
            return CW_ENOMEM;
        l->n = i + 1;
    }
    return CW_OK;
}

static int set_int_list(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    struct cw_intlist *l = f;
    int rc = CW_OK;
    size_t i;

    if (n->type != CW_NODE_SEQ) {
        cw_diagf(d, n, "must be a list of integers, not a %s", cw_node_type_name(n));
        return CW_ECONFIG;
    }
    l->items = calloc(n->nitems ? n->nitems : 1, sizeof(*l->items));
    if (l->items == NULL)
        return CW_ENOMEM;
    for (i = 0; i < n->nitems; i++) {
        if (parse_int(n->items[i], o, &l->items[i], d) != CW_OK)
            rc = CW_ECONFIG;
    }
    l->n = n->nitems;
    return rc;
}

static int set_double_list(const struct cw_opt *o, void *f, const struct cw_node *n,
                           struct cw_diag *d)
{
    struct cw_doublelist *l = f;
    int rc = CW_OK;
    size_t i;

    if (n->type != CW_NODE_SEQ) {
        cw_diagf(d, n, "must be a list of numbers, not a %s", cw_node_type_name(n));
        return CW_ECONFIG;
    }
    l->items = calloc(n->nitems ? n->nitems : 1, sizeof(*l->items));
    if (l->items == NULL)
        return CW_ENOMEM;
    for (i = 0; i < n->nitems; i++) {
        if (parse_double(n->items[i], o, &l->items[i], d) != CW_OK)
            rc = CW_ECONFIG;
    }
    l->n = n->nitems;
    return rc;
}

static int set_string_map(const struct cw_opt *o, void *f, const struct cw_node *n,
                          struct cw_diag *d)
{
    struct cw_strmap *m = f;
    size_t i;

    (void)o;
    if (n->type != CW_NODE_MAP) {
        cw_diagf(d, n, "must be a mapping of strings, not a %s", cw_node_type_name(n));
        return CW_ECONFIG;
    }
    m->keys = calloc(n->nitems ? n->nitems : 1, sizeof(*m->keys));
    m->values = calloc(n->nitems ? n->nitems : 1, sizeof(*m->values));
    if (m->keys == NULL || m->values == NULL)
        return CW_ENOMEM;
    for (i = 0; i < n->nitems; i++) {
        if (n->items[i]->type != CW_NODE_SCALAR) {
            cw_diagf(d, n->items[i], "must be a string, not a %s", cw_node_type_name(n->items[i]));
            return CW_ECONFIG;
        }
        m->keys[i] = strdup(n->items[i]->key);
        m->values[i] = strdup(n->items[i]->scalar);
        m->n = i + 1;
        if (m->keys[i] == NULL || m->values[i] == NULL)
            return CW_ENOMEM;
    }
    return CW_OK;
}

static int set_hostport(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    const char *why = NULL;
    int rc;

    if (!want_scalar(n, "an address (host:port)", d))
        return CW_ECONFIG;
    rc = cw_hostport_parse(n->scalar, (unsigned)o->min, f, &why);
    if (rc == CW_EPARSE) {
        cw_diagf(d, n, "\"%s\": %s", n->scalar, why);
        return CW_ECONFIG;
    }
    return rc;
}

static int set_host(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    (void)o;
    if (!want_scalar(n, "a host name or IP address", d))
        return CW_ECONFIG;
    if (!cw_host_is_valid(n->scalar)) {
        cw_diagf(d, n, "\"%s\" is not a valid IP address or host name", n->scalar);
        return CW_ECONFIG;
    }
    return set_copy(f, n);
}

static int set_url(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    const char *rest;
    size_t hostlen;

    (void)o;
    if (!want_scalar(n, "a URL", d))
        return CW_ECONFIG;
    if (strncmp(n->scalar, "http://", 7) == 0) {
        rest = n->scalar + 7;
    } else if (strncmp(n->scalar, "https://", 8) == 0) {
        rest = n->scalar + 8;
    } else if (strstr(n->scalar, "://") != NULL) {
        cw_diagf(d, n, "unsupported scheme (use http:// or https://)");
        return CW_ECONFIG;
    } else {
        cw_diagf(d, n, "missing scheme (use http:// or https://)");
        return CW_ECONFIG;
    }
    hostlen = strcspn(rest, "/?#");
    if (hostlen == 0 || rest[0] == ':') {
        cw_diagf(d, n, "missing host");
        return CW_ECONFIG;
    }
    if (strpbrk(n->scalar, " \t\r\n") != NULL) {
        cw_diagf(d, n, "URL contains white space");
        return CW_ECONFIG;
    }
    return set_copy(f, n);
}

static int set_secret(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    struct cw_secret *s = f;
    const char *v;
    size_t len;
    char name[256];

    if (!want_scalar(n, "${ENVIRONMENT_VARIABLE}", d))
        return CW_ECONFIG;
    len = strlen(n->scalar);
    if (len < 4 || strncmp(n->scalar, "${", 2) != 0 || n->scalar[len - 1] != '}' ||
        len - 3 >= sizeof(name)) {
        cw_diagf(d, n, "write secrets as ${ENVIRONMENT_VARIABLE} or in a file (%s_file)", o->name);
        return CW_ECONFIG;
    }
    memcpy(name, n->scalar + 2, len - 3);
    name[len - 3] = '\0';
    v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        cw_diagf(d, n, "environment variable %s is not set", name);
        return CW_ECONFIG;
    }
    s->value = strdup(v);
    s->len = strlen(v);
    return s->value != NULL ? CW_OK : CW_ENOMEM;
}

/* set_path() serves CW_OPT_T_PATH (a readable file, its resolved path kept)
 * and CW_OPT_T_SECRET_FILE (the file's contents kept). */
static int set_path(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d)
{
    char errbuf[128];
    char *path;
    int rc;

    if (!want_scalar(n, "a file path", d))
        return CW_ECONFIG;
    path = cw_node_path(n, n->scalar);
    if (path == NULL)
        return CW_ENOMEM;
    if (o->type == CW_OPT_T_SECRET_FILE) {
        rc = read_secret_file(n, path, f, d);
        free(path);
        return rc;
    }
    if (access(path, R_OK) != 0) {
        cw_diagf(d, n, "cannot read %s: %s", path, cw_strerror_r(errno, errbuf, sizeof(errbuf)));
        free(path);
        return CW_ECONFIG;
    }
    *(char **)f = path;
    return CW_OK;
}

typedef int opt_setter(const struct cw_opt *o, void *f, const struct cw_node *n, struct cw_diag *d);

static opt_setter *const opt_setters[] = {
    [CW_OPT_T_STRING] = set_string,
    [CW_OPT_T_BOOL] = set_bool,
    [CW_OPT_T_DURATION] = set_duration,
    [CW_OPT_T_INT] = set_int,
    [CW_OPT_T_DOUBLE] = set_double,
    [CW_OPT_T_ENUM] = set_enum,
    [CW_OPT_T_STRING_LIST] = set_string_list,
    [CW_OPT_T_INT_LIST] = set_int_list,
    [CW_OPT_T_DOUBLE_LIST] = set_double_list,
    [CW_OPT_T_STRING_MAP] = set_string_map,
    [CW_OPT_T_HOSTPORT] = set_hostport,
    [CW_OPT_T_HOST] = set_host,
    [CW_OPT_T_URL] = set_url,
    [CW_OPT_T_SECRET] = set_secret,
    [CW_OPT_T_SECRET_FILE] = set_path,
    [CW_OPT_T_PATH] = set_path,
};

/* opt_set() converts node 'n' for option 'o' into 'dst'. */
static int opt_set(const struct cw_opt *o, void *dst, const struct cw_node *n, struct cw_diag *d)
{
    opt_setter *set = (size_t)o->type < CW_ARRAY_LEN(opt_setters) ? opt_setters[o->type] : NULL;

    opt_free_value(o, dst);
    return set != NULL ? set(o, field(dst, o), n, d) : CW_EINVAL;
}

static bool in_list(const char *const *list, const char *s)
{
    for (; list != NULL && *list != NULL; list++) {
        if (strcmp(*list, s) == 0)
            return true;
    }
    return false;
}

int cw_opts_apply(const struct cw_opt *opts, void *dst, const struct cw_node *node,
                  const char *const *also_known, struct cw_diag *diag)
{
    const struct cw_opt *o;
    size_t i;
    int rc = CW_OK;

    if (node != NULL && cw_node_is_null(node))
        node = NULL;
    if (node != NULL && node->type != CW_NODE_MAP) {
        cw_diagf(diag, node, "must be a mapping, not a %s", cw_node_type_name(node));
        return CW_ECONFIG;
    }

    /* Defaults, parsed by the same code as user values. */
    for (o = opts; o->name != NULL; o++) {
        struct cw_diag dd;
        struct cw_node *def;

        if (o->def == NULL || cw_node_get(node, o->name) != NULL)
            continue;
        cw_diag_init(&dd);
        def = cw_node_parse("<default>", o->def, strlen(o->def), &dd);
        if (def == NULL || opt_set(o, dst, def, &dd) != CW_OK) {
            cw_diagf(diag, node, "internal error: bad default for %s", o->name);
            rc = CW_ECONFIG;
        }
        cw_node_free(def);
        cw_diag_reset(&dd);
    }

    for (i = 0; node != NULL && i < node->nitems; i++) {
        const struct cw_node *c = node->items[i];
        int r;

        for (o = opts; o->name != NULL; o++) {
            if (strcmp(o->name, c->key) == 0)
                break;
        }
        if (o->name == NULL) {
            if (!in_list(also_known, c->key)) {
                cw_diagf_key(diag, c, "unknown field \"%s\"", c->key);
                rc = CW_ECONFIG;
            }
            continue;
        }
        r = opt_set(o, dst, c, diag);
        if (r == CW_ENOMEM) {
            cw_diagf(diag, c, "out of memory");
            rc = CW_ECONFIG;
        } else if (r != CW_OK) {
            rc = CW_ECONFIG;
        }
    }

    for (o = opts; o->name != NULL; o++) {
        if ((o->flags & CW_OPT_REQUIRED) && cw_node_get(node, o->name) == NULL) {
            if (node != NULL)
                cw_diagf(diag, node, "missing required field \"%s\"", o->name);
            else
                cw_diagf(diag, NULL, "missing required field \"%s\"", o->name);
            rc = CW_ECONFIG;
        }
    }
    return rc;
}
