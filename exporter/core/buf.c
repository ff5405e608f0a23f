/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c - bounded growable byte buffer. See buf.h. Not thread-safe by
 * itself: a buffer belongs to one thread at a time.
 */
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
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
}

void cw_buf_reset(struct cw_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cw_buf_clear(struct cw_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

int cw_buf_reserve(struct cw_buf *b, size_t extra)
{
    size_t need;
    size_t cap;
    char *p;

    if (extra > b->limit || b->len > b->limit - extra)
        return CW_ETOOBIG;
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
        return CW_ENOMEM;
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
    if (b->len + 1 < b->cap) {
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

    va_copy(ap2, ap);
    room = b->cap > b->len ? b->cap - b->len : 0;
    n = vsnprintf(room != 0 ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return CW_EINVAL;
    if ((size_t)n < room) {
        if (b->len + (size_t)n > b->limit) {
            b->data[b->len] = '\0';
            return CW_ETOOBIG;
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

static int buf_read_fd(struct cw_buf *b, int fd, char *why, size_t whylen)
{
    char errbuf[128];
    struct stat st;

    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "%s", cw_strerror_r(errno, errbuf, sizeof(errbuf)));
        return CW_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file (%s)", file_type_name(st.st_mode));
        return CW_EPARSE;
    }
    if ((unsigned long long)st.st_size > b->limit - b->len) {
        snprintf(why, whylen, "the file is %lld bytes, larger than the limit of %zu bytes",
                 (long long)st.st_size, b->limit - b->len);
        return CW_ETOOBIG;
    }
    for (;;) {
        size_t chunk = b->limit - b->len < 65536 ? b->limit - b->len : 65536;
        char probe;
        ssize_t n;

        if (chunk == 0) {
            /* Full: anything more means the file grew past the limit. */
            n = read(fd, &probe, 1);
        } else if (cw_buf_reserve(b, chunk) != CW_OK) {
            snprintf(why, whylen, "out of memory");
            return CW_ENOMEM;
        } else {
            n = read(fd, b->data + b->len, chunk);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "%s", cw_strerror_r(errno, errbuf, sizeof(errbuf)));
            return CW_EIO;
        }
        if (n == 0)
            return CW_OK;
        if (chunk == 0) {
            snprintf(why, whylen, "the file grew past the limit of %zu bytes while being read",
                     b->limit);
            return CW_ETOOBIG;
        }
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
}

int cw_buf_read_file(struct cw_buf *b, const char *path, char *why, size_t whylen)
{
    char errbuf[128];
    int fd;
    int rc;

    /* O_NONBLOCK: opening a FIFO without a writer must not wait for one. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whylen, "%s", cw_strerror_r(errno, errbuf, sizeof(errbuf)));
        return CW_EIO;
    }
    rc = buf_read_fd(b, fd, why, whylen);
    close(fd);
    return rc;
}
