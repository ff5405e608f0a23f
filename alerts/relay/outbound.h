/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound.h - one outbound HTTP(S) request of a receiver, with libcurl
 * (outbound.c). Called on a receiver's delivery thread.
 */
#ifndef CW_RELAY_OUTBOUND_H
#define CW_RELAY_OUTBOUND_H

#include "alerts/relay/receiver.h"
#include "exporter/core/buf.h"
#include "exporter/core/err.h"

#include <stdbool.h>
#include <stddef.h>

struct cw_http_out {
    long status;        /* HTTP status, 0 when no response */
    struct cw_buf body; /* response body, bounded; owned by the caller (cw_buf_reset) */
};

/* cw_out_request() sends one request ('body' NULL: GET) with the deliver
 * timeout and the stop flag. Returns CW_OK when a response came (any status),
 * or CW_EIO with the curl error in info->detail. 'out' must be initialised
 * by the caller (cw_buf_init) and reset afterwards. */
CW_MUST_CHECK int cw_out_request(const char *url, const char *content_type, const char *body,
                                 size_t len, const struct cw_deliver_ctx *ctx,
                                 struct cw_http_out *out, struct cw_deliver_info *info);

/* cw_http_is_permanent() tells whether an HTTP status refuses the request for
 * good: 4xx other than 408 (timeout) and 429 (too many requests). */
bool cw_http_is_permanent(long status);

#endif
