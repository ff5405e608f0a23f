/* SPDX-License-Identifier: Apache-2.0 */
/*
 * generic_webhook.c - receiver kind "webhook": POST the Alertmanager payload
 * as it came (JSON) to a URL; any 2xx is a delivery, anything else is
 * retried. The escape hatch for systems the relay does not speak.
 *
 * Called on the receiver's delivery thread; the state is read-only after
 * configure().
 */
#include "alerts/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct webhook_state {
    char *url;
    struct cw_secret url_file;
};

static const struct cw_opt webhook_opts[] = {
    CW_OPT("url", CW_OPT_T_URL, struct webhook_state, url, NULL, 0, 0, 0),
    CW_OPT("url_file", CW_OPT_T_SECRET_FILE, struct webhook_state, url_file, NULL, 0, 0, 0),
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
    if (body == NULL) {
        snprintf(info->detail, sizeof(info->detail), "cannot serialise the payload");
        return res;
    }
    if (cw_out_request(s->url != NULL ? s->url : s->url_file.value, "application/json", body,
                       strlen(body), ctx, &resp, info) == CW_OK) {
        if (resp.status >= 200 && resp.status < 300)
            res = CW_DELIVER_OK;
        else
            snprintf(info->detail, sizeof(info->detail), "HTTP status %ld", resp.status);
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
