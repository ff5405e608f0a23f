/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - the configuration of connwatch-relay (config.h): top-level
 * options, the options every receiver has, the kind's own mapping handed
 * to its configure(), and the cross-receiver rules (unique names, fallback
 * names another receiver).
 *
 * Validation goes on after a problem, as the exporter's does: every bad
 * receiver and every bad field is reported in one pass. Runs on the thread
 * that loads (main at start, a reload's thread, --config.check); the result
 * is owned by the caller.
 */
#include "alerts/relay/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const lang_choices[] = {"zh", "en", NULL};

static const struct cw_opt recv_opts[] = {
    CW_OPT("name", CW_OPT_T_STRING, struct cw_recv_common, name, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT_ENUM("language", struct cw_recv_common, language, "zh", lang_choices, 0),
    CW_OPT("title_template", CW_OPT_T_STRING, struct cw_recv_common, title_template, NULL, 0, 0, 0),
    CW_OPT("alert_template", CW_OPT_T_STRING, struct cw_recv_common, alert_template, NULL, 0, 0, 0),
    CW_OPT("fallback", CW_OPT_T_STRING, struct cw_recv_common, fallback, NULL, 0, 0, 0),
    CW_OPT("fallback_after", CW_OPT_T_DURATION, struct cw_recv_common, fallback_after, "5m", 0,
           CW_S(86400), 0),
    CW_OPT("retry_initial", CW_OPT_T_DURATION, struct cw_recv_common, retry_initial, "1s",
           CW_MS(10), CW_S(3600), 0),
    CW_OPT("retry_max", CW_OPT_T_DURATION, struct cw_recv_common, retry_max, "5m", CW_MS(10),
           CW_S(3600), 0),
    CW_OPT("timeout", CW_OPT_T_DURATION, struct cw_recv_common, timeout, "10s", CW_MS(100),
           CW_S(300), 0),
    CW_OPT("send_resolved", CW_OPT_T_BOOL, struct cw_recv_common, send_resolved, "true", 0, 0, 0),
    CW_OPT("min_severity", CW_OPT_T_STRING, struct cw_recv_common, min_severity, NULL, 0, 0, 0),
    CW_OPT("dead_letter_after", CW_OPT_T_INT, struct cw_recv_common, dead_letter_after, "3", 1, 100,
           0),
    CW_OPT("time_zone", CW_OPT_T_STRING, struct cw_recv_common, time_zone, "local", 0, 0, 0),
    CW_OPT_END,
};

static const struct cw_opt top_opts[] = {
    CW_OPT("spool_dir", CW_OPT_T_STRING, struct cw_relay_config, spool_dir,
           "/var/lib/connwatch-relay", 0, 0, 0),
    CW_OPT("dedupe_window", CW_OPT_T_DURATION, struct cw_relay_config, dedupe_window, "5m", 0,
           CW_S(86400), 0),
    CW_OPT("max_queue", CW_OPT_T_INT, struct cw_relay_config, max_queue, "10000", 1, 1000000, 0),
    CW_OPT("max_request_bytes", CW_OPT_T_INT, struct cw_relay_config, max_request_bytes, "1048576",
           1024, 64 << 20, 0),
    CW_OPT_END,
};
static const char *const top_also[] = {"receivers", NULL};

/* What receiver_load() needs besides the receiver, made once per load from
 * cw_receiver_kinds[]. */
struct kind_names {
    const char **keys; /* owned array, NULL-terminated; the strings are the kinds' (static) */
    char list[256];    /* "aliyun_sms, dingtalk, ..." for messages */
};

static int kind_names_init(struct kind_names *kn)
{
    size_t i, n = 0, off = 0;

    while (cw_receiver_kinds[n] != NULL)
        n++;
    kn->keys = calloc(n + 1, sizeof(*kn->keys));
    if (kn->keys == NULL)
        return CW_ENOMEM;
    kn->list[0] = '\0';
    for (i = 0; i < n; i++) {
        int w = snprintf(kn->list + off, sizeof(kn->list) - off, "%s%s", i > 0 ? ", " : "",
                         cw_receiver_kinds[i]->name);

        kn->keys[i] = cw_receiver_kinds[i]->name;
        if (w > 0 && (size_t)w < sizeof(kn->list) - off)
            off += (size_t)w;
    }
    return CW_OK;
}

static void receiver_release(struct cw_relay_receiver *r)
{
    if (r->kind != NULL && r->state != NULL) {
        r->kind->release(r->state);
        free(r->state);
    }
    cw_opts_release(recv_opts, &r->c);
}

void cw_relay_config_free(struct cw_relay_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->nrecv; i++)
        receiver_release(&cfg->recv[i]);
    free(cfg->recv);
    cw_opts_release(top_opts, cfg);
    free(cfg);
}

struct cw_relay_receiver *cw_relay_config_find(const struct cw_relay_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nrecv; i++) {
        if (cfg->recv[i].c.name != NULL && strcmp(cfg->recv[i].c.name, name) == 0)
            return &cfg->recv[i];
    }
    return NULL;
}

static bool name_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > 64 || s[0] == '.')
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* receiver_kind() finds the one kind key of receiver 'node' and returns its
 * mapping, or NULL (recorded) when there is none, more than one, or it is
 * not a mapping. r->kind is set whenever a kind key was found. */
static const struct cw_node *receiver_kind(struct cw_relay_receiver *r, const struct cw_node *node,
                                           const struct kind_names *kinds, struct cw_diag *diag)
{
    const struct cw_node *kn = NULL;
    bool several = false;
    size_t i;

    for (i = 0; cw_receiver_kinds[i] != NULL; i++) {
        const struct cw_node *k = cw_node_get(node, cw_receiver_kinds[i]->name);

        if (k == NULL)
            continue;
        if (r->kind != NULL) {
            cw_diagf_key(diag, k, "a receiver has exactly one kind (also %s)", r->kind->name);
            several = true;
            continue;
        }
        r->kind = cw_receiver_kinds[i];
        kn = k;
    }
    if (r->kind == NULL) {
        if (r->c.name != NULL)
            cw_diagf(diag, node, "receiver \"%s\" names no kind (%s)", r->c.name, kinds->list);
        else
            cw_diagf(diag, node, "a receiver names no kind (%s)", kinds->list);
        return NULL;
    }
    if (several)
        return NULL;
    if (kn->type != CW_NODE_MAP) {
        cw_diagf(diag, kn, "%s: want a mapping, got a %s", r->kind->name, cw_node_type_name(kn));
        return NULL;
    }
    return kn;
}

/* receiver_configure() hands the kind's mapping to the kind. */
static int receiver_configure(struct cw_relay_receiver *r, const struct cw_node *kn,
                              struct cw_diag *diag)
{
    size_t before = diag->n;
    int rc;

    r->state = calloc(1, r->kind->state_size);
    if (r->state == NULL)
        return CW_ENOMEM;
    r->caps = (struct cw_receiver_caps){0};
    rc = r->kind->configure(r->state, kn, &r->caps, diag);
    if (rc == CW_ENOMEM)
        return rc;
    if (rc != CW_OK && diag->n == before)
        cw_diagf(diag, kn, "%s: configuration rejected", r->kind->name);
    return rc != CW_OK ? CW_ECONFIG : CW_OK;
}

/* receiver_load() reads one receiver, recording every problem it finds.
 * Returns CW_OK, CW_ECONFIG, or CW_ENOMEM (the load stops). */
static int receiver_load(struct cw_relay_receiver *r, const struct cw_node *node,
                         const struct kind_names *kinds, struct cw_diag *diag)
{
    const struct cw_node *kn;
    const char *why = NULL, *ms;
    int rc = CW_OK;

    if (node->type != CW_NODE_MAP) {
        cw_diagf(diag, node, "a receiver is a mapping (name: ..., <kind>: {...})");
        return CW_ECONFIG;
    }
    if (cw_opts_apply(recv_opts, &r->c, node, kinds->keys, diag) != CW_OK)
        rc = CW_ECONFIG;
    if (r->c.name != NULL && !name_ok(r->c.name)) {
        cw_diagf(
            diag, cw_node_get(node, "name"),
            "receiver names use letters, digits, '_', '-' and '.', at most 64, no leading '.'");
        rc = CW_ECONFIG;
    }
    kn = receiver_kind(r, node, kinds, diag);
    if (kn == NULL)
        rc = CW_ECONFIG;
    if (r->c.title_template != NULL && !cw_tmpl_check(r->c.title_template, &why)) {
        cw_diagf(diag, cw_node_get(node, "title_template"), "%s", why);
        rc = CW_ECONFIG;
    }
    if (r->c.alert_template != NULL && !cw_tmpl_check(r->c.alert_template, &why)) {
        cw_diagf(diag, cw_node_get(node, "alert_template"), "%s", why);
        rc = CW_ECONFIG;
    }
    if (r->c.time_zone != NULL && !cw_tz_parse(r->c.time_zone, &r->tz, &why)) {
        cw_diagf(diag, cw_node_get(node, "time_zone"), "\"%s\": %s", r->c.time_zone, why);
        rc = CW_ECONFIG;
    }
    /* Both set (a bad value leaves 0): no second message about a bad one. */
    if (r->c.retry_initial != 0 && r->c.retry_max != 0 && r->c.retry_max < r->c.retry_initial) {
        cw_diagf(diag, cw_node_get(node, "retry_max"), "retry_max is shorter than retry_initial");
        rc = CW_ECONFIG;
    }
    if (kn != NULL) {
        int krc = receiver_configure(r, kn, diag);

        if (krc == CW_ENOMEM)
            return krc;
        if (krc != CW_OK)
            rc = CW_ECONFIG;
    }
    ms = r->c.min_severity != NULL ? r->c.min_severity : r->caps.min_severity;
    r->min_rank = 0;
    if (ms != NULL && strcmp(ms, "none") != 0) {
        r->min_rank = cw_severity_rank(ms);
        if (r->min_rank == 0) {
            cw_diagf(diag, cw_node_get(node, "min_severity"),
                     "min_severity is one of none, info, warning, critical");
            rc = CW_ECONFIG;
        }
    }
    return rc;
}

/* receivers_link() checks the rules between receivers: names are unique,
 * a fallback names another receiver (and is resolved). */
static int receivers_link(struct cw_relay_config *cfg, const struct cw_node *rn,
                          struct cw_diag *diag)
{
    size_t i, j;
    int rc = CW_OK;

    for (i = 0; i < cfg->nrecv; i++) {
        const char *name = cfg->recv[i].c.name;

        for (j = 0; name != NULL && j < i; j++) {
            if (cfg->recv[j].c.name != NULL && strcmp(cfg->recv[j].c.name, name) == 0) {
                cw_diagf(diag, cw_node_get(rn->items[i], "name"), "duplicate receiver name \"%s\"",
                         name);
                rc = CW_ECONFIG;
                break;
            }
        }
    }
    for (i = 0; i < cfg->nrecv; i++) {
        struct cw_relay_receiver *r = &cfg->recv[i];

        if (r->c.fallback == NULL)
            continue;
        for (j = 0; j < cfg->nrecv; j++) {
            if (j != i && cfg->recv[j].c.name != NULL &&
                strcmp(cfg->recv[j].c.name, r->c.fallback) == 0)
                r->fallback = &cfg->recv[j];
        }
        if (r->fallback == NULL) {
            cw_diagf(diag, cw_node_get(rn->items[i], "fallback"),
                     "fallback \"%s\" is not another receiver of this file", r->c.fallback);
            rc = CW_ECONFIG;
        }
    }
    return rc;
}

struct cw_relay_config *cw_relay_config_load(const char *file, struct cw_diag *diag)
{
    struct cw_relay_config *cfg;
    struct kind_names kinds = {.keys = NULL};
    struct cw_node *root;
    const struct cw_node *rn;
    size_t i;
    int rc = CW_OK, r;

    root = cw_node_parse_file(file, diag);
    if (root == NULL)
        return NULL;
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || kind_names_init(&kinds) != CW_OK)
        goto out_fail;
    if (root->type != CW_NODE_MAP) {
        cw_diagf(diag, root, "the relay configuration is a mapping");
        goto out_fail;
    }
    if (cw_opts_apply(top_opts, cfg, root, top_also, diag) != CW_OK)
        rc = CW_ECONFIG;
    rn = cw_node_get(root, "receivers");
    if (rn == NULL || rn->type != CW_NODE_SEQ || rn->nitems == 0) {
        cw_diagf(diag, rn != NULL ? rn : root, "receivers: want a non-empty list");
        goto out_fail;
    }
    cfg->recv = calloc(rn->nitems, sizeof(*cfg->recv));
    if (cfg->recv == NULL)
        goto out_fail;
    cfg->nrecv = rn->nitems;
    for (i = 0; i < rn->nitems; i++) {
        r = receiver_load(&cfg->recv[i], rn->items[i], &kinds, diag);
        if (r == CW_ENOMEM) {
            cw_diagf(diag, rn->items[i], "out of memory");
            goto out_fail;
        }
        if (r != CW_OK)
            rc = CW_ECONFIG;
    }
    if (receivers_link(cfg, rn, diag) != CW_OK)
        rc = CW_ECONFIG;
    if (rc != CW_OK)
        goto out_fail;
    free(kinds.keys);
    cw_node_free(root);
    return cfg;

out_fail:
    if (diag->n == 0)
        cw_diagf(diag, NULL, "out of memory");
    free(kinds.keys);
    cw_relay_config_free(cfg);
    cw_node_free(root);
    return NULL;
}
