/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sched.c - the scheduler and the registry: intervals, skipped
 * overlapping runs, a hanging check that delays nothing else, the watchdog's
 * timeout, readiness, and series that vanish when a reload removes a check.
 *
 * The kinds here are collectors written for the test: "tick" counts its
 * runs, "nap" sleeps for its "sleep" option (to play a slow or hanging
 * target). Tolerances are generous: these tests check behaviour, not speed.
 */
#include "exporter/check.h"
#include "exporter/core/buf.h"
#include "exporter/core/render.h"
#include "exporter/registry.h"
#include "exporter/scheduler.h"
#include "exporter/settings.h"

#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tick_state {
    char *target;
    atomic_int runs;
};

struct nap_state {
    char *target;
    cw_duration sleep;
    atomic_int runs;
};

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
    return cw_opts_apply(nap_opts, st, n, cw_check_common_keys, d);
}

static const char *nap_target(const void *st)
{
    return ((const struct nap_state *)st)->target;
}

static void nap_run(void *st, struct cw_run *run)
{
    struct nap_state *ns = st;
    struct timespec ts = {(time_t)(ns->sleep / 1000000000), (long)(ns->sleep % 1000000000)};

    (void)run;
    atomic_fetch_add(&ns->runs, 1);
    nanosleep(&ts, NULL);
}

static void nap_release(void *st)
{
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

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static char *render(struct cw_registry *r)
{
    struct cw_buf b;

    cw_buf_init(&b, 1 << 24);
    ck_assert_int_eq(cw_registry_render(r, CW_FMT_TEXT, false, &b), CW_OK);
    return cw_buf_take(&b, NULL);
}

#define HOSTLESS "host: {enabled: false}\n"

START_TEST(test_sched_runs_each_check_at_its_interval)
{
    struct cw_settings *s = load(HOSTLESS "services:\n  - name: a\n    checks:\n"
                                          "      - tick: {target: t1, interval: 100ms}\n");
    struct cw_sched *sc = cw_sched_new();
    int runs;

    cw_sched_apply(sc, s);
    sleep_ms(1150);
    runs = atomic_load(&((struct tick_state *)s->inst[0]->state)->runs);
    /* The first run comes within 100 ms, then one every 100 ms. */
    ck_assert_int_ge(runs, 8);
    ck_assert_int_le(runs, 13);
    ck_assert(cw_sched_free(sc, CW_S(1)));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_sched_skips_overlapping_run)
{
    struct cw_settings *s = load(
        HOSTLESS "services:\n  - name: a\n    checks:\n"
                 "      - nap: {target: slow, interval: 100ms, timeout: 100ms, sleep: 450ms}\n");
    struct cw_sched *sc = cw_sched_new();
    struct cw_instance *in = s->inst[0];
    uint64_t skipped;
    int runs;

    cw_sched_apply(sc, s);
    sleep_ms(1000);
    pthread_mutex_lock(&in->lock);
    skipped = in->skipped;
    pthread_mutex_unlock(&in->lock);
    runs = atomic_load(&((struct nap_state *)in->state)->runs);
    /* Never two runs at once: about two or three runs, the other ticks skipped. */
    ck_assert_int_le(runs, 3);
    ck_assert_uint_ge(skipped, 5);
    ck_assert(cw_sched_free(sc, CW_S(2)));
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
    struct cw_sched *sc = cw_sched_new();
    int runs;

    cw_sched_apply(sc, s);
    sleep_ms(1150);
    /* Three workers are stuck in "nap"; the pool grew and "tick" kept its pace. */
    runs = atomic_load(&((struct tick_state *)s->inst[3]->state)->runs);
    ck_assert_int_ge(runs, 8);
    ck_assert(!cw_sched_free(sc, CW_MS(100))); /* the naps are still asleep */
    /* A second call waits for the naps to wake up and frees everything. */
    ck_assert(cw_sched_free(sc, CW_S(5)));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_sched_watchdog_publishes_timeout_for_stuck_run)
{
    struct cw_settings *s = load(
        HOSTLESS "services:\n  - name: a\n    checks:\n"
                 "      - nap: {target: stuck, interval: 10s, timeout: 200ms, sleep: 2500ms}\n");
    struct cw_sched *sc = cw_sched_new();
    struct cw_registry *r = cw_registry_new(sc);
    char *text;

    cw_registry_set(r, s);
    cw_sched_apply(sc, s);
    ck_assert(!cw_sched_first_round_done(sc));
    sleep_ms(2200); /* deadline 0.2 s + watchdog 1 s + first phase < 1 s */
    text = render(r);
    ck_assert_msg(strstr(text, "connwatch_check_success{check=\"nap\",service=\"a\","
                               "target=\"stuck\"} 0\n") != NULL,
                  "%s", text);
    ck_assert_ptr_nonnull(strstr(text, "connwatch_check_failure_info{check=\"nap\",service=\"a\","
                                       "target=\"stuck\",reason=\"timeout\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "connwatch_check_failures_total{check=\"nap\",service=\"a\","
                                       "target=\"stuck\",reason=\"timeout\"} 1\n"));
    free(text);
    ck_assert(cw_sched_first_round_done(sc));
    sleep_ms(1500); /* let the nap return: its late result must not count twice */
    text = render(r);
    ck_assert_ptr_nonnull(strstr(text, "connwatch_check_failures_total{check=\"nap\",service=\"a\","
                                       "target=\"stuck\",reason=\"timeout\"} 1\n"));
    free(text);
    ck_assert(cw_sched_free(sc, CW_S(1)));
    cw_registry_free(r);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_registry_renders_core_series_for_each_check)
{
    struct cw_settings *s =
        load(HOSTLESS "services:\n  - name: inv\n    labels: {env: prod}\n"
                      "    checks:\n      - tick: {target: t1, interval: 1s}\n");
    struct cw_sched *sc = cw_sched_new();
    struct cw_registry *r = cw_registry_new(sc);
    char *text;

    cw_registry_set(r, s);
    cw_registry_reload_result(r, true);
    cw_sched_apply(sc, s);
    sleep_ms(1100);
    ck_assert(cw_sched_first_round_done(sc));
    text = render(r);
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
    ck_assert(cw_sched_free(sc, CW_S(1)));
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
    struct cw_sched *sc = cw_sched_new();
    struct cw_registry *r = cw_registry_new(sc);
    char *text;

    cw_registry_set(r, a);
    cw_sched_apply(sc, a);
    sleep_ms(400);
    text = render(r);
    ck_assert_ptr_nonnull(strstr(text, "target=\"gone\""));
    free(text);

    ck_assert_uint_eq(cw_settings_adopt(b, a), 1);
    cw_sched_apply(sc, b);
    cw_registry_set(r, b);
    text = render(r);
    ck_assert_ptr_null(strstr(text, "target=\"gone\""));
    ck_assert_ptr_nonnull(strstr(text, "target=\"keep\""));
    free(text);
    ck_assert(cw_sched_free(sc, CW_S(1)));
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
    struct cw_sched *sc = cw_sched_new();
    int before, after;

    cw_sched_apply(sc, a);
    sleep_ms(500);
    before = atomic_load(&((struct tick_state *)a->inst[0]->state)->runs);
    ck_assert_uint_eq(cw_settings_adopt(b, a), 1);
    cw_sched_apply(sc, b);
    sleep_ms(300);
    after = atomic_load(&((struct tick_state *)b->inst[0]->state)->runs);
    ck_assert_ptr_eq(a->inst[0], b->inst[0]);
    ck_assert_int_gt(after, before);
    ck_assert(cw_sched_free(sc, CW_S(1)));
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
