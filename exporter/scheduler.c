/* SPDX-License-Identifier: Apache-2.0 */
/*
 * scheduler.c - per-check timers, worker pool, overlap accounting, watchdog.
 * See scheduler.h for the model.
 *
 * Threads: one scheduler thread (none for a manual scheduler, stepped by
 * its caller); workers, created on demand and detached; callers of
 * cw_sched_apply()/cw_sched_stats() (main, HTTP threads).
 * Time: every decision reads sched_now(), the monotonic clock or the manual
 * clock that cw_sched_step() moves, and runs are executed on that clock.
 * Lock order: s->lock, then an instance's lock (taken by the watchdog and
 * the skip counter). No lock is held while a check runs.
 */
#include "scheduler.h"

#include "core/log.h"
#include "instance.h"
#include "settings.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCHED_MIN_WORKERS  2
#define SCHED_IDLE_EXIT    CW_S(30)
#define SCHED_WATCHDOG     CW_S(1)
#define SCHED_FIRST_SPREAD CW_S(1)

struct cw_sched {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* the scheduler thread: new settings, stop */
    pthread_cond_t work; /* workers: a queued run, stop */
    pthread_cond_t done; /* shutdown: a worker exited; cw_sched_wait_busy(): a run ended */
    pthread_t thread;
    bool thread_started;
    bool stop;
    bool manual;          /* no thread: cw_sched_step() moves the clock */
    atomic_llong now_set; /* manual clock (cw_mono), read by workers without the lock */

    struct cw_settings *settings; /* owned reference: what is scheduled */
    struct cw_settings *first;    /* owned reference: the first applied, for readiness */
    bool ready;

    struct cw_instance **heap; /* borrowed from 'settings'; ordered by sched.next_due */
    size_t nheap;

    struct cw_instance **queue; /* owned references; ring buffer */
    size_t qhead, qlen, qcap;

    struct cw_instance **running; /* owned references of runs in flight */
    size_t nrunning, caprunning;

    size_t workers, busy, idle;
    size_t max_workers;
};

/* ---- heap on next_due ---------------------------------------------------- */

static void heap_swap(struct cw_sched *s, size_t a, size_t b)
{
    struct cw_instance *t = s->heap[a];

    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->sched.heap_idx = a;
    s->heap[b]->sched.heap_idx = b;
}

static void heap_down(struct cw_sched *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < s->nheap && s->heap[l]->sched.next_due < s->heap[m]->sched.next_due)
            m = l;
        if (r < s->nheap && s->heap[r]->sched.next_due < s->heap[m]->sched.next_due)
            m = r;
        if (m == i)
            return;
        heap_swap(s, i, m);
        i = m;
    }
}

static void heap_build(struct cw_sched *s)
{
    size_t i;

    for (i = 0; i < s->nheap; i++)
        s->heap[i]->sched.heap_idx = i;
    for (i = s->nheap / 2; i > 0; i--)
        heap_down(s, i - 1);
}

/* ---- clock --------------------------------------------------------------- */

static cw_mono sched_now(void *ctx)
{
    struct cw_sched *s = ctx;

    return s->manual ? (cw_mono)atomic_load(&s->now_set) : cw_now();
}

/* ---- workers ------------------------------------------------------------- */

static void running_remove(struct cw_sched *s, struct cw_instance *in)
{
    size_t i;

    for (i = 0; i < s->nrunning; i++) {
        if (s->running[i] == in) {
            s->running[i] = s->running[--s->nrunning];
            return;
        }
    }
}

static void deadline_after(struct timespec *ts, cw_duration d)
{
    cw_mono t = cw_now() + d;

    ts->tv_sec = t / 1000000000;
    ts->tv_nsec = t % 1000000000;
}

static void *worker_main(void *arg)
{
    struct cw_sched *s = arg;

    pthread_mutex_lock(&s->lock);
    for (;;) {
        struct cw_instance *in;

        while (s->qlen == 0 && !s->stop) {
            struct timespec ts;
            int rc;

            deadline_after(&ts, SCHED_IDLE_EXIT);
            s->idle++;
            rc = pthread_cond_timedwait(&s->work, &s->lock, &ts);
            s->idle--;
            if (rc == ETIMEDOUT && s->qlen == 0 && s->workers > SCHED_MIN_WORKERS)
                goto out_exit;
        }
        if (s->stop)
            break;
        in = s->queue[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        s->busy++;
        pthread_mutex_unlock(&s->lock);

        cw_instance_execute_clock(in, sched_now, s);

        pthread_mutex_lock(&s->lock);
        in->sched.running = false;
        running_remove(s, in);
        s->busy--;
        pthread_cond_broadcast(&s->done);
        pthread_mutex_unlock(&s->lock);
        cw_instance_unref(in); /* may run kind->release(): no lock held */
        pthread_mutex_lock(&s->lock);
    }
out_exit:
    s->workers--;
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* spawn_worker() starts one detached worker; called with s->lock held. */
static void spawn_worker(struct cw_sched *s)
{
    pthread_attr_t attr;
    pthread_t t;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    rc = pthread_create(&t, &attr, worker_main, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        char errbuf[128];

        cw_log(CW_LOG_ERROR, "sched", "cannot start worker", "err",
               cw_strerror_r(rc, errbuf, sizeof(errbuf)), (char *)NULL);
        return;
    }
    s->workers++;
}

static int enqueue(struct cw_sched *s, struct cw_instance *in)
{
    if (s->qlen == s->qcap) {
        size_t cap = s->qcap != 0 ? s->qcap * 2 : 64;
        struct cw_instance **q = malloc(cap * sizeof(*q));
        size_t i;

        if (q == NULL)
            return CW_ENOMEM;
        for (i = 0; i < s->qlen; i++)
            q[i] = s->queue[(s->qhead + i) % s->qcap];
        free(s->queue);
        s->queue = q;
        s->qcap = cap;
        s->qhead = 0;
    }
    if (s->nrunning == s->caprunning) {
        size_t cap = s->caprunning != 0 ? s->caprunning * 2 : 64;
        struct cw_instance **r = realloc(s->running, cap * sizeof(*r));

        if (r == NULL)
            return CW_ENOMEM;
        s->running = r;
        s->caprunning = cap;
    }
    s->queue[(s->qhead + s->qlen) % s->qcap] = cw_instance_ref(in);
    s->qlen++;
    s->running[s->nrunning++] = in;
    return CW_OK;
}

/* ---- one step of the scheduler -------------------------------------------- */

static cw_duration first_spread(const struct cw_instance *in)
{
    return in->interval < SCHED_FIRST_SPREAD ? in->interval : SCHED_FIRST_SPREAD;
}

/* advance() moves an instance to its next tick. The first run happens within
 * a second (readiness comes quickly); later runs sit on a grid offset by the
 * phase across the whole interval, so checks do not fire in lockstep. */
static void advance(struct cw_instance *in, cw_mono now)
{
    struct cw_sched_entry *e = &in->sched;

    if (!e->scheduled_once) {
        e->scheduled_once = true;
        e->next_due +=
            in->interval + (cw_duration)(in->phase * (double)(in->interval - first_spread(in)));
    } else {
        e->next_due += in->interval;
    }
    if (e->next_due <= now) {
        /* We fell behind (suspend, overload): skip to the next tick on the grid. */
        e->next_due += ((now - e->next_due) / in->interval + 1) * in->interval;
    }
}

/* step() does everything due at 'now' and returns when it wants to run
 * again. Called with s->lock held. */
static cw_mono step(struct cw_sched *s, cw_mono now)
{
    cw_mono wake_at = now + CW_S(60);
    cw_mono horizon = now + CW_SCHED_BATCH;
    size_t i;

    while (s->nheap != 0 && s->heap[0]->sched.next_due <= horizon) {
        struct cw_instance *in = s->heap[0];

        if (in->sched.running) {
            cw_instance_count_skip(in);
            cw_log(CW_LOG_DEBUG, "sched", "run skipped", "check", in->kind->name, "service",
                   in->service, "target", in->target, (char *)NULL);
        } else if (enqueue(s, in) == CW_OK) {
            in->sched.running = true;
            in->sched.run_started = now;
        }
        advance(in, now);
        heap_down(s, 0);
    }
    if (s->qlen > s->idle && s->workers < s->max_workers) {
        size_t want = s->qlen - s->idle;

        while (want-- > 0 && s->workers < s->max_workers)
            spawn_worker(s);
    }
    /* Wake one idle worker per queued run, not every idle worker. */
    for (i = 0; i < s->qlen && i < s->idle; i++)
        pthread_cond_signal(&s->work);

    for (i = 0; i < s->nrunning; i++) {
        struct cw_instance *in = s->running[i];
        cw_mono limit = in->sched.run_started + in->timeout + SCHED_WATCHDOG;

        if (cw_instance_overran(in))
            continue;
        if (now >= limit) {
            cw_instance_publish_overrun(in, now - in->sched.run_started, now);
            continue;
        }
        if (limit < wake_at)
            wake_at = limit;
    }
    if (s->nheap != 0 && s->heap[0]->sched.next_due < wake_at)
        wake_at = s->heap[0]->sched.next_due;
    return wake_at;
}

static void *sched_main(void *arg)
{
    struct cw_sched *s = arg;

    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        cw_mono wake_at = step(s, cw_now());
        struct timespec ts;

        ts.tv_sec = wake_at / 1000000000;
        ts.tv_nsec = wake_at % 1000000000;
        pthread_cond_timedwait(&s->wake, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

cw_mono cw_sched_step(struct cw_sched *s, cw_mono now)
{
    cw_mono wake_at;

    if (!s->manual)
        return now; /* the scheduler thread steps itself */
    pthread_mutex_lock(&s->lock);
    if (now > (cw_mono)atomic_load(&s->now_set))
        atomic_store(&s->now_set, (long long)now);
    wake_at = step(s, (cw_mono)atomic_load(&s->now_set));
    pthread_mutex_unlock(&s->lock);
    return wake_at;
}

bool cw_sched_wait_busy(struct cw_sched *s, size_t busy, cw_duration timeout)
{
    struct timespec ts;
    bool ok;

    deadline_after(&ts, timeout);
    pthread_mutex_lock(&s->lock);
    while (!(s->qlen == 0 && s->busy <= busy)) {
        if (pthread_cond_timedwait(&s->done, &s->lock, &ts) == ETIMEDOUT)
            break;
    }
    ok = s->qlen == 0 && s->busy <= busy;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static struct cw_sched *sched_new(bool manual, cw_mono now)
{
    struct cw_sched *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;

    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->work, &ca);
    pthread_cond_init(&s->done, &ca);
    pthread_condattr_destroy(&ca);
    s->max_workers = 64;
    s->manual = manual;
    atomic_init(&s->now_set, (long long)now);
    if (!manual) {
        if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
            cw_log(CW_LOG_ERROR, "sched", "cannot start scheduler thread", (char *)NULL);
            pthread_cond_destroy(&s->wake);
            pthread_cond_destroy(&s->work);
            pthread_cond_destroy(&s->done);
            pthread_mutex_destroy(&s->lock);
            free(s);
            return NULL;
        }
        s->thread_started = true;
    }
    pthread_mutex_lock(&s->lock);
    while (s->workers < SCHED_MIN_WORKERS)
        spawn_worker(s);
    pthread_mutex_unlock(&s->lock);
    return s;
}

struct cw_sched *cw_sched_new(void)
{
    return sched_new(false, 0);
}

struct cw_sched *cw_sched_new_manual(cw_mono now)
{
    return sched_new(true, now);
}

void cw_sched_apply(struct cw_sched *s, struct cw_settings *settings)
{
    struct cw_instance **heap;
    struct cw_settings *old;
    cw_mono now = sched_now(s);
    size_t i;

    heap = malloc((settings->ninst != 0 ? settings->ninst : 1) * sizeof(*heap));
    if (heap == NULL) {
        cw_log(CW_LOG_ERROR, "sched", "cannot apply configuration", "err", cw_strerror(CW_ENOMEM),
               (char *)NULL);
        return;
    }
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < settings->ninst; i++) {
        struct cw_instance *in = settings->inst[i];

        if (!in->sched.placed) {
            in->sched.placed = true;
            in->sched.next_due = now + (cw_duration)(in->phase * (double)first_spread(in));
        }
        heap[i] = in;
    }
    free(s->heap);
    s->heap = heap;
    s->nheap = settings->ninst;
    heap_build(s);
    s->max_workers = (size_t)settings->max_concurrent;
    if (s->max_workers < SCHED_MIN_WORKERS)
        s->max_workers = SCHED_MIN_WORKERS;
    old = s->settings;
    s->settings = cw_settings_ref(settings);
    if (s->first == NULL)
        s->first = cw_settings_ref(settings);
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    cw_settings_unref(old);
}

bool cw_sched_first_round_done(struct cw_sched *s)
{
    struct cw_settings *first;
    bool ready;
    size_t i;

    pthread_mutex_lock(&s->lock);
    ready = s->ready;
    first = cw_settings_ref(s->first);
    pthread_mutex_unlock(&s->lock);
    if (ready)
        goto out;
    if (first == NULL)
        return false;
    ready = true;
    for (i = 0; i < first->ninst && ready; i++)
        ready = cw_instance_has_run(first->inst[i]);
    if (ready) {
        pthread_mutex_lock(&s->lock);
        s->ready = true;
        pthread_mutex_unlock(&s->lock);
    }
out:
    cw_settings_unref(first);
    return ready;
}

void cw_sched_stats(struct cw_sched *s, size_t *workers, size_t *busy, size_t *queued)
{
    pthread_mutex_lock(&s->lock);
    *workers = s->workers;
    *busy = s->busy;
    *queued = s->qlen;
    pthread_mutex_unlock(&s->lock);
}

bool cw_sched_free(struct cw_sched *s, cw_duration grace)
{
    struct timespec ts;
    bool clean;
    size_t i;

    if (s == NULL)
        return true;
    pthread_mutex_lock(&s->lock);
    if (s->stop) {
        /* A second call after a timed-out first one: only wait again. */
        pthread_mutex_unlock(&s->lock);
        goto wait;
    }
    s->stop = true;
    /* Queued runs that have not started are dropped. */
    for (i = 0; i < s->qlen; i++) {
        struct cw_instance *in = s->queue[(s->qhead + i) % s->qcap];

        in->sched.running = false;
        running_remove(s, in);
        cw_instance_unref(in);
    }
    s->qlen = 0;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->work);
    pthread_mutex_unlock(&s->lock);
    if (s->thread_started)
        pthread_join(s->thread, NULL);
    s->thread_started = false;

wait:
    deadline_after(&ts, grace);
    pthread_mutex_lock(&s->lock);
    while (s->workers != 0) {
        if (pthread_cond_timedwait(&s->done, &s->lock, &ts) == ETIMEDOUT)
            break;
    }
    clean = s->workers == 0;
    pthread_mutex_unlock(&s->lock);
    if (!clean) {
        cw_log(CW_LOG_WARN, "sched", "checks still running at exit", (char *)NULL);
        return false;
    }
    free(s->heap);
    free(s->queue);
    free(s->running);
    cw_settings_unref(s->settings);
    cw_settings_unref(s->first);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->work);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return true;
}
