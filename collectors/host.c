/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host.c - the "host" check: CPU, iowait, memory, TCP retransmits and TCP
 * connection states of the machine connwatch runs on.
 *
 * One instance, configured from the top-level "host:" section. Its state
 * owns the file buffer, the scratch buffer of the connection counter and the
 * previous CPU and TCP snapshots from which the "over the last interval"
 * ratios are computed; it is used by one scheduler worker at a time. Parsing
 * is in host_proc.c (pure, fuzzed), connection counting in host_sockdiag.c.
 * Every /proc read goes below the "proc_path" option, so tests can point it
 * at fixtures. A file that cannot be read or parsed fails the run with
 * reason "internal", and the metrics of the other files are still emitted.
 */
#include "collectors/host_proc.h"
#include "collectors/host_sockdiag.h"
#include "exporter/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST_FILE_LIMIT   ((size_t)1024 * 1024) /* largest /proc file we read whole */
#define HOST_STAT_PREFIX  ((size_t)64 * 1024)   /* /proc/stat: the cpu line is first */
#define HOST_PATH_MAX     4000                  /* longest accepted proc_path */
#define HOST_DEFAULT_PROC "/proc"

enum host_conn_mode { HOST_CONN_AUTO = 0, HOST_CONN_NETLINK, HOST_CONN_PROC };

static const char *const host_conn_modes[] = {"auto", "netlink", "proc", NULL};

struct host_state {
    char *proc_path; /* owned (option table): "/proc" or where procfs is mounted */
    int conn_mode;   /* enum host_conn_mode, from "connection_states" */
    long clk_tck;    /* USER_HZ */

    struct cw_buf file; /* owned: the /proc file being parsed */
    void *scratch;      /* owned: CW_HOST_SOCKDIAG_SCRATCH bytes, allocated on first run */

    int conn_using;   /* auto mode: HOST_CONN_NETLINK until netlink fails, then PROC */
    bool conn_logged; /* the mode in use was logged */
    bool have_cpu;    /* prev_cpu holds the previous run's snapshot */
    bool have_tcp;    /* prev_tcp holds OutSegs and RetransSegs of the previous run */
    struct cw_host_cpu prev_cpu;
    struct cw_host_tcp_counters prev_tcp;
};

static const struct cw_opt host_opts[] = {
    CW_OPT("proc_path", CW_OPT_T_STRING, struct host_state, proc_path, HOST_DEFAULT_PROC, 0, 0, 0),
    CW_OPT_ENUM("connection_states", struct host_state, conn_mode, "auto", host_conn_modes, 0),
    CW_OPT_END,
};

/* ---- Metric families ------------------------------------------------------ */

static const struct cw_desc desc_cpu_usage = {
    .name = "connwatch_host_cpu_usage_ratio",
    .help = "Share of CPU time not idle or waiting for I/O over the last interval (since boot "
            "on the first run).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_cpu_iowait = {
    .name = "connwatch_host_cpu_iowait_ratio",
    .help = "Share of CPU time idle while waiting for I/O over the last interval (since boot on "
            "the first run).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_cpu_seconds = {
    .name = "connwatch_host_cpu_seconds_total",
    .help = "CPU time spent in each mode since boot, summed over all CPUs.",
    .type = CW_COUNTER,
    .labels = {"mode"},
    .nlabels = 1,
};
static const struct cw_desc desc_mem_total = {
    .name = "connwatch_host_memory_total_bytes",
    .help = "Usable physical memory (MemTotal).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_mem_available = {
    .name = "connwatch_host_memory_available_bytes",
    .help = "Memory available for new work without swapping (MemAvailable).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_tcp_sent = {
    .name = "connwatch_host_tcp_segments_sent_total",
    .help = "TCP segments sent, not counting retransmissions (Tcp OutSegs).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_tcp_retrans = {
    .name = "connwatch_host_tcp_segments_retransmitted_total",
    .help = "TCP segments retransmitted (Tcp RetransSegs).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_tcp_retrans_ratio = {
    .name = "connwatch_host_tcp_retransmit_ratio",
    .help = "TCP segments retransmitted per segment sent over the last interval (since boot on "
            "the first run).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_tcp_timeouts = {
    .name = "connwatch_host_tcp_timeouts_total",
    .help = "TCP retransmission timer expirations (TcpExt TCPTimeouts).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_tcp_listen_overflows = {
    .name = "connwatch_host_tcp_listen_overflows_total",
    .help = "Connections dropped because a listener's accept queue was full (TcpExt "
            "ListenOverflows).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_tcp_listen_drops = {
    .name = "connwatch_host_tcp_listen_drops_total",
    .help = "SYNs and handshakes dropped at a listener for any reason (TcpExt ListenDrops).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_tcp_syn_retrans = {
    .name = "connwatch_host_tcp_syn_retransmits_total",
    .help = "SYN and SYN-ACK retransmissions, a sign of connect trouble (TcpExt TCPSynRetrans).",
    .type = CW_COUNTER,
};
static const struct cw_desc desc_tcp_connections = {
    .name = "connwatch_host_tcp_connections",
    .help = "TCP sockets of this network namespace in each state.",
    .type = CW_GAUGE,
    .labels = {"state"},
    .nlabels = 1,
};

/* TcpExt counters exported as is; 'required' ones are in the SPEC and their
 * absence fails the run. */
static const struct host_counter {
    enum cw_host_tcp_field field;
    const struct cw_desc *desc; /* borrowed: static */
    bool required;
} host_tcpext_counters[] = {
    {CW_HOST_TCPEXT_TIMEOUTS, &desc_tcp_timeouts, true},
    {CW_HOST_TCPEXT_LISTEN_OVERFLOWS, &desc_tcp_listen_overflows, true},
    {CW_HOST_TCPEXT_LISTEN_DROPS, &desc_tcp_listen_drops, false},
    {CW_HOST_TCPEXT_SYN_RETRANS, &desc_tcp_syn_retrans, false},
};

/* ---- Reading /proc -------------------------------------------------------- */

/* host_read() reads PROC/'rel' into hs->file: the whole file, or its first
 * 'max' bytes when 'prefix_ok'. Returns CW_OK, CW_EIO with *sys_errno,
 * CW_ETOOBIG (/proc files we read whole are a few KiB) or CW_ENOMEM. */
static int host_read(struct host_state *hs, const char *rel, size_t max, bool prefix_ok,
                     int *sys_errno)
{
    char path[HOST_PATH_MAX + 64];
    int len;
    int rc;

    *sys_errno = 0;
    cw_buf_clear(&hs->file);
    len = snprintf(path, sizeof(path), "%s/%s", hs->proc_path, rel);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        *sys_errno = ENAMETOOLONG;
        return CW_EIO;
    }
    rc = cw_buf_read_path(&hs->file, path, max, NULL, 0);
    if (rc == CW_EIO)
        *sys_errno = errno;
    if (rc == CW_ETOOBIG && prefix_ok)
        rc = CW_OK;
    return rc;
}

/* host_read_fail() reports a host_read() failure on PROC/'rel'. */
static void host_read_fail(struct host_state *hs, struct cw_run *run, const char *rel, int rc,
                           int sys_errno)
{
    char ebuf[128];

    if (rc == CW_EIO)
        cw_run_fail(run, CW_REASON_INTERNAL, "read %s/%s: %s", hs->proc_path, rel,
                    cw_strerror_r(sys_errno, ebuf, sizeof(ebuf)));
    else
        cw_run_fail(run, CW_REASON_INTERNAL, "read %s/%s: %s", hs->proc_path, rel, cw_strerror(rc));
}

/* ---- The parts of a run --------------------------------------------------- */

static void host_run_cpu(struct host_state *hs, struct cw_run *run)
{
    struct cw_host_cpu cpu;
    double usage, iowait;
    int sys_errno;
    int rc;

    rc = host_read(hs, "stat", HOST_STAT_PREFIX, true, &sys_errno);
    if (rc != CW_OK) {
        host_read_fail(hs, run, "stat", rc, sys_errno);
        return;
    }
    if (cw_host_parse_stat(cw_buf_str(&hs->file), hs->file.len, &cpu) != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "parse %s/stat: no valid cpu line", hs->proc_path);
        return;
    }
    cw_host_cpu_ratios(hs->have_cpu ? &hs->prev_cpu : NULL, &cpu, &usage, &iowait);
    cw_emit(run, &desc_cpu_usage, usage, NULL);
    cw_emit(run, &desc_cpu_iowait, iowait, NULL);
    for (unsigned m = 0; m < CW_HOST_CPU_NMODES; m++) {
        const char *const lv[] = {cw_host_cpu_mode_name(m)};

        cw_emit(run, &desc_cpu_seconds, (double)cpu.ticks[m] / (double)hs->clk_tck, lv);
    }
    hs->prev_cpu = cpu;
    hs->have_cpu = true;
}

static void host_run_memory(struct host_state *hs, struct cw_run *run)
{
    struct cw_host_mem mem;
    int sys_errno;
    int rc;

    rc = host_read(hs, "meminfo", HOST_FILE_LIMIT, false, &sys_errno);
    if (rc != CW_OK) {
        host_read_fail(hs, run, "meminfo", rc, sys_errno);
        return;
    }
    if (cw_host_parse_meminfo(cw_buf_str(&hs->file), hs->file.len, &mem) != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "parse %s/meminfo: bad or missing MemTotal",
                    hs->proc_path);
        return;
    }
    cw_emit(run, &desc_mem_total, (double)mem.total_bytes, NULL);
    if ((mem.present & CW_HOST_MEM_AVAILABLE) != 0)
        cw_emit(run, &desc_mem_available, (double)mem.available_bytes, NULL);
    else
        cw_run_fail(run, CW_REASON_INTERNAL, "parse %s/meminfo: no MemAvailable", hs->proc_path);
}

static void host_run_snmp(struct host_state *hs, struct cw_run *run)
{
    struct cw_host_tcp_counters tcp = {{0}, 0};
    int sys_errno;
    int rc;

    rc = host_read(hs, "net/snmp", HOST_FILE_LIMIT, false, &sys_errno);
    if (rc != CW_OK) {
        host_read_fail(hs, run, "net/snmp", rc, sys_errno);
        return;
    }
    if (cw_host_parse_snmp(cw_buf_str(&hs->file), hs->file.len, &tcp) != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "parse %s/net/snmp: bad Tcp: lines", hs->proc_path);
        return;
    }
    if (!cw_host_tcp_has(&tcp, CW_HOST_TCP_OUT_SEGS) ||
        !cw_host_tcp_has(&tcp, CW_HOST_TCP_RETRANS_SEGS)) {
        cw_run_fail(run, CW_REASON_INTERNAL, "parse %s/net/snmp: no OutSegs or RetransSegs",
                    hs->proc_path);
        return;
    }
    cw_emit(run, &desc_tcp_sent, (double)tcp.v[CW_HOST_TCP_OUT_SEGS], NULL);
    cw_emit(run, &desc_tcp_retrans, (double)tcp.v[CW_HOST_TCP_RETRANS_SEGS], NULL);
    cw_emit(run, &desc_tcp_retrans_ratio,
            cw_host_retransmit_ratio(hs->have_tcp ? &hs->prev_tcp : NULL, &tcp), NULL);
    hs->prev_tcp = tcp;
    hs->have_tcp = true;
}

static void host_run_netstat(struct host_state *hs, struct cw_run *run)
{
    struct cw_host_tcp_counters ext = {{0}, 0};
    int sys_errno;
    int rc;

    rc = host_read(hs, "net/netstat", HOST_FILE_LIMIT, false, &sys_errno);
    if (rc != CW_OK) {
        host_read_fail(hs, run, "net/netstat", rc, sys_errno);
        return;
    }
    if (cw_host_parse_netstat(cw_buf_str(&hs->file), hs->file.len, &ext) != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "parse %s/net/netstat: bad TcpExt: lines",
                    hs->proc_path);
        return;
    }
    for (size_t i = 0; i < CW_ARRAY_LEN(host_tcpext_counters); i++) {
        const struct host_counter *c = &host_tcpext_counters[i];

        if (cw_host_tcp_has(&ext, c->field))
            cw_emit(run, c->desc, (double)ext.v[c->field], NULL);
        else if (c->required)
            cw_run_fail(run, CW_REASON_INTERNAL, "parse %s/net/netstat: no %s", hs->proc_path,
                        cw_host_tcp_field_name(c->field));
    }
}

/* host_conn_log() logs once which way connection states are counted. */
static void host_conn_log(struct host_state *hs, struct cw_run *run, const char *mode,
                          const char *why)
{
    if (hs->conn_logged)
        return;
    hs->conn_logged = true;
    cw_run_log(run, CW_LOG_INFO, "counting connection states", "mode", mode, "why", why,
               (char *)NULL);
}

static void host_run_connections(struct host_state *hs, struct cw_run *run)
{
    struct cw_host_tcp_states st;
    struct cw_host_sockdiag_err err = {NULL, 0};
    cw_mono deadline = cw_run_deadline(run);
    char ebuf[128];
    int rc;

    if (hs->scratch == NULL) {
        hs->scratch = malloc(CW_HOST_SOCKDIAG_SCRATCH);
        if (hs->scratch == NULL) {
            cw_run_fail(run, CW_REASON_INTERNAL, "count connections: out of memory");
            return;
        }
    }

    if (hs->conn_using == HOST_CONN_NETLINK) {
        rc = cw_host_count_netlink(&st, hs->scratch, CW_HOST_SOCKDIAG_SCRATCH, deadline, &err);
        if (rc == CW_OK) {
            host_conn_log(hs, run, "netlink",
                          hs->conn_mode == HOST_CONN_AUTO ? "auto" : "configured");
            goto out_emit;
        }
        cw_strerror_r(err.sys_errno, ebuf, sizeof(ebuf));
        if (hs->conn_mode != HOST_CONN_AUTO || rc == CW_ETIMEDOUT) {
            cw_run_fail(run, CW_REASON_INTERNAL, "count connections: %s: %s", err.what,
                        err.sys_errno != 0 ? ebuf : cw_strerror(rc));
            return;
        }
        /* auto: netlink is unavailable here (no sock_diag module, seccomp, ...) */
        cw_run_log(run, CW_LOG_WARN, "netlink sock_diag failed, falling back to proc", "step",
                   err.what, "err", err.sys_errno != 0 ? ebuf : cw_strerror(rc), (char *)NULL);
        hs->conn_using = HOST_CONN_PROC;
        hs->conn_logged = false;
    }

    rc = cw_host_count_proc(hs->proc_path, &st, hs->scratch, CW_HOST_SOCKDIAG_SCRATCH, deadline,
                            &err);
    if (rc != CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "count connections from %s: %s: %s", hs->proc_path,
                    err.what,
                    err.sys_errno != 0 ? cw_strerror_r(err.sys_errno, ebuf, sizeof(ebuf))
                                       : cw_strerror(rc));
        return;
    }
    host_conn_log(hs, run, "proc",
                  hs->conn_mode == HOST_CONN_PROC
                      ? "configured"
                      : (strcmp(hs->proc_path, HOST_DEFAULT_PROC) != 0 ? "proc_path is not /proc"
                                                                       : "netlink failed"));

out_emit:
    for (unsigned s = 1; s < CW_TCP_NSTATES; s++) {
        const char *const lv[] = {cw_host_tcp_state_name(s)};

        cw_emit(run, &desc_tcp_connections, (double)st.count[s], lv);
    }
}

/* ---- The kind ------------------------------------------------------------- */

static int host_configure(void *state, const struct cw_node *node, const struct cw_check_info *info,
                          struct cw_diag *diag)
{
    struct host_state *hs = state;
    const char *known[16];
    size_t n = 0;
    size_t plen;
    int rc;

    (void)info;
    cw_buf_init(&hs->file, HOST_FILE_LIMIT);
    for (size_t i = 0; cw_check_common_keys[i] != NULL; i++) {
        if (n + 2 >= CW_ARRAY_LEN(known)) {
            cw_diagf(diag, node, "host: too many common keys (internal)");
            return CW_ECONFIG;
        }
        known[n++] = cw_check_common_keys[i];
    }
    known[n++] = "enabled";
    known[n] = NULL;

    rc = cw_opts_apply(host_opts, hs, node, known, diag);

    /* Checked even after other errors, so that all are reported at once. */
    if (hs->proc_path != NULL) {
        /* "/proc/" and "/proc" are the same place; keep one spelling. */
        plen = strlen(hs->proc_path);
        while (plen > 1 && hs->proc_path[plen - 1] == '/')
            hs->proc_path[--plen] = '\0';
        if (plen == 0 || plen > HOST_PATH_MAX) {
            const struct cw_node *at = node != NULL ? cw_node_get(node, "proc_path") : NULL;

            cw_diagf(diag, at != NULL ? at : node, "must be a path of 1 to %d bytes",
                     HOST_PATH_MAX);
            rc = CW_ECONFIG;
        }
    }
    if (rc != CW_OK)
        return rc;

    hs->clk_tck = sysconf(_SC_CLK_TCK);
    if (hs->clk_tck <= 0)
        hs->clk_tck = 100; /* USER_HZ on every Linux architecture */

    /* auto honours proc_path: pointed elsewhere (fixtures, a chroot), the
     * states are read there too, as netlink cannot be pointed anywhere. */
    if (hs->conn_mode == HOST_CONN_PROC ||
        (hs->conn_mode == HOST_CONN_AUTO && strcmp(hs->proc_path, HOST_DEFAULT_PROC) != 0))
        hs->conn_using = HOST_CONN_PROC;
    else
        hs->conn_using = HOST_CONN_NETLINK;
    return CW_OK;
}

static void host_run(void *state, struct cw_run *run)
{
    struct host_state *hs = state;

    host_run_cpu(hs, run);
    host_run_memory(hs, run);
    host_run_snmp(hs, run);
    host_run_netstat(hs, run);
    host_run_connections(hs, run);
}

static void host_release(void *state)
{
    struct host_state *hs = state;

    cw_opts_release(host_opts, hs);
    cw_buf_reset(&hs->file);
    free(hs->scratch);
    hs->scratch = NULL;
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const host_descs[] = {
    &desc_cpu_usage,        &desc_cpu_iowait,
    &desc_cpu_seconds,      &desc_mem_total,
    &desc_mem_available,    &desc_tcp_sent,
    &desc_tcp_retrans,      &desc_tcp_retrans_ratio,
    &desc_tcp_timeouts,     &desc_tcp_listen_overflows,
    &desc_tcp_listen_drops, &desc_tcp_syn_retrans,
    &desc_tcp_connections,  NULL,
};
const struct cw_check_kind cw_kind_host = {
    .name = "host",
    .layer = CW_LAYER_HOST,
    .state_size = sizeof(struct host_state),
    .flags = CW_KIND_SECTION | CW_KIND_ON_BY_DEFAULT,
    .reasons = 1u << CW_REASON_INTERNAL,
    .configure = host_configure,
    .target = NULL,
    .run = host_run,
    .release = host_release,
    .descs = {host_descs},
};
