/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c - bounded growable byte buffer. See buf.h. Not thread-safe by
 * itself: a buffer belongs to one thread at a time.
 */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
