/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sockcount.c - benchmark of the host check's TCP state counting: opens N
 * loopback TCP sockets (N/2 client + N/2 accepted, default 50,000; 0 is
 * allowed), then times cw_host_count_netlink() (one dump of both families),
 * the same in its per-family form (two dumps, the form before issue 14) and
 * cw_host_count_proc() (median of 5 runs each, wall time and the thread's
 * CPU time) and prints one line:
 *
 *   sockets=50012 opened=50000 netlink_ms=12.3 netlink_cpu_ms=12.1
 *   per_family_ms=24.0 per_family_cpu_ms=23.9 proc_ms=85.1 ...
 *
 * 'sockets' is what the netlink counter saw in this network namespace,
 * 'opened' what this program opened. RLIMIT_NOFILE is raised as far as
 * allowed; when one process may not hold N sockets (no CAP_SYS_RESOURCE),
 * they are spread over child processes, since the counts are per network
 * namespace. The parent ends its own children, and only them, through a
 * pipe. Only loopback traffic; every socket is closed with an RST so no
 * TIME_WAIT is left behind. Links collectors/host_sockdiag.c and
 * host_proc.c only.
 *
 * usage: sockcount [-n SOCKETS] [-r RUNS]
 */
#include "collectors/host_sockdiag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAIRS_PER_LISTENER 20000 /* well inside the ephemeral port range */
#define FD_RESERVE         64    /* descriptors kept free in each process */
#define MAX_RUNS           101
#define MAX_WORKERS        64

struct fdset {
    int *fds; /* owned: every socket opened by this process */
    size_t n, cap;
};

static double clock_ms(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

static double cpu_ms(void)
{
    return clock_ms(CLOCK_THREAD_CPUTIME_ID);
}

/* errtext() is strerror() without its static buffer (GNU strerror_r). */
static const char *errtext(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* parse_count() reads a positive decimal option value. */
static int parse_count(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* raise_nofile() lifts RLIMIT_NOFILE towards 'want' and returns the limit
 * in force. */
static rlim_t raise_nofile(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur >= want)
        return rl.rlim_cur;
    if (rl.rlim_max < want) {
        struct rlimit hard = {want, want};

        if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
            return want; /* with CAP_SYS_RESOURCE the hard limit can rise */
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    return rl.rlim_cur;
}

static int fdset_keep(struct fdset *s, int fd)
{
    if (s->n == s->cap) {
        size_t cap = s->cap != 0 ? s->cap * 2 : 1024;
        int *fds = realloc(s->fds, cap * sizeof(*fds));

        if (fds == NULL)
            return -1;
        s->fds = fds;
        s->cap = cap;
    }
    s->fds[s->n++] = fd;
    return 0;
}

static void fdset_close(struct fdset *s)
{
    struct linger lg = {1, 0}; /* RST on close: leave no TIME_WAIT behind */

    for (size_t i = 0; i < s->n; i++) {
        (void)setsockopt(s->fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(s->fds[i]);
    }
    free(s->fds);
    s->fds = NULL;
    s->n = s->cap = 0;
}

static int open_listener(struct sockaddr_in *addr)
{
    socklen_t len = sizeof(*addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* open_pairs() opens up to 'pairs' connected loopback pairs into 's' and
 * returns how many it managed (it stops at the first failure). */
static size_t open_pairs(struct fdset *s, size_t pairs)
{
    struct sockaddr_in addr;
    size_t done = 0;
    int lfd = -1;

    while (done < pairs) {
        int c, a;

        if (done % PAIRS_PER_LISTENER == 0) {
            lfd = open_listener(&addr);
            if (lfd < 0 || fdset_keep(s, lfd) != 0)
                break;
        }
        c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0)
            break;
        if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
            close(c);
            break;
        }
        a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (a < 0 || fdset_keep(s, c) != 0 || fdset_keep(s, a) != 0) {
            close(c);
            if (a >= 0)
                close(a);
            break;
        }
        done++;
    }
    if (done < pairs) {
        char ebuf[128];

        fprintf(stderr, "sockcount: stopped after %zu of %zu pairs: %s\n", done, pairs,
                errtext(errno, ebuf, sizeof(ebuf)));
    }
    return done;
}

/* A child holding some of the sockets. */
struct worker {
    pid_t pid;
    int ready_fd; /* read end: the child writes its socket count, then waits */
    int go_fd;    /* write end: closing it tells the child to close and exit */
};

/* worker_main() runs in a child: opens 'pairs' pairs, reports the number of
 * descriptors over 'ready', waits for EOF on 'go', closes everything. */
static void worker_main(size_t pairs, int ready, int go)
{
    struct fdset s = {NULL, 0, 0};
    size_t n;
    char c;

    (void)open_pairs(&s, pairs);
    n = s.n;
    if (write(ready, &n, sizeof(n)) != (ssize_t)sizeof(n))
        _exit(1);
    while (read(go, &c, 1) < 0 && errno == EINTR)
        ;
    fdset_close(&s);
    _exit(0);
}

/* start_workers() forks children holding 'pairs' pairs in total, at most
 * 'per_worker' each; returns the number of children, their sockets in *opened. */
static int start_workers(struct worker *w, size_t pairs, size_t per_worker, size_t *opened)
{
    int nw = 0;

    *opened = 0;
    while (pairs > 0 && nw < MAX_WORKERS) {
        size_t share = pairs < per_worker ? pairs : per_worker;
        int ready[2], go[2];
        size_t n = 0;

        if (pipe2(ready, O_CLOEXEC) != 0)
            break;
        if (pipe2(go, O_CLOEXEC) != 0) {
            close(ready[0]);
            close(ready[1]);
            break;
        }
        w[nw].pid = fork();
        if (w[nw].pid < 0) {
            close(ready[0]);
            close(ready[1]);
            close(go[0]);
            close(go[1]);
            break;
        }
        if (w[nw].pid == 0) {
            close(ready[0]);
            close(go[1]);
            worker_main(share, ready[1], go[0]);
        }
        close(ready[1]);
        close(go[0]);
        w[nw].ready_fd = ready[0];
        w[nw].go_fd = go[1];
        if (read(w[nw].ready_fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
            *opened += n;
        nw++;
        pairs -= share;
    }
    return nw;
}

static void stop_workers(struct worker *w, int nw)
{
    for (int i = 0; i < nw; i++) {
        close(w[i].go_fd);
        close(w[i].ready_fd);
    }
    for (int i = 0; i < nw; i++) {
        int status;

        while (waitpid(w[i].pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
}

/* The counting methods timed, in output order. */
enum { M_NETLINK = 0, M_PER_FAMILY, M_PROC, NMETHODS };
static const char *const method_names[NMETHODS] = {"netlink", "netlink per family", "proc"};

static int count_once(int m, struct cw_host_tcp_states *st, void *scratch,
                      struct cw_host_sockdiag_err *err)
{
    switch (m) {
    case M_NETLINK:
        return cw_host_count_netlink(st, scratch, CW_HOST_SOCKDIAG_SCRATCH, CW_HOST_NO_DEADLINE,
                                     err);
    case M_PER_FAMILY:
        return cw_host_count_netlink_form(st, scratch, CW_HOST_SOCKDIAG_SCRATCH,
                                          CW_HOST_NO_DEADLINE, CW_HOST_NETLINK_PER_FAMILY, err);
    default:
        return cw_host_count_proc("/proc", st, scratch, CW_HOST_SOCKDIAG_SCRATCH,
                                  CW_HOST_NO_DEADLINE, err);
    }
}

int main(int argc, char **argv)
{
    unsigned long want = 50000, runs = 5;
    struct worker workers[MAX_WORKERS];
    static double t[NMETHODS][MAX_RUNS], c[NMETHODS][MAX_RUNS];
    struct cw_host_tcp_states st[NMETHODS];
    struct cw_host_sockdiag_err err = {NULL, 0};
    char ebuf[128];
    void *scratch;
    rlim_t limit;
    size_t per_worker, opened;
    int nw;
    int opt;
    int rc = EXIT_FAILURE;

    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        if (opt == 'n' && parse_count(optarg, 0, 10000000, &want) == 0)
            continue;
        if (opt == 'r' && parse_count(optarg, 1, MAX_RUNS, &runs) == 0)
            continue;
        fprintf(stderr, "usage: sockcount [-n SOCKETS] [-r RUNS<=%d]\n", MAX_RUNS);
        return 2;
    }

    /* children inherit the limit; each keeps FD_RESERVE free for listeners */
    limit = raise_nofile((rlim_t)want + FD_RESERVE);
    if (limit <= 2 * FD_RESERVE) {
        fprintf(stderr, "sockcount: RLIMIT_NOFILE %llu is too low\n", (unsigned long long)limit);
        return EXIT_FAILURE;
    }
    per_worker = (size_t)(limit - FD_RESERVE) / 2;
    nw = start_workers(workers, want / 2, per_worker, &opened);

    scratch = malloc(CW_HOST_SOCKDIAG_SCRATCH);
    if (scratch == NULL)
        goto out_stop;
    for (unsigned long i = 0; i < runs; i++) {
        for (int m = 0; m < NMETHODS; m++) {
            double t0 = now_ms(), c0 = cpu_ms();

            if (count_once(m, &st[m], scratch, &err) != CW_OK) {
                fprintf(stderr, "sockcount: %s: %s: %s\n", method_names[m], err.what,
                        errtext(err.sys_errno, ebuf, sizeof(ebuf)));
                goto out_free;
            }
            t[m][i] = now_ms() - t0;
            c[m][i] = cpu_ms() - c0;
        }
    }
    for (int m = 0; m < NMETHODS; m++) {
        qsort(t[m], runs, sizeof(t[m][0]), cmp_double);
        qsort(c[m], runs, sizeof(c[m][0]), cmp_double);
    }
    printf("sockets=%llu opened=%zu netlink_ms=%.2f netlink_cpu_ms=%.2f per_family_ms=%.2f "
           "per_family_cpu_ms=%.2f proc_ms=%.2f proc_cpu_ms=%.2f proc_sockets=%llu "
           "per_family_sockets=%llu established=%llu processes=%d nofile=%llu\n",
           (unsigned long long)cw_host_tcp_states_total(&st[M_NETLINK]), opened,
           t[M_NETLINK][runs / 2], c[M_NETLINK][runs / 2], t[M_PER_FAMILY][runs / 2],
           c[M_PER_FAMILY][runs / 2], t[M_PROC][runs / 2], c[M_PROC][runs / 2],
           (unsigned long long)cw_host_tcp_states_total(&st[M_PROC]),
           (unsigned long long)cw_host_tcp_states_total(&st[M_PER_FAMILY]),
           (unsigned long long)st[M_NETLINK].count[CW_TCP_ESTABLISHED], nw,
           (unsigned long long)limit);
    rc = opened >= want ? EXIT_SUCCESS : 3; /* 3: fewer sockets than asked */

out_free:
    free(scratch);
out_stop:
    stop_workers(workers, nw);
    return rc;
}
