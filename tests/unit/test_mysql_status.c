/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_mysql_status.c - Check suite "mysql_status": the pure parts of the
 * mysql check (collectors/mysql_status.c): the status row parser on
 * fixtures captured from MariaDB 10.11 (`mariadb -B -N -e 'SHOW GLOBAL
 * STATUS'` and VARIABLES, in tests/fixtures/mysql/), value edge cases, the
 * query text, the error-to-reason mapping and the reconnect backoff.
 *
 * Fixtures are loaded into buffers of their exact size, without a NUL, so
 * that ASan catches a parser reading past the end. Single-threaded; Check
 * forks each test.
 */
#include "collectors/mysql_status.h"
#include "tests/lib/fixture.h"

#include <check.h>
#include <errmsg.h>
#include <errno.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fixture fixture_load(const char *name)
{
    return fixture_load_kind("mysql", name);
}

static int feed(struct cw_mysql_status *st, const char *name, const char *value)
{
    return cw_mysql_status_feed(st, name, strlen(name), value, value != NULL ? strlen(value) : 0);
}

START_TEST(test_fixture_mariadb)
{
    struct fixture status = fixture_load("mariadb-10.11-status.tsv");
    struct fixture vars = fixture_load("mariadb-10.11-variables.tsv");
    struct cw_mysql_status st;
    unsigned f;

    cw_mysql_status_reset(&st);
    /* The full dumps hold non-numeric values of names we do not read
     * (ON/OFF, paths): they are ignored, so the parse succeeds. */
    ck_assert_int_eq(cw_mysql_status_parse_tsv(&st, status.data, status.len), CW_OK);
    ck_assert_int_eq(cw_mysql_status_parse_tsv(&st, vars.data, vars.len), CW_OK);
    for (f = 0; f < CW_MYSQL_NFIELDS; f++)
        ck_assert_msg(cw_mysql_status_has(&st, f), "%s missing", cw_mysql_field_name(f));
    ck_assert_uint_eq(st.value[CW_MYSQL_MAX_CONNECTIONS], 151);
    ck_assert_uint_ge(st.value[CW_MYSQL_THREADS_CONNECTED], 1);
    ck_assert_uint_ge(st.value[CW_MYSQL_THREADS_RUNNING], 1);
    ck_assert_uint_eq(st.value[CW_MYSQL_CONNERR_MAX_CONNECTIONS], 0);
    ck_assert_uint_eq(st.value[CW_MYSQL_DEADLOCKS], 0);
    free(status.data);
    free(vars.data);
}
END_TEST

START_TEST(test_query_names_every_field)
{
    unsigned f;

    for (f = 0; f < CW_MYSQL_NFIELDS; f++) {
        char quoted[128];
        const char *name = cw_mysql_field_name(f);

        ck_assert_int_lt(snprintf(quoted, sizeof(quoted), "'%s'", name), (int)sizeof(quoted));
        ck_assert_msg(strstr(cw_mysql_query, quoted) != NULL, "%s not asked for", name);
        if (f != CW_MYSQL_DEADLOCKS)
            ck_assert_msg(strstr(cw_mysql_query_innodb_metrics, quoted) != NULL,
                          "%s not asked for (metrics variant)", name);
    }
    ck_assert_ptr_null(strstr(cw_mysql_query_innodb_metrics, "'Innodb_deadlocks'"));
    ck_assert_ptr_nonnull(strstr(cw_mysql_query_innodb_metrics, "'lock_deadlocks'"));
    /* No full dumps: every statement is restricted. */
    ck_assert_ptr_null(strstr(cw_mysql_query, "STATUS;"));
    /* The variable by SELECT @@ (a tenth of the server's cost of SHOW
     * GLOBAL VARIABLES WHERE, issue 14), its row named like the others. */
    ck_assert_ptr_null(strstr(cw_mysql_query, "VARIABLES"));
    ck_assert_ptr_null(strstr(cw_mysql_query_innodb_metrics, "VARIABLES"));
    ck_assert_ptr_nonnull(
        strstr(cw_mysql_query, "SELECT 'max_connections', @@GLOBAL.max_connections"));
    ck_assert_ptr_nonnull(strstr(cw_mysql_query_innodb_metrics,
                                 "SELECT 'max_connections', @@GLOBAL.max_connections;"));
}
END_TEST

START_TEST(test_values)
{
    struct cw_mysql_status st;

    cw_mysql_status_reset(&st);
    ck_assert_int_eq(feed(&st, "THREADS_CONNECTED", "42"), CW_OK); /* case-insensitive */
    ck_assert_uint_eq(st.value[CW_MYSQL_THREADS_CONNECTED], 42);
    ck_assert_int_eq(feed(&st, "Slow_queries", "18446744073709551615"), CW_OK);
    ck_assert_uint_eq(st.value[CW_MYSQL_SLOW_QUERIES], UINT64_MAX);
    ck_assert_int_eq(feed(&st, "Aborted_connects", "18446744073709551616"), CW_EPARSE);
    ck_assert(!cw_mysql_status_has(&st, CW_MYSQL_ABORTED_CONNECTS));
    ck_assert_int_eq(feed(&st, "Innodb_row_lock_time", "1234.000"), CW_OK);
    ck_assert_uint_eq(st.value[CW_MYSQL_ROW_LOCK_TIME_MS], 1234);
    ck_assert_int_eq(feed(&st, "Innodb_row_lock_waits", "-1"), CW_EPARSE);
    ck_assert_int_eq(feed(&st, "Innodb_row_lock_waits", "12x"), CW_EPARSE);
    ck_assert_int_eq(feed(&st, "Innodb_row_lock_waits", ""), CW_EPARSE);
    ck_assert_int_eq(feed(&st, "Innodb_row_lock_waits", "1."), CW_OK);
    ck_assert_int_eq(feed(&st, "Innodb_row_lock_waits", ".5"), CW_EPARSE);
    ck_assert_int_eq(feed(&st, "Innodb_row_lock_waits", " 1"), CW_EPARSE);
    ck_assert_int_eq(feed(&st, "max_connections", NULL), CW_EPARSE); /* SQL NULL */
    ck_assert(!cw_mysql_status_has(&st, CW_MYSQL_MAX_CONNECTIONS));
    /* Unknown names are ignored, whatever their value. */
    ck_assert_int_eq(feed(&st, "Uptime_since_flush_status", "abc"), CW_OK);
    ck_assert_int_eq(feed(&st, "Threads_connecte", "1"), CW_OK);
    ck_assert_int_eq(feed(&st, "Threads_connectedX", "1"), CW_OK);
    ck_assert_uint_eq(st.value[CW_MYSQL_THREADS_CONNECTED], 42);
    /* The INNODB_METRICS row of MySQL. */
    ck_assert_int_eq(feed(&st, "lock_deadlocks", "7"), CW_OK);
    ck_assert_uint_eq(st.value[CW_MYSQL_DEADLOCKS], 7);
    ck_assert_int_eq(cw_mysql_status_feed(&st, NULL, 0, "1", 1), CW_EPARSE);
}
END_TEST

START_TEST(test_tsv_shapes)
{
    static const char text[] = "Threads_connected\t5\r\n\nbroken line\nmax_connections\t200";
    struct cw_mysql_status st;

    cw_mysql_status_reset(&st);
    ck_assert_int_eq(cw_mysql_status_parse_tsv(&st, text, sizeof(text) - 1), CW_EPARSE);
    ck_assert_uint_eq(st.value[CW_MYSQL_THREADS_CONNECTED], 5);
    ck_assert_uint_eq(st.value[CW_MYSQL_MAX_CONNECTIONS], 200); /* after the bad line */
    ck_assert_int_eq(cw_mysql_status_parse_tsv(&st, "", 0), CW_OK);
}
END_TEST

START_TEST(test_connerr_labels)
{
    unsigned f, n = 0;

    for (f = CW_MYSQL_CONNERR_FIRST; f <= CW_MYSQL_CONNERR_LAST; f++) {
        const char *r = cw_mysql_connerr_reason(f);
        char want[96];

        ck_assert_ptr_nonnull(r);
        ck_assert_int_lt(snprintf(want, sizeof(want), "Connection_errors_%s", r),
                         (int)sizeof(want));
        ck_assert_str_eq(cw_mysql_field_name(f), want);
        n++;
    }
    ck_assert_uint_eq(n, 6);
    ck_assert_ptr_null(cw_mysql_connerr_reason(CW_MYSQL_SLOW_QUERIES));
    ck_assert_str_eq(cw_mysql_connerr_reason(CW_MYSQL_CONNERR_MAX_CONNECTIONS), "max_connections");
}
END_TEST

START_TEST(test_reasons)
{
    static const struct {
        unsigned err;
        const char *msg;
        enum cw_reason want;
    } cases[] = {
        {ER_ACCESS_DENIED_ERROR,
         "Access denied for user 'monitor'@'localhost' (using password: YES)", CW_REASON_AUTH},
        {ER_DBACCESS_DENIED_ERROR, NULL, CW_REASON_AUTH},
        {ER_ACCESS_DENIED_NO_PASSWORD_ERROR, NULL, CW_REASON_AUTH},
        {ER_HOST_NOT_PRIVILEGED, NULL, CW_REASON_AUTH},
        {ER_SPECIFIC_ACCESS_DENIED_ERROR, NULL, CW_REASON_AUTH},
        {CR_AUTH_PLUGIN_CANNOT_LOAD, NULL, CW_REASON_AUTH},
        {3159, NULL, CW_REASON_AUTH},
        {ER_CON_COUNT_ERROR, "Too many connections", CW_REASON_REFUSED},
        {ER_SERVER_SHUTDOWN, NULL, CW_REASON_REFUSED},
        {ER_CONNECTION_KILLED, NULL, CW_REASON_REFUSED},
        {CR_SERVER_GONE_ERROR, "Server has gone away", CW_REASON_REFUSED},
        {CR_SERVER_LOST, "Lost connection to server during query", CW_REASON_REFUSED},
        {CR_CONNECTION_ERROR, "Can't connect to server on '127.0.0.1' (111)", CW_REASON_REFUSED},
        {CR_CONNECTION_ERROR, "Can't connect to server on '10.9.9.9' (110)", CW_REASON_TIMEOUT},
        {CR_CONNECTION_ERROR, "Can't connect to server on '10.9.9.9' (113)", CW_REASON_UNREACHABLE},
        {CR_CONNECTION_ERROR, "Can't connect to local server through socket '/x' (2)",
         CW_REASON_REFUSED},
        {CR_CONNECTION_ERROR, NULL, CW_REASON_REFUSED},
        {CR_CONNECTION_ERROR, "(", CW_REASON_REFUSED},
        {CR_CONNECTION_ERROR, "()", CW_REASON_REFUSED},
        {CR_CONNECTION_ERROR, "x (9999999999)", CW_REASON_REFUSED},
        {CR_CONN_HOST_ERROR, "Can't connect (110) ", CW_REASON_TIMEOUT},
        {CR_UNKNOWN_HOST, NULL, CW_REASON_DNS},
        {CR_SSL_CONNECTION_ERROR, "TLS/SSL error: certificate verify failed",
         CW_REASON_TLS_HANDSHAKE},
        {CR_SSL_CONNECTION_ERROR,
         "TLS/SSL error: SSL is required, but the server does not "
         "support it",
         CW_REASON_TLS_HANDSHAKE},
        {CR_SSL_CONNECTION_ERROR, NULL, CW_REASON_TLS_HANDSHAKE},
        {CR_SSL_CONNECTION_ERROR, "TLS/SSL error: self-signed certificate in certificate chain",
         CW_REASON_CERT_UNTRUSTED},
        {CR_SSL_CONNECTION_ERROR, "TLS/SSL error: unable to get local issuer certificate",
         CW_REASON_CERT_UNTRUSTED},
        {CR_SSL_CONNECTION_ERROR, "TLS/SSL error: certificate has expired", CW_REASON_CERT_EXPIRED},
        {CR_SSL_CONNECTION_ERROR, "TLS/SSL error: certificate is not yet valid",
         CW_REASON_CERT_NOT_YET_VALID},
        {CR_SSL_CONNECTION_ERROR, "TLS/SSL error: Hostname mismatch", CW_REASON_CERT_HOSTNAME},
        {CR_SSL_CONNECTION_ERROR, "TLS/SSL error: IP address mismatch", CW_REASON_CERT_HOSTNAME},
        {CR_MALFORMED_PACKET, NULL, CW_REASON_PROTOCOL},
        {CR_SERVER_HANDSHAKE_ERR, NULL, CW_REASON_PROTOCOL},
        {1064, "You have an error in your SQL syntax", CW_REASON_PROTOCOL},
        {1146, "Table doesn't exist", CW_REASON_PROTOCOL},
        {CR_OUT_OF_MEMORY, NULL, CW_REASON_INTERNAL},
        {CR_UNKNOWN_ERROR, NULL, CW_REASON_INTERNAL},
        {0, NULL, CW_REASON_INTERNAL},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(cw_mysql_reason(cases[i].err, cases[i].msg) == cases[i].want,
                      "error %u (%s): got %s, want %s", cases[i].err,
                      cases[i].msg != NULL ? cases[i].msg : "NULL",
                      cw_reason_label(cw_mysql_reason(cases[i].err, cases[i].msg)),
                      cw_reason_label(cases[i].want));
}
END_TEST

START_TEST(test_fatal)
{
    ck_assert(cw_mysql_error_is_fatal(CR_SERVER_GONE_ERROR));
    ck_assert(cw_mysql_error_is_fatal(CR_SERVER_LOST));
    ck_assert(cw_mysql_error_is_fatal(ER_CONNECTION_KILLED));
    ck_assert(cw_mysql_error_is_fatal(CR_ERR_NET_READ));
    ck_assert(!cw_mysql_error_is_fatal(ER_SPECIFIC_ACCESS_DENIED_ERROR));
    ck_assert(!cw_mysql_error_is_fatal(1064));
}
END_TEST

START_TEST(test_backoff)
{
    ck_assert_int_eq(cw_mysql_backoff(1, CW_S(15), CW_S(30)), CW_S(15));
    ck_assert_int_eq(cw_mysql_backoff(2, CW_S(15), CW_S(30)), CW_S(30));
    ck_assert_int_eq(cw_mysql_backoff(9, CW_S(15), CW_S(30)), CW_S(30));
    ck_assert_int_eq(cw_mysql_backoff(1, CW_S(1), CW_S(30)), CW_S(1));
    ck_assert_int_eq(cw_mysql_backoff(2, CW_S(1), CW_S(30)), CW_S(2));
    ck_assert_int_eq(cw_mysql_backoff(5, CW_S(1), CW_S(30)), CW_S(16));
    ck_assert_int_eq(cw_mysql_backoff(6, CW_S(1), CW_S(30)), CW_S(30));
    ck_assert_int_eq(cw_mysql_backoff(4000000000u, CW_S(1), CW_S(30)), CW_S(30));
    /* cap below the interval, or 0: every run tries again */
    ck_assert_int_eq(cw_mysql_backoff(7, CW_S(15), 0), CW_S(15));
    ck_assert_int_eq(cw_mysql_backoff(7, CW_S(15), CW_S(5)), CW_S(15));
    ck_assert_int_eq(cw_mysql_backoff(3, CW_MS(100), CW_MS(1000)), CW_MS(400));
    ck_assert_int_eq(cw_mysql_backoff(5, CW_MS(100), CW_MS(1000)), CW_MS(1000));
}
END_TEST

static Suite *mysql_status_suite(void)
{
    Suite *s = suite_create("mysql_status");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, test_fixture_mariadb);
    tcase_add_test(tc, test_query_names_every_field);
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_tsv_shapes);
    tcase_add_test(tc, test_connerr_labels);
    tcase_add_test(tc, test_reasons);
    tcase_add_test(tc, test_fatal);
    tcase_add_test(tc, test_backoff);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(mysql_status_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
