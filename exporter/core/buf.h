/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.h - a bounded growable byte buffer (the curl dynbuf idea).
 *
 * The contents are always NUL-terminated so they can be used as a string.
 * An append that would pass the limit fails with CW_ETOOBIG and leaves the
 * buffer as it was: nothing is ever silently truncated. A buffer is owned by
 * one thread at a time.
 */
#ifndef CW_BUF_H
#define CW_BUF_H

#include "err.h"

#include <stdarg.h>
#include <stddef.h>

struct cw_buf {
    char *data;   /* owned; NULL until the first append */
    size_t len;   /* bytes used, without the NUL */
    size_t cap;   /* bytes allocated */
    size_t limit; /* maximum len; appends past it fail */
};

/* cw_buf_init() prepares an empty buffer that will hold at most 'limit' bytes. */
void cw_buf_init(struct cw_buf *b, size_t limit);

/* cw_buf_reset() frees the memory and leaves an empty buffer with the same limit. */
void cw_buf_reset(struct cw_buf *b);

/* cw_buf_clear() empties the buffer but keeps its memory for reuse. */
void cw_buf_clear(struct cw_buf *b);

/* cw_buf_add() appends 'len' bytes. Returns CW_OK, CW_ETOOBIG or CW_ENOMEM. */
CW_MUST_CHECK int cw_buf_add(struct cw_buf *b, const void *data, size_t len);

/* cw_buf_adds() appends a NUL-terminated string. */
CW_MUST_CHECK int cw_buf_adds(struct cw_buf *b, const char *s);

/* cw_buf_addc() appends one byte. */
CW_MUST_CHECK int cw_buf_addc(struct cw_buf *b, char c);

/* cw_buf_addf() appends formatted text. */
CW_MUST_CHECK int cw_buf_addf(struct cw_buf *b, const char *fmt, ...) CW_PRINTF(2, 3);
CW_MUST_CHECK int cw_buf_vaddf(struct cw_buf *b, const char *fmt, va_list ap) CW_PRINTF(2, 0);

/* cw_buf_reserve() makes room for 'extra' more bytes (plus the NUL). */
CW_MUST_CHECK int cw_buf_reserve(struct cw_buf *b, size_t extra);

/* cw_buf_add_html() appends 's' with <, >, & and " escaped for HTML text
 * and attribute values. */
CW_MUST_CHECK int cw_buf_add_html(struct cw_buf *b, const char *s);

/* cw_buf_take() hands the memory to the caller, who must free() it, and
 * leaves 'b' empty but usable. *len (if not NULL) receives the length.
 * Returns NULL if the buffer is empty. */
char *cw_buf_take(struct cw_buf *b, size_t *len);

/* cw_buf_read_file() appends the contents of the regular file 'path' to
 * 'b', within b's limit. The file is opened without blocking and checked
 * with fstat() on the open descriptor, so a FIFO, a device or a directory
 * is refused at once instead of hanging the reader (and the name cannot be
 * swapped between the check and the read). On failure 'why' receives a
 * short phrase for "cannot read PATH: WHY" ("No such file or directory",
 * "not a regular file (a FIFO)", "the file is 5000 bytes, larger than the
 * limit of 4096 bytes"), 'b' may hold part of the file, and the return is
 * CW_EIO, CW_EPARSE (not a regular file), CW_ETOOBIG or CW_ENOMEM. */
CW_MUST_CHECK int cw_buf_read_file(struct cw_buf *b, const char *path, char *why, size_t whylen);

/* cw_buf_str() returns the contents as a string ("" when empty); borrowed. */
const char *cw_buf_str(const struct cw_buf *b);

#endif
