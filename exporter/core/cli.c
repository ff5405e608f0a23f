/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c - the shared command line and lifecycle of connwatch and
 * connwatch-relay. See cli.h. No state; the parser runs before any thread
 * starts, the serve loop on main, the endpoints on HTTP threads.
 */
#include "cli.h"

#include "version.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#ifndef CW_VERSION
#define CW_VERSION "0.1.0"
#endif

void cw_cli_init(struct cw_cli *c)
{
    memset(c, 0, sizeof(*c));
    c->log_level = CW_LOG_INFO;
    c->log_format = CW_LOG_LOGFMT;
    cw_http_limits_init(&c->web);
}

/* cli_count() reads a whole number of 0..max into *out; false if malformed. */
static bool cli_count(const char *v, long max, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || n < 0 || n > max)
        return false;
    *out = n;
    return true;
}

/* cli_web() applies one of the --web.* limit flags; returns -1 or 2. */
static int cli_web(const char *prog, const char *name, const char *v, struct cw_cli *c)
{
    bool conns = strcmp(name, "--web.max-connections") == 0;
    cw_duration d;

    if (conns || strcmp(name, "--web.max-connections-per-ip") == 0) {
        long n;

        if (!cli_count(v, CW_CLI_MAX_CONNECTIONS, &n) || (conns && n == 0)) {
            fprintf(stderr, "%s: %s must be a whole number from %d to %d, not \"%s\"\n", prog, name,
                    conns ? 1 : 0, CW_CLI_MAX_CONNECTIONS, v);
            return 2;
        }
        *(conns ? &c->web.max_connections : &c->web.max_connections_per_ip) = n;
        return -1;
    }
    if (cw_duration_parse(v, &d) != CW_OK || d < CW_MS(100) || d > CW_MIN(60)) {
        fprintf(stderr, "%s: %s must be a duration from 100ms to 1h, not \"%s\"\n", prog, name, v);
        return 2;
    }
    *(strcmp(name, "--web.read-timeout") == 0 ? &c->web.read_timeout : &c->web.idle_timeout) = d;
    return -1;
}

/* cli_value() matches "--name=value" or "--name value" at argv[*i]; it sets
 * *matched and returns the value (NULL when it is missing). */
static const char *cli_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    *matched = false;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=') {
        *matched = true;
        return a + n + 1;
    }
    if (a[n] == '\0') {
        *matched = true;
        if (*i + 1 < argc) {
            (*i)++;
            return argv[*i];
        }
    }
    return NULL;
}

/* cli_common() applies one of the shared valued flags; returns -1 or 2. */
static int cli_common(const char *prog, const char *name, const char *v, struct cw_cli *c)
{
    if (strcmp(name, "--config.file") == 0) {
        c->config_file = v;
    } else if (strcmp(name, "--web.listen-address") == 0) {
        if (c->nlisten == CW_CLI_MAX_LISTEN) {
            fprintf(stderr, "%s: at most %d --web.listen-address flags\n", prog, CW_CLI_MAX_LISTEN);
            return 2;
        }
        c->listen[c->nlisten++] = v;
    } else if (strcmp(name, "--run-as-user") == 0) {
        c->run_as_user = v;
    } else if (strcmp(name, "--log.level") == 0) {
        if (cw_log_level_parse(v, &c->log_level) != CW_OK) {
            fprintf(stderr, "%s: --log.level must be debug, info, warn or error\n", prog);
            return 2;
        }
    } else if (strncmp(name, "--web.", 6) == 0) {
        return cli_web(prog, name, v, c);
    } else if (cw_log_format_parse(v, &c->log_format) != CW_OK) {
        fprintf(stderr, "%s: --log.format must be logfmt or json\n", prog);
        return 2;
    }
    return -1;
}

int cw_cli_parse(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                 const struct cw_cli_flag *extra, struct cw_cli *c)
{
    /* Longer names first where one is a prefix of another. */
    static const char *const common[] = {
        "--config.file",      "--web.listen-address",         "--log.level",
        "--log.format",       "--web.max-connections-per-ip", "--web.max-connections",
        "--web.read-timeout", "--web.idle-timeout",           "--run-as-user"};
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *name = NULL;
        const char *v = NULL;
        const char **dst = NULL;
        bool matched = false;
        size_t k;
        int rc;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s version %s (revision %s)\n", prog, CW_VERSION, CW_REVISION);
            return 0;
        }
        if (strcmp(a, "--config.check") == 0) {
            c->config_check = true;
            continue;
        }
        if (strcmp(a, "--run-as-root") == 0) {
            c->run_as_root = true;
            continue;
        }
        for (k = 0; k < CW_ARRAY_LEN(common) && !matched; k++) {
            v = cli_value(argc, argv, &i, common[k], &matched);
            name = common[k];
        }
        for (k = 0; extra != NULL && extra[k].name != NULL && !matched; k++) {
            v = cli_value(argc, argv, &i, extra[k].name, &matched);
            name = extra[k].name;
            dst = extra[k].dst;
        }
        if (!matched) {
            fprintf(stderr, "%s: unknown flag or argument \"%s\" (see --help)\n", prog, a);
            return 2;
        }
        if (v == NULL || v[0] == '\0') {
            fprintf(stderr, "%s: flag %s needs a value\n", prog, name);
            return 2;
        }
        if (dst != NULL) {
            *dst = v;
            continue;
        }
        rc = cli_common(prog, name, v, c);
        if (rc >= 0)
            return rc;
    }
    return -1;
}

void cw_cli_tune_malloc(void)
{
    const char *tunables = getenv("GLIBC_TUNABLES");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    if (tunables != NULL && strstr(tunables, "glibc.malloc.") != NULL)
        return;
    /* Measured (bench/bench-scale.sh, 1,000 http checks, 27k series):
     * VmRSS after 20 scrapes 35.7 -> 24.8 MiB, the peak 45.2 -> 31.3. */
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL)
        (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        (void)mallopt(M_ARENA_MAX, ncpu > 0 ? (int)(2 * (ncpu < 64 ? ncpu : 64)) : 2);
}

int cw_cli_signalfd(const char *prog)
{
    sigset_t mask;
    int fd;

    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) {
        fprintf(stderr, "%s: cannot block signals\n", prog);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (fd < 0)
        fprintf(stderr, "%s: signalfd failed\n", prog);
    return fd;
}

void cw_cli_print_diag(FILE *out, const struct cw_diag *d)
{
    size_t i;

    for (i = 0; i < d->n; i++)
        fprintf(out, "%s\n", d->entries[i].text);
}

int cw_cli_check_config(const char *file, void *(*load)(const char *file, struct cw_diag *diag),
                        void (*release)(void *obj))
{
    struct cw_diag diag;
    void *obj;

    cw_diag_init(&diag);
    obj = load(file, &diag);
    if (obj == NULL) {
        cw_cli_print_diag(stderr, &diag);
        fprintf(stderr, "%zu error%s\n", diag.n, diag.n == 1 ? "" : "s");
        cw_diag_reset(&diag);
        return 2;
    }
    printf("ok\n");
    release(obj);
    cw_diag_reset(&diag);
    return 0;
}

static int cli_healthy(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    (void)ctx;
    (void)req;
    return cw_buf_adds(&resp->body, "healthy\n");
}

static int cli_ready(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    const struct cw_cli_program *p = ctx;

    (void)req;
    if (p->ready == NULL || p->ready(p->ctx))
        return cw_buf_adds(&resp->body, "ready\n");
    resp->status = 503;
    return cw_buf_adds(&resp->body, p->not_ready != NULL ? p->not_ready : "not ready\n");
}

static int cli_reload(void *ctx, const struct cw_http_request *req, struct cw_http_response *resp)
{
    const struct cw_cli_program *p = ctx;
    struct cw_buf why;
    int rc;

    (void)req;
    cw_buf_init(&why, 1u << 20);
    rc = p->reload(p->ctx, &why); /* before reading 'why': it fills it */
    rc = cw_http_answer_reload(resp, rc, cw_buf_str(&why));
    cw_buf_reset(&why);
    return rc;
}

void cw_cli_routes(struct cw_cli_program *p, struct cw_http_route *routes)
{
    void *ctx = p;

    routes[0] = (struct cw_http_route){
        .method = "GET", .path = "/-/healthy", .fn = cli_healthy, .ctx = ctx};
    routes[1] =
        (struct cw_http_route){.method = "GET", .path = "/-/ready", .fn = cli_ready, .ctx = ctx};
    routes[2] = (struct cw_http_route){.method = "POST",
                                       .path = "/-/reload",
                                       .max_body = 4096,
                                       .fn = cli_reload,
                                       .slow = p->reload_slow,
                                       .ctx = ctx};
}

int cw_cli_serve(const struct cw_cli_program *p, int sigfd)
{
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sigfd, &si, sizeof(si));

        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof(si)) {
            cw_log(CW_LOG_ERROR, "main", "cannot read signals", (char *)NULL);
            return 1;
        }
        if (si.ssi_signo == SIGHUP) {
            (void)p->reload(p->ctx, NULL); /* logged inside; the old configuration keeps running */
            continue;
        }
        cw_log(CW_LOG_INFO, "main", "shutting down", "signal", sigabbrev_np((int)si.ssi_signo),
               (char *)NULL);
        return 0;
    }
}
