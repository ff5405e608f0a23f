/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procself.c - process_* metrics from /proc/self. The start time is read
 * once by main() before threads start; everything else is read per scrape
 * (a few small files) on the HTTP thread that renders.
 */
#include "procself.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic double start_time_seconds; /* process-wide, set once by main() */

static const struct cw_desc desc_cpu = {
    .name = "process_cpu_seconds_total",
    .help = "Total user and system CPU time spent in seconds.",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_rss = {
    .name = "process_resident_memory_bytes",
    .help = "Resident memory size in bytes.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_vsize = {
    .name = "process_virtual_memory_bytes",
    .help = "Virtual memory size in bytes.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_open_fds = {
    .name = "process_open_fds",
    .help = "Number of open file descriptors.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_max_fds = {
    .name = "process_max_fds",
    .help = "Maximum number of open file descriptors.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_start = {
    .name = "process_start_time_seconds",
    .help = "Start time of the process since unix epoch in seconds.",
    .type = CW_GAUGE,
};

/* Descriptors opened once by cw_procself_init() and read from offset 0 on
 * every scrape: /proc regenerates their contents, and a scrape saves the
 * open/close pairs. Process-wide, written once before threads start; -1
 * when unavailable. */
static int self_stat_fd = -1;
static int self_fd_dir = -1;
static pthread_mutex_t self_fd_dir_lock = PTHREAD_MUTEX_INITIALIZER; /* its file offset */

static ssize_t read_small(const char *path, char *buf, size_t len)
{
    ssize_t n, total = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -1;
    while ((size_t)total < len - 1) {
        n = read(fd, buf + total, len - 1 - (size_t)total);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        total += n;
    }
    close(fd);
    buf[total] = '\0';
    return total;
}

/* read_self_stat() reads /proc/self/stat through the kept descriptor. */
static ssize_t read_self_stat(char *buf, size_t len)
{
    ssize_t n;

    if (self_stat_fd < 0)
        return read_small("/proc/self/stat", buf, len);
    do {
        n = pread(self_stat_fd, buf, len - 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

int cw_procself_parse_stat(const char *text, unsigned long long *utime, unsigned long long *stime,
                           unsigned long long *starttime, unsigned long long *vsize,
                           long long *rss_pages)
{
    /* The command name (field 2) may contain spaces and ')': fields are
     * counted from the last ')'. */
    const char *p = strrchr(text, ')');
    int field = 2;

    if (p == NULL)
        return CW_EPARSE;
    p++;
    while (*p != '\0' && field < 24) {
        char *end;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        field++;
        errno = 0;
        if (field == 14 || field == 15 || field == 22 || field == 23) {
            unsigned long long v = strtoull(p, &end, 10);

            if (end == p || errno != 0)
                return CW_EPARSE;
            if (field == 14)
                *utime = v;
            else if (field == 15)
                *stime = v;
            else if (field == 22)
                *starttime = v;
            else
                *vsize = v;
        } else if (field == 24) {
            long long v = strtoll(p, &end, 10);

            if (end == p || errno != 0)
                return CW_EPARSE;
            *rss_pages = v;
        } else {
            end = (char *)p + strcspn(p, " ");
        }
        p = end;
    }
    return field >= 24 ? CW_OK : CW_EPARSE;
}

void cw_procself_init(void)
{
    char buf[4096];
    unsigned long long ut, st, start = 0, vs;
    long long rss;
    const char *bt;
    long hz = sysconf(_SC_CLK_TCK);

    self_stat_fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    self_fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (read_self_stat(buf, sizeof(buf)) <= 0 ||
        cw_procself_parse_stat(buf, &ut, &st, &start, &vs, &rss) != CW_OK || hz <= 0)
        return;
    if (read_small("/proc/stat", buf, sizeof(buf)) <= 0)
        return;
    bt = strstr(buf, "\nbtime ");
    if (bt == NULL)
        return;
    atomic_store(&start_time_seconds,
                 (double)strtoull(bt + 7, NULL, 10) + (double)start / (double)hz);
}

/* count_fds() counts the open descriptors. Linux 6.2 and later report the
 * count as the size of /proc/self/fd, which costs one fstat whatever the
 * number; older kernels report 0, and then the entries are counted through
 * the kept descriptor (its file offset is shared, so concurrent scrapes take
 * turns). That walk costs a scrape O(open descriptors): with a thousand
 * client connections it was most of a scrape's time. */
static long count_fds(void)
{
    char buf[8192];
    struct stat st;
    long n = 0;
    long got;

    if (self_fd_dir < 0)
        return -1;
    if (fstat(self_fd_dir, &st) == 0 && st.st_size > 0)
        return (long)st.st_size;
    pthread_mutex_lock(&self_fd_dir_lock);
    if (lseek(self_fd_dir, 0, SEEK_SET) != 0) {
        pthread_mutex_unlock(&self_fd_dir_lock);
        return -1;
    }
    while ((got = syscall(SYS_getdents64, self_fd_dir, buf, sizeof(buf))) > 0) {
        long off = 0;

        while (off < got) {
            const struct dirent64 *e = (const struct dirent64 *)(void *)(buf + off);

            if (e->d_name[0] != '.')
                n++;
            off += e->d_reclen;
        }
    }
    pthread_mutex_unlock(&self_fd_dir_lock);
    return got < 0 ? -1 : n;
}

void cw_procself_emit(struct cw_batch *b)
{
    char buf[4096];
    unsigned long long ut, st, start, vs;
    long long rss;
    long hz = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    long fds;
    double started = atomic_load(&start_time_seconds);

    if (read_self_stat(buf, sizeof(buf)) > 0 &&
        cw_procself_parse_stat(buf, &ut, &st, &start, &vs, &rss) == CW_OK && hz > 0) {
        cw_batch_add(b, &desc_cpu, NULL, (double)(ut + st) / (double)hz, NULL, NULL);
        cw_batch_add(b, &desc_rss, NULL, (double)rss * (double)page, NULL, NULL);
        cw_batch_add(b, &desc_vsize, NULL, (double)vs, NULL, NULL);
    }
    fds = count_fds();
    if (fds >= 0)
        cw_batch_add(b, &desc_open_fds, NULL, (double)fds, NULL, NULL);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        cw_batch_add(b, &desc_max_fds, NULL, (double)rl.rlim_cur, NULL, NULL);
    if (started > 0)
        cw_batch_add(b, &desc_start, NULL, started, NULL, NULL);
}
