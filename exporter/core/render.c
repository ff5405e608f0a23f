/* SPDX-License-Identifier: Apache-2.0 */
/*
 * render.c - the exposition writers (Prometheus text 0.0.4 and OpenMetrics
 * 1.0.0), content negotiation, value formatting and gzip.
 *
 * cw_render() is on the scrape path and runs once per series, so it does no
 * allocation per sample: items are grouped by family with a counting sort
 * (families found by descriptor pointer) and each family is merge-sorted by
 * label text, with a few scratch arrays per render and none when the items
 * are already in order; every line is written with one cw_buf_reserve() of
 * its exact length followed by plain memcpy() into the buffer. Integers and
 * decimals of up to 16 digits are formatted without printf.
 *
 * Owns nothing beyond a call; every function here is pure and may be called
 * from any thread (HTTP threads call it concurrently on different buffers).
 * Number formatting relies on the C locale: connwatch never calls setlocale().
 */
#include "render.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* Histogram bucket bounds formatted once per family, up to this many. */
#define RND_LE_CACHE 64
/* Below this many items a sort is an insertion sort. */
#define RND_SORT_SMALL 12

static const char rnd_digits2[201] = "00010203040506070809"
                                     "10111213141516171819"
                                     "20212223242526272829"
                                     "30313233343536373839"
                                     "40414243444546474849"
                                     "50515253545556575859"
                                     "60616263646566676869"
                                     "70717273747576777879"
                                     "80818283848586878889"
                                     "90919293949596979899";

/* rnd_put_u64() writes 'v' in decimal at 'p' (up to 20 bytes, no NUL) and
 * returns the length. Two digits per step, no division by a variable. */
static size_t rnd_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    size_t len;

    while (v >= 100) {
        unsigned d = (unsigned)(v % 100) * 2;

        v /= 100;
        tmp[--i] = rnd_digits2[d + 1];
        tmp[--i] = rnd_digits2[d];
    }
    if (v >= 10) {
        unsigned d = (unsigned)v * 2;

        tmp[--i] = rnd_digits2[d + 1];
        tmp[--i] = rnd_digits2[d];
    } else {
        tmp[--i] = (char)('0' + v);
    }
    len = sizeof(tmp) - i;
    memcpy(p, tmp + i, len);
    return len;
}

/* Powers of ten, exact as doubles (all of these are) and as integers. */
static const double rnd_p10d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                                  1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};
static const uint64_t rnd_p10u[] = {1ULL,
                                    10ULL,
                                    100ULL,
                                    1000ULL,
                                    10000ULL,
                                    100000ULL,
                                    1000000ULL,
                                    10000000ULL,
                                    100000000ULL,
                                    1000000000ULL,
                                    10000000000ULL,
                                    100000000000ULL,
                                    1000000000000ULL,
                                    10000000000000ULL,
                                    100000000000000ULL,
                                    1000000000000000ULL,
                                    10000000000000000ULL,
                                    100000000000000000ULL,
                                    1000000000000000000ULL,
                                    10000000000000000000ULL};

#define RND_2P53 9007199254740992.0

/* rnd_scaled() tells whether 'a' reads back from a decimal with k decimals,
 * m / 10^k, and returns that m (< 2^53) in *m. Both m and 10^k are exact
 * doubles and division is correctly rounded, as strtod() is, so equality
 * proves that the text of m·10^-k parses back to 'a'. The product a·10^k is
 * itself rounded (to a multiple of 0.5 near 2^53), so the integers next to
 * its rounding are candidates too. */
static bool rnd_scaled(double a, size_t k, uint64_t *m)
{
    const double p10 = rnd_p10d[k];
    uint64_t c = (uint64_t)(a * p10 + 0.5);

    *m = c;
    if ((double)c / p10 == a)
        return true;
    if (c > 0 && (double)(c - 1) / p10 == a) {
        *m = c - 1;
        return true;
    }
    if ((double)(c + 1) < RND_2P53 && (double)(c + 1) / p10 == a) {
        *m = c + 1;
        return true;
    }
    return false;
}

/* rnd_fixed() writes 'a' (not an integer, 1e-4 <= a < 2^53) as "int.frac"
 * with the fewest decimals k that read back as 'a', for the k whose m stays
 * below 2^53. Reading back holds for every k past the shortest one, so a
 * binary search finds it in about four tries. Returns the length, or 0 when
 * no such k exists; then *sixteen tells whether 16 significant digits were
 * among those tried (so only 17 can work). */
static size_t rnd_fixed(double a, char *p, bool *sixteen)
{
    size_t lo = 1, hi = 0, len;
    uint64_t m, ip, fp;

    *sixteen = false;
    while (hi + 1 < CW_ARRAY_LEN(rnd_p10d) && a * rnd_p10d[hi + 1] < RND_2P53)
        hi++;
    if (hi < 1)
        return 0;
    if (!rnd_scaled(a, hi, &m)) {
        *sixteen = m >= rnd_p10u[15];
        return 0;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t mm;

        if (rnd_scaled(a, mid, &mm))
            hi = mid;
        else
            lo = mid + 1;
    }
    if (!rnd_scaled(a, hi, &m))
        return 0; /* cannot happen: every hi was a k that worked */
    ip = m / rnd_p10u[hi];
    fp = m % rnd_p10u[hi];
    len = rnd_put_u64(p, ip);
    p[len++] = '.';
    /* The fraction has exactly k digits, with leading zeros. */
    for (size_t i = hi; i-- > 0;) {
        p[len + i] = (char)('0' + fp % 10);
        fp /= 10;
    }
    return len + hi;
}

size_t cw_format_double(double v, char *buf)
{
    bool sixteen = false;
    size_t len = 0;
    double a;
    int n = 0;

    if (isnan(v)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(buf, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    a = fabs(v);
    if (signbit(v))
        buf[len++] = '-';
    if (a < RND_2P53 && a == trunc(a)) {
        len += rnd_put_u64(buf + len, (uint64_t)a);
        buf[len] = '\0';
        return len;
    }
    /* Go switches to an exponent below 1e-4; so do we, through printf. */
    if (a >= 1e-4 && a < RND_2P53) {
        size_t flen = rnd_fixed(a, buf + len, &sixteen);

        if (flen > 0) {
            len += flen;
            buf[len] = '\0';
            return len;
        }
    }
    /* The shortest of 15, 16 or 17 significant digits that reads back;
     * 17 always does. */
    for (int prec = sixteen ? 17 : 15; prec <= 17; prec++) {
        n = snprintf(buf, 32, "%.*g", prec, v);
        if (n <= 0 || n >= 32 || prec == 17 || strtod(buf, NULL) == v)
            break;
    }
    if (n <= 0 || n >= 32) {
        /* Cannot happen for a finite double (%.17g needs at most 24 bytes). */
        memcpy(buf, "NaN", 4);
        return 3;
    }
    return (size_t)n;
}

/* rnd_format_le() formats a bucket bound for the le label: OpenMetrics wants
 * canonical floats, so an integral bound gets ".0" ("1.0", not "1"). */
static size_t rnd_format_le(double v, enum cw_format fmt, char *buf)
{
    size_t len = cw_format_double(v, buf);

    if (fmt == CW_FMT_OPENMETRICS && strpbrk(buf, ".eIN") == NULL) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    return len;
}

/* ---- sorting ---- */

/* rnd_label_len() is the length of an item's whole label text: prefix,
 * "," when both parts are there, own labels. */
static size_t rnd_label_len(const struct cw_render_item *it)
{
    return it->prefix_len + it->labels_len + (it->prefix_len > 0 && it->labels_len > 0);
}

/* rnd_label_at() is byte 'i' (< rnd_label_len()) of an item's label text. */
static unsigned char rnd_label_at(const struct cw_render_item *it, size_t i)
{
    if (i < it->prefix_len)
        return (unsigned char)it->prefix[i];
    if (it->prefix_len > 0) {
        if (i == it->prefix_len)
            return ',';
        i--;
    }
    return (unsigned char)it->labels[i - it->prefix_len];
}

/* rnd_memcmp() compares two byte ranges, the shorter first on a tie. */
static int rnd_memcmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* rnd_label_cmp() orders two items by their whole label text, as if each
 * were one string. Items of one batch share the prefix pointer: then only
 * their own labels are compared. */
static int rnd_label_cmp(const struct cw_render_item *a, const struct cw_render_item *b)
{
    size_t alen, blen, n, i;

    if (a->prefix_len == b->prefix_len && (a->prefix_len == 0 || a->prefix == b->prefix ||
                                           memcmp(a->prefix, b->prefix, a->prefix_len) == 0))
        return rnd_memcmp(a->labels, a->labels_len, b->labels, b->labels_len);
    if (a->labels_len == 0 && b->labels_len == 0)
        return rnd_memcmp(a->prefix, a->prefix_len, b->prefix, b->prefix_len);
    alen = rnd_label_len(a);
    blen = rnd_label_len(b);
    n = alen < blen ? alen : blen;
    for (i = 0; i < n; i++) {
        unsigned char x = rnd_label_at(a, i), y = rnd_label_at(b, i);

        if (x != y)
            return x < y ? -1 : 1;
    }
    return (alen > blen) - (alen < blen);
}

/* rnd_cmp() orders items by name, then label text. Items of one family
 * usually share a descriptor, so equal pointers skip the strcmp(). */
static int rnd_cmp(const struct cw_render_item *a, const struct cw_render_item *b)
{
    int c;

    if (a->desc != b->desc) {
        c = strcmp(a->desc->name, b->desc->name);
        if (c != 0)
            return c;
    }
    return rnd_label_cmp(a, b);
}

static void rnd_insertion_sort(struct cw_render_item *items, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct cw_render_item x = items[i];
        size_t j = i;

        while (j > 0 && rnd_cmp(&items[j - 1], &x) > 0) {
            items[j] = items[j - 1];
            j--;
        }
        items[j] = x;
    }
}

/* rnd_merge_sort() is a stable merge sort; 'tmp' holds n / 2 + 1 items.
 * Stability is what makes "the first of duplicates wins" hold. Runs that are
 * already in order (one check's batch usually is) cost one comparison. */
static void rnd_merge_sort(struct cw_render_item *items, size_t n, struct cw_render_item *tmp)
{
    size_t mid = n / 2;
    size_t i = 0, j = mid, k = 0;

    if (n <= RND_SORT_SMALL) {
        rnd_insertion_sort(items, n);
        return;
    }
    rnd_merge_sort(items, mid, tmp);
    rnd_merge_sort(items + mid, n - mid, tmp);
    if (rnd_cmp(&items[mid - 1], &items[mid]) <= 0)
        return;
    /* Move the left half out; the write position never passes 'j'. */
    memcpy(tmp, items, mid * sizeof(*items));
    while (i < mid && j < n) {
        if (rnd_cmp(&tmp[i], &items[j]) <= 0)
            items[k++] = tmp[i++];
        else
            items[k++] = items[j++];
    }
    if (i < mid)
        memcpy(items + k, tmp + i, (mid - i) * sizeof(*items));
}

/* The distinct descriptors of one render, found by pointer: a family is
 * usually one static descriptor, so items are grouped by an integer rank
 * instead of comparing names n log n times. */
struct rnd_descs {
    const struct cw_desc **keys; /* open addressing; NULL = free */
    uint32_t *slot_idx;          /* keys[h] -> index into list */
    size_t cap;                  /* a power of two */
    const struct cw_desc **list; /* distinct descriptors, first-seen order */
    uint32_t *rank;              /* list index -> family rank */
    size_t count;
};

static size_t rnd_desc_hash(const struct cw_desc *d, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)d * 0x9e3779b97f4a7c15ULL;

    return (size_t)(h >> 32) & (cap - 1);
}

/* rnd_descs_grow() doubles the table (the list can hold cap / 2 entries). */
static int rnd_descs_grow(struct rnd_descs *t)
{
    const size_t cap = t->cap != 0 ? t->cap * 2 : 64;
    const struct cw_desc **keys = calloc(cap, sizeof(*keys));
    uint32_t *slot_idx = calloc(cap, sizeof(*slot_idx));
    const struct cw_desc **list = realloc(t->list, cap / 2 * sizeof(*list));

    if (list != NULL)
        t->list = list;
    if (keys == NULL || slot_idx == NULL || list == NULL) {
        free(keys);
        free(slot_idx);
        return CW_ENOMEM;
    }
    for (size_t i = 0; i < t->count; i++) {
        size_t h = rnd_desc_hash(t->list[i], cap);

        while (keys[h] != NULL)
            h = (h + 1) & (cap - 1);
        keys[h] = t->list[i];
        slot_idx[h] = (uint32_t)i;
    }
    free(t->keys);
    free(t->slot_idx);
    t->keys = keys;
    t->slot_idx = slot_idx;
    t->cap = cap;
    return CW_OK;
}

/* rnd_descs_slot() returns the table slot of 'd', or the free slot where it
 * belongs. */
static size_t rnd_descs_slot(const struct rnd_descs *t, const struct cw_desc *d)
{
    size_t h = rnd_desc_hash(d, t->cap);

    while (t->keys[h] != NULL && t->keys[h] != d)
        h = (h + 1) & (t->cap - 1);
    return h;
}

/* rnd_descs_add() returns the list index of 'd' in *idx, adding it if new. */
static int rnd_descs_add(struct rnd_descs *t, const struct cw_desc *d, uint32_t *idx)
{
    size_t h;
    int rc;

    if (t->count + 1 > t->cap / 2) {
        rc = rnd_descs_grow(t);
        if (rc != CW_OK)
            return rc;
    }
    h = rnd_descs_slot(t, d);
    if (t->keys[h] == NULL) {
        t->keys[h] = d;
        t->slot_idx[h] = (uint32_t)t->count;
        t->list[t->count++] = d;
    }
    *idx = t->slot_idx[h];
    return CW_OK;
}

static int rnd_desc_name_cmp(const void *pa, const void *pb)
{
    const struct cw_desc *const *a = pa, *const *b = pb;

    return strcmp((*a)->name, (*b)->name);
}

/* rnd_descs_rank() gives every distinct descriptor the rank of its name
 * (descriptors with equal names share a rank); returns the number of ranks. */
static int rnd_descs_rank(struct rnd_descs *t, size_t *nranks)
{
    const struct cw_desc **sorted = malloc(t->count * sizeof(*sorted));
    uint32_t r = 0;
    int rc = CW_OK;

    t->rank = malloc(t->count * sizeof(*t->rank));
    if (sorted == NULL || t->rank == NULL) {
        rc = CW_ENOMEM;
        goto out_free;
    }
    memcpy(sorted, t->list, t->count * sizeof(*sorted));
    qsort(sorted, t->count, sizeof(*sorted), rnd_desc_name_cmp);
    for (size_t i = 0; i < t->count; i++) {
        if (i > 0 && strcmp(sorted[i - 1]->name, sorted[i]->name) != 0)
            r++;
        t->rank[t->slot_idx[rnd_descs_slot(t, sorted[i])]] = r;
    }
    *nranks = t->count > 0 ? (size_t)r + 1 : 0;

out_free:
    free(sorted);
    return rc;
}

static void rnd_descs_free(struct rnd_descs *t)
{
    free(t->keys);
    free(t->slot_idx);
    free(t->list);
    free(t->rank);
}

/* rnd_sort() sorts 'items' stably: a counting sort by family rank, then a
 * merge sort of each family by label text. Nothing is allocated when the
 * items are already in order. */
static int rnd_sort(struct cw_render_item *items, size_t n)
{
    struct rnd_descs t = {0};
    struct cw_render_item *tmp = NULL;
    uint32_t *fam = NULL;
    size_t *start = NULL;
    size_t nranks = 0, i;
    int rc;

    for (i = 1; i < n; i++) {
        if (rnd_cmp(&items[i - 1], &items[i]) > 0)
            break;
    }
    if (i >= n)
        return CW_OK;
    if (n <= RND_SORT_SMALL) {
        rnd_insertion_sort(items, n);
        return CW_OK;
    }
    if (n > UINT32_MAX)
        return CW_ETOOBIG;

    tmp = malloc(n * sizeof(*tmp));
    fam = malloc(n * sizeof(*fam));
    if (tmp == NULL || fam == NULL) {
        rc = CW_ENOMEM;
        goto out_free;
    }
    for (i = 0; i < n; i++) {
        rc = rnd_descs_add(&t, items[i].desc, &fam[i]);
        if (rc != CW_OK)
            goto out_free;
    }
    rc = rnd_descs_rank(&t, &nranks);
    if (rc != CW_OK)
        goto out_free;
    start = calloc(nranks + 1, sizeof(*start));
    if (start == NULL) {
        rc = CW_ENOMEM;
        goto out_free;
    }

    /* Counting sort by rank into tmp; start[r] ends as the end of rank r. */
    for (i = 0; i < n; i++) {
        fam[i] = t.rank[fam[i]];
        start[fam[i] + 1]++;
    }
    for (size_t r = 1; r <= nranks; r++)
        start[r] += start[r - 1];
    for (i = 0; i < n; i++)
        tmp[start[fam[i]]++] = items[i];

    /* Each family by labels, with 'items' as the merge sort's scratch. */
    for (size_t r = 0, s = 0; r < nranks; s = start[r++]) {
        size_t e = start[r];

        for (i = s + 1; i < e; i++) {
            if (rnd_cmp(&tmp[i - 1], &tmp[i]) > 0)
                break;
        }
        if (i < e)
            rnd_merge_sort(tmp + s, e - s, items);
    }
    memcpy(items, tmp, n * sizeof(*items));
    rc = CW_OK;

out_free:
    free(start);
    free(fam);
    free(tmp);
    rnd_descs_free(&t);
    return rc;
}

/* ---- writing ---- */

/* What is constant over one family's samples. */
struct rnd_family {
    const struct cw_desc *desc;
    size_t name_len;    /* of desc->name */
    const char *suffix; /* appended to plain samples: "_total" for an OpenMetrics
                         * counter whose name lacks it, else "" */
    size_t suffix_len;
    size_t nle; /* bounds cached in le[] */
    unsigned char le_len[RND_LE_CACHE];
    char le[RND_LE_CACHE][32];
};

static const char *const rnd_type_text[] = {"gauge", "counter", "histogram"};

/* rnd_put_help() appends help text escaped for 'fmt'. */
static int rnd_put_help(struct cw_buf *out, const char *s, enum cw_format fmt)
{
    return cw_escape(out, s, fmt == CW_FMT_OPENMETRICS);
}

/* rnd_put_meta() appends "# <what> <family> " for rnd_put_family(). */
static int rnd_put_meta(struct cw_buf *out, const char *what, const char *name, size_t len)
{
    int rc;

    rc = cw_buf_adds(out, what);
    if (rc != CW_OK)
        return rc;
    rc = cw_buf_add(out, name, len);
    if (rc != CW_OK)
        return rc;
    return cw_buf_addc(out, ' ');
}

/* rnd_put_type() writes the family's "# TYPE name type" line. */
static int rnd_put_type(struct cw_buf *out, const char *name, size_t len, const char *type)
{
    int rc = rnd_put_meta(out, "# TYPE ", name, len);

    if (rc == CW_OK)
        rc = cw_buf_adds(out, type);
    if (rc == CW_OK)
        rc = cw_buf_addc(out, '\n');
    return rc;
}

/* rnd_put_family() starts family 'f': HELP and TYPE lines (TYPE first in
 * OpenMetrics, as its spec recommends), and the cache of le values. */
static int rnd_put_family(struct cw_buf *out, enum cw_format fmt, struct rnd_family *f,
                          const struct cw_desc *d)
{
    const char *type;
    size_t fam_len;
    int rc;

    f->desc = d;
    f->name_len = strlen(d->name);
    f->suffix = "";
    f->suffix_len = 0;
    f->nle = 0;
    fam_len = f->name_len;
    type = (size_t)d->type < CW_ARRAY_LEN(rnd_type_text) ? rnd_type_text[d->type] : NULL;
    if (type == NULL)
        type = fmt == CW_FMT_OPENMETRICS ? "unknown" : "untyped";

    if (fmt == CW_FMT_OPENMETRICS && d->type == CW_COUNTER) {
        /* The family is named without _total; its samples always have it. */
        if (fam_len > 6 && memcmp(d->name + fam_len - 6, "_total", 6) == 0) {
            fam_len -= 6;
        } else {
            f->suffix = "_total";
            f->suffix_len = 6;
        }
    }

    if (fmt == CW_FMT_OPENMETRICS) {
        rc = rnd_put_type(out, d->name, fam_len, type);
        if (rc != CW_OK)
            return rc;
    }
    if (d->help != NULL) {
        rc = rnd_put_meta(out, "# HELP ", d->name, fam_len);
        if (rc == CW_OK)
            rc = rnd_put_help(out, d->help, fmt);
        if (rc == CW_OK)
            rc = cw_buf_addc(out, '\n');
        if (rc != CW_OK)
            return rc;
    }
    if (fmt == CW_FMT_TEXT) {
        rc = rnd_put_type(out, d->name, fam_len, type);
        if (rc != CW_OK)
            return rc;
    }

    if (d->type == CW_HISTOGRAM) {
        f->nle = d->nbuckets < RND_LE_CACHE ? d->nbuckets : RND_LE_CACHE;
        for (size_t i = 0; i < f->nle; i++)
            f->le_len[i] = (unsigned char)rnd_format_le(d->buckets[i], fmt, f->le[i]);
    }
    return CW_OK;
}

/* rnd_put_line() appends one sample line:
 *   name suffix [ "{" labels [","] [ le="<le>" ] "}" ] " " value "\n"
 * with a single reservation of its exact length. */
static int rnd_put_line(struct cw_buf *out, const struct rnd_family *f, const char *suffix,
                        size_t suffix_len, const struct cw_render_item *it, const char *le,
                        size_t le_len, const char *val, size_t val_len)
{
    size_t need = f->name_len + suffix_len + 1 + val_len + 1;
    size_t llen = rnd_label_len(it);
    char *p;
    int rc;

    if (llen > 0 || le_len > 0)
        need += 2 + llen;
    if (le_len > 0)
        need += 5 + le_len + (llen > 0);
    rc = cw_buf_reserve(out, need);
    if (rc != CW_OK)
        return rc;

    p = out->data + out->len;
    memcpy(p, f->desc->name, f->name_len);
    p += f->name_len;
    if (suffix_len > 0) {
        memcpy(p, suffix, suffix_len);
        p += suffix_len;
    }
    if (llen > 0 || le_len > 0) {
        *p++ = '{';
        if (it->prefix_len > 0) {
            memcpy(p, it->prefix, it->prefix_len);
            p += it->prefix_len;
            if (it->labels_len > 0)
                *p++ = ',';
        }
        if (it->labels_len > 0) {
            memcpy(p, it->labels, it->labels_len);
            p += it->labels_len;
        }
        if (le_len > 0) {
            if (llen > 0)
                *p++ = ',';
            memcpy(p, "le=\"", 4);
            p += 4;
            memcpy(p, le, le_len);
            p += le_len;
            *p++ = '"';
        }
        *p++ = '}';
    }
    *p++ = ' ';
    memcpy(p, val, val_len);
    p += val_len;
    *p++ = '\n';
    *p = '\0'; /* the line is a string at every step; setlen writes the NUL again */
    return cw_buf_setlen(out, (size_t)(p - out->data));
}

static bool rnd_same_buckets(const struct cw_desc *d, const struct cw_render_item *it);

/* rnd_put_histogram() appends the _bucket lines (then +Inf, equal to the
 * count), _sum and _count of one histogram sample, with the bounds of the
 * sample's own descriptor: series of one family may have different bounds
 * (an icmp check's histogram_buckets), each with its own le set, as both
 * formats allow. The family's formatted bounds are reused when they match. */
static int rnd_put_histogram(struct cw_buf *out, enum cw_format fmt, const struct rnd_family *f,
                             const struct cw_render_item *it)
{
    const struct cw_desc *d = it->desc;
    const bool cached = rnd_same_buckets(f->desc, it);
    const uint64_t count = it->hist[d->nbuckets];
    char val[32], le[40];
    size_t vlen, llen;
    int rc;

    for (size_t i = 0; i < d->nbuckets; i++) {
        const char *lep = le;

        if (cached && i < f->nle) {
            lep = f->le[i];
            llen = f->le_len[i];
        } else {
            llen = rnd_format_le(d->buckets[i], fmt, le);
        }
        vlen = rnd_put_u64(val, it->hist[i]);
        rc = rnd_put_line(out, f, "_bucket", 7, it, lep, llen, val, vlen);
        if (rc != CW_OK)
            return rc;
    }
    vlen = rnd_put_u64(val, count);
    rc = rnd_put_line(out, f, "_bucket", 7, it, "+Inf", 4, val, vlen);
    if (rc != CW_OK)
        return rc;
    vlen = cw_format_double(it->value, val);
    rc = rnd_put_line(out, f, "_sum", 4, it, NULL, 0, val, vlen);
    if (rc != CW_OK)
        return rc;
    vlen = rnd_put_u64(val, count);
    return rnd_put_line(out, f, "_count", 6, it, NULL, 0, val, vlen);
}

static bool rnd_same_name(const struct cw_desc *a, const struct cw_desc *b)
{
    return a == b || strcmp(a->name, b->name) == 0;
}

static bool rnd_same_series(const struct cw_render_item *a, const struct cw_render_item *b)
{
    return rnd_same_name(a->desc, b->desc) && rnd_label_len(a) == rnd_label_len(b) &&
           rnd_label_cmp(a, b) == 0;
}

/* rnd_same_buckets() tells whether histogram item 'it' has the bounds of its
 * family's descriptor 'd', whose formatted le values are then reused. */
static bool rnd_same_buckets(const struct cw_desc *d, const struct cw_render_item *it)
{
    const struct cw_desc *o = it->desc;

    if (it->hist == NULL || o->type != CW_HISTOGRAM)
        return false;
    return o == d || (o->nbuckets == d->nbuckets &&
                      (d->nbuckets == 0 ||
                       memcmp(o->buckets, d->buckets, d->nbuckets * sizeof(*d->buckets)) == 0));
}

/* rnd_items() writes the exposition of 'items'; 'eof' ends an OpenMetrics
 * body with "# EOF". */
static int rnd_items(struct cw_buf *out, enum cw_format fmt, struct cw_render_item *items, size_t n,
                     bool eof)
{
    const struct cw_render_item *prev = NULL;
    struct rnd_family fam;
    char val[32];
    int rc;

    if (fmt != CW_FMT_OPENMETRICS)
        fmt = CW_FMT_TEXT;
    rc = rnd_sort(items, n);
    if (rc != CW_OK)
        return rc;

    for (size_t i = 0; i < n; i++) {
        const struct cw_render_item *it = &items[i];
        size_t vlen;

        /* Sorting put duplicates next to each other, the first one first. */
        if (prev != NULL && rnd_same_series(prev, it))
            continue;
        if (prev == NULL || !rnd_same_name(prev->desc, it->desc)) {
            rc = rnd_put_family(out, fmt, &fam, it->desc);
            if (rc != CW_OK)
                return rc;
        }
        prev = it;

        if (fam.desc->type == CW_HISTOGRAM) {
            if (it->hist == NULL || it->desc->type != CW_HISTOGRAM)
                return CW_EINVAL;
            rc = rnd_put_histogram(out, fmt, &fam, it);
        } else {
            vlen = cw_format_double(it->value, val);
            rc = rnd_put_line(out, &fam, fam.suffix, fam.suffix_len, it, NULL, 0, val, vlen);
        }
        if (rc != CW_OK)
            return rc;
    }
    if (fmt == CW_FMT_OPENMETRICS && eof)
        return cw_buf_add(out, "# EOF\n", 6);
    return CW_OK;
}

int cw_render(struct cw_buf *out, enum cw_format fmt, struct cw_render_item *items, size_t n)
{
    return rnd_items(out, fmt, items, n, true);
}

int cw_render_batches(struct cw_buf *out, enum cw_format fmt, unsigned flags,
                      struct cw_batch *const *batches, size_t nbatches)
{
    struct cw_render_item *items;
    struct cw_buf text;
    size_t i, n = 0, off = 0;
    int rc;

    for (i = 0; i < nbatches; i++) {
        if (batches[i] == NULL)
            continue;
        if (cw_batch_err(batches[i]) != CW_OK)
            return cw_batch_err(batches[i]);
        n += cw_batch_len(batches[i]);
    }
    items = malloc((n != 0 ? n : 1) * sizeof(*items));
    if (items == NULL)
        return CW_ENOMEM;
    for (i = 0; i < nbatches; i++) {
        if (batches[i] == NULL)
            continue;
        cw_batch_items(batches[i], items + off);
        off += cw_batch_len(batches[i]);
    }
    if (!(flags & CW_RENDER_GZIP)) {
        rc = rnd_items(out, fmt, items, n, !(flags & CW_RENDER_NO_EOF));
    } else {
        /* The plain text may take what the compressed body may. */
        cw_buf_init(&text, out->limit);
        rc = rnd_items(&text, fmt, items, n, !(flags & CW_RENDER_NO_EOF));
        if (rc == CW_OK)
            rc = cw_gzip(text.data != NULL ? text.data : "", text.len, 1, out);
        cw_buf_reset(&text);
    }
    free(items);
    return rc;
}

/* ---- negotiation ---- */

/* One element of a comma-separated header list, `value *( ";" name=param )`. */
struct rnd_elem {
    const char *val; /* media range or coding, trimmed */
    size_t val_len;
    const char *version; /* the version parameter (unquoted), or NULL */
    size_t version_len;
    int q; /* quality in thousandths, 0..1000; -1: element malformed, ignore it */
};

static bool rnd_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool rnd_eq_ci(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

/* rnd_parse_q() parses an RFC 9110 qvalue leniently ("0", "0.5", "1.000",
 * ".5"); returns thousandths, or -1. */
static int rnd_parse_q(const char *s, size_t len)
{
    int q = 0;
    size_t i = 0;

    if (s == NULL || len == 0)
        return -1;
    if (s[0] >= '0' && s[0] <= '9') {
        q = (s[0] - '0') * 1000;
        i = 1;
    }
    if (i < len && s[i] == '.') {
        int scale = 100;

        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            q += (s[i] - '0') * scale;
            scale /= 10;
        }
    }
    if (i != len || (i == 1 && s[0] == '.') || q > 1000)
        return -1;
    return q;
}

/* rnd_next_elem() parses the element starting at *pp into 'e' and moves *pp
 * past it. Returns false at the end of the header. Garbage is skipped up to
 * the next parameter or element: a bad header never fails, it only matches
 * less. */
static bool rnd_next_elem(const char **pp, struct rnd_elem *e)
{
    const char *p = *pp;
    const char *end;

    while (rnd_is_ows(*p) || *p == ',')
        p++;
    if (*p == '\0') {
        *pp = p;
        return false;
    }
    e->val = p;
    while (*p != '\0' && *p != ',' && *p != ';')
        p++;
    for (end = p; end > e->val && rnd_is_ows(end[-1]); end--)
        ;
    e->val_len = (size_t)(end - e->val);
    e->version = NULL;
    e->version_len = 0;
    e->q = 1000;

    while (*p == ';') {
        bool bad = false;
        const char *name, *v = NULL;
        size_t name_len, vlen = 0;

        p++;
        while (rnd_is_ows(*p))
            p++;
        name = p;
        while (*p != '\0' && *p != '=' && *p != ';' && *p != ',' && !rnd_is_ows(*p))
            p++;
        name_len = (size_t)(p - name);
        while (rnd_is_ows(*p))
            p++;
        if (*p == '=') {
            p++;
            while (rnd_is_ows(*p))
                p++;
            if (*p == '"') {
                v = ++p;
                while (*p != '\0' && *p != '"') {
                    if (*p == '\\' && p[1] != '\0')
                        p++;
                    p++;
                }
                vlen = (size_t)(p - v);
                if (*p == '"')
                    p++;
                else
                    bad = true; /* unterminated quoted string */
            } else {
                v = p;
                while (*p != '\0' && *p != ';' && *p != ',' && !rnd_is_ows(*p))
                    p++;
                vlen = (size_t)(p - v);
            }
        }
        if (bad) {
            e->q = -1;
        } else if (rnd_eq_ci(name, name_len, "q")) {
            e->q = rnd_parse_q(v, vlen);
        } else if (rnd_eq_ci(name, name_len, "version") && v != NULL) {
            e->version = v;
            e->version_len = vlen;
        }
        while (*p != '\0' && *p != ';' && *p != ',')
            p++;
    }
    if (*p == ',')
        p++;
    *pp = p;
    return true;
}

enum cw_format cw_render_negotiate(const char *accept)
{
    struct rnd_elem e;
    int om_q = -1, text_q = -1;

    if (accept == NULL)
        return CW_FMT_TEXT;
    while (rnd_next_elem(&accept, &e)) {
        if (e.q < 0)
            continue;
        if (rnd_eq_ci(e.val, e.val_len, "application/openmetrics-text")) {
            /* Only 1.0.0 is implemented; 0.0.1 or 2.x must not match. */
            if (e.version != NULL && !(e.version_len == 5 && memcmp(e.version, "1.0.0", 5) == 0))
                continue;
            if (e.q > om_q)
                om_q = e.q;
        } else if (rnd_eq_ci(e.val, e.val_len, "text/plain") ||
                   rnd_eq_ci(e.val, e.val_len, "text/*") || rnd_eq_ci(e.val, e.val_len, "*/*")) {
            if (e.q > text_q)
                text_q = e.q;
        }
    }
    return om_q > 0 && om_q >= text_q ? CW_FMT_OPENMETRICS : CW_FMT_TEXT;
}

const char *cw_render_content_type(enum cw_format fmt)
{
    return fmt == CW_FMT_OPENMETRICS ? CW_CONTENT_TYPE_OM : CW_CONTENT_TYPE_TEXT;
}

bool cw_accepts_gzip(const char *accept_encoding)
{
    struct rnd_elem e;
    int gzip_q = -1, any_q = -1;

    if (accept_encoding == NULL)
        return false;
    while (rnd_next_elem(&accept_encoding, &e)) {
        if (e.q < 0)
            continue;
        /* RFC 9110 8.4.1.3: x-gzip is the same coding. */
        if (rnd_eq_ci(e.val, e.val_len, "gzip") || rnd_eq_ci(e.val, e.val_len, "x-gzip")) {
            if (e.q > gzip_q)
                gzip_q = e.q;
        } else if (rnd_eq_ci(e.val, e.val_len, "*")) {
            if (e.q > any_q)
                any_q = e.q;
        }
    }
    /* An explicit gzip entry wins over "*" ("gzip;q=0, *" refuses gzip). */
    if (gzip_q >= 0)
        return gzip_q > 0;
    return any_q > 0;
}

/* ---- gzip ---- */

/* deflate_into() appends 'len' bytes compressed at 'level' to 'out': with
 * the gzip wrapper (gzip), else as raw deflate; 'flush' is Z_FINISH (the
 * last block) or Z_SYNC_FLUSH (blocks that another raw deflate stream may
 * follow, ending on a byte boundary). On failure 'out' is as it was. */
static int deflate_into(const void *in, size_t len, int level, bool gzip, int flush,
                        struct cw_buf *out)
{
    const size_t old_len = out->len;
    z_stream zs;
    size_t room;
    int rc, zrc, wbits;

    if (level < 1 || level > 9 || (in == NULL && len > 0))
        return CW_EINVAL;
    /* zlib counts in uInt; bodies are bounded far below that. */
    if (len > UINT_MAX / 2)
        return CW_ETOOBIG;

    /* A window larger than the input compresses no better, and zlib's state
     * (allocated and cleared per call) grows with the window and memLevel:
     * size both to the input, so the small part of a scrape that is
     * compressed each time stays cheap. */
    wbits = 9;
    while (wbits < 15 && ((size_t)1 << wbits) < len)
        wbits++;
    memset(&zs, 0, sizeof(zs));
    zrc = deflateInit2(&zs, level, Z_DEFLATED, gzip ? wbits + 16 : -wbits, wbits - 7,
                       Z_DEFAULT_STRATEGY);
    if (zrc == Z_MEM_ERROR)
        return CW_ENOMEM;
    if (zrc != Z_OK)
        return CW_EINVAL;

    /* Reserve the worst case, but not past the limit: the result usually is
     * much smaller, and deflate() tells if it does not fit. A sync flush
     * adds its empty stored block (5 bytes) to the bound. */
    room = deflateBound(&zs, (uLong)len) + 6;
    if (out->len > out->limit) {
        rc = CW_ETOOBIG;
        goto out_end;
    }
    if (room > out->limit - out->len)
        room = out->limit - out->len;
    if (room > UINT_MAX)
        room = UINT_MAX;
    rc = cw_buf_reserve(out, room);
    if (rc != CW_OK)
        goto out_end;

    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out->data + out->len;
    zs.avail_out = (uInt)room;
    zrc = deflate(&zs, flush);
    if (flush == Z_FINISH ? zrc == Z_STREAM_END
                          : (zrc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0)) {
        rc = cw_buf_setlen(out, out->len + (room - zs.avail_out));
    } else if (zrc == Z_OK || zrc == Z_BUF_ERROR) {
        rc = CW_ETOOBIG; /* output space ran out before the end */
    } else {
        rc = CW_EINVAL;
    }

out_end:
    deflateEnd(&zs);
    /* Take back what was written; a cut never fails, its result is only
     * checked because every setlen's must be. */
    if (rc != CW_OK && out->data != NULL && cw_buf_setlen(out, old_len) != CW_OK)
        rc = CW_EINVAL;
    return rc;
}

int cw_gzip(const void *in, size_t len, int level, struct cw_buf *out)
{
    return deflate_into(in, len, level, true, Z_FINISH, out);
}

int cw_gzip_part(const void *in, size_t len, int level, struct cw_buf *raw, uint32_t *crc)
{
    if (in == NULL && len > 0)
        return CW_EINVAL;
    if (len > UINT_MAX / 2)
        return CW_ETOOBIG;
    *crc = (uint32_t)crc32(0L, (const Bytef *)(len > 0 ? in : ""), (uInt)len);
    return deflate_into(in, len, level, false, Z_SYNC_FLUSH, raw);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

int cw_gzip_join(struct cw_buf *out, const void *raw, size_t raw_len, uint32_t crc, size_t len,
                 const void *tail, size_t tail_len, int level)
{
    /* RFC 1952 member header: deflate, no flags, no time, OS unknown. */
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    const size_t old_len = out->len;
    unsigned char trailer[8];
    uint32_t tail_crc;
    int rc;

    if ((tail == NULL && tail_len > 0) || (raw == NULL && raw_len > 0))
        return CW_EINVAL;
    if (tail_len > UINT_MAX / 2)
        return CW_ETOOBIG;
    tail_crc = (uint32_t)crc32(0L, (const Bytef *)(tail_len > 0 ? tail : ""), (uInt)tail_len);
    put_le32(trailer, (uint32_t)crc32_combine(crc, tail_crc, (z_off_t)tail_len));
    put_le32(trailer + 4, (uint32_t)(len + tail_len)); /* ISIZE: the length mod 2^32 */
    rc = cw_buf_add(out, hdr, sizeof(hdr));
    if (rc == CW_OK && raw_len > 0)
        rc = cw_buf_add(out, raw, raw_len);
    if (rc == CW_OK)
        rc = deflate_into(tail, tail_len, level, false, Z_FINISH, out);
    if (rc == CW_OK)
        rc = cw_buf_add(out, trailer, sizeof(trailer));
    if (rc != CW_OK && out->data != NULL && cw_buf_setlen(out, old_len) != CW_OK)
        rc = CW_EINVAL;
    return rc;
}
