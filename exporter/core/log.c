/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - logfmt/JSON lines on stderr.
 *
 * Each line is built in a stack-sized cw_buf and written with one writev(2),
 * so concurrent lines never interleave. The level, format and fd are
 * process-wide settings, written by main() before threads start.
 */
#include "log.h"

#include "buf.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = CW_LOG_INFO;
static atomic_int log_format = CW_LOG_LOGFMT;
static atomic_int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cw_log_setup(enum cw_log_level level, enum cw_log_format format)
{
    time_t now = time(NULL);
    struct tm tm;

    atomic_store(&log_level, (int)level);
    atomic_store(&log_format, (int)format);
    /* Read the time zone (TZ, /etc/localtime) now, on the starting thread,
     * before any other thread exists: the C library then has its zone
     * names (tm_zone) in place before a log line's gmtime_r() or a
     * relay's localtime_r() on another thread would create them (a write
     * that ThreadSanitizer sees race with the reading of tm_zone, because
     * the library's own lock is invisible to it). */
    tzset();
    (void)gmtime_r(&now, &tm);
    (void)localtime_r(&now, &tm);
}

void cw_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

int cw_log_level_parse(const char *s, enum cw_log_level *out)
{
    size_t i;

    for (i = 0; i < CW_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum cw_log_level)i;
            return CW_OK;
        }
    }
    return CW_EPARSE;
}

int cw_log_format_parse(const char *s, enum cw_log_format *out)
{
    if (strcmp(s, "logfmt") == 0)
        *out = CW_LOG_LOGFMT;
    else if (strcmp(s, "json") == 0)
        *out = CW_LOG_JSON;
    else
        return CW_EPARSE;
    return CW_OK;
}

int cw_log_enabled(enum cw_log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

static bool logfmt_needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

/* log_add_value() appends 's' quoted and escaped when needed (logfmt) or as
 * a JSON string. Failures only shorten the line; logging never fails loudly. */
static void log_add_value(struct cw_buf *b, const char *s, bool json)
{
    bool quote = json || logfmt_needs_quotes(s);
    int rc = CW_OK;

    if (quote)
        rc |= cw_buf_addc(b, '"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            rc |= cw_buf_addc(b, '\\');
            rc |= cw_buf_addc(b, (char)c);
        } else if (c == '\n') {
            rc |= cw_buf_add(b, "\\n", 2);
        } else if (c == '\r') {
            rc |= cw_buf_add(b, "\\r", 2);
        } else if (c == '\t') {
            rc |= cw_buf_add(b, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            rc |= cw_buf_addf(b, "\\u%04x", c);
        } else {
            rc |= cw_buf_addc(b, (char)c);
        }
    }
    if (quote)
        rc |= cw_buf_addc(b, '"');
    (void)rc;
}

static void log_add_field(struct cw_buf *b, const char *key, const char *value, bool json,
                          bool first)
{
    int rc = CW_OK;

    if (json) {
        if (!first)
            rc |= cw_buf_addc(b, ',');
        log_add_value(b, key, true);
        rc |= cw_buf_addc(b, ':');
    } else {
        if (!first)
            rc |= cw_buf_addc(b, ' ');
        rc |= cw_buf_adds(b, key);
        rc |= cw_buf_addc(b, '=');
    }
    log_add_value(b, value != NULL ? value : "", json);
    (void)rc;
}

/* log_write() builds and writes one line; 'extra_key'/'extra_value' (may be
 * NULL) go after the caller's pairs. */
static void log_write(enum cw_log_level level, const char *component, const char *msg, va_list ap,
                      const char *extra_key, const char *extra_value)
{
    struct cw_buf b;
    struct timespec ts;
    struct tm tm;
    char when[64];
    bool json = atomic_load(&log_format) == CW_LOG_JSON;
    const char *key;
    int rc = CW_OK;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    cw_buf_init(&b, 64 * 1024);
    if (json)
        rc |= cw_buf_addc(&b, '{');
    log_add_field(&b, "time", when, json, true);
    log_add_field(&b, "level", level_names[level], json, false);
    log_add_field(&b, "component", component, json, false);
    log_add_field(&b, "msg", msg, json, false);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);

        log_add_field(&b, key, value, json, false);
    }
    if (extra_key != NULL)
        log_add_field(&b, extra_key, extra_value, json, false);
    if (json)
        rc |= cw_buf_addc(&b, '}');
    (void)rc; /* a line past the limit is cut where it stopped (the error is sticky) */
    if (b.data != NULL) {
        /* The newline goes apart, so that even a cut line ends with one. */
        struct iovec iov[2] = {{b.data, b.len}, {(char *)"\n", 1}};
        ssize_t n = writev(atomic_load(&log_fd), iov, 2);

        (void)n; /* nowhere left to report a failed log write */
    }
    cw_buf_reset(&b);
}

void cw_log(enum cw_log_level level, const char *component, const char *msg, ...)
{
    va_list ap;

    if (!cw_log_enabled(level))
        return;
    va_start(ap, msg);
    log_write(level, component, msg, ap, NULL, NULL);
    va_end(ap);
}

bool cw_log_limit_admit(struct cw_log_limit *l, cw_mono now, uint64_t *suppressed)
{
    cw_mono next = atomic_load(&l->next);

    /* One thread wins the slot of each interval; the others count. */
    if (now >= next &&
        atomic_compare_exchange_strong(&l->next, &next, now + CW_LOG_LIMIT_INTERVAL)) {
        *suppressed = atomic_exchange(&l->suppressed, 0);
        return true;
    }
    atomic_fetch_add(&l->suppressed, 1);
    return false;
}

void cw_log_limited(struct cw_log_limit *l, enum cw_log_level level, const char *component,
                    const char *msg, ...)
{
    uint64_t dropped;
    char n[24];
    va_list ap;

    if (!cw_log_enabled(level) || !cw_log_limit_admit(l, cw_now(), &dropped))
        return;
    snprintf(n, sizeof(n), "%llu", (unsigned long long)dropped);
    va_start(ap, msg);
    log_write(level, component, msg, ap, dropped != 0 ? "suppressed" : NULL, n);
    va_end(ap);
}
