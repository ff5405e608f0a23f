/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_log.c - the logger: fixed keys first, logfmt quoting and escaping,
 * JSON lines, level filtering. Output goes to a pipe read by the test.
 */
#include "exporter/log.h"

#include <check.h>
#include <regex.h>
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
