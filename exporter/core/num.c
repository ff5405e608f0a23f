/* SPDX-License-Identifier: Apache-2.0 */
/*
 * num.c - unsigned decimal parsing. See num.h.
 */
#include "num.h"

int cw_parse_u64(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0)
        return CW_EPARSE;
    for (i = 0; i < len; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return CW_EPARSE;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            /* Report a later non-digit as what it is, not as overflow. */
            for (; i < len; i++)
                if (s[i] < '0' || s[i] > '9')
                    return CW_EPARSE;
            return CW_ETOOBIG;
        }
        v = v * 10 + d;
    }
    *out = v;
    return CW_OK;
}
