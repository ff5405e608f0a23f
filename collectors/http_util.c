/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_util.c - pure helpers of the http check (see http_util.h): reason
 * mapping of libcurl results, HTTP-date parsing, clock skew. Stateless.
 */
#include "collectors/http_util.h"

#include "collectors/tlsinspect.h"
#include "exporter/core/clock.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

enum cw_reason cw_http_reason_from_curl(CURLcode code, long verify_result, long os_errno)
{
    switch (code) {
    case CURLE_OK:
        return CW_REASON_NONE;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return CW_REASON_DNS;
    case CURLE_COULDNT_CONNECT: {
        /* The core's one errno table; refused when curl gave no errno the
         * table knows. */
        enum cw_reason r = os_errno != 0 ? cw_reason_from_errno((int)os_errno) : CW_REASON_INTERNAL;

        return r != CW_REASON_INTERNAL ? r : CW_REASON_REFUSED;
    }
    case CURLE_OPERATION_TIMEDOUT:
        return CW_REASON_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
        /* curl checks the name itself and reports a mismatch with a clean
         * verify result. */
        if (verify_result == 0)
            return CW_REASON_CERT_HOSTNAME;
        return cw_tls_verify_reason(verify_result);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_USE_SSL_FAILED:
        if (verify_result != 0)
            return cw_tls_verify_reason(verify_result);
        return CW_REASON_TLS_HANDSHAKE;
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
        return CW_REASON_AUTH;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
    case CURLE_SSL_CERTPROBLEM:    /* our client certificate or key */
    case CURLE_SSL_CACERT_BADFILE: /* our ca_file */
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_READ_ERROR:
    case CURLE_WRITE_ERROR:
        return CW_REASON_INTERNAL;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        if (os_errno == ETIMEDOUT)
            return CW_REASON_TIMEOUT;
        return CW_REASON_PROTOCOL;
    default:
        /* Empty replies, malformed responses, HTTP/2 framing, too many
         * redirects, partial bodies, unsupported protocols: the server
         * spoke, but not the protocol we asked for. */
        return CW_REASON_PROTOCOL;
    }
}

static const char *const http_months[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const http_wdays[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const http_wdays_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                               "Thursday", "Friday", "Saturday"};

/* A cursor over [p, end). */
struct date_cur {
    const char *p;
    const char *end;
};

static bool cur_lit(struct date_cur *c, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* cur_digits() reads exactly 'n' digits (a leading blank counts as 0 when
 * 'blank' is set: asctime's day). */
static bool cur_digits(struct date_cur *c, int n, bool blank, int *out)
{
    int v = 0, i;

    if (c->end - c->p < n)
        return false;
    for (i = 0; i < n; i++) {
        char ch = c->p[i];

        if (ch == ' ' && blank && i == 0)
            continue;
        if (ch < '0' || ch > '9')
            return false;
        v = v * 10 + (ch - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

static bool cur_name(struct date_cur *c, const char *const *names, int count, int *out)
{
    int i;

    for (i = 0; i < count; i++) {
        if (cur_lit(c, names[i])) {
            *out = i;
            return true;
        }
    }
    return false;
}

static bool cur_time(struct date_cur *c, int *h, int *m, int *s)
{
    return cur_digits(c, 2, false, h) && cur_lit(c, ":") && cur_digits(c, 2, false, m) &&
           cur_lit(c, ":") && cur_digits(c, 2, false, s);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int cw_http_parse_date(const char *s, size_t len, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    struct date_cur c = {s, s + len};
    int wday, day = 0, mon = 0, year = 0, h = 0, mi = 0, sec = 0;
    bool ok = false;

    while (c.p < c.end && (*c.p == ' ' || *c.p == '\t'))
        c.p++;
    while (c.end > c.p &&
           (c.end[-1] == ' ' || c.end[-1] == '\t' || c.end[-1] == '\r' || c.end[-1] == '\n'))
        c.end--;

    if (cur_name(&c, http_wdays_long, 7, &wday)) {
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        ok = cur_lit(&c, ", ") && cur_digits(&c, 2, false, &day) && cur_lit(&c, "-") &&
             cur_name(&c, http_months, 12, &mon) && cur_lit(&c, "-") &&
             cur_digits(&c, 2, false, &year) && cur_lit(&c, " ") && cur_time(&c, &h, &mi, &sec) &&
             cur_lit(&c, " GMT");
        /* RFC 9110: a two-digit year more than 50 years ahead is in the past. */
        year += year < 70 ? 2000 : 1900;
    } else if (cur_name(&c, http_wdays, 7, &wday)) {
        if (cur_lit(&c, ", ")) {
            /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
            ok = cur_digits(&c, 2, false, &day) && cur_lit(&c, " ") &&
                 cur_name(&c, http_months, 12, &mon) && cur_lit(&c, " ") &&
                 cur_digits(&c, 4, false, &year) && cur_lit(&c, " ") &&
                 cur_time(&c, &h, &mi, &sec) && cur_lit(&c, " GMT");
        } else {
            /* asctime: Sun Nov  6 08:49:37 1994 */
            ok = cur_lit(&c, " ") && cur_name(&c, http_months, 12, &mon) && cur_lit(&c, " ") &&
                 cur_digits(&c, 2, true, &day) && cur_lit(&c, " ") && cur_time(&c, &h, &mi, &sec) &&
                 cur_lit(&c, " ") && cur_digits(&c, 4, false, &year);
        }
    }
    if (!ok || c.p != c.end)
        return CW_EPARSE;
    if (day < 1 || day > mdays[mon] + (mon == 1 && is_leap(year)) || h > 23 || mi > 59 || sec > 60)
        return CW_EPARSE;
    if (sec == 60)
        sec = 59; /* a leap second: keep it within the minute */
    *out = cw_days_from_civil(year, mon + 1, day) * 86400 + h * 3600 + mi * 60 + sec;
    return CW_OK;
}

double cw_http_clock_skew(int64_t date, double sent, double received)
{
    return ((double)date + 0.5) - (sent + (received - sent) / 2);
}
