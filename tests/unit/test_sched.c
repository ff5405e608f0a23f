/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sched.c - the scheduler and the registry: intervals, skipped
 * overlapping runs, a hanging check that delays nothing else, the watchdog's
 * timeout, readiness, and series that vanish when a reload removes a check.
 *
 * Time is the scheduler's manual clock (cw_sched_new_manual()): the test
 * moves it with cw_sched_step() from one due time to the next, and after
 * each step waits until every queued run has started and every busy worker
 * is either done or asleep in "nap". So the counts are exact, whatever the
 * load of the machine, and nothing sleeps.
 *
 * The kinds here are collectors written for the test: "tick" counts its
 * runs, "nap" sleeps for its "sleep" option on the test's clock (it returns
 * once the test moved the clock past its start plus "sleep"), to play a slow
 * or hanging target.
 */
#include "exporter/check.h"
#include "exporter/core/buf.h"
#include "exporter/core/render.h"
#include "exporter/kinds.h"
#include "exporter/live.h"
#include "exporter/registry.h"
#include "exporter/scheduler.h"
#include "exporter/settings.h"

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define T0       CW_S(1000) /* the manual clock's start */
#define MAX_NAPS 8

struct tick_state {
    char *target;
    atomic_int runs;
};

struct nap_state {
    char *target;
    cw_duration sleep;
    atomic_int runs;
    bool asleep;     /* under nap_lock */
    cw_mono wake_at; /* under nap_lock: test clock at which it returns */
};

/* The test's clock and the naps asleep on it. */
static atomic_llong test_now = T0;
static pthread_mutex_t nap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nap_cond = PTHREAD_COND_INITIALIZER;
static struct nap_state *naps[MAX_NAPS]; /* borrowed: configured naps */
static size_t nnaps;
static bool naps_released; /* teardown: every nap returns now */

static const struct cw_opt tick_opts[] = {
    CW_OPT("target", CW_OPT_T_STRING, struct tick_state, target, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT_END,
};
static const struct cw_opt nap_opts[] = {
    CW_OPT("target", CW_OPT_T_STRING, struct nap_state, target, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("sleep", CW_OPT_T_DURATION, struct nap_state, sleep, "0", 0, 0, 0),
    CW_OPT_END,
};

static const struct cw_desc desc_tick = {
    .name = "test_tick_runs_total",
    .help = "Runs of the tick check.",
    .type = CW_COUNTER,
};

static int tick_configure(void *st, const struct cw_node *n, const struct cw_check_info *i,
                          struct cw_diag *d)
{
    (void)i;
    return cw_opts_apply(tick_opts, st, n, cw_check_common_keys, d);
}

static const char *tick_target(const void *st)
{
    return ((const struct tick_state *)st)->target;
}

static void tick_run(void *st, struct cw_run *run)
{
    struct tick_state *ts = st;
    int n = atomic_fetch_add(&ts->runs, 1) + 1;

    cw_emit(run, &desc_tick, n, NULL);
}

static void tick_release(void *st)
{
    cw_opts_release(tick_opts, st);
}

static int nap_configure(void *st, const struct cw_node *n, const struct cw_check_info *i,
                         struct cw_diag *d)
{
    (void)i;
    pthread_mutex_lock(&nap_lock);
    ck_assert_uint_lt(nnaps, MAX_NAPS);
    naps[nnaps++] = st;
    pthread_mutex_unlock(&nap_lock);
    return cw_opts_apply(nap_opts, st, n, cw_check_common_keys, d);
}

static const char *nap_target(const void *st)
{
    return ((const struct nap_state *)st)->target;
}

static void nap_run(void *st, struct cw_run *run)
{
    struct nap_state *ns = st;

    atomic_fetch_add(&ns->runs, 1);
    pthread_mutex_lock(&nap_lock);
    /* The run started on the scheduler's clock at its deadline minus its timeout. */
    ns->wake_at = cw_run_deadline(run) - cw_run_info(run)->timeout + ns->sleep;
    ns->asleep = true;
    while (!naps_released && (cw_mono)atomic_load(&test_now) < ns->wake_at)
        pthread_cond_wait(&nap_cond, &nap_lock);
    ns->asleep = false;
    pthread_mutex_unlock(&nap_lock);
}

static void nap_release(void *st)
{
    size_t i;

    pthread_mutex_lock(&nap_lock);
    for (i = 0; i < nnaps; i++) {
        if (naps[i] == st)
            naps[i] = naps[--nnaps];
    }
    pthread_mutex_unlock(&nap_lock);
    cw_opts_release(nap_opts, st);
}

static const struct cw_check_kind kind_tick = {
    .name = "tick",
    .state_size = sizeof(struct tick_state),
    .reasons = 1u << CW_REASON_TIMEOUT,
    .configure = tick_configure,
    .target = tick_target,
    .run = tick_run,
    .release = tick_release,
};
static const struct cw_check_kind kind_nap = {
    .name = "nap",
    .state_size = sizeof(struct nap_state),
    .configure = nap_configure,
    .target = nap_target,
    .run = nap_run,
    .release = nap_release,
};

const struct cw_check_kind *const cw_check_kinds[] = {&kind_nap, &kind_tick, NULL};

static struct cw_settings *load(const char *yaml)
{
    struct cw_diag d;
    struct cw_settings *s;

    cw_diag_init(&d);
    s = cw_settings_load_text("t.yml", yaml, &d);
    ck_assert_msg(s != NULL, "%s", d.n ? d.entries[0].text : "?");
    cw_diag_reset(&d);
    return s;
}

/* naps_asleep() counts the naps asleep that stay so at the test's clock
 * (one woken by set_now() but not yet running again does not count). */
static size_t naps_asleep(void)
{
    cw_mono now = (cw_mono)atomic_load(&test_now);
    size_t i, n = 0;

    pthread_mutex_lock(&nap_lock);
    for (i = 0; i < nnaps; i++)
        n += naps[i]->asleep && naps[i]->wake_at > now && !naps_released;
    pthread_mutex_unlock(&nap_lock);
    return n;
}

/* next_nap_wake() returns the earliest test time at which a nap returns. */
static cw_mono next_nap_wake(void)
{
    cw_mono t = INT64_MAX;
    size_t i;

    pthread_mutex_lock(&nap_lock);
    for (i = 0; i < nnaps; i++) {
        if (naps[i]->asleep && naps[i]->wake_at < t)
            t = naps[i]->wake_at;
    }
    pthread_mutex_unlock(&nap_lock);
    return t;
}

/* settle() waits until nothing is queued and every busy worker is a nap
 * asleep on the test's clock (whose count only grows while we wait: a
 * retry covers a nap falling asleep during the wait). Waiting, not timing:
 * the bound only stops a hung test. */
static void settle(struct cw_sched *sc)
{
    int tries;

    for (tries = 0; tries < 1000; tries++) {
        size_t n = naps_asleep();

        if (cw_sched_wait_busy(sc, n, CW_MS(10)) && naps_asleep() == n)
            return;
    }
    ck_abort_msg("the scheduler's runs did not settle");
}

/* set_now() moves the test's clock, wakes the naps due by then and waits
 * for them to return. */
static void set_now(struct cw_sched *sc, cw_mono now)
{
    pthread_mutex_lock(&nap_lock);
    atomic_store(&test_now, now);
    pthread_cond_broadcast(&nap_cond);
    pthread_mutex_unlock(&nap_lock);
    settle(sc);
}

/* run_to() moves time from the test's clock to 'to', stopping at every time
 * the scheduler or a nap wants. At each time the scheduler steps first (a
 * tick due at the moment a nap returns finds its run still going), then the
 * naps due return, their runs ending at that time. */
static void run_to(struct cw_sched *sc, cw_mono to)
{
    cw_mono now = (cw_mono)atomic_load(&test_now);

    for (;;) {
        cw_mono next = cw_sched_step(sc, now);
        cw_mono nap;

        settle(sc);
        set_now(sc, now);
        nap = next_nap_wake();
        if (nap < next)
            next = nap;
        if (next > to)
            break;
        ck_assert_int_gt(next, now);
        now = next;
    }
    if (now < to) {
        cw_sched_step(sc, to);
        settle(sc);
        set_now(sc, to);
    }
}

static struct cw_sched *manual_sched(void)
{
    struct cw_sched *sc;

    atomic_store(&test_now, T0);
    naps_released = false;
    sc = cw_sched_new_manual(T0);
    ck_assert_ptr_nonnull(sc);
    return sc;
}

/* release_naps() lets every nap return (teardown). */
static void release_naps(void)
{
    pthread_mutex_lock(&nap_lock);
    naps_released = true;
    pthread_cond_broadcast(&nap_cond);
    pthread_mutex_unlock(&nap_lock);
}

/* first_due() is when the scheduler first runs 'in' after being applied at
 * T0: within its phase of the first second (or of the interval, if shorter). */
static cw_mono first_due(const struct cw_instance *in)
{
    cw_duration spread = in->interval < CW_S(1) ? in->interval : CW_S(1);

    return T0 + (cw_duration)(in->phase * (double)spread);
}

/* runs_by() is how many runs an instance of 'interval' <= 1 s applied at T0
 * has started by a wake-up at 'at' when each run ends before its next tick:
 * the first at first_due(), then one every interval; a wake-up starts the
 * runs due within CW_SCHED_BATCH. */
static int runs_by(const struct cw_instance *in, cw_mono at)
{
    cw_mono first = first_due(in);

    at += CW_SCHED_BATCH;

    return at < first ? 0 : (int)((at - first) / in->interval) + 1;
}

/* live_for() makes the live configuration that owns 'sc' and a registry
 * that shows its series, as main.c wires them. */
static struct cw_live *live_for(struct cw_sched *sc, struct cw_registry **r)
{
    struct cw_live *live = cw_live_new(sc, NULL, NULL);

    ck_assert_ptr_nonnull(live);
    *r = cw_registry_new();
    ck_assert_ptr_nonnull(*r);
    ck_assert_int_eq(cw_registry_add_self(*r, cw_live_emit, live), CW_OK);
    return live;
}

static char *render(struct cw_registry *r, struct cw_live *live)
{
    struct cw_settings *s = cw_live_settings(live);
    struct cw_buf b;

    cw_buf_init(&b, 1 << 24);
    ck_assert_int_eq(cw_registry_render(r, s, CW_FMT_TEXT, false, &b), CW_OK);
    cw_settings_unref(s);
    return cw_buf_take(&b, NULL);
}

static uint64_t skipped_in(struct cw_registry *r, struct cw_live *live, const char *series)
{
    char *text = render(r, live);
    const char *at = strstr(text, series);
    char *end;
    uint64_t v;

    ck_assert_msg(at != NULL, "%s", text);
    v = strtoull(at + strlen(series), &end, 10);
    ck_assert(*end == '\n');
    free(text);
    return v;
}

#define HOSTLESS "host: {enabled: false}\n"

START_TEST(test_sched_runs_each_check_at_its_interval)
{
    struct cw_settings *s = load(HOSTLESS "services:\n  - name: a\n    checks:\n"
                                          "      - tick: {target: t1, interval: 100ms}\n");
    struct cw_sched *sc = manual_sched();
    struct tick_state *ts = s->inst[0]->state;
    cw_mono first = first_due(s->inst[0]);

    cw_sched_apply(sc, s);
    /* The first run comes within 100 ms (its phase), and not before (a
     * wake-up starts what is due within CW_SCHED_BATCH). */
    ck_assert_int_lt(first, T0 + CW_MS(100));
    ck_assert_int_gt(first, T0 + CW_SCHED_BATCH); /* t1's phase: so the batch is seen */
    {
        run_to(sc, first - CW_SCHED_BATCH - 1);
        ck_assert_int_eq(atomic_load(&ts->runs), 0);
        /* A wake-up CW_SCHED_BATCH before the tick takes the run along. */
        run_to(sc, first - CW_SCHED_BATCH);
        ck_assert_int_eq(atomic_load(&ts->runs), 1);
    }
    run_to(sc, first);
    ck_assert_int_eq(atomic_load(&ts->runs), 1);
    /* Then one every 100 ms: 11 or 12 runs in 1.15 s, by the phase. */
    run_to(sc, T0 + CW_MS(1150));
    ck_assert_int_eq(atomic_load(&ts->runs), runs_by(s->inst[0], T0 + CW_MS(1150)));
    ck_assert_int_ge(atomic_load(&ts->runs), 11);
    ck_assert_int_le(atomic_load(&ts->runs), 12);
    ck_assert(cw_sched_free(sc, CW_S(1)));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_sched_skips_overlapping_run)
{
    struct cw_settings *s = load(
        HOSTLESS "services:\n  - name: a\n    checks:\n"
                 "      - nap: {target: slow, interval: 100ms, timeout: 100ms, sleep: 450ms}\n");
    struct cw_sched *sc = manual_sched();
    struct cw_registry *r;
    struct cw_live *live = live_for(sc, &r);
    struct cw_instance *in = s->inst[0];
    struct nap_state *ns = in->state;
    cw_mono first = first_due(in);
    const char *skipped = "connwatch_check_runs_skipped_total{check=\"nap\",service=\"a\","
                          "target=\"slow\"} ";

    cw_live_set(live, s);
    /* Runs start at first, +500 ms and +1000 ms (the first tick after the
     * previous run returned, 450 ms after its start); the four ticks during
     * each run are skipped. Never two runs at once. */
    run_to(sc, first + CW_MS(1000));
    ck_assert_int_eq(atomic_load(&ns->runs), 3);
    /* Published by the second run, at +950 ms: the ticks of both runs. */
    ck_assert_uint_eq(skipped_in(r, live, skipped), 8);
    run_to(sc, first + CW_MS(1450));
    ck_assert_int_eq(atomic_load(&ns->runs), 3);
    ck_assert_uint_eq(skipped_in(r, live, skipped), 12);
    release_naps();
    ck_assert(cw_live_free(live, CW_S(2)));
    cw_registry_free(r);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_sched_hanging_check_delays_nothing_else)
{
    struct cw_settings *s =
        load(HOSTLESS "services:\n  - name: a\n    checks:\n"
                      "      - nap: {target: h1, interval: 10s, timeout: 100ms, sleep: 3s}\n"
                      "      - nap: {target: h2, interval: 10s, timeout: 100ms, sleep: 3s}\n"
                      "      - nap: {target: h3, interval: 10s, timeout: 100ms, sleep: 3s}\n"
                      "      - tick: {target: fast, interval: 100ms}\n");
    struct cw_sched *sc = manual_sched();
    size_t workers, busy, queued;

    cw_sched_apply(sc, s);
    run_to(sc, T0 + CW_MS(1150));
    /* Three workers are stuck in "nap"; the pool grew and "tick" kept its pace. */
    ck_assert_uint_eq(naps_asleep(), 3);
    cw_sched_stats(sc, &workers, &busy, &queued);
    ck_assert_uint_ge(workers, 4);
    ck_assert_uint_eq(busy, 3);
    ck_assert_uint_eq(queued, 0);
    ck_assert_int_eq(atomic_load(&((struct tick_state *)s->inst[3]->state)->runs),
                     runs_by(s->inst[3], T0 + CW_MS(1150)));
    ck_assert_int_ge(atomic_load(&((struct tick_state *)s->inst[3]->state)->runs), 11);
    ck_assert(!cw_sched_free(sc, CW_MS(100))); /* the naps are still asleep */
    /* A second call waits for the naps to wake up and frees everything. */
    release_naps();
    ck_assert(cw_sched_free(sc, CW_S(5)));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_sched_watchdog_publishes_timeout_for_stuck_run)
{
    struct cw_settings *s = load(
        HOSTLESS "services:\n  - name: a\n    checks:\n"
                 "      - nap: {target: stuck, interval: 10s, timeout: 200ms, sleep: 2500ms}\n");
    struct cw_sched *sc = manual_sched();
    struct cw_registry *r;
    struct cw_live *live = live_for(sc, &r);
    cw_mono first = first_due(s->inst[0]);
    char *text;

    cw_live_set(live, s);
    ck_assert(!cw_sched_first_round_done(sc));
    /* Deadline 0.2 s after the start, the watchdog one second later. */
    run_to(sc, first + CW_MS(1200) - 1);
    ck_assert(!cw_sched_first_round_done(sc));
    run_to(sc, first + CW_MS(1200));
    text = render(r, live);
    ck_assert_msg(strstr(text, "connwatch_check_success{check=\"nap\",service=\"a\","
                               "target=\"stuck\"} 0\n") != NULL,
                  "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "connwatch_check_failure_info{check=\"nap\",service=\"a\","
                                       "target=\"stuck\",reason=\"timeout\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "connwatch_check_failures_total{check=\"nap\",service=\"a\","
                                       "target=\"stuck\",reason=\"timeout\"} 1\n"));
    free(text);
    ck_assert(cw_sched_first_round_done(sc));
    ck_assert_uint_eq(naps_asleep(), 1);
    run_to(sc, first + CW_MS(2500)); /* the nap returns: its late result must not count twice */
    ck_assert_uint_eq(naps_asleep(), 0);
    text = render(r, live);
    ck_assert_ptr_nonnull(strstr(text, "connwatch_check_failures_total{check=\"nap\",service=\"a\","
                                       "target=\"stuck\",reason=\"timeout\"} 1\n"));
    ck_assert_msg(strstr(text, "connwatch_check_duration_seconds{check=\"nap\",service=\"a\","
                               "target=\"stuck\"} 2.5\n") != NULL,
                  "%s", text);
    free(text);
    ck_assert(cw_live_free(live, CW_S(1)));
    cw_registry_free(r);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_registry_renders_core_series_for_each_check)
{
    struct cw_settings *s =
        load(HOSTLESS "services:\n  - name: inv\n    labels: {env: prod}\n"
                      "    checks:\n      - tick: {target: t1, interval: 1s}\n");
    struct cw_sched *sc = manual_sched();
    struct cw_registry *r;
    struct cw_live *live = live_for(sc, &r);
    char *text;

    cw_live_set(live, s);
    run_to(sc, first_due(s->inst[0]));
    ck_assert(cw_sched_first_round_done(sc));
    text = render(r, live);
    ck_assert_msg(strstr(text, "connwatch_check_success{check=\"tick\",service=\"inv\","
                               "target=\"t1\",env=\"prod\"} 1\n") != NULL,
                  "%s", text);
    /* The kind declares "timeout" as a possible reason: it is exported at 0. */
    ck_assert_ptr_nonnull(strstr(text, "connwatch_check_failures_total{check=\"tick\","
                                       "service=\"inv\",target=\"t1\",env=\"prod\","
                                       "reason=\"timeout\"} 0\n"));
    ck_assert_ptr_null(strstr(text, "connwatch_check_failure_info{"));
    ck_assert_ptr_nonnull(strstr(text, "test_tick_runs_total{service=\"inv\",target=\"t1\","
                                       "env=\"prod\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE connwatch_check_runs_skipped_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text, "connwatch_config_last_reload_successful 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "connwatch_build_info{version=\""));
    ck_assert_ptr_nonnull(strstr(text, "process_resident_memory_bytes "));
    free(text);
    ck_assert(cw_live_free(live, CW_S(1)));
    cw_registry_free(r);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_registry_drops_series_of_removed_checks)
{
    struct cw_settings *a = load(HOSTLESS "services:\n  - name: a\n    checks:\n"
                                          "      - tick: {target: keep, interval: 100ms}\n"
                                          "      - tick: {target: gone, interval: 100ms}\n");
    struct cw_settings *b = load(HOSTLESS "services:\n  - name: a\n    checks:\n"
                                          "      - tick: {target: keep, interval: 100ms}\n");
    struct cw_sched *sc = manual_sched();
    struct cw_registry *r;
    struct cw_live *live = live_for(sc, &r);
    char *text;

    cw_live_set(live, a);
    run_to(sc, T0 + CW_MS(400));
    text = render(r, live);
    ck_assert_ptr_nonnull(strstr(text, "target=\"gone\""));
    free(text);

    ck_assert_uint_eq(cw_live_set(live, b), 1);
    text = render(r, live);
    ck_assert_ptr_null(strstr(text, "target=\"gone\""));
    ck_assert_ptr_nonnull(strstr(text, "target=\"keep\""));
    free(text);
    ck_assert(cw_live_free(live, CW_S(1)));
    cw_registry_free(r);
    cw_settings_unref(a);
    cw_settings_unref(b);
}
END_TEST

START_TEST(test_registry_keeps_counters_of_unchanged_checks_across_reload)
{
    struct cw_settings *a = load(HOSTLESS "services:\n  - name: a\n    checks:\n"
                                          "      - tick: {target: keep, interval: 100ms}\n");
    struct cw_settings *b = load(HOSTLESS "services:\n  - name: a\n    checks:\n"
                                          "      - tick: {target: keep, interval: 100ms}\n"
                                          "      - tick: {target: new, interval: 100ms}\n");
    struct cw_sched *sc = manual_sched();
    struct cw_live *live = cw_live_new(sc, NULL, NULL);
    int before, after;

    cw_live_set(live, a);
    run_to(sc, T0 + CW_MS(500));
    before = atomic_load(&((struct tick_state *)a->inst[0]->state)->runs);
    ck_assert_int_eq(before, runs_by(a->inst[0], T0 + CW_MS(500)));
    ck_assert_uint_eq(cw_live_set(live, b), 1);
    run_to(sc, T0 + CW_MS(800));
    after = atomic_load(&((struct tick_state *)b->inst[0]->state)->runs);
    ck_assert_ptr_eq(a->inst[0], b->inst[0]);
    ck_assert_int_gt(after, before);
    /* The kept check kept its grid: the three ticks of (500 ms, 800 ms]. */
    ck_assert_int_eq(after, before + 3);
    ck_assert(cw_live_free(live, CW_S(1)));
    cw_settings_unref(a);
    cw_settings_unref(b);
}
END_TEST

static Suite *sched_suite(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    TCase *tr = tcase_create("registry");

    tcase_set_timeout(tc, 30);
    tcase_set_timeout(tr, 30);
    tcase_add_test(tc, test_sched_runs_each_check_at_its_interval);
    tcase_add_test(tc, test_sched_skips_overlapping_run);
    tcase_add_test(tc, test_sched_hanging_check_delays_nothing_else);
    tcase_add_test(tc, test_sched_watchdog_publishes_timeout_for_stuck_run);
    suite_add_tcase(s, tc);
    tcase_add_test(tr, test_registry_renders_core_series_for_each_check);
    tcase_add_test(tr, test_registry_drops_series_of_removed_checks);
    tcase_add_test(tr, test_registry_keeps_counters_of_unchanged_checks_across_reload);
    suite_add_tcase(s, tr);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sched_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
