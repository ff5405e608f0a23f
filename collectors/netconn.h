/* SPDX-License-Identifier: Apache-2.0 */
/*
 * netconn.h - the one network layer of the check kinds: tcp, tls, dns,
 * mysql, redis and icmp resolve and connect through it (http lets libcurl
 * resolve and connect, bounded by CURLOPT_TIMEOUT_MS). It maps resolver
 * errors to failure reasons (socket errnos go through the core's one table,
 * cw_reason_from_errno()), resolves names within a deadline, and connects
 * non-blocking within a deadline.
 *
 * Everything here is thread-safe and keeps no static mutable state. A
 * lookup that outlives its deadline keeps running on its own thread and
 * frees itself when it ends; the caller keeps a handle to it (struct
 * cw_net_lookup) only to avoid starting a second one meanwhile.
 */
#ifndef CW_COLLECTORS_NETCONN_H
#define CW_COLLECTORS_NETCONN_H

#include "exporter/core/clock.h"
#include "exporter/core/err.h"

#include <netdb.h>
#include <stdbool.h>
#include <sys/socket.h>

/* The one "ip_family" enum: the option's values of the tcp, tls, http and
 * icmp kinds, in the order of the enum below (mysql and redis use auto). */
enum cw_net_family { CW_NET_FAMILY_AUTO = 0, CW_NET_FAMILY_IP4, CW_NET_FAMILY_IP6 };
extern const char *const cw_net_family_names[]; /* "auto", "ip4", "ip6", NULL */

/* cw_net_family_af() returns AF_UNSPEC, AF_INET or AF_INET6 for 'f'. */
int cw_net_family_af(int f);

/* Errno values are classified by the core's one table, cw_reason_from_errno()
 * (exporter/core/err.h). */

/* cw_net_reason_from_gai() maps a getaddrinfo() error: EAI_MEMORY and
 * EAI_SYSTEM (with an errno other than a resolver one) are internal, every
 * other error (no such name, no address, temporary failure) is dns. */
enum cw_reason cw_net_reason_from_gai(int gai_err, int sys_errno);

/* cw_net_literal() parses an IPv4 or IPv6 literal 'host' (IPv6 without
 * brackets, optionally with %scope) with 'port' into 'ss'. Returns true and
 * sets *len when 'host' is a literal of a family allowed by 'family' (one
 * of enum cw_net_family). */
bool cw_net_literal(const char *host, unsigned port, int family, struct sockaddr_storage *ss,
                    socklen_t *len);

/* cw_net_addr_format() writes "1.2.3.4" or "::1" (no port) into buf. */
const char *cw_net_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* ---- Resolution with a deadline ---------------------------------------------- */

struct cw_net_lookup; /* one getaddrinfo() on its own thread */

/* cw_net_resolve() resolves 'host' ('service' may be NULL) with
 * getaddrinfo() on a detached thread and waits for it until 'deadline'.
 * 'af' is AF_UNSPEC, AF_INET or AF_INET6, 'socktype' e.g. SOCK_STREAM,
 * 'flags' extra AI_* hint flags (0, or AI_ADDRCONFIG).
 * '*pending' is the caller's slot for a lookup that outlived an earlier
 * deadline (NULL when there is none); while it runs, no new lookup starts.
 * Returns:
 *   CW_OK        *out holds the addresses (free with freeaddrinfo());
 *   CW_EPARSE    the resolver failed: *gai_err holds its EAI_* code and
 *                *sys_errno the errno for EAI_SYSTEM;
 *   CW_ETIMEDOUT the deadline passed: the lookup goes on in '*pending';
 *   CW_EIO       an earlier lookup is still running in '*pending' (nothing
 *                was started);
 *   CW_ENOMEM    no memory or no thread.
 */
CW_MUST_CHECK int cw_net_resolve(const char *host, const char *service, int af, int socktype,
                                 int flags, cw_mono deadline, struct cw_net_lookup **pending,
                                 struct addrinfo **out, int *gai_err, int *sys_errno);

/* cw_net_lookup_abandon() gives up '*pending' (it frees itself when its
 * getaddrinfo() returns) and sets it to NULL. For release(). */
void cw_net_lookup_abandon(struct cw_net_lookup **pending);

/* ---- TCP connect with a deadline --------------------------------------------- */

/* cw_net_connect() opens a non-blocking TCP socket to 'sa' and waits until
 * the handshake completes or 'deadline' passes. *fd receives the socket
 * whenever one was created, connected or not (the caller closes it; a
 * socket still in SYN_SENT may be asked for TCP_INFO), else -1.
 * *elapsed receives the time from connect() to the outcome.
 * Returns CW_OK (connected; the socket stays non-blocking), CW_ETIMEDOUT
 * (still pending at the deadline: SYNs unanswered), or CW_EIO with the
 * connect() or SO_ERROR errno in *err (classify it with
 * cw_reason_from_errno()). */
CW_MUST_CHECK int cw_net_connect(const struct sockaddr *sa, socklen_t salen, cw_mono deadline,
                                 int *fd, int *err, cw_duration *elapsed);

/* cw_net_wait() polls 'fd' for 'events' until 'deadline'. Returns the
 * revents, 0 when the deadline passed, or -1 with errno set. */
int cw_net_wait(int fd, short events, cw_mono deadline);

/* ---- The layer every kind resolves and connects through ---------------------- */

/* Why a step of the layer failed: the run's reason and a detail for the log. */
struct cw_net_fail {
    enum cw_reason reason;
    int gai;          /* the EAI_* code when the resolver answered with an error, else 0 */
    char detail[200]; /* "resolve HOST: ...", "connect to ADDR port P: ..." */
};

/* cw_net_addrs() resolves 'host' for 'port' (0: no service) within
 * 'deadline': an IP literal (IPv6 without brackets) at once, with neither a
 * thread nor I/O; a name with cw_net_resolve() and the caller's '*pending'
 * slot. 'family' is one of enum cw_net_family, 'socktype' e.g. SOCK_STREAM,
 * 'flags' extra AI_* flags. Returns true with *out (free it with
 * freeaddrinfo()), else false with *f: reason dns when the resolver failed,
 * did not answer before the deadline or is still busy with the previous
 * lookup; internal when out of memory or threads. */
CW_MUST_CHECK bool cw_net_addrs(const char *host, unsigned port, int family, int socktype,
                                int flags, cw_mono deadline, struct cw_net_lookup **pending,
                                struct addrinfo **out, struct cw_net_fail *f);

/* cw_net_first() is cw_net_addrs() for SOCK_STREAM that keeps the first
 * address in getaddrinfo()'s order (RFC 6724), the one a client tries
 * first, in 'ss'. */
CW_MUST_CHECK bool cw_net_first(const char *host, unsigned port, int family, cw_mono deadline,
                                struct cw_net_lookup **pending, struct sockaddr_storage *ss,
                                socklen_t *len, struct cw_net_fail *f);

/* cw_net_connect_fail() describes a failed cw_net_connect() to 'sa' (its
 * return code, errno and elapsed time) in *f: timeout for SYNs unanswered
 * at the deadline, else the errno's reason from the core's table. */
void cw_net_connect_fail(int rc, int err, const struct sockaddr *sa, cw_duration elapsed,
                         struct cw_net_fail *f);

/* One connection made by cw_net_dial(). */
struct cw_net_conn {
    int fd;                       /* owned by the caller: the socket of the last attempt, or -1 */
    struct sockaddr_storage addr; /* the address of the last attempt */
    socklen_t addrlen;            /* 0: no address was tried */
    cw_duration elapsed;          /* connect() to outcome, of the last attempt */
};

/* cw_net_dial() resolves host:port (cw_net_addrs) and connects to its
 * addresses in order (cw_net_connect), at most 'max_addrs' of them (0: all)
 * and none after the deadline passed, until one connects. Returns true with
 * c->fd connected (non-blocking); else false with *f, and c->fd, when not
 * -1, the unconnected socket of the last attempt (for TCP_INFO). The
 * caller closes c->fd either way. */
CW_MUST_CHECK bool cw_net_dial(const char *host, unsigned port, int family, unsigned max_addrs,
                               cw_mono deadline, struct cw_net_lookup **pending,
                               struct cw_net_conn *c, struct cw_net_fail *f);

#endif
