/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host_sockdiag.h - count this network namespace's TCP sockets by state,
 * either through NETLINK_SOCK_DIAG (what ss uses; fast) or by streaming
 * /proc/net/tcp and /proc/net/tcp6 through cw_host_parse_net_tcp().
 *
 * Both counters use only a caller-provided scratch buffer and the file
 * descriptors they open and close within the call; they keep no state, log
 * nothing and are thread-safe. Called by the host check's worker, the unit
 * tests and bench/sockcount. They depend on libc alone (no core library), so
 * that the bench links them by themselves.
 */
#ifndef CW_HOST_SOCKDIAG_H
#define CW_HOST_SOCKDIAG_H

#include "collectors/host_proc.h"
#include "exporter/core/clock.h"

#include <stddef.h>

/* Smallest scratch buffer the counters accept. Above the kernel's largest
 * netlink dump chunk (32 KiB), so a reply is never truncated. */
#define CW_HOST_SOCKDIAG_SCRATCH ((size_t)64 * 1024)

/* Deadline meaning "none" (bench, tests). */
#define CW_HOST_NO_DEADLINE INT64_MAX

/* What failed, for the caller to log or report. */
struct cw_host_sockdiag_err {
    const char *what; /* static text: the step that failed ("recvmsg", "open net/tcp6", ...) */
    int sys_errno;    /* errno of that step (or the kernel's NLMSG_ERROR), 0 if none */
};

/* cw_host_count_netlink() dumps every TCP socket of the caller's network
 * namespace in states 1..11, IPv4 and IPv6 in one dump (TCPDIAG_GETSOCK:
 * one walk of the kernel's hash tables; SOCK_DIAG_BY_FAMILY for AF_INET
 * then AF_INET6 when the kernel answers that with NLMSG_ERROR) and stores
 * the counts in *out (overwritten, only on success). 'scratch'
 * (malloc-aligned, at least CW_HOST_SOCKDIAG_SCRATCH bytes) is used as the
 * receive buffer. Gives up at 'deadline' (CLOCK_MONOTONIC ns, or
 * CW_HOST_NO_DEADLINE). Returns CW_OK; CW_EIO when a syscall failed or the
 * kernel answered NLMSG_ERROR (e.g. sock_diag unavailable), CW_EPARSE on a
 * malformed reply, CW_ETIMEDOUT, or CW_EINVAL for a too small scratch; *err
 * then says what failed. */
CW_MUST_CHECK int cw_host_count_netlink(struct cw_host_tcp_states *out, void *scratch,
                                        size_t scratch_len, cw_mono deadline,
                                        struct cw_host_sockdiag_err *err);

/* How cw_host_count_netlink_form() asks: CW_HOST_NETLINK_ONE_DUMP is the
 * single TCPDIAG_GETSOCK dump, with no fallback; CW_HOST_NETLINK_PER_FAMILY
 * one SOCK_DIAG_BY_FAMILY dump per family (the form before issue 14, and the
 * fallback). For the bench and the tests, which compare the two. */
enum cw_host_netlink_form { CW_HOST_NETLINK_ONE_DUMP = 0, CW_HOST_NETLINK_PER_FAMILY };

/* cw_host_count_netlink_form() is cw_host_count_netlink() in one form. */
CW_MUST_CHECK int cw_host_count_netlink_form(struct cw_host_tcp_states *out, void *scratch,
                                             size_t scratch_len, cw_mono deadline,
                                             enum cw_host_netlink_form form,
                                             struct cw_host_sockdiag_err *err);

/* cw_host_count_proc() counts the sockets listed in PROC/net/tcp and
 * PROC/net/tcp6 ('proc_path' is borrowed, e.g. "/proc"), reading them in
 * chunks of 'scratch_len' bytes (at least 4 KiB; memory use is bounded by the
 * scratch whatever the number of sockets). A missing net/tcp6 counts as no
 * IPv6 sockets (IPv6 disabled). Stores the counts in *out only on success.
 * Returns CW_OK, CW_EIO (open/read failed), CW_EPARSE (malformed or truncated
 * line), CW_ETIMEDOUT or CW_EINVAL, with *err filled. */
CW_MUST_CHECK int cw_host_count_proc(const char *proc_path, struct cw_host_tcp_states *out,
                                     void *scratch, size_t scratch_len, cw_mono deadline,
                                     struct cw_host_sockdiag_err *err);

#endif
