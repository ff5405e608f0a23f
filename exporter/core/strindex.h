/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strindex.h - an open-addressing hash index from strings to pointers, so
 * that the configuration loader finds duplicates (mapping keys, YAML
 * anchors, service names, check identities) in linear time.
 *
 * The index borrows both the key strings and the values: they must outlive
 * it. It owns only its slot array. One thread at a time.
 */
#ifndef CW_STRINDEX_H
#define CW_STRINDEX_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

struct cw_strindex_slot {
    const char *key; /* borrowed; NULL marks a free slot */
    void *value;     /* borrowed */
    uint64_t hash;
};

struct cw_strindex {
    struct cw_strindex_slot *slots; /* owned */
    size_t cap;                     /* 0 or a power of two; at most half full */
    size_t n;
    uint64_t compares; /* string comparisons made so far (for the linearity tests) */
};

/* cw_strindex_init() prepares an empty index (no allocation). */
void cw_strindex_init(struct cw_strindex *ix);

/* cw_strindex_reset() frees the slots and leaves an empty index. */
void cw_strindex_reset(struct cw_strindex *ix);

/* cw_strindex_hash() is the index's string hash (FNV-1a, 64 bits, with
 * MurmurHash3's finaliser so that every bit depends on every input byte):
 * stable across runs and builds, so it also serves as a spread for check
 * phases. */
uint64_t cw_strindex_hash(const char *key);

/* cw_hash_bytes() is the same hash over 'len' bytes (binary keys). */
uint64_t cw_hash_bytes(const void *data, size_t len);

/* cw_strindex_find() returns the value indexed under 'key', or NULL. */
void *cw_strindex_find(struct cw_strindex *ix, const char *key);

/* cw_strindex_add() indexes 'value' under 'key' unless the key is there
 * already. *old receives the value already indexed (the index is then
 * unchanged) or NULL (then 'value' was added). Returns CW_OK or CW_ENOMEM
 * (nothing added). */
CW_MUST_CHECK int cw_strindex_add(struct cw_strindex *ix, const char *key, void *value, void **old);

/* cw_strindex_set() indexes 'value' under 'key', replacing any value that
 * was there (a redefined YAML anchor). Returns CW_OK or CW_ENOMEM. */
CW_MUST_CHECK int cw_strindex_set(struct cw_strindex *ix, const char *key, void *value);

#endif
