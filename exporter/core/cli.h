/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the command line both programs share, in the Prometheus exporter
 * conventions: --config.file, --web.listen-address (repeatable),
 * --log.level, --log.format, --config.check, --version, --help, the
 * privilege flags --run-as-user and --run-as-root (privdrop.h), plus each
 * program's own valued flags. "--name=value" and "--name value" both work.
 * And the lifecycle both programs share: --config.check, the serve loop on
 * a signalfd (SIGHUP reloads, SIGTERM and SIGINT stop) and the
 * /-/healthy, /-/ready and /-/reload endpoints. Called by main() only,
 * except the endpoints (HTTP threads).
 */
#ifndef CW_CLI_H
#define CW_CLI_H

#include "buf.h"
#include "config.h"
#include "http.h"
#include "log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CW_CLI_MAX_LISTEN      16
#define CW_CLI_MAX_CONNECTIONS 1000000

struct cw_cli {
    const char *config_file; /* borrowed from argv; the caller's default stays when absent */
    const char *listen[CW_CLI_MAX_LISTEN]; /* borrowed from argv */
    size_t nlisten;
    enum cw_log_level log_level;
    enum cw_log_format log_format;
    bool config_check;
    const char *run_as_user;   /* --run-as-user, borrowed from argv; NULL when absent */
    bool run_as_root;          /* --run-as-root */
    struct cw_http_limits web; /* --web.max-connections, --web.max-connections-per-ip,
                                * --web.read-timeout, --web.idle-timeout */
};

/* CW_CLI_WEB_USAGE is the help text of the shared --web.* limit flags. */
#define CW_CLI_WEB_USAGE                                                                           \
    "  --web.max-connections=N     concurrent HTTP connections (default: half the\n"               \
    "                              descriptor limit, which is raised to its hard limit)\n"         \
    "  --web.max-connections-per-ip=N  from one client address (default: a quarter\n"              \
    "                              of --web.max-connections; 0: no limit)\n"                       \
    "  --web.read-timeout=DURATION a request must be complete this long after its\n"               \
    "                              first byte (default 10s)\n"                                     \
    "  --web.idle-timeout=DURATION close a connection idle this long (default 10s)\n"

/* A program's own valued flag: "--web.telemetry-path" stored in *dst. */
struct cw_cli_flag {
    const char *name;
    const char **dst;
};

/* cw_cli_init() sets the defaults: no config file, no listen address, level
 * info, logfmt. */
void cw_cli_init(struct cw_cli *c);

/* cw_cli_parse() parses argv into 'c' and the 'extra' flags (a table ended
 * by a NULL name, or NULL). 'prog' names the program in messages and in the
 * version line; 'usage' prints the help. Returns -1 to go on, or the exit
 * code: 0 after --help or --version, 2 after a usage error (explained on
 * stderr). */
int cw_cli_parse(int argc, char **argv, const char *prog, void (*usage)(FILE *),
                 const struct cw_cli_flag *extra, struct cw_cli *c);

/* cw_cli_tune_malloc() bounds what glibc's allocator keeps after a large
 * body is freed: a fixed mmap threshold of 128 KiB (glibc otherwise raises
 * it to the largest block freed, up to 32 MiB, so that every later scrape
 * body comes from heap memory that is never given back) and at most two
 * arenas per CPU (glibc's default is eight). Left as they are when the
 * environment sets them (MALLOC_MMAP_THRESHOLD_, MALLOC_ARENA_MAX, or
 * glibc.malloc.* in GLIBC_TUNABLES). Call from main() before any thread starts. */
void cw_cli_tune_malloc(void);

/* cw_cli_signalfd() blocks SIGHUP, SIGTERM and SIGINT in the calling thread
 * (every thread started later inherits the mask), ignores SIGPIPE and
 * returns a signalfd that reads them, or -1 after a message on stderr.
 * Call from main() before any thread starts. */
int cw_cli_signalfd(const char *prog);

/* cw_cli_print_diag() prints every diagnostic of 'd', one a line. */
void cw_cli_print_diag(FILE *out, const struct cw_diag *d);

/* cw_cli_check_config() is --config.check: it loads 'file' with 'load'
 * (the program's loader: an object, or NULL with every problem in the
 * diag), prints "ok" or the problems and "N errors" on stderr, and releases
 * the object with 'release'. Returns the exit code, 0 or 2. */
int cw_cli_check_config(const char *file, void *(*load)(const char *file, struct cw_diag *diag),
                        void (*release)(void *obj));

/* What the serve loop and the shared endpoints do for one program. */
struct cw_cli_program {
    void *ctx; /* borrowed: handed to the callbacks */
    /* reload() loads the configuration again (SIGHUP, POST /-/reload) and
     * logs the outcome; the problems also go to 'why' when not NULL.
     * Returns CW_OK or CW_ECONFIG. */
    int (*reload)(void *ctx, struct cw_buf *why);
    /* ready() tells whether /-/ready answers 200 ("ready") or 503 with
     * 'not_ready'; NULL: always ready. */
    bool (*ready)(void *ctx);
    const char *not_ready;
    bool reload_slow; /* POST /-/reload runs as a slow route (see cw_http_route) */
};

#define CW_CLI_NROUTES 3

/* cw_cli_routes() writes the routes of /-/healthy, /-/ready and /-/reload
 * for 'p' (borrowed by the routes: it must outlive the server) into
 * routes[0 .. CW_CLI_NROUTES - 1]. */
void cw_cli_routes(struct cw_cli_program *p, struct cw_http_route *routes);

/* cw_cli_serve() reads signals from 'sigfd' (cw_cli_signalfd()) until
 * SIGTERM or SIGINT, reloading on SIGHUP. Returns the exit code: 0 after
 * SIGTERM or SIGINT (logged), 1 when signals cannot be read. */
int cw_cli_serve(const struct cw_cli_program *p, int sigfd);
#endif
