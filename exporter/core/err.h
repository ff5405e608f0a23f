/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.h - the two error vocabularies of connwatch.
 *
 * enum cw_err is about the program itself (allocation, bad input, I/O of our
 * own); enum cw_reason is about a target and becomes the "reason" label users
 * see. A refused connection is a reason, never an error of the daemon.
 * Both tables are constant; every function here is thread-safe.
 */
#ifndef CW_ERR_H
#define CW_ERR_H

#define CW_MUST_CHECK   __attribute__((warn_unused_result))
#define CW_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CW_SENTINEL     __attribute__((sentinel))
#define CW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum cw_err {
    CW_OK = 0,
    CW_ENOMEM,    /* allocation failed */
    CW_EINVAL,    /* a caller broke a precondition: a bug, not bad input */
    CW_ECONFIG,   /* configuration rejected; details are in the cw_diag */
    CW_EPARSE,    /* input from a target, a file or a client did not parse */
    CW_ETIMEDOUT, /* a deadline passed */
    CW_EIO,       /* socket or file error; errno was logged where it happened */
    CW_ETOOBIG,   /* a bounded buffer would overflow */
    CW_ERR_COUNT  /* not an error; keep last and never renumber the others */
};

/* cw_strerror() returns a static description of 'err' (never NULL). */
const char *cw_strerror(int err);

/* The SPEC's "reason" label values, in SPEC order, then the additions. */
enum cw_reason {
    CW_REASON_NONE = 0,
    CW_REASON_DNS,
    CW_REASON_REFUSED,
    CW_REASON_TIMEOUT,
    CW_REASON_UNREACHABLE,
    CW_REASON_TLS_HANDSHAKE,
    CW_REASON_CERT_EXPIRED,
    CW_REASON_CERT_NOT_YET_VALID,
    CW_REASON_CERT_UNTRUSTED,
    CW_REASON_CERT_HOSTNAME,
    CW_REASON_HTTP_STATUS,
    CW_REASON_AUTH,
    CW_REASON_PROTOCOL,
    CW_REASON_INTERNAL,
    CW_REASON_REDIRECT_REFUSED, /* an addition: a /probe redirect probe.allow does not list */
    CW_REASON_COUNT
};

/* cw_reason_label() returns the label value of 'r' ("" for CW_REASON_NONE,
 * "internal" for anything out of range). */
const char *cw_reason_label(enum cw_reason r);

/* The one errno -> reason table of connwatch: every kind that classifies
 * the errno of a failed connect(), SO_ERROR, send or receive uses it, so a
 * firewall REJECT reads the same on every kind. One row per errno; an errno
 * not listed is "internal" (our own resource trouble: EMFILE, ENOBUFS,
 * EAGAIN for want of an ephemeral port...).
 *   ECONNREFUSED, ECONNRESET                refused   (RST)
 *   ETIMEDOUT, EINPROGRESS                  timeout   (no answer in time)
 *   EHOSTUNREACH, ENETUNREACH, ENETDOWN,
 *   EHOSTDOWN, ENONET, EADDRNOTAVAIL        unreachable (no route, ICMP error)
 *   EPERM, EACCES                           unreachable (a local firewall,
 *                                           nft/iptables OUTPUT, dropped or
 *                                           rejected the packet) */
struct cw_errno_reason {
    int err;
    enum cw_reason reason;
};
extern const struct cw_errno_reason cw_errno_reasons[];
extern const unsigned cw_errno_reasons_len;

/* cw_reason_from_errno() looks 'err' up in cw_errno_reasons (internal when
 * it is not there). */
enum cw_reason cw_reason_from_errno(int err);

/* cw_strerror_r() is a thread-safe strerror() that always returns 'buf'. */
const char *cw_strerror_r(int errnum, char *buf, unsigned long len);

#endif
