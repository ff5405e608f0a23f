/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procself.c - process_* metrics from /proc/self. The start time is read
 * once by main() before threads start; everything else is read per scrape
 * (a few small files) on the HTTP thread that renders.
 */
#include "procself.h"

#include "buf.h"
#include "num.h"

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

/* PROC_STAT_MAX bounds /proc/stat (a line per CPU comes before btime);
 * SELF_STAT_MAX /proc/self/stat, whose fields we want come first. */
#define PROC_STAT_MAX (1u << 20)
#define SELF_STAT_MAX 4095u

/* read_proc() reads the /proc file 'path' into 'b', at most 'max' bytes: a
 * longer file is kept as its first bytes. */
static int read_proc(struct cw_buf *b, const char *path, size_t max)
{
    int rc = cw_buf_read_path(b, path, max, NULL, 0);

    return rc == CW_ETOOBIG ? CW_OK : rc;
}

/* read_self_stat() reads /proc/self/stat into 'b' through the kept
 * descriptor, with one pread() from offset 0. */
static int read_self_stat(struct cw_buf *b)
{
    ssize_t n;

    if (self_stat_fd < 0)
        return read_proc(b, "/proc/self/stat", SELF_STAT_MAX);
    if (cw_buf_reserve(b, SELF_STAT_MAX) != CW_OK)
        return cw_buf_error(b);
    do {
        n = pread(self_stat_fd, b->data + b->len, SELF_STAT_MAX, 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0)
        return CW_EIO;
    return cw_buf_setlen(b, b->len + (size_t)n);
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
            uint64_t v;

            end = (char *)p + strcspn(p, " \n");
            if (cw_parse_u64(p, (size_t)(end - p), &v) != CW_OK)
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
    struct cw_buf b;
    unsigned long long ut, st, start = 0, vs;
    long long rss;
    const char *bt;
    uint64_t btime;
    long hz = sysconf(_SC_CLK_TCK);

    self_stat_fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    self_fd_dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cw_buf_init(&b, PROC_STAT_MAX);
    if (read_self_stat(&b) != CW_OK ||
        cw_procself_parse_stat(cw_buf_str(&b), &ut, &st, &start, &vs, &rss) != CW_OK || hz <= 0)
        goto out;
    cw_buf_clear(&b);
    if (read_proc(&b, "/proc/stat", PROC_STAT_MAX) != CW_OK)
        goto out;
    bt = strstr(cw_buf_str(&b), "\nbtime ");
    if (bt == NULL || cw_parse_u64(bt + 7, strcspn(bt + 7, "\n"), &btime) != CW_OK)
        goto out;
    atomic_store(&start_time_seconds, (double)btime + (double)start / (double)hz);

out:
    cw_buf_reset(&b);
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
    struct cw_buf text;
    unsigned long long ut, st, start, vs;
    long long rss;
    long hz = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    long fds;
    double started = atomic_load(&start_time_seconds);

    cw_buf_init(&text, SELF_STAT_MAX);
    if (read_self_stat(&text) == CW_OK &&
        cw_procself_parse_stat(cw_buf_str(&text), &ut, &st, &start, &vs, &rss) == CW_OK && hz > 0) {
        cw_batch_add(b, &desc_cpu, NULL, (double)(ut + st) / (double)hz, NULL, NULL);
        cw_batch_add(b, &desc_rss, NULL, (double)rss * (double)page, NULL, NULL);
        cw_batch_add(b, &desc_vsize, NULL, (double)vs, NULL, NULL);
    }
    cw_buf_reset(&text);
    fds = count_fds();
    if (fds >= 0)
        cw_batch_add(b, &desc_open_fds, NULL, (double)fds, NULL, NULL);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        cw_batch_add(b, &desc_max_fds, NULL, (double)rl.rlim_cur, NULL, NULL);
    if (started > 0)
        cw_batch_add(b, &desc_start, NULL, started, NULL, NULL);
}
