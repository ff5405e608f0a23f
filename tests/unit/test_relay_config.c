/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_relay_config.c - Check suite "relay_config": the relay's
 * configuration (alerts/relay/config.c). A good file loads with its
 * defaults and its fallback resolved; a file with many bad receivers is
 * refused with every problem reported at once, each as the exact
 * "file:line:col: path: message"; one problem gives one message; the kind
 * keys and the list in the "names no kind" message come from the one table
 * of kinds. Files are written to a scratch directory. Single-threaded.
 */
#include "alerts/relay/config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char file[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cw-relay-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/relay.yml", dir);
}

static void teardown(void)
{
    unlink(file);
    rmdir(dir);
}

static void write_file(const char *text)
{
    FILE *f = fopen(file, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

/* assert_diag() checks that 'd' holds exactly want[0..n), in order, each
 * prefixed with the scratch file's name and ':'. */
static void assert_diag(const struct cw_diag *d, const char *const *want, size_t n)
{
    char buf[512];
    size_t i;

    for (i = 0; d->n != n && i < d->n; i++)
        fprintf(stderr, "diag[%zu] %s\n", i, d->entries[i].text);
    ck_assert_uint_eq(d->n, n);
    for (i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "%s:%s", file, want[i]);
        ck_assert_str_eq(d->entries[i].text, buf);
    }
}

START_TEST(test_relay_config_loads_defaults_and_fallback)
{
    struct cw_relay_config *cfg;
    struct cw_relay_receiver *a, *b;
    struct cw_diag diag;

    write_file("spool_dir: /tmp/cw-relay-never\n"
               "receivers:\n"
               "  - name: a\n"
               "    fallback: b\n"
               "    webhook: {url: \"http://127.0.0.1:9/\"}\n"
               "  - name: b\n"
               "    min_severity: warning\n"
               "    aliyun_sms:\n"
               "      access_key_id: id\n"
               "      access_key_secret: \"${CW_TEST_SMS_SECRET}\"\n"
               "      sign_name: n\n"
               "      template_code: SMS_1\n"
               "      phone_numbers: [\"13800000000\"]\n");
    ck_assert_int_eq(setenv("CW_TEST_SMS_SECRET", "s", 1), 0);
    cw_diag_init(&diag);
    cfg = cw_relay_config_load(file, &diag);
    assert_diag(&diag, NULL, 0);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->spool_dir, "/tmp/cw-relay-never");
    ck_assert_int_eq(cfg->max_queue, 10000);
    ck_assert_uint_eq(cfg->nrecv, 2);
    a = cw_relay_config_find(cfg, "a");
    b = cw_relay_config_find(cfg, "b");
    ck_assert_ptr_eq(a, &cfg->recv[0]);
    ck_assert_ptr_eq(b, &cfg->recv[1]);
    ck_assert_ptr_null(cw_relay_config_find(cfg, "c"));
    ck_assert_str_eq(a->kind->name, "webhook");
    ck_assert_str_eq(b->kind->name, "aliyun_sms");
    ck_assert_ptr_eq(a->fallback, b);
    ck_assert_ptr_null(b->fallback);
    ck_assert_int_eq(a->c.dead_letter_after, 3);
    ck_assert_int_eq(a->min_rank, 0); /* webhook: everything */
    ck_assert_int_eq(b->min_rank, 2); /* warning, over the kind's default of critical */
    ck_assert_ptr_null(a->run.slot);
    cw_relay_config_free(cfg);
    cw_diag_reset(&diag);
}
END_TEST

START_TEST(test_relay_config_reports_every_bad_receiver)
{
    static const char *const want[] = {
        "2:12: max_queue: 0 is out of range (1 to 1000000)",
        "7:15: receivers[1].language: \"fr\" is not one of: zh, en",
        "6:11: receivers[1].name: receiver names use letters, digits, '_', '-' and '.', at most "
        "64, no leading '.'",
        "9:5: receivers[2]: receiver \"nokind\" names no kind (aliyun_sms, dingtalk, email, "
        "webhook)",
        "12:5: receivers[3].webhook: a receiver has exactly one kind (also dingtalk)",
        "17:14: receivers[5].webhook: set exactly one of url and url_file",
        "19:21: receivers[6].title_template: unknown placeholder (see relay.md for the list)",
        "21:16: receivers[6].retry_max: retry_max is shorter than retry_initial",
        "23:43: receivers[6].webhook.colour: unknown field \"colour\"",
        "22:19: receivers[6].min_severity: min_severity is one of none, info, warning, critical",
        "24:5: receivers[7]: a receiver is a mapping (name: ..., <kind>: {...})",
        "13:11: receivers[4].name: duplicate receiver name \"ok\"",
        "16:15: receivers[5].fallback: fallback \"nowhere\" is not another receiver of this file",
    };
    struct cw_diag diag;

    write_file("spool_dir: /tmp/cw-relay-never\n"
               "max_queue: 0\n"
               "receivers:\n"
               "  - name: ok\n"
               "    webhook: {url: \"http://127.0.0.1:9/\"}\n"
               "  - name: \"bad name!\"\n"
               "    language: fr\n"
               "    webhook: {url: \"http://127.0.0.1:9/\"}\n"
               "  - name: nokind\n"
               "  - name: twokinds\n"
               "    dingtalk: {}\n"
               "    webhook: {url: \"http://127.0.0.1:9/\"}\n"
               "  - name: ok\n"
               "    webhook: {url: \"http://127.0.0.1:9/\"}\n"
               "  - name: lost\n"
               "    fallback: nowhere\n"
               "    webhook: {}\n"
               "  - name: tmpl\n"
               "    title_template: \"{{nope}}\"\n"
               "    retry_initial: 10s\n"
               "    retry_max: 1s\n"
               "    min_severity: loud\n"
               "    webhook: {url: \"http://127.0.0.1:9/\", colour: red}\n"
               "  - 42\n");
    cw_diag_init(&diag);
    ck_assert_ptr_null(cw_relay_config_load(file, &diag));
    assert_diag(&diag, want, sizeof(want) / sizeof(want[0]));
    cw_diag_reset(&diag);
}
END_TEST

START_TEST(test_relay_config_one_problem_one_message)
{
    static const char *const bad_value[] = {
        "4:16: receivers[0].retry_max: 61m is above the maximum 1h",
    };
    static const char *const no_name[] = {
        "3:5: receivers[0]: missing required field \"name\"",
        "3:5: receivers[0]: a receiver names no kind (aliyun_sms, dingtalk, email, webhook)",
    };
    struct cw_diag diag;

    /* A bad retry_max is not also "shorter than retry_initial". */
    write_file("spool_dir: /tmp/cw-relay-never\n"
               "receivers:\n"
               "  - name: a\n"
               "    retry_max: 61m\n"
               "    webhook: {url: \"http://127.0.0.1:9/\"}\n");
    cw_diag_init(&diag);
    ck_assert_ptr_null(cw_relay_config_load(file, &diag));
    assert_diag(&diag, bad_value, 1);
    cw_diag_reset(&diag);

    write_file("spool_dir: /tmp/cw-relay-never\n"
               "receivers:\n"
               "  - language: en\n");
    cw_diag_init(&diag);
    ck_assert_ptr_null(cw_relay_config_load(file, &diag));
    assert_diag(&diag, no_name, 2);
    cw_diag_reset(&diag);
}
END_TEST

START_TEST(test_relay_config_time_zone)
{
    static const char *const bad[] = {
        "5:16: receivers[1].time_zone: \"Mars/Olympus\": want local, UTC, an offset such as "
        "+08:00, or a zone without daylight saving time: Asia/Shanghai, Asia/Hong_Kong, "
        "Asia/Taipei, Asia/Singapore, Asia/Tokyo, Asia/Seoul, Asia/Kolkata (see relay.md)",
        "7:26: receivers[2].time_zone: \"+25:00\": want local, UTC, an offset such as +08:00, "
        "or a zone without daylight saving time: Asia/Shanghai, Asia/Hong_Kong, Asia/Taipei, "
        "Asia/Singapore, Asia/Tokyo, Asia/Seoul, Asia/Kolkata (see relay.md)",
    };
    struct cw_relay_config *cfg;
    struct cw_diag diag;

    write_file("spool_dir: /tmp/cw-relay-never\n"
               "receivers:\n"
               "  - {name: a, webhook: {url: \"http://127.0.0.1:9/\"}}\n"
               "  - name: b\n"
               "    time_zone: Mars/Olympus\n"
               "    webhook: {url: \"http://127.0.0.1:9/\"}\n"
               "  - {name: c, time_zone: \"+25:00\", webhook: {url: \"http://127.0.0.1:9/\"}}\n");
    cw_diag_init(&diag);
    ck_assert_ptr_null(cw_relay_config_load(file, &diag));
    assert_diag(&diag, bad, 2);
    cw_diag_reset(&diag);

    write_file("spool_dir: /tmp/cw-relay-never\n"
               "receivers:\n"
               "  - {name: a, webhook: {url: \"http://127.0.0.1:9/\"}}\n"
               "  - {name: b, time_zone: Asia/Shanghai, webhook: {url: \"http://127.0.0.1:9/\"}}\n"
               "  - {name: c, time_zone: \"-03:30\", webhook: {url: \"http://127.0.0.1:9/\"}}\n");
    cw_diag_init(&diag);
    cfg = cw_relay_config_load(file, &diag);
    assert_diag(&diag, NULL, 0);
    ck_assert_ptr_nonnull(cfg);
    ck_assert(cfg->recv[0].tz.local); /* default: the host's zone */
    ck_assert(!cfg->recv[1].tz.local);
    ck_assert_int_eq(cfg->recv[1].tz.offset, 8 * 3600);
    ck_assert_str_eq(cfg->recv[1].tz.name, "CST");
    ck_assert_int_eq(cfg->recv[2].tz.offset, -(3 * 3600 + 1800));
    ck_assert_str_eq(cfg->recv[2].tz.name, "-03:30");
    cw_relay_config_free(cfg);
    cw_diag_reset(&diag);
}
END_TEST

START_TEST(test_relay_config_kinds_come_from_the_table)
{
    char list[256] = "", text[512];
    struct cw_diag diag;
    size_t i;

    for (i = 0; cw_receiver_kinds[i] != NULL; i++) {
        struct cw_relay_config *cfg;

        ck_assert(i == 0 || strcmp(cw_receiver_kinds[i - 1]->name, cw_receiver_kinds[i]->name) < 0);
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i > 0 ? ", " : "",
                 cw_receiver_kinds[i]->name);
        /* Every kind's key is known to the receiver mapping: only the kind's own checks speak. */
        snprintf(text, sizeof(text),
                 "spool_dir: /tmp/cw-relay-never\nreceivers:\n  - name: a\n    %s: []\n",
                 cw_receiver_kinds[i]->name);
        write_file(text);
        cw_diag_init(&diag);
        cfg = cw_relay_config_load(file, &diag);
        ck_assert_ptr_null(cfg);
        ck_assert_uint_eq(diag.n, 1);
        snprintf(text, sizeof(text), "%s:4:%zu: receivers[0].%s: %s: want a mapping, got a list",
                 file, 7 + strlen(cw_receiver_kinds[i]->name), cw_receiver_kinds[i]->name,
                 cw_receiver_kinds[i]->name);
        ck_assert_str_eq(diag.entries[0].text, text);
        cw_diag_reset(&diag);
    }
    ck_assert_uint_eq(i, 4);
    write_file("spool_dir: /tmp/cw-relay-never\nreceivers:\n  - name: a\n");
    cw_diag_init(&diag);
    ck_assert_ptr_null(cw_relay_config_load(file, &diag));
    ck_assert_uint_eq(diag.n, 1);
    snprintf(text, sizeof(text), "%s:3:5: receivers[0]: receiver \"a\" names no kind (%s)", file,
             list);
    ck_assert_str_eq(diag.entries[0].text, text);
    cw_diag_reset(&diag);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("relay_config");
    TCase *tc = tcase_create("config");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_relay_config_loads_defaults_and_fallback);
    tcase_add_test(tc, test_relay_config_reports_every_bad_receiver);
    tcase_add_test(tc, test_relay_config_one_problem_one_message);
    tcase_add_test(tc, test_relay_config_kinds_come_from_the_table);
    tcase_add_test(tc, test_relay_config_time_zone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
