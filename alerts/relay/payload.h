/* SPDX-License-Identifier: Apache-2.0 */
/*
 * payload.h - the Alertmanager webhook payload (version "4") of
 * connwatch-relay (payload.c): parse and validate, accessors, the dedupe key.
 *
 * A parsed message owns its jansson tree; the strings and objects of its
 * alerts borrow from it and are valid until cw_am_free(). Pure functions;
 * any thread.
 */
#ifndef CW_RELAY_PAYLOAD_H
#define CW_RELAY_PAYLOAD_H

#include "exporter/core/err.h"

#include <jansson.h>
#include <stddef.h>

struct cw_am_alert {
    const char *status;        /* borrowed from the message's root: "firing" or "resolved" */
    const char *fingerprint;   /* borrowed from the root; "" when absent */
    const char *starts_at;     /* borrowed from the root; RFC 3339 or "" */
    const char *ends_at;       /* borrowed from the root; RFC 3339 or "" */
    const char *generator_url; /* borrowed from the root; "" when absent */
    json_t *labels;            /* borrowed from the message's root: object of strings */
    json_t *annotations;       /* borrowed from the root; object of strings */
};

struct cw_am_msg {
    json_t *root;               /* owned: one reference, dropped by cw_am_free() */
    const char *status;         /* borrowed from root */
    const char *receiver;       /* borrowed from root */
    const char *group_key;      /* borrowed from root */
    const char *external_url;   /* borrowed from root; "" when absent */
    json_t *common_labels;      /* borrowed from root; may be NULL */
    struct cw_am_alert *alerts; /* owned: nalerts entries */
    size_t nalerts;
};

#define CW_AM_KEY_LEN 32 /* hex characters of a dedupe key */

/* cw_am_parse() parses and validates a webhook body: version "4", status,
 * receiver, groupKey and alerts[] with label objects. On failure returns
 * CW_EPARSE with a one-line reason in 'why'. 'out' is then empty. */
CW_MUST_CHECK int cw_am_parse(const char *body, size_t len, struct cw_am_msg *out, char *why,
                              size_t whylen);
void cw_am_free(struct cw_am_msg *m);

/* cw_am_label()/cw_am_annotation() return a label or annotation value, or "". */
const char *cw_am_label(const struct cw_am_alert *a, const char *name);
const char *cw_am_annotation(const struct cw_am_alert *a, const char *name);

/* cw_am_firing() counts the firing alerts of m->alerts[from..). */
size_t cw_am_firing(const struct cw_am_msg *m, size_t from);

/* cw_am_dedupe_key() writes the hex SHA-256 prefix of groupKey, status and the
 * sorted alert fingerprints (labels when a fingerprint is missing) into
 * key[CW_AM_KEY_LEN + 1]. */
CW_MUST_CHECK int cw_am_dedupe_key(const struct cw_am_msg *m, char *key);

#endif
