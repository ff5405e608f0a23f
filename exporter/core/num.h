/* SPDX-License-Identifier: Apache-2.0 */
/*
 * num.h - the one parser of unsigned decimal numbers.
 *
 * Input from /proc, from targets (Redis INFO, MySQL status, HTTP headers)
 * and from configuration is a span, not always NUL-terminated, so the
 * parser takes (pointer, length) and reads exactly those bytes: no blanks,
 * no sign, no base prefix, base 10 only; overflow is an error, never a wrap.
 * Pure and thread-safe.
 */
#ifndef CW_NUM_H
#define CW_NUM_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

/* cw_parse_u64() parses the 'len' bytes at 's' as a decimal number (leading
 * zeros allowed). Returns CW_OK and sets *out; CW_EPARSE for no bytes or a
 * byte that is not a digit (trailing text included); CW_ETOOBIG for a value
 * above UINT64_MAX. On failure *out is left as it was. */
CW_MUST_CHECK int cw_parse_u64(const char *s, size_t len, uint64_t *out);

#endif
