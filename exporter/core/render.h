/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render.h - the exposition writers: Prometheus text 0.0.4 and OpenMetrics
 * 1.0.0, content negotiation, and gzip.
 *
 * Output is deterministic: families sorted by name, one HELP and one TYPE
 * each, samples of a family together, sorted by label text. All functions
 * are pure and thread-safe (no shared state).
 */
#ifndef CW_RENDER_H
#define CW_RENDER_H

#include "buf.h"
#include "metric.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cw_format { CW_FMT_TEXT = 0, CW_FMT_OPENMETRICS };

#define CW_CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define CW_CONTENT_TYPE_OM   "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* cw_render_negotiate() picks the format for an Accept header (NULL = none):
 * OpenMetrics 1.0.0 when the client lists application/openmetrics-text with
 * version 1.0.0 (or no version) and a q greater than 0 that is not below the
 * q of text/plain; otherwise text 0.0.4. */
enum cw_format cw_render_negotiate(const char *accept);

/* cw_render_content_type() returns the Content-Type of 'fmt'. */
const char *cw_render_content_type(enum cw_format fmt);

/* cw_render() sorts 'items' in place (by family name, then label text) and
 * appends the exposition to 'out'. Items of the same name must share one
 * descriptor type; a later duplicate (same name and labels) is dropped.
 * Returns CW_OK, or CW_ETOOBIG / CW_ENOMEM from the buffer (out is then
 * incomplete and must not be served). */
CW_MUST_CHECK int cw_render(struct cw_buf *out, enum cw_format fmt, struct cw_render_item *items,
                            size_t n);

/* Flags of cw_render_batches(). */
#define CW_RENDER_GZIP   0x1u /* append the body as one gzip member */
#define CW_RENDER_NO_EOF 0x2u /* OpenMetrics: no closing "# EOF" (a first part of a body) */

/* cw_render_batches() renders every sample of the 'n' batches (NULL entries
 * are skipped) as one exposition appended to 'out', as cw_render() does,
 * compressed with CW_RENDER_GZIP (the plain text is bounded by out->limit
 * too). A batch with a sticky error gives that error and nothing is
 * written. Returns CW_OK, CW_ENOMEM, CW_ETOOBIG or the batch's error. */
CW_MUST_CHECK int cw_render_batches(struct cw_buf *out, enum cw_format fmt, unsigned flags,
                                    struct cw_batch *const *batches, size_t n);

/* cw_format_double() writes 'v' in Go's ParseFloat-compatible shortest
 * round-trip form (integers without exponent when exact below 2^53, "NaN",
 * "+Inf", "-Inf") into buf (>= 32 bytes); returns the length. */
size_t cw_format_double(double v, char *buf);

/* cw_accepts_gzip() tells whether an Accept-Encoding header allows gzip
 * (a "gzip" coding, or "*", with q > 0). */
bool cw_accepts_gzip(const char *accept_encoding);

/* cw_gzip() compresses 'len' bytes into 'out' (gzip wrapper, level 1..9). */
CW_MUST_CHECK int cw_gzip(const void *in, size_t len, int level, struct cw_buf *out);

/* A body may go out as one gzip member made of two parts: the first kept
 * compressed (the cached checks' part), the second compressed per scrape
 * (connwatch's own series). Clients that read only the first member of a
 * gzip body (curl, browsers) then see all of it.
 *
 * cw_gzip_part() appends 'len' bytes to 'raw' as raw deflate blocks that end
 * on a byte boundary (a sync flush), so that more blocks may follow, and
 * sets *crc to their CRC-32. */
CW_MUST_CHECK int cw_gzip_part(const void *in, size_t len, int level, struct cw_buf *raw,
                               uint32_t *crc);

/* cw_gzip_join() appends to 'out' one gzip member holding the part made by
 * cw_gzip_part() ('raw', 'raw_len'; 'crc' and 'len' of its 'len' input
 * bytes) and then 'tail', compressed now at 'level': the header, the
 * part's blocks, the tail's final blocks and the trailer (the CRC of both,
 * by crc32_combine, and their length). On failure 'out' is as it was. */
CW_MUST_CHECK int cw_gzip_join(struct cw_buf *out, const void *raw, size_t raw_len, uint32_t crc,
                               size_t len, const void *tail, size_t tail_len, int level);

#endif
