/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay_main.c - runs a libFuzzer target over files without libFuzzer, so
 * every target's corpus is replayed as a plain meson test (suite
 * fuzz-replay) with any compiler, under ASan/UBSan and valgrind too.
 *
 * Arguments are files or directories (one level). Each input is copied into
 * a heap buffer of its exact size, so an overread is caught by ASan or
 * valgrind. Exits 0 when every input ran, 1 when one could not be read; a
 * crash in the target is the failure that matters.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    struct stat sb;
    uint8_t *buf;
    size_t got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return 1;
    }
    while (got < (size_t)sb.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int bad = 0;
    int runs = 0;
    int i;

    for (i = 1; i < argc; i++) {
        struct stat sb;
        DIR *d;
        struct dirent *e;

        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: cannot stat %s\n", argv[i]);
            bad = 1;
            continue;
        }
        if (!S_ISDIR(sb.st_mode)) {
            bad |= replay_file(argv[i]);
            runs++;
            continue;
        }
        d = opendir(argv[i]);
        if (d == NULL) {
            bad = 1;
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            char path[4096];

            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            bad |= replay_file(path);
            runs++;
        }
        closedir(d);
    }
    printf("replayed %d inputs\n", runs);
    return bad || runs == 0;
}
