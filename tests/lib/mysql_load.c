/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mysql_load.c - load generator for tests/integration/it_mysql.sh: holds
 * client connections open, provokes a deadlock or a row-lock wait on a real
 * mariadbd, through the blocking Connector/C API.
 *
 *   mysql_load hold SOCKET USER N      open N connections; print
 *                                      "held H refused R" (R: error 1040);
 *                                      keep them until stdin reaches EOF; a
 *                                      line "status VAR" on stdin prints
 *                                      "status VAR VALUE", the global status
 *                                      variable read on the first connection
 *                                      (so while the server is full)
 *   mysql_load deadlock SOCKET USER    two transactions that deadlock; print
 *                                      "deadlocks 1" when the server chose a victim
 *   mysql_load lockwait SOCKET USER MS one transaction waits MS ms for a row
 *                                      lock held by another; print "waited"
 *   mysql_load proxy LPORT TPORT       relay TCP from 127.0.0.1:LPORT to
 *                                      127.0.0.1:TPORT until killed; print
 *                                      "ready" (killing it cuts every
 *                                      relayed connection at once)
 *
 * A test program, single-threaded; exits 0 on success, 1 on failure.
 */
#include <arpa/inet.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static MYSQL *connect_one(const char *sock, const char *user, unsigned *err)
{
    MYSQL *m = mysql_init(NULL);

    *err = 0;
    if (m == NULL)
        return NULL;
    if (mysql_real_connect(m, "localhost", user, NULL, NULL, 0, sock, 0) == NULL) {
        *err = mysql_errno(m);
        mysql_close(m);
        return NULL;
    }
    return m;
}

static int q(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0) {
        fprintf(stderr, "mysql_load: %s: %s (%u)\n", sql, mysql_error(m), mysql_errno(m));
        return -1;
    }
    return 0;
}

static int setup_table(MYSQL *m)
{
    if (q(m, "CREATE DATABASE IF NOT EXISTS cwtest") != 0 ||
        q(m, "CREATE TABLE IF NOT EXISTS cwtest.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB") !=
            0 ||
        q(m, "INSERT IGNORE INTO cwtest.t VALUES (1, 0), (2, 0)") != 0)
        return -1;
    return 0;
}

/* Print "status VAR VALUE" (VALUE "?" when the query fails). */
static void print_status(MYSQL *m, const char *var)
{
    char sql[128];
    MYSQL_RES *res;
    MYSQL_ROW row;
    const char *value = "?";

    snprintf(sql, sizeof(sql), "SHOW GLOBAL STATUS LIKE '%s'", var);
    res = q(m, sql) == 0 ? mysql_store_result(m) : NULL;
    row = res != NULL ? mysql_fetch_row(res) : NULL;
    if (row != NULL && row[1] != NULL)
        value = row[1];
    printf("status %s %s\n", var, value);
    fflush(stdout);
    mysql_free_result(res);
}

static int do_hold(const char *sock, const char *user, long n)
{
    MYSQL **conns = calloc((size_t)n, sizeof(*conns));
    long held = 0, refused = 0, other = 0, i;
    char buf[64];

    if (conns == NULL)
        return 1;
    for (i = 0; i < n; i++) {
        unsigned err;

        conns[held] = connect_one(sock, user, &err);
        if (conns[held] != NULL)
            held++;
        else if (err == ER_CON_COUNT_ERROR)
            refused++;
        else
            other++;
    }
    printf("held %ld refused %ld other %ld\n", held, refused, other);
    fflush(stdout);
    while (fgets(buf, sizeof(buf), stdin) != NULL) {
        char var[48];

        if (sscanf(buf, "status %47[A-Za-z_]", var) == 1 && held > 0)
            print_status(conns[0], var);
    }
    for (i = 0; i < held; i++)
        mysql_close(conns[i]);
    free(conns);
    return 0;
}

static int do_deadlock(const char *sock, const char *user)
{
    unsigned err;
    MYSQL *a = connect_one(sock, user, &err);
    MYSQL *b = connect_one(sock, user, &err);
    int rc = 1, victims = 0;

    if (a == NULL || b == NULL || setup_table(a) != 0)
        goto out;
    if (q(a, "BEGIN") != 0 || q(b, "BEGIN") != 0 ||
        q(a, "UPDATE cwtest.t SET v = v + 1 WHERE id = 1") != 0 ||
        q(b, "UPDATE cwtest.t SET v = v + 1 WHERE id = 2") != 0)
        goto out;
    /* a waits for row 2 (held by b) ... */
    if (mysql_send_query(a, "UPDATE cwtest.t SET v = v + 1 WHERE id = 2", 42) != 0)
        goto out;
    usleep(200 * 1000);
    /* ... and b for row 1 (held by a): one of them is chosen as the victim. */
    if (mysql_query(b, "UPDATE cwtest.t SET v = v + 1 WHERE id = 1") != 0 &&
        mysql_errno(b) == ER_LOCK_DEADLOCK)
        victims++;
    else
        (void)q(b, "COMMIT");
    if (mysql_read_query_result(a) != 0 && mysql_errno(a) == ER_LOCK_DEADLOCK)
        victims++;
    (void)mysql_query(a, "ROLLBACK");
    (void)mysql_query(b, "ROLLBACK");
    printf("deadlocks %d\n", victims);
    rc = victims == 1 ? 0 : 1;
out:
    if (a != NULL)
        mysql_close(a);
    if (b != NULL)
        mysql_close(b);
    return rc;
}

static int do_lockwait(const char *sock, const char *user, long ms)
{
    unsigned err;
    MYSQL *a = connect_one(sock, user, &err);
    MYSQL *b = connect_one(sock, user, &err);
    int rc = 1;

    if (a == NULL || b == NULL || setup_table(a) != 0)
        goto out;
    if (q(a, "BEGIN") != 0 || q(a, "UPDATE cwtest.t SET v = v + 1 WHERE id = 1") != 0)
        goto out;
    if (mysql_send_query(b, "UPDATE cwtest.t SET v = v + 1 WHERE id = 1", 42) != 0)
        goto out;
    usleep((useconds_t)ms * 1000);
    if (q(a, "COMMIT") != 0)
        goto out;
    if (mysql_read_query_result(b) != 0) {
        fprintf(stderr, "mysql_load: waiting update: %s\n", mysql_error(b));
        goto out;
    }
    printf("waited\n");
    rc = 0;
out:
    if (a != NULL)
        mysql_close(a);
    if (b != NULL)
        mysql_close(b);
    return rc;
}

#define PROXY_MAX_PAIRS 64

static int tcp_socket_to(unsigned port, int listen_too)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listen_too) {
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0)
            goto out_fail;
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        goto out_fail;
    }
    return fd;
out_fail:
    close(fd);
    return -1;
}

/* do_proxy() relays whole connections with poll(): fds[0] is the listener,
 * then pairs (client, upstream). A pair closes when either side ends. */
static int do_proxy(unsigned lport, unsigned tport)
{
    struct pollfd p[1 + 2 * PROXY_MAX_PAIRS];
    size_t n = 1, i;
    char buf[16384];

    p[0].fd = tcp_socket_to(lport, 1);
    p[0].events = POLLIN;
    if (p[0].fd < 0) {
        perror("mysql_load proxy: listen");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        if (poll(p, n, -1) < 0)
            continue;
        for (i = 1; i < n; i++) {
            ssize_t got;

            if (p[i].revents == 0)
                continue;
            got = read(p[i].fd, buf, sizeof(buf));
            /* partner of i: pairs are (1,2), (3,4), ... */
            if (got <= 0 || write(p[i % 2 ? i + 1 : i - 1].fd, buf, (size_t)got) != got) {
                size_t a = i % 2 ? i : i - 1;

                close(p[a].fd);
                close(p[a + 1].fd);
                p[a] = p[n - 2];
                p[a + 1] = p[n - 1];
                n -= 2;
                break; /* indexes moved: poll again */
            }
        }
        if ((p[0].revents & POLLIN) != 0) {
            int c = accept4(p[0].fd, NULL, NULL, SOCK_CLOEXEC), u;

            if (c < 0)
                continue;
            u = n + 2 <= 1 + 2 * PROXY_MAX_PAIRS ? tcp_socket_to(tport, 0) : -1;
            if (u < 0) {
                close(c);
                continue;
            }
            p[n] = (struct pollfd){.fd = c, .events = POLLIN};
            p[n + 1] = (struct pollfd){.fd = u, .events = POLLIN};
            n += 2;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "hold") == 0)
        return do_hold(argv[2], argv[3], strtol(argv[4], NULL, 10));
    if (argc >= 4 && strcmp(argv[1], "deadlock") == 0)
        return do_deadlock(argv[2], argv[3]);
    if (argc >= 5 && strcmp(argv[1], "lockwait") == 0)
        return do_lockwait(argv[2], argv[3], strtol(argv[4], NULL, 10));
    if (argc >= 4 && strcmp(argv[1], "proxy") == 0)
        return do_proxy((unsigned)strtoul(argv[2], NULL, 10), (unsigned)strtoul(argv[3], NULL, 10));
    fprintf(stderr, "usage: mysql_load hold|deadlock|lockwait SOCKET USER [N|MS]\n"
                    "       mysql_load proxy LISTEN_PORT TARGET_PORT\n");
    return 2;
}
