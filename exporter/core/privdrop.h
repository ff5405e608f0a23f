/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privdrop.h - started as root outside systemd, both programs give up root
 * before anything else happens: --run-as-user=USER, or the package's user
 * by default (connwatch, connwatch-relay); --run-as-root keeps root. With
 * neither flag and no such user, a program started as root refuses to run.
 * Under systemd the unit's User= (or DynamicUser=) starts it unprivileged
 * and none of this applies. Called by main() before any thread starts
 * (capabilities are per thread).
 */
#ifndef CW_PRIVDROP_H
#define CW_PRIVDROP_H

#include <stdbool.h>

struct cw_privdrop {
    const char *prog;         /* for messages: "connwatch" */
    const char *default_user; /* the package's user, used when it exists */
    const char *user;         /* --run-as-user, or NULL */
    bool as_root;             /* --run-as-root */
    bool want_net_raw;        /* keep CAP_NET_RAW (only) when the new group may
                               * not open ICMP datagram sockets */
};

/* CW_PRIVDROP_USAGE is the help text of the two flags. */
#define CW_PRIVDROP_USAGE                                                                          \
    "  --run-as-user=USER          started as root: switch to USER before anything\n"              \
    "                              else (default: the package's user when it exists)\n"            \
    "  --run-as-root               started as root: keep running as root\n"

/* cw_privdrop() switches to the user when running as root, and checks that
 * it took effect (user, group and supplementary groups; no way back to
 * root). Returns -1 to go on, or the exit code after a message on stderr:
 * 2 when root was refused (no user to switch to), 1 when switching failed.
 * Not root: nothing happens, unless --run-as-user names another user (2). */
int cw_privdrop(const struct cw_privdrop *p);

/* cw_ping_group_allows() is whether net.ipv4.ping_group_range (of this
 * network namespace) includes 'gid'. */
bool cw_ping_group_allows(unsigned long gid);

#endif
