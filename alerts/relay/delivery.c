/* SPDX-License-Identifier: Apache-2.0 */
/*
 * delivery.c - the delivery engine of connwatch-relay (delivery.h).
 *
 * Owns the slots (a spool and the counters of one receiver name, kept
 * across reloads) and runs one delivery thread per receiver of the live
 * configuration, so a dead receiver never blocks another. A thread waits on
 * its spool, then makes one attempt at a time (deliver_once): take the head
 * entries (merged when the rate limit would make them wait), send them with
 * the kind's deliver(), and on the answer remove them, back off with jitter
 * (retry_initial doubling to retry_max, at least what a throttling receiver
 * asked for), hand the queue to the fallback receiver after fallback_after,
 * or, after dead_letter_after rejections of the same entry, move it to the
 * dead-letter directory.
 *
 * Lock order: cw_slots.lock, then a spool's own lock (spool.c). A slot's
 * hist_lock is taken alone. No lock is held across a delivery.
 */
#include "alerts/relay/delivery.h"

#include "alerts/relay/payload.h"
#include "alerts/relay/template.h"
#include "exporter/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MERGE      100
#define FALLBACK_BATCH 1000

const double cw_delivery_buckets[CW_DELIVERY_NBUCKETS] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

/* ---- slots ------------------------------------------------------------------ */

void cw_slots_init(struct cw_slots *slots)
{
    pthread_mutex_init(&slots->lock, NULL);
    slots->head = NULL;
}

void cw_slots_reset(struct cw_slots *slots)
{
    struct cw_slot *s = slots->head, *next;

    for (; s != NULL; s = next) {
        next = s->next;
        cw_spool_close(s->spool);
        pthread_mutex_destroy(&s->hist_lock);
        free(s->name);
        free(s);
    }
    slots->head = NULL;
    pthread_mutex_destroy(&slots->lock);
}

/* slot_get() returns the slot of 'name', making it (and opening its spool
 * under cfg->spool_dir) the first time; NULL with the reason in 'why'. */
static struct cw_slot *slot_get(struct cw_slots *slots, const struct cw_relay_config *cfg,
                                const char *name, char *why, size_t whylen)
{
    struct cw_slot *s;
    char dir[4096];

    pthread_mutex_lock(&slots->lock);
    for (s = slots->head; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0)
            goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s != NULL)
        s->name = strdup(name);
    if (s == NULL || s->name == NULL) {
        free(s);
        s = NULL;
        snprintf(why, whylen, "out of memory");
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s/%s", cfg->spool_dir, name);
    s->spool = cw_spool_open(dir, cfg->dedupe_window, (size_t)cfg->max_queue, why, whylen);
    if (s->spool == NULL) {
        free(s->name);
        free(s);
        s = NULL;
        goto out;
    }
    pthread_mutex_init(&s->hist_lock, NULL);
    s->next = slots->head;
    slots->head = s;
    if (cw_spool_length(s->spool) > 0) {
        char n[24];

        snprintf(n, sizeof(n), "%zu", cw_spool_length(s->spool));
        cw_log(CW_LOG_INFO, "spool", "resuming spooled notifications", "receiver", name, "queued",
               n, (char *)NULL);
    }
out:
    pthread_mutex_unlock(&slots->lock);
    return s;
}

void cw_slot_count(struct cw_slot *s, enum cw_notif_result r, uint64_t n)
{
    atomic_fetch_add(&s->counts[r], n);
}

static void observe(struct cw_slot *s, double secs)
{
    size_t i;

    pthread_mutex_lock(&s->hist_lock);
    for (i = 0; i < CW_DELIVERY_NBUCKETS && secs > cw_delivery_buckets[i]; i++)
        ;
    s->hist[i]++;
    s->hist_sum += secs;
    pthread_mutex_unlock(&s->hist_lock);
}

/* ---- one delivery thread ---------------------------------------------------- */

struct worker {
    struct cw_relay_receiver *r; /* borrowed: the receiver this thread delivers for */
    cw_mono *sent;               /* owned: ring of the last rate_limit request times */
    size_t nsent, head;
    cw_duration backoff;
    unsigned seed;
    uint64_t rejected_seq; /* head entry the receiver rejected, 0 = none */
    int64_t rejections;    /* of rejected_seq, in a row */
    bool solo;             /* a merged message was rejected: send the head alone */
};

/* The head entries taken from the spool for one attempt. */
struct batch {
    struct cw_spool_item items[MAX_MERGE]; /* bodies owned, items[0..n) */
    struct cw_am_msg msgs[MAX_MERGE];      /* owned: msgs[i] parsed from items[i] */
    struct cw_am_msg *ptrs[MAX_MERGE];     /* borrowed: ptrs[i] = &msgs[i] */
    size_t n;
};

/* keep() applies send_resolved and min_severity: whether 'm' goes out. */
static bool keep(const struct cw_relay_receiver *r, const struct cw_am_msg *m)
{
    size_t i;

    if (!r->c.send_resolved && strcmp(m->status, "resolved") == 0)
        return false;
    if (r->min_rank == 0)
        return true;
    for (i = 0; i < m->nalerts; i++) {
        if (cw_severity_rank(cw_am_label(&m->alerts[i], "severity")) >= r->min_rank)
            return true;
    }
    return false;
}

/* rate_wait() returns 0 when a request may go now (and how many tokens are
 * left in *tokens), else the time to wait. */
static cw_duration rate_wait(struct worker *w, cw_mono now, size_t *tokens)
{
    const struct cw_relay_receiver *r = w->r;
    size_t i, inwin = 0;
    cw_mono oldest = 0;

    *tokens = SIZE_MAX;
    if (r->caps.rate_limit == 0)
        return 0;
    for (i = 0; i < w->nsent; i++) {
        cw_mono t = w->sent[i];

        if (now - t < r->caps.rate_window) {
            if (inwin == 0 || t < oldest)
                oldest = t;
            inwin++;
        }
    }
    if (inwin >= r->caps.rate_limit)
        return oldest + r->caps.rate_window - now + CW_MS(1);
    *tokens = r->caps.rate_limit - inwin;
    return 0;
}

static void rate_note(struct worker *w, cw_mono now)
{
    if (w->r->caps.rate_limit == 0)
        return;
    w->sent[w->head] = now;
    w->head = (w->head + 1) % w->r->caps.rate_limit;
    if (w->nsent < w->r->caps.rate_limit)
        w->nsent++;
}

/* merge_max() returns how many entries the next attempt may carry: one, or,
 * for a merging kind under a rate limit, the queue spread over the requests
 * left in the window rather than making notifications wait for the next. */
static size_t merge_max(const struct worker *w, size_t tokens)
{
    const struct cw_relay_receiver *r = w->r;
    size_t qlen = cw_spool_length(r->run.slot->spool), max;

    if (!r->caps.merge || r->caps.rate_limit == 0 || tokens == SIZE_MAX || qlen <= 1 || w->solo)
        return 1;
    max = (qlen + tokens - 1) / tokens;
    return max > MAX_MERGE ? MAX_MERGE : max;
}

/* batch_take() fills 'b' with up to 'max' head entries that parse and pass
 * the receiver's filters. An entry that does not parse is moved aside
 * (dropped), one filtered out is removed (filtered). */
static void batch_take(struct worker *w, size_t max, struct batch *b)
{
    struct cw_relay_receiver *r = w->r;
    struct cw_slot *s = r->run.slot;
    size_t n, i, k = 0;
    char why[256];

    n = cw_spool_peek(s->spool, max, b->items);
    for (i = 0; i < n; i++) {
        struct cw_spool_item *it = &b->items[i];

        if (cw_am_parse(it->body, it->len, &b->msgs[k], why, sizeof(why)) != CW_OK) {
            cw_log(CW_LOG_ERROR, "relay", "spooled notification does not parse", "receiver",
                   r->c.name, "err", why, (char *)NULL);
            cw_spool_quarantine(s->spool, it->seq);
            cw_slot_count(s, CW_NOTIF_DROPPED, 1);
            free(it->body);
            it->body = NULL;
            continue;
        }
        if (!keep(r, &b->msgs[k])) {
            cw_am_free(&b->msgs[k]);
            if (cw_spool_remove(s->spool, it->seq) != CW_OK) {
                /* logged; the entry is gone from the queue either way */
            }
            cw_slot_count(s, CW_NOTIF_FILTERED, 1);
            free(it->body);
            it->body = NULL;
            continue;
        }
        b->items[k] = *it;
        if (k != i)
            it->body = NULL;
        b->ptrs[k] = &b->msgs[k];
        k++;
    }
    for (i = k; i < n; i++) {
        free(b->items[i].body);
        b->items[i].body = NULL;
    }
    b->n = k;
}

static void batch_free(struct batch *b)
{
    size_t i;

    for (i = 0; i < b->n; i++)
        cw_am_free(&b->msgs[i]);
    cw_spool_items_free(b->items, b->n);
    b->n = 0;
}

/* attempt() sends the batch with the kind's deliver(), notes the request
 * for the rate limit and its duration; *now receives when it ended. */
static enum cw_deliver_result attempt(struct worker *w, struct batch *b, size_t *used,
                                      struct cw_deliver_info *info, cw_mono *now)
{
    struct cw_relay_receiver *r = w->r;
    struct cw_deliver_ctx ctx = {.receiver = r->c.name,
                                 .lang = (enum cw_lang)r->c.language,
                                 .tz = &r->tz,
                                 .title_tmpl = r->c.title_template,
                                 .alert_tmpl = r->c.alert_template,
                                 .timeout = r->c.timeout,
                                 .stop = &r->run.stop};
    enum cw_deliver_result res;
    cw_mono t0;

    memset(info, 0, sizeof(*info));
    *used = 0;
    t0 = cw_now();
    res = r->kind->deliver(r->state, &ctx, b->ptrs, b->n, used, info);
    *now = cw_now();
    rate_note(w, *now);
    observe(r->run.slot, cw_seconds(*now - t0));
    return res;
}

/* delivered() removes the 'used' entries the receiver confirmed and ends a
 * run of failures. */
static void delivered(struct worker *w, struct batch *b, size_t used, cw_mono now)
{
    struct cw_relay_receiver *r = w->r;
    struct cw_slot *s = r->run.slot;
    long long since = atomic_exchange(&s->failing_since, 0);
    size_t i;

    if (used > b->n || used == 0)
        used = b->n;
    for (i = 0; i < used; i++) {
        if (cw_spool_remove(s->spool, b->items[i].seq) != CW_OK) {
            /* logged; at worst it is delivered again after a restart */
        }
    }
    cw_slot_count(s, CW_NOTIF_DELIVERED, used);
    w->backoff = 0;
    w->rejected_seq = 0;
    w->solo = false;
    if (since != 0) {
        char d[32];

        cw_log(CW_LOG_INFO, "relay", "delivery recovered", "receiver", r->c.name, "failing_for",
               cw_duration_format(now - since, d, sizeof(d)), (char *)NULL);
    }
    if (cw_log_enabled(CW_LOG_DEBUG)) {
        char u[24];

        snprintf(u, sizeof(u), "%zu", used);
        cw_log(CW_LOG_DEBUG, "relay", "delivered", "receiver", r->c.name, "notifications", u,
               (char *)NULL);
    }
}

/* hand_to_fallback() copies every queued notification of 'r' that has not
 * been copied yet (up to FALLBACK_BATCH per call) to its fallback's spool. */
static void hand_to_fallback(struct cw_relay_receiver *r)
{
    struct cw_slot *fs = r->fallback->run.slot;
    struct cw_spool_item *items;
    size_t i, n, copied = 0;

    items = calloc(FALLBACK_BATCH, sizeof(*items));
    if (items == NULL)
        return;
    n = cw_spool_peek(r->run.slot->spool, FALLBACK_BATCH, items);
    for (i = 0; i < n; i++) {
        enum cw_spool_outcome o;

        if (items[i].fell_back)
            continue;
        if (cw_spool_put(fs->spool, items[i].body, items[i].len, items[i].key, &o) != CW_OK)
            continue; /* logged; tried again after the next failure */
        cw_spool_mark_fallback(r->run.slot->spool, items[i].seq);
        cw_slot_count(r->run.slot, CW_NOTIF_FALLBACK, 1);
        cw_slot_count(fs,
                      o == CW_SPOOL_ADDED       ? CW_NOTIF_RECEIVED
                      : o == CW_SPOOL_DUPLICATE ? CW_NOTIF_DUPLICATE
                                                : CW_NOTIF_REJECTED,
                      1);
        copied++;
    }
    cw_spool_items_free(items, n);
    free(items);
    if (copied > 0) {
        char c[24];

        snprintf(c, sizeof(c), "%zu", copied);
        cw_log(CW_LOG_WARN, "relay", "notifications handed to the fallback receiver", "receiver",
               r->c.name, "fallback", r->fallback->c.name, "notifications", c, (char *)NULL);
    }
}

/* jittered() returns 75..125 % of 'step'. */
static cw_duration jittered(struct worker *w, cw_duration step)
{
    return step / 4 * 3 +
           (cw_duration)((double)step / 2 * ((double)rand_r(&w->seed) / (double)RAND_MAX));
}

/* rejected() handles an answer no retry of the same message can change (a
 * 4xx, a message that cannot be built). The receiver itself is fine, so
 * the backoff and the failing time are left alone. A merged message is
 * retried alone first, so that the rejection is the head entry's own; the
 * head then gets dead_letter_after attempts in all, retry_initial apart,
 * and goes to the dead-letter directory, logged once, and the queue moves
 * on. Returns the delay before the next attempt. */
static cw_duration rejected(struct worker *w, const struct batch *b, size_t used,
                            const struct cw_deliver_info *info)
{
    struct cw_relay_receiver *r = w->r;
    struct cw_slot *s = r->run.slot;
    char name[96], n[24];

    if (used > 1) {
        w->solo = true;
        return jittered(w, r->c.retry_initial);
    }
    if (w->rejected_seq != b->items[0].seq) {
        w->rejected_seq = b->items[0].seq;
        w->rejections = 0;
    }
    w->rejections++;
    if (w->rejections < r->c.dead_letter_after) {
        cw_log(CW_LOG_DEBUG, "relay", "notification rejected, will retry", "receiver", r->c.name,
               "err", info->detail, (char *)NULL);
        return jittered(w, r->c.retry_initial);
    }
    snprintf(n, sizeof(n), "%lld", (long long)w->rejections);
    if (cw_spool_bury(s->spool, b->items[0].seq, name, sizeof(name)) != CW_OK)
        return jittered(w, r->c.retry_max); /* logged; stays queued */
    cw_slot_count(s, CW_NOTIF_DEAD, 1);
    w->rejected_seq = 0;
    w->solo = false;
    cw_log(CW_LOG_WARN, "relay", "notification moved to the dead-letter directory", "receiver",
           r->c.name, "id", name, "attempts", n, "err", info->detail, (char *)NULL);
    return 0;
}

/* failed() handles a failure a retry may fix: the backoff doubles up to
 * retry_max (at least what a throttling receiver asked for), the first
 * failure of a run is logged, and after fallback_after the queue is copied
 * to the fallback receiver. Returns the delay before the next attempt. */
static cw_duration failed(struct worker *w, enum cw_deliver_result res,
                          const struct cw_deliver_info *info, cw_mono now)
{
    struct cw_relay_receiver *r = w->r;
    struct cw_slot *s = r->run.slot;
    long long zero = 0;
    cw_duration delay;

    w->backoff = w->backoff == 0 ? r->c.retry_initial : w->backoff * 2;
    if (w->backoff > r->c.retry_max)
        w->backoff = r->c.retry_max;
    delay = jittered(w, w->backoff);
    if (res == CW_DELIVER_THROTTLED && delay < info->retry_after)
        delay = info->retry_after;
    if (atomic_compare_exchange_strong(&s->failing_since, &zero, (long long)now)) {
        char d[32];

        cw_log(CW_LOG_WARN, "relay", "delivery failing, will retry", "receiver", r->c.name, "kind",
               r->kind->name, "err", info->detail, "retry_in",
               cw_duration_format(delay, d, sizeof(d)), (char *)NULL);
    } else {
        cw_log(CW_LOG_DEBUG, "relay", "delivery failed again", "receiver", r->c.name, "err",
               info->detail, (char *)NULL);
    }
    if (r->fallback != NULL && r->fallback->run.slot != NULL &&
        now - atomic_load(&s->failing_since) >= r->c.fallback_after)
        hand_to_fallback(r);
    return delay;
}

/* deliver_once() makes one attempt; returns the delay before the next one. */
static cw_duration deliver_once(struct worker *w)
{
    struct cw_relay_receiver *r = w->r;
    struct cw_deliver_info info;
    struct batch b;
    enum cw_deliver_result res;
    cw_mono now = cw_now();
    cw_duration wait, delay = 0;
    size_t tokens, used;

    wait = rate_wait(w, now, &tokens);
    if (wait > 0)
        return wait;
    batch_take(w, merge_max(w, tokens), &b);
    if (b.n == 0)
        return 0;
    res = attempt(w, &b, &used, &info, &now);
    if (res == CW_DELIVER_OK) {
        delivered(w, &b, used, now);
    } else if (!atomic_load(&r->run.stop)) { /* else aborted by a shutdown, not a failure */
        cw_slot_count(r->run.slot, CW_NOTIF_FAILED, 1);
        if (res == CW_DELIVER_REJECTED)
            delay = rejected(w, &b, used, &info);
        else
            delay = failed(w, res, &info, now);
    }
    batch_free(&b);
    return delay;
}

static void *worker_main(void *arg)
{
    struct cw_relay_receiver *r = arg;
    struct worker w;
    cw_mono next = 0;

    memset(&w, 0, sizeof(w));
    w.r = r;
    w.seed = (unsigned)cw_now() ^ (unsigned)(uintptr_t)r;
    if (r->caps.rate_limit > 0) {
        w.sent = calloc(r->caps.rate_limit, sizeof(*w.sent));
        if (w.sent == NULL) {
            cw_log(CW_LOG_ERROR, "relay", "out of memory in a delivery thread", "receiver",
                   r->c.name, (char *)NULL);
            return NULL;
        }
    }
    while (!atomic_load(&r->run.stop)) {
        cw_duration d;

        if (!cw_spool_wait(r->run.slot->spool, next, &r->run.stop))
            continue;
        d = deliver_once(&w);
        next = cw_now() + d;
    }
    free(w.sent);
    return NULL;
}

/* ---- a configuration's threads ---------------------------------------------- */

int cw_delivery_attach(struct cw_slots *slots, struct cw_relay_config *cfg, char *why,
                       size_t whylen)
{
    size_t i;

    for (i = 0; i < cfg->nrecv; i++) {
        cfg->recv[i].run.slot = slot_get(slots, cfg, cfg->recv[i].c.name, why, whylen);
        if (cfg->recv[i].run.slot == NULL)
            return CW_EIO;
    }
    return CW_OK;
}

void cw_delivery_rescan(struct cw_relay_config *cfg)
{
    size_t i;

    for (i = 0; i < cfg->nrecv; i++) {
        size_t added = cw_spool_rescan(cfg->recv[i].run.slot->spool);
        char n[24];

        if (added == 0)
            continue;
        snprintf(n, sizeof(n), "%zu", added);
        cw_log(CW_LOG_INFO, "spool", "queued entries found in the spool directory", "receiver",
               cfg->recv[i].c.name, "entries", n, (char *)NULL);
    }
}

int cw_delivery_start(struct cw_relay_config *cfg, char *why, size_t whylen)
{
    size_t i;

    for (i = 0; i < cfg->nrecv; i++) {
        struct cw_relay_receiver *r = &cfg->recv[i];

        atomic_store(&r->run.stop, false);
        if (pthread_create(&r->run.thread, NULL, worker_main, r) != 0) {
            snprintf(why, whylen, "cannot start a delivery thread");
            return CW_EIO;
        }
        r->run.started = true;
    }
    return CW_OK;
}

void cw_delivery_stop(struct cw_relay_config *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->nrecv; i++) {
        atomic_store(&cfg->recv[i].run.stop, true);
        if (cfg->recv[i].run.slot != NULL)
            cw_spool_kick(cfg->recv[i].run.slot->spool);
    }
    for (i = 0; i < cfg->nrecv; i++) {
        if (cfg->recv[i].run.started)
            pthread_join(cfg->recv[i].run.thread, NULL);
        cfg->recv[i].run.started = false;
    }
}
