/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.c - monotonic and wall clocks, and Prometheus-style durations.
 * Thread-safe.
 */
#include "clock.h"

#include "err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cw_mono cw_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (cw_mono)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cw_now_real(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const struct {
    const char *name;
    double ns;
} duration_units[] = {
    /* Longest names first so "ms" is not read as "m". */
    {"ns", 1.0}, {"us", 1e3},   {"\xc2\xb5s", 1e3}, {"ms", 1e6},     {"s", 1e9},
    {"m", 60e9}, {"h", 3600e9}, {"d", 86400e9},     {"w", 604800e9}, {"y", 31536000e9},
};

int cw_duration_parse(const char *s, cw_duration *out)
{
    double total = 0;
    const char *p = s;

    if (s == NULL || *s == '\0')
        return CW_EPARSE;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return CW_OK;
    }
    while (*p != '\0') {
        char *end;
        double v;
        size_t i;
        size_t best = CW_ARRAY_LEN(duration_units);
        size_t best_len = 0;

        if (!isdigit((unsigned char)*p) && *p != '.')
            return CW_EPARSE;
        v = strtod(p, &end);
        if (end == p || !isfinite(v) || v < 0)
            return CW_EPARSE;
        p = end;
        for (i = 0; i < CW_ARRAY_LEN(duration_units); i++) {
            size_t n = strlen(duration_units[i].name);

            if (n > best_len && strncmp(p, duration_units[i].name, n) == 0) {
                best = i;
                best_len = n;
            }
        }
        if (best == CW_ARRAY_LEN(duration_units))
            return CW_EPARSE;
        p += best_len;
        total += v * duration_units[best].ns;
        if (total > 9.2e18)
            return CW_EPARSE;
    }
    *out = (cw_duration)llround(total);
    return CW_OK;
}

int cw_seconds_parse(const char *s, cw_duration max, cw_duration *out)
{
    const char *p;
    char *end;
    double v;

    if (s == NULL || !(isdigit((unsigned char)s[0]) || s[0] == '.'))
        return CW_EPARSE;
    for (p = s; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p) && strchr(".eE+-", *p) == NULL)
            return CW_EPARSE;
    }
    /* ERANGE is fine: an overflow is HUGE_VAL (clamped below), an
     * underflow is about 0. */
    v = strtod(s, &end);
    if (end == s || *end != '\0' || isnan(v) || v < 0)
        return CW_EPARSE;
    if (v >= (double)max / 1e9)
        *out = max;
    else
        *out = (cw_duration)llround(v * 1e9);
    return CW_OK;
}

char *cw_duration_format(cw_duration d, char *buf, unsigned long len)
{
    static const struct {
        const char *name;
        cw_duration ns;
    } units[] = {{"h", CW_S(3600)}, {"m", CW_S(60)},  {"s", CW_S(1)},
                 {"ms", CW_MS(1)},  {"us", CW_US(1)}, {"ns", 1}};
    size_t off = 0;
    size_t i;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (d <= 0) {
        snprintf(buf, len, d == 0 ? "0s" : "-%lldns", -(long long)d);
        return buf;
    }
    for (i = 0; i < CW_ARRAY_LEN(units) && d > 0; i++) {
        if (d >= units[i].ns) {
            int n = snprintf(buf + off, len - off, "%lld%s", (long long)(d / units[i].ns),
                             units[i].name);

            if (n < 0 || (size_t)n >= len - off)
                break;
            off += (size_t)n;
            d %= units[i].ns;
        }
    }
    return buf;
}

int64_t cw_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}
