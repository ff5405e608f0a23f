/* SPDX-License-Identifier: Apache-2.0 */
/*
 * host_proc.h - pure parsers of the /proc files the "host" check reads:
 * /proc/stat (cpu line), /proc/meminfo, /proc/net/snmp (Tcp:),
 * /proc/net/netstat (TcpExt:) and /proc/net/tcp{,6} (state column).
 *
 * Every parser takes a buffer and its length, does no I/O and no allocation,
 * never reads outside [buf, buf+len) (the buffer need not be NUL-terminated)
 * and returns CW_OK or CW_EPARSE. A line without its terminating newline is
 * treated as truncated. Results go into caller-provided structs. All
 * functions are thread-safe; they are called by the host check's worker,
 * the unit tests, the fuzz target and bench/sockcount.
 */
#ifndef CW_HOST_PROC_H
#define CW_HOST_PROC_H

#include "exporter/core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- /proc/stat ---------------------------------------------------------- */

/* CPU modes of the aggregate "cpu" line, in file order. guest and guest_nice
 * are already included in user and nice, so they are not read. */
enum cw_host_cpu_mode {
    CW_HOST_CPU_USER = 0,
    CW_HOST_CPU_NICE,
    CW_HOST_CPU_SYSTEM,
    CW_HOST_CPU_IDLE,
    CW_HOST_CPU_IOWAIT,
    CW_HOST_CPU_IRQ,
    CW_HOST_CPU_SOFTIRQ,
    CW_HOST_CPU_STEAL,
    CW_HOST_CPU_NMODES
};

struct cw_host_cpu {
    uint64_t ticks[CW_HOST_CPU_NMODES]; /* USER_HZ ticks since boot */
};

/* cw_host_cpu_mode_name() returns the "mode" label value of 'm' ("user",
 * "nice", ..., "steal"), or NULL when out of range. */
const char *cw_host_cpu_mode_name(unsigned m);

/* cw_host_cpu_total() returns the sum of the eight modes (saturating). */
uint64_t cw_host_cpu_total(const struct cw_host_cpu *cpu);

/* cw_host_parse_stat() reads the aggregate "cpu " line of /proc/stat into
 * 'out'. The line must hold at least the eight modes; further columns are
 * checked to be numbers and ignored. Returns CW_OK, or CW_EPARSE when the
 * line is missing, truncated or malformed ('out' is then unspecified). */
CW_MUST_CHECK int cw_host_parse_stat(const char *buf, size_t len, struct cw_host_cpu *out);

/* cw_host_cpu_ratios() computes, between snapshot 'prev' and 'cur', the
 * share of CPU time that was busy (1 - (idle + iowait) / total) into *usage
 * and the share spent in iowait into *iowait. With 'prev' NULL the shares are
 * since boot. A mode whose ticks went down (iowait can) counts as 0; when no
 * tick passed both ratios are 0. Results are within [0, 1]. */
void cw_host_cpu_ratios(const struct cw_host_cpu *prev, const struct cw_host_cpu *cur,
                        double *usage, double *iowait);

/* ---- /proc/meminfo ------------------------------------------------------- */

#define CW_HOST_MEM_TOTAL     0x1u /* total_bytes was read */
#define CW_HOST_MEM_AVAILABLE 0x2u /* available_bytes was read (kernels >= 3.14) */

struct cw_host_mem {
    uint64_t total_bytes;     /* MemTotal */
    uint64_t available_bytes; /* MemAvailable */
    unsigned present;         /* CW_HOST_MEM_* bits */
};

/* cw_host_parse_meminfo() reads MemTotal and MemAvailable (kB, converted to
 * bytes) into 'out' and sets out->present. Other lines are skipped unread.
 * Returns CW_EPARSE when MemTotal is missing, or when a wanted line is
 * malformed, truncated, not in kB or overflows. A missing MemAvailable is not
 * an error: its bit stays clear. */
CW_MUST_CHECK int cw_host_parse_meminfo(const char *buf, size_t len, struct cw_host_mem *out);

/* ---- /proc/net/snmp and /proc/net/netstat -------------------------------- */

/* TCP counters the host check reads, by name. The first group is the Tcp:
 * pair of /proc/net/snmp, the second the TcpExt: pair of /proc/net/netstat. */
enum cw_host_tcp_field {
    CW_HOST_TCP_ACTIVE_OPENS = 0,    /* ActiveOpens */
    CW_HOST_TCP_PASSIVE_OPENS,       /* PassiveOpens */
    CW_HOST_TCP_ATTEMPT_FAILS,       /* AttemptFails */
    CW_HOST_TCP_ESTAB_RESETS,        /* EstabResets */
    CW_HOST_TCP_CURR_ESTAB,          /* CurrEstab (a gauge) */
    CW_HOST_TCP_IN_SEGS,             /* InSegs */
    CW_HOST_TCP_OUT_SEGS,            /* OutSegs */
    CW_HOST_TCP_RETRANS_SEGS,        /* RetransSegs */
    CW_HOST_TCP_IN_ERRS,             /* InErrs */
    CW_HOST_TCP_OUT_RSTS,            /* OutRsts */
    CW_HOST_TCPEXT_TIMEOUTS,         /* TCPTimeouts */
    CW_HOST_TCPEXT_LISTEN_OVERFLOWS, /* ListenOverflows */
    CW_HOST_TCPEXT_LISTEN_DROPS,     /* ListenDrops */
    CW_HOST_TCPEXT_SYN_RETRANS,      /* TCPSynRetrans */
    CW_HOST_TCPEXT_LOST_RETRANSMIT,  /* TCPLostRetransmit */
    CW_HOST_TCP_NFIELDS
};

struct cw_host_tcp_counters {
    uint64_t v[CW_HOST_TCP_NFIELDS];
    uint32_t present; /* bit (1u << field): v[field] was read */
};

/* cw_host_tcp_field_name() returns the kernel's name of field 'f'
 * ("OutSegs", "TCPTimeouts", ...), or NULL when out of range. */
const char *cw_host_tcp_field_name(unsigned f);

/* cw_host_tcp_has() tells whether field 'f' was read into 'c'. */
static inline bool cw_host_tcp_has(const struct cw_host_tcp_counters *c, enum cw_host_tcp_field f)
{
    return ((c->present >> f) & 1u) != 0;
}

/* cw_host_parse_snmp() finds the "Tcp:" header and value lines of
 * /proc/net/snmp and stores the Tcp fields of 'out' by name (columns may be
 * in any order; unknown columns are skipped). Fields of the TcpExt group are
 * left as they were, so one struct can take both files. Returns CW_EPARSE
 * when the pair is missing, truncated, has differing column counts, or a
 * value is not an integer (a wanted one must also be non-negative). Missing
 * wanted columns are not an error: their present bit stays clear. */
CW_MUST_CHECK int cw_host_parse_snmp(const char *buf, size_t len, struct cw_host_tcp_counters *out);

/* cw_host_parse_netstat() is cw_host_parse_snmp() for the "TcpExt:" pair of
 * /proc/net/netstat; it sets the TcpExt fields of 'out'. */
CW_MUST_CHECK int cw_host_parse_netstat(const char *buf, size_t len,
                                        struct cw_host_tcp_counters *out);

/* cw_host_retransmit_ratio() returns RetransSegs / OutSegs between 'prev'
 * and 'cur' (since boot when 'prev' is NULL or when either counter went
 * down), and 0 when no segment was sent. Both snapshots must hold both
 * counters (CW_HOST_TCP_OUT_SEGS and CW_HOST_TCP_RETRANS_SEGS). The result may
 * exceed 1, since OutSegs does not count retransmitted segments. */
double cw_host_retransmit_ratio(const struct cw_host_tcp_counters *prev,
                                const struct cw_host_tcp_counters *cur);

/* ---- /proc/net/tcp and /proc/net/tcp6 ------------------------------------ */

/* Kernel TCP state numbers (include/net/tcp_states.h). */
enum cw_host_tcp_state {
    CW_TCP_ESTABLISHED = 1,
    CW_TCP_SYN_SENT,
    CW_TCP_SYN_RECV,
    CW_TCP_FIN_WAIT1,
    CW_TCP_FIN_WAIT2,
    CW_TCP_TIME_WAIT,
    CW_TCP_CLOSE,
    CW_TCP_CLOSE_WAIT,
    CW_TCP_LAST_ACK,
    CW_TCP_LISTEN,
    CW_TCP_CLOSING,
    CW_TCP_NSTATES /* one past the last; index 0 is unused */
};

struct cw_host_tcp_states {
    uint64_t count[CW_TCP_NSTATES]; /* sockets per kernel state number */
    uint64_t other;                 /* sockets in a state outside 1..11 */
};

/* cw_host_tcp_state_name() returns the "state" label value of kernel state
 * 's' ("established", ..., "closing"), or NULL when 's' is not 1..11. */
const char *cw_host_tcp_state_name(unsigned s);

/* cw_host_tcp_states_total() returns the number of sockets counted. */
uint64_t cw_host_tcp_states_total(const struct cw_host_tcp_states *st);

/* cw_host_parse_net_tcp() counts the sockets of /proc/net/tcp or tcp6 text
 * into 'st' (adding to what is there), so that a file can be fed in chunks:
 * it consumes every complete line of [buf, buf+len), sets *used to the bytes
 * consumed, and leaves the incomplete last line for the caller to feed again
 * followed by more data. Header lines ("  sl  local_address ...") are
 * skipped. Returns CW_EPARSE on a malformed line (*used then points at it).
 * At end of file the caller must check that *used == len. */
CW_MUST_CHECK int cw_host_parse_net_tcp(const char *buf, size_t len, struct cw_host_tcp_states *st,
                                        size_t *used);

#endif
