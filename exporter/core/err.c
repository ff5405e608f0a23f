/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.c - constant tables for cw_err and cw_reason, and the errno mapping.
 * Everything here is thread-safe.
 */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const err_text[CW_ERR_COUNT] = {
    [CW_OK] = "success",
    [CW_ENOMEM] = "out of memory",
    [CW_EINVAL] = "invalid argument",
    [CW_ECONFIG] = "configuration rejected",
    [CW_EPARSE] = "input did not parse",
    [CW_ETIMEDOUT] = "deadline passed",
    [CW_EIO] = "I/O error",
    [CW_ETOOBIG] = "output too large",
};

const char *cw_strerror(int err)
{
    if (err < 0 || err >= CW_ERR_COUNT)
        return "unknown error";
    return err_text[err];
}

static const char *const reason_text[CW_REASON_COUNT] = {
    [CW_REASON_NONE] = "",
    [CW_REASON_DNS] = "dns",
    [CW_REASON_REFUSED] = "refused",
    [CW_REASON_TIMEOUT] = "timeout",
    [CW_REASON_UNREACHABLE] = "unreachable",
    [CW_REASON_TLS_HANDSHAKE] = "tls_handshake",
    [CW_REASON_CERT_EXPIRED] = "cert_expired",
    [CW_REASON_CERT_NOT_YET_VALID] = "cert_not_yet_valid",
    [CW_REASON_CERT_UNTRUSTED] = "cert_untrusted",
    [CW_REASON_CERT_HOSTNAME] = "cert_hostname",
    [CW_REASON_HTTP_STATUS] = "http_status",
    [CW_REASON_AUTH] = "auth",
    [CW_REASON_PROTOCOL] = "protocol",
    [CW_REASON_INTERNAL] = "internal",
    [CW_REASON_REDIRECT_REFUSED] = "redirect_refused",
};

const char *cw_reason_label(enum cw_reason r)
{
    if ((int)r < 0 || r >= CW_REASON_COUNT)
        return "internal";
    return reason_text[r];
}

const struct cw_errno_reason cw_errno_reasons[] = {
    {ECONNREFUSED, CW_REASON_REFUSED},     {ECONNRESET, CW_REASON_REFUSED},
    {ETIMEDOUT, CW_REASON_TIMEOUT},        {EINPROGRESS, CW_REASON_TIMEOUT},
    {EHOSTUNREACH, CW_REASON_UNREACHABLE}, {ENETUNREACH, CW_REASON_UNREACHABLE},
    {ENETDOWN, CW_REASON_UNREACHABLE},     {EHOSTDOWN, CW_REASON_UNREACHABLE},
    {ENONET, CW_REASON_UNREACHABLE},       {EADDRNOTAVAIL, CW_REASON_UNREACHABLE},
    {EPERM, CW_REASON_UNREACHABLE},  /* a local firewall (nft/iptables OUTPUT) dropped it */
    {EACCES, CW_REASON_UNREACHABLE}, /* same, or a broadcast address */
};
const unsigned cw_errno_reasons_len = (unsigned)CW_ARRAY_LEN(cw_errno_reasons);

enum cw_reason cw_reason_from_errno(int err)
{
    for (unsigned i = 0; i < cw_errno_reasons_len; i++)
        if (cw_errno_reasons[i].err == err)
            return cw_errno_reasons[i].reason;
    return CW_REASON_INTERNAL;
}

const char *cw_strerror_r(int errnum, char *buf, unsigned long len)
{
    /* _GNU_SOURCE gives the GNU variant, which may return a static string. */
    const char *s = strerror_r(errnum, buf, len);

    if (s != buf && len != 0)
        snprintf(buf, len, "%s", s);
    return buf;
}
