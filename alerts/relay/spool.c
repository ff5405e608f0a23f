/* SPDX-License-Identifier: Apache-2.0 */
/*
 * spool.c - the durable per-receiver queue of connwatch-relay (spool.h).
 *
 * Owns one directory, an fd on it for fsync, the ordered list of entries
 * (sequence, key; bodies stay on disk) and a ring of recently delivered
 * keys for dedupe. HTTP handler threads put; the receiver's delivery thread
 * waits, peeks and removes. One mutex and one condition variable.
 */
#include "alerts/relay/spool.h"

#include "exporter/core/buf.h"
#include "exporter/core/log.h"
#include "exporter/core/num.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECENT_MAX     4096
#define FULL_LOGGED    256 /* keys refused while full, logged once each */
#define SPOOL_MAX_FILE (16u << 20)
#define DEAD_DIR       "dead"

struct entry {
    uint64_t seq;
    char key[33];
    bool fell_back;
    cw_mono queued;
};

struct recent {
    char key[33];
    cw_mono at;
};

struct cw_spool {
    char *dir; /* owned */
    int dirfd;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct entry *e; /* owned: cap entries, n used; a ring would be faster, queues are short */
    size_t n, cap, max;
    uint64_t next_seq;
    struct recent recent[RECENT_MAX];
    size_t nrecent, recent_head;
    cw_duration window;
    bool kicked;
    char full_keys[FULL_LOGGED][33]; /* refused while full and already logged */
    size_t nfull, full_head;
    struct cw_log_limit full_log; /* distinct refusals while full */
};

static void entry_name(char *buf, size_t len, uint64_t seq, const char *key)
{
    snprintf(buf, len, "%020" PRIu64 "-%s.json", seq, key);
}

/* parse_name() reads "<20 digits>-<32 key>.json". A sequence that does not
 * fit (or is UINT64_MAX, after which next_seq would wrap) is no entry: its
 * name could not be written back from the parsed value. */
static bool parse_name(const char *nm, uint64_t *seq, char *key)
{
    if (strlen(nm) != 20 + 1 + 32 + 5 || nm[20] != '-' || strcmp(nm + 53, ".json") != 0)
        return false;
    if (cw_parse_u64(nm, 20, seq) != CW_OK || *seq == UINT64_MAX)
        return false;
    memcpy(key, nm + 21, 32);
    key[32] = '\0';
    return true;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int push_entry(struct cw_spool *sp, uint64_t seq, const char *key)
{
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 64;
        struct entry *e = realloc(sp->e, cap * sizeof(*e));

        if (e == NULL)
            return CW_ENOMEM;
        sp->e = e;
        sp->cap = cap;
    }
    memset(&sp->e[sp->n], 0, sizeof(sp->e[sp->n]));
    sp->e[sp->n].seq = seq;
    snprintf(sp->e[sp->n].key, sizeof(sp->e[sp->n].key), "%s", key);
    sp->e[sp->n].queued = cw_now();
    sp->n++;
    return CW_OK;
}

struct cw_spool *cw_spool_open(const char *dir, cw_duration dedupe_window, size_t max_entries,
                               char *why, size_t whylen)
{
    struct cw_spool *sp;
    char errbuf[128];
    struct dirent *de;
    DIR *d;

    sp = calloc(1, sizeof(*sp));
    if (sp == NULL) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    sp->dirfd = -1;
    sp->window = dedupe_window;
    sp->max = max_entries;
    sp->next_seq = 1;
    pthread_mutex_init(&sp->lock, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&sp->cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    sp->dir = strdup(dir);
    if (sp->dir == NULL) {
        snprintf(why, whylen, "out of memory");
        goto out_fail;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, whylen, "cannot create %s: %s", dir,
                 cw_strerror_r(errno, errbuf, sizeof(errbuf)));
        goto out_fail;
    }
    sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->dirfd < 0) {
        snprintf(why, whylen, "cannot open %s: %s", dir,
                 cw_strerror_r(errno, errbuf, sizeof(errbuf)));
        goto out_fail;
    }
    d = fdopendir(dup(sp->dirfd));
    if (d == NULL) {
        snprintf(why, whylen, "cannot list %s: %s", dir,
                 cw_strerror_r(errno, errbuf, sizeof(errbuf)));
        goto out_fail;
    }
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        char key[33];
        uint64_t seq = 0;

        if (strncmp(nm, ".tmp-", 5) == 0) {
            /* a put that crashed before its rename: never acknowledged */
            if (unlinkat(sp->dirfd, nm, 0) != 0)
                cw_log(CW_LOG_WARN, "spool", "cannot remove a temporary file", "file", nm,
                       (char *)NULL);
            continue;
        }
        if (!parse_name(nm, &seq, key))
            continue;
        if (push_entry(sp, seq, key) != CW_OK) {
            closedir(d);
            snprintf(why, whylen, "out of memory");
            goto out_fail;
        }
        if (seq >= sp->next_seq)
            sp->next_seq = seq + 1;
    }
    closedir(d);
    if (sp->n > 0)
        qsort(sp->e, sp->n, sizeof(*sp->e), cmp_entry);
    return sp;

out_fail:
    cw_spool_close(sp);
    return NULL;
}

void cw_spool_close(struct cw_spool *sp)
{
    if (sp == NULL)
        return;
    if (sp->dirfd >= 0)
        close(sp->dirfd);
    pthread_mutex_destroy(&sp->lock);
    pthread_cond_destroy(&sp->cond);
    free(sp->e);
    free(sp->dir);
    free(sp);
}

static bool is_duplicate(struct cw_spool *sp, const char *key)
{
    cw_mono now = cw_now();
    size_t i;

    for (i = 0; i < sp->n; i++) {
        if (strcmp(sp->e[i].key, key) == 0)
            return true;
    }
    for (i = 0; i < sp->nrecent; i++) {
        const struct recent *r = &sp->recent[i];

        if (now - r->at <= sp->window && strcmp(r->key, key) == 0)
            return true;
    }
    return false;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* note_full() logs a refusal for a full queue once per key (Alertmanager
 * retries the same notification until it is taken), and distinct keys
 * through a rate limit: a flood while the queue is full writes one line per
 * interval, the next saying how many were left out. */
static void note_full(struct cw_spool *sp, const char *key)
{
    char max[24];
    size_t i;

    for (i = 0; i < sp->nfull; i++) {
        if (strcmp(sp->full_keys[i], key) == 0)
            return;
    }
    snprintf(sp->full_keys[sp->full_head], sizeof(sp->full_keys[0]), "%s", key);
    sp->full_head = (sp->full_head + 1) % FULL_LOGGED;
    if (sp->nfull < FULL_LOGGED)
        sp->nfull++;
    snprintf(max, sizeof(max), "%zu", sp->max);
    cw_log_limited(&sp->full_log, CW_LOG_WARN, "spool", "queue full, notification refused", "dir",
                   sp->dir, "key", key, "max_queue", max, (char *)NULL);
}

int cw_spool_put(struct cw_spool *sp, const char *body, size_t len, const char *key,
                 enum cw_spool_outcome *outcome)
{
    char tmp[64], name[80], errbuf[128];
    uint64_t seq;
    int fd = -1, rc = CW_EIO;

    pthread_mutex_lock(&sp->lock);
    if (is_duplicate(sp, key)) {
        *outcome = CW_SPOOL_DUPLICATE;
        rc = CW_OK;
        goto out;
    }
    if (sp->n >= sp->max) {
        *outcome = CW_SPOOL_FULL;
        rc = CW_OK;
        note_full(sp, key);
        goto out;
    }
    sp->nfull = 0; /* room again: a later full queue logs afresh */
    seq = sp->next_seq;
    snprintf(tmp, sizeof(tmp), ".tmp-%020" PRIu64, seq);
    entry_name(name, sizeof(name), seq, key);
    fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, body, len) != 0 || fsync(fd) != 0) {
        cw_log(CW_LOG_ERROR, "spool", "cannot write a spool file", "dir", sp->dir, "err",
               cw_strerror_r(errno, errbuf, sizeof(errbuf)), (char *)NULL);
        goto out_unlink;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto out_unlink;
    }
    fd = -1;
    if (renameat(sp->dirfd, tmp, sp->dirfd, name) != 0 || fsync(sp->dirfd) != 0) {
        cw_log(CW_LOG_ERROR, "spool", "cannot commit a spool file", "dir", sp->dir, "err",
               cw_strerror_r(errno, errbuf, sizeof(errbuf)), (char *)NULL);
        goto out_unlink;
    }
    sp->next_seq++;
    if (push_entry(sp, seq, key) != CW_OK) {
        /* On disk but not in memory: a restart would deliver it; refuse now
         * so that Alertmanager retries, and forget the file. */
        (void)unlinkat(sp->dirfd, name, 0);
        rc = CW_ENOMEM;
        goto out;
    }
    *outcome = CW_SPOOL_ADDED;
    pthread_cond_broadcast(&sp->cond);
    rc = CW_OK;
    goto out;
out_unlink:
    if (fd >= 0)
        close(fd);
    (void)unlinkat(sp->dirfd, tmp, 0);
out:
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

size_t cw_spool_length(struct cw_spool *sp)
{
    size_t n;

    pthread_mutex_lock(&sp->lock);
    n = sp->n;
    pthread_mutex_unlock(&sp->lock);
    return n;
}

void cw_spool_kick(struct cw_spool *sp)
{
    pthread_mutex_lock(&sp->lock);
    sp->kicked = true;
    pthread_cond_broadcast(&sp->cond);
    pthread_mutex_unlock(&sp->lock);
}

bool cw_spool_wait(struct cw_spool *sp, cw_mono not_before, atomic_bool *stop)
{
    bool ready = false;

    pthread_mutex_lock(&sp->lock);
    while (!atomic_load(stop) && !sp->kicked) {
        cw_mono now = cw_now();
        struct timespec ts;
        cw_mono until;

        if (sp->n > 0 && now >= not_before) {
            ready = true;
            break;
        }
        until = sp->n > 0 ? not_before : now + CW_S(1);
        ts.tv_sec = (time_t)(until / CW_S(1));
        ts.tv_nsec = (long)(until % CW_S(1));
        pthread_cond_timedwait(&sp->cond, &sp->lock, &ts);
    }
    sp->kicked = false;
    pthread_mutex_unlock(&sp->lock);
    return ready;
}

/* read_file() returns the entry 'name' whole (a malloc'ed string the caller
 * frees), or NULL when it cannot be read, is empty or is over the limit. */
static char *read_file(int dirfd, const char *name, size_t *len)
{
    struct cw_buf b;
    char *body = NULL;

    cw_buf_init(&b, SPOOL_MAX_FILE);
    if (cw_buf_read_file_at(&b, dirfd, name, NULL, 0) == CW_OK)
        body = cw_buf_take(&b, len);
    cw_buf_reset(&b);
    return body;
}

static void remove_at(struct cw_spool *sp, size_t i)
{
    memmove(&sp->e[i], &sp->e[i + 1], (sp->n - i - 1) * sizeof(*sp->e));
    sp->n--;
}

static void quarantine_locked(struct cw_spool *sp, size_t i)
{
    char name[80], bad[84];

    entry_name(name, sizeof(name), sp->e[i].seq, sp->e[i].key);
    snprintf(bad, sizeof(bad), "%s.bad", name);
    if (renameat(sp->dirfd, name, sp->dirfd, bad) != 0)
        (void)unlinkat(sp->dirfd, name, 0);
    cw_log(CW_LOG_ERROR, "spool", "spool entry unreadable, moved aside", "dir", sp->dir, "file",
           bad, (char *)NULL);
    remove_at(sp, i);
}

size_t cw_spool_peek(struct cw_spool *sp, size_t max, struct cw_spool_item *out)
{
    size_t i = 0, k = 0;

    pthread_mutex_lock(&sp->lock);
    while (i < sp->n && k < max) {
        char name[80];

        entry_name(name, sizeof(name), sp->e[i].seq, sp->e[i].key);
        memset(&out[k], 0, sizeof(out[k]));
        out[k].body = read_file(sp->dirfd, name, &out[k].len);
        if (out[k].body == NULL) {
            quarantine_locked(sp, i);
            continue;
        }
        out[k].seq = sp->e[i].seq;
        memcpy(out[k].key, sp->e[i].key, sizeof(out[k].key));
        out[k].fell_back = sp->e[i].fell_back;
        out[k].queued = sp->e[i].queued;
        k++;
        i++;
    }
    pthread_mutex_unlock(&sp->lock);
    return k;
}

void cw_spool_items_free(struct cw_spool_item *items, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(items[i].body);
        items[i].body = NULL;
    }
}

static ssize_t find(struct cw_spool *sp, uint64_t seq)
{
    size_t i;

    for (i = 0; i < sp->n; i++) {
        if (sp->e[i].seq == seq)
            return (ssize_t)i;
    }
    return -1;
}

int cw_spool_remove(struct cw_spool *sp, uint64_t seq)
{
    char name[80], errbuf[128];
    ssize_t i;
    int rc = CW_OK;

    pthread_mutex_lock(&sp->lock);
    i = find(sp, seq);
    if (i < 0)
        goto out;
    entry_name(name, sizeof(name), seq, sp->e[i].key);
    if (unlinkat(sp->dirfd, name, 0) != 0 || fsync(sp->dirfd) != 0) {
        cw_log(CW_LOG_ERROR, "spool", "cannot remove a delivered entry", "dir", sp->dir, "err",
               cw_strerror_r(errno, errbuf, sizeof(errbuf)), (char *)NULL);
        rc = CW_EIO;
    }
    {
        struct recent *r = &sp->recent[sp->recent_head];

        memcpy(r->key, sp->e[i].key, sizeof(r->key));
        r->at = cw_now();
        sp->recent_head = (sp->recent_head + 1) % RECENT_MAX;
        if (sp->nrecent < RECENT_MAX)
            sp->nrecent++;
    }
    remove_at(sp, (size_t)i);
out:
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

void cw_spool_quarantine(struct cw_spool *sp, uint64_t seq)
{
    ssize_t i;

    pthread_mutex_lock(&sp->lock);
    i = find(sp, seq);
    if (i >= 0)
        quarantine_locked(sp, (size_t)i);
    pthread_mutex_unlock(&sp->lock);
}

void cw_spool_mark_fallback(struct cw_spool *sp, uint64_t seq)
{
    ssize_t i;

    pthread_mutex_lock(&sp->lock);
    i = find(sp, seq);
    if (i >= 0)
        sp->e[i].fell_back = true;
    pthread_mutex_unlock(&sp->lock);
}

int cw_spool_bury(struct cw_spool *sp, uint64_t seq, char *name, size_t namelen)
{
    char errbuf[128], dead[96];
    ssize_t i;
    int dfd = -1, rc = CW_EIO;
    bool ok;

    pthread_mutex_lock(&sp->lock);
    i = find(sp, seq);
    if (i < 0) {
        rc = CW_EINVAL;
        goto out;
    }
    entry_name(name, namelen, seq, sp->e[i].key);
    snprintf(dead, sizeof(dead), DEAD_DIR "/%s", name);
    ok = mkdirat(sp->dirfd, DEAD_DIR, 0700) == 0 || errno == EEXIST;
    if (ok) {
        dfd = openat(sp->dirfd, DEAD_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok = dfd >= 0 && renameat(sp->dirfd, name, sp->dirfd, dead) == 0 && fsync(dfd) == 0 &&
             fsync(sp->dirfd) == 0;
    }
    if (!ok) {
        cw_log(CW_LOG_ERROR, "spool", "cannot move an entry to the dead-letter directory", "dir",
               sp->dir, "file", name, "err", cw_strerror_r(errno, errbuf, sizeof(errbuf)),
               (char *)NULL);
        goto out;
    }
    remove_at(sp, (size_t)i);
    rc = CW_OK;
out:
    if (dfd >= 0)
        close(dfd);
    pthread_mutex_unlock(&sp->lock);
    return rc;
}

size_t cw_spool_rescan(struct cw_spool *sp)
{
    struct dirent *de;
    size_t added = 0;
    DIR *d;
    int fd;

    pthread_mutex_lock(&sp->lock);
    fd = dup(sp->dirfd);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        goto out;
    }
    rewinddir(d); /* a dup shares the offset that cw_spool_open() left at the end */
    while ((de = readdir(d)) != NULL) {
        char key[33];
        uint64_t seq;

        if (!parse_name(de->d_name, &seq, key) || find(sp, seq) >= 0)
            continue;
        if (push_entry(sp, seq, key) != CW_OK)
            break; /* the rest waits for the next rescan */
        if (seq >= sp->next_seq)
            sp->next_seq = seq + 1;
        added++;
    }
    closedir(d);
    if (added > 0) {
        qsort(sp->e, sp->n, sizeof(*sp->e), cmp_entry);
        pthread_cond_broadcast(&sp->cond);
    }
out:
    pthread_mutex_unlock(&sp->lock);
    return added;
}
