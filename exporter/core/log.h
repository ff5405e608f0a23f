/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - structured logging to stderr, logfmt (default) or JSON.
 *
 *   time=2026-08-23T09:14:03.512Z level=warn component=sched msg="check failing" check=redis
 *
 * 'msg' is a fixed lower-case phrase; variable data goes in key/value pairs.
 * One line is written with a single write(2), so lines from threads never
 * interleave. Thread-safe.
 */
#ifndef CW_LOG_H
#define CW_LOG_H

#include "clock.h"
#include "err.h"

#include <stdbool.h>
#include <stdint.h>

enum cw_log_level { CW_LOG_DEBUG = 0, CW_LOG_INFO, CW_LOG_WARN, CW_LOG_ERROR };
enum cw_log_format { CW_LOG_LOGFMT = 0, CW_LOG_JSON };

/* cw_log_setup() sets the minimum level and the format, and reads the time
 * zone; call before threads start. */
void cw_log_setup(enum cw_log_level level, enum cw_log_format format);

/* cw_log_set_fd() redirects output (tests); default 2. */
void cw_log_set_fd(int fd);

/* cw_log_level_parse() / cw_log_format_parse() accept the flag spellings.
 * Return CW_OK or CW_EPARSE. */
CW_MUST_CHECK int cw_log_level_parse(const char *s, enum cw_log_level *out);
CW_MUST_CHECK int cw_log_format_parse(const char *s, enum cw_log_format *out);

/* cw_log_enabled() tells whether a line at 'level' would be written. */
int cw_log_enabled(enum cw_log_level level);

/* cw_log() writes one line: component and msg, then NULL-terminated key,
 * value pairs (values may be NULL, printed as ""). */
void cw_log(enum cw_log_level level, const char *component, const char *msg, ...) CW_SENTINEL;

/* A rate limit for a line that a client or a peer can cause at will
 * (malformed requests, refused connections, a full spool): at most one line
 * per CW_LOG_LIMIT_INTERVAL per limiter, and the next line written says how
 * many were suppressed since the last one (suppressed=N), in the spirit of
 * collectd's c_complain. A limiter is a static or embedded object,
 * zero-initialised (CW_LOG_LIMIT_INIT); thread-safe without a lock. */
#define CW_LOG_LIMIT_INTERVAL CW_S(10)

struct cw_log_limit {
    _Atomic cw_mono next;        /* first time the next line may be written */
    _Atomic uint64_t suppressed; /* lines dropped since the last one written */
};

#define CW_LOG_LIMIT_INIT                                                                          \
    {                                                                                              \
        0, 0                                                                                       \
    }

/* cw_log_limited() is cw_log() through limiter 'l'. */
void cw_log_limited(struct cw_log_limit *l, enum cw_log_level level, const char *component,
                    const char *msg, ...) CW_SENTINEL;

/* cw_log_limit_admit() is the limiter's decision at time 'now': true when a
 * line may be written, with the count suppressed before it in *suppressed.
 * Exposed for tests. */
bool cw_log_limit_admit(struct cw_log_limit *l, cw_mono now, uint64_t *suppressed);

#endif
