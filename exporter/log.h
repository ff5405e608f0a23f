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

#include "err.h"

enum cw_log_level { CW_LOG_DEBUG = 0, CW_LOG_INFO, CW_LOG_WARN, CW_LOG_ERROR };
enum cw_log_format { CW_LOG_LOGFMT = 0, CW_LOG_JSON };

/* cw_log_setup() sets the minimum level and the format; call before threads start. */
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

#endif
