/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file_sd.h - Prometheus's file-based service discovery format, the text a
 * check's targets_file names.
 *
 * The file is a list of target groups, JSON or YAML (libyaml reads both:
 * JSON is YAML's flow style):
 *
 *     [{"targets": ["10.0.0.1:443", "db1:3306"], "labels": {"env": "prod"}}]
 *
 * cw_file_sd_parse() checks the shape, the label names and the values and
 * keeps the node tree, so that the loader can report a bad target at its
 * file:line:col. What a target means is the check kind's business; which
 * label names connwatch reserves is the loader's. Pure: no I/O, no state,
 * callable from any thread.
 */
#ifndef CW_FILE_SD_H
#define CW_FILE_SD_H

#include "core/config.h"

#include <stddef.h>

/* One target group: its targets and labels, borrowed from the tree. */
struct cw_sd_group {
    const struct cw_node *node;    /* the group's mapping */
    const struct cw_node *targets; /* a list of non-empty strings (may be empty) */
    const struct cw_node *labels;  /* a mapping of strings, or NULL */
};

struct cw_file_sd {
    struct cw_node *root;       /* owned: the parsed file */
    struct cw_sd_group *groups; /* owned */
    size_t ngroups;
    size_t ntargets; /* over all groups */
};

/* cw_file_sd_parse() parses 'len' bytes of file_sd text named 'name' into
 * 'out' (which it initialises). out->groups lists the groups whose targets
 * are well-formed, even when the result is CW_ECONFIG, so that a caller can
 * report the problems of their targets too. Every problem goes to 'diag' as
 * "name:line:col: path: message": YAML or JSON syntax, an empty document
 * (a file caught while being written; "[]" lists no targets), a top level
 * that is not a list, a group that is not a mapping or has fields other
 * than targets and labels, a missing targets list, a target that is not a
 * non-empty string, a label name that is not a Prometheus label name, a
 * label value that is not a string. Labels whose names begin with "__" are
 * kept in the tree and skipped by cw_file_sd_label_is_used() (Prometheus
 * drops them from the series too). Returns CW_OK, CW_ECONFIG (release
 * 'out' anyway) or CW_ENOMEM. */
CW_MUST_CHECK int cw_file_sd_parse(const char *name, const char *text, size_t len,
                                   struct cw_file_sd *out, struct cw_diag *diag);

/* cw_file_sd_label_is_used() tells whether label node 'l' (an item of a
 * group's labels) becomes a label of the series: a string, not a "__"
 * name. */
bool cw_file_sd_label_is_used(const struct cw_node *l);

/* cw_file_sd_reset() frees what 'sd' owns and leaves it empty. */
void cw_file_sd_reset(struct cw_file_sd *sd);

#endif
