/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_relay_spool.c - libFuzzer target for connwatch-relay's spool entries
 * (alerts/relay/spool.c) as the delivery engine meets them after a restart:
 * files found in the spool directory, their names parsed into sequence and
 * dedupe key, their bodies read back and parsed as Alertmanager payloads
 * (alerts/relay/payload.c), then delivered (removed), refused for good
 * (buried in dead/) or moved aside as unreadable (quarantined).
 *
 * Input: records separated by NUL bytes; a record is a file name, a
 * newline, and the file's content (the name alone makes an empty file).
 * '/' in a name becomes '_'; ".", ".." and empty names are skipped. The
 * files are written into a scratch directory (made once per process under
 * $TMPDIR, emptied before every input and removed at exit).
 *
 * Invariants: the spool never queues more entries than there are files;
 * every entry it hands out is in sequence order and carries exactly the
 * bytes written under its name; the queue drains to zero through remove,
 * bury and quarantine; a rescan after draining finds nothing; a body put
 * afterwards is read back byte for byte.
 *
 * tests/fuzz/replay_main.c replays tests/fuzz/corpus/relay_spool/ as a
 * plain test. Single-threaded; owns nothing between inputs but the scratch
 * directory.
 */
#include "alerts/relay/payload.h"
#include "alerts/relay/spool.h"
#include "exporter/core/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FILES    32
#define NAME_MAX_LEN 200
#define PEEK_BATCH   4

struct file {
    char name[NAME_MAX_LEN + 1];
    const char *body; /* borrowed from the input */
    size_t len;
};

static char scratch[4096];

/* empty_dir() removes every entry of 'dir' (one level, plus its "dead/"). */
static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096 + 512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) {
            empty_dir(path);
            (void)rmdir(path);
        }
    }
    closedir(d);
}

static void remove_scratch(void)
{
    empty_dir(scratch);
    (void)rmdir(scratch);
}

static const char *scratch_dir(void)
{
    if (scratch[0] == '\0') {
        const char *tmp = getenv("TMPDIR");

        snprintf(scratch, sizeof(scratch), "%s/fuzz_relay_spool.XXXXXX",
                 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
        if (mkdtemp(scratch) == NULL)
            abort();
        atexit(remove_scratch);
        /* quarantine and bury log a line each: keep the fuzzer's output readable */
        cw_log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC));
    }
    return scratch;
}

/* split() reads the records of the input into files[], the last write of a
 * name winning as it does on disk. */
static size_t split(const uint8_t *data, size_t size, struct file *files)
{
    size_t n = 0, off = 0;

    while (off < size && n < MAX_FILES) {
        const uint8_t *rec = data + off;
        const uint8_t *end = memchr(rec, '\0', size - off);
        size_t rlen = end != NULL ? (size_t)(end - rec) : size - off;
        const uint8_t *nl = memchr(rec, '\n', rlen);
        size_t nlen = nl != NULL ? (size_t)(nl - rec) : rlen;
        struct file f;
        size_t i;

        off += rlen + 1;
        if (nlen == 0 || nlen > NAME_MAX_LEN)
            continue;
        memcpy(f.name, rec, nlen);
        f.name[nlen] = '\0';
        for (i = 0; i < nlen; i++)
            f.name[i] = f.name[i] == '/' ? '_' : f.name[i];
        if (strcmp(f.name, ".") == 0 || strcmp(f.name, "..") == 0)
            continue;
        f.body = nl != NULL ? (const char *)nl + 1 : "";
        f.len = nl != NULL ? rlen - nlen - 1 : 0;
        for (i = 0; i < n && strcmp(files[i].name, f.name) != 0; i++)
            ;
        files[i] = f;
        if (i == n)
            n++;
    }
    return n;
}

static void write_files(const char *dir, const struct file *files, size_t n)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    size_t i;

    if (dfd < 0)
        abort();
    for (i = 0; i < n; i++) {
        int fd = openat(dfd, files[i].name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0)
            abort();
        if (files[i].len > 0 && write(fd, files[i].body, files[i].len) != (ssize_t)files[i].len)
            abort();
        close(fd);
    }
    close(dfd);
}

static const struct file *lookup(const struct file *files, size_t n, uint64_t seq, const char *key)
{
    char name[96];
    size_t i;

    snprintf(name, sizeof(name), "%020" PRIu64 "-%s.json", seq, key);
    for (i = 0; i < n; i++) {
        if (strcmp(files[i].name, name) == 0)
            return &files[i];
    }
    return NULL;
}

/* deliver() handles one entry as the delivery engine does: an unparsable
 * body is quarantined; a parsed one is delivered (removed), every third
 * one refused for good (buried). */
static void deliver(struct cw_spool *sp, const struct cw_spool_item *it, size_t nth)
{
    struct cw_am_msg m;
    char why[256], key[CW_AM_KEY_LEN + 1], dead[96];

    if (cw_am_parse(it->body, it->len, &m, why, sizeof(why)) != CW_OK) {
        cw_spool_quarantine(sp, it->seq);
        return;
    }
    if (cw_am_dedupe_key(&m, key) != CW_OK || strlen(key) != CW_AM_KEY_LEN)
        abort();
    cw_am_free(&m);
    if (nth % 3 == 2 && cw_spool_bury(sp, it->seq, dead, sizeof(dead)) == CW_OK)
        return;
    if (cw_spool_remove(sp, it->seq) != CW_OK)
        abort(); /* the file was just read: unlinking it cannot fail */
}

static void drain(struct cw_spool *sp, const struct file *files, size_t n)
{
    struct cw_spool_item items[PEEK_BATCH];
    size_t rounds = 0, nth = 0, k, i;
    uint64_t last = 0;

    while (cw_spool_length(sp) > 0) {
        if (rounds++ > MAX_FILES + 1)
            abort(); /* every round takes at least one entry off */
        k = cw_spool_peek(sp, PEEK_BATCH, items);
        if (k == 0 && cw_spool_length(sp) > 0)
            abort();
        for (i = 0; i < k; i++) {
            const struct file *f = lookup(files, n, items[i].seq, items[i].key);

            if (f == NULL || f->len != items[i].len || items[i].len == 0 ||
                memcmp(f->body, items[i].body, f->len) != 0 || items[i].body[items[i].len] != '\0')
                abort();
            if (items[i].seq < last)
                abort();
            last = items[i].seq;
        }
        for (i = 0; i < k; i++)
            deliver(sp, &items[i], nth++);
        cw_spool_items_free(items, k);
    }
}

/* put_back() stores the first record's content anew and reads it back. */
static void put_back(struct cw_spool *sp, const struct file *f)
{
    static const char key[] = "0123456789abcdef0123456789abcdef";
    struct cw_spool_item it;
    enum cw_spool_outcome o;

    if (f->len == 0)
        return;
    if (cw_spool_put(sp, f->body, f->len, key, &o) != CW_OK)
        abort();
    if (o == CW_SPOOL_DUPLICATE)
        return; /* an entry of the input had this key and was delivered */
    if (o != CW_SPOOL_ADDED)
        abort();
    if (cw_spool_peek(sp, 1, &it) != 1 || it.len != f->len || memcmp(it.body, f->body, f->len) != 0)
        abort();
    if (cw_spool_remove(sp, it.seq) != CW_OK || cw_spool_length(sp) != 0)
        abort();
    cw_spool_items_free(&it, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct file files[MAX_FILES];
    const char *dir = scratch_dir();
    struct cw_spool *sp;
    char why[256];
    size_t n;

    empty_dir(dir);
    n = split(data, size, files);
    write_files(dir, files, n);
    sp = cw_spool_open(dir, CW_S(60), 64, why, sizeof(why));
    if (sp == NULL)
        abort();
    if (cw_spool_length(sp) > n)
        abort();
    drain(sp, files, n);
    if (cw_spool_rescan(sp) != 0)
        abort();
    if (n > 0)
        put_back(sp, &files[0]);
    cw_spool_close(sp);
    return 0;
}
