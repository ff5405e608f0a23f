/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - YAML text into a cw_node tree that keeps positions and field
 * paths, and the diagnostics collector.
 *
 * libyaml's event API is read with a recursive descent (depth bounded), so
 * every node knows its file:line:col and its path. Aliases are expanded by
 * copying, within a budget of nodes, so "billion laughs" documents are
 * refused instead of exhausting memory. Nothing here has global state; all
 * functions are thread-safe on distinct objects.
 */
#include "config.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define CONFIG_MAX_DEPTH    64
#define CONFIG_MAX_NODES    200000
#define CONFIG_MAX_FILESIZE (4u << 20)

/* ---- diagnostics --------------------------------------------------------- */

void cw_diag_init(struct cw_diag *d)
{
    d->entries = NULL;
    d->n = 0;
    d->cap = 0;
}

void cw_diag_reset(struct cw_diag *d)
{
    size_t i;

    for (i = 0; i < d->n; i++)
        free(d->entries[i].text);
    free(d->entries);
    cw_diag_init(d);
}

static char oom_text[] = "out of memory while recording a configuration error";

static void diag_push(struct cw_diag *d, char *text)
{
    if (d->n == d->cap) {
        size_t cap = d->cap != 0 ? d->cap * 2 : 8;
        struct cw_diag_entry *e = realloc(d->entries, cap * sizeof(*e));

        if (e == NULL) {
            free(text);
            return;
        }
        d->entries = e;
        d->cap = cap;
    }
    if (text == NULL)
        text = strdup(oom_text);
    if (text == NULL)
        return;
    d->entries[d->n++].text = text;
}

static void diag_vadd(struct cw_diag *d, const struct cw_node *at, bool key, const char *fmt,
                      va_list ap)
{
    struct cw_buf b;
    int rc = CW_OK;

    cw_buf_init(&b, 8192);
    if (at != NULL) {
        rc |= cw_buf_addf(&b, "%s:%u:%u: ", at->file, key ? at->kline : at->line,
                          key ? at->kcol : at->col);
        if (at->path != NULL && at->path[0] != '\0')
            rc |= cw_buf_addf(&b, "%s: ", at->path);
    }
    rc |= cw_buf_vaddf(&b, fmt, ap);
    if (rc != CW_OK) {
        cw_buf_reset(&b);
        diag_push(d, NULL);
        return;
    }
    diag_push(d, cw_buf_take(&b, NULL));
}

void cw_diagf(struct cw_diag *d, const struct cw_node *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_vadd(d, at, false, fmt, ap);
    va_end(ap);
}

void cw_diagf_key(struct cw_diag *d, const struct cw_node *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_vadd(d, at, true, fmt, ap);
    va_end(ap);
}

void cw_diag_fileerr(struct cw_diag *d, const char *file, const char *fmt, ...)
{
    struct cw_buf b;
    va_list ap;
    int rc;

    cw_buf_init(&b, 8192);
    rc = cw_buf_addf(&b, "%s: ", file);
    va_start(ap, fmt);
    if (rc == CW_OK)
        rc = cw_buf_vaddf(&b, fmt, ap);
    va_end(ap);
    if (rc != CW_OK) {
        cw_buf_reset(&b);
        diag_push(d, NULL);
        return;
    }
    diag_push(d, cw_buf_take(&b, NULL));
}

/* ---- nodes --------------------------------------------------------------- */

void cw_node_free(struct cw_node *n)
{
    size_t i;

    if (n == NULL)
        return;
    for (i = 0; i < n->nitems; i++)
        cw_node_free(n->items[i]);
    free(n->items);
    free(n->path);
    free(n->scalar);
    free(n->key);
    free(n);
}

const struct cw_node *cw_node_get(const struct cw_node *map, const char *key)
{
    size_t i;

    if (map == NULL || map->type != CW_NODE_MAP)
        return NULL;
    for (i = 0; i < map->nitems; i++) {
        if (strcmp(map->items[i]->key, key) == 0)
            return map->items[i];
    }
    return NULL;
}

const char *cw_node_type_name(const struct cw_node *n)
{
    switch (n->type) {
    case CW_NODE_SCALAR:
        return cw_node_is_null(n) ? "empty" : "string";
    case CW_NODE_MAP:
        return "mapping";
    case CW_NODE_SEQ:
        return "list";
    }
    return "?";
}

bool cw_node_is_null(const struct cw_node *n)
{
    if (n == NULL)
        return true;
    if (n->type != CW_NODE_SCALAR || n->quoted)
        return false;
    return n->scalar[0] == '\0' || strcmp(n->scalar, "~") == 0 || strcmp(n->scalar, "null") == 0 ||
           strcmp(n->scalar, "Null") == 0 || strcmp(n->scalar, "NULL") == 0;
}

char *cw_node_dir(const struct cw_node *n)
{
    const char *slash;

    if (n == NULL || n->file == NULL)
        return strdup(".");
    slash = strrchr(n->file, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == n->file)
        return strdup("/");
    return strndup(n->file, (size_t)(slash - n->file));
}

static int fp_add_scalar(struct cw_buf *out, const char *s)
{
    int rc = cw_buf_addf(out, "%zu:", strlen(s));

    if (rc != CW_OK)
        return rc;
    return cw_buf_adds(out, s);
}

int cw_node_fingerprint(const struct cw_node *n, struct cw_buf *out)
{
    size_t i;
    int rc;

    switch (n->type) {
    case CW_NODE_SCALAR:
        rc = cw_buf_addc(out, n->quoted ? 'q' : 's');
        if (rc == CW_OK)
            rc = fp_add_scalar(out, n->scalar);
        return rc;
    case CW_NODE_MAP:
    case CW_NODE_SEQ:
        rc = cw_buf_addf(out, "%c%zu{", n->type == CW_NODE_MAP ? 'm' : 'l', n->nitems);
        for (i = 0; rc == CW_OK && i < n->nitems; i++) {
            if (n->type == CW_NODE_MAP)
                rc = fp_add_scalar(out, n->items[i]->key);
            if (rc == CW_OK)
                rc = cw_node_fingerprint(n->items[i], out);
        }
        if (rc == CW_OK)
            rc = cw_buf_addc(out, '}');
        return rc;
    }
    return CW_EINVAL;
}

/* ---- parsing ------------------------------------------------------------- */

struct anchor {
    char *name;           /* owned */
    struct cw_node *node; /* borrowed from the tree being built */
};

struct parse {
    yaml_parser_t parser;
    const char *file; /* owned by the root: stored in parse->file_owned */
    struct cw_diag *diag;
    struct anchor *anchors; /* owned */
    size_t nanchors;
    size_t nnodes;
    bool failed;
};

static char *path_join_key(const char *parent, const char *key)
{
    struct cw_buf b;
    int rc;

    cw_buf_init(&b, 1u << 16);
    if (parent[0] != '\0')
        rc = cw_buf_addf(&b, "%s.%s", parent, key);
    else
        rc = cw_buf_adds(&b, key);
    if (rc != CW_OK) {
        cw_buf_reset(&b);
        return NULL;
    }
    if (b.len == 0) {
        cw_buf_reset(&b);
        return strdup("");
    }
    return cw_buf_take(&b, NULL);
}

static char *path_join_index(const char *parent, size_t i)
{
    struct cw_buf b;

    cw_buf_init(&b, 1u << 16);
    if (cw_buf_addf(&b, "%s[%zu]", parent, i) != CW_OK) {
        cw_buf_reset(&b);
        return NULL;
    }
    return cw_buf_take(&b, NULL);
}

static void parse_error_at(struct parse *p, unsigned line, unsigned col, const char *path,
                           const char *fmt, ...) CW_PRINTF(5, 6);

static void parse_error_at(struct parse *p, unsigned line, unsigned col, const char *path,
                           const char *fmt, ...)
{
    struct cw_node at = {.file = p->file, .line = line, .col = col, .path = (char *)path};
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cw_diagf(p->diag, &at, "%s", msg);
    p->failed = true;
}

static struct cw_node *node_new(struct parse *p, enum cw_node_type type, const yaml_mark_t *mark,
                                const char *path)
{
    struct cw_node *n;

    if (++p->nnodes > CONFIG_MAX_NODES) {
        parse_error_at(p, (unsigned)mark->line + 1, (unsigned)mark->column + 1, path,
                       "document too large (more than %d nodes, aliases included)",
                       CONFIG_MAX_NODES);
        return NULL;
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->type = type;
    n->file = p->file;
    n->line = (unsigned)mark->line + 1;
    n->col = (unsigned)mark->column + 1;
    n->kline = n->line;
    n->kcol = n->col;
    n->path = strdup(path);
    if (n->path == NULL) {
        free(n);
        return NULL;
    }
    return n;
}

static int node_append(struct cw_node *parent, struct cw_node *child)
{
    struct cw_node **items = realloc(parent->items, (parent->nitems + 1) * sizeof(*items));

    if (items == NULL)
        return CW_ENOMEM;
    parent->items = items;
    parent->items[parent->nitems++] = child;
    return CW_OK;
}

/* node_copy() deep-copies an anchored node for an alias, re-rooting paths
 * and positions at the alias. */
static struct cw_node *node_copy(struct parse *p, const struct cw_node *src, const char *path,
                                 const yaml_mark_t *mark)
{
    struct cw_node *n = node_new(p, src->type, mark, path);
    size_t i;

    if (n == NULL)
        return NULL;
    n->quoted = src->quoted;
    if (src->scalar != NULL && (n->scalar = strdup(src->scalar)) == NULL)
        goto out_free;
    for (i = 0; i < src->nitems; i++) {
        const struct cw_node *c = src->items[i];
        char *cpath =
            src->type == CW_NODE_MAP ? path_join_key(path, c->key) : path_join_index(path, i);
        struct cw_node *cn;

        if (cpath == NULL)
            goto out_free;
        cn = node_copy(p, c, cpath, mark);
        free(cpath);
        if (cn == NULL)
            goto out_free;
        if (c->key != NULL && (cn->key = strdup(c->key)) == NULL) {
            cw_node_free(cn);
            goto out_free;
        }
        if (node_append(n, cn) != CW_OK) {
            cw_node_free(cn);
            goto out_free;
        }
    }
    return n;

out_free:
    cw_node_free(n);
    return NULL;
}

static bool parse_next(struct parse *p, yaml_event_t *ev)
{
    if (yaml_parser_parse(&p->parser, ev))
        return true;
    parse_error_at(p, (unsigned)p->parser.problem_mark.line + 1,
                   (unsigned)p->parser.problem_mark.column + 1, "", "YAML syntax error: %s%s%s",
                   p->parser.problem != NULL ? p->parser.problem : "unknown problem",
                   p->parser.context != NULL ? " " : "",
                   p->parser.context != NULL ? p->parser.context : "");
    return false;
}

static int anchor_add(struct parse *p, const unsigned char *name, struct cw_node *n)
{
    struct anchor *a;

    if (name == NULL)
        return CW_OK;
    a = realloc(p->anchors, (p->nanchors + 1) * sizeof(*a));
    if (a == NULL)
        return CW_ENOMEM;
    p->anchors = a;
    a[p->nanchors].name = strdup((const char *)name);
    if (a[p->nanchors].name == NULL)
        return CW_ENOMEM;
    a[p->nanchors].node = n;
    p->nanchors++;
    return CW_OK;
}

/* parse_node() builds the node that starts with event 'ev' (consumed). */
static struct cw_node *parse_node(struct parse *p, yaml_event_t *ev, const char *path, int depth)
{
    struct cw_node *n = NULL;
    const unsigned char *anchor = NULL;
    yaml_event_t child;
    size_t i;

    if (depth > CONFIG_MAX_DEPTH) {
        parse_error_at(p, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
                       path, "nesting deeper than %d levels", CONFIG_MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        for (i = p->nanchors; i > 0; i--) {
            if (strcmp(p->anchors[i - 1].name, (const char *)ev->data.alias.anchor) == 0) {
                n = node_copy(p, p->anchors[i - 1].node, path, &ev->start_mark);
                yaml_event_delete(ev);
                return n;
            }
        }
        parse_error_at(p, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
                       path, "unknown alias *%s", (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return NULL;

    case YAML_SCALAR_EVENT:
        n = node_new(p, CW_NODE_SCALAR, &ev->start_mark, path);
        if (n == NULL)
            goto out_free;
        n->scalar = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (n->scalar == NULL)
            goto out_free;
        if (strlen(n->scalar) != ev->data.scalar.length) {
            parse_error_at(p, n->line, n->col, path, "string contains a NUL character");
            goto out_free;
        }
        anchor = ev->data.scalar.anchor;
        break;

    case YAML_SEQUENCE_START_EVENT:
        n = node_new(p, CW_NODE_SEQ, &ev->start_mark, path);
        if (n == NULL)
            goto out_free;
        anchor = ev->data.sequence_start.anchor;
        for (i = 0;; i++) {
            struct cw_node *c;
            char *cpath;

            if (!parse_next(p, &child))
                goto out_free;
            if (child.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&child);
                break;
            }
            cpath = path_join_index(path, i);
            if (cpath == NULL) {
                yaml_event_delete(&child);
                goto out_free;
            }
            c = parse_node(p, &child, cpath, depth + 1);
            free(cpath);
            if (c == NULL)
                goto out_free;
            if (node_append(n, c) != CW_OK) {
                cw_node_free(c);
                goto out_free;
            }
        }
        break;

    case YAML_MAPPING_START_EVENT:
        n = node_new(p, CW_NODE_MAP, &ev->start_mark, path);
        if (n == NULL)
            goto out_free;
        anchor = ev->data.mapping_start.anchor;
        for (;;) {
            struct cw_node *c;
            char *key;
            char *cpath;
            unsigned kline, kcol;

            if (!parse_next(p, &child))
                goto out_free;
            if (child.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&child);
                break;
            }
            kline = (unsigned)child.start_mark.line + 1;
            kcol = (unsigned)child.start_mark.column + 1;
            if (child.type != YAML_SCALAR_EVENT) {
                parse_error_at(p, kline, kcol, path, "mapping keys must be plain strings");
                yaml_event_delete(&child);
                goto out_free;
            }
            key = strndup((const char *)child.data.scalar.value, child.data.scalar.length);
            yaml_event_delete(&child);
            if (key == NULL)
                goto out_free;
            cpath = path_join_key(path, key);
            if (cpath == NULL) {
                free(key);
                goto out_free;
            }
            if (cw_node_get(n, key) != NULL) {
                parse_error_at(p, kline, kcol, cpath, "duplicate key \"%s\"", key);
                free(key);
                free(cpath);
                goto out_free;
            }
            if (!parse_next(p, &child)) {
                free(key);
                free(cpath);
                goto out_free;
            }
            c = parse_node(p, &child, cpath, depth + 1);
            free(cpath);
            if (c == NULL) {
                free(key);
                goto out_free;
            }
            c->key = key;
            c->kline = kline;
            c->kcol = kcol;
            if (node_append(n, c) != CW_OK) {
                cw_node_free(c);
                goto out_free;
            }
        }
        break;

    default:
        parse_error_at(p, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
                       path, "unexpected YAML event");
        yaml_event_delete(ev);
        return NULL;
    }
    if (anchor_add(p, anchor, n) != CW_OK)
        goto out_free;
    yaml_event_delete(ev);
    return n;

out_free:
    yaml_event_delete(ev);
    cw_node_free(n);
    if (!p->failed)
        parse_error_at(p, 0, 0, path, "out of memory");
    return NULL;
}

struct cw_node *cw_node_parse(const char *file, const char *text, size_t len, struct cw_diag *diag)
{
    struct parse p;
    yaml_event_t ev;
    struct cw_node *root = NULL;
    char *file_copy = strdup(file);
    bool done = false;
    size_t i;

    if (file_copy == NULL) {
        cw_diag_fileerr(diag, file, "out of memory");
        return NULL;
    }
    memset(&p, 0, sizeof(p));
    p.file = file_copy;
    p.diag = diag;
    if (!yaml_parser_initialize(&p.parser)) {
        cw_diag_fileerr(diag, file, "cannot initialise the YAML parser");
        free(file_copy);
        return NULL;
    }
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)text, len);

    while (!done && !p.failed) {
        if (!parse_next(&p, &ev))
            break;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            yaml_event_delete(&ev);
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (root != NULL) {
                parse_error_at(&p, (unsigned)ev.start_mark.line + 1,
                               (unsigned)ev.start_mark.column + 1, "",
                               "only one YAML document is allowed");
            }
            yaml_event_delete(&ev);
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            done = true;
            break;
        default:
            root = parse_node(&p, &ev, "", 0);
            if (root == NULL)
                p.failed = true;
            break;
        }
    }
    yaml_parser_delete(&p.parser);
    for (i = 0; i < p.nanchors; i++)
        free(p.anchors[i].name);
    free(p.anchors);

    if (p.failed) {
        cw_node_free(root);
        free(file_copy);
        return NULL;
    }
    if (root == NULL || cw_node_is_null(root)) {
        yaml_mark_t mark = {0, 0, 0};

        cw_node_free(root);
        p.nnodes = 0;
        root = node_new(&p, CW_NODE_MAP, &mark, "");
        if (root == NULL) {
            free(file_copy);
            cw_diag_fileerr(diag, file, "out of memory");
            return NULL;
        }
    }
    /* The root owns the file name: its 'key' is unused, so it holds it. */
    root->key = file_copy;
    return root;
}

struct cw_node *cw_node_parse_file(const char *path, struct cw_diag *diag)
{
    struct cw_buf b;
    struct cw_node *root;
    char errbuf[128];
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cw_diag_fileerr(diag, path, "cannot open: %s",
                        cw_strerror_r(errno, errbuf, sizeof(errbuf)));
        return NULL;
    }
    cw_buf_init(&b, CONFIG_MAX_FILESIZE);
    for (;;) {
        ssize_t n;
        int rc = cw_buf_reserve(&b, 65536);

        if (rc != CW_OK) {
            cw_diag_fileerr(diag, path, "%s (the limit is %u bytes)", cw_strerror(rc),
                            CONFIG_MAX_FILESIZE);
            goto out_fail;
        }
        n = read(fd, b.data + b.len, 65536);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cw_diag_fileerr(diag, path, "cannot read: %s",
                            cw_strerror_r(errno, errbuf, sizeof(errbuf)));
            goto out_fail;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        b.data[b.len] = '\0';
    }
    close(fd);
    root = cw_node_parse(path, cw_buf_str(&b), b.len, diag);
    cw_buf_reset(&b);
    return root;

out_fail:
    close(fd);
    cw_buf_reset(&b);
    return NULL;
}
