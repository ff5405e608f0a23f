/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_log.c - the logger: fixed keys first, logfmt quoting and escaping,
 * JSON lines, level filtering. Output goes to a pipe read by the test.
 */
#include "exporter/core/log.h"

#include <check.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* read_pipe() returns what the logger wrote into the pipe (malloc'ed). */
static char *read_pipe(int fd)
{
    char *buf = calloc(1, 4096);
    ssize_t n;

    ck_assert_ptr_nonnull(buf);
    n = read(fd, buf, 4095);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    return buf;
}

static int pipe_fds[2];

static void setup(void)
{
    ck_assert_int_eq(pipe(pipe_fds), 0);
    cw_log_set_fd(pipe_fds[1]);
}

static void teardown(void)
{
    cw_log_set_fd(2);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* strip_time() returns the line after "time=...Z " (logfmt). */
static const char *strip_time(const char *line)
{
    regex_t re;
    regmatch_t m;

    ck_assert_int_eq(regcomp(&re,
                             "^time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                             "\\.[0-9]{3}Z ",
                             REG_EXTENDED),
                     0);
    ck_assert_msg(regexec(&re, line, 1, &m, 0) == 0, "%s", line);
    regfree(&re);
    return line + m.rm_eo;
}

START_TEST(test_log_logfmt_puts_fixed_keys_first)
{
    char *line;

    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    cw_log(CW_LOG_WARN, "check", "check failing", "reason", "refused", (char *)NULL);
    line = read_pipe(pipe_fds[0]);
    ck_assert_str_eq(strip_time(line),
                     "level=warn component=check msg=\"check failing\" reason=refused\n");
    free(line);
}
END_TEST

START_TEST(test_log_logfmt_quotes_and_escapes_values)
{
    char *line;

    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    cw_log(CW_LOG_INFO, "x", "m", "a", "two words", "b", "q\"uo\\te", "c", "line\nbreak", "d", "",
           "e", NULL, "f", "k=v", (char *)NULL);
    line = read_pipe(pipe_fds[0]);
    ck_assert_str_eq(strip_time(line), "level=info component=x msg=m a=\"two words\" "
                                       "b=\"q\\\"uo\\\\te\" c=\"line\\nbreak\" d=\"\" e=\"\" "
                                       "f=\"k=v\"\n");
    free(line);
}
END_TEST

START_TEST(test_log_json_writes_one_object_per_line)
{
    char *line;

    cw_log_setup(CW_LOG_DEBUG, CW_LOG_JSON);
    cw_log(CW_LOG_ERROR, "http", "bad \"thing\"", "err", "tab\there", (char *)NULL);
    line = read_pipe(pipe_fds[0]);
    ck_assert_msg(strncmp(line, "{\"time\":\"", 9) == 0, "%s", line);
    ck_assert_ptr_nonnull(strstr(line, "\",\"level\":\"error\",\"component\":\"http\","
                                       "\"msg\":\"bad \\\"thing\\\"\",\"err\":\"tab\\there\"}\n"));
    free(line);
}
END_TEST

START_TEST(test_log_drops_lines_below_the_level)
{
    char *line;

    cw_log_setup(CW_LOG_WARN, CW_LOG_LOGFMT);
    ck_assert(!cw_log_enabled(CW_LOG_INFO));
    cw_log(CW_LOG_INFO, "x", "hidden", (char *)NULL);
    cw_log(CW_LOG_ERROR, "x", "shown", (char *)NULL);
    line = read_pipe(pipe_fds[0]);
    ck_assert_ptr_null(strstr(line, "hidden"));
    ck_assert_ptr_nonnull(strstr(line, "msg=shown"));
    free(line);
}
END_TEST

START_TEST(test_log_limit_admits_one_line_per_interval_and_counts_the_rest)
{
    struct cw_log_limit l = CW_LOG_LIMIT_INIT;
    cw_mono t = CW_S(1000);
    uint64_t dropped = 99;
    int i;

    ck_assert(cw_log_limit_admit(&l, t, &dropped));
    ck_assert_uint_eq(dropped, 0);
    for (i = 0; i < 1000; i++)
        ck_assert(!cw_log_limit_admit(&l, t + CW_MS(i), &dropped));
    ck_assert(!cw_log_limit_admit(&l, t + CW_LOG_LIMIT_INTERVAL - 1, &dropped));
    ck_assert(cw_log_limit_admit(&l, t + CW_LOG_LIMIT_INTERVAL, &dropped));
    ck_assert_uint_eq(dropped, 1001);
    /* Quiet since: the next line says nothing was suppressed. */
    ck_assert(cw_log_limit_admit(&l, t + 5 * CW_LOG_LIMIT_INTERVAL, &dropped));
    ck_assert_uint_eq(dropped, 0);
}
END_TEST

START_TEST(test_log_limited_writes_once_then_reports_suppressed)
{
    static struct cw_log_limit l = CW_LOG_LIMIT_INIT;
    char *line;
    int i;

    cw_log_setup(CW_LOG_INFO, CW_LOG_LOGFMT);
    for (i = 0; i < 500; i++)
        cw_log_limited(&l, CW_LOG_WARN, "http", "malformed request", "client", "127.0.0.9",
                       (char *)NULL);
    line = read_pipe(pipe_fds[0]);
    /* Exactly one line, without a count (nothing was suppressed before it). */
    ck_assert_ptr_nonnull(strstr(line, "msg=\"malformed request\" client=127.0.0.9\n"));
    ck_assert_ptr_null(strstr(line + 1, "time="));
    free(line);
    /* Pretend the interval has passed: the next line carries the count. */
    atomic_store(&l.next, 0);
    cw_log_limited(&l, CW_LOG_WARN, "http", "malformed request", "client", "127.0.0.9",
                   (char *)NULL);
    line = read_pipe(pipe_fds[0]);
    ck_assert_ptr_nonnull(strstr(line, "client=127.0.0.9 suppressed=499\n"));
    free(line);
}
END_TEST

START_TEST(test_log_parses_flag_spellings)
{
    enum cw_log_level l;
    enum cw_log_format f;

    ck_assert_int_eq(cw_log_level_parse("debug", &l), CW_OK);
    ck_assert_int_eq(l, CW_LOG_DEBUG);
    ck_assert_int_eq(cw_log_level_parse("warning", &l), CW_EPARSE);
    ck_assert_int_eq(cw_log_format_parse("json", &f), CW_OK);
    ck_assert_int_eq(f, CW_LOG_JSON);
    ck_assert_int_eq(cw_log_format_parse("text", &f), CW_EPARSE);
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_log_logfmt_puts_fixed_keys_first);
    tcase_add_test(tc, test_log_logfmt_quotes_and_escapes_values);
    tcase_add_test(tc, test_log_json_writes_one_object_per_line);
    tcase_add_test(tc, test_log_drops_lines_below_the_level);
    tcase_add_test(tc, test_log_parses_flag_spellings);
    tcase_add_test(tc, test_log_limit_admits_one_line_per_interval_and_counts_the_rest);
    tcase_add_test(tc, test_log_limited_writes_once_then_reports_suppressed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
