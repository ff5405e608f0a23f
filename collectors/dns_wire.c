/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_wire.c - build the dns check's query, check and count its reply.
 *
 * The query is a dozen bytes of header, the name in wire form from
 * ns_name_pton() (which validates it), the question and an EDNS0 OPT
 * record. Replies are parsed only through libresolv (ns_initparse() walks
 * and bounds-checks every section, ns_parserr() expands names), so nothing
 * here indexes into the datagram by hand. Pure; thread-safe.
 */
#include "collectors/dns_wire.h"

#include <arpa/nameser.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>

/* dns_name_wire() converts a presentation name to uncompressed wire form
 * in 'w' (NS_MAXCDNAME bytes) and returns its length, or 0 when invalid. */
static size_t dns_name_wire(const char *name, unsigned char *w)
{
    size_t i = 0;

    if (name == NULL || name[0] == '\0' || strcmp(name, ".") == 0)
        return 0;
    if (ns_name_pton(name, w, NS_MAXCDNAME) < 0)
        return 0;
    /* Walk the labels: ns_name_pton() wrote plain labels ending in 0. */
    while (i < NS_MAXCDNAME && w[i] != 0) {
        if (w[i] > 63)
            return 0;
        i += (size_t)w[i] + 1;
    }
    if (i >= NS_MAXCDNAME)
        return 0;
    return i + 1;
}

bool cw_dns_name_is_valid(const char *name)
{
    unsigned char w[NS_MAXCDNAME];

    return dns_name_wire(name, w) > 1;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

int cw_dns_query_build(uint8_t *buf, size_t cap, size_t *len, uint16_t id, const char *name,
                       uint16_t qtype, uint16_t edns_size)
{
    unsigned char w[NS_MAXCDNAME];
    size_t wl = dns_name_wire(name, w), need;

    if (wl <= 1)
        return CW_EPARSE;
    need = 12 + wl + 4 + (edns_size != 0 ? 11 : 0);
    if (need > cap)
        return CW_ETOOBIG;
    memset(buf, 0, 12);
    put16(buf, id);
    put16(buf + 2, 0x0100);                  /* standard query, recursion desired */
    put16(buf + 4, 1);                       /* QDCOUNT */
    put16(buf + 10, edns_size != 0 ? 1 : 0); /* ARCOUNT */
    memcpy(buf + 12, w, wl);
    put16(buf + 12 + wl, qtype);
    put16(buf + 14 + wl, ns_c_in);
    if (edns_size != 0) {
        uint8_t *o = buf + 16 + wl;

        o[0] = 0;                /* root owner */
        put16(o + 1, ns_t_opt);  /* TYPE OPT */
        put16(o + 3, edns_size); /* CLASS = UDP payload size */
        memset(o + 5, 0, 6);     /* extended rcode, version, flags; RDLEN 0 */
    }
    *len = need;
    return CW_OK;
}

/* dns_same_name() compares two presentation names case-insensitively in
 * wire form (so escapes and a trailing dot do not matter). */
static bool dns_same_name(const char *a, const char *b)
{
    unsigned char wa[NS_MAXCDNAME], wb[NS_MAXCDNAME];
    size_t la, lb, i;

    if (strcmp(a, ".") == 0 || strcmp(b, ".") == 0)
        return strcmp(a, b) == 0;
    la = dns_name_wire(a, wa);
    lb = dns_name_wire(b, wb);
    if (la == 0 || la != lb)
        return false;
    for (i = 0; i < la; i++) {
        unsigned char x = wa[i], y = wb[i];

        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

int cw_dns_reply_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                       uint16_t qtype, struct cw_dns_reply *out, const char **why)
{
    ns_msg h;
    ns_rr rr;
    int i, n;

    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (len < 12 || len > 65535) {
        *why = "shorter than a DNS header";
        return CW_EPARSE;
    }
    if (ns_initparse(msg, (int)len, &h) != 0) {
        *why = "malformed DNS message";
        return CW_EPARSE;
    }
    if (ns_msg_id(h) != id) {
        *why = "message id does not match the query";
        return CW_EPARSE;
    }
    if (ns_msg_getflag(h, ns_f_qr) != 1 || ns_msg_getflag(h, ns_f_opcode) != ns_o_query) {
        *why = "not a response to a standard query";
        return CW_EPARSE;
    }
    out->rcode = ns_msg_getflag(h, ns_f_rcode);
    out->truncated = ns_msg_getflag(h, ns_f_tc) != 0;
    n = ns_msg_count(h, ns_s_qd);
    if (n == 0 && out->rcode != ns_r_noerror)
        return CW_OK; /* some servers drop the question from an error reply */
    if (n != 1) {
        *why = "question count is not 1";
        return CW_EPARSE;
    }
    if (ns_parserr(&h, ns_s_qd, 0, &rr) != 0) {
        *why = "malformed question";
        return CW_EPARSE;
    }
    if (ns_rr_type(rr) != qtype || ns_rr_class(rr) != ns_c_in ||
        !dns_same_name(ns_rr_name(rr), name)) {
        *why = "question does not match the query";
        return CW_EPARSE;
    }
    n = ns_msg_count(h, ns_s_an);
    out->ancount = (unsigned)n;
    for (i = 0; i < n; i++) {
        if (ns_parserr(&h, ns_s_an, i, &rr) != 0) {
            *why = "malformed answer record";
            return CW_EPARSE;
        }
        if (ns_rr_type(rr) != qtype || ns_rr_class(rr) != ns_c_in)
            continue; /* a CNAME on the way, or a DNAME */
        if ((qtype == CW_DNS_TYPE_A && ns_rr_rdlen(rr) != 4) ||
            (qtype == CW_DNS_TYPE_AAAA && ns_rr_rdlen(rr) != 16)) {
            *why = "address record of the wrong length";
            return CW_EPARSE;
        }
        out->answers++;
    }
    return CW_OK;
}

const char *cw_dns_rcode_name(int rcode, char *buf, size_t len)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH", "NOTZONE"};

    if (rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0]))
        return names[rcode];
    (void)snprintf(buf, len, "RCODE%d", rcode);
    return buf;
}
