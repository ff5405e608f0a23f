/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.h - message templates of connwatch-relay (template.c):
 * {{placeholder}} substitution, bounded rendering, the default zh/en texts,
 * UTF-8-safe cutting. Pure functions; any thread.
 */
#ifndef CW_RELAY_TEMPLATE_H
#define CW_RELAY_TEMPLATE_H

#include "alerts/relay/payload.h"
#include "exporter/core/buf.h"
#include "exporter/core/err.h"
#include "exporter/core/words.h"

#include <stdbool.h>
#include <stddef.h>

/* A receiver's time zone (its time_zone option): the times of a message are
 * written as the reader's wall clock. Either the host's local zone (the
 * process's TZ or /etc/localtime, read once by the C library and never
 * changed: localtime_r is thread-safe as long as nobody sets TZ), or a fixed
 * offset from UTC with the name written after the time. The relay never
 * touches the TZ environment variable, which is process-global. */
struct cw_tz {
    bool local;
    int offset;    /* seconds east of UTC, when !local */
    char name[16]; /* written after the time: "UTC", "CST", "+08:00" */
};

/* cw_tz_parse() reads a time_zone value into *tz: "local", "UTC" (or "Z",
 * "Etc/UTC"), an offset "+08:00" / "-05:30" / "+0800" (up to ±14:00), or one
 * of the named zones without daylight saving time (Asia/Shanghai and the few
 * others relay.md lists), each a fixed offset. Returns false with a static
 * reason in *why for anything else. Any thread. */
bool cw_tz_parse(const char *s, struct cw_tz *tz, const char **why);

/* Placeholders: {{status}} {{alertname}} {{severity}} {{service}} {{layer}}
 * {{layer_text}} (the layer as operators say it: 网络层, network layer)
 * {{target}} {{target_or_instance}} {{instance_if_no_target}} {{instance}}
 * {{reason}} {{reason_text}} (the reason label explained) {{reason_short}} (the
 * same without the hint in parentheses) {{summary}}
 * {{description}} {{starts_at}} {{ends_at}} (in the time zone of the options,
 * UTC without) {{duration}} (how long a resolved alert lasted)
 * {{generator_url}} {{external_url}} {{receiver}} {{count}} {{firing}}
 * {{resolved}} {{group_key}} {{more}} (group level: " … and N more" when the
 * notification has more than one alert) {{label:NAME}} {{annotation:NAME}}. Unknown ones
 * render empty; a line whose placeholders all render empty is left out.
 * 'a' may be NULL (group-level templates). */
CW_MUST_CHECK int cw_tmpl_render(struct cw_buf *out, const char *tmpl, const struct cw_am_msg *m,
                                 const struct cw_am_alert *a, enum cw_lang lang);

/* Bounded rendering (every channel has a size limit). */
struct cw_tmpl_opts {
    size_t value_max;        /* bytes of one placeholder's value, cut on a character with
                              * "…" (within the cap); 0 = no cut */
    struct cw_buf *more_out; /* borrowed from the caller for the call, or NULL: {{more}}
                              * renders in place; else appended here, so a caller cutting
                              * the text can keep it whole */
    const struct cw_tz *tz;  /* borrowed for the call, or NULL for UTC */
};

/* cw_tmpl_render_opts() is cw_tmpl_render() with value caps ('o' may be NULL). */
CW_MUST_CHECK int cw_tmpl_render_opts(struct cw_buf *out, const char *tmpl,
                                      const struct cw_am_msg *m, const struct cw_am_alert *a,
                                      enum cw_lang lang, const struct cw_tmpl_opts *o);

/* cw_tmpl_add_value() appends s[0..len), cut to at most 'max' bytes (0 = no
 * limit) on a UTF-8 boundary with "…" when longer. */
CW_MUST_CHECK int cw_tmpl_add_value(struct cw_buf *out, const char *s, size_t len, size_t max);

/* cw_tmpl_more() appends the summary of m->alerts[from..), "… and N more
 * alerts (F firing, R resolved), see Alertmanager" (zh: "…另有 N 条告警未显示
 * （F 条告警，R 条已恢复），详见 Alertmanager"); nothing when none is left. */
CW_MUST_CHECK int cw_tmpl_more(struct cw_buf *out, const struct cw_am_msg *m, size_t from,
                               enum cw_lang lang);

struct cw_digest {
    size_t budget;    /* what the blocks and the summary line may cost in all */
    size_t value_max; /* cap of each placeholder's value (cw_tmpl_opts) */
    size_t (*cost)(const char *s, size_t len); /* cost of bytes once encoded; NULL = bytes */
    const char *sep;           /* borrowed (usually a literal), or NULL: appended after each block
                                * and after the summary line */
    size_t piece_limit;        /* limit of one rendered block; 0 = 1 MiB */
    const struct cw_tz *tz;    /* borrowed for the call, or NULL for UTC */
    const char *resolved_tmpl; /* borrowed for the call, or NULL: the block of a resolved
                                * alert (else 'tmpl' for every alert) */
};

/* cw_tmpl_digest() appends one 'tmpl' block per alert of 'm', in order, while
 * they fit in d->budget, keeping room for the cw_tmpl_more() line, which it
 * appends when alerts are left out. It renders one block at a time and stops
 * at the budget, so its cost is bounded whatever the notification's size.
 * *shown receives how many alerts were written. Returns CW_OK, CW_ETOOBIG when
 * the budget cannot even hold the summary line, or CW_ENOMEM. */
CW_MUST_CHECK int cw_tmpl_digest(struct cw_buf *out, const char *tmpl, const struct cw_am_msg *m,
                                 enum cw_lang lang, const struct cw_digest *d, size_t *shown);

/* cw_tmpl_check() tells whether every {{ has a matching }} and a known name;
 * when not, *why receives a static reason. */
bool cw_tmpl_check(const char *tmpl, const char **why);

/* cw_tmpl_default_title()/cw_tmpl_default_alert()/cw_tmpl_default_resolved():
 * the built-in texts (markdown; read fine as plain text), static strings. The
 * alert block says what fails, where, at which layer and why, since when; the
 * resolved block (for a resolved alert, when the receiver has no
 * alert_template) says what recovered and how long it lasted. */
const char *cw_tmpl_default_title(enum cw_lang lang);
const char *cw_tmpl_default_alert(enum cw_lang lang);
const char *cw_tmpl_default_resolved(enum cw_lang lang);

/* cw_utf8_cut() returns the largest length <= max that does not split a
 * UTF-8 sequence of s[0..len). */
size_t cw_utf8_cut(const char *s, size_t len, size_t max);

/* cw_severity_rank(): critical 3, warning 2, info 1, anything else 0. */
int cw_severity_rank(const char *sev);

#endif
