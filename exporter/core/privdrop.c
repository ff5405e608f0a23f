/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privdrop.c - leaving root: setgroups, setgid, setuid, in that order (the
 * group calls need root), then a check of each. CAP_NET_RAW, when kept, is
 * carried over setuid by PR_SET_KEEPCAPS and then made the only permitted
 * and effective capability; otherwise setuid clears every capability.
 */
#include "privdrop.h"

#include "err.h"
#include "log.h"
#include "num.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

bool cw_ping_group_allows(unsigned long gid)
{
    char line[64], *sp;
    uint64_t lo, hi;
    FILE *f = fopen("/proc/sys/net/ipv4/ping_group_range", "re");
    bool ok;

    if (f == NULL)
        return false;
    ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    /* "LO\tHI\n" */
    sp = ok ? strpbrk(line, " \t") : NULL;
    if (sp == NULL)
        return false;
    line[strcspn(line, "\n")] = '\0';
    return cw_parse_u64(line, (size_t)(sp - line), &lo) == CW_OK &&
           cw_parse_u64(sp + strspn(sp, " \t"), strlen(sp + strspn(sp, " \t")), &hi) == CW_OK &&
           lo <= gid && gid <= hi;
}

/* set_caps() makes CAP_NET_RAW the only permitted and effective capability
 * (none when !net_raw); 0 or -1 with errno. */
static int set_caps(bool net_raw)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof(data));
    if (net_raw) {
        data[CAP_TO_INDEX(CAP_NET_RAW)].permitted = CAP_TO_MASK(CAP_NET_RAW);
        data[CAP_TO_INDEX(CAP_NET_RAW)].effective = CAP_TO_MASK(CAP_NET_RAW);
    }
    return (int)syscall(SYS_capset, &hdr, data);
}

/* only_net_raw() is whether the effective set is CAP_NET_RAW at most. */
static bool only_net_raw(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    size_t i;

    if (syscall(SYS_capget, &hdr, data) != 0)
        return false;
    for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
        unsigned int allowed = i == CAP_TO_INDEX(CAP_NET_RAW) ? CAP_TO_MASK(CAP_NET_RAW) : 0;

        if (((data[i].permitted | data[i].effective | data[i].inheritable) & ~allowed) != 0)
            return false;
    }
    return true;
}

int cw_privdrop(const struct cw_privdrop *p)
{
    const char *name = p->user != NULL ? p->user : p->default_user;
    struct passwd *pw;
    bool net_raw;
    gid_t groups[2];
    char ebuf[128];

    if (p->user != NULL && p->as_root) {
        fprintf(stderr, "%s: --run-as-user and --run-as-root exclude each other\n", p->prog);
        return 2;
    }
    if (geteuid() != 0) {
        pw = p->user != NULL ? getpwnam(p->user) : NULL;
        if (p->user != NULL && (pw == NULL || pw->pw_uid != geteuid())) {
            fprintf(stderr, "%s: --run-as-user=%s needs to be started as root\n", p->prog, p->user);
            return 2;
        }
        return -1;
    }
    if (p->as_root) {
        cw_log(CW_LOG_WARN, "main", "running as root (--run-as-root)", (char *)NULL);
        return -1;
    }
    pw = getpwnam(name);
    if (pw == NULL) {
        if (p->user != NULL)
            fprintf(stderr, "%s: --run-as-user: no user \"%s\"\n", p->prog, p->user);
        else
            fprintf(stderr,
                    "%s: refusing to run as root: there is no user \"%s\" to switch to; give "
                    "--run-as-user=USER, or --run-as-root to keep root\n",
                    p->prog, name);
        return 2;
    }
    if (pw->pw_uid == 0) {
        fprintf(stderr, "%s: user \"%s\" is root: give --run-as-root for that\n", p->prog, name);
        return 2;
    }
    net_raw = p->want_net_raw && !cw_ping_group_allows((unsigned long)pw->pw_gid);
    /* Nothing regains what is dropped here, not even a setuid program. */
    for (int cap = 0; prctl(PR_CAPBSET_READ, (long)cap, 0L, 0L, 0L) >= 0; cap++) {
        if ((cap != CAP_NET_RAW || !net_raw) &&
            prctl(PR_CAPBSET_DROP, (long)cap, 0L, 0L, 0L) != 0) {
            fprintf(stderr, "%s: cannot drop capabilities: %s\n", p->prog,
                    cw_strerror_r(errno, ebuf, sizeof(ebuf)));
            return 1;
        }
    }
    /* Supplementary groups: none but the user's primary group. */
    groups[0] = pw->pw_gid;
    if (setgroups(1, groups) != 0 || setgid(pw->pw_gid) != 0 ||
        (net_raw && prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) || setuid(pw->pw_uid) != 0 ||
        (net_raw && prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) || set_caps(net_raw) != 0) {
        fprintf(stderr, "%s: cannot switch to user \"%s\": %s\n", p->prog, name,
                cw_strerror_r(errno, ebuf, sizeof(ebuf)));
        return 1;
    }
    /* Check that it took: ids, groups, capabilities, and no way back. */
    if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid || getgid() != pw->pw_gid ||
        getegid() != pw->pw_gid || getgroups(2, groups) != 1 || groups[0] != pw->pw_gid ||
        !only_net_raw() || setuid(0) == 0 || setgid(0) == 0) {
        fprintf(stderr, "%s: switching to user \"%s\" did not take effect\n", p->prog, name);
        return 1;
    }
    cw_log(CW_LOG_INFO, "main", "switched from root", "user", name, "cap_net_raw",
           net_raw ? "kept" : "none", (char *)NULL);
    return -1;
}
