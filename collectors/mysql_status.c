/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mysql_status.c - the name table, query text, row parser and error-to-reason
 * mapping of the "mysql" check (see mysql_status.h). Pure and thread-safe:
 * constant tables only, no I/O, no allocation.
 */
#include "collectors/mysql_status.h"

#include "exporter/core/num.h"

#include <errmsg.h>
#include <errno.h>
#include <mysqld_error.h>
#include <string.h>
#include <strings.h>

/* Server names, in enum order. Status names as SHOW GLOBAL STATUS prints
 * them, the variable in lower case; comparison is case-insensitive. */
static const struct {
    const char *name;
    const char *connerr; /* reason label of connection_errors_total, or NULL */
} mysql_fields[CW_MYSQL_NFIELDS] = {
    [CW_MYSQL_THREADS_CONNECTED] = {"Threads_connected", NULL},
    [CW_MYSQL_THREADS_RUNNING] = {"Threads_running", NULL},
    [CW_MYSQL_MAX_USED_CONNECTIONS] = {"Max_used_connections", NULL},
    [CW_MYSQL_ABORTED_CONNECTS] = {"Aborted_connects", NULL},
    [CW_MYSQL_CONNERR_ACCEPT] = {"Connection_errors_accept", "accept"},
    [CW_MYSQL_CONNERR_INTERNAL] = {"Connection_errors_internal", "internal"},
    [CW_MYSQL_CONNERR_MAX_CONNECTIONS] = {"Connection_errors_max_connections", "max_connections"},
    [CW_MYSQL_CONNERR_PEER_ADDRESS] = {"Connection_errors_peer_address", "peer_address"},
    [CW_MYSQL_CONNERR_SELECT] = {"Connection_errors_select", "select"},
    [CW_MYSQL_CONNERR_TCPWRAP] = {"Connection_errors_tcpwrap", "tcpwrap"},
    [CW_MYSQL_SLOW_QUERIES] = {"Slow_queries", NULL},
    [CW_MYSQL_ROW_LOCK_WAITS] = {"Innodb_row_lock_waits", NULL},
    [CW_MYSQL_ROW_LOCK_TIME_MS] = {"Innodb_row_lock_time", NULL},
    [CW_MYSQL_DEADLOCKS] = {"Innodb_deadlocks", NULL},
    [CW_MYSQL_MAX_CONNECTIONS] = {"max_connections", NULL},
};

/* The INNODB_METRICS row that stands for CW_MYSQL_DEADLOCKS on MySQL. */
#define MYSQL_METRICS_DEADLOCKS "lock_deadlocks"

/* Keep in step with mysql_fields (the unit test checks every name is here).
 * The variable is read with SELECT @@GLOBAL.max_connections, which costs
 * the server about a tenth of SHOW GLOBAL VARIABLES WHERE (that statement
 * builds a temporary table of every variable and filters it: 0.45-0.53 ms
 * of mariadbd CPU against 0.02-0.025 ms on MariaDB 10.11, bench/README.md).
 * The SELECT names its own first column, so the row is fed like the others. */
const char cw_mysql_query[] =
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected','Threads_running',"
    "'Max_used_connections','Aborted_connects','Connection_errors_accept',"
    "'Connection_errors_internal','Connection_errors_max_connections',"
    "'Connection_errors_peer_address','Connection_errors_select','Connection_errors_tcpwrap',"
    "'Slow_queries','Innodb_row_lock_waits','Innodb_row_lock_time','Innodb_deadlocks');"
    "SELECT 'max_connections', @@GLOBAL.max_connections";

const char cw_mysql_query_innodb_metrics[] =
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected','Threads_running',"
    "'Max_used_connections','Aborted_connects','Connection_errors_accept',"
    "'Connection_errors_internal','Connection_errors_max_connections',"
    "'Connection_errors_peer_address','Connection_errors_select','Connection_errors_tcpwrap',"
    "'Slow_queries','Innodb_row_lock_waits','Innodb_row_lock_time');"
    "SELECT 'max_connections', @@GLOBAL.max_connections;"
    "SELECT NAME, COUNT FROM information_schema.INNODB_METRICS WHERE NAME = "
    "'" MYSQL_METRICS_DEADLOCKS "'";

const char *cw_mysql_field_name(enum cw_mysql_field f)
{
    return (unsigned)f < CW_MYSQL_NFIELDS ? mysql_fields[f].name : "";
}

const char *cw_mysql_connerr_reason(enum cw_mysql_field f)
{
    return (unsigned)f < CW_MYSQL_NFIELDS ? mysql_fields[f].connerr : NULL;
}

void cw_mysql_status_reset(struct cw_mysql_status *st)
{
    memset(st, 0, sizeof(*st));
}

static bool name_eq(const char *want, const char *name, size_t len)
{
    return strlen(want) == len && strncasecmp(want, name, len) == 0;
}

/* parse_u64() reads [0-9]+ optionally followed by ".digits" (dropped). */
static int parse_u64(const char *p, size_t len, uint64_t *out)
{
    const char *dot = memchr(p, '.', len);
    size_t i;

    if (dot == NULL)
        return cw_parse_u64(p, len, out) == CW_OK ? CW_OK : CW_EPARSE;
    for (i = (size_t)(dot - p) + 1; i < len; i++)
        if (p[i] < '0' || p[i] > '9')
            return CW_EPARSE;
    return cw_parse_u64(p, (size_t)(dot - p), out) == CW_OK ? CW_OK : CW_EPARSE;
}

int cw_mysql_status_feed(struct cw_mysql_status *st, const char *name, size_t name_len,
                         const char *value, size_t value_len)
{
    unsigned f;
    uint64_t v;

    if (name == NULL)
        return CW_EPARSE;
    if (name_eq(MYSQL_METRICS_DEADLOCKS, name, name_len)) {
        f = CW_MYSQL_DEADLOCKS;
    } else {
        for (f = 0; f < CW_MYSQL_NFIELDS; f++)
            if (name_eq(mysql_fields[f].name, name, name_len))
                break;
        if (f == CW_MYSQL_NFIELDS)
            return CW_OK;
    }
    if (value == NULL || parse_u64(value, value_len, &v) != CW_OK)
        return CW_EPARSE;
    st->value[f] = v;
    st->have |= 1u << f;
    return CW_OK;
}

int cw_mysql_status_parse_tsv(struct cw_mysql_status *st, const char *text, size_t len)
{
    size_t pos = 0;
    int first = CW_OK;

    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        const char *tab;
        int rc;

        pos += n + (nl != NULL ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        tab = memchr(line, '\t', n);
        if (tab == NULL) {
            rc = CW_EPARSE;
        } else {
            size_t nlen = (size_t)(tab - line);

            rc = cw_mysql_status_feed(st, line, nlen, tab + 1, n - nlen - 1);
        }
        if (rc != CW_OK && first == CW_OK)
            first = rc;
    }
    return first;
}

/* os_errno_in() reads the OS errno Connector/C prints as " (N)" at the end
 * of a connect error message; 0 when there is none. */
static int os_errno_in(const char *msg)
{
    size_t len, i;
    uint64_t v;

    if (msg == NULL)
        return 0;
    len = strlen(msg);
    while (len > 0 && msg[len - 1] == ' ')
        len--;
    if (len < 3 || msg[len - 1] != ')')
        return 0;
    i = len - 1;
    while (i > 0 && msg[i - 1] >= '0' && msg[i - 1] <= '9')
        i--;
    if (i == 0 || msg[i - 1] != '(' || i == len - 1 || len - 1 - i > 5 ||
        cw_parse_u64(msg + i, len - 1 - i, &v) != CW_OK)
        return 0;
    return (int)v;
}

/* tls_reason() refines a TLS failure from the verification error that
 * Connector/C copies from OpenSSL or GnuTLS into its message. */
static enum cw_reason tls_reason(const char *msg)
{
    static const struct {
        const char *text;
        enum cw_reason reason;
    } known[] = {
        {"certificate has expired", CW_REASON_CERT_EXPIRED},
        {"certificate is not yet valid", CW_REASON_CERT_NOT_YET_VALID},
        {"hostname mismatch", CW_REASON_CERT_HOSTNAME},
        {"ip address mismatch", CW_REASON_CERT_HOSTNAME},
        {"self-signed certificate", CW_REASON_CERT_UNTRUSTED},
        {"self signed certificate", CW_REASON_CERT_UNTRUSTED},
        {"unable to get local issuer certificate", CW_REASON_CERT_UNTRUSTED},
        {"unable to get issuer certificate", CW_REASON_CERT_UNTRUSTED},
        {"unable to verify the first certificate", CW_REASON_CERT_UNTRUSTED},
        {"certificate signature failure", CW_REASON_CERT_UNTRUSTED},
    };
    size_t i;

    if (msg == NULL)
        return CW_REASON_TLS_HANDSHAKE;
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcasestr(msg, known[i].text) != NULL)
            return known[i].reason;
    return CW_REASON_TLS_HANDSHAKE;
}

enum cw_reason cw_mysql_reason(unsigned err, const char *msg)
{
    switch (err) {
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_ACCESS_DENIED_NO_PASSWORD_ERROR:
    case ER_NOT_SUPPORTED_AUTH_MODE:
    case ER_HOST_IS_BLOCKED:
    case ER_HOST_NOT_PRIVILEGED:
    case ER_PASSWORD_NO_MATCH:
    case ER_SPECIFIC_ACCESS_DENIED_ERROR:
    case ER_TABLEACCESS_DENIED_ERROR:
    case ER_COLUMNACCESS_DENIED_ERROR:
    case ER_PROCACCESS_DENIED_ERROR:
    case ER_MUST_CHANGE_PASSWORD:
    case ER_MUST_CHANGE_PASSWORD_LOGIN:
    case ER_USER_IS_BLOCKED:
    case ER_ACCOUNT_HAS_BEEN_LOCKED:
    case 3118: /* MySQL 8 ER_ACCOUNT_HAS_BEEN_LOCKED */
    case 3159: /* MySQL 8 ER_SECURE_TRANSPORT_REQUIRED */
    case CR_AUTH_PLUGIN_CANNOT_LOAD:
    case CR_AUTH_PLUGIN_ERR:
    case CR_SECURE_AUTH:
        return CW_REASON_AUTH;
    case ER_CON_COUNT_ERROR:
    case ER_OUT_OF_RESOURCES:
    case ER_BAD_HOST_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_NORMAL_SHUTDOWN:
    case ER_CANT_CREATE_THREAD:
    case ER_TOO_MANY_USER_CONNECTIONS:
    case ER_USER_LIMIT_REACHED:
    case ER_CONNECTION_KILLED:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
        return CW_REASON_REFUSED;
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR: {
        /* The errno in the message, through the core's one table; refused
         * when there is none or the table does not know it (ENOENT of a
         * missing unix socket). */
        int os = os_errno_in(msg);
        enum cw_reason r = os != 0 ? cw_reason_from_errno(os) : CW_REASON_INTERNAL;

        return r != CW_REASON_INTERNAL ? r : CW_REASON_REFUSED;
    }
    case ER_NET_READ_INTERRUPTED:
        return CW_REASON_TIMEOUT;
    case CR_UNKNOWN_HOST:
        return CW_REASON_DNS;
    case CR_SSL_CONNECTION_ERROR:
        return tls_reason(msg);
    case ER_HANDSHAKE_ERROR:
    case CR_VERSION_ERROR:
    case CR_SERVER_HANDSHAKE_ERR:
    case CR_MALFORMED_PACKET:
    case CR_NET_PACKET_TOO_LARGE:
    case CR_COMMANDS_OUT_OF_SYNC:
    case CR_CONN_UNKNOWN_PROTOCOL:
    case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE:
    case CR_ERR_NET_UNCOMPRESS:
    case CR_VERSION_MISMATCH:
        return CW_REASON_PROTOCOL;
    default:
        break;
    }
    if (err >= 1000 && err < CR_MIN_ERROR)
        return CW_REASON_PROTOCOL; /* any other server error */
    if (err >= 3000 && err < 5000)
        return CW_REASON_PROTOCOL; /* MySQL 5.7+/8.0 server errors */
    return CW_REASON_INTERNAL;
}

bool cw_mysql_error_is_fatal(unsigned err)
{
    switch (err) {
    case ER_SERVER_SHUTDOWN:
    case ER_NORMAL_SHUTDOWN:
    case ER_CONNECTION_KILLED:
    case ER_NET_READ_INTERRUPTED:
        return true;
    default:
        break;
    }
    return (err >= CR_MIN_ERROR && err <= CR_MAX_ERROR) || err >= 5000;
}

cw_duration cw_mysql_backoff(unsigned fails, cw_duration interval, cw_duration cap)
{
    cw_duration d = interval > 0 ? interval : CW_S(1);
    unsigned i;

    if (cap < d)
        return d;
    for (i = 1; i < fails && d < cap; i++)
        d = d > cap / 2 ? cap : d * 2;
    return d < cap ? d : cap;
}
