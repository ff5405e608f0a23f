/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.c - the configuration loader: node tree -> cw_settings with fully
 * configured check instances. See settings.h. Runs on the thread that loads
 * (main, or the reload path); touches no running state.
 */
#include "settings.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/strindex.h"
#include "file_sd.h"
#include "kinds.h"
#include "probe_allow.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest configuration or targets file, as core/config.c reads it. */
#define SETTINGS_MAX_FILESIZE (32u << 20)

/* The built-in configuration: what a first run watches with no file. It
 * goes through the same loader as any file; %s is connwatch's own listener. */
static const char default_config_fmt[] = "# connwatch built-in default configuration\n"
                                         "global:\n"
                                         "  interval: 15s\n"
                                         "  timeout: 5s\n"
                                         "host:\n"
                                         "  enabled: true\n"
                                         "services:\n"
                                         "  - name: localhost\n"
                                         "    checks:\n"
                                         "      - icmp: {target: 127.0.0.1, interval: 5s}\n"
                                         "      # connwatch's own listener\n"
                                         "      - tcp: {target: \"%s\", interval: 5s}\n";

const char *const cw_check_common_keys[] = {"interval", "timeout", "name", NULL};

struct global_opts {
    cw_duration interval;
    cw_duration timeout;
    int64_t max_concurrent;
};

static const struct cw_opt global_opts[] = {
    CW_OPT("interval", CW_OPT_T_DURATION, struct global_opts, interval, "15s", CW_MS(100),
           CW_S(86400), 0),
    CW_OPT("timeout", CW_OPT_T_DURATION, struct global_opts, timeout, "5s", CW_MS(1), CW_S(600), 0),
    CW_OPT("max_concurrent_checks", CW_OPT_T_INT, struct global_opts, max_concurrent, "64", 1, 4096,
           0),
    CW_OPT_END,
};

/* Per-check timing, read by the core from every check mapping. */
struct timing_opts {
    cw_duration interval;
    cw_duration timeout;
    char *name;
};

static const struct cw_opt timing_opts[] = {
    CW_OPT("interval", CW_OPT_T_DURATION, struct timing_opts, interval, NULL, CW_MS(100),
           CW_S(86400), 0),
    CW_OPT("timeout", CW_OPT_T_DURATION, struct timing_opts, timeout, NULL, CW_MS(1), CW_S(600), 0),
    CW_OPT("name", CW_OPT_T_STRING, struct timing_opts, name, NULL, 0, 0, 0),
    CW_OPT_END,
};

/* Labels the core sets on the checks' samples (the instance labels, the
 * reason of its failure series, the bucket bound of histograms); with the
 * label names of every kind's families (cw_check_kind.descs), they are the
 * labels a service may not redefine. */
static const char *const core_labels[] = {"check", "service", "target", "reason", "le", NULL};

/* label_is_reserved() tells whether connwatch itself sets label 'name'. */
static bool label_is_reserved(const char *name)
{
    size_t i, j, k, l;

    for (i = 0; core_labels[i] != NULL; i++) {
        if (strcmp(core_labels[i], name) == 0)
            return true;
    }
    for (i = 0; cw_check_kinds[i] != NULL; i++) {
        for (j = 0; j < CW_KIND_MAX_DESC_LISTS && cw_check_kinds[i]->descs[j] != NULL; j++) {
            const struct cw_desc *const *d = cw_check_kinds[i]->descs[j];

            for (k = 0; d[k] != NULL; k++) {
                for (l = 0; l < d[k]->nlabels; l++) {
                    if (strcmp(d[k]->labels[l], name) == 0)
                        return true;
                }
            }
        }
    }
    return false;
}

/* Each kind's shared state, by index in cw_check_kinds; created on first
 * use by the loading thread (loads are serialised) and kept until exit. */
#define MAX_KINDS 32
static void *kind_shared[MAX_KINDS];
static pthread_mutex_t kind_shared_lock = PTHREAD_MUTEX_INITIALIZER;

static void *kind_shared_get(const struct cw_check_kind *kind)
{
    void *shared = NULL;
    size_t i;

    if (kind->shared_new == NULL)
        return NULL;
    pthread_mutex_lock(&kind_shared_lock);
    for (i = 0; i < MAX_KINDS && cw_check_kinds[i] != NULL; i++) {
        if (cw_check_kinds[i] != kind)
            continue;
        /* A failed creation is retried at the next load (e.g. after the
         * operator fixed ping_group_range or capabilities). */
        if (kind_shared[i] == NULL)
            kind_shared[i] = kind->shared_new();
        shared = kind_shared[i];
        break;
    }
    pthread_mutex_unlock(&kind_shared_lock);
    return shared;
}

void cw_check_kinds_shutdown(void)
{
    size_t i;

    pthread_mutex_lock(&kind_shared_lock);
    for (i = 0; i < MAX_KINDS && cw_check_kinds[i] != NULL; i++) {
        if (kind_shared[i] != NULL && cw_check_kinds[i]->shared_free != NULL)
            cw_check_kinds[i]->shared_free(kind_shared[i]);
        kind_shared[i] = NULL;
    }
    pthread_mutex_unlock(&kind_shared_lock);
}

const struct cw_check_kind *cw_check_kind_find(const char *name)
{
    size_t i;

    for (i = 0; cw_check_kinds[i] != NULL; i++) {
        if (strcmp(cw_check_kinds[i]->name, name) == 0)
            return cw_check_kinds[i];
    }
    return NULL;
}

/* ---- instances ----------------------------------------------------------- */

/* A stable spread of phases that survives restarts. */
static double key_phase(const char *key)
{
    return (double)(cw_strindex_hash(key) >> 11) / (double)(1ull << 53);
}

struct service_ctx {
    const char *name;               /* NULL for section kinds */
    const struct cw_strmap *labels; /* borrowed; may be NULL */
};

static int build_labels(struct cw_instance *in, const struct service_ctx *svc)
{
    struct cw_buf b;
    size_t i;
    int rc = CW_OK;

    cw_buf_init(&b, 1u << 16);
    if (svc->name != NULL) {
        rc |= cw_buf_adds(&b, "service=\"");
        rc |= cw_label_escape(&b, svc->name);
        rc |= cw_buf_adds(&b, "\",target=\"");
        rc |= cw_label_escape(&b, in->target);
        rc |= cw_buf_addc(&b, '"');
        for (i = 0; svc->labels != NULL && i < svc->labels->n; i++) {
            rc |= cw_buf_addf(&b, ",%s=\"", svc->labels->keys[i]);
            rc |= cw_label_escape(&b, svc->labels->values[i]);
            rc |= cw_buf_addc(&b, '"');
        }
    }
    if (rc != CW_OK)
        goto out_fail;
    in->prefix = strdup(cw_buf_str(&b));
    cw_buf_clear(&b);
    rc |= cw_buf_addf(&b, "check=\"%s\"", in->kind->name);
    if (in->prefix != NULL && in->prefix[0] != '\0')
        rc |= cw_buf_addf(&b, ",%s", in->prefix);
    if (rc != CW_OK)
        goto out_fail;
    in->common_prefix = strdup(cw_buf_str(&b));
    cw_buf_clear(&b);
    rc |= cw_buf_addf(&b, "%s\x1f%s\x1f%s", in->kind->name, svc->name != NULL ? svc->name : "",
                      in->target);
    if (rc != CW_OK)
        goto out_fail;
    in->key = strdup(cw_buf_str(&b));
    cw_buf_reset(&b);
    if (in->prefix == NULL || in->common_prefix == NULL || in->key == NULL)
        return CW_ENOMEM;
    return CW_OK;

out_fail:
    cw_buf_reset(&b);
    return CW_ENOMEM;
}

/* instance_new() builds one check instance from its options node. Returns
 * NULL with diagnostics recorded (or an out-of-memory entry). */
static struct cw_instance *instance_new(const struct cw_check_kind *kind, const struct cw_node *at,
                                        const struct cw_node *opts, const struct service_ctx *svc,
                                        const struct global_opts *g, struct cw_diag *diag)
{
    struct cw_instance *in;
    struct timing_opts t = {0, 0, NULL};
    struct cw_buf fp;
    char d1[32], d2[32];
    const char *target;
    size_t before = diag->n;
    int rc;

    in = cw_instance_alloc(kind);
    if (in == NULL)
        goto out_oom;
    in->line = at->line;
    in->col = at->col;

    /* Timing keys are read with their own table; the kind's table sees the rest. */
    {
        struct cw_node filtered = *(opts != NULL ? opts : at);
        const struct cw_node *keep[3];
        size_t i, n = 0;

        if (opts != NULL && opts->type == CW_NODE_MAP) {
            for (i = 0; i < opts->nitems; i++) {
                const char *k = opts->items[i]->key;

                if (strcmp(k, "interval") == 0 || strcmp(k, "timeout") == 0 ||
                    strcmp(k, "name") == 0)
                    keep[n++] = opts->items[i];
            }
            filtered.type = CW_NODE_MAP;
            filtered.items = (struct cw_node **)keep;
            filtered.nitems = n;
            rc = cw_opts_apply(timing_opts, &t, &filtered, NULL, diag);
        } else {
            rc = cw_opts_apply(timing_opts, &t, NULL, NULL, diag);
        }
    }
    if (rc != CW_OK)
        goto out_fail;

    in->interval = t.interval != 0 ? t.interval : g->interval;
    if (t.timeout != 0) {
        if (t.timeout > in->interval) {
            cw_diagf(diag, cw_node_get(opts, "timeout"), "timeout %s must not exceed interval %s",
                     cw_duration_format(t.timeout, d1, sizeof(d1)),
                     cw_duration_format(in->interval, d2, sizeof(d2)));
            goto out_fail;
        }
        in->timeout = t.timeout;
    } else {
        /* An inherited timeout shrinks to fit a short interval. */
        in->timeout = g->timeout < in->interval ? g->timeout : in->interval;
    }
    if (t.name != NULL && t.name[0] == '\0') {
        cw_diagf(diag, cw_node_get(opts, "name"), "must not be empty");
        goto out_fail;
    }
    in->name = t.name;
    t.name = NULL;
    if (svc->name != NULL) {
        in->service = strdup(svc->name);
        if (in->service == NULL)
            goto out_oom;
    }
    in->info.service = in->service;
    in->info.name = in->name;
    in->info.interval = in->interval;
    in->info.timeout = in->timeout;
    in->info.shared = kind_shared_get(kind);

    in->state = calloc(1, kind->state_size != 0 ? kind->state_size : 1);
    if (in->state == NULL)
        goto out_oom;
    if (kind->configure(in->state, opts, &in->info, diag) != CW_OK) {
        if (diag->n == before)
            cw_diagf(diag, at, "%s: configuration rejected", kind->name);
        goto out_fail;
    }
    in->configured = true;

    target = in->name;
    if (target == NULL && kind->target != NULL)
        target = kind->target(in->state);
    in->target = strdup(target != NULL ? target : "");
    if (in->target == NULL)
        goto out_oom;
    if (build_labels(in, svc) != CW_OK)
        goto out_oom;
    in->phase = key_phase(in->key);

    cw_buf_init(&fp, 1u << 20);
    rc = CW_OK;
    if (opts != NULL)
        rc = cw_node_fingerprint(opts, &fp);
    if (rc == CW_OK)
        rc = cw_buf_addf(&fp, "|%s|%lld|%lld", in->prefix, (long long)in->interval,
                         (long long)in->timeout);
    if (rc != CW_OK) {
        cw_buf_reset(&fp);
        goto out_oom;
    }
    in->fingerprint = strdup(cw_buf_str(&fp));
    cw_buf_reset(&fp);
    if (in->fingerprint == NULL)
        goto out_oom;
    return in;

out_oom:
    cw_diagf(diag, at, "out of memory");
out_fail:
    cw_opts_release(timing_opts, &t);
    cw_instance_unref(in);
    return NULL;
}

/* ---- settings ------------------------------------------------------------ */

struct cw_settings *cw_settings_ref(struct cw_settings *s)
{
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void cw_settings_unref(struct cw_settings *s)
{
    size_t i;

    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (i = 0; i < s->ninst; i++)
        cw_instance_unref(s->inst[i]);
    free(s->inst);
    for (i = 0; i < s->ntsrc; i++) {
        free(s->tsrc[i].key);
        free(s->tsrc[i].path);
        free(s->tsrc[i].text);
        free(s->tsrc[i].error);
    }
    free(s->tsrc);
    cw_probe_allow_free(s);
    free(s->text);
    free(s->file);
    free(s);
}

/* What the loader indexes while it reads one file, so that duplicate
 * detection stays linear with 100,000 checks: instance keys (kind, service,
 * target) and service names, both borrowed from the instances and the node
 * tree being loaded. */
struct load_index {
    struct cw_strindex keys;        /* key -> struct cw_instance */
    struct cw_strindex services;    /* name -> the "name" node of its service */
    const struct cw_settings *prev; /* the settings this load replaces, or NULL */
    bool reread;                    /* read every targets_file, changed or not */
};

static int settings_add(struct cw_settings *s, struct load_index *ix, struct cw_instance *in,
                        const struct cw_node *at, struct cw_diag *diag)
{
    void *found;
    struct cw_instance *other;

    if (s->ninst == s->capinst) {
        size_t cap = s->capinst != 0 ? s->capinst * 2 : 16;
        struct cw_instance **v = realloc(s->inst, cap * sizeof(*v));

        if (v == NULL) {
            cw_instance_unref(in);
            return CW_ENOMEM;
        }
        s->inst = v;
        s->capinst = cap;
    }
    if (cw_strindex_add(&ix->keys, in->key, in, &found) != CW_OK) {
        cw_instance_unref(in);
        return CW_ENOMEM;
    }
    other = found;
    if (other != NULL) {
        cw_diagf(diag, at,
                 "duplicate check: this service already has a %s check with target \"%s\" "
                 "(line %u); give one a distinct name",
                 in->kind->name, in->target, other->line);
        cw_instance_unref(in);
        return CW_ECONFIG;
    }
    s->inst[s->ninst++] = in;
    return CW_OK;
}

static void kinds_list(struct cw_buf *b)
{
    size_t i;
    int rc = CW_OK;

    for (i = 0; cw_check_kinds[i] != NULL; i++) {
        if (cw_check_kinds[i]->flags & CW_KIND_SECTION)
            continue;
        rc |= cw_buf_addf(b, "%s%s", b->len != 0 ? ", " : "", cw_check_kinds[i]->name);
    }
    (void)rc;
}

/* ---- many targets, one stanza -------------------------------------------- */

/* A stanza with targets or targets_file becomes one instance per target:
 * the kind's probe option (the field /probe fills: target, url, address,
 * name) set to each element, the stanza's other options shared. The
 * instances are made first (struct pending) and join the settings only when
 * the whole list loaded, so that a rejected targets_file can give way to
 * its previous version. */

struct pending {
    struct cw_instance **v; /* owned references */
    size_t n;
    size_t cap;
};

static int pending_push(struct pending *p, struct cw_instance *in)
{
    if (p->n == p->cap) {
        size_t cap = p->cap != 0 ? p->cap * 2 : 16;
        struct cw_instance **v = realloc(p->v, cap * sizeof(*v));

        if (v == NULL)
            return CW_ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n++] = in;
    return CW_OK;
}

static void pending_drop(struct pending *p)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        cw_instance_unref(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof(*p));
}

/* diag_merge() copies the entries of 'from' to 'to', each distinct text
 * once: an error in an option the targets share is made once per target. */
static void diag_merge(struct cw_diag *to, const struct cw_diag *from)
{
    struct cw_strindex seen;
    void *found;
    size_t i;

    cw_strindex_init(&seen);
    for (i = 0; i < from->n; i++) {
        if (cw_strindex_add(&seen, from->entries[i].text, from->entries[i].text, &found) == CW_OK &&
            found != NULL)
            continue;
        cw_diagf(to, NULL, "%s", from->entries[i].text);
    }
    cw_strindex_reset(&seen);
}

/* A stanza being expanded: its options with the targets keys left out and
 * one last slot for the target, and what its instances share. */
struct stanza {
    const struct cw_check_kind *kind;
    const struct cw_node *check; /* the "- kind: {...}" item */
    struct cw_node opts;         /* items: borrowed nodes, the last one the target */
    const struct service_ctx *svc;
    const struct global_opts *g;
    bool from_file;
    struct cw_strindex seen; /* key -> the element node that made it */
    struct pending p;
};

/* stanza_add() makes the instance of target node 'e' with labels 'svc'. */
static int stanza_add(struct stanza *st, struct load_index *ix, const struct cw_node *e,
                      const struct service_ctx *svc, struct cw_diag *diag)
{
    struct cw_node tn = *e;
    struct cw_instance *in, *other;
    const struct cw_node *first;
    void *found;

    tn.key = (char *)st->kind->probe_option;
    st->opts.items[st->opts.nitems - 1] = &tn;
    in = instance_new(st->kind, e, &st->opts, svc, st->g, diag);
    if (in == NULL)
        return CW_ECONFIG;
    if (st->from_file) {
        /* The check is where the stanza is; its target's position is in the file. */
        in->line = st->check->line;
        in->col = st->check->col;
    }
    other = cw_strindex_find(&ix->keys, in->key);
    if (other != NULL) {
        cw_diagf(diag, e,
                 "duplicate check: this service already has a %s check with target \"%s\" "
                 "(line %u)",
                 in->kind->name, in->target, other->line);
        cw_instance_unref(in);
        return CW_ECONFIG;
    }
    /* In the list first: the index borrows the instance's key. */
    if (pending_push(&st->p, in) != CW_OK) {
        cw_instance_unref(in);
        cw_diagf(diag, e, "out of memory");
        return CW_ENOMEM;
    }
    if (cw_strindex_add(&st->seen, in->key, (void *)e, &found) != CW_OK) {
        cw_diagf(diag, e, "out of memory");
        return CW_ENOMEM;
    }
    first = found;
    if (first != NULL) {
        cw_diagf(diag, e, "duplicate target \"%s\" (also at line %u, column %u)", in->target,
                 first->line, first->col);
        cw_instance_unref(st->p.v[--st->p.n]);
        return CW_ECONFIG;
    }
    return CW_OK;
}

/* stanza_reset_targets() forgets the instances made so far. */
static void stanza_reset_targets(struct stanza *st)
{
    cw_strindex_reset(&st->seen);
    pending_drop(&st->p);
}

/* group_labels() merges the service's labels and those of a file_sd group
 * into 'out' (borrowed strings; free out->keys and out->values): a group's
 * label replaces the service's label of that name, "__" labels are left
 * out, labels connwatch sets are errors. */
static int group_labels(const struct cw_strmap *svc, const struct cw_node *labels,
                        struct cw_strmap *out, struct cw_diag *diag)
{
    size_t n = (svc != NULL ? svc->n : 0) + (labels != NULL ? labels->nitems : 0);
    size_t i, j;
    int rc = CW_OK;

    memset(out, 0, sizeof(*out));
    if (n == 0)
        return CW_OK;
    out->keys = calloc(n, sizeof(*out->keys));
    out->values = calloc(n, sizeof(*out->values));
    if (out->keys == NULL || out->values == NULL)
        return CW_ENOMEM;
    for (i = 0; svc != NULL && i < svc->n; i++) {
        out->keys[out->n] = svc->keys[i];
        out->values[out->n++] = svc->values[i];
    }
    for (i = 0; labels != NULL && i < labels->nitems; i++) {
        const struct cw_node *l = labels->items[i];

        if (!cw_file_sd_label_is_used(l))
            continue;
        if (label_is_reserved(l->key)) {
            cw_diagf_key(diag, l, "label \"%s\" is set by connwatch itself", l->key);
            rc = CW_ECONFIG;
            continue;
        }
        for (j = 0; j < out->n && strcmp(out->keys[j], l->key) != 0; j++)
            ;
        out->keys[j] = l->key;
        out->values[j] = l->scalar;
        if (j == out->n)
            out->n++;
    }
    return rc;
}

/* stanza_from_file() makes the instances of the file_sd text 'text'. */
static int stanza_from_file(struct stanza *st, struct load_index *ix, const char *path,
                            const char *text, size_t len, struct cw_diag *diag)
{
    struct cw_file_sd sd;
    size_t i, j;
    int rc;

    /* The groups that parsed are expanded even when others did not: every
     * problem of the file is reported at once. */
    rc = cw_file_sd_parse(path, text, len, &sd, diag);
    for (i = 0; rc != CW_ENOMEM && i < sd.ngroups; i++) {
        const struct cw_sd_group *gr = &sd.groups[i];
        struct service_ctx ctx = {st->svc->name, NULL};
        struct cw_strmap merged;
        int lrc;

        lrc = group_labels(st->svc->labels, gr->labels, &merged, diag);
        if (lrc != CW_OK)
            rc = lrc;
        ctx.labels = &merged;
        for (j = 0; lrc != CW_ENOMEM && gr->targets != NULL && j < gr->targets->nitems; j++) {
            if (stanza_add(st, ix, gr->targets->items[j], &ctx, diag) != CW_OK)
                rc = CW_ECONFIG;
        }
        free(merged.keys);
        free(merged.values);
    }
    cw_file_sd_reset(&sd);
    return rc;
}

static void file_id_from_stat(const struct stat *st, struct cw_file_id *id)
{
    id->exists = true;
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (int64_t)st->st_size;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    id->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

void cw_file_id_of(const char *path, struct cw_file_id *id)
{
    struct stat st;

    memset(id, 0, sizeof(*id));
    if (stat(path, &st) == 0)
        file_id_from_stat(&st, id);
}

bool cw_file_id_equal(const struct cw_file_id *a, const struct cw_file_id *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

bool cw_settings_targets_changed(const struct cw_settings *s)
{
    struct cw_file_id now;
    size_t i;

    for (i = 0; s != NULL && i < s->ntsrc; i++) {
        cw_file_id_of(s->tsrc[i].path, &now);
        if (!cw_file_id_equal(&now, &s->tsrc[i].seen))
            return true;
    }
    return false;
}

/* targets_read() reads regular file 'path' into 'b' and its identity, from
 * the open descriptor, into 'id' (so that what was read is what is
 * remembered). A FIFO or device is refused without blocking. */
static int targets_read(const char *path, struct cw_buf *b, struct cw_file_id *id, char *why,
                        size_t whylen)
{
    struct stat st;
    int fd, rc;

    memset(id, 0, sizeof(*id));
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        cw_strerror_r(errno, why, whylen);
        return CW_EIO;
    }
    if (fstat(fd, &st) != 0) {
        cw_strerror_r(errno, why, whylen);
        close(fd);
        return CW_EIO;
    }
    file_id_from_stat(&st, id);
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(fd);
        return CW_EPARSE;
    }
    rc = cw_buf_read_fd(b, fd, SETTINGS_MAX_FILESIZE, why, whylen);
    close(fd);
    return rc;
}

static const struct cw_targets_src *prev_src(const struct load_index *ix, const char *key)
{
    size_t i;

    for (i = 0; ix->prev != NULL && i < ix->prev->ntsrc; i++) {
        if (strcmp(ix->prev->tsrc[i].key, key) == 0)
            return &ix->prev->tsrc[i];
    }
    return NULL;
}

static int tsrc_push(struct cw_settings *s, struct cw_targets_src *src)
{
    struct cw_targets_src *v = realloc(s->tsrc, (s->ntsrc + 1) * sizeof(*v));

    if (v == NULL)
        return CW_ENOMEM;
    s->tsrc = v;
    s->tsrc[s->ntsrc++] = *src;
    return CW_OK;
}

/* stanza_targets_file() makes the instances of the file named by 'tf' into
 * st->p and records the source in 'src'. A version that does not load
 * gives way to the one 'prev' had, if any. */
/* stanza_from_previous() loads the stanza from the text 'old' last loaded
 * (the file is unchanged, or its new version was rejected), kept in 'src'. */
static int stanza_from_previous(struct stanza *st, struct load_index *ix, const struct cw_node *tf,
                                struct cw_targets_src *src, const struct cw_targets_src *old,
                                struct cw_diag *diag)
{
    struct cw_diag ld;
    int rc;

    src->text = malloc(old->len + 1);
    if (src->text == NULL) {
        cw_diagf(diag, tf, "out of memory");
        return CW_ENOMEM;
    }
    memcpy(src->text, old->text, old->len + 1);
    src->len = old->len;
    cw_diag_init(&ld);
    rc = stanza_from_file(st, ix, src->path, src->text, src->len, &ld);
    diag_merge(diag, &ld);
    cw_diag_reset(&ld);
    src->ntargets = st->p.n;
    return rc;
}

static int stanza_targets_file(struct stanza *st, struct load_index *ix, const struct cw_node *tf,
                               struct cw_targets_src *src, struct cw_diag *diag)
{
    const struct cw_targets_src *old;
    struct cw_diag ld;
    struct cw_buf kb, b;
    char why[160];
    int rc;

    if (tf->type != CW_NODE_SCALAR || cw_node_is_null(tf)) {
        cw_diagf(diag, tf, "must be the path of a file_sd file, not a %s", cw_node_type_name(tf));
        return CW_ECONFIG;
    }
    src->path = cw_node_path(tf, tf->scalar);
    cw_buf_init(&kb, 1u << 16);
    if (src->path == NULL ||
        cw_buf_addf(&kb, "%s\x1f%s\x1f%s", st->svc->name != NULL ? st->svc->name : "",
                    st->kind->name, src->path) != CW_OK) {
        cw_buf_reset(&kb);
        cw_diagf(diag, tf, "out of memory");
        return CW_ENOMEM;
    }
    src->key = cw_buf_take(&kb, NULL);
    if (src->key == NULL) {
        cw_diagf(diag, tf, "out of memory");
        return CW_ENOMEM;
    }
    old = prev_src(ix, src->key);
    if (old != NULL && !ix->reread) {
        cw_file_id_of(src->path, &src->seen);
        if (cw_file_id_equal(&src->seen, &old->seen)) {
            /* Unchanged since the last load: its outcome stands, not read again. */
            src->seen = old->seen;
            src->failed = old->failed;
            if (old->error != NULL)
                src->error = strdup(old->error);
            return stanza_from_previous(st, ix, tf, src, old, diag);
        }
    }

    src->read_now = true;
    cw_diag_init(&ld);
    cw_buf_init(&b, SETTINGS_MAX_FILESIZE);
    rc = targets_read(src->path, &b, &src->seen, why, sizeof(why));
    if (rc != CW_OK)
        cw_diagf(&ld, tf, "cannot read %s: %s", src->path, why);
    else
        rc = stanza_from_file(st, ix, src->path, cw_buf_str(&b), b.len, &ld);
    if (rc == CW_OK) {
        src->len = b.len;
        src->text = cw_buf_take(&b, NULL);
        if (src->text == NULL)
            src->text = strdup(""); /* an empty buffer: never loads, but keep it whole */
        cw_diag_reset(&ld);
        if (src->text == NULL) {
            cw_diagf(diag, tf, "out of memory");
            return CW_ENOMEM;
        }
        src->ntargets = st->p.n;
        return CW_OK;
    }
    cw_buf_reset(&b);
    stanza_reset_targets(st);
    if (old == NULL || rc == CW_ENOMEM) {
        diag_merge(diag, &ld);
        cw_diag_reset(&ld);
        return CW_ECONFIG;
    }
    /* Rejected: the stanza keeps the previous version's targets. */
    src->failed = true;
    src->error = strdup(ld.n != 0 ? ld.entries[0].text : "rejected");
    cw_diag_reset(&ld);
    return stanza_from_previous(st, ix, tf, src, old, diag);
}

/* load_targets() loads a check stanza that lists its targets ('tl') or
 * names a targets file ('tf'); one of them is set. */
static int load_targets(struct cw_settings *s, struct load_index *ix, const struct cw_node *c,
                        const struct cw_check_kind *kind, const struct cw_node *opts,
                        const struct cw_node *tl, const struct cw_node *tf,
                        const struct service_ctx *svc, const struct global_opts *g,
                        struct cw_diag *diag)
{
    struct stanza st;
    struct cw_targets_src src;
    struct cw_diag ld;
    size_t i;
    int rc = CW_OK;

    memset(&src, 0, sizeof(src));
    if (tl != NULL && tf != NULL) {
        cw_diagf_key(diag, tf, "use either targets or targets_file, not both");
        return CW_ECONFIG;
    }
    for (i = 0; i < opts->nitems; i++) {
        const struct cw_node *o = opts->items[i];

        if (strcmp(o->key, kind->probe_option) == 0) {
            cw_diagf_key(diag, o, "\"%s\" and \"%s\" exclude each other: list every %s in %s",
                         o->key, tl != NULL ? "targets" : "targets_file", o->key,
                         tl != NULL ? "targets" : "the targets file");
            rc = CW_ECONFIG;
        } else if (strcmp(o->key, "name") == 0) {
            cw_diagf_key(diag, o,
                         "a check with %s is named by each target; one name would be shared",
                         tl != NULL ? "targets" : "targets_file");
            rc = CW_ECONFIG;
        }
    }
    if (tl != NULL && tl->type != CW_NODE_SEQ) {
        cw_diagf(diag, tl, "must be a list of targets, not a %s", cw_node_type_name(tl));
        return CW_ECONFIG;
    }
    if (tl != NULL && tl->nitems == 0) {
        cw_diagf(diag, tl, "must list at least one target");
        return CW_ECONFIG;
    }
    if (rc != CW_OK)
        return rc;

    memset(&st, 0, sizeof(st));
    st.kind = kind;
    st.check = c;
    st.svc = svc;
    st.g = g;
    st.from_file = tf != NULL;
    st.opts = *opts;
    st.opts.items = calloc(opts->nitems, sizeof(*st.opts.items));
    if (st.opts.items == NULL) {
        cw_diagf(diag, c, "out of memory");
        return CW_ENOMEM;
    }
    st.opts.nitems = 0;
    for (i = 0; i < opts->nitems; i++) {
        if (opts->items[i] != tl && opts->items[i] != tf)
            st.opts.items[st.opts.nitems++] = opts->items[i];
    }
    st.opts.nitems++; /* the target's slot: 'targets' or 'targets_file' had one */
    cw_strindex_init(&st.seen);

    if (tl != NULL) {
        cw_diag_init(&ld);
        for (i = 0; i < tl->nitems; i++) {
            const struct cw_node *e = tl->items[i];

            if (e->type != CW_NODE_SCALAR || cw_node_is_null(e)) {
                cw_diagf(&ld, e, "a target is a non-empty string, not a%s %s",
                         e->type == CW_NODE_SCALAR ? "n" : "", cw_node_type_name(e));
                rc = CW_ECONFIG;
            } else if (stanza_add(&st, ix, e, svc, &ld) != CW_OK) {
                rc = CW_ECONFIG;
            }
        }
        diag_merge(diag, &ld);
        cw_diag_reset(&ld);
    } else {
        rc = stanza_targets_file(&st, ix, tf, &src, diag);
        if (rc == CW_OK && tsrc_push(s, &src) != CW_OK) {
            cw_diagf(diag, tf, "out of memory");
            rc = CW_ENOMEM;
        }
        if (rc != CW_OK) {
            free(src.key);
            free(src.path);
            free(src.text);
            free(src.error);
        }
    }
    cw_strindex_reset(&st.seen);
    free(st.opts.items);
    if (rc != CW_OK) {
        pending_drop(&st.p);
        return CW_ECONFIG;
    }
    for (i = 0; i < st.p.n; i++) {
        if (settings_add(s, ix, st.p.v[i], c, diag) != CW_OK)
            rc = CW_ECONFIG; /* settings_add() took the reference */
    }
    free(st.p.v);
    return rc;
}

static int load_check(struct cw_settings *s, struct load_index *ix, const struct cw_node *c,
                      const struct service_ctx *svc, const struct global_opts *g,
                      struct cw_diag *diag)
{
    const struct cw_check_kind *kind;
    const struct cw_node *opts;
    struct cw_instance *in;
    struct cw_buf kl;

    if (c->type != CW_NODE_MAP || c->nitems != 1) {
        cw_diagf(diag, c,
                 "a check is a mapping with one key naming its kind, e.g. "
                 "\"- tcp: {target: \\\"host:443\\\"}\"");
        return CW_ECONFIG;
    }
    opts = c->items[0];
    kind = cw_check_kind_find(opts->key);
    if (kind == NULL || (kind->flags & CW_KIND_SECTION)) {
        cw_buf_init(&kl, 4096);
        kinds_list(&kl);
        if (kind != NULL)
            cw_diagf_key(diag, opts, "%s is configured in the top-level \"%s:\" section",
                         kind->name, kind->name);
        else
            cw_diagf_key(diag, opts, "unknown check kind \"%s\" (known: %s)", opts->key,
                         cw_buf_str(&kl));
        cw_buf_reset(&kl);
        return CW_ECONFIG;
    }
    if (cw_node_is_null(opts))
        opts = NULL;
    else if (opts->type != CW_NODE_MAP) {
        cw_diagf(diag, opts, "must be a mapping of options, not a %s", cw_node_type_name(opts));
        return CW_ECONFIG;
    }
    if (opts != NULL && kind->probe_option != NULL) {
        const struct cw_node *tl = cw_node_get(opts, "targets");
        const struct cw_node *tf = cw_node_get(opts, "targets_file");

        if (tl != NULL || tf != NULL)
            return load_targets(s, ix, c, kind, opts, tl, tf, svc, g, diag);
    }
    in = instance_new(kind, c->items[0], opts, svc, g, diag);
    if (in == NULL)
        return CW_ECONFIG;
    return settings_add(s, ix, in, c, diag);
}

static const char *const top_keys[] = {"global", "host", "probe", "services", NULL};

struct service_opts {
    char *name;
    struct cw_strmap labels;
};

static const struct cw_opt service_opts[] = {
    CW_OPT("name", CW_OPT_T_STRING, struct service_opts, name, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("labels", CW_OPT_T_STRING_MAP, struct service_opts, labels, NULL, 0, 0, 0),
    CW_OPT_END,
};
static const char *const service_known[] = {"checks", NULL};

/* service_name_is_new() indexes the service's name as written and reports
 * (to 'diag' unless NULL) a name seen before. */
static int service_name_is_new(struct load_index *ix, const struct cw_node *sn,
                               struct cw_diag *diag)
{
    const struct cw_node *name = cw_node_get(sn, "name");
    void *found;

    if (name == NULL || name->type != CW_NODE_SCALAR)
        return CW_OK;
    if (cw_strindex_add(&ix->services, name->scalar, (void *)name, &found) != CW_OK) {
        if (diag != NULL)
            cw_diagf(diag, name, "out of memory");
        return CW_ENOMEM;
    }
    if (found != NULL) {
        if (diag != NULL)
            cw_diagf(diag, name, "duplicate service name \"%s\" (line %u)", name->scalar,
                     ((const struct cw_node *)found)->line);
        return CW_ECONFIG;
    }
    return CW_OK;
}

static int load_service(struct cw_settings *s, struct load_index *ix, const struct cw_node *sn,
                        const struct global_opts *g, struct cw_diag *diag)
{
    struct service_opts so;
    struct service_ctx ctx;
    const struct cw_node *checks;
    size_t i;
    int rc, name_rc;

    memset(&so, 0, sizeof(so));
    rc = cw_opts_apply(service_opts, &so, sn, service_known, diag);
    /* Indexed even when this service has errors: later ones still compare with it. */
    name_rc = service_name_is_new(ix, sn, rc == CW_OK ? diag : NULL);
    if (rc != CW_OK)
        goto out;
    if (so.name[0] == '\0') {
        cw_diagf(diag, cw_node_get(sn, "name"), "must not be empty");
        rc = CW_ECONFIG;
    }
    if (name_rc != CW_OK)
        rc = CW_ECONFIG;
    for (i = 0; i < so.labels.n; i++) {
        const struct cw_node *ln = cw_node_get(cw_node_get(sn, "labels"), so.labels.keys[i]);

        if (!cw_label_name_is_valid(so.labels.keys[i]) ||
            strncmp(so.labels.keys[i], "__", 2) == 0) {
            cw_diagf_key(diag, ln, "\"%s\" is not a valid label name", so.labels.keys[i]);
            rc = CW_ECONFIG;
            continue;
        }
        if (label_is_reserved(so.labels.keys[i])) {
            cw_diagf_key(diag, ln, "label \"%s\" is set by connwatch itself", so.labels.keys[i]);
            rc = CW_ECONFIG;
        }
    }
    checks = cw_node_get(sn, "checks");
    if (checks == NULL || cw_node_is_null(checks)) {
        cw_diagf(diag, sn, "missing required field \"checks\"");
        rc = CW_ECONFIG;
        goto out;
    }
    if (checks->type != CW_NODE_SEQ) {
        cw_diagf(diag, checks, "must be a list of checks, not a %s", cw_node_type_name(checks));
        rc = CW_ECONFIG;
        goto out;
    }
    ctx.name = so.name;
    ctx.labels = &so.labels;
    for (i = 0; i < checks->nitems; i++) {
        if (load_check(s, ix, checks->items[i], &ctx, g, diag) != CW_OK)
            rc = CW_ECONFIG;
    }
out:
    cw_opts_release(service_opts, &so);
    return rc;
}

struct host_opts {
    bool enabled;
};

static const struct cw_opt host_opts[] = {
    CW_OPT("enabled", CW_OPT_T_BOOL, struct host_opts, enabled, "true", 0, 0, 0),
    CW_OPT_END,
};

static int load_sections(struct cw_settings *s, struct load_index *ix, const struct cw_node *root,
                         const struct global_opts *g, struct cw_diag *diag)
{
    size_t i;
    int rc = CW_OK;

    for (i = 0; cw_check_kinds[i] != NULL; i++) {
        const struct cw_check_kind *kind = cw_check_kinds[i];
        const struct cw_node *sec;
        struct host_opts ho = {0};
        struct service_ctx none = {NULL, NULL};
        struct cw_instance *in;
        const struct cw_node *only_enabled;

        if (!(kind->flags & CW_KIND_SECTION))
            continue;
        sec = cw_node_get(root, kind->name);
        if (sec != NULL && cw_node_is_null(sec))
            sec = NULL;
        if (sec != NULL && sec->type != CW_NODE_MAP) {
            cw_diagf(diag, sec, "must be a mapping, not a %s", cw_node_type_name(sec));
            rc = CW_ECONFIG;
            continue;
        }
        /* "enabled" is ours; the kind and the timing table read the rest. */
        only_enabled = cw_node_get(sec, "enabled");
        if (only_enabled != NULL) {
            struct cw_node wrap = *sec;
            const struct cw_node *one[1] = {only_enabled};

            wrap.items = (struct cw_node **)one;
            wrap.nitems = 1;
            if (cw_opts_apply(host_opts, &ho, &wrap, NULL, diag) != CW_OK) {
                rc = CW_ECONFIG;
                continue;
            }
        } else {
            ho.enabled = sec != NULL || (kind->flags & CW_KIND_ON_BY_DEFAULT);
        }
        if (!ho.enabled)
            continue;
        in = instance_new(kind, sec != NULL ? sec : root, sec, &none, g, diag);
        if (in == NULL) {
            rc = CW_ECONFIG;
            continue;
        }
        if (settings_add(s, ix, in, sec != NULL ? sec : root, diag) != CW_OK)
            rc = CW_ECONFIG;
    }
    return rc;
}

/* yaml_add_quoted() appends 's' as a double-quoted YAML scalar; control
 * characters are refused. */
static int yaml_add_quoted(struct cw_buf *y, const char *s)
{
    int rc = cw_buf_addc(y, '"');

    for (; *s != '\0' && rc == CW_OK; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return CW_EPARSE;
        if (*s == '"' || *s == '\\')
            rc = cw_buf_addc(y, '\\');
        if (rc == CW_OK)
            rc = cw_buf_addc(y, *s);
    }
    if (rc == CW_OK)
        rc = cw_buf_addc(y, '"');
    return rc;
}

struct cw_instance *cw_settings_probe_instance(const struct cw_check_kind *kind, const char *target,
                                               cw_duration timeout,
                                               const struct cw_probe_rule *rule,
                                               struct cw_diag *diag)
{
    const struct cw_strmap *options = rule != NULL ? &rule->options : NULL;
    struct global_opts g = {.interval = timeout, .timeout = timeout, .max_concurrent = 1};
    struct service_ctx none = {NULL, NULL};
    struct cw_instance *in = NULL;
    struct cw_node *root;
    struct cw_buf y;
    size_t i;
    int rc;

    if (g.interval < CW_MS(100))
        g.interval = CW_MS(100);
    /* The target and the rule's options become double-quoted YAML scalars,
     * then go through the same loader as a file. */
    cw_buf_init(&y, 65536);
    rc = cw_buf_addf(&y, "%s: ", kind->probe_option);
    if (rc == CW_OK)
        rc = yaml_add_quoted(&y, target);
    for (i = 0; options != NULL && i < options->n && rc == CW_OK; i++) {
        rc = cw_buf_addf(&y, "\n%s: ", options->keys[i]);
        if (rc == CW_OK)
            rc = yaml_add_quoted(&y, options->values[i]);
    }
    if (rc == CW_OK)
        rc = cw_buf_addc(&y, '\n');
    if (rc != CW_OK) {
        cw_diag_fileerr(diag, "probe", "%s",
                        rc == CW_EPARSE ? "target contains a control character"
                                        : "target too long");
        cw_buf_reset(&y);
        return NULL;
    }
    root = cw_node_parse("probe", cw_buf_str(&y), y.len, diag);
    cw_buf_reset(&y);
    if (root == NULL)
        return NULL;
    in = instance_new(kind, root, root, &none, &g, diag);
    cw_node_free(root);
    if (in != NULL) {
        in->probe = true;
        in->info.probe_rule = rule; /* run() checks redirects against it */
    }
    return in;
}

static struct cw_settings *settings_from_root(const struct cw_node *root, const char *file,
                                              const char *text, size_t textlen,
                                              const struct cw_settings *prev, bool reread,
                                              struct cw_diag *diag)
{
    struct cw_settings *s;
    struct global_opts g;
    struct load_index ix;
    const struct cw_node *services;
    size_t i;
    int rc = CW_OK;

    cw_strindex_init(&ix.keys);
    cw_strindex_init(&ix.services);
    ix.prev = prev;
    ix.reread = reread;
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        cw_diag_fileerr(diag, file, "out of memory");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->file = strdup(file);
    s->text = malloc(textlen + 1);
    if (s->file == NULL || s->text == NULL)
        goto out_fail;
    memcpy(s->text, text, textlen);
    s->text[textlen] = '\0';
    s->textlen = textlen;

    if (root->type != CW_NODE_MAP) {
        cw_diagf(diag, root, "the configuration must be a mapping with global, host, services");
        goto out_fail;
    }
    for (i = 0; i < root->nitems; i++) {
        size_t k;
        bool known = false;

        for (k = 0; top_keys[k] != NULL; k++)
            known = known || strcmp(top_keys[k], root->items[i]->key) == 0;
        if (!known) {
            cw_diagf_key(diag, root->items[i],
                         "unknown field \"%s\" (expected global, host, probe, services)",
                         root->items[i]->key);
            rc = CW_ECONFIG;
        }
    }

    memset(&g, 0, sizeof(g));
    if (cw_opts_apply(global_opts, &g, cw_node_get(root, "global"), NULL, diag) != CW_OK) {
        rc = CW_ECONFIG;
        /* Keep checking the rest against sane defaults. */
        g.interval = g.interval != 0 ? g.interval : CW_S(15);
        g.timeout = g.timeout != 0 ? g.timeout : CW_S(5);
    }
    if (g.timeout > g.interval) {
        char d1[32], d2[32];

        cw_diagf(diag, cw_node_get(cw_node_get(root, "global"), "timeout"),
                 "timeout %s must not exceed interval %s",
                 cw_duration_format(g.timeout, d1, sizeof(d1)),
                 cw_duration_format(g.interval, d2, sizeof(d2)));
        rc = CW_ECONFIG;
    }
    s->interval = g.interval;
    s->timeout = g.timeout;
    s->max_concurrent = g.max_concurrent;

    if (load_sections(s, &ix, root, &g, diag) != CW_OK)
        rc = CW_ECONFIG;
    if (cw_probe_allow_load(s, root, g.timeout, diag) != CW_OK)
        rc = CW_ECONFIG;

    services = cw_node_get(root, "services");
    if (services != NULL && !cw_node_is_null(services)) {
        if (services->type != CW_NODE_SEQ) {
            cw_diagf(diag, services, "must be a list of services, not a %s",
                     cw_node_type_name(services));
            rc = CW_ECONFIG;
        } else {
            for (i = 0; i < services->nitems; i++) {
                if (services->items[i]->type != CW_NODE_MAP) {
                    cw_diagf(diag, services->items[i], "must be a mapping, not a %s",
                             cw_node_type_name(services->items[i]));
                    rc = CW_ECONFIG;
                    continue;
                }
                if (load_service(s, &ix, services->items[i], &g, diag) != CW_OK)
                    rc = CW_ECONFIG;
            }
        }
    }
    cw_opts_release(global_opts, &g);
    if (rc != CW_OK)
        goto out_fail;
    cw_strindex_reset(&ix.keys);
    cw_strindex_reset(&ix.services);
    return s;

out_fail:
    cw_strindex_reset(&ix.keys);
    cw_strindex_reset(&ix.services);
    if (diag->n == 0)
        cw_diag_fileerr(diag, file, "configuration rejected");
    cw_settings_unref(s);
    return NULL;
}

static struct cw_settings *settings_from_text(const char *name, const char *text, size_t len,
                                              const struct cw_settings *prev, bool reread,
                                              struct cw_diag *diag)
{
    struct cw_node *root = cw_node_parse(name, text, len, diag);
    struct cw_settings *s;

    if (root == NULL)
        return NULL;
    s = settings_from_root(root, name, text, len, prev, reread, diag);
    cw_node_free(root);
    return s;
}

struct cw_settings *cw_settings_load_text(const char *name, const char *text, struct cw_diag *diag)
{
    return settings_from_text(name, text, strlen(text), NULL, true, diag);
}

struct cw_settings *cw_settings_load_builtin(const char *self_target, struct cw_diag *diag)
{
    char text[sizeof(default_config_fmt) + 300];
    const char *p;

    if (self_target == NULL)
        self_target = CW_DEFAULT_SELF_TARGET;
    for (p = self_target; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
            break;
    }
    if (*p != '\0' || strlen(self_target) > 256)
        self_target = CW_DEFAULT_SELF_TARGET; /* not an address: never a YAML injection */
    snprintf(text, sizeof(text), default_config_fmt, self_target);
    return cw_settings_load_text("<built-in>", text, diag);
}

struct cw_settings *cw_settings_load_prev(const char *path, const struct cw_settings *prev,
                                          struct cw_diag *diag)
{
    struct cw_settings *s;
    struct cw_buf b;
    char why[160];

    if (path == NULL)
        return cw_settings_load_builtin(NULL, diag);
    cw_buf_init(&b, SETTINGS_MAX_FILESIZE);
    if (cw_buf_read_file(&b, path, why, sizeof(why)) != CW_OK) {
        cw_diag_fileerr(diag, path, "cannot read: %s", why);
        cw_buf_reset(&b);
        return NULL;
    }
    s = settings_from_text(path, cw_buf_str(&b), b.len, prev, true, diag);
    cw_buf_reset(&b);
    return s;
}

struct cw_settings *cw_settings_load(const char *path, struct cw_diag *diag)
{
    return cw_settings_load_prev(path, NULL, diag);
}

struct cw_settings *cw_settings_refresh(const struct cw_settings *prev, struct cw_diag *diag)
{
    return settings_from_text(prev->file, prev->text, prev->textlen, prev, false, diag);
}

static int inst_cmp_key(const void *a, const void *b)
{
    const struct cw_instance *x = *(struct cw_instance *const *)a;
    const struct cw_instance *y = *(struct cw_instance *const *)b;

    return strcmp(x->key, y->key);
}

size_t cw_settings_adopt(struct cw_settings *fresh, const struct cw_settings *old)
{
    struct cw_instance **sorted;
    size_t i, kept = 0;

    if (old == NULL || old->ninst == 0)
        return 0;
    /* Sorted by key: a reload of 10,000 checks stays O(n log n). */
    sorted = malloc(old->ninst * sizeof(*sorted));
    if (sorted == NULL)
        return 0; /* nothing kept is correct, only less smooth */
    memcpy(sorted, old->inst, old->ninst * sizeof(*sorted));
    qsort(sorted, old->ninst, sizeof(*sorted), inst_cmp_key);
    for (i = 0; i < fresh->ninst; i++) {
        struct cw_instance **hit =
            bsearch(&fresh->inst[i], sorted, old->ninst, sizeof(*sorted), inst_cmp_key);

        if (hit != NULL && strcmp(fresh->inst[i]->fingerprint, (*hit)->fingerprint) == 0) {
            cw_instance_unref(fresh->inst[i]);
            fresh->inst[i] = cw_instance_ref(*hit);
            kept++;
        }
    }
    free(sorted);
    return kept;
}
