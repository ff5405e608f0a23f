/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_wire.h - DNS messages of the dns check: the query it sends (built
 * here, with an EDNS0 OPT record) and the checks and counts on the reply
 * (parsed by libresolv's bounds-checked ns_initparse()/ns_parserr()).
 *
 * Pure: no I/O, no state; thread-safe. Fuzzed by tests/fuzz/fuzz_dns_wire.c.
 */
#ifndef CW_COLLECTORS_DNS_WIRE_H
#define CW_COLLECTORS_DNS_WIRE_H

#include "exporter/core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_DNS_TYPE_A    1
#define CW_DNS_TYPE_AAAA 28
#define CW_DNS_QUERY_MAX 512  /* largest query we build */
#define CW_DNS_EDNS_SIZE 1232 /* UDP payload size we advertise (DNS flag day 2020) */

/* cw_dns_name_is_valid() tells whether 'name' is a domain name we can put
 * in a query (presentation form, optional trailing dot, labels of 1-63
 * bytes, at most 255 bytes on the wire). */
bool cw_dns_name_is_valid(const char *name);

/* cw_dns_query_build() writes a standard query (RD set) for 'name' and
 * 'qtype', class IN, with message id 'id', into 'buf' of 'cap' bytes, and
 * an EDNS0 OPT record advertising 'edns_size' bytes when it is not 0.
 * Returns CW_OK with *len set, CW_EPARSE for a bad name, or CW_ETOOBIG. */
CW_MUST_CHECK int cw_dns_query_build(uint8_t *buf, size_t cap, size_t *len, uint16_t id,
                                     const char *name, uint16_t qtype, uint16_t edns_size);

/* What a reply says. */
struct cw_dns_reply {
    int rcode;        /* 0 NOERROR, 3 NXDOMAIN, ... (the header's 4 bits) */
    bool truncated;   /* TC: the answer did not fit */
    unsigned ancount; /* records in the answer section */
    unsigned answers; /* of them, records of the asked type and class IN */
};

/* cw_dns_reply_parse() checks that 'msg' ('len' bytes) is a well-formed
 * response to the query (id, QR, opcode, question = name/qtype/IN; a reply
 * without a question is accepted only with an error rcode) and counts its
 * answers. Returns CW_OK, or CW_EPARSE with a static reason in *why (the
 * caller ignores such a datagram: it may be forged or stray). */
CW_MUST_CHECK int cw_dns_reply_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                                     uint16_t qtype, struct cw_dns_reply *out, const char **why);

/* cw_dns_rcode_name() returns "NOERROR", "SERVFAIL", "NXDOMAIN", ... or
 * "RCODE<n>" written into buf for unnamed codes. */
const char *cw_dns_rcode_name(int rcode, char *buf, size_t len);

#endif
