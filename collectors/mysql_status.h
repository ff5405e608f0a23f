/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mysql_status.h - pure helpers of the "mysql" check: the table from server
 * status/variable names to connwatch fields, the one query text that asks
 * for exactly those names, the parsing of (name, value) rows into a
 * struct cw_mysql_status, and the mapping of MariaDB/MySQL error numbers to
 * connwatch failure reasons.
 *
 * No I/O, no allocation, no global state: thread-safe. Called by the mysql
 * check's worker, the unit tests (fixtures captured from mariadbd) and the
 * fuzz target. Buffers need not be NUL-terminated; nothing reads past
 * [p, p + len).
 */
#ifndef CW_MYSQL_STATUS_H
#define CW_MYSQL_STATUS_H

#include "exporter/core/clock.h"
#include "exporter/core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The values one run reads. Order is the table order in mysql_status.c. */
enum cw_mysql_field {
    CW_MYSQL_THREADS_CONNECTED = 0,   /* Threads_connected (gauge) */
    CW_MYSQL_THREADS_RUNNING,         /* Threads_running (gauge) */
    CW_MYSQL_MAX_USED_CONNECTIONS,    /* Max_used_connections (gauge, peak) */
    CW_MYSQL_ABORTED_CONNECTS,        /* Aborted_connects */
    CW_MYSQL_CONNERR_ACCEPT,          /* Connection_errors_accept */
    CW_MYSQL_CONNERR_INTERNAL,        /* Connection_errors_internal */
    CW_MYSQL_CONNERR_MAX_CONNECTIONS, /* Connection_errors_max_connections */
    CW_MYSQL_CONNERR_PEER_ADDRESS,    /* Connection_errors_peer_address */
    CW_MYSQL_CONNERR_SELECT,          /* Connection_errors_select */
    CW_MYSQL_CONNERR_TCPWRAP,         /* Connection_errors_tcpwrap */
    CW_MYSQL_SLOW_QUERIES,            /* Slow_queries */
    CW_MYSQL_ROW_LOCK_WAITS,          /* Innodb_row_lock_waits */
    CW_MYSQL_ROW_LOCK_TIME_MS,        /* Innodb_row_lock_time (milliseconds) */
    CW_MYSQL_DEADLOCKS,               /* Innodb_deadlocks (MariaDB >= 10.5), or
                                       * INNODB_METRICS lock_deadlocks (MySQL) */
    CW_MYSQL_MAX_CONNECTIONS,         /* variable max_connections */
    CW_MYSQL_NFIELDS
};

/* First and last connection_errors_total{reason} fields, contiguous. */
#define CW_MYSQL_CONNERR_FIRST CW_MYSQL_CONNERR_ACCEPT
#define CW_MYSQL_CONNERR_LAST  CW_MYSQL_CONNERR_TCPWRAP

struct cw_mysql_status {
    uint64_t value[CW_MYSQL_NFIELDS];
    uint32_t have; /* bit (1u << field) set when value[field] was read */
};

/* cw_mysql_field_name() returns the server's name of 'f' as it appears in
 * the rows ("Threads_connected", "max_connections", "lock_deadlocks" for the
 * INNODB_METRICS row of CW_MYSQL_DEADLOCKS is an alias, see below). */
const char *cw_mysql_field_name(enum cw_mysql_field f);

/* cw_mysql_connerr_reason() returns the reason label of a
 * Connection_errors_* field ("max_connections", "accept", ...), or NULL. */
const char *cw_mysql_connerr_reason(enum cw_mysql_field f);

/* The query of one run: two statements sent in one round trip (the
 * connection has CLIENT_MULTI_STATEMENTS), restricted to the names above:
 *   SHOW GLOBAL STATUS WHERE Variable_name IN (...);
 *   SELECT 'max_connections', @@GLOBAL.max_connections
 * (the variable by SELECT @@, not SHOW GLOBAL VARIABLES WHERE, which costs
 * the server ten to twenty times more; the row has the same two columns)
 * CW_MYSQL_QUERY_INNODB_METRICS adds a third statement for servers without
 * the Innodb_deadlocks status variable (MySQL), whose row is named
 * "lock_deadlocks":
 *   SELECT NAME, COUNT FROM information_schema.INNODB_METRICS
 *   WHERE NAME = 'lock_deadlocks'
 * Both are NUL-terminated string constants. */
extern const char cw_mysql_query[];
extern const char cw_mysql_query_innodb_metrics[];

/* cw_mysql_status_reset() empties 'st'. */
void cw_mysql_status_reset(struct cw_mysql_status *st);

/* cw_mysql_status_feed() takes one row: name (case-insensitive) and value.
 * Names outside the table are ignored (returns CW_OK). A known name whose
 * value is not a decimal unsigned integer of at most 20 digits (a fractional
 * part, as some servers print, is dropped) returns CW_EPARSE and leaves the
 * field unset. A NULL value (SQL NULL) is CW_EPARSE. */
int cw_mysql_status_feed(struct cw_mysql_status *st, const char *name, size_t name_len,
                         const char *value, size_t value_len);

/* cw_mysql_status_parse_tsv() feeds every "name<TAB>value\n" line of
 * 'text' (the output of `mariadb -B -N -e 'SHOW GLOBAL STATUS'`; a last line
 * without newline counts; CR before LF is dropped). Lines without a TAB are
 * CW_EPARSE, as is a bad value of a known name; parsing goes on and the
 * first error is returned. Used by the tests and the fuzz target. */
int cw_mysql_status_parse_tsv(struct cw_mysql_status *st, const char *text, size_t len);

/* cw_mysql_status_has() tells whether 'f' was read. */
static inline bool cw_mysql_status_has(const struct cw_mysql_status *st, enum cw_mysql_field f)
{
    return (st->have & (1u << f)) != 0;
}

/* cw_mysql_reason() maps an error of Connector/C (mysql_errno(), with
 * mysql_error() as 'msg', may be NULL) to a failure reason:
 *   access denied, password expired, host blocked/not allowed, auth plugin
 *   errors, missing privileges                            -> auth
 *   too many connections, server shutting down, killed    -> refused
 *   CR_CONNECTION_ERROR / CR_CONN_HOST_ERROR              -> from the OS errno
 *     printed as "(N)" at the end of 'msg' (ETIMEDOUT -> timeout,
 *     EHOSTUNREACH -> unreachable), refused otherwise
 *   server gone / lost (connection closed under us)       -> refused
 *   unknown host                                          -> dns
 *   TLS errors: the certificate expired / not yet valid   -> cert_expired /
 *     cert_not_yet_valid; untrusted (self-signed, unknown
 *     issuer) -> cert_untrusted; name or IP mismatch
 *     -> cert_hostname; any other TLS failure              -> tls_handshake
 *   malformed packets, handshake errors, other server
 *   errors (syntax, unknown table)                        -> protocol
 *   anything else of the client library                   -> internal */
enum cw_reason cw_mysql_reason(unsigned err, const char *msg);

/* cw_mysql_error_is_fatal() tells whether a failed query means the
 * connection is unusable (every client-side error, CR_*; also server
 * shutdown/kill notices), so the check must close it and reconnect. */
bool cw_mysql_error_is_fatal(unsigned err);

/* cw_mysql_backoff() is the wait before the next connection attempt after
 * 'fails' consecutive failures (>= 1): interval, 2x, 4x ..., at most
 * max(cap, interval). With cap 0 every run tries again. */
cw_duration cw_mysql_backoff(unsigned fails, cw_duration interval, cw_duration cap);

#endif
