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
#include "strindex.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* The limits of one configuration document, each reported with the file,
 * the limit and the value (README "Configuration limits"). They are sized
 * for 100,000 checks in 10,000 services (about 15 MB of YAML and 1,000,000
 * nodes) with room to spare, while an alias bomb or a huge key still ends
 * in an error before it can take gigabytes. */
#define CONFIG_MAX_FILESIZE   (32u << 20)    /* bytes of the file */
#define CONFIG_MAX_DEPTH      64             /* nesting levels */
#define CONFIG_MAX_NODES      1000000        /* nodes, alias copies included */
#define CONFIG_MAX_ALIAS      100000         /* nodes made by expanding aliases */
#define CONFIG_MAX_SCALAR     (64u << 10)    /* bytes of one string or key */
#define CONFIG_MAX_PATH       (64u << 10)    /* bytes of one field path */
#define CONFIG_MAX_TREE_BYTES (256ull << 20) /* memory of the node tree */
#define DIAG_MAX_PATH         256            /* bytes of a path shown in a diagnostic */
#define CONFIG_MAX_DIAG       4096           /* bytes of one diagnostic; longer ones are cut */

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

/* diag_vadd() records "file:line:col: path: message" (or "file: message"
 * when line is 0, or only the message when file is NULL). A message longer
 * than CONFIG_MAX_DIAG bytes (one that quotes a long value) is cut and
 * marked, never lost. */
static void diag_vadd(struct cw_diag *d, const char *file, unsigned line, unsigned col,
                      const char *path, const char *fmt, va_list ap)
{
    static const char cut[] = " [...]";
    char text[CONFIG_MAX_DIAG + sizeof(cut)];
    size_t off = 0;
    int n = 0;

    if (file != NULL && line != 0)
        n = snprintf(text, CONFIG_MAX_DIAG + 1, "%s:%u:%u: ", file, line, col);
    else if (file != NULL)
        n = snprintf(text, CONFIG_MAX_DIAG + 1, "%s: ", file);
    if (n >= 0)
        off += (size_t)n;
    if (n >= 0 && off < CONFIG_MAX_DIAG && path != NULL && path[0] != '\0') {
        size_t plen = strlen(path);

        /* A path made of huge keys is shortened so the message still shows. */
        if (plen > DIAG_MAX_PATH)
            n = snprintf(text + off, CONFIG_MAX_DIAG + 1 - off, "%.*s...%s: ", DIAG_MAX_PATH / 2,
                         path, path + plen - DIAG_MAX_PATH / 2);
        else
            n = snprintf(text + off, CONFIG_MAX_DIAG + 1 - off, "%s: ", path);
        off += n >= 0 ? (size_t)n : 0;
    }
    if (n >= 0 && off < CONFIG_MAX_DIAG) {
        n = vsnprintf(text + off, CONFIG_MAX_DIAG + 1 - off, fmt, ap);
        off += n >= 0 ? (size_t)n : 0;
    }
    if (n < 0) {
        diag_push(d, NULL);
        return;
    }
    if (off > CONFIG_MAX_DIAG) {
        size_t at = CONFIG_MAX_DIAG;

        while (at > 0 && ((unsigned char)text[at] & 0xc0) == 0x80)
            at--; /* do not cut a UTF-8 sequence */
        memcpy(text + at, cut, sizeof(cut));
    }
    diag_push(d, strdup(text));
}

void cw_diagf(struct cw_diag *d, const struct cw_node *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (at != NULL)
        diag_vadd(d, at->file, at->line, at->col, at->path, fmt, ap);
    else
        diag_vadd(d, NULL, 0, 0, NULL, fmt, ap);
    va_end(ap);
}

void cw_diagf_key(struct cw_diag *d, const struct cw_node *at, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (at != NULL)
        diag_vadd(d, at->file, at->kline, at->kcol, at->path, fmt, ap);
    else
        diag_vadd(d, NULL, 0, 0, NULL, fmt, ap);
    va_end(ap);
}

void cw_diag_fileerr(struct cw_diag *d, const char *file, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_vadd(d, file, 0, 0, NULL, fmt, ap);
    va_end(ap);
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

char *cw_node_path(const struct cw_node *n, const char *p)
{
    char *dir, *out = NULL;
    size_t len;

    if (p[0] == '/')
        return strdup(p);
    dir = cw_node_dir(n);
    if (dir == NULL)
        return NULL;
    len = strlen(dir) + 1 + strlen(p) + 1;
    out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%s/%s", dir, p);
    free(dir);
    return out;
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

struct parse {
    yaml_parser_t parser;
    const char *file; /* owned by the root: stored in parse->file_owned */
    struct cw_diag *diag;
    char **anchor_names; /* owned: every anchor name seen, for 'anchors' */
    size_t nanchor_names;
    struct cw_strindex anchors; /* name -> node (borrowed from the tree being built) */
    size_t nnodes;
    size_t nalias;                 /* nodes made by node_copy() */
    unsigned long long tree_bytes; /* memory the nodes take, counted against the limit */
    bool failed;
};

static void parse_error_at(struct parse *p, unsigned line, unsigned col, const char *path,
                           const char *fmt, ...) CW_PRINTF(5, 6);

/* path_join() returns parent.key (key != NULL) or parent[i] in a malloc'ed
 * string, or NULL after recording the error: a path longer than
 * CONFIG_MAX_PATH, or no memory. */
static char *path_join(struct parse *p, const yaml_mark_t *mark, const char *parent,
                       const char *key, size_t i)
{
    struct cw_buf b;
    int rc;

    cw_buf_init(&b, CONFIG_MAX_PATH);
    if (key != NULL)
        rc = cw_buf_addf(&b, "%s%s%s", parent, parent[0] != '\0' ? "." : "", key);
    else
        rc = cw_buf_addf(&b, "%s[%zu]", parent, i);
    if (rc == CW_ETOOBIG)
        parse_error_at(p, (unsigned)mark->line + 1, (unsigned)mark->column + 1, parent,
                       "field path longer than the limit of %u bytes", CONFIG_MAX_PATH);
    if (rc != CW_OK) {
        cw_buf_reset(&b);
        return NULL;
    }
    if (b.len == 0) {
        cw_buf_reset(&b); /* addf reserved memory even for "" */
        return strdup("");
    }
    return cw_buf_take(&b, NULL);
}

static void parse_error_at(struct parse *p, unsigned line, unsigned col, const char *path,
                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    diag_vadd(p->diag, p->file, line, col, path, fmt, ap);
    va_end(ap);
    p->failed = true;
}

/* tree_take() counts 'bytes' more of the tree against CONFIG_MAX_TREE_BYTES;
 * false (error recorded) when they do not fit. */
static bool tree_take(struct parse *p, const yaml_mark_t *mark, const char *path, size_t bytes)
{
    p->tree_bytes += bytes;
    if (p->tree_bytes <= CONFIG_MAX_TREE_BYTES)
        return true;
    parse_error_at(p, (unsigned)mark->line + 1, (unsigned)mark->column + 1, path,
                   "document too large: its nodes would take more than the limit of %llu bytes "
                   "of memory (aliases included)",
                   CONFIG_MAX_TREE_BYTES);
    return false;
}

static struct cw_node *node_new(struct parse *p, enum cw_node_type type, const yaml_mark_t *mark,
                                const char *path)
{
    struct cw_node *n;

    if (++p->nnodes > CONFIG_MAX_NODES) {
        parse_error_at(p, (unsigned)mark->line + 1, (unsigned)mark->column + 1, path,
                       "document too large: more than the limit of %d nodes (aliases included)",
                       CONFIG_MAX_NODES);
        return NULL;
    }
    /* The node, its path, and its slot in the parent's item array. */
    if (!tree_take(p, mark, path, sizeof(*n) + sizeof(n) + strlen(path) + 1))
        return NULL;
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

/* node_append() adds a child. The item array doubles when nitems reaches
 * a power of two (4, 8, 16, ...), so a list of 100,000 services is built in
 * linear time without storing a capacity in every node. */
static int node_append(struct cw_node *parent, struct cw_node *child)
{
    size_t n = parent->nitems;

    if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
        size_t cap = n == 0 ? 4 : n * 2;
        struct cw_node **items;

        if (cap > SIZE_MAX / sizeof(*items))
            return CW_ENOMEM;
        items = realloc(parent->items, cap * sizeof(*items));
        if (items == NULL)
            return CW_ENOMEM;
        parent->items = items;
    }
    parent->items[parent->nitems++] = child;
    return CW_OK;
}

/* node_copy() deep-copies an anchored node for an alias, re-rooting paths
 * and positions at the alias. */
static struct cw_node *node_copy(struct parse *p, const struct cw_node *src, const char *path,
                                 const yaml_mark_t *mark)
{
    struct cw_node *n;
    size_t i;

    if (++p->nalias > CONFIG_MAX_ALIAS) {
        parse_error_at(p, (unsigned)mark->line + 1, (unsigned)mark->column + 1, path,
                       "document too large: aliases expand to more than the limit of %d nodes",
                       CONFIG_MAX_ALIAS);
        return NULL;
    }
    n = node_new(p, src->type, mark, path);
    if (n == NULL)
        return NULL;
    n->quoted = src->quoted;
    if (src->scalar != NULL && !tree_take(p, mark, path, strlen(src->scalar) + 1))
        goto out_free;
    if (src->scalar != NULL) {
        n->scalar = strdup(src->scalar);
        if (n->scalar == NULL)
            goto out_free;
    }
    for (i = 0; i < src->nitems; i++) {
        const struct cw_node *c = src->items[i];
        char *cpath = path_join(p, mark, path, src->type == CW_NODE_MAP ? c->key : NULL, i);
        struct cw_node *cn;

        if (cpath == NULL)
            goto out_free;
        cn = node_copy(p, c, cpath, mark);
        free(cpath);
        if (cn == NULL)
            goto out_free;
        if (c->key != NULL) {
            if (tree_take(p, mark, path, strlen(c->key) + 1))
                cn->key = strdup(c->key);
            if (cn->key == NULL) {
                cw_node_free(cn);
                goto out_free;
            }
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

/* anchor_add() makes 'name' refer to 'n'; a redefined anchor refers to its
 * latest node, as YAML says. */
static int anchor_add(struct parse *p, const unsigned char *name, struct cw_node *n)
{
    size_t k = p->nanchor_names;
    char *copy;

    if (name == NULL)
        return CW_OK;
    if (k == 0 || (k >= 4 && (k & (k - 1)) == 0)) {
        size_t cap = k == 0 ? 4 : k * 2;
        char **v = realloc(p->anchor_names, cap * sizeof(*v));

        if (v == NULL)
            return CW_ENOMEM;
        p->anchor_names = v;
    }
    copy = strdup((const char *)name);
    if (copy == NULL)
        return CW_ENOMEM;
    p->anchor_names[p->nanchor_names++] = copy;
    return cw_strindex_set(&p->anchors, copy, n);
}

/* scalar_fits() records an error for a string (value or key) longer than
 * CONFIG_MAX_SCALAR bytes. */
static bool scalar_fits(struct parse *p, const yaml_event_t *ev, const char *path, bool key)
{
    if (ev->data.scalar.length <= CONFIG_MAX_SCALAR)
        return true;
    parse_error_at(p, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1, path,
                   "%s of %zu bytes is longer than the limit of %u bytes", key ? "key" : "string",
                   ev->data.scalar.length, CONFIG_MAX_SCALAR);
    return false;
}

/* parse_node() builds the node that starts with event 'ev' (consumed). */
static struct cw_node *parse_node(struct parse *p, yaml_event_t *ev, const char *path, int depth)
{
    struct cw_node *n = NULL;
    const unsigned char *anchor = NULL;
    struct cw_strindex keys; /* of a mapping: key -> child, for duplicates */
    yaml_event_t child;
    size_t i;

    cw_strindex_init(&keys);
    if (depth > CONFIG_MAX_DEPTH) {
        parse_error_at(p, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
                       path, "nesting deeper than the limit of %d levels", CONFIG_MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        const struct cw_node *target =
            cw_strindex_find(&p->anchors, (const char *)ev->data.alias.anchor);

        if (target != NULL) {
            n = node_copy(p, target, path, &ev->start_mark);
            yaml_event_delete(ev);
            return n;
        }
        parse_error_at(p, (unsigned)ev->start_mark.line + 1, (unsigned)ev->start_mark.column + 1,
                       path, "unknown alias *%s", (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return NULL;
    }

    case YAML_SCALAR_EVENT:
        if (!scalar_fits(p, ev, path, false) ||
            !tree_take(p, &ev->start_mark, path, ev->data.scalar.length + 1))
            goto out_free;
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
            cpath = path_join(p, &child.start_mark, path, NULL, i);
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
            if (!scalar_fits(p, &child, path, true) ||
                !tree_take(p, &child.start_mark, path, child.data.scalar.length + 1)) {
                yaml_event_delete(&child);
                goto out_free;
            }
            key = strndup((const char *)child.data.scalar.value, child.data.scalar.length);
            cpath = key != NULL ? path_join(p, &child.start_mark, path, key, 0) : NULL;
            yaml_event_delete(&child);
            if (cpath == NULL) {
                free(key);
                goto out_free;
            }
            if (cw_strindex_find(&keys, key) != NULL) {
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
            if (cw_strindex_set(&keys, c->key, c) != CW_OK)
                goto out_free;
        }
        cw_strindex_reset(&keys);
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
    cw_strindex_reset(&keys);
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
    cw_strindex_init(&p.anchors);
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
    cw_strindex_reset(&p.anchors);
    for (i = 0; i < p.nanchor_names; i++)
        free(p.anchor_names[i]);
    free(p.anchor_names);

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
    char why[160];
    int rc;

    cw_buf_init(&b, CONFIG_MAX_FILESIZE);
    rc = cw_buf_read_file(&b, path, why, sizeof(why));
    if (rc != CW_OK) {
        cw_diag_fileerr(diag, path, "cannot read: %s", why);
        cw_buf_reset(&b);
        return NULL;
    }
    root = cw_node_parse(path, cw_buf_str(&b), b.len, diag);
    cw_buf_reset(&b);
    return root;
}
