/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay.h - the receiver interface of connwatch-relay and the pieces its
 * files share: parsed notifications (payload.c), message templates
 * (template.c), signing helpers (sign.c), outbound HTTP (outbound.c).
 *
 * A receiver kind is one file ending with a `const struct cw_receiver_kind`
 * (name, configure, deliver, release), listed in cw_receiver_kinds[]
 * (main.c). configure() runs on the thread that loads the configuration;
 * deliver() runs on the receiver's own delivery thread only, one call at a
 * time, so a kind's state needs no lock of its own.
 */
#ifndef CW_RELAY_H
#define CW_RELAY_H

#include "exporter/core/buf.h"
#include "exporter/core/clock.h"
#include "exporter/core/config.h"
#include "exporter/core/err.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- payload.c: the Alertmanager payload (version 4) --------------------- */

struct cw_am_alert {
    const char *status;      /* "firing" or "resolved" */
    const char *fingerprint; /* "" when absent */
    const char *starts_at;   /* RFC 3339 or "" */
    const char *ends_at;
    const char *generator_url;
    json_t *labels;      /* borrowed from the message's root: object of strings */
    json_t *annotations; /* borrowed; object of strings */
};

struct cw_am_msg {
    json_t *root; /* owned */
    const char *status;
    const char *receiver;
    const char *group_key;
    const char *external_url;
    json_t *common_labels;      /* borrowed; may be NULL */
    struct cw_am_alert *alerts; /* owned */
    size_t nalerts;
};

#define CW_AM_KEY_LEN 32 /* hex characters of a dedupe key */

/* cw_am_parse() parses and validates a webhook body: version "4", status,
 * receiver, groupKey and alerts[] with label objects. On failure returns
 * CW_EPARSE with a one-line reason in 'why'. 'out' is then empty. */
CW_MUST_CHECK int cw_am_parse(const char *body, size_t len, struct cw_am_msg *out, char *why,
                              size_t whylen);
void cw_am_free(struct cw_am_msg *m);

/* cw_am_label()/cw_am_annotation() return a label or annotation value, or "". */
const char *cw_am_label(const struct cw_am_alert *a, const char *name);
const char *cw_am_annotation(const struct cw_am_alert *a, const char *name);

/* cw_am_dedupe_key() writes the hex SHA-256 prefix of groupKey, status and the
 * sorted alert fingerprints (labels when a fingerprint is missing) into
 * key[CW_AM_KEY_LEN + 1]. */
CW_MUST_CHECK int cw_am_dedupe_key(const struct cw_am_msg *m, char *key);

/* ---- template.c: messages -------------------------------------------------- */

enum cw_lang { CW_LANG_ZH = 0, CW_LANG_EN };

/* Placeholders: {{status}} {{alertname}} {{severity}} {{service}} {{layer}}
 * {{instance}} {{summary}} {{description}} {{starts_at}} {{ends_at}}
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
    struct cw_buf *more_out; /* NULL: {{more}} renders in place; else appended here, so a
                              * caller cutting the text can keep it whole */
};

/* cw_tmpl_render_opts() is cw_tmpl_render() with value caps ('o' may be NULL). */
CW_MUST_CHECK int cw_tmpl_render_opts(struct cw_buf *out, const char *tmpl,
                                      const struct cw_am_msg *m, const struct cw_am_alert *a,
                                      enum cw_lang lang, const struct cw_tmpl_opts *o);

/* cw_tmpl_add_value() appends s[0..len), cut to at most 'max' bytes (0 = no
 * limit) on a UTF-8 boundary with "…" when longer. */
CW_MUST_CHECK int cw_tmpl_add_value(struct cw_buf *out, const char *s, size_t len, size_t max);

/* cw_am_firing() counts the firing alerts of m->alerts[from..). */
size_t cw_am_firing(const struct cw_am_msg *m, size_t from);

/* cw_tmpl_more() appends the summary of m->alerts[from..), "… and N more
 * alerts (F firing, R resolved), see Alertmanager" (zh: "…另有 N 条告警未显示
 * （F 条告警，R 条已恢复），详见 Alertmanager"); nothing when none is left. */
CW_MUST_CHECK int cw_tmpl_more(struct cw_buf *out, const struct cw_am_msg *m, size_t from,
                               enum cw_lang lang);

struct cw_digest {
    size_t budget;    /* what the blocks and the summary line may cost in all */
    size_t value_max; /* cap of each placeholder's value (cw_tmpl_opts) */
    size_t (*cost)(const char *s, size_t len); /* cost of bytes once encoded; NULL = bytes */
    const char *sep;    /* appended after each block and after the summary line */
    size_t piece_limit; /* limit of one rendered block; 0 = 1 MiB */
};

/* cw_tmpl_digest() appends one 'tmpl' block per alert of 'm', in order, while
 * they fit in d->budget, keeping room for the cw_tmpl_more() line, which it
 * appends when alerts are left out. It renders one block at a time and stops
 * at the budget, so its cost is bounded whatever the notification's size.
 * *shown receives how many alerts were written. Returns CW_OK, CW_ETOOBIG when
 * the budget cannot even hold the summary line, or CW_ENOMEM. */
CW_MUST_CHECK int cw_tmpl_digest(struct cw_buf *out, const char *tmpl, const struct cw_am_msg *m,
                                 enum cw_lang lang, const struct cw_digest *d, size_t *shown);

/* cw_tmpl_check() tells whether every {{ has a matching }} and a known name. */
bool cw_tmpl_check(const char *tmpl, const char **why);

/* cw_tmpl_default_title()/cw_tmpl_default_alert(): the built-in texts
 * (markdown; read fine as plain text). */
const char *cw_tmpl_default_title(enum cw_lang lang);
const char *cw_tmpl_default_alert(enum cw_lang lang);

/* cw_utf8_cut() returns the largest length <= max that does not split a
 * UTF-8 sequence of s[0..len). */
size_t cw_utf8_cut(const char *s, size_t len, size_t max);

/* cw_severity_rank(): critical 3, warning 2, info 1, anything else 0. */
int cw_severity_rank(const char *sev);

/* ---- sign.c: DingTalk and Aliyun signatures ------------------------------- */

/* cw_dingtalk_sign() computes urlencode(base64(HMAC-SHA256(secret, ts "\n" secret)))
 * into out (>= 128 bytes). */
CW_MUST_CHECK int cw_dingtalk_sign(const char *secret, const char *timestamp_ms, char *out,
                                   size_t outlen);

/* cw_pct_encode() appends 's' percent-encoded per RFC 3986 (Aliyun rules:
 * unreserved kept, everything else %XX upper-case). */
CW_MUST_CHECK int cw_pct_encode(struct cw_buf *out, const char *s);

struct cw_kv {
    const char *key;
    const char *value;
};

/* cw_aliyun_sign() sorts 'params' (modified in place) and appends to 'query'
 * "Signature=<pct(sig)>&<canonical query>"; 'sts' (may be NULL) receives
 * the StringToSign. */
CW_MUST_CHECK int cw_aliyun_sign(struct cw_kv *params, size_t n, const char *secret,
                                 struct cw_buf *query, struct cw_buf *sts);

/* cw_json_escape() appends 's' as the inside of a JSON string. */
CW_MUST_CHECK int cw_json_escape(struct cw_buf *out, const char *s, size_t len);

/* ---- the receiver interface ------------------------------------------------ */

enum cw_deliver_result {
    CW_DELIVER_OK = 0,    /* the remote side confirmed */
    CW_DELIVER_RETRY,     /* failed; retry with backoff */
    CW_DELIVER_THROTTLED, /* the remote side asked us to slow down; retry after info->retry_after */
    CW_DELIVER_REJECTED,  /* retrying this message cannot help (the receiver refused it with a
                           * 4xx, or it cannot be built): dead-lettered after dead_letter_after */
};

/* cw_http_is_permanent() tells whether an HTTP status refuses the request for
 * good: 4xx other than 408 (timeout) and 429 (too many requests). */
bool cw_http_is_permanent(long status);

struct cw_deliver_info {
    char detail[256];        /* why it failed: no secrets */
    cw_duration retry_after; /* CW_DELIVER_THROTTLED: wait at least this long */
};

/* What configure() tells the engine about the receiver. */
struct cw_receiver_caps {
    unsigned rate_limit; /* messages per rate_window; 0 = unlimited */
    cw_duration rate_window;
    bool merge;               /* deliver() can put several notifications in one message */
    const char *min_severity; /* default filter ("critical" for SMS), or NULL for all */
};

/* Everything deliver() gets besides its state. */
struct cw_deliver_ctx {
    const char *receiver; /* receiver name */
    enum cw_lang lang;
    const char *title_tmpl; /* from the receiver, or NULL for the kind's default */
    const char *alert_tmpl;
    cw_duration timeout;
    atomic_bool *stop; /* set when the relay shuts down or reloads: abort */
};

struct cw_receiver_kind {
    const char *name;
    size_t state_size;
    /* configure() reads the kind's mapping; 'caps' holds the defaults on entry. */
    int (*configure)(void *state, const struct cw_node *node, struct cw_receiver_caps *caps,
                     struct cw_diag *diag);
    /* deliver() sends msgs[0..n) (n >= 1), as one message when the kind
     * merges, and sets *used to how many it sent (>= 1 on success). */
    enum cw_deliver_result (*deliver)(void *state, const struct cw_deliver_ctx *ctx,
                                      struct cw_am_msg *const *msgs, size_t n, size_t *used,
                                      struct cw_deliver_info *info);
    void (*release)(void *state);
};

extern const struct cw_receiver_kind cw_recv_dingtalk;
extern const struct cw_receiver_kind cw_recv_aliyun_sms;
extern const struct cw_receiver_kind cw_recv_email;
extern const struct cw_receiver_kind cw_recv_webhook;

/* ---- outbound.c: one HTTP request with libcurl ----------------------------- */

struct cw_http_out {
    long status;        /* HTTP status, 0 when no response */
    struct cw_buf body; /* response body, bounded */
};

/* cw_out_request() sends one request ('body' NULL: GET) with the deliver
 * timeout and the stop flag. Returns CW_OK when a response came (any status),
 * or CW_EIO with the curl error in info->detail. 'out' must be initialised
 * by the caller (cw_buf_init) and reset afterwards. */
CW_MUST_CHECK int cw_out_request(const char *url, const char *content_type, const char *body,
                                 size_t len, const struct cw_deliver_ctx *ctx,
                                 struct cw_http_out *out, struct cw_deliver_info *info);

#endif
