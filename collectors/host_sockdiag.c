/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host_sockdiag.c - count TCP sockets by state via NETLINK_SOCK_DIAG, or by
 * streaming /proc/net/tcp{,6}.
 *
 * Each call opens its own netlink socket or file, uses only the caller's
 * scratch buffer and closes everything before returning: no state, no
 * logging, thread-safe. Called by the host check's worker, the unit tests
 * and bench/sockcount. The netlink path dumps both address families in one
 * walk of the kernel's tables (the old TCPDIAG_GETSOCK request; one
 * SOCK_DIAG_BY_FAMILY dump per family where the kernel refuses it) and asks
 * for states 1..11 only, so the
 * kernel skips bound-but-inactive sockets (state 13 since Linux 6.8); it
 * reports request sockets (NEW_SYN_RECV) as SYN_RECV, as /proc/net/tcp does.
 */
#include "host_sockdiag.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Kernel state bits 1..11 (ESTABLISHED .. CLOSING). */
#define SOCKDIAG_STATES (((1u << CW_TCP_NSTATES) - 1u) & ~1u)

/* What a refused request reports (compared by address: the fallback). */
static const char sockdiag_nlmsg_error[] = "netlink: NLMSG_ERROR";

/* sockdiag_now() is cw_now() without the core library. */
static cw_mono sockdiag_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (cw_mono)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int sockdiag_fail(struct cw_host_sockdiag_err *err, int rc, const char *what, int sys_errno)
{
    err->what = what;
    err->sys_errno = sys_errno;
    return rc;
}

/* ---- NETLINK_SOCK_DIAG ---------------------------------------------------- */

/* sockdiag_open() returns a netlink socket bound to a kernel-chosen port
 * (in *portid) with a receive timeout at 'deadline', or -1 with *err set. */
static int sockdiag_open(cw_mono deadline, uint32_t *portid, struct cw_host_sockdiag_err *err)
{
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    socklen_t alen = sizeof(local);
    int fd;

    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) {
        sockdiag_fail(err, CW_EIO, "socket(NETLINK_SOCK_DIAG)", errno);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&local, sizeof(local)) != 0) {
        sockdiag_fail(err, CW_EIO, "bind(netlink)", errno);
        goto out_close_fd;
    }
    if (getsockname(fd, (struct sockaddr *)&local, &alen) != 0) {
        sockdiag_fail(err, CW_EIO, "getsockname(netlink)", errno);
        goto out_close_fd;
    }
    *portid = local.nl_pid;

    if (deadline != CW_HOST_NO_DEADLINE) {
        cw_duration left = deadline - sockdiag_now();
        struct timeval tv;

        if (left < CW_MS(1))
            left = CW_MS(1); /* 0 would mean "block forever" */
        tv.tv_sec = (time_t)(left / CW_S(1));
        tv.tv_usec = (suseconds_t)((left % CW_S(1)) / 1000);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
            sockdiag_fail(err, CW_EIO, "setsockopt(SO_RCVTIMEO)", errno);
            goto out_close_fd;
        }
    }
    return fd;

out_close_fd:
    close(fd);
    return -1;
}

/* One dump request. SOCKDIAG_ALL asks in the old TCPDIAG_GETSOCK form
 * (struct inet_diag_req), for which the kernel dumps with family AF_UNSPEC:
 * IPv4 and IPv6 sockets in one walk of its socket hash tables. Those tables
 * are shared by both families and sized by RAM, not by the sockets in them
 * (262,144 established-hash buckets on a 24 GiB machine), so each walk
 * costs about 1.3 ms there even with a handful of sockets; SOCK_DIAG_BY_FAMILY
 * needs one walk per family, twice that. */
enum sockdiag_req { SOCKDIAG_ALL = 0, SOCKDIAG_INET, SOCKDIAG_INET6 };

/* sockdiag_request() sends one dump request of kind 'kind'. */
static int sockdiag_request(int fd, enum sockdiag_req kind, uint32_t seq,
                            struct cw_host_sockdiag_err *err)
{
    struct {
        struct nlmsghdr nlh;
        union {
            struct inet_diag_req_v2 v2;
            struct inet_diag_req compat;
        } req;
    } msg;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    size_t len;
    ssize_t n;

    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.nlh.nlmsg_seq = seq;
    if (kind == SOCKDIAG_ALL) {
        len = NLMSG_LENGTH(sizeof(msg.req.compat));
        msg.nlh.nlmsg_type = TCPDIAG_GETSOCK;
        msg.req.compat.idiag_family = AF_INET; /* the kernel dumps AF_UNSPEC */
        msg.req.compat.idiag_ext = 0;          /* the state is in the fixed part */
        msg.req.compat.idiag_states = SOCKDIAG_STATES;
    } else {
        len = NLMSG_LENGTH(sizeof(msg.req.v2));
        msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
        msg.req.v2.sdiag_family = kind == SOCKDIAG_INET ? AF_INET : AF_INET6;
        msg.req.v2.sdiag_protocol = IPPROTO_TCP;
        msg.req.v2.idiag_ext = 0;
        msg.req.v2.idiag_states = SOCKDIAG_STATES;
    }
    msg.nlh.nlmsg_len = (uint32_t)len;

    do {
        n = sendto(fd, &msg, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return sockdiag_fail(err, CW_EIO, "sendto(netlink)", errno);
    if ((size_t)n != len)
        return sockdiag_fail(err, CW_EIO, "sendto(netlink): short write", 0);
    return CW_OK;
}

/* sockdiag_walk() counts the messages of one datagram [buf, buf+len) and
 * sets *done at NLMSG_DONE. Messages of another sequence or port are stale
 * and skipped. */
static int sockdiag_walk(const unsigned char *buf, size_t len, uint32_t seq, uint32_t portid,
                         struct cw_host_tcp_states *st, bool *done,
                         struct cw_host_sockdiag_err *err)
{
    size_t off = 0;

    while (len - off >= sizeof(struct nlmsghdr)) {
        const struct nlmsghdr *nlh = (const struct nlmsghdr *)(const void *)(buf + off);
        const unsigned char *payload = buf + off + NLMSG_HDRLEN;
        size_t plen;

        if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len - off)
            return sockdiag_fail(err, CW_EPARSE, "netlink: bad message length", 0);
        plen = nlh->nlmsg_len - NLMSG_HDRLEN;
        off += NLMSG_ALIGN(nlh->nlmsg_len);
        if (off > len)
            off = len; /* the last message may lack its padding */

        if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != portid)
            continue;
        if (nlh->nlmsg_type == NLMSG_DONE) {
            int code = 0;

            /* A dump that failed midway ends with a negative errno here. */
            if (plen >= sizeof(code))
                memcpy(&code, payload, sizeof(code));
            if (code < 0)
                return sockdiag_fail(err, CW_EIO, "netlink: dump failed", -code);
            *done = true;
            return CW_OK;
        }
        if (nlh->nlmsg_type == NLMSG_ERROR) {
            struct nlmsgerr e;

            if (plen < sizeof(e))
                return sockdiag_fail(err, CW_EPARSE, "netlink: short NLMSG_ERROR", 0);
            memcpy(&e, payload, sizeof(e));
            if (e.error == 0)
                continue; /* an acknowledgement */
            return sockdiag_fail(err, CW_EIO, sockdiag_nlmsg_error, -e.error);
        }
        if (nlh->nlmsg_type == SOCK_DIAG_BY_FAMILY || nlh->nlmsg_type == TCPDIAG_GETSOCK) {
            const struct inet_diag_msg *m = (const struct inet_diag_msg *)(const void *)payload;

            if (plen < sizeof(*m))
                return sockdiag_fail(err, CW_EPARSE, "netlink: short inet_diag_msg", 0);
            if (m->idiag_state >= 1 && m->idiag_state < CW_TCP_NSTATES)
                st->count[m->idiag_state]++;
            else
                st->other++;
        }
        /* other types (NLMSG_NOOP, ...) carry nothing for us */
    }
    if (off != len)
        return sockdiag_fail(err, CW_EPARSE, "netlink: trailing bytes", 0);
    return CW_OK;
}

/* sockdiag_dump() runs one dump of kind 'kind' and adds its counts to 'st'. */
static int sockdiag_dump(int fd, enum sockdiag_req kind, uint32_t seq, uint32_t portid,
                         unsigned char *buf, size_t buflen, cw_mono deadline,
                         struct cw_host_tcp_states *st, struct cw_host_sockdiag_err *err)
{
    bool done = false;
    int rc;

    rc = sockdiag_request(fd, kind, seq, err);
    if (rc != CW_OK)
        return rc;
    while (!done) {
        struct sockaddr_nl from;
        struct iovec iov = {.iov_base = buf, .iov_len = buflen};
        struct msghdr msg = {
            .msg_name = &from,
            .msg_namelen = sizeof(from),
            .msg_iov = &iov,
            .msg_iovlen = 1,
        };
        ssize_t n;

        if (deadline != CW_HOST_NO_DEADLINE && sockdiag_now() > deadline)
            return sockdiag_fail(err, CW_ETIMEDOUT, "netlink: deadline passed", ETIMEDOUT);
        /* MSG_TRUNC makes recvmsg() return the datagram's real length, so a
         * reply larger than the buffer is detected instead of cut short. */
        n = recvmsg(fd, &msg, MSG_TRUNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return sockdiag_fail(err, CW_ETIMEDOUT, "recvmsg(netlink)", errno);
            return sockdiag_fail(err, CW_EIO, "recvmsg(netlink)", errno);
        }
        if ((size_t)n > buflen || (msg.msg_flags & MSG_TRUNC) != 0)
            return sockdiag_fail(err, CW_EIO, "recvmsg(netlink): reply truncated", EMSGSIZE);
        if (n == 0)
            return sockdiag_fail(err, CW_EPARSE, "recvmsg(netlink): empty datagram", 0);
        if (msg.msg_namelen < sizeof(from) || from.nl_pid != 0)
            continue; /* not from the kernel */
        rc = sockdiag_walk(buf, (size_t)n, seq, portid, st, &done, err);
        if (rc != CW_OK)
            return rc;
    }
    return CW_OK;
}

/* sockdiag_count() counts in 'form' on a fresh socket; 'fallback' retries
 * per family when the kernel refuses the single dump. */
static int sockdiag_count(struct cw_host_tcp_states *out, void *scratch, size_t scratch_len,
                          cw_mono deadline, enum cw_host_netlink_form form, bool fallback,
                          struct cw_host_sockdiag_err *err)
{
    struct cw_host_tcp_states st = {{0}, 0};
    uint32_t portid = 0;
    int fd;
    int rc = CW_OK;

    if (scratch == NULL || scratch_len < CW_HOST_SOCKDIAG_SCRATCH ||
        (uintptr_t)scratch % alignof(struct nlmsghdr) != 0)
        return sockdiag_fail(err, CW_EINVAL, "netlink: scratch buffer too small", 0);
    fd = sockdiag_open(deadline, &portid, err);
    if (fd < 0)
        return CW_EIO;
    /* A fresh socket per call: sequence numbers 1 to 3 are unique on it. */
    if (form == CW_HOST_NETLINK_ONE_DUMP) {
        rc = sockdiag_dump(fd, SOCKDIAG_ALL, 1, portid, scratch, scratch_len, deadline, &st, err);
        if (rc != CW_EIO || err->what != sockdiag_nlmsg_error || !fallback)
            goto out_close_fd;
        /* A kernel without the old request form: one dump per family. */
        memset(&st, 0, sizeof(st));
    }
    rc = sockdiag_dump(fd, SOCKDIAG_INET, 2, portid, scratch, scratch_len, deadline, &st, err);
    if (rc == CW_OK)
        rc = sockdiag_dump(fd, SOCKDIAG_INET6, 3, portid, scratch, scratch_len, deadline, &st, err);

out_close_fd:
    if (rc == CW_OK)
        *out = st;
    close(fd);
    return rc;
}

int cw_host_count_netlink(struct cw_host_tcp_states *out, void *scratch, size_t scratch_len,
                          cw_mono deadline, struct cw_host_sockdiag_err *err)
{
    return sockdiag_count(out, scratch, scratch_len, deadline, CW_HOST_NETLINK_ONE_DUMP, true, err);
}

int cw_host_count_netlink_form(struct cw_host_tcp_states *out, void *scratch, size_t scratch_len,
                               cw_mono deadline, enum cw_host_netlink_form form,
                               struct cw_host_sockdiag_err *err)
{
    return sockdiag_count(out, scratch, scratch_len, deadline, form, false, err);
}

/* ---- /proc/net/tcp{,6} ---------------------------------------------------- */

/* One file to count, with the step names reported in *err. */
struct proc_file {
    const char *file; /* relative to the proc path */
    const char *open_what, *read_what, *parse_what;
    bool optional; /* a missing file counts as empty */
};

/* proc_count_file() streams one file through cw_host_parse_net_tcp(). */
static int proc_count_file(const char *path, const struct proc_file *pf, char *buf, size_t buflen,
                           cw_mono deadline, struct cw_host_tcp_states *st,
                           struct cw_host_sockdiag_err *err)
{
    size_t have = 0;
    int fd;
    int rc = CW_OK;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (pf->optional && errno == ENOENT)
            return CW_OK;
        return sockdiag_fail(err, CW_EIO, pf->open_what, errno);
    }
    for (;;) {
        size_t used;
        ssize_t n;

        if (deadline != CW_HOST_NO_DEADLINE && sockdiag_now() > deadline) {
            rc = sockdiag_fail(err, CW_ETIMEDOUT, pf->read_what, ETIMEDOUT);
            goto out_close_fd;
        }
        n = read(fd, buf + have, buflen - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = sockdiag_fail(err, CW_EIO, pf->read_what, errno);
            goto out_close_fd;
        }
        if (n == 0) {
            if (have != 0) /* the last line has no newline */
                rc = sockdiag_fail(err, CW_EPARSE, pf->parse_what, 0);
            goto out_close_fd;
        }
        have += (size_t)n;
        if (cw_host_parse_net_tcp(buf, have, st, &used) != CW_OK) {
            rc = sockdiag_fail(err, CW_EPARSE, pf->parse_what, 0);
            goto out_close_fd;
        }
        memmove(buf, buf + used, have - used);
        have -= used;
        if (have == buflen) { /* one line fills the whole buffer */
            rc = sockdiag_fail(err, CW_EPARSE, pf->parse_what, 0);
            goto out_close_fd;
        }
    }

out_close_fd:
    close(fd);
    return rc;
}

int cw_host_count_proc(const char *proc_path, struct cw_host_tcp_states *out, void *scratch,
                       size_t scratch_len, cw_mono deadline, struct cw_host_sockdiag_err *err)
{
    static const struct proc_file files[] = {
        {"net/tcp", "open net/tcp", "read net/tcp", "parse net/tcp", false},
        {"net/tcp6", "open net/tcp6", "read net/tcp6", "parse net/tcp6", true},
    };
    struct cw_host_tcp_states st = {{0}, 0};

    if (proc_path == NULL || scratch == NULL || scratch_len < 4096)
        return sockdiag_fail(err, CW_EINVAL, "proc: scratch buffer too small", 0);
    for (size_t i = 0; i < CW_ARRAY_LEN(files); i++) {
        char path[4096];
        int len = snprintf(path, sizeof(path), "%s/%s", proc_path, files[i].file);
        int rc;

        if (len < 0 || (size_t)len >= sizeof(path))
            return sockdiag_fail(err, CW_EINVAL, files[i].open_what, ENAMETOOLONG);
        rc = proc_count_file(path, &files[i], scratch, scratch_len, deadline, &st, err);
        if (rc != CW_OK)
            return rc;
    }
    *out = st;
    return CW_OK;
}
