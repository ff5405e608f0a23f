/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.h - a bounded growable byte buffer (the curl dynbuf idea).
 *
 * The contents are always NUL-terminated so they can be used as a string.
 * An append that would pass the limit fails with CW_ETOOBIG and leaves the
 * buffer as it was: nothing is ever silently truncated. The first failure
 * is sticky: every later append fails with the same error without touching
 * the contents, so a writer may make a run of appends and look once, at the
 * end, at the last return or at cw_buf_error(). cw_buf_clear() and
 * cw_buf_reset() start afresh. Outside buf.c the fields are read, never
 * written: cw_buf_setlen() moves the end, cw_buf_setlimit() the bound. A buffer is owned by one
 * thread at a time.
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
    int err;      /* the first failed append's error (sticky), CW_OK until then */
};

/* cw_buf_init() prepares an empty buffer that will hold at most 'limit' bytes. */
void cw_buf_init(struct cw_buf *b, size_t limit);

/* cw_buf_reset() frees the memory and leaves an empty buffer with the same
 * limit and no error. */
void cw_buf_reset(struct cw_buf *b);

/* cw_buf_clear() empties the buffer and forgets its error, but keeps its
 * memory for reuse. */
void cw_buf_clear(struct cw_buf *b);

/* cw_buf_error() returns the sticky error: CW_OK, or the error of the first
 * append that failed since the buffer was initialised, cleared or reset. */
CW_MUST_CHECK int cw_buf_error(const struct cw_buf *b);

/* cw_buf_setlen() sets the length to 'len' and writes the NUL after it: to
 * cut the contents short (len <= b->len), or to take in bytes the caller
 * wrote into room made by cw_buf_reserve() (len < b->cap). Anything else
 * (past the room or the limit, or a buffer in error that would grow) is
 * refused with CW_EINVAL and changes nothing; cutting never fails. */
CW_MUST_CHECK int cw_buf_setlen(struct cw_buf *b, size_t len);

/* cw_buf_setlimit() changes the most the buffer may hold, for a buffer made
 * by someone else (an HTTP response body) whose contents need another bound.
 * A limit below the current length is refused with CW_EINVAL. */
CW_MUST_CHECK int cw_buf_setlimit(struct cw_buf *b, size_t limit);

/* cw_buf_add() appends 'len' bytes. Returns CW_OK, CW_ETOOBIG or CW_ENOMEM
 * (or the sticky error of an earlier failure). */
CW_MUST_CHECK int cw_buf_add(struct cw_buf *b, const void *data, size_t len);

/* cw_buf_adds() appends a NUL-terminated string. */
CW_MUST_CHECK int cw_buf_adds(struct cw_buf *b, const char *s);

/* cw_buf_addc() appends one byte. */
CW_MUST_CHECK int cw_buf_addc(struct cw_buf *b, char c);

/* cw_buf_addf() appends formatted text. */
CW_MUST_CHECK int cw_buf_addf(struct cw_buf *b, const char *fmt, ...) CW_PRINTF(2, 3);
CW_MUST_CHECK int cw_buf_vaddf(struct cw_buf *b, const char *fmt, va_list ap) CW_PRINTF(2, 0);

/* cw_buf_reserve() makes room for 'extra' more bytes (plus the NUL): the
 * caller may write them at data + len and then call cw_buf_setlen(). A
 * failure is sticky like an append's. */
CW_MUST_CHECK int cw_buf_reserve(struct cw_buf *b, size_t extra);

/* cw_buf_add_html() appends 's' with <, >, & and " escaped for HTML text
 * and attribute values. */
CW_MUST_CHECK int cw_buf_add_html(struct cw_buf *b, const char *s);

/* cw_buf_shrink() gives back the room beyond the contents (and the NUL),
 * for a buffer that is complete and will be kept; a failed realloc leaves
 * it as it was. */
void cw_buf_shrink(struct cw_buf *b);

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
 * limit of 4096 bytes"), 'b' may hold part of the file, the return is
 * CW_EIO (errno tells why), CW_EPARSE (not a regular file), CW_ETOOBIG or
 * CW_ENOMEM, and the error is sticky. */
CW_MUST_CHECK int cw_buf_read_file(struct cw_buf *b, const char *path, char *why, size_t whylen);

/* cw_buf_read_file_at() is cw_buf_read_file() with 'path' relative to the
 * directory open at 'dirfd' (or AT_FDCWD). */
CW_MUST_CHECK int cw_buf_read_file_at(struct cw_buf *b, int dirfd, const char *path, char *why,
                                      size_t whylen);

/* cw_buf_read_fd() appends what 'fd' yields until end of file, at most
 * 'max' bytes (and never past b's limit), whatever the kind of descriptor:
 * a pipe, a socket, a /proc file whose size fstat() does not know. It does
 * not close 'fd'. At the bound it reads one byte more to tell a descriptor
 * that has ended from one that has not: CW_ETOOBIG then, with the first
 * bytes kept in 'b' (a caller that wants a prefix takes it). On failure
 * 'why' (may be NULL) receives a phrase as cw_buf_read_file()'s does, the
 * return is CW_EIO (errno tells why; EAGAIN on a non-blocking descriptor
 * with nothing to read), CW_ETOOBIG or CW_ENOMEM, and the error is sticky. */
CW_MUST_CHECK int cw_buf_read_fd(struct cw_buf *b, int fd, size_t max, char *why, size_t whylen);

/* cw_buf_read_path() opens 'path' (any kind of file, blocking) and reads it
 * with cw_buf_read_fd(). */
CW_MUST_CHECK int cw_buf_read_path(struct cw_buf *b, const char *path, size_t max, char *why,
                                   size_t whylen);

/* cw_buf_str() returns the contents as a string ("" when empty); borrowed. */
const char *cw_buf_str(const struct cw_buf *b);

#endif
