/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host_proc.c - pure parsers of /proc/stat, /proc/meminfo, /proc/net/snmp,
 * /proc/net/netstat and /proc/net/tcp{,6} for the "host" check.
 *
 * Everything here works on a (pointer, length) span with explicit end
 * pointers: no I/O, no allocation, no reliance on a terminating NUL, and no
 * state outside the caller's structs, so every function is thread-safe. The
 * host check's worker, the unit tests, fuzz_host_proc and bench/sockcount
 * call it. Numbers go through cw_parse_u64() (not strtoull) because the
 * input is not NUL-terminated; overflow is an error, never a wrap.
 */
#include "host_proc.h"

#include "exporter/core/num.h"

#include <string.h>

/* ---- Span helpers --------------------------------------------------------- */

static bool proc_is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool proc_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int proc_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* proc_skip_spaces() returns the first non-blank byte of [p, end), or end. */
static const char *proc_skip_spaces(const char *p, const char *end)
{
    while (p < end && proc_is_space(*p))
        p++;
    return p;
}

/* proc_token_end() returns the end of the token starting at p. */
static const char *proc_token_end(const char *p, const char *end)
{
    while (p < end && !proc_is_space(*p))
        p++;
    return p;
}

/* proc_parse_u64() parses the whole token [p, end) as a decimal number. */
static int proc_parse_u64(const char *p, const char *end, uint64_t *out)
{
    return cw_parse_u64(p, (size_t)(end - p), out);
}

/* proc_is_integer() tells whether [p, end) is a decimal integer, optionally
 * negative (MaxConn is -1), that fits 64 bits. */
static bool proc_is_integer(const char *p, const char *end)
{
    uint64_t ignored;

    if (p < end && *p == '-')
        p++;
    return proc_parse_u64(p, end, &ignored) == CW_OK;
}

/* proc_token_is() tells whether the token [p, end) equals 's'. */
static bool proc_token_is(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);

    return (size_t)(end - p) == n && memcmp(p, s, n) == 0;
}

/* proc_starts_with() tells whether [p, end) begins with 's'. */
static bool proc_starts_with(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);

    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/* ---- /proc/stat ----------------------------------------------------------- */

static const char *const cpu_mode_names[CW_HOST_CPU_NMODES] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
};

const char *cw_host_cpu_mode_name(unsigned m)
{
    if (m >= CW_HOST_CPU_NMODES)
        return NULL;
    return cpu_mode_names[m];
}

uint64_t cw_host_cpu_total(const struct cw_host_cpu *cpu)
{
    uint64_t sum = 0;

    for (unsigned i = 0; i < CW_HOST_CPU_NMODES; i++) {
        if (cpu->ticks[i] > UINT64_MAX - sum)
            return UINT64_MAX;
        sum += cpu->ticks[i];
    }
    return sum;
}

void cw_host_cpu_ratios(const struct cw_host_cpu *prev, const struct cw_host_cpu *cur,
                        double *usage, double *iowait)
{
    uint64_t d[CW_HOST_CPU_NMODES];
    double total = 0;
    double idle;

    for (unsigned i = 0; i < CW_HOST_CPU_NMODES; i++) {
        if (prev == NULL)
            d[i] = cur->ticks[i];
        else if (cur->ticks[i] >= prev->ticks[i])
            d[i] = cur->ticks[i] - prev->ticks[i];
        else
            d[i] = 0; /* iowait is allowed to go backwards */
        total += (double)d[i];
    }
    if (total <= 0) {
        *usage = 0;
        *iowait = 0;
        return;
    }
    idle = (double)d[CW_HOST_CPU_IDLE] + (double)d[CW_HOST_CPU_IOWAIT];
    *usage = 1.0 - idle / total;
    *iowait = (double)d[CW_HOST_CPU_IOWAIT] / total;
    if (*usage < 0) /* rounding */
        *usage = 0;
}

int cw_host_parse_stat(const char *buf, size_t len, struct cw_host_cpu *out)
{
    const char *p, *end;

    if (buf == NULL || len == 0)
        return CW_EPARSE;
    p = buf;
    end = buf + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl != NULL ? nl : end;
        struct cw_host_cpu cpu = {{0}};
        unsigned n = 0;

        /* "cpu" followed by a blank is the aggregate line; "cpu0" is not. */
        if (!proc_starts_with(p, eol, "cpu") || eol - p < 4 || !proc_is_space(p[3])) {
            if (nl == NULL)
                break;
            p = nl + 1;
            continue;
        }
        if (nl == NULL)
            return CW_EPARSE; /* truncated inside the line we need */
        p += 3;
        for (;;) {
            const char *tok = proc_skip_spaces(p, eol);
            const char *tend = proc_token_end(tok, eol);
            uint64_t v;

            if (tok == eol)
                break;
            if (proc_parse_u64(tok, tend, &v) != CW_OK)
                return CW_EPARSE;
            if (n < CW_HOST_CPU_NMODES)
                cpu.ticks[n] = v;
            n++;
            p = tend;
        }
        if (n < CW_HOST_CPU_NMODES)
            return CW_EPARSE;
        *out = cpu;
        return CW_OK;
    }
    return CW_EPARSE;
}

/* ---- /proc/meminfo -------------------------------------------------------- */

/* meminfo_parse_kb() parses the rest of a "Key:" line: "   1234 kB". */
static int meminfo_parse_kb(const char *p, const char *eol, uint64_t *bytes)
{
    const char *tok = proc_skip_spaces(p, eol);
    const char *tend = proc_token_end(tok, eol);
    uint64_t kb;

    if (proc_parse_u64(tok, tend, &kb) != CW_OK)
        return CW_EPARSE;
    tok = proc_skip_spaces(tend, eol);
    tend = proc_token_end(tok, eol);
    if (!proc_token_is(tok, tend, "kB"))
        return CW_EPARSE;
    if (proc_skip_spaces(tend, eol) != eol)
        return CW_EPARSE;
    if (kb > UINT64_MAX / 1024)
        return CW_EPARSE;
    *bytes = kb * 1024;
    return CW_OK;
}

int cw_host_parse_meminfo(const char *buf, size_t len, struct cw_host_mem *out)
{
    static const struct {
        const char *key;
        unsigned bit;
    } keys[] = {
        {"MemTotal:", CW_HOST_MEM_TOTAL},
        {"MemAvailable:", CW_HOST_MEM_AVAILABLE},
    };
    struct cw_host_mem mem = {0};
    const char *p, *end;

    if (buf == NULL || len == 0)
        return CW_EPARSE;
    p = buf;
    end = buf + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl != NULL ? nl : end;

        for (size_t i = 0; i < CW_ARRAY_LEN(keys); i++) {
            uint64_t bytes;

            if (!proc_starts_with(p, eol, keys[i].key) || (mem.present & keys[i].bit) != 0)
                continue;
            if (nl == NULL)
                return CW_EPARSE;
            if (meminfo_parse_kb(p + strlen(keys[i].key), eol, &bytes) != CW_OK)
                return CW_EPARSE;
            if (keys[i].bit == CW_HOST_MEM_TOTAL)
                mem.total_bytes = bytes;
            else
                mem.available_bytes = bytes;
            mem.present |= keys[i].bit;
        }
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    if ((mem.present & CW_HOST_MEM_TOTAL) == 0)
        return CW_EPARSE;
    *out = mem;
    return CW_OK;
}

/* ---- /proc/net/snmp and /proc/net/netstat --------------------------------- */

static const char *const tcp_field_names[CW_HOST_TCP_NFIELDS] = {
    [CW_HOST_TCP_ACTIVE_OPENS] = "ActiveOpens",
    [CW_HOST_TCP_PASSIVE_OPENS] = "PassiveOpens",
    [CW_HOST_TCP_ATTEMPT_FAILS] = "AttemptFails",
    [CW_HOST_TCP_ESTAB_RESETS] = "EstabResets",
    [CW_HOST_TCP_CURR_ESTAB] = "CurrEstab",
    [CW_HOST_TCP_IN_SEGS] = "InSegs",
    [CW_HOST_TCP_OUT_SEGS] = "OutSegs",
    [CW_HOST_TCP_RETRANS_SEGS] = "RetransSegs",
    [CW_HOST_TCP_IN_ERRS] = "InErrs",
    [CW_HOST_TCP_OUT_RSTS] = "OutRsts",
    [CW_HOST_TCPEXT_TIMEOUTS] = "TCPTimeouts",
    [CW_HOST_TCPEXT_LISTEN_OVERFLOWS] = "ListenOverflows",
    [CW_HOST_TCPEXT_LISTEN_DROPS] = "ListenDrops",
    [CW_HOST_TCPEXT_SYN_RETRANS] = "TCPSynRetrans",
    [CW_HOST_TCPEXT_LOST_RETRANSMIT] = "TCPLostRetransmit",
};

const char *cw_host_tcp_field_name(unsigned f)
{
    if (f >= CW_HOST_TCP_NFIELDS)
        return NULL;
    return tcp_field_names[f];
}

/* pair_find_field() returns the field in [first, last) named [p, end), or -1. */
static int pair_find_field(const char *p, const char *end, unsigned first, unsigned last)
{
    for (unsigned f = first; f < last; f++)
        if (proc_token_is(p, end, tcp_field_names[f]))
            return (int)f;
    return -1;
}

/* pair_parse() reads the header/value line pair that starts with 'prefix'
 * ("Tcp:") and stores the fields [first, last) found in it, by name. */
static int pair_parse(const char *buf, size_t len, const char *prefix, unsigned first,
                      unsigned last, struct cw_host_tcp_counters *out)
{
    struct cw_host_tcp_counters tmp = *out;
    const char *p, *end;
    const char *hdr = NULL, *hdr_eol = NULL, *val, *val_eol;
    unsigned ncols = 0;

    if (buf == NULL || len == 0)
        return CW_EPARSE;
    p = buf;
    end = buf + len;

    /* Find the header line: the first line starting with the prefix. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));

        if (proc_starts_with(p, nl != NULL ? nl : end, prefix)) {
            if (nl == NULL)
                return CW_EPARSE;
            hdr = p;
            hdr_eol = nl;
            p = nl + 1;
            break;
        }
        if (nl == NULL)
            return CW_EPARSE;
        p = nl + 1;
    }
    if (hdr == NULL || p >= end)
        return CW_EPARSE;
    val = p;
    val_eol = memchr(val, '\n', (size_t)(end - val));
    if (val_eol == NULL || !proc_starts_with(val, val_eol, prefix))
        return CW_EPARSE;

    /* Walk names and values in lockstep. */
    hdr += strlen(prefix);
    val += strlen(prefix);
    for (;;) {
        const char *name = proc_skip_spaces(hdr, hdr_eol);
        const char *name_end = proc_token_end(name, hdr_eol);
        const char *num = proc_skip_spaces(val, val_eol);
        const char *num_end = proc_token_end(num, val_eol);
        int f;

        if (name == hdr_eol || num == val_eol) {
            if (name != hdr_eol || num != val_eol)
                return CW_EPARSE; /* column counts differ */
            break;
        }
        f = pair_find_field(name, name_end, first, last);
        if (f >= 0) {
            if (proc_parse_u64(num, num_end, &tmp.v[f]) != CW_OK)
                return CW_EPARSE;
            tmp.present |= 1u << f;
        } else if (!proc_is_integer(num, num_end)) {
            return CW_EPARSE;
        }
        ncols++;
        hdr = name_end;
        val = num_end;
    }
    if (ncols == 0)
        return CW_EPARSE;
    *out = tmp;
    return CW_OK;
}

int cw_host_parse_snmp(const char *buf, size_t len, struct cw_host_tcp_counters *out)
{
    return pair_parse(buf, len, "Tcp:", CW_HOST_TCP_ACTIVE_OPENS, CW_HOST_TCPEXT_TIMEOUTS, out);
}

int cw_host_parse_netstat(const char *buf, size_t len, struct cw_host_tcp_counters *out)
{
    return pair_parse(buf, len, "TcpExt:", CW_HOST_TCPEXT_TIMEOUTS, CW_HOST_TCP_NFIELDS, out);
}

double cw_host_retransmit_ratio(const struct cw_host_tcp_counters *prev,
                                const struct cw_host_tcp_counters *cur)
{
    uint64_t out = cur->v[CW_HOST_TCP_OUT_SEGS];
    uint64_t retrans = cur->v[CW_HOST_TCP_RETRANS_SEGS];

    if (prev != NULL && out >= prev->v[CW_HOST_TCP_OUT_SEGS] &&
        retrans >= prev->v[CW_HOST_TCP_RETRANS_SEGS]) {
        out -= prev->v[CW_HOST_TCP_OUT_SEGS];
        retrans -= prev->v[CW_HOST_TCP_RETRANS_SEGS];
    }
    if (out == 0)
        return 0;
    return (double)retrans / (double)out;
}

/* ---- /proc/net/tcp and /proc/net/tcp6 ------------------------------------- */

static const char *const tcp_state_names[CW_TCP_NSTATES] = {
    [CW_TCP_ESTABLISHED] = "established",
    [CW_TCP_SYN_SENT] = "syn_sent",
    [CW_TCP_SYN_RECV] = "syn_recv",
    [CW_TCP_FIN_WAIT1] = "fin_wait1",
    [CW_TCP_FIN_WAIT2] = "fin_wait2",
    [CW_TCP_TIME_WAIT] = "time_wait",
    [CW_TCP_CLOSE] = "close",
    [CW_TCP_CLOSE_WAIT] = "close_wait",
    [CW_TCP_LAST_ACK] = "last_ack",
    [CW_TCP_LISTEN] = "listen",
    [CW_TCP_CLOSING] = "closing",
};

const char *cw_host_tcp_state_name(unsigned s)
{
    if (s == 0 || s >= CW_TCP_NSTATES)
        return NULL;
    return tcp_state_names[s];
}

uint64_t cw_host_tcp_states_total(const struct cw_host_tcp_states *st)
{
    uint64_t sum = st->other;

    for (unsigned s = 1; s < CW_TCP_NSTATES; s++)
        sum += st->count[s];
    return sum;
}

/* net_tcp_skip_addr() checks an "ADDR:PORT" token in hex (8 or 32 digits,
 * then 4) and returns its end, or NULL. */
static const char *net_tcp_skip_addr(const char *p, const char *eol)
{
    const char *tend = proc_token_end(p, eol);
    const char *colon = memchr(p, ':', (size_t)(tend - p));
    size_t alen, plen;

    if (colon == NULL)
        return NULL;
    alen = (size_t)(colon - p);
    plen = (size_t)(tend - colon - 1);
    if ((alen != 8 && alen != 32) || plen == 0 || plen > 4)
        return NULL;
    for (const char *q = p; q < tend; q++)
        if (q != colon && proc_hex_value(*q) < 0)
            return NULL;
    return tend;
}

/* net_tcp_line() counts one line [p, eol) of /proc/net/tcp{,6}. */
static int net_tcp_line(const char *p, const char *eol, struct cw_host_tcp_states *st)
{
    const char *tok = proc_skip_spaces(p, eol);
    const char *tend = proc_token_end(tok, eol);
    unsigned state = 0;

    if (proc_token_is(tok, tend, "sl"))
        return CW_OK; /* the header */

    /* "  12: " slot number */
    if (tend - tok < 2 || tend[-1] != ':')
        return CW_EPARSE;
    for (const char *q = tok; q < tend - 1; q++)
        if (!proc_is_digit(*q))
            return CW_EPARSE;

    /* local and remote address */
    for (int i = 0; i < 2; i++) {
        tok = proc_skip_spaces(tend, eol);
        if (tok == tend)
            return CW_EPARSE;
        tend = net_tcp_skip_addr(tok, eol);
        if (tend == NULL)
            return CW_EPARSE;
    }

    /* st: two hex digits */
    tok = proc_skip_spaces(tend, eol);
    tend = proc_token_end(tok, eol);
    if (tok == tend || tend - tok > 2)
        return CW_EPARSE;
    for (const char *q = tok; q < tend; q++) {
        int h = proc_hex_value(*q);

        if (h < 0)
            return CW_EPARSE;
        state = state * 16 + (unsigned)h;
    }
    if (state >= 1 && state < CW_TCP_NSTATES)
        st->count[state]++;
    else
        st->other++;
    return CW_OK;
}

int cw_host_parse_net_tcp(const char *buf, size_t len, struct cw_host_tcp_states *st, size_t *used)
{
    const char *p, *end;

    *used = 0;
    if (buf == NULL || len == 0)
        return CW_OK;
    p = buf;
    end = buf + len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));

        if (nl == NULL)
            break; /* incomplete: the caller feeds it again with more data */
        if (net_tcp_line(p, nl, st) != CW_OK) {
            *used = (size_t)(p - buf);
            return CW_EPARSE;
        }
        p = nl + 1;
    }
    *used = (size_t)(p - buf);
    return CW_OK;
}
