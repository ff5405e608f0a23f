/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diagnose.h - `connwatch diagnose`: the layers behind one target, checked
 * now, in order (DNS, ICMP, TCP, TLS, then HTTP or the MySQL / Redis
 * protocol, and the local host), with the same check kinds and the same
 * configuration loader the daemon uses; one line per layer, then a verdict
 * naming the broken layer, its likely cause in plain words and the next
 * command a person would run to confirm it. Chinese or English; --json.
 *
 * The judgement (cw_dx_judge) and the advice (cw_dx_next) are pure
 * functions of the steps' results, unit-tested apart from any network.
 */
#ifndef CW_DIAGNOSE_H
#define CW_DIAGNOSE_H

#include "check.h"
#include "core/buf.h"
#include "core/words.h"

#include <stdbool.h>
#include <stddef.h>

/* Exit codes of `connwatch diagnose` (documented in its help and the README). */
#define CW_DX_EXIT_OK       0
#define CW_DX_EXIT_DEGRADED 1
#define CW_DX_EXIT_USAGE    2
#define CW_DX_EXIT_BROKEN   3

enum cw_dx_state {
    CW_DX_OK = 0,
    CW_DX_FILTERED,    /* ICMP unanswered while a TCP-based layer works: filtered, not down */
    CW_DX_DEGRADED,    /* succeeded, but a figure crossed its default alert threshold */
    CW_DX_NOT_REACHED, /* failed because a lower layer failed */
    CW_DX_BROKEN,
};

/* One layer's check, as run. */
struct cw_dx_step {
    const char *kind;    /* borrowed: static ("dns", "icmp", "tcp", "tls", "http", ...) */
    enum cw_layer layer; /* the kind's own layer */
    char target[512];    /* the check's target label */
    char host[256];      /* where it connects, for the advice; "" when none */
    char port[8];        /* "" when none */
    bool ok;             /* its run succeeded */
    enum cw_reason reason;
    bool over;                /* a figure crossed its threshold */
    char over_text[256];      /* the figures that crossed their threshold */
    enum cw_layer over_layer; /* while over: the layer of the first such figure */
    char figures[512];        /* plain text, in the output's language */
    char error[256];          /* the run's detail when it failed */
    cw_duration took;
    enum cw_dx_state state; /* set by cw_dx_judge() */
};

struct cw_dx_verdict {
    enum cw_dx_state state; /* CW_DX_OK, CW_DX_DEGRADED or CW_DX_BROKEN */
    size_t step;            /* the deciding step; n when everything is ok */
};

/* Context for the advice: what the person typed. Borrowed strings, "" or
 * NULL when not given. */
struct cw_dx_context {
    const char *url;         /* the http check's URL */
    const char *server_name; /* TLS server name (default: the host) */
    const char *user;        /* MySQL user */
};

/* cw_dx_judge() gives every step its state and returns the verdict. Steps
 * are in layer order (network kinds first, the host last). A failure whose
 * reason belongs to a layer at or below an already broken one reads "not
 * reached"; an ICMP failure while a later TCP-based step worked reads
 * "filtered". The verdict is the first broken step, else the first
 * degraded one. */
struct cw_dx_verdict cw_dx_judge(struct cw_dx_step *steps, size_t n);

/* cw_dx_server_full() names the limit a mysql or redis step was refused
 * at by the server itself ("max_connections", "maxclients": the port
 * accepted, the protocol said no; the collectors' reason is "refused", as
 * for a port nobody listens on), or NULL. Such a step is broken at its own
 * layer, not the network's. */
const char *cw_dx_server_full(const struct cw_dx_step *s);

/* cw_dx_step_layer() is the layer a step's result belongs to: a failing
 * http check refused by the network is the network's; a succeeding one
 * over a threshold is that figure's (an http check's clock skew: TLS, as
 * the rules page it). */
enum cw_layer cw_dx_step_layer(const struct cw_dx_step *s);

/* cw_dx_exit_code() maps a verdict to the exit code. */
int cw_dx_exit_code(const struct cw_dx_verdict *v);

/* cw_dx_cause() appends the likely cause of 'step''s state in plain words. */
int cw_dx_cause(struct cw_buf *out, const struct cw_dx_step *step, enum cw_lang lang);

/* cw_dx_next() appends the next command a person would run to confirm the
 * cause (with a short comment), or nothing when there is none. */
int cw_dx_next(struct cw_buf *out, const struct cw_dx_step *step, const struct cw_dx_context *ctx,
               enum cw_lang lang);

/* cw_dx_split_address() splits "HOST:PORT", "[V6]:PORT", "HOST" or a URL
 * (scheme://[user@]host[:port]/...; the scheme's port when none) into its
 * host and port ("" when unknown). Returns false when the host does not fit. */
bool cw_dx_split_address(const char *addr, char *host, size_t hostlen, char *port, size_t portlen);

/* cw_diagnose_main() runs `connwatch diagnose ARGS` (argv[0] is
 * "diagnose") and returns the exit code. */
int cw_diagnose_main(int argc, char **argv);

#endif
