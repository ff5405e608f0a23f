/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sign.c - request signatures of connwatch-relay's receivers, with OpenSSL:
 * DingTalk robot 加签 (HMAC-SHA256) and Aliyun RPC signature V1
 * (HMAC-SHA1 over the sorted, percent-encoded query), plus JSON string
 * escaping. See REFERENCE.md §5.3 and §6.1.
 *
 * Pure functions; any thread.
 */
#include "alerts/relay/sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

int cw_pct_encode(struct cw_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = CW_OK;

    for (; *s != '\0' && rc == CW_OK; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            rc = cw_buf_addc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};

            rc = cw_buf_add(out, e, 3);
        }
    }
    return rc;
}

int cw_dingtalk_sign(const char *secret, const char *timestamp_ms, char *out, size_t outlen)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned char b64[128];
    unsigned maclen = 0;
    struct cw_buf sts, enc;
    int rc;

    cw_buf_init(&sts, 64u << 10);
    cw_buf_init(&enc, 256);
    rc = cw_buf_addf(&sts, "%s\n%s", timestamp_ms, secret);
    if (rc != CW_OK)
        goto out;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)sts.data, sts.len,
             mac, &maclen) == NULL) {
        rc = CW_EINVAL;
        goto out;
    }
    EVP_EncodeBlock(b64, mac, (int)maclen);
    rc = cw_pct_encode(&enc, (const char *)b64);
    if (rc != CW_OK)
        goto out;
    if (enc.len + 1 > outlen) {
        rc = CW_ETOOBIG;
        goto out;
    }
    memcpy(out, enc.data, enc.len + 1);
out:
    /* the string to sign holds the secret */
    if (sts.data != NULL)
        OPENSSL_cleanse(sts.data, sts.len);
    cw_buf_reset(&sts);
    cw_buf_reset(&enc);
    return rc;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const struct cw_kv *)a)->key, ((const struct cw_kv *)b)->key);
}

int cw_aliyun_sign(struct cw_kv *params, size_t n, const char *secret, struct cw_buf *query,
                   struct cw_buf *sts_out)
{
    struct cw_buf canon, sts, key;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned char b64[64];
    unsigned maclen = 0;
    size_t i;
    int rc = CW_OK;

    /* Parameter names are plain ASCII, so sorting the raw names equals
     * sorting the encoded ones. */
    qsort(params, n, sizeof(*params), cmp_kv);
    cw_buf_init(&canon, 1u << 20);
    cw_buf_init(&sts, 2u << 20);
    cw_buf_init(&key, 4096);
    for (i = 0; i < n && rc == CW_OK; i++) {
        if (i > 0)
            rc = cw_buf_addc(&canon, '&');
        if (rc == CW_OK)
            rc = cw_pct_encode(&canon, params[i].key);
        if (rc == CW_OK)
            rc = cw_buf_addc(&canon, '=');
        if (rc == CW_OK)
            rc = cw_pct_encode(&canon, params[i].value);
    }
    if (rc == CW_OK)
        rc = cw_buf_adds(&sts, "GET&%2F&");
    if (rc == CW_OK)
        rc = cw_pct_encode(&sts, cw_buf_str(&canon));
    if (rc == CW_OK)
        rc = cw_buf_addf(&key, "%s&", secret);
    if (rc != CW_OK)
        goto out;
    if (HMAC(EVP_sha1(), key.data, (int)key.len, (const unsigned char *)sts.data, sts.len, mac,
             &maclen) == NULL) {
        rc = CW_EINVAL;
        goto out;
    }
    EVP_EncodeBlock(b64, mac, (int)maclen);
    rc = cw_buf_adds(query, "Signature=");
    if (rc == CW_OK)
        rc = cw_pct_encode(query, (const char *)b64);
    if (rc == CW_OK)
        rc = cw_buf_addc(query, '&');
    if (rc == CW_OK)
        rc = cw_buf_add(query, canon.data != NULL ? canon.data : "", canon.len);
    if (rc == CW_OK && sts_out != NULL)
        rc = cw_buf_add(sts_out, sts.data, sts.len);
out:
    if (key.data != NULL)
        OPENSSL_cleanse(key.data, key.len);
    cw_buf_reset(&key);
    cw_buf_reset(&canon);
    cw_buf_reset(&sts);
    return rc;
}

int cw_json_escape(struct cw_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;
    int rc = CW_OK;

    for (i = 0; i < len && rc == CW_OK; i++) {
        unsigned char c = (unsigned char)s[i];

        switch (c) {
        case '"':
            rc = cw_buf_adds(out, "\\\"");
            break;
        case '\\':
            rc = cw_buf_adds(out, "\\\\");
            break;
        case '\n':
            rc = cw_buf_adds(out, "\\n");
            break;
        case '\r':
            rc = cw_buf_adds(out, "\\r");
            break;
        case '\t':
            rc = cw_buf_adds(out, "\\t");
            break;
        default:
            if (c < 0x20) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

                rc = cw_buf_add(out, e, 6);
            } else {
                rc = cw_buf_addc(out, (char)c);
            }
        }
    }
    return rc;
}
