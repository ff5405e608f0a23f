/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_sd.c - Prometheus file_sd target groups from a node tree. See
 * file_sd.h. The text goes through cw_node_parse() (libyaml), so JSON and
 * YAML files get the same positions, limits and syntax messages as the
 * configuration itself.
 */
#include "file_sd.h"

#include "core/metric.h"

#include <stdlib.h>
#include <string.h>

bool cw_file_sd_label_is_used(const struct cw_node *l)
{
    return l->type == CW_NODE_SCALAR && strncmp(l->key, "__", 2) != 0;
}

/* group_check() checks one group; *usable tells whether its targets can
 * be expanded (a bad label does not stop that, so that the loader reports
 * the problems of its targets too). */
static int group_check(const struct cw_node *g, struct cw_sd_group *out, size_t *ntargets,
                       bool *usable, struct cw_diag *diag)
{
    const struct cw_node *t, *l;
    size_t i;
    int rc = CW_OK;

    *usable = false;
    if (g->type != CW_NODE_MAP) {
        cw_diagf(diag, g, "a target group is a mapping with targets and labels, not a %s",
                 cw_node_type_name(g));
        return CW_ECONFIG;
    }
    for (i = 0; i < g->nitems; i++) {
        const char *k = g->items[i]->key;

        if (strcmp(k, "targets") != 0 && strcmp(k, "labels") != 0) {
            cw_diagf_key(diag, g->items[i], "unknown field \"%s\" (expected targets, labels)", k);
            rc = CW_ECONFIG;
        }
    }
    t = cw_node_get(g, "targets");
    if (t == NULL) {
        cw_diagf(diag, g, "missing required field \"targets\"");
        return CW_ECONFIG;
    }
    if (t->type != CW_NODE_SEQ && !cw_node_is_null(t)) {
        cw_diagf(diag, t, "must be a list of targets, not a %s", cw_node_type_name(t));
        return CW_ECONFIG;
    }
    for (i = 0; t->type == CW_NODE_SEQ && i < t->nitems; i++) {
        const struct cw_node *e = t->items[i];

        if (e->type != CW_NODE_SCALAR) {
            cw_diagf(diag, e, "a target is a string, not a %s", cw_node_type_name(e));
            rc = CW_ECONFIG;
        } else if (e->scalar[0] == '\0' || cw_node_is_null(e)) {
            cw_diagf(diag, e, "a target must not be empty");
            rc = CW_ECONFIG;
        }
    }
    if (rc != CW_OK)
        return rc;
    l = cw_node_get(g, "labels");
    if (l != NULL && cw_node_is_null(l))
        l = NULL;
    if (l != NULL && l->type != CW_NODE_MAP) {
        cw_diagf(diag, l, "must be a mapping of label names to values, not a %s",
                 cw_node_type_name(l));
        return CW_ECONFIG;
    }
    for (i = 0; l != NULL && i < l->nitems; i++) {
        const struct cw_node *v = l->items[i];

        if (!cw_label_name_is_valid(v->key)) {
            cw_diagf_key(diag, v, "\"%s\" is not a valid label name", v->key);
            rc = CW_ECONFIG;
        } else if (v->type != CW_NODE_SCALAR) {
            cw_diagf(diag, v, "a label value is a string, not a %s", cw_node_type_name(v));
            rc = CW_ECONFIG;
        }
    }
    out->node = g;
    out->targets = t->type == CW_NODE_SEQ ? t : NULL;
    out->labels = l;
    *ntargets += t->type == CW_NODE_SEQ ? t->nitems : 0;
    *usable = true;
    return rc;
}

int cw_file_sd_parse(const char *name, const char *text, size_t len, struct cw_file_sd *out,
                     struct cw_diag *diag)
{
    size_t i, before = diag->n;
    int rc = CW_OK;

    memset(out, 0, sizeof(*out));
    out->root = cw_node_parse(name, text, len, diag);
    if (out->root == NULL)
        return diag->n > before ? CW_ECONFIG : CW_ENOMEM;
    /* cw_node_parse() gives an empty document as an empty mapping. */
    if (out->root->type == CW_NODE_MAP && out->root->nitems == 0) {
        cw_diag_fileerr(diag, name,
                        "empty file: a file_sd file is a list of {targets, labels} groups "
                        "(\"[]\" for none)");
        return CW_ECONFIG;
    }
    if (out->root->type != CW_NODE_SEQ) {
        cw_diagf(diag, out->root, "a file_sd file is a list of {targets, labels} groups, not a %s",
                 cw_node_type_name(out->root));
        return CW_ECONFIG;
    }
    if (out->root->nitems != 0) {
        out->groups = calloc(out->root->nitems, sizeof(*out->groups));
        if (out->groups == NULL) {
            cw_diag_fileerr(diag, name, "out of memory");
            return CW_ENOMEM;
        }
    }
    for (i = 0; i < out->root->nitems; i++) {
        bool usable;

        if (group_check(out->root->items[i], &out->groups[out->ngroups], &out->ntargets, &usable,
                        diag) != CW_OK)
            rc = CW_ECONFIG;
        if (usable)
            out->ngroups++;
    }
    return rc;
}

void cw_file_sd_reset(struct cw_file_sd *sd)
{
    cw_node_free(sd->root);
    free(sd->groups);
    memset(sd, 0, sizeof(*sd));
}
