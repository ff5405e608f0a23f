/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.h - time values of connwatch: nanoseconds in an int64_t.
 *
 * cw_mono is CLOCK_MONOTONIC (schedules, deadlines); cw_duration is a span.
 * Wall-clock time is only used for metrics that are timestamps.
 */
#ifndef CW_CLOCK_H
#define CW_CLOCK_H

#include <stdint.h>

typedef int64_t cw_mono;
typedef int64_t cw_duration;

#define CW_NS(x)  ((cw_duration)(x))
#define CW_US(x)  ((cw_duration)(x)*1000)
#define CW_MS(x)  ((cw_duration)(x)*1000000)
#define CW_S(x)   ((cw_duration)(x)*1000000000)
#define CW_MIN(x) (CW_S(x) * 60)

/* cw_now() returns the monotonic clock. */
cw_mono cw_now(void);

/* cw_now_real() returns the wall clock as nanoseconds since the epoch. */
int64_t cw_now_real(void);

/* cw_seconds() converts a span to floating seconds. */
static inline double cw_seconds(cw_duration d)
{
    return (double)d / 1e9;
}

/* cw_duration_parse() parses a Prometheus-style duration: one or more
 * <number><unit> terms with units ns us µs ms s m h d w y, e.g. "1m30s",
 * "250ms", "1.5s". "0" alone is zero. Returns CW_OK or CW_EPARSE; the result
 * must fit int64 nanoseconds (else CW_EPARSE). */
int cw_duration_parse(const char *s, cw_duration *out);

/* cw_seconds_parse() parses a plain decimal number of seconds as a client
 * sends it in a header or a query parameter ("10", "9.5", "2e1"): digits, a
 * dot and an exponent only, so "inf", "nan", "-1", "+1", " 1" and "0x10"
 * are CW_EPARSE. A value above 'max' (which must be >= 0) gives 'max': a
 * client can ask for less than the bound, never overflow it. Returns CW_OK
 * or CW_EPARSE (then *out is unchanged). Thread-safe. */
int cw_seconds_parse(const char *s, cw_duration max, cw_duration *out);

/* cw_duration_format() writes 'd' in the shortest exact form ("1m30s",
 * "250ms", "0s") into buf and returns buf. */
char *cw_duration_format(cw_duration d, char *buf, unsigned long len);

/* cw_days_from_civil() returns the days since 1970-01-01 of a proleptic
 * Gregorian date (H. Hinnant's algorithm; month 1..12): no libc time zone
 * involved, so any thread. */
int64_t cw_days_from_civil(int64_t y, int m, int d);

#endif
