/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns.c - the "dns" check: resolution time and answer count of a name
 * (A or AAAA), either through the system resolver (getaddrinfo(), so
 * /etc/hosts, nsswitch and resolv.conf apply, as for any client on the
 * host) or by asking one given server over UDP.
 *
 * With a server, the query is built and the reply checked and counted in
 * dns_wire.c; this file owns the socket, the retransmissions and the
 * deadline: the query is sent again at a third and two thirds of the
 * deadline, and datagrams that are not a well-formed reply to it (wrong id,
 * wrong question) are ignored. Without a server, getaddrinfo() runs on a
 * thread (netconn.c) so that a dead resolver cannot hold the run past its
 * deadline.
 *
 * The state owns the options and the handle of a system lookup that
 * outlived a run; the name is borrowed from the core (info->name). run()
 * is called by one scheduler worker at a time.
 */
#include "collectors/dns_wire.h"
#include "collectors/netconn.h"
#include "exporter/check.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define DNS_RECV_MAX   4096       /* larger than the EDNS size we advertise */
#define DNS_RESEND_MIN CW_MS(200) /* never resend more often than this */

enum dns_record { DNS_RECORD_A = 0, DNS_RECORD_AAAA };
static const char *const dns_records[] = {"A", "AAAA", NULL};

struct dns_state {
    const char *name;          /* borrowed: info->name, the queried name and target label */
    int record;                /* enum dns_record */
    struct cw_hostport server; /* owned (option table); host NULL when unset */
    struct sockaddr_storage srv;
    socklen_t srvlen;
    struct cw_net_lookup *lookup; /* owned: a system lookup that outlived its run, or NULL */
};

static const struct cw_opt dns_opts[] = {
    CW_OPT_ENUM("record", struct dns_state, record, "A", dns_records, 0),
    CW_OPT("server", CW_OPT_T_HOSTPORT, struct dns_state, server, NULL, 53, 0, 0),
    CW_OPT_END,
};

static const struct cw_desc desc_lookup = {
    .name = "connwatch_dns_lookup_seconds",
    .help = "Time the last lookup took: from the first query sent to the matching reply when a "
            "server is set, else the system resolver's getaddrinfo() call.",
    .type = CW_GAUGE,
};
static const struct cw_desc desc_answers = {
    .name = "connwatch_dns_answers",
    .help = "Records of the asked type (A or AAAA) in the last reply, or addresses returned by "
            "the system resolver.",
    .type = CW_GAUGE,
};

static int dns_configure(void *state, const struct cw_node *node, const struct cw_check_info *info,
                         struct cw_diag *diag)
{
    struct dns_state *ds = state;
    int rc;

    rc = cw_opts_apply(dns_opts, ds, node, cw_check_common_keys, diag);
    if (info->name == NULL) {
        cw_diagf(diag, node, "missing required field \"name\" (the name to look up)");
        rc = CW_ECONFIG;
    } else if (!cw_dns_name_is_valid(info->name)) {
        cw_diagf(diag, cw_node_get(node, "name"), "\"%s\" is not a valid domain name", info->name);
        rc = CW_ECONFIG;
    }
    ds->name = info->name;
    if (rc == CW_OK && ds->server.host != NULL &&
        !cw_net_literal(ds->server.host, ds->server.port, CW_NET_FAMILY_AUTO, &ds->srv,
                        &ds->srvlen)) {
        cw_diagf(diag, cw_node_get(node, "server"),
                 "\"%s\": the server must be an IP address, with an optional port (it is not "
                 "looked up by name)",
                 ds->server.text);
        rc = CW_ECONFIG;
    }
    return rc;
}

static const char *dns_target(const void *state)
{
    const struct dns_state *ds = state;

    return ds->name;
}

static uint16_t dns_qtype(const struct dns_state *ds)
{
    return ds->record == DNS_RECORD_AAAA ? CW_DNS_TYPE_AAAA : CW_DNS_TYPE_A;
}

/* dns_report() emits a completed lookup and fails the run unless it found
 * at least one address. */
static void dns_report(const struct dns_state *ds, struct cw_run *run, cw_duration took,
                       unsigned answers, const char *rcode)
{
    cw_emit(run, &desc_lookup, cw_seconds(took), NULL);
    cw_emit(run, &desc_answers, (double)answers, NULL);
    if (rcode != NULL && strcmp(rcode, "NOERROR") != 0)
        cw_run_fail(run, CW_REASON_DNS, "%s %s from %s: %s", ds->name, dns_records[ds->record],
                    ds->server.text, rcode);
    else if (answers == 0)
        cw_run_fail(run, CW_REASON_DNS, "%s has no %s record (%s)", ds->name,
                    dns_records[ds->record], rcode != NULL ? ds->server.text : "system resolver");
}

static void dns_run_system(struct dns_state *ds, struct cw_run *run)
{
    struct addrinfo *res = NULL, *ai;
    unsigned n = 0;
    cw_mono t0 = cw_now();
    char eb[128];
    int gai = 0, se = 0, rc;

    rc = cw_net_resolve(ds->name, NULL, ds->record == DNS_RECORD_AAAA ? AF_INET6 : AF_INET,
                        SOCK_STREAM, 0, cw_run_deadline(run), &ds->lookup, &res, &gai, &se);
    switch (rc) {
    case CW_OK:
        for (ai = res; ai != NULL; ai = ai->ai_next)
            n++;
        freeaddrinfo(res);
        dns_report(ds, run, cw_now() - t0, n, NULL);
        return;
    case CW_EPARSE:
        cw_emit(run, &desc_lookup, cw_seconds(cw_now() - t0), NULL);
        cw_emit(run, &desc_answers, 0, NULL);
        cw_run_fail(run, cw_net_reason_from_gai(gai, se), "%s %s: %s", ds->name,
                    dns_records[ds->record],
                    gai == EAI_SYSTEM ? cw_strerror_r(se, eb, sizeof(eb)) : gai_strerror(gai));
        return;
    case CW_ETIMEDOUT:
        cw_run_fail(run, CW_REASON_TIMEOUT,
                    "%s %s: no answer from the system resolver within the deadline", ds->name,
                    dns_records[ds->record]);
        return;
    case CW_EIO:
        cw_run_fail(run, CW_REASON_TIMEOUT,
                    "%s %s: the previous lookup has not finished yet (resolver not answering)",
                    ds->name, dns_records[ds->record]);
        return;
    default:
        cw_run_fail(run, CW_REASON_INTERNAL, "%s: out of memory or threads", ds->name);
        return;
    }
}

static uint16_t dns_random_id(void)
{
    uint16_t id;

    if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
        id = (uint16_t)(cw_now() ^ (cw_now() >> 16));
    return id;
}

static void dns_fail_errno(const struct dns_state *ds, struct cw_run *run, const char *what,
                           int err)
{
    char eb[128];

    cw_run_fail(run, cw_reason_from_errno(err), "%s %s: %s server %s: %s", ds->name,
                dns_records[ds->record], what, ds->server.text, cw_strerror_r(err, eb, sizeof(eb)));
}

static void dns_run_server(struct dns_state *ds, struct cw_run *run)
{
    uint8_t q[CW_DNS_QUERY_MAX], r[DNS_RECV_MAX];
    struct cw_dns_reply reply;
    const char *why = NULL, *last_why = NULL;
    char rb[16];
    size_t qlen = 0;
    cw_mono deadline = cw_run_deadline(run), t0, next_send;
    cw_duration resend;
    unsigned sent = 0, bad = 0;
    uint16_t id = dns_random_id();
    ssize_t n;
    int fd, w;

    if (cw_dns_query_build(q, sizeof(q), &qlen, id, ds->name, dns_qtype(ds), CW_DNS_EDNS_SIZE) !=
        CW_OK) {
        cw_run_fail(run, CW_REASON_INTERNAL, "%s: cannot build the query", ds->name);
        return;
    }
    fd = socket(ds->srv.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        dns_fail_errno(ds, run, "socket for", errno);
        return;
    }
    /* Connected: only the server's datagrams arrive, and an ICMP port
     * unreachable comes back as ECONNREFUSED. */
    if (connect(fd, (struct sockaddr *)&ds->srv, ds->srvlen) != 0) {
        dns_fail_errno(ds, run, "connect to", errno);
        goto out_close;
    }
    t0 = cw_now();
    resend = (deadline - t0) / 3;
    if (resend < DNS_RESEND_MIN)
        resend = DNS_RESEND_MIN;
    next_send = t0;
    for (;;) {
        cw_mono now = cw_now();

        if (now >= deadline)
            break;
        if (now >= next_send) {
            if (send(fd, q, qlen, 0) < 0 && errno != EAGAIN && errno != EINTR) {
                dns_fail_errno(ds, run, "send to", errno);
                goto out_close;
            }
            sent++;
            next_send += resend;
        }
        w = cw_net_wait(fd, POLLIN, next_send < deadline ? next_send : deadline);
        if (w < 0) {
            dns_fail_errno(ds, run, "poll for", errno);
            goto out_close;
        }
        if (w == 0)
            continue;
        n = recv(fd, r, sizeof(r), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            dns_fail_errno(ds, run, "reply from", errno);
            goto out_close;
        }
        if (cw_dns_reply_parse(r, (size_t)n, id, ds->name, dns_qtype(ds), &reply, &why) != CW_OK) {
            bad++;
            last_why = why;
            continue;
        }
        dns_report(ds, run, cw_now() - t0, reply.answers,
                   cw_dns_rcode_name(reply.rcode, rb, sizeof(rb)));
        goto out_close;
    }
    if (bad > 0)
        cw_run_fail(run, CW_REASON_PROTOCOL,
                    "%s %s: %u unusable replies from %s (%s) and no good one within the deadline",
                    ds->name, dns_records[ds->record], bad, ds->server.text, last_why);
    else
        cw_run_fail(run, CW_REASON_TIMEOUT, "%s %s: no reply from %s within %.3fs (%u queries)",
                    ds->name, dns_records[ds->record], ds->server.text, cw_seconds(cw_now() - t0),
                    sent);
out_close:
    (void)close(fd);
}

static void dns_run(void *state, struct cw_run *run)
{
    struct dns_state *ds = state;

    if (ds->server.host != NULL)
        dns_run_server(ds, run);
    else
        dns_run_system(ds, run);
}

static void dns_release(void *state)
{
    struct dns_state *ds = state;

    cw_net_lookup_abandon(&ds->lookup);
    cw_opts_release(dns_opts, ds);
}

/* Every family run() emits (the core derives reserved label names from them). */
static const struct cw_desc *const dns_descs[] = {
    &desc_lookup,
    &desc_answers,
    NULL,
};
const struct cw_check_kind cw_kind_dns = {
    .name = "dns",
    .layer = CW_LAYER_NETWORK,
    .state_size = sizeof(struct dns_state),
    .reasons = 1u << CW_REASON_DNS | 1u << CW_REASON_TIMEOUT | 1u << CW_REASON_REFUSED |
               1u << CW_REASON_UNREACHABLE | 1u << CW_REASON_PROTOCOL | 1u << CW_REASON_INTERNAL,
    .configure = dns_configure,
    .target = dns_target,
    .run = dns_run,
    .release = dns_release,
    .probe_option = "name",
    .descs = {dns_descs},
};
