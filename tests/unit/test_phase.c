/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_phase.c - check phases spread over the interval.
 *
 * A check's phase (its offset in the interval) comes from a hash of its
 * identity, so it survives restarts and reloads. Fleets of targets have
 * names that differ only in their last characters (one host, ports 8000 to
 * 8999; one site, paths /t/0 to /t/999): their phases must still fill the
 * interval evenly, or a thousand checks fire in the same few milliseconds
 * (with plain FNV-1a 100 of 1,000 such tcp checks fell in one of 100
 * slots, and most slots stayed empty).
 */
#include "exporter/core/buf.h"
#include "exporter/core/strindex.h"
#include "exporter/settings.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define NCHECKS 1000
#define NSLOTS  100 /* 100 ms slots of a 10 s interval: 10 checks each on average */

/* load_fleet() loads NCHECKS checks of one kind whose targets differ in a
 * trailing number (8000 to 8999): fmt is the check's line with one %d.
 * The host section, which every configuration has, comes on top. */
static struct cw_settings *load_fleet(const char *fmt)
{
    struct cw_buf b;
    struct cw_diag d;
    struct cw_settings *s;

    int rc = CW_OK;

    cw_buf_init(&b, 1 << 20);
    cw_diag_init(&d);
    rc |= cw_buf_adds(&b, "global: {interval: 10s, timeout: 1s}\n"
                          "services:\n  - name: fleet\n    checks:\n");
    for (int i = 0; i < NCHECKS; i++) {
        rc |= cw_buf_adds(&b, "      - ");
        rc |= cw_buf_addf(&b, fmt, 8000 + i);
        rc |= cw_buf_addc(&b, '\n');
    }
    ck_assert_int_eq(rc, CW_OK);
    s = cw_settings_load_text("fleet.yml", cw_buf_str(&b), &d);
    ck_assert_msg(s != NULL, "%s", d.n > 0 ? d.entries[0].text : "?");
    ck_assert_uint_ge(s->ninst, NCHECKS);
    cw_diag_reset(&d);
    cw_buf_reset(&b);
    return s;
}

/* assert_spread() fails when a slot of the interval holds more than three
 * times its share of the fleet, or when fewer than 90 % of the slots are
 * used. */
static void assert_spread(const struct cw_settings *s, const char *what)
{
    unsigned slot[NSLOTS] = {0};
    unsigned max = 0, used = 0, n = 0;

    for (size_t i = 0; i < s->ninst; i++) {
        double p = s->inst[i]->phase;

        if (s->inst[i]->service == NULL)
            continue; /* the host section */
        n++;
        ck_assert_msg(p >= 0.0 && p < 1.0, "%s: phase %g", what, p);
        slot[(int)(p * NSLOTS)]++;
    }
    ck_assert_uint_eq(n, NCHECKS);
    for (int i = 0; i < NSLOTS; i++) {
        max = slot[i] > max ? slot[i] : max;
        used += slot[i] > 0;
    }
    ck_assert_msg(max <= 3 * NCHECKS / NSLOTS, "%s: %u of %d checks in one of %d slots", what, max,
                  NCHECKS, NSLOTS);
    ck_assert_msg(used >= NSLOTS * 9 / 10, "%s: only %u of %d slots used", what, used, NSLOTS);
}

START_TEST(test_tcp_ports_spread)
{
    struct cw_settings *s = load_fleet("tcp: {target: \"10.0.0.1:%d\"}");

    assert_spread(s, "tcp 10.0.0.1:PORT");
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_http_paths_spread)
{
    struct cw_settings *s = load_fleet("http: {url: \"http://10.0.0.1/t/%d\"}");

    assert_spread(s, "http /t/N");
    cw_settings_unref(s);
}
END_TEST

/* The phase depends on the identity only: a second load (a restart, a
 * reload) puts every check at the same offset. */
START_TEST(test_phases_are_stable)
{
    struct cw_settings *a = load_fleet("tcp: {target: \"10.0.0.1:%d\"}");
    struct cw_settings *b = load_fleet("tcp: {target: \"10.0.0.1:%d\"}");

    for (size_t i = 0; i < a->ninst; i++) {
        ck_assert_str_eq(a->inst[i]->key, b->inst[i]->key);
        ck_assert(a->inst[i]->phase == b->inst[i]->phase);
    }
    cw_settings_unref(a);
    cw_settings_unref(b);
}
END_TEST

/* Every input bit reaches the high bits the phase is taken from: keys one
 * character apart land far apart. */
START_TEST(test_hash_high_bits_mix)
{
    uint64_t a = cw_strindex_hash("10.0.0.1:8001");
    uint64_t b = cw_strindex_hash("10.0.0.1:8002");

    ck_assert_uint_ne(a >> 56, b >> 56);
    ck_assert(cw_strindex_hash("") != cw_strindex_hash("a"));
    ck_assert(cw_hash_bytes("ab", 2) == cw_strindex_hash("ab"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("phase");
    TCase *t = tcase_create("phase");
    SRunner *sr;
    int failed;

    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_tcp_ports_spread);
    tcase_add_test(t, test_http_paths_spread);
    tcase_add_test(t, test_phases_are_stable);
    tcase_add_test(t, test_hash_high_bits_mix);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
