/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_run_log.c - cw_run_log() (exporter/instance.c): a collector's log
 * line carries its check, service and target without the collector naming
 * them, in logfmt and JSON, and the caller's pairs keep their place right
 * after the target. A kind written for the test logs from run(); the run is
 * executed synchronously (cw_instance_execute), the log goes to a pipe.
 */
#include "exporter/check.h"
#include "exporter/core/log.h"
#include "exporter/settings.h"

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct logger_state {
    char *target; /* owned (option table) */
    bool many;    /* log more pairs than cw_run_log() keeps */
    bool own;     /* name the target itself */
};

static const struct cw_opt logger_opts[] = {
    CW_OPT("target", CW_OPT_T_STRING, struct logger_state, target, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("many", CW_OPT_T_BOOL, struct logger_state, many, "false", 0, 0, 0),
    CW_OPT("own", CW_OPT_T_BOOL, struct logger_state, own, "false", 0, 0, 0),
    CW_OPT_END,
};

static int logger_configure(void *st, const struct cw_node *n, const struct cw_check_info *i,
                            struct cw_diag *d)
{
    (void)i;
    return cw_opts_apply(logger_opts, st, n, cw_check_common_keys, d);
}

static const char *logger_target(const void *st)
{
    return ((const struct logger_state *)st)->target;
}

static void logger_run(void *st, struct cw_run *run)
{
    const struct logger_state *ls = st;

    if (ls->own)
        cw_run_log(run, CW_LOG_INFO, "connected", "target", ls->target, "server", "10.11",
                   (char *)NULL);
    else if (ls->many)
        cw_run_log(run, CW_LOG_WARN, "many", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f",
                   "6", "g", "7", "h", "8", "i", "9", (char *)NULL);
    else
        cw_run_log(run, CW_LOG_WARN, "connection failing", "reason", "refused", "err",
                   "connect to 127.0.0.1 port 1: Connection refused", (char *)NULL);
}

static void logger_release(void *st)
{
    cw_opts_release(logger_opts, st);
}

static const struct cw_check_kind kind_logger = {
    .name = "logger",
    .state_size = sizeof(struct logger_state),
    .configure = logger_configure,
    .target = logger_target,
    .run = logger_run,
    .release = logger_release,
};

const struct cw_check_kind *const cw_check_kinds[] = {&kind_logger, NULL};

static int pipe_fds[2];

static void setup(void)
{
    ck_assert_int_eq(pipe2(pipe_fds, O_NONBLOCK), 0);
    cw_log_set_fd(pipe_fds[1]);
}

static void teardown(void)
{
    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    cw_log_set_fd(2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* run_and_read() loads 'yaml', executes its only instance once and returns
 * the log it wrote (static buffer). */
static const char *run_and_read(const char *yaml)
{
    static char buf[16384];
    struct cw_diag d;
    struct cw_settings *s;
    ssize_t n;

    cw_diag_init(&d);
    s = cw_settings_load_text("t.yml", yaml, &d);
    ck_assert_msg(s != NULL, "%s", d.n ? d.entries[0].text : "?");
    cw_diag_reset(&d);
    ck_assert_uint_eq(s->ninst, 1);
    cw_instance_execute(s->inst[0]);
    cw_settings_unref(s);
    n = read(pipe_fds[0], buf, sizeof(buf) - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    return buf;
}

static const char *const yaml_one = "host: {enabled: false}\n"
                                    "services:\n"
                                    "  - name: billing\n"
                                    "    checks:\n"
                                    "      - logger: {target: \"db.example:6379\"}\n";

START_TEST(test_logfmt_carries_check_service_target)
{
    const char *log;

    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    log = run_and_read(yaml_one);
    ck_assert_msg(strstr(log, " level=warn component=logger msg=\"connection failing\" "
                              "target=db.example:6379 reason=refused "
                              "err=\"connect to 127.0.0.1 port 1: Connection refused\" "
                              "service=billing check=logger\n") != NULL,
                  "%s", log);
}
END_TEST

START_TEST(test_json_carries_check_service_target)
{
    const char *log;

    cw_log_setup(CW_LOG_INFO, CW_LOG_JSON);
    log = run_and_read(yaml_one);
    ck_assert_msg(strstr(log, "\"component\":\"logger\",\"msg\":\"connection failing\","
                              "\"target\":\"db.example:6379\",\"reason\":\"refused\",") != NULL,
                  "%s", log);
    ck_assert_msg(strstr(log, ",\"service\":\"billing\",\"check\":\"logger\"}\n") != NULL, "%s",
                  log);
}
END_TEST

START_TEST(test_the_name_is_the_target)
{
    const char *log;

    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    log = run_and_read("host: {enabled: false}\n"
                       "services:\n"
                       "  - name: s\n"
                       "    checks:\n"
                       "      - logger: {target: \"x:1\", name: primary}\n");
    ck_assert_msg(strstr(log, "msg=\"connection failing\" target=primary reason=refused") != NULL,
                  "%s", log);
    ck_assert_msg(strstr(log, "service=s check=logger\n") != NULL, "%s", log);
}
END_TEST

START_TEST(test_a_collector_may_name_the_target)
{
    const char *log;

    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    log = run_and_read("host: {enabled: false}\n"
                       "services:\n"
                       "  - name: s\n"
                       "    checks:\n"
                       "      - logger: {target: \"127.0.0.1:3306\", name: main, own: true}\n");
    ck_assert_msg(strstr(log, "component=logger msg=connected target=127.0.0.1:3306 server=10.11 "
                              "service=s check=logger\n") != NULL,
                  "%s", log);
    ck_assert_ptr_null(strstr(log, "target=main"));
}
END_TEST

START_TEST(test_pairs_past_the_limit_are_dropped_identity_kept)
{
    const char *log;

    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    log = run_and_read("host: {enabled: false}\n"
                       "services:\n"
                       "  - name: s\n"
                       "    checks:\n"
                       "      - logger: {target: t, many: true}\n");
    ck_assert_msg(strstr(log, "msg=many target=t a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 service=s "
                              "check=logger\n") != NULL,
                  "%s", log);
    ck_assert_ptr_null(strstr(log, "i=9"));
}
END_TEST

START_TEST(test_below_the_level_nothing_is_written)
{
    struct cw_diag d;
    struct cw_settings *s;
    char buf[4096];

    cw_log_setup(CW_LOG_ERROR, CW_LOG_LOGFMT);
    cw_diag_init(&d);
    s = cw_settings_load_text("t.yml", yaml_one, &d);
    ck_assert_ptr_nonnull(s);
    cw_diag_reset(&d);
    cw_instance_execute(s->inst[0]);
    cw_settings_unref(s);
    ck_assert_int_lt(read(pipe_fds[0], buf, sizeof(buf)), 0); /* EAGAIN: empty */
}
END_TEST

static Suite *run_log_suite(void)
{
    Suite *s = suite_create("run_log");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_logfmt_carries_check_service_target);
    tcase_add_test(tc, test_json_carries_check_service_target);
    tcase_add_test(tc, test_the_name_is_the_target);
    tcase_add_test(tc, test_a_collector_may_name_the_target);
    tcase_add_test(tc, test_pairs_past_the_limit_are_dropped_identity_kept);
    tcase_add_test(tc, test_below_the_level_nothing_is_written);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(run_log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
