/* SPDX-License-Identifier: Apache-2.0 */
/*
 * payload.c - the Alertmanager webhook payload (version "4"): parse and
 * validate with jansson, accessors, and the dedupe key.
 *
 * Pure functions; any thread. A parsed message owns its jansson tree; the
 * strings and objects in struct cw_am_alert borrow from it.
 */
#include "alerts/relay/payload.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ALERTS 10000

static const char *str_field(json_t *o, const char *key, bool required, const char *where,
                             char *why, size_t whylen, bool *bad)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v)) {
        if (required) {
            snprintf(why, whylen, "%s: missing \"%s\"", where, key);
            *bad = true;
        }
        return "";
    }
    if (!json_is_string(v)) {
        snprintf(why, whylen, "%s: \"%s\" must be a string", where, key);
        *bad = true;
        return "";
    }
    return json_string_value(v);
}

static bool string_object(json_t *o)
{
    const char *k;
    json_t *v;

    if (!json_is_object(o))
        return false;
    json_object_foreach(o, k, v)
    {
        if (!json_is_string(v))
            return false;
    }
    return true;
}

int cw_am_parse(const char *body, size_t len, struct cw_am_msg *out, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *alerts;
    const char *version;
    bool bad = false;
    size_t i;

    memset(out, 0, sizeof(*out));
    out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (out->root == NULL) {
        snprintf(why, whylen, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return CW_EPARSE;
    }
    if (!json_is_object(out->root)) {
        snprintf(why, whylen, "payload is not a JSON object");
        goto out_bad;
    }
    version = str_field(out->root, "version", true, "payload", why, whylen, &bad);
    if (bad)
        goto out_bad;
    if (strcmp(version, "4") != 0) {
        snprintf(why, whylen, "unsupported payload version \"%.16s\" (want \"4\")", version);
        goto out_bad;
    }
    out->status = str_field(out->root, "status", true, "payload", why, whylen, &bad);
    if (!bad && strcmp(out->status, "firing") != 0 && strcmp(out->status, "resolved") != 0) {
        snprintf(why, whylen, "status must be \"firing\" or \"resolved\"");
        bad = true;
    }
    if (!bad)
        out->receiver = str_field(out->root, "receiver", true, "payload", why, whylen, &bad);
    if (!bad)
        out->group_key = str_field(out->root, "groupKey", true, "payload", why, whylen, &bad);
    if (!bad)
        out->external_url =
            str_field(out->root, "externalURL", false, "payload", why, whylen, &bad);
    if (bad)
        goto out_bad;
    out->common_labels = json_object_get(out->root, "commonLabels");
    if (out->common_labels != NULL && !string_object(out->common_labels)) {
        snprintf(why, whylen, "commonLabels must be an object of strings");
        goto out_bad;
    }
    alerts = json_object_get(out->root, "alerts");
    if (!json_is_array(alerts)) {
        snprintf(why, whylen, "payload: missing \"alerts\" array");
        goto out_bad;
    }
    if (json_array_size(alerts) == 0 || json_array_size(alerts) > MAX_ALERTS) {
        snprintf(why, whylen, "alerts: want 1 to %d alerts, got %zu", MAX_ALERTS,
                 json_array_size(alerts));
        goto out_bad;
    }
    out->alerts = calloc(json_array_size(alerts), sizeof(*out->alerts));
    if (out->alerts == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out_bad;
    }
    for (i = 0; i < json_array_size(alerts); i++) {
        json_t *a = json_array_get(alerts, i);
        struct cw_am_alert *x = &out->alerts[i];
        char where[32];

        snprintf(where, sizeof(where), "alerts[%zu]", i);
        if (!json_is_object(a)) {
            snprintf(why, whylen, "%s is not an object", where);
            goto out_bad;
        }
        x->status = str_field(a, "status", true, where, why, whylen, &bad);
        if (!bad && strcmp(x->status, "firing") != 0 && strcmp(x->status, "resolved") != 0) {
            snprintf(why, whylen, "%s: status must be \"firing\" or \"resolved\"", where);
            bad = true;
        }
        if (!bad)
            x->fingerprint = str_field(a, "fingerprint", false, where, why, whylen, &bad);
        if (!bad)
            x->starts_at = str_field(a, "startsAt", false, where, why, whylen, &bad);
        if (!bad)
            x->ends_at = str_field(a, "endsAt", false, where, why, whylen, &bad);
        if (!bad)
            x->generator_url = str_field(a, "generatorURL", false, where, why, whylen, &bad);
        if (bad)
            goto out_bad;
        x->labels = json_object_get(a, "labels");
        if (!string_object(x->labels)) {
            snprintf(why, whylen, "%s: labels must be an object of strings", where);
            goto out_bad;
        }
        x->annotations = json_object_get(a, "annotations");
        if (x->annotations != NULL && !json_is_null(x->annotations) &&
            !string_object(x->annotations)) {
            snprintf(why, whylen, "%s: annotations must be an object of strings", where);
            goto out_bad;
        }
        if (json_is_null(x->annotations))
            x->annotations = NULL;
        out->nalerts++;
    }
    return CW_OK;

out_bad:
    cw_am_free(out);
    return CW_EPARSE;
}

void cw_am_free(struct cw_am_msg *m)
{
    if (m == NULL)
        return;
    free(m->alerts);
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

static const char *obj_str(json_t *o, const char *name)
{
    const char *v = o != NULL ? json_string_value(json_object_get(o, name)) : NULL;

    return v != NULL ? v : "";
}

const char *cw_am_label(const struct cw_am_alert *a, const char *name)
{
    return obj_str(a->labels, name);
}

const char *cw_am_annotation(const struct cw_am_alert *a, const char *name)
{
    return obj_str(a->annotations, name);
}

size_t cw_am_firing(const struct cw_am_msg *m, size_t from)
{
    size_t i, n = 0;

    for (i = from; i < m->nalerts; i++)
        n += strcmp(m->alerts[i].status, "firing") == 0;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cw_am_dedupe_key(const struct cw_am_msg *m, char *key)
{
    EVP_MD_CTX *ctx = NULL;
    char **ids = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0, j;
    size_t i;
    int rc = CW_ENOMEM;

    ids = calloc(m->nalerts + 1, sizeof(*ids));
    ctx = EVP_MD_CTX_new();
    if (ids == NULL || ctx == NULL)
        goto out;
    for (i = 0; i < m->nalerts; i++) {
        if (m->alerts[i].fingerprint[0] != '\0')
            ids[i] = strdup(m->alerts[i].fingerprint);
        else
            ids[i] = json_dumps(m->alerts[i].labels, JSON_SORT_KEYS | JSON_COMPACT);
        if (ids[i] == NULL)
            goto out;
    }
    qsort(ids, m->nalerts, sizeof(*ids), cmp_str);
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, m->group_key, strlen(m->group_key) + 1) != 1 ||
        EVP_DigestUpdate(ctx, m->status, strlen(m->status) + 1) != 1) {
        rc = CW_EINVAL;
        goto out;
    }
    for (i = 0; i < m->nalerts; i++) {
        if (EVP_DigestUpdate(ctx, ids[i], strlen(ids[i]) + 1) != 1) {
            rc = CW_EINVAL;
            goto out;
        }
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen < CW_AM_KEY_LEN / 2) {
        rc = CW_EINVAL;
        goto out;
    }
    for (j = 0; j < CW_AM_KEY_LEN / 2; j++)
        snprintf(key + 2 * j, 3, "%02x", md[j]);
    rc = CW_OK;
out:
    for (i = 0; ids != NULL && i < m->nalerts; i++)
        free(ids[i]);
    free(ids);
    EVP_MD_CTX_free(ctx);
    return rc;
}
