/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_host_proc.c - libFuzzer target for every parser of
 * collectors/host_proc.c: /proc/stat, /proc/meminfo, /proc/net/snmp,
 * /proc/net/netstat and /proc/net/tcp{,6} (whole and fed in two chunks,
 * the way host_sockdiag.c streams it).
 *
 * Built with -DCW_FUZZ_REPLAY it is a plain program that replays the files
 * (or directories of files) named on its command line, so that meson runs
 * the corpus in tests/fuzz/corpus/host_proc/ as a test without clang. Each
 * input is copied into a buffer of its exact size, so ASan sees overreads.
 * Single-threaded; owns nothing between inputs.
 */
#include "collectors/host_proc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_check_net_tcp() feeds 'text' as the first 'split' bytes, then the
 * unconsumed rest plus the remainder, and checks the invariants of
 * cw_host_parse_net_tcp(). */
static void fuzz_check_net_tcp(const char *text, size_t size, size_t split)
{
    struct cw_host_tcp_states st = {{0}, 0};
    size_t used = 0;
    char *rest;
    size_t rest_len;

    if (cw_host_parse_net_tcp(text, split, &st, &used) != CW_OK)
        return;
    if (used > split)
        abort();
    rest_len = size - used;
    rest = malloc(rest_len > 0 ? rest_len : 1);
    if (rest == NULL)
        return;
    memcpy(rest, text + used, rest_len);
    if (cw_host_parse_net_tcp(rest, rest_len, &st, &used) == CW_OK && used > rest_len)
        abort();
    free(rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct cw_host_cpu cpu;
    struct cw_host_mem mem;
    struct cw_host_tcp_counters tcp = {{0}, 0};
    struct cw_host_tcp_states st = {{0}, 0};
    size_t used = 0;
    int rc;

    if (cw_host_parse_stat(text, size, &cpu) == CW_OK) {
        double usage, iowait;

        cw_host_cpu_ratios(NULL, &cpu, &usage, &iowait);
        if (usage < 0 || usage > 1 || iowait < 0 || iowait > 1)
            abort();
        (void)cw_host_cpu_total(&cpu);
    }
    rc = cw_host_parse_meminfo(text, size, &mem);
    if (rc != CW_OK && rc != CW_EPARSE)
        abort();
    if (rc == CW_OK && (mem.present & CW_HOST_MEM_TOTAL) == 0)
        abort();
    if (cw_host_parse_snmp(text, size, &tcp) == CW_OK &&
        cw_host_tcp_has(&tcp, CW_HOST_TCP_OUT_SEGS) &&
        cw_host_tcp_has(&tcp, CW_HOST_TCP_RETRANS_SEGS))
        (void)cw_host_retransmit_ratio(NULL, &tcp);
    rc = cw_host_parse_netstat(text, size, &tcp);
    if (rc != CW_OK && rc != CW_EPARSE)
        abort();
    if (cw_host_parse_net_tcp(text, size, &st, &used) == CW_OK && used > size)
        abort();
    fuzz_check_net_tcp(text, size, size / 2);
    return 0;
}

#ifdef CW_FUZZ_REPLAY
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* replay_file() runs one input; returns 0, or 1 if it could not be read. */
static int replay_file(const char *path)
{
    struct stat sb;
    uint8_t *buf;
    size_t got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size < 0) {
        fprintf(stderr, "fuzz_host_proc: cannot open %s (errno %d)\n", path, errno);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
    if (buf == NULL) {
        close(fd);
        return 1;
    }
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

/* replay_path() runs a file, or every regular file of a directory. */
static int replay_path(const char *path, unsigned *count)
{
    struct stat sb;
    DIR *dir;
    struct dirent *de;
    int bad = 0;

    if (stat(path, &sb) != 0) {
        fprintf(stderr, "fuzz_host_proc: cannot stat %s (errno %d)\n", path, errno);
        return 1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    dir = opendir(path);
    if (dir == NULL)
        return 1;
    for (de = readdir(dir); de != NULL; de = readdir(dir)) {
        char sub[4096];

        if (de->d_name[0] == '.')
            continue;
        if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub)) {
            bad = 1;
            continue;
        }
        if (stat(sub, &sb) == 0 && S_ISREG(sb.st_mode)) {
            (*count)++;
            bad |= replay_file(sub);
        }
    }
    closedir(dir);
    return bad;
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int bad = 0;

    for (int i = 1; i < argc; i++)
        bad |= replay_path(argv[i], &count);
    printf("fuzz_host_proc: replayed %u inputs\n", count);
    if (count == 0)
        return 1;
    return bad;
}
#endif
