/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe_allow.c - the /probe allow-list (probe.allow): loading its rules,
 * and matching a target's host and port against their patterns (name
 * globs, IP literals, address-shaped globs that match IP literals only, and
 * CIDR prefixes). See probe_allow.h. Loading runs on the loading thread;
 * matching reads loaded rules only and is thread-safe.
 */
#include "probe_allow.h"

#include "core/metric.h"
#include "kinds.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One rule as read, before it is checked and moved into the settings. */
struct probe_opts {
    char *check;               /* owned */
    struct cw_strlist targets; /* owned until moved into the rule */
    cw_duration timeout;
    struct cw_strmap options; /* owned until moved into the rule */
};

static const struct cw_opt probe_rule_opts[] = {
    CW_OPT("check", CW_OPT_T_STRING, struct probe_opts, check, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("targets", CW_OPT_T_STRING_LIST, struct probe_opts, targets, NULL, 0, 0,
           CW_OPT_REQUIRED),
    CW_OPT("timeout", CW_OPT_T_DURATION, struct probe_opts, timeout, NULL, CW_MS(1), CW_S(600), 0),
    CW_OPT("options", CW_OPT_T_STRING_MAP, struct probe_opts, options, NULL, 0, 0, 0),
    CW_OPT_END,
};

/* split_hostport() splits "host", "host:port", "[v6]" or "[v6]:port" (the
 * port part may be a glob); the brackets are removed. Returns false when the
 * text is not of that shape. */
static bool split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *h = s, *colon = NULL;
    size_t n, bits_len = 0;
    const char *bits = NULL;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        const char *rest;

        if (close == NULL)
            return false;
        h = s + 1;
        n = (size_t)(close - h);
        rest = close + 1;
        if (*rest == '/') { /* "[fd00::]/8": a CIDR prefix after the brackets */
            bits = rest;
            bits_len = strcspn(rest, ":");
            rest += bits_len;
        }
        if (*rest != '\0' && *rest != ':')
            return false;
        if (*rest == ':')
            colon = rest;
    } else {
        colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            colon = NULL; /* a bare IPv6 address */
        n = colon != NULL ? (size_t)(colon - s) : strlen(s);
    }
    if (n == 0 || n + bits_len >= hostlen)
        return false;
    memcpy(host, h, n);
    if (bits != NULL)
        memcpy(host + n, bits, bits_len);
    host[n + bits_len] = '\0';
    if (colon == NULL) {
        port[0] = '\0';
        return true;
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= portlen)
        return false;
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    return true;
}

/* probe_target_hostport() extracts host and port from a probe target: a URL
 * ("scheme://host[:port]/...", no user information) or "host[:port]". */
static bool probe_target_hostport(const char *target, char *host, size_t hostlen, char *port,
                                  size_t portlen)
{
    const char *sep = strstr(target, "://");
    char authority[300];
    size_t n;

    if (sep == NULL)
        return split_hostport(target, host, hostlen, port, portlen);
    sep += 3;
    n = strcspn(sep, "/?#");
    if (n == 0 || n >= sizeof(authority) || memchr(sep, '@', n) != NULL)
        return false;
    memcpy(authority, sep, n);
    authority[n] = '\0';
    if (!split_hostport(authority, host, hostlen, port, portlen))
        return false;
    if (port[0] == '\0')
        snprintf(port, portlen, "%s", strncmp(target, "https", 5) == 0 ? "443" : "80");
    return true;
}

/* cidr_parse() reads "addr/bits" into the network bytes; false if malformed. */
static bool cidr_parse(const char *cidr, int *af, unsigned char *net, long *bits)
{
    char addr[64];
    const char *slash = strchr(cidr, '/');
    char *end;

    if (slash == NULL || slash == cidr || (size_t)(slash - cidr) >= sizeof(addr))
        return false;
    memcpy(addr, cidr, (size_t)(slash - cidr));
    addr[slash - cidr] = '\0';
    *af = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;
    *bits = strtol(slash + 1, &end, 10);
    if (slash[1] == '\0' || *end != '\0' || *bits < 0 || *bits > (*af == AF_INET6 ? 128 : 32))
        return false;
    return inet_pton(*af, addr, net) == 1;
}

/* cidr_contains() tells whether the IP literal 'host' lies in "addr/bits". */
static bool cidr_contains(const char *cidr, const char *host)
{
    unsigned char net[16], ip[16];
    long bits;
    int af;
    size_t i;

    if (!cidr_parse(cidr, &af, net, &bits) || inet_pton(af, host, ip) != 1)
        return false;
    for (i = 0; i < (af == AF_INET6 ? 16u : 4u) && bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));

        if ((net[i] & mask) != (ip[i] & mask))
            return false;
    }
    return true;
}

/* pattern_family() tells what a host glob can stand for: AF_INET for one
 * shaped like an IPv4 address (digits, dots and glob characters, with a
 * digit: "10.*", "127.0.0.?"), AF_INET6 for one with a ':', 0 for a name
 * glob ("*.example.com", "*"). An address-shaped glob matches IP literals
 * only: "127.0.0.*" must not admit the name "127.0.0.2.nip.io", which
 * resolves anywhere. */
static int pattern_family(const char *p)
{
    bool digit = false;

    if (strchr(p, ':') != NULL)
        return AF_INET6;
    for (; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9')
            digit = true;
        else if (strchr(".*?[]!^-", *p) == NULL)
            return 0;
    }
    return digit ? AF_INET : 0;
}

static bool probe_pattern_matches(const char *pattern, const char *host, const char *port)
{
    char phost[300], pport[32];
    unsigned char ip[16];
    int af;

    if (!split_hostport(pattern, phost, sizeof(phost), pport, sizeof(pport)))
        return false;
    if (pport[0] != '\0' && (port[0] == '\0' || fnmatch(pport, port, 0) != 0))
        return false;
    if (strchr(phost, '/') != NULL)
        return cidr_contains(phost, host);
    af = pattern_family(phost);
    if (af != 0 && inet_pton(af, host, ip) != 1)
        return false;
    return fnmatch(phost, host, FNM_CASEFOLD) == 0;
}

bool cw_probe_rule_allows(const struct cw_probe_rule *rule, const char *host, const char *port)
{
    size_t j;

    for (j = 0; rule != NULL && j < rule->targets.n; j++) {
        if (probe_pattern_matches(rule->targets.items[j], host, port))
            return true;
    }
    return false;
}

const struct cw_probe_rule *cw_settings_probe_rule(const struct cw_settings *s,
                                                   const struct cw_check_kind *kind,
                                                   const char *target)
{
    char host[300], port[32];
    size_t i;

    if (!probe_target_hostport(target, host, sizeof(host), port, sizeof(port)))
        return NULL;
    for (i = 0; s != NULL && i < s->nprobe; i++) {
        if (s->probe[i].kind == kind && cw_probe_rule_allows(&s->probe[i], host, port))
            return &s->probe[i];
    }
    return NULL;
}

int cw_probe_allow_load(struct cw_settings *s, const struct cw_node *root,
                        cw_duration default_timeout, struct cw_diag *diag)
{
    const struct cw_node *probe = cw_node_get(root, "probe");
    const struct cw_node *allow;
    static const char *const probe_keys[] = {"allow", NULL};
    size_t i, j;
    int rc = CW_OK;

    if (probe == NULL || cw_node_is_null(probe))
        return CW_OK;
    if (probe->type != CW_NODE_MAP) {
        cw_diagf(diag, probe, "must be a mapping with \"allow\", not a %s",
                 cw_node_type_name(probe));
        return CW_ECONFIG;
    }
    for (i = 0; i < probe->nitems; i++) {
        if (strcmp(probe->items[i]->key, probe_keys[0]) != 0) {
            cw_diagf_key(diag, probe->items[i], "unknown field \"%s\"", probe->items[i]->key);
            rc = CW_ECONFIG;
        }
    }
    allow = cw_node_get(probe, "allow");
    if (allow == NULL || cw_node_is_null(allow))
        return rc;
    if (allow->type != CW_NODE_SEQ) {
        cw_diagf(diag, allow, "must be a list of rules, not a %s", cw_node_type_name(allow));
        return CW_ECONFIG;
    }
    s->probe = calloc(allow->nitems != 0 ? allow->nitems : 1, sizeof(*s->probe));
    if (s->probe == NULL) {
        cw_diagf(diag, allow, "out of memory");
        return CW_ECONFIG;
    }
    for (i = 0; i < allow->nitems; i++) {
        const struct cw_node *rn = allow->items[i];
        struct probe_opts po;
        const struct cw_check_kind *kind;
        bool ok = true;

        memset(&po, 0, sizeof(po));
        if (cw_opts_apply(probe_rule_opts, &po, rn, NULL, diag) != CW_OK) {
            cw_opts_release(probe_rule_opts, &po);
            rc = CW_ECONFIG;
            continue;
        }
        kind = cw_check_kind_find(po.check);
        if (kind == NULL || kind->probe_option == NULL) {
            cw_diagf(diag, cw_node_get(rn, "check"), "\"%s\" is not a check kind /probe can run",
                     po.check);
            ok = false;
        }
        for (j = 0; j < po.targets.n; j++) {
            char h[300], p[32];
            const char *t = po.targets.items[j];

            unsigned char net[16];
            long bits;
            int af;

            if (!split_hostport(t, h, sizeof(h), p, sizeof(p)) ||
                (strchr(h, '/') != NULL && !cidr_parse(h, &af, net, &bits))) {
                cw_diagf(diag, cw_node_get(rn, "targets")->items[j],
                         "\"%s\" is not a HOST[:PORT] pattern (a name glob, an IP, or a CIDR "
                         "like 10.0.0.0/8)",
                         t);
                ok = false;
            }
        }
        for (j = 0; kind != NULL && j < po.options.n; j++) {
            const char *k = po.options.keys[j];

            if (!cw_label_name_is_valid(k) || strcmp(k, kind->probe_option) == 0 ||
                strcmp(k, "interval") == 0 || strcmp(k, "timeout") == 0 || strcmp(k, "name") == 0) {
                cw_diagf_key(diag, cw_node_get(cw_node_get(rn, "options"), k),
                             "\"%s\" cannot be a fixed probe option", k);
                ok = false;
            }
        }
        if (!ok) {
            cw_opts_release(probe_rule_opts, &po);
            rc = CW_ECONFIG;
            continue;
        }
        s->probe[s->nprobe].options = po.options;
        po.options.keys = NULL;
        po.options.values = NULL;
        po.options.n = 0;
        s->probe[s->nprobe].kind = kind;
        s->probe[s->nprobe].targets = po.targets;
        s->probe[s->nprobe].timeout = po.timeout != 0 ? po.timeout : default_timeout;
        po.targets.items = NULL;
        po.targets.n = 0;
        s->nprobe++;
        cw_opts_release(probe_rule_opts, &po);
    }
    return rc;
}

void cw_probe_allow_free(struct cw_settings *s)
{
    size_t i, j;

    for (i = 0; i < s->nprobe; i++) {
        for (j = 0; j < s->probe[i].targets.n; j++)
            free(s->probe[i].targets.items[j]);
        free(s->probe[i].targets.items);
        for (j = 0; j < s->probe[i].options.n; j++) {
            free(s->probe[i].options.keys[j]);
            free(s->probe[i].options.values[j]);
        }
        free(s->probe[i].options.keys);
        free(s->probe[i].options.values);
    }
    free(s->probe);
    s->probe = NULL;
    s->nprobe = 0;
}
