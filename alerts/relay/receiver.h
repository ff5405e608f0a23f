/* SPDX-License-Identifier: Apache-2.0 */
/*
 * receiver.h - the receiver interface of connwatch-relay: what one
 * receiver_<kind>.c implements and what the delivery engine gives it.
 *
 * A receiver kind is one file ending with a `const struct cw_receiver_kind`
 * (name, configure, deliver, release), listed once in cw_receiver_kinds[]
 * (kinds.c). configure() runs on the thread that loads the configuration;
 * deliver() runs on the receiver's own delivery thread only, one call at a
 * time, so a kind's state needs no lock of its own. A kind file includes
 * this header plus the pieces it uses: template.h, sign.h, outbound.h.
 */
#ifndef CW_RELAY_RECEIVER_H
#define CW_RELAY_RECEIVER_H

#include "alerts/relay/payload.h"
#include "alerts/relay/template.h"
#include "exporter/core/clock.h"
#include "exporter/core/config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

enum cw_deliver_result {
    CW_DELIVER_OK = 0,    /* the remote side confirmed */
    CW_DELIVER_RETRY,     /* failed; retry with backoff */
    CW_DELIVER_THROTTLED, /* the remote side asked us to slow down; retry after info->retry_after */
    CW_DELIVER_REJECTED,  /* retrying this message cannot help (the receiver refused it with a
                           * 4xx, or it cannot be built): dead-lettered after dead_letter_after */
};

struct cw_deliver_info {
    char detail[256];        /* why it failed: no secrets */
    cw_duration retry_after; /* CW_DELIVER_THROTTLED: wait at least this long */
};

/* What configure() tells the engine about the receiver. */
struct cw_receiver_caps {
    unsigned rate_limit; /* messages per rate_window; 0 = unlimited */
    cw_duration rate_window;
    bool merge;               /* deliver() can put several notifications in one message */
    const char *min_severity; /* static string: default filter ("critical" for SMS), or NULL
                               * for all */
};

/* Everything deliver() gets besides its state; borrowed for the call. */
struct cw_deliver_ctx {
    const char *receiver; /* borrowed from the configuration: receiver name */
    enum cw_lang lang;
    const struct cw_tz *tz; /* borrowed from the configuration: the reader's time zone */
    const char *title_tmpl; /* borrowed from the configuration, or NULL for the kind's default */
    const char *alert_tmpl; /* borrowed from the configuration, or NULL for the kind's default */
    cw_duration timeout;
    atomic_bool *stop; /* borrowed from the receiver: set when the relay shuts down or
                        * reloads: abort */
};

struct cw_receiver_kind {
    const char *name; /* static: the kind's key in the configuration */
    size_t state_size;
    /* configure() reads the kind's mapping into a zeroed state of state_size
     * bytes, recording every problem in 'diag'; 'caps' holds the defaults on
     * entry. */
    int (*configure)(void *state, const struct cw_node *node, struct cw_receiver_caps *caps,
                     struct cw_diag *diag);
    /* deliver() sends msgs[0..n) (n >= 1), as one message when the kind
     * merges, and sets *used to how many it sent (>= 1 on success). */
    enum cw_deliver_result (*deliver)(void *state, const struct cw_deliver_ctx *ctx,
                                      struct cw_am_msg *const *msgs, size_t n, size_t *used,
                                      struct cw_deliver_info *info);
    /* release() frees what the state owns, also after a failed configure(). */
    void (*release)(void *state);
};

/* cw_receiver_kinds[] is the one list of receiver kinds (kinds.c), sorted by
 * name, NULL-terminated: configuration keys, lookups and messages derive from it. */
extern const struct cw_receiver_kind *const cw_receiver_kinds[];

/* What the TemplateParam of an aliyun_sms receiver is made of. */
struct cw_sms_params {
    const struct cw_strmap *custom; /* borrowed: template_param, or NULL/empty: the defaults */
    size_t value_max;               /* characters of one value (param_max_chars); 0 = 1000 */
    size_t total_max;               /* characters of all values (message_max_chars); 0 = no cap */
    enum cw_lang lang;
    const struct cw_tz *tz; /* borrowed, or NULL for UTC */
};

/* cw_sms_aliyun_params() (receiver_sms_aliyun.c) appends the TemplateParam
 * JSON object of 'm': every value rendered at group level, cut to
 * p->value_max characters, then the longest ones cut further until all of
 * them fit p->total_max together, so that the SMS stays within two segments.
 * Returns CW_OK or CW_ENOMEM. Any thread. */
CW_MUST_CHECK int cw_sms_aliyun_params(struct cw_buf *json, const struct cw_sms_params *p,
                                       const struct cw_am_msg *m);

#endif
