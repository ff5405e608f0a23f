/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_util.h - pure helpers of the http check: the reason of a finished
 * libcurl transfer, the HTTP Date header, and the clock skew computed from
 * it. No I/O, no allocation, thread-safe; used by collectors/http.c, the
 * unit tests and the fuzz target.
 */
#ifndef CW_HTTP_UTIL_H
#define CW_HTTP_UTIL_H

#include "exporter/core/err.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* cw_http_reason_from_curl() maps a transfer's CURLcode to a reason.
 * 'verify_result' is CURLINFO_SSL_VERIFYRESULT (an X509_V_ERR_* code, used
 * when curl itself rejected the peer); 'os_errno' is CURLINFO_OS_ERRNO,
 * which tells a refused connect from an unreachable one. CURLE_OK gives
 * CW_REASON_NONE. */
enum cw_reason cw_http_reason_from_curl(CURLcode code, long verify_result, long os_errno);

/* cw_http_parse_date() parses an HTTP-date (RFC 9110 5.6.7): the preferred
 * IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", the obsolete RFC 850 form
 * "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994".
 * Leading and trailing blanks are ignored; 'len' bytes, no NUL needed.
 * Returns CW_OK with Unix seconds in *out, or CW_EPARSE. */
CW_MUST_CHECK int cw_http_parse_date(const char *s, size_t len, int64_t *out);

/* cw_http_clock_skew() estimates server time minus local time, in seconds.
 * 'date' is the Date header (whole seconds, truncated by the server, so the
 * server's clock read date + [0, 1) s: the midpoint date + 0.5 is used);
 * 'sent' and 'received' are the local real times (Unix seconds) at which the
 * request was sent and the first response byte arrived: the server stamped
 * the response, on average, half the round trip after the request left. */
double cw_http_clock_skew(int64_t date, double sent, double received);

#endif
