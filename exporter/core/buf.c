/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c - bounded growable byte buffer. See buf.h. Not thread-safe by
 * itself: a buffer belongs to one thread at a time.
 */
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cw_buf_init(struct cw_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
    b->err = CW_OK;
}

void cw_buf_reset(struct cw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = CW_OK;
}

void cw_buf_clear(struct cw_buf *b)
{
    b->len = 0;
    b->err = CW_OK;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int cw_buf_error(const struct cw_buf *b)
{
    return b->err;
}

/* buf_fail() records the first failure; every later append returns it. */
static int buf_fail(struct cw_buf *b, int rc)
{
    if (b->err == CW_OK)
        b->err = rc;
    return b->err;
}

int cw_buf_setlen(struct cw_buf *b, size_t len)
{
    if (len > b->len && (b->err != CW_OK || len >= b->cap || len > b->limit))
        return CW_EINVAL;
    b->len = len;
    if (b->data != NULL)
        b->data[len] = '\0';
    return CW_OK;
}

int cw_buf_setlimit(struct cw_buf *b, size_t limit)
{
    if (limit < b->len)
        return CW_EINVAL;
    b->limit = limit;
    return CW_OK;
}

int cw_buf_reserve(struct cw_buf *b, size_t extra)
{
    size_t need;
    size_t cap;
    char *p;

    if (b->err != CW_OK)
        return b->err;
    if (extra > b->limit || b->len > b->limit - extra)
        return buf_fail(b, CW_ETOOBIG);
    need = b->len + extra + 1;
    if (need <= b->cap)
        return CW_OK;
    cap = b->cap != 0 ? b->cap : 64;
    while (cap < need)
        cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    if (cap > b->limit + 1)
        cap = b->limit + 1;
    p = realloc(b->data, cap);
    if (p == NULL)
        return buf_fail(b, CW_ENOMEM);
    b->data = p;
    b->cap = cap;
    return CW_OK;
}

int cw_buf_add(struct cw_buf *b, const void *data, size_t len)
{
    int rc;

    rc = cw_buf_reserve(b, len);
    if (rc != CW_OK)
        return rc;
    if (len != 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return CW_OK;
}

int cw_buf_adds(struct cw_buf *b, const char *s)
{
    return cw_buf_add(b, s, strlen(s));
}

int cw_buf_addc(struct cw_buf *b, char c)
{
    if (b->len + 1 < b->cap && b->len < b->limit && b->err == CW_OK) {
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return CW_OK;
    }
    return cw_buf_add(b, &c, 1);
}

int cw_buf_vaddf(struct cw_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    size_t room;
    int n;
    int rc;

    if (b->err != CW_OK)
        return b->err;
    va_copy(ap2, ap);
    room = b->cap > b->len ? b->cap - b->len : 0;
    n = vsnprintf(room != 0 ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        if (room != 0)
            b->data[b->len] = '\0';
        return buf_fail(b, CW_EINVAL);
    }
    if ((size_t)n < room) {
        if (b->len + (size_t)n > b->limit) {
            b->data[b->len] = '\0';
            return buf_fail(b, CW_ETOOBIG);
        }
        b->len += (size_t)n;
        return CW_OK;
    }
    rc = cw_buf_reserve(b, (size_t)n);
    if (rc != CW_OK) {
        if (b->data != NULL)
            b->data[b->len] = '\0';
        return rc;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return CW_OK;
}

int cw_buf_addf(struct cw_buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = cw_buf_vaddf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int cw_buf_add_html(struct cw_buf *b, const char *s)
{
    int rc = CW_OK;

    for (; *s != '\0' && rc == CW_OK; s++) {
        switch (*s) {
        case '<':
            rc = cw_buf_adds(b, "&lt;");
            break;
        case '>':
            rc = cw_buf_adds(b, "&gt;");
            break;
        case '&':
            rc = cw_buf_adds(b, "&amp;");
            break;
        case '"':
            rc = cw_buf_adds(b, "&quot;");
            break;
        default:
            rc = cw_buf_addc(b, *s);
        }
    }
    return rc;
}

void cw_buf_shrink(struct cw_buf *b)
{
    char *p;

    if (b->data == NULL || b->cap <= b->len + 1)
        return;
    p = realloc(b->data, b->len + 1);
    if (p == NULL)
        return;
    b->data = p;
    b->cap = b->len + 1;
}

char *cw_buf_take(struct cw_buf *b, size_t *len)
{
    char *p = b->data;

    if (len != NULL)
        *len = b->len;
    if (b->len == 0) {
        cw_buf_reset(b);
        return NULL;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = CW_OK;
    return p;
}

const char *cw_buf_str(const struct cw_buf *b)
{
    return b->data != NULL ? b->data : "";
}

static const char *file_type_name(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISSOCK(m))
        return "a socket";
    return "an unknown kind of file";
}

/* buf_why() writes the phrase of a failed read, when the caller wants one. */
static void buf_why(char *why, size_t whylen, const char *fmt, ...) CW_PRINTF(3, 4);

static void buf_why(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;

    if (why == NULL || whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* buf_read_errno() reports a failed system call; errno survives it. */
static int buf_read_errno(struct cw_buf *b, char *why, size_t whylen)
{
    char errbuf[128];
    int e = errno;

    buf_why(why, whylen, "%s", cw_strerror_r(e, errbuf, sizeof(errbuf)));
    errno = e;
    return buf_fail(b, CW_EIO);
}

/* buf_close() closes a descriptor read to its end, keeping a failed read's errno. */
static void buf_close(int fd)
{
    int e = errno;

    close(fd);
    errno = e;
}

/* buf_read_to_end() appends what 'fd' yields until its end, at most 'room'
 * more bytes; at the bound one byte more tells an ended descriptor from one
 * that has more. 'file' words the refusal for cw_buf_read_file(). */
static int buf_read_to_end(struct cw_buf *b, int fd, size_t room, bool file, char *why,
                           size_t whylen)
{
    size_t end = b->len + room;

    for (;;) {
        size_t chunk = end - b->len < 65536 ? end - b->len : 65536;
        char probe;
        ssize_t n;

        if (chunk == 0) {
            n = read(fd, &probe, 1);
        } else if (cw_buf_reserve(b, chunk) != CW_OK) {
            buf_why(why, whylen, "out of memory");
            return b->err;
        } else {
            n = read(fd, b->data + b->len, chunk);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return buf_read_errno(b, why, whylen);
        if (n == 0)
            return CW_OK;
        if (chunk == 0) {
            if (file)
                buf_why(why, whylen, "the file grew past the limit of %zu bytes while being read",
                        b->limit);
            else
                buf_why(why, whylen, "more than %zu bytes", room);
            return buf_fail(b, CW_ETOOBIG);
        }
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
}

/* buf_refuse_sticky() answers a read into a buffer already in error. */
static int buf_refuse_sticky(const struct cw_buf *b, char *why, size_t whylen)
{
    buf_why(why, whylen, "%s", cw_strerror(b->err));
    return b->err;
}

int cw_buf_read_fd(struct cw_buf *b, int fd, size_t max, char *why, size_t whylen)
{
    if (b->err != CW_OK)
        return buf_refuse_sticky(b, why, whylen);
    return buf_read_to_end(b, fd, max < b->limit - b->len ? max : b->limit - b->len, false, why,
                           whylen);
}

int cw_buf_read_path(struct cw_buf *b, const char *path, size_t max, char *why, size_t whylen)
{
    int fd;
    int rc;

    if (b->err != CW_OK)
        return buf_refuse_sticky(b, why, whylen);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return buf_read_errno(b, why, whylen);
    rc = cw_buf_read_fd(b, fd, max, why, whylen);
    buf_close(fd);
    return rc;
}

/* buf_read_regular() checks that 'fd' is a regular file that fits, then reads it. */
static int buf_read_regular(struct cw_buf *b, int fd, char *why, size_t whylen)
{
    struct stat st;

    if (fstat(fd, &st) != 0)
        return buf_read_errno(b, why, whylen);
    if (!S_ISREG(st.st_mode)) {
        buf_why(why, whylen, "not a regular file (%s)", file_type_name(st.st_mode));
        return buf_fail(b, CW_EPARSE);
    }
    if ((unsigned long long)st.st_size > b->limit - b->len) {
        buf_why(why, whylen, "the file is %lld bytes, larger than the limit of %zu bytes",
                (long long)st.st_size, b->limit - b->len);
        return buf_fail(b, CW_ETOOBIG);
    }
    return buf_read_to_end(b, fd, b->limit - b->len, true, why, whylen);
}

int cw_buf_read_file(struct cw_buf *b, const char *path, char *why, size_t whylen)
{
    return cw_buf_read_file_at(b, AT_FDCWD, path, why, whylen);
}

int cw_buf_read_file_at(struct cw_buf *b, int dirfd, const char *path, char *why, size_t whylen)
{
    int fd;
    int rc;

    if (b->err != CW_OK)
        return buf_refuse_sticky(b, why, whylen);
    /* O_NONBLOCK: opening a FIFO without a writer must not wait for one. */
    fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return buf_read_errno(b, why, whylen);
    rc = buf_read_regular(b, fd, why, whylen);
    buf_close(fd);
    return rc;
}
