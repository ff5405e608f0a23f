/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strindex.c - string to pointer hash index with linear probing. See
 * strindex.h. Slots keep the full hash, so growing never rehashes strings
 * and a probe compares strings only when the hashes are equal.
 */
#include "strindex.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define STRINDEX_MIN_CAP 16

void cw_strindex_init(struct cw_strindex *ix)
{
    ix->slots = NULL;
    ix->cap = 0;
    ix->n = 0;
    ix->compares = 0;
}

void cw_strindex_reset(struct cw_strindex *ix)
{
    free(ix->slots);
    cw_strindex_init(ix);
}

uint64_t cw_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    /* FNV-1a leaves the high bits poorly mixed when keys differ only in
     * their last bytes ("10.0.0.1:8001", "10.0.0.1:8002"): the phases of
     * such checks, taken from those bits, bunched into a few slots. The
     * 64-bit finaliser of MurmurHash3 spreads every input bit over all
     * output bits. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

uint64_t cw_strindex_hash(const char *key)
{
    return cw_hash_bytes(key, strlen(key));
}

/* strindex_slot() returns the slot holding 'key', or the free slot where it
 * belongs. The index must have room (cap > n). */
static struct cw_strindex_slot *strindex_slot(struct cw_strindex *ix, const char *key, uint64_t h)
{
    size_t mask = ix->cap - 1;
    size_t i;

    for (i = (size_t)h & mask; ix->slots[i].key != NULL; i = (i + 1) & mask) {
        if (ix->slots[i].hash != h)
            continue;
        ix->compares++;
        if (strcmp(ix->slots[i].key, key) == 0)
            break;
    }
    return &ix->slots[i];
}

static int strindex_grow(struct cw_strindex *ix)
{
    struct cw_strindex_slot *old = ix->slots;
    size_t oldcap = ix->cap;
    size_t cap = oldcap != 0 ? oldcap * 2 : STRINDEX_MIN_CAP;
    size_t i;

    if (cap < oldcap || cap > SIZE_MAX / sizeof(*old))
        return CW_ENOMEM;
    ix->slots = calloc(cap, sizeof(*ix->slots));
    if (ix->slots == NULL) {
        ix->slots = old;
        return CW_ENOMEM;
    }
    ix->cap = cap;
    for (i = 0; i < oldcap; i++) {
        size_t j;

        if (old[i].key == NULL)
            continue;
        for (j = (size_t)old[i].hash & (cap - 1); ix->slots[j].key != NULL; j = (j + 1) & (cap - 1))
            ;
        ix->slots[j] = old[i];
    }
    free(old);
    return CW_OK;
}

void *cw_strindex_find(struct cw_strindex *ix, const char *key)
{
    if (ix->n == 0)
        return NULL;
    return strindex_slot(ix, key, cw_strindex_hash(key))->value;
}

static int strindex_put(struct cw_strindex *ix, const char *key, void *value, bool replace,
                        void **old)
{
    uint64_t h = cw_strindex_hash(key);
    struct cw_strindex_slot *s;

    *old = NULL;
    if ((ix->n + 1) * 2 > ix->cap && strindex_grow(ix) != CW_OK)
        return CW_ENOMEM;
    s = strindex_slot(ix, key, h);
    if (s->key != NULL) {
        *old = s->value;
        if (replace) {
            s->key = key;
            s->value = value;
        }
        return CW_OK;
    }
    s->key = key;
    s->value = value;
    s->hash = h;
    ix->n++;
    return CW_OK;
}

int cw_strindex_add(struct cw_strindex *ix, const char *key, void *value, void **old)
{
    return strindex_put(ix, key, value, false, old);
}

int cw_strindex_set(struct cw_strindex *ix, const char *key, void *value)
{
    void *old;

    return strindex_put(ix, key, value, true, &old);
}
