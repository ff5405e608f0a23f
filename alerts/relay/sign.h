/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sign.h - request signatures of connwatch-relay's receivers (sign.c):
 * DingTalk robot 加签, Aliyun RPC signature V1, percent-encoding and JSON
 * string escaping. Pure functions; any thread.
 */
#ifndef CW_RELAY_SIGN_H
#define CW_RELAY_SIGN_H

#include "exporter/core/buf.h"
#include "exporter/core/err.h"

#include <stddef.h>

/* cw_dingtalk_sign() computes urlencode(base64(HMAC-SHA256(secret, ts "\n" secret)))
 * into out (>= 128 bytes). */
CW_MUST_CHECK int cw_dingtalk_sign(const char *secret, const char *timestamp_ms, char *out,
                                   size_t outlen);

/* cw_pct_encode() appends 's' percent-encoded per RFC 3986 (Aliyun rules:
 * unreserved kept, everything else %XX upper-case). */
CW_MUST_CHECK int cw_pct_encode(struct cw_buf *out, const char *s);

struct cw_kv {
    const char *key;   /* borrowed from the caller for the call */
    const char *value; /* borrowed from the caller for the call */
};

/* cw_aliyun_sign() sorts 'params' (modified in place) and appends to 'query'
 * "Signature=<pct(sig)>&<canonical query>"; 'sts' (may be NULL) receives
 * the StringToSign. */
CW_MUST_CHECK int cw_aliyun_sign(struct cw_kv *params, size_t n, const char *secret,
                                 struct cw_buf *query, struct cw_buf *sts);

/* cw_json_escape() appends 's' as the inside of a JSON string. */
CW_MUST_CHECK int cw_json_escape(struct cw_buf *out, const char *s, size_t len);

#endif
