/* SPDX-License-Identifier: Apache-2.0 */
/*
 * receiver_webhook.c - receiver kind "webhook": POST the Alertmanager payload
 * as it came (JSON) to a URL; any 2xx is a delivery, a 4xx other than 408
 * and 429 a rejection (CW_DELIVER_REJECTED), anything else is retried. The
 * escape hatch for systems the relay does not speak.
 *
 * A payload re-encoded over max_bytes is made to fit: label and annotation
 * values over VALUE_MAX bytes are cut on a character, then alerts are left
 * out from the end and counted in Alertmanager's own "truncatedAlerts" (plus
 * "truncatedFiring"/"truncatedResolved"), sized one alert at a time.
 *
 * Called on the receiver's delivery thread; the state is read-only after
 * configure().
 */
#include "alerts/relay/outbound.h"
#include "alerts/relay/receiver.h"
#include "alerts/relay/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX 1024 /* bytes of a label or annotation value once a payload must shrink */

struct webhook_state {
    char *url; /* owned (cw_opts, webhook_release()), or NULL with url_file */
    struct cw_secret url_file;
    int64_t max_bytes;
};

static const struct cw_opt webhook_opts[] = {
    CW_OPT("url", CW_OPT_T_URL, struct webhook_state, url, NULL, 0, 0, 0),
    CW_OPT("url_file", CW_OPT_T_SECRET_FILE, struct webhook_state, url_file, NULL, 0, 0, 0),
    CW_OPT("max_bytes", CW_OPT_T_INT, struct webhook_state, max_bytes, "1048576", 4096, 64 << 20,
           0),
    CW_OPT_END,
};

static int webhook_configure(void *state, const struct cw_node *node, struct cw_receiver_caps *caps,
                             struct cw_diag *diag)
{
    struct webhook_state *s = state;
    int rc;

    (void)caps;
    rc = cw_opts_apply(webhook_opts, s, node, NULL, diag);
    if (rc != CW_OK)
        return rc;
    if ((s->url != NULL) == (s->url_file.value != NULL)) {
        cw_diagf(diag, node, "set exactly one of url and url_file");
        return CW_ECONFIG;
    }
    return CW_OK;
}

static void webhook_release(void *state)
{
    cw_opts_release(webhook_opts, state);
}

/* cut_values() cuts the string values of object 'o' to VALUE_MAX bytes. */
static int cut_values(json_t *o)
{
    struct cw_buf v;
    const char *k;
    json_t *x;
    int rc = CW_OK;

    if (!json_is_object(o))
        return CW_OK;
    cw_buf_init(&v, VALUE_MAX + 8);
    json_object_foreach(o, k, x)
    {
        if (!json_is_string(x) || json_string_length(x) <= VALUE_MAX)
            continue;
        cw_buf_clear(&v);
        rc = cw_tmpl_add_value(&v, json_string_value(x), json_string_length(x), VALUE_MAX);
        if (rc != CW_OK || json_object_set_new(o, k, json_stringn(cw_buf_str(&v), v.len)) != 0) {
            rc = rc != CW_OK ? rc : CW_ENOMEM;
            break;
        }
    }
    cw_buf_reset(&v);
    return rc;
}

static bool is_firing(json_t *a)
{
    const char *st = json_string_value(json_object_get(a, "status"));

    return st != NULL && strcmp(st, "firing") == 0;
}

/* shrink() returns a compact encoding of 'root' of at most 'max' bytes
 * (free()), or NULL when even no alert at all does not fit. */
static char *shrink(json_t *root, size_t max)
{
    json_t *d = json_deep_copy(root), *alerts, *kept = NULL;
    size_t i, n, k, size, firing = 0, nf = 0;
    json_int_t before;
    char *out = NULL, *one;

    if (d == NULL)
        return NULL;
    alerts = json_object_get(d, "alerts");
    n = json_array_size(alerts);
    if (cut_values(json_object_get(d, "commonLabels")) != CW_OK ||
        cut_values(json_object_get(d, "commonAnnotations")) != CW_OK ||
        cut_values(json_object_get(d, "groupLabels")) != CW_OK)
        goto out;
    for (i = 0; i < n; i++) {
        json_t *a = json_array_get(alerts, i);

        if (cut_values(json_object_get(a, "labels")) != CW_OK ||
            cut_values(json_object_get(a, "annotations")) != CW_OK)
            goto out;
    }
    before = json_integer_value(json_object_get(d, "truncatedAlerts"));
    kept = json_array();
    if (kept == NULL)
        goto out;
    json_incref(alerts);
    /* The frame with the largest counts it can carry, then alert by alert. */
    if (json_object_set(d, "alerts", kept) != 0 ||
        json_object_set_new(d, "truncatedAlerts", json_integer(before + (json_int_t)n)) != 0 ||
        json_object_set_new(d, "truncatedFiring", json_integer((json_int_t)n)) != 0 ||
        json_object_set_new(d, "truncatedResolved", json_integer((json_int_t)n)) != 0) {
        json_decref(alerts);
        goto out;
    }
    one = json_dumps(d, JSON_COMPACT);
    size = one != NULL ? strlen(one) : SIZE_MAX;
    free(one);
    for (k = 0; k < n && size <= max; k++) {
        one = json_dumps(json_array_get(alerts, k), JSON_COMPACT);
        if (one == NULL)
            break;
        size += strlen(one) + (k > 0);
        free(one);
        if (size > max)
            break;
        if (json_array_append(kept, json_array_get(alerts, k)) != 0)
            break;
        firing += is_firing(json_array_get(alerts, k));
    }
    for (i = 0; i < n; i++)
        nf += is_firing(json_array_get(alerts, i));
    if (json_object_set_new(d, "truncatedAlerts", json_integer(before + (json_int_t)(n - k))) ==
            0 &&
        json_object_set_new(d, "truncatedFiring", json_integer((json_int_t)(nf - firing))) == 0 &&
        json_object_set_new(d, "truncatedResolved",
                            json_integer((json_int_t)(n - k - (nf - firing)))) == 0)
        out = json_dumps(d, JSON_COMPACT);
    json_decref(alerts);
    if (out != NULL && strlen(out) > max) {
        free(out);
        out = NULL;
    }
out:
    json_decref(kept);
    json_decref(d);
    return out;
}

static enum cw_deliver_result webhook_deliver(void *state, const struct cw_deliver_ctx *ctx,
                                              struct cw_am_msg *const *msgs, size_t n, size_t *used,
                                              struct cw_deliver_info *info)
{
    struct webhook_state *s = state;
    struct cw_http_out resp;
    char *body;
    enum cw_deliver_result res = CW_DELIVER_RETRY;

    (void)n;
    *used = 1;
    memset(&resp, 0, sizeof(resp));
    body = json_dumps(msgs[0]->root, JSON_COMPACT);
    if (body != NULL && strlen(body) > (size_t)s->max_bytes) {
        free(body);
        body = shrink(msgs[0]->root, (size_t)s->max_bytes);
    }
    if (body == NULL) {
        snprintf(info->detail, sizeof(info->detail), "cannot build the message: %s",
                 "the payload does not fit max_bytes");
        return CW_DELIVER_REJECTED;
    }
    if (cw_out_request(s->url != NULL ? s->url : s->url_file.value, "application/json", body,
                       strlen(body), ctx, &resp, info) == CW_OK) {
        if (resp.status >= 200 && resp.status < 300) {
            res = CW_DELIVER_OK;
        } else {
            snprintf(info->detail, sizeof(info->detail), "HTTP status %ld", resp.status);
            if (cw_http_is_permanent(resp.status))
                res = CW_DELIVER_REJECTED;
        }
    }
    free(body);
    cw_buf_reset(&resp.body);
    return res;
}

const struct cw_receiver_kind cw_recv_webhook = {
    .name = "webhook",
    .state_size = sizeof(struct webhook_state),
    .configure = webhook_configure,
    .deliver = webhook_deliver,
    .release = webhook_release,
};
