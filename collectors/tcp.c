/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tcp.c - the "tcp" check: one TCP handshake to host:port per run, timed,
 * with the kernel's view of the connection (TCP_INFO) and, on failure, the
 * layer that broke: refused (RST), timeout (SYNs unanswered: the firewall
 * drop), unreachable (no route, ICMP unreachable), dns (name did not
 * resolve).
 *
 * The state owns the parsed target, the socket address when the target is
 * an IP literal (resolved once at configure time, without I/O), the
 * cumulative retransmit counter and the handle of a name lookup that
 * outlived a deadline (netconn.c). run() is called by one scheduler worker at a
 * time; it sends nothing on the connection and closes it right after the
 * handshake (FIN), so the server sees an accepted connection that closes.
 * With "tls: true" a TLS handshake follows the connect, within the same
 * deadline (cw_tls_handshake, collectors/tlsinspect.c), and the
 * connwatch_tls_* series and cert_* reasons of the tls check are reported.
 */
#include "collectors/netconn.h"
#include "collectors/tlsinspect.h"
#include "exporter/check.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tcp_state {
    struct cw_hostport target; /* owned (option table) */
    int ip_family;             /* enum cw_net_family */
    bool literal;              /* target.host is an IP: 'addr' is ready */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t retrans_total;       /* sum of tcpi_total_retrans over the runs' connections */
    struct cw_net_lookup *lookup; /* owned: a lookup that outlived its run, or NULL */
    /* tls: true - a TLS handshake after the connect (collectors/tlsinspect.c). */
    bool tls;
    char *server_name, *ca_file, *cert_file, *key_file; /* owned (option table) */
    bool insecure;
    SSL_CTX *tls_ctx;           /* owned, built by configure() */
    struct cw_tls_facts *facts; /* owned */
};

static const struct cw_opt tcp_opts[] = {
    CW_OPT("target", CW_OPT_T_HOSTPORT, struct tcp_state, target, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT_ENUM("ip_family", struct tcp_state, ip_family, "auto", cw_net_family_names, 0),
    CW_OPT("tls", CW_OPT_T_BOOL, struct tcp_state, tls, "false", 0, 0, 0),
    CW_OPT("server_name", CW_OPT_T_HOST, struct tcp_state, server_name, NULL, 0, 0, 0),
    CW_OPT("ca_file", CW_OPT_T_PATH, struct tcp_state, ca_file, NULL, 0, 0, 0),
    CW_OPT("cert_file", CW_OPT_T_PATH, struct tcp_state, cert_file, NULL, 0, 0, 0),
    CW_OPT("key_file", CW_OPT_T_PATH, struct tcp_state, key_file, NULL, 0, 0, 0),
    CW_OPT("insecure_skip_verify", CW_OPT_T_BOOL, struct tcp_state, insecure, "false", 0, 0, 0),
    CW_OPT_END,
};

static const struct cw_desc desc_connect = {
    .name = "connwatch_tcp_connect_seconds",
    .help = "Time the last TCP handshake took, from connect() until the connection was "
            "established (name resolution not included).",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_rtt = {
    .name = "connwatch_tcp_rtt_seconds",
    .help = "Kernel's smoothed round-trip time of the last probe connection (TCP_INFO tcpi_rtt), "
            "read right after the handshake, so it is the SYN/SYN-ACK sample.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_retrans = {
    .name = "connwatch_tcp_retransmits_total",
    .help = "Segments retransmitted on this check's probe connections, SYN retransmissions "
            "included (TCP_INFO tcpi_total_retrans summed over every run's connection).",
    .type = CW_COUNTER,
};

static int tcp_configure(void *state, const struct cw_node *node, const struct cw_check_info *info,
                         struct cw_diag *diag)
{
    struct tcp_state *ts = state;
    struct sockaddr_storage any;
    socklen_t anylen;

    (void)info;
    if (cw_opts_apply(tcp_opts, ts, node, cw_check_common_keys, diag) != CW_OK)
        return CW_ECONFIG;
    if (!ts->tls && (ts->server_name != NULL || ts->ca_file != NULL || ts->cert_file != NULL ||
                     ts->key_file != NULL || ts->insecure)) {
        cw_diagf(diag, node,
                 "server_name, ca_file, cert_file, key_file and "
                 "insecure_skip_verify need tls: true");
        return CW_ECONFIG;
    }
    if (ts->tls) {
        const char *why;

        if ((ts->cert_file == NULL) != (ts->key_file == NULL)) {
            cw_diagf(diag, node, "cert_file and key_file go together");
            return CW_ECONFIG;
        }
        ts->tls_ctx = cw_tls_client_ctx(ts->ca_file, NULL, ts->cert_file, ts->key_file, &why);
        ts->facts = calloc(1, sizeof(*ts->facts));
        if (ts->tls_ctx == NULL || ts->facts == NULL) {
            cw_diagf(diag, node, "%s", ts->tls_ctx == NULL ? why : "out of memory");
            return CW_ECONFIG;
        }
    }
    /* An IP literal is parsed once here; a name is resolved at every run. */
    if (cw_net_literal(ts->target.host, ts->target.port, CW_NET_FAMILY_AUTO, &any, &anylen)) {
        if (!cw_net_literal(ts->target.host, ts->target.port, ts->ip_family, &ts->addr,
                            &ts->addrlen)) {
            cw_diagf(diag, cw_node_get(node, "ip_family"),
                     "target \"%s\" is an %s address: ip_family must be auto or %s",
                     ts->target.text, any.ss_family == AF_INET ? "IPv4" : "IPv6",
                     any.ss_family == AF_INET ? "ip4" : "ip6");
            return CW_ECONFIG;
        }
        ts->literal = true;
    }
    return CW_OK;
}

static const char *tcp_target(const void *state)
{
    const struct tcp_state *ts = state;

    return ts->target.text;
}

static void tcp_run(void *state, struct cw_run *run)
{
    struct tcp_state *ts = state;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    struct tcp_info ti;
    socklen_t tilen = sizeof(ti);
    struct cw_net_fail f;
    cw_duration elapsed = 0;
    char ab[INET6_ADDRSTRLEN], eb[128];
    bool have_info = false;
    int fd = -1, err = 0, rc;

    if (ts->facts != NULL)
        memset(ts->facts, 0, sizeof(*ts->facts));
    if (ts->literal) {
        ss = ts->addr;
        sslen = ts->addrlen;
    } else if (!cw_net_first(ts->target.host, ts->target.port, ts->ip_family, cw_run_deadline(run),
                             &ts->lookup, &ss, &sslen, &f)) {
        cw_run_fail(run, f.reason, "%s", f.detail);
        goto out;
    }

    rc = cw_net_connect((struct sockaddr *)&ss, sslen, cw_run_deadline(run), &fd, &err, &elapsed);
    memset(&ti, 0, sizeof(ti));
    if (fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tilen) == 0)
        have_info = true;
    if (have_info)
        ts->retrans_total += ti.tcpi_total_retrans;
    (void)cw_net_addr_format((struct sockaddr *)&ss, ab, sizeof(ab));

    if (rc == CW_OK) {
        cw_emit(run, &desc_connect, cw_seconds(elapsed), NULL);
        if (have_info)
            cw_emit(run, &desc_rtt, (double)ti.tcpi_rtt / 1e6, NULL);
        else
            cw_run_fail(run, CW_REASON_INTERNAL, "TCP_INFO on the connection to %s: %s", ab,
                        cw_strerror_r(errno, eb, sizeof(eb)));
        if (ts->tls) {
            const char *name = ts->server_name != NULL ? ts->server_name : ts->target.host;
            char detail[256];
            const char *why;
            enum cw_reason r = cw_tls_handshake(ts->tls_ctx, fd, name, cw_run_deadline(run),
                                                ts->facts, detail, sizeof(detail));

            if (r != CW_REASON_NONE)
                cw_run_fail(run, r, "TLS with %s: %s", ab, detail);
            else if (!ts->insecure) {
                r = cw_tls_facts_reason(ts->facts, &why);
                if (r != CW_REASON_NONE)
                    cw_run_fail(run, r, "TLS with %s: %s", ab, why);
            }
        }
    } else {
        cw_net_connect_fail(rc, err, (struct sockaddr *)&ss, elapsed, &f);
        cw_run_fail(run, f.reason, "%s", f.detail);
    }
    if (fd >= 0)
        (void)close(fd);
out:
    cw_emit(run, &desc_retrans, (double)ts->retrans_total, NULL);
    if (ts->tls)
        cw_tls_emit(run, ts->facts, ts->insecure);
}

static void tcp_release(void *state)
{
    struct tcp_state *ts = state;

    cw_net_lookup_abandon(&ts->lookup);
    SSL_CTX_free(ts->tls_ctx);
    free(ts->facts);
    cw_opts_release(tcp_opts, ts);
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const tcp_descs[] = {
    &desc_connect,
    &desc_rtt,
    &desc_retrans,
    NULL,
};
const struct cw_check_kind cw_kind_tcp = {
    .name = "tcp",
    .layer = CW_LAYER_NETWORK,
    .state_size = sizeof(struct tcp_state),
    .reasons = 1u << CW_REASON_DNS | 1u << CW_REASON_REFUSED | 1u << CW_REASON_TIMEOUT |
               1u << CW_REASON_UNREACHABLE | 1u << CW_REASON_INTERNAL |
               1u << CW_REASON_TLS_HANDSHAKE | 1u << CW_REASON_CERT_EXPIRED |
               1u << CW_REASON_CERT_NOT_YET_VALID | 1u << CW_REASON_CERT_UNTRUSTED |
               1u << CW_REASON_CERT_HOSTNAME,
    .configure = tcp_configure,
    .target = tcp_target,
    .run = tcp_run,
    .release = tcp_release,
    .probe_option = "target",
    .descs = {tcp_descs, cw_tls_descs},
};
