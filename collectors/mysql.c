/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mysql.c - the "mysql" check: connection-pool usage, connection errors,
 * slow queries, row-lock waits and deadlocks of a MariaDB or MySQL server,
 * through MariaDB Connector/C.
 *
 * Each instance keeps one connection open between runs (in its state). A
 * run pings it (timed as connwatch_mysql_ping_seconds), then sends one query
 * of two statements, SHOW GLOBAL STATUS restricted to the names it needs
 * and SELECT @@GLOBAL.max_connections (plus information_schema.INNODB_METRICS
 * on servers without the Innodb_deadlocks status, MySQL; detected once per
 * connection). Every network step uses the non-blocking API and poll()
 * against the run's deadline, so a hung server never holds a worker past it;
 * Connector/C's own connect/read/write timeouts are set too, to the check's
 * timeout. A connection that breaks is closed and reopened at once in the
 * same run (so a restarted server costs no failed run); when connecting
 * fails, the next attempts back off exponentially (interval, 2x, 4x ... up
 * to reconnect_backoff_max) while every run still reports
 * connwatch_mysql_up 0 with the last reason. Transitions are logged once.
 *
 * Row parsing, the name table and the error mapping are pure, in
 * mysql_status.c. mysql_library_init() runs once in shared_new() (the core
 * serialises it before the first configure()); mysql_library_end() in
 * shared_free(). run() is called by one scheduler worker at a time per
 * instance; the state is owned by that instance.
 */
#include "collectors/mysql_status.h"
#include "collectors/netconn.h"
#include "exporter/check.h"

#include <errmsg.h>
#include <errno.h>
#include <mysql.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MYSQL_DEFAULT_PORT  3306
#define MYSQL_STACK_SIZE    ((size_t)256 * 1024) /* co-routine stack of the non-blocking API */
#define MYSQL_ERR_MAX       256
#define MYSQL_BACKOFF_SHIFT 16 /* interval << 16 is beyond any cap */

struct mysql_state {
    /* Options (owned through mysql_opts). */
    struct cw_hostport address;     /* owned (option table); or socket */
    char *socket;                   /* owned (option table) */
    char *user;                     /* owned (option table) */
    struct cw_secret password;      /* owned (option table): "${ENV}" */
    struct cw_secret password_file; /* owned (option table): read at load */
    bool tls;
    bool insecure_skip_verify;
    char *ca_file;   /* owned (option table) */
    char *cert_file; /* owned (option table) */
    char *key_file;  /* owned (option table) */
    cw_duration backoff_max;

    cw_duration interval;
    cw_duration timeout;

    /* Connection. */
    MYSQL *conn;                  /* owned; NULL while disconnected */
    struct cw_net_lookup *lookup; /* owned: a name lookup that outlived its run, or NULL */
    bool use_metrics;             /* this server has no Innodb_deadlocks: ask INNODB_METRICS */
    bool metrics_denied;          /* INNODB_METRICS failed on this connection (logged once) */
    bool checked_variant;         /* the deadlock source of this connection is known */

    /* Failure bookkeeping across runs. */
    unsigned fails;             /* consecutive failed connection attempts */
    cw_mono next_attempt;       /* no new attempt before this (0: at once) */
    enum cw_reason last_reason; /* of the last failed attempt; NONE while up */
    bool logged_down;           /* the current outage was logged */
    char last_err[MYSQL_ERR_MAX];
};

static const struct cw_opt mysql_opts[] = {
    CW_OPT("address", CW_OPT_T_HOSTPORT, struct mysql_state, address, NULL, MYSQL_DEFAULT_PORT, 0,
           0),
    CW_OPT("socket", CW_OPT_T_STRING, struct mysql_state, socket, NULL, 0, 0, 0),
    CW_OPT("user", CW_OPT_T_STRING, struct mysql_state, user, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("password", CW_OPT_T_SECRET, struct mysql_state, password, NULL, 0, 0, 0),
    CW_OPT("password_file", CW_OPT_T_SECRET_FILE, struct mysql_state, password_file, NULL, 0, 0, 0),
    CW_OPT("tls", CW_OPT_T_BOOL, struct mysql_state, tls, "false", 0, 0, 0),
    CW_OPT("insecure_skip_verify", CW_OPT_T_BOOL, struct mysql_state, insecure_skip_verify, "false",
           0, 0, 0),
    CW_OPT("ca_file", CW_OPT_T_PATH, struct mysql_state, ca_file, NULL, 0, 0, 0),
    CW_OPT("cert_file", CW_OPT_T_PATH, struct mysql_state, cert_file, NULL, 0, 0, 0),
    CW_OPT("key_file", CW_OPT_T_PATH, struct mysql_state, key_file, NULL, 0, 0, 0),
    CW_OPT("reconnect_backoff_max", CW_OPT_T_DURATION, struct mysql_state, backoff_max, "30s", 0,
           CW_MIN(10), 0),
    CW_OPT_END,
};

/* ---- Metric families ------------------------------------------------------ */

static const struct cw_desc desc_up = {
    .name = "connwatch_mysql_up",
    .help = "1 when the server answered the ping and the status query of the last run.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_threads_connected = {
    .name = "connwatch_mysql_threads_connected",
    .help = "Open client connections (Threads_connected), this check's own included.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_threads_running = {
    .name = "connwatch_mysql_threads_running",
    .help = "Threads not sleeping (Threads_running).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_max_connections = {
    .name = "connwatch_mysql_max_connections",
    .help = "Connection limit (variable max_connections).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_usage_ratio = {
    .name = "connwatch_mysql_connection_usage_ratio",
    .help = "Threads_connected / max_connections.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_max_used = {
    .name = "connwatch_mysql_max_used_connections",
    .help = "Peak of simultaneous connections since the server started (Max_used_connections).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_aborted_connects = {
    .name = "connwatch_mysql_aborted_connects_total",
    .help = "Failed connection attempts to the server (Aborted_connects).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_connection_errors = {
    .name = "connwatch_mysql_connection_errors_total",
    .help = "Connections the server refused, by cause (Connection_errors_<reason>).",
    .type = CW_COUNTER,
    .labels = {"reason"},
    .nlabels = 1,
};
static const struct cw_desc desc_slow_queries = {
    .name = "connwatch_mysql_slow_queries_total",
    .help = "Queries that took longer than long_query_time (Slow_queries).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_row_lock_waits = {
    .name = "connwatch_mysql_row_lock_waits_total",
    .help = "Times an InnoDB row lock had to be waited for (Innodb_row_lock_waits).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_row_lock_time = {
    .name = "connwatch_mysql_row_lock_time_seconds_total",
    .help = "Time spent waiting for InnoDB row locks (Innodb_row_lock_time).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_deadlocks = {
    .name = "connwatch_mysql_deadlocks_total",
    .help = "InnoDB deadlocks (Innodb_deadlocks; INNODB_METRICS lock_deadlocks on MySQL).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_ping = {
    .name = "connwatch_mysql_ping_seconds",
    .help = "Round trip of a ping (COM_PING) on the open connection in the last run.",
    .type = CW_GAUGE,
};

/* ---- Process-wide state ----------------------------------------------------- */

struct mysql_shared {
    int initialised;
};

static void *mysql_shared_new(void)
{
    struct mysql_shared *sh;

    if (mysql_library_init(0, NULL, NULL) != 0) {
        cw_log(CW_LOG_ERROR, "mysql", "mysql_library_init failed", (char *)NULL);
        return NULL;
    }
    sh = calloc(1, sizeof(*sh));
    if (sh == NULL) {
        mysql_library_end();
        return NULL;
    }
    sh->initialised = 1;
    return sh;
}

static void mysql_shared_free(void *shared)
{
    if (shared == NULL)
        return;
    mysql_library_end();
    free(shared);
}

/* ---- Configuration ---------------------------------------------------------- */

static int mysql_configure(void *state, const struct cw_node *node,
                           const struct cw_check_info *info, struct cw_diag *diag)
{
    struct mysql_state *s = state;
    int rc;

    rc = cw_opts_apply(mysql_opts, s, node, cw_check_common_keys, diag);
    if (info->shared == NULL) {
        cw_diagf(diag, node, "the MariaDB client library could not be initialised");
        rc = CW_ECONFIG;
    }
    if (rc != CW_OK)
        return rc;
    if ((s->address.host == NULL) == (s->socket == NULL)) {
        cw_diagf(diag, node,
                 "set exactly one of address (host:port) and socket (a unix socket "
                 "path)");
        rc = CW_ECONFIG;
    }
    if (s->password.value != NULL && s->password_file.value != NULL) {
        cw_diagf(diag, cw_node_get(node, "password"), "set password or password_file, not both");
        rc = CW_ECONFIG;
    }
    if (!s->tls && (s->ca_file != NULL || s->cert_file != NULL || s->key_file != NULL ||
                    s->insecure_skip_verify)) {
        cw_diagf(diag, node,
                 "ca_file, cert_file, key_file and insecure_skip_verify need tls: true");
        rc = CW_ECONFIG;
    }
    if ((s->cert_file == NULL) != (s->key_file == NULL)) {
        cw_diagf(diag, cw_node_get(node, s->cert_file != NULL ? "cert_file" : "key_file"),
                 "cert_file and key_file go together");
        rc = CW_ECONFIG;
    }
    if (s->socket != NULL && s->tls) {
        cw_diagf(diag, cw_node_get(node, "tls"), "tls applies to address, not to a unix socket");
        rc = CW_ECONFIG;
    }
    s->interval = info->interval;
    s->timeout = info->timeout;
    return rc;
}

static const char *mysql_target(const void *state)
{
    const struct mysql_state *s = state;

    return s->socket != NULL ? s->socket : s->address.text;
}

static const char *mysql_password(const struct mysql_state *s)
{
    if (s->password_file.value != NULL)
        return s->password_file.value;
    return s->password.value; /* NULL: no password */
}

/* ---- Non-blocking driver ---------------------------------------------------- */

/* mysql_wait() waits until the connection is ready for what 'status' (a
 * MYSQL_WAIT_* mask) asks, and returns the MYSQL_WAIT_* events that happened
 * (MYSQL_WAIT_TIMEOUT when the library's own timeout expired), or -1 when
 * 'deadline' passed first. */
static int mysql_wait(MYSQL *m, int status, cw_mono deadline)
{
    struct pollfd pfd = {.fd = (int)mysql_get_socket(m), .events = 0, .revents = 0};

    if (status & MYSQL_WAIT_READ)
        pfd.events |= POLLIN;
    if (status & MYSQL_WAIT_WRITE)
        pfd.events |= POLLOUT;
    if (status & MYSQL_WAIT_EXCEPT)
        pfd.events |= POLLPRI;
    for (;;) {
        cw_duration left = deadline - cw_now();
        long long ms;
        bool lib_timeout = false;
        int rc, ev = 0;

        if (left <= 0)
            return -1;
        ms = (left + CW_MS(1) - 1) / CW_MS(1);
        if (status & MYSQL_WAIT_TIMEOUT) {
            long long lib = (long long)mysql_get_timeout_value_ms(m);

            if (lib < ms) {
                ms = lib;
                lib_timeout = true;
            }
        }
        rc = poll(&pfd, 1, (int)ms);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (rc == 0) {
            if (lib_timeout)
                return MYSQL_WAIT_TIMEOUT;
            continue; /* re-check the deadline */
        }
        if (pfd.revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
            ev |= MYSQL_WAIT_READ;
        if (pfd.revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL))
            ev |= MYSQL_WAIT_WRITE;
        if (pfd.revents & POLLPRI)
            ev |= MYSQL_WAIT_EXCEPT;
        return ev & status;
    }
}

/* Drive one _start/_cont pair: 'st' is the status of the _start call. */
#define MYSQL_DRIVE(st, m, deadline, cont, timed_out)                                              \
    do {                                                                                           \
        while ((st) != 0) {                                                                        \
            int ev_ = mysql_wait((m), (st), (deadline));                                           \
            if (ev_ < 0) {                                                                         \
                (timed_out) = true;                                                                \
                break;                                                                             \
            }                                                                                      \
            (st) = cont;                                                                           \
        }                                                                                          \
    } while (0)

/* mysql_close_hard() frees a handle without waiting on the network: the
 * socket is shut down first, so the COM_QUIT of mysql_close() fails at once
 * instead of blocking on a hung peer. */
static void mysql_close_hard(MYSQL *m)
{
    if ((int)mysql_get_socket(m) >= 0)
        (void)shutdown((int)mysql_get_socket(m), SHUT_RDWR);
    mysql_close(m);
}

/* mysql_drop() closes s->conn: politely (COM_QUIT, at most 'grace') when it
 * is healthy, so the server counts no aborted client, else hard. */
static void mysql_drop(struct mysql_state *s, cw_duration grace)
{
    bool timed_out = false;
    MYSQL *m = s->conn;
    int st;

    if (m == NULL)
        return;
    s->conn = NULL;
    if (grace > 0) {
        cw_mono deadline = cw_now() + grace;

        st = mysql_close_start(m); /* frees m when it returns 0 */
        MYSQL_DRIVE(st, m, deadline, mysql_close_cont(m, ev_), timed_out);
        if (timed_out)
            mysql_close_hard(m);
    } else {
        mysql_close_hard(m);
    }
    s->checked_variant = false;
    s->use_metrics = false;
    s->metrics_denied = false;
}

/* ---- Failures, backoff and the log ------------------------------------------ */

/* mysql_note_failure() records a failed attempt (reason and detail), logs it
 * when it starts an outage or changes its reason, and schedules the next
 * attempt. */
static void mysql_note_failure(struct mysql_state *s, struct cw_run *run, cw_mono run_start,
                               enum cw_reason reason, const char *detail)
{
    cw_duration delay;

    if (!s->logged_down || reason != s->last_reason) {
        cw_run_log(run, CW_LOG_DEBUG, "connection failed", "target", mysql_target(s), "reason",
                   cw_reason_label(reason), "error", detail, (char *)NULL);
        s->logged_down = true;
    }
    s->last_reason = reason;
    (void)snprintf(s->last_err, sizeof(s->last_err), "%s", detail);
    s->fails++;
    delay = cw_mysql_backoff(s->fails, s->interval, s->backoff_max);
    /* Half an interval of slack, so that an attempt due "at the next run"
     * is not skipped because the run started a little early. */
    s->next_attempt = run_start + delay - s->interval / 2;
}

/* mysql_error_reason() maps the last error of the connection. */
static enum cw_reason mysql_error_reason(MYSQL *m)
{
    return cw_mysql_reason(mysql_errno(m), mysql_error(m));
}

/* ---- Connecting ------------------------------------------------------------- */

/* mysql_set_options() prepares a fresh handle. Returns false on an option
 * the library rejected (the message goes to 'err'). */
static bool mysql_set_options(const struct mysql_state *s, MYSQL *m, char *err, size_t errlen)
{
    unsigned secs = (unsigned)((s->timeout + CW_S(1) - 1) / CW_S(1));
    unsigned proto = s->socket != NULL ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    my_bool yes = 1, verify = s->insecure_skip_verify ? 0 : 1;
    const char *failed = NULL;

    if (secs == 0)
        secs = 1;
    if (mysql_options(m, MYSQL_OPT_NONBLOCK, &(size_t){MYSQL_STACK_SIZE}) != 0)
        failed = "MYSQL_OPT_NONBLOCK";
    else if (mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &secs) != 0)
        failed = "MYSQL_OPT_CONNECT_TIMEOUT";
    else if (mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &secs) != 0)
        failed = "MYSQL_OPT_READ_TIMEOUT";
    else if (mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &secs) != 0)
        failed = "MYSQL_OPT_WRITE_TIMEOUT";
    else if (mysql_options(m, MYSQL_OPT_PROTOCOL, &proto) != 0)
        failed = "MYSQL_OPT_PROTOCOL";
    else if (mysql_options(m, MYSQL_OPT_CONNECT_ATTR_RESET, NULL) != 0)
        failed = "MYSQL_OPT_CONNECT_ATTR_RESET";
    else if (mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "connwatch") != 0)
        failed = "MYSQL_OPT_CONNECT_ATTR_ADD";
    if (failed == NULL && s->tls) {
        if (mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &yes) != 0)
            failed = "MYSQL_OPT_SSL_ENFORCE";
        else if (mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify) != 0)
            failed = "MYSQL_OPT_SSL_VERIFY_SERVER_CERT";
        else if (s->ca_file != NULL && mysql_options(m, MYSQL_OPT_SSL_CA, s->ca_file) != 0)
            failed = "MYSQL_OPT_SSL_CA";
        else if (s->cert_file != NULL && mysql_options(m, MYSQL_OPT_SSL_CERT, s->cert_file) != 0)
            failed = "MYSQL_OPT_SSL_CERT";
        else if (s->key_file != NULL && mysql_options(m, MYSQL_OPT_SSL_KEY, s->key_file) != 0)
            failed = "MYSQL_OPT_SSL_KEY";
    }
    if (failed != NULL) {
        (void)snprintf(err, errlen, "mysql_options %s: %s", failed, mysql_error(m));
        return false;
    }
    return true;
}

/* mysql_host() returns in *host what Connector/C connects to. Connector/C
 * resolves names with a blocking getaddrinfo() that no deadline bounds, so
 * a name is resolved here first, through the network layer within the
 * run's deadline (collectors/netconn.c: a silent resolver fails the run
 * with reason dns on time), and Connector/C gets the numeric address (its
 * own getaddrinfo() of a literal does no I/O); its non-blocking connect is
 * then polled against the same deadline (mysql_wait()). One exception:
 * with tls and certificate verification, Connector/C checks the server's
 * certificate against the host it was given, so a name is handed over as
 * the name once the layer resolved it (Connector/C looks it up again;
 * mysql.md, "Names"). A unix socket needs no resolution. Returns false with
 * *reason and 'err' when the name does not resolve in time. */
static bool mysql_host(struct mysql_state *s, cw_mono deadline, char *ip, size_t iplen,
                       const char **host, enum cw_reason *reason, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct cw_net_fail f;
    socklen_t len = 0;

    if (s->socket != NULL) {
        *host = "localhost";
        return true;
    }
    if (!cw_net_first(s->address.host, s->address.port, CW_NET_FAMILY_AUTO, deadline, &s->lookup,
                      &ss, &len, &f)) {
        *reason = f.reason;
        (void)snprintf(err, errlen, "%s", f.detail);
        return false;
    }
    if (s->tls && !s->insecure_skip_verify) {
        *host = s->address.host; /* the name the certificate is checked against */
        return true;
    }
    *host = cw_net_addr_format((struct sockaddr *)&ss, ip, iplen);
    return true;
}

/* mysql_connect() opens s->conn before 'deadline'. On failure it returns
 * the reason and a detail in 'err'; s->conn stays NULL. */
static enum cw_reason mysql_connect(struct mysql_state *s, cw_mono deadline, char *err,
                                    size_t errlen)
{
    MYSQL *m;
    MYSQL *ret = NULL;
    bool timed_out = false;
    enum cw_reason reason;
    char ip[INET6_ADDRSTRLEN];
    const char *host;
    int st;

    if (!mysql_host(s, deadline, ip, sizeof(ip), &host, &reason, err, errlen))
        return reason;
    m = mysql_init(NULL);
    if (m == NULL) {
        (void)snprintf(err, errlen, "mysql_init: out of memory");
        return CW_REASON_INTERNAL;
    }
    if (!mysql_set_options(s, m, err, errlen)) {
        mysql_close(m);
        return CW_REASON_INTERNAL;
    }
    st = mysql_real_connect_start(&ret, m, host, s->user, mysql_password(s), NULL,
                                  s->socket != NULL ? 0 : s->address.port, s->socket,
                                  CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS);
    MYSQL_DRIVE(st, m, deadline, mysql_real_connect_cont(&ret, m, ev_), timed_out);
    if (timed_out) {
        (void)snprintf(err, errlen, "connect: no answer before the deadline");
        mysql_close_hard(m);
        return CW_REASON_TIMEOUT;
    }
    if (ret == NULL) {
        reason = mysql_error_reason(m);
        (void)snprintf(err, errlen, "connect: %s (%u)", mysql_error(m), mysql_errno(m));
        mysql_close(m);
        return reason;
    }
    s->conn = m;
    return CW_REASON_NONE;
}

/* ---- One session: ping and status ------------------------------------------- */

enum mysql_result {
    MYSQL_RES_OK = 0,
    MYSQL_RES_BROKEN,    /* the connection is unusable: close and reconnect */
    MYSQL_RES_TIMEOUT,   /* the deadline passed mid-way: close */
    MYSQL_RES_SERVER_ERR /* the server refused a statement; the connection is fine */
};

/* mysql_query_status() sends the status query and reads every result set
 * into 'st'. 'with_metrics' selects the variant with INNODB_METRICS. */
static enum mysql_result mysql_query_status(struct mysql_state *s, cw_mono deadline,
                                            bool with_metrics, struct cw_mysql_status *st,
                                            unsigned *bad_values, char *err, size_t errlen)
{
    MYSQL *m = s->conn;
    const char *q = with_metrics ? cw_mysql_query_innodb_metrics : cw_mysql_query;
    bool timed_out = false;
    int ret = 0, status;
    unsigned nresult = 0;

    status = mysql_real_query_start(&ret, m, q, (unsigned long)strlen(q));
    MYSQL_DRIVE(status, m, deadline, mysql_real_query_cont(&ret, m, ev_), timed_out);
    if (timed_out)
        return MYSQL_RES_TIMEOUT;
    if (ret != 0)
        goto out_error;
    for (;;) {
        MYSQL_RES *res = NULL;

        status = mysql_store_result_start(&res, m);
        MYSQL_DRIVE(status, m, deadline, mysql_store_result_cont(&res, m, ev_), timed_out);
        if (timed_out)
            return MYSQL_RES_TIMEOUT;
        if (res == NULL && mysql_field_count(m) != 0)
            goto out_error;
        if (res != NULL) {
            MYSQL_ROW row;

            if (mysql_num_fields(res) >= 2) {
                while ((row = mysql_fetch_row(res)) != NULL) {
                    unsigned long *lens = mysql_fetch_lengths(res);

                    if (lens == NULL)
                        break;
                    if (cw_mysql_status_feed(st, row[0], row[0] != NULL ? lens[0] : 0, row[1],
                                             lens[1]) != CW_OK)
                        (*bad_values)++;
                }
            }
            mysql_free_result(res);
        }
        nresult++;
        status = mysql_next_result_start(&ret, m);
        MYSQL_DRIVE(status, m, deadline, mysql_next_result_cont(&ret, m, ev_), timed_out);
        if (timed_out)
            return MYSQL_RES_TIMEOUT;
        if (ret < 0)
            return MYSQL_RES_OK;
        if (ret > 0)
            goto out_error;
    }

out_error:
    (void)snprintf(err, errlen, "status query (statement %u): %s (%u)", nresult + 1, mysql_error(m),
                   mysql_errno(m));
    return cw_mysql_error_is_fatal(mysql_errno(m)) ? MYSQL_RES_BROKEN : MYSQL_RES_SERVER_ERR;
}

/* mysql_session() pings the open connection and reads the status. */
static enum mysql_result mysql_session(struct mysql_state *s, struct cw_run *run, cw_mono deadline,
                                       double *ping, struct cw_mysql_status *st,
                                       unsigned *bad_values, char *err, size_t errlen)
{
    MYSQL *m = s->conn;
    bool timed_out = false;
    cw_mono t0 = cw_now();
    enum mysql_result r;
    int ret = 0, status;

    status = mysql_ping_start(&ret, m);
    MYSQL_DRIVE(status, m, deadline, mysql_ping_cont(&ret, m, ev_), timed_out);
    if (timed_out) {
        (void)snprintf(err, errlen, "ping: no answer before the deadline");
        return MYSQL_RES_TIMEOUT;
    }
    if (ret != 0) {
        (void)snprintf(err, errlen, "ping: %s (%u)", mysql_error(m), mysql_errno(m));
        return cw_mysql_error_is_fatal(mysql_errno(m)) ? MYSQL_RES_BROKEN : MYSQL_RES_SERVER_ERR;
    }
    *ping = cw_seconds(cw_now() - t0);

    cw_mysql_status_reset(st);
    r = mysql_query_status(s, deadline, s->use_metrics && !s->metrics_denied, st, bad_values, err,
                           errlen);
    if (r == MYSQL_RES_TIMEOUT)
        (void)snprintf(err, errlen, "status query: no answer before the deadline");
    if (r == MYSQL_RES_SERVER_ERR && s->use_metrics && !s->metrics_denied &&
        cw_mysql_status_has(st, CW_MYSQL_MAX_CONNECTIONS)) {
        /* The first two statements worked; INNODB_METRICS did not (no
         * PROCESS privilege): go on without deadlocks on this connection. */
        cw_run_log(run, CW_LOG_WARN, "deadlock counter unavailable", "target", mysql_target(s),
                   "error", err, (char *)NULL);
        s->metrics_denied = true;
        r = MYSQL_RES_OK;
    }
    if (r == MYSQL_RES_OK && !s->checked_variant) {
        s->checked_variant = true;
        if (!cw_mysql_status_has(st, CW_MYSQL_DEADLOCKS)) {
            /* MySQL (or MariaDB < 10.5): the counter is in INNODB_METRICS. */
            s->use_metrics = true;
            cw_mysql_status_reset(st);
            *bad_values = 0;
            return mysql_session(s, run, deadline, ping, st, bad_values, err, errlen);
        }
    }
    return r;
}

/* ---- run() ------------------------------------------------------------------ */

static void mysql_emit(struct cw_run *run, const struct cw_mysql_status *st, double ping)
{
    static const struct {
        enum cw_mysql_field f;
        const struct cw_desc *d;
    } plain[] = {
        {CW_MYSQL_THREADS_CONNECTED, &desc_threads_connected},
        {CW_MYSQL_THREADS_RUNNING, &desc_threads_running},
        {CW_MYSQL_MAX_CONNECTIONS, &desc_max_connections},
        {CW_MYSQL_MAX_USED_CONNECTIONS, &desc_max_used},
        {CW_MYSQL_ABORTED_CONNECTS, &desc_aborted_connects},
        {CW_MYSQL_SLOW_QUERIES, &desc_slow_queries},
        {CW_MYSQL_ROW_LOCK_WAITS, &desc_row_lock_waits},
        {CW_MYSQL_DEADLOCKS, &desc_deadlocks},
    };
    size_t i;

    cw_emit(run, &desc_up, 1, NULL);
    cw_emit(run, &desc_ping, ping, NULL);
    for (i = 0; i < CW_ARRAY_LEN(plain); i++)
        if (cw_mysql_status_has(st, plain[i].f))
            cw_emit(run, plain[i].d, (double)st->value[plain[i].f], NULL);
    if (cw_mysql_status_has(st, CW_MYSQL_THREADS_CONNECTED) &&
        cw_mysql_status_has(st, CW_MYSQL_MAX_CONNECTIONS) &&
        st->value[CW_MYSQL_MAX_CONNECTIONS] > 0)
        cw_emit(run, &desc_usage_ratio,
                (double)st->value[CW_MYSQL_THREADS_CONNECTED] /
                    (double)st->value[CW_MYSQL_MAX_CONNECTIONS],
                NULL);
    for (i = CW_MYSQL_CONNERR_FIRST; i <= CW_MYSQL_CONNERR_LAST; i++) {
        const char *const lv[1] = {cw_mysql_connerr_reason((enum cw_mysql_field)i)};

        if (cw_mysql_status_has(st, (enum cw_mysql_field)i))
            cw_emit(run, &desc_connection_errors, (double)st->value[i], lv);
    }
    if (cw_mysql_status_has(st, CW_MYSQL_ROW_LOCK_TIME_MS))
        cw_emit(run, &desc_row_lock_time, (double)st->value[CW_MYSQL_ROW_LOCK_TIME_MS] / 1000.0,
                NULL);
}

static void mysql_run(void *state, struct cw_run *run)
{
    struct mysql_state *s = state;
    cw_mono start = cw_now();
    cw_mono deadline = cw_run_deadline(run);
    struct cw_mysql_status st;
    char err[MYSQL_ERR_MAX] = "";
    enum cw_reason reason;
    enum mysql_result r;
    unsigned bad_values = 0;
    double ping = 0;
    bool fresh = false;

    s->interval = cw_run_info(run)->interval;
    if (s->conn == NULL) {
        if (s->fails > 0 && start < s->next_attempt) {
            cw_emit(run, &desc_up, 0, NULL);
            cw_run_fail(run, s->last_reason, "%s (backing off, next attempt in %.1fs)", s->last_err,
                        cw_seconds(s->next_attempt - start));
            return;
        }
        reason = mysql_connect(s, deadline, err, sizeof(err));
        if (reason != CW_REASON_NONE)
            goto out_down;
        fresh = true;
    }

    r = mysql_session(s, run, deadline, &ping, &st, &bad_values, err, sizeof(err));
    if (r == MYSQL_RES_BROKEN && !fresh) {
        /* Broken since the last run (server restarted, connection killed):
         * one new connection at once, so that a restart costs no run. */
        cw_run_log(run, CW_LOG_INFO, "connection lost, reconnecting", "target", mysql_target(s),
                   "error", err, (char *)NULL);
        mysql_drop(s, 0);
        reason = mysql_connect(s, deadline, err, sizeof(err));
        if (reason != CW_REASON_NONE)
            goto out_down;
        fresh = true;
        r = mysql_session(s, run, deadline, &ping, &st, &bad_values, err, sizeof(err));
    }
    switch (r) {
    case MYSQL_RES_OK:
        break;
    case MYSQL_RES_TIMEOUT:
        mysql_drop(s, 0);
        reason = CW_REASON_TIMEOUT;
        goto out_down;
    case MYSQL_RES_BROKEN:
        reason = mysql_error_reason(s->conn);
        mysql_drop(s, 0);
        goto out_down;
    case MYSQL_RES_SERVER_ERR:
        reason = mysql_error_reason(s->conn);
        cw_emit(run, &desc_up, 0, NULL);
        cw_run_fail(run, reason, "%s", err);
        return;
    }

    if (fresh)
        cw_run_log(run, CW_LOG_INFO, "connected", "target", mysql_target(s), "server",
                   mysql_get_server_info(s->conn), (char *)NULL);
    s->fails = 0;
    s->next_attempt = 0;
    s->logged_down = false;
    s->last_reason = CW_REASON_NONE;
    mysql_emit(run, &st, ping);
    if (bad_values > 0)
        cw_run_fail(run, CW_REASON_PROTOCOL, "%u status values were not unsigned integers",
                    bad_values);
    return;

out_down:
    mysql_note_failure(s, run, start, reason, err);
    cw_emit(run, &desc_up, 0, NULL);
    cw_run_fail(run, reason, "%s", err);
}

static void mysql_release(void *state)
{
    struct mysql_state *s = state;

    mysql_drop(s, CW_MS(200));
    cw_net_lookup_abandon(&s->lookup);
    cw_opts_release(mysql_opts, s);
    memset(s->last_err, 0, sizeof(s->last_err));
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const mysql_descs[] = {
    &desc_up,
    &desc_threads_connected,
    &desc_threads_running,
    &desc_max_connections,
    &desc_usage_ratio,
    &desc_max_used,
    &desc_aborted_connects,
    &desc_connection_errors,
    &desc_slow_queries,
    &desc_row_lock_waits,
    &desc_row_lock_time,
    &desc_deadlocks,
    &desc_ping,
    NULL,
};
const struct cw_check_kind cw_kind_mysql = {
    .name = "mysql",
    .layer = CW_LAYER_DATABASE,
    .state_size = sizeof(struct mysql_state),
    .reasons = (1u << CW_REASON_DNS) | (1u << CW_REASON_REFUSED) | (1u << CW_REASON_TIMEOUT) |
               (1u << CW_REASON_UNREACHABLE) | (1u << CW_REASON_TLS_HANDSHAKE) |
               (1u << CW_REASON_CERT_EXPIRED) | (1u << CW_REASON_CERT_NOT_YET_VALID) |
               (1u << CW_REASON_CERT_UNTRUSTED) | (1u << CW_REASON_CERT_HOSTNAME) |
               (1u << CW_REASON_AUTH) | (1u << CW_REASON_PROTOCOL) | (1u << CW_REASON_INTERNAL),
    .configure = mysql_configure,
    .target = mysql_target,
    .run = mysql_run,
    .release = mysql_release,
    .shared_new = mysql_shared_new,
    .shared_free = mysql_shared_free,
    .probe_option = "address",
    .descs = {mysql_descs},
};
