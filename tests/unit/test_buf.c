/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_buf.c - the bounded buffer: its limit, the sticky error, setlen, and
 * the readers of files and descriptors with every way they fail. realloc()
 * is wrapped at link time (-Wl,--wrap=realloc) so that out of memory is a
 * case like the others.
 */
#include "exporter/core/buf.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wchar.h>

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);

/* Test-only: when set, the next realloc() fails. */
static bool realloc_fails;

void *__wrap_realloc(void *p, size_t n)
{
    if (realloc_fails) {
        realloc_fails = false;
        return NULL;
    }
    return __real_realloc(p, n);
}

/* scratch() makes a file in a fresh directory with 'len' bytes of 'x' and
 * returns its path in 'path'. */
static void scratch(char *path, size_t pathlen, size_t len)
{
    char dir[] = "/tmp/cw_test_buf.XXXXXX";
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, pathlen, "%s/file", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_ne(fputc('x', f), EOF);
    ck_assert_int_eq(fclose(f), 0);
}

static void scratch_remove(const char *path)
{
    char dir[256];

    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    unlink(path);
    rmdir(dir);
}

/* pipe_with() returns the read end of a pipe that holds 'text', its write
 * end closed when 'close_writer' (else *writer receives it). */
static int pipe_with(const char *text, bool close_writer, int *writer)
{
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
    if (close_writer)
        close(p[1]);
    else
        *writer = p[1];
    return p[0];
}

START_TEST(test_buf_refuses_to_pass_its_limit)
{
    struct cw_buf b;

    cw_buf_init(&b, 8);
    ck_assert_int_eq(cw_buf_adds(&b, "1234"), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "56789"), CW_ETOOBIG);
    ck_assert_str_eq(cw_buf_str(&b), "1234");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_adds(&b, "1234"), CW_OK);
    ck_assert_int_eq(cw_buf_addf(&b, "%d", 56789), CW_ETOOBIG);
    ck_assert_str_eq(cw_buf_str(&b), "1234");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_adds(&b, "1234"), CW_OK);
    ck_assert_int_eq(cw_buf_addf(&b, "%d", 5678), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "12345678");
    cw_buf_reset(&b);
}
END_TEST

/* Once an append fails, every later one fails with the same error and the
 * contents stay as they were; the error is read once at the end. */
START_TEST(test_buf_error_is_sticky)
{
    struct cw_buf b;

    cw_buf_init(&b, 8);
    ck_assert_int_eq(cw_buf_error(&b), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "123"), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "456789"), CW_ETOOBIG);
    ck_assert_int_eq(cw_buf_addc(&b, '4'), CW_ETOOBIG);
    ck_assert_int_eq(cw_buf_add(&b, "4", 1), CW_ETOOBIG);
    ck_assert_int_eq(cw_buf_addf(&b, "%d", 4), CW_ETOOBIG);
    ck_assert_int_eq(cw_buf_add_html(&b, "<"), CW_ETOOBIG);
    ck_assert_int_eq(cw_buf_reserve(&b, 1), CW_ETOOBIG);
    ck_assert_str_eq(cw_buf_str(&b), "123");
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(cw_buf_error(&b), CW_ETOOBIG);
    /* clear and reset start afresh */
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_error(&b), CW_OK);
    ck_assert_int_eq(cw_buf_addc(&b, 'a'), CW_OK);
    ck_assert_int_eq(cw_buf_addf(&b, "%s", "123456789"), CW_ETOOBIG);
    ck_assert_int_eq(cw_buf_error(&b), CW_ETOOBIG);
    cw_buf_reset(&b);
    ck_assert_int_eq(cw_buf_error(&b), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "abc"), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "abc");
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_buf_out_of_memory_is_sticky)
{
    struct cw_buf b;

    cw_buf_init(&b, 1024);
    realloc_fails = true;
    ck_assert_int_eq(cw_buf_adds(&b, "abc"), CW_ENOMEM);
    ck_assert_int_eq(cw_buf_adds(&b, "abc"), CW_ENOMEM);
    ck_assert_int_eq(cw_buf_error(&b), CW_ENOMEM);
    ck_assert_str_eq(cw_buf_str(&b), "");
    ck_assert_ptr_null(cw_buf_take(&b, NULL));
    ck_assert_int_eq(cw_buf_error(&b), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "abc"), CW_OK);
    realloc_fails = true;
    ck_assert_int_eq(cw_buf_addf(&b, "%0100d", 1), CW_ENOMEM);
    ck_assert_str_eq(cw_buf_str(&b), "abc");
    /* The first error stays the one reported. */
    ck_assert_int_eq(cw_buf_addf(&b, "%02000d", 1), CW_ENOMEM);
    cw_buf_reset(&b);
}
END_TEST

/* A format the C library cannot render (a wide character the C locale
 * cannot encode) fails with CW_EINVAL, sticky like any other failure. */
START_TEST(test_buf_addf_that_cannot_format_fails)
{
    static const wchar_t wide[] = {0x100, 0};
    struct cw_buf b;

    cw_buf_init(&b, 64);
    ck_assert_int_eq(cw_buf_adds(&b, "ok"), CW_OK);
    ck_assert_int_eq(cw_buf_addf(&b, "%ls", wide), CW_EINVAL);
    ck_assert_str_eq(cw_buf_str(&b), "ok");
    ck_assert_int_eq(cw_buf_adds(&b, "more"), CW_EINVAL);
    ck_assert_int_eq(cw_buf_error(&b), CW_EINVAL);
    cw_buf_reset(&b);
    /* and on a buffer with no memory yet */
    cw_buf_init(&b, 64);
    ck_assert_int_eq(cw_buf_addf(&b, "%ls", wide), CW_EINVAL);
    ck_assert_str_eq(cw_buf_str(&b), "");
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_buf_setlen_cuts_and_takes_in_reserved_bytes)
{
    struct cw_buf b;

    cw_buf_init(&b, 16);
    ck_assert_int_eq(cw_buf_setlen(&b, 0), CW_OK); /* nothing allocated yet */
    ck_assert_int_eq(cw_buf_setlen(&b, 1), CW_EINVAL);
    ck_assert_int_eq(cw_buf_adds(&b, "hello, world"), CW_OK);
    ck_assert_int_eq(cw_buf_setlen(&b, 5), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "hello");
    ck_assert_uint_eq(b.len, 5);
    /* bytes written into reserved room */
    ck_assert_int_eq(cw_buf_reserve(&b, 3), CW_OK);
    memcpy(b.data + b.len, "!!!", 3);
    ck_assert_int_eq(cw_buf_setlen(&b, 8), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "hello!!!");
    /* past the memory or the limit: refused, nothing changes */
    ck_assert_int_eq(cw_buf_setlen(&b, b.cap), CW_EINVAL);
    ck_assert_str_eq(cw_buf_str(&b), "hello!!!");
    /* in error: cutting still works, growing does not */
    ck_assert_int_eq(cw_buf_adds(&b, "0123456789"), CW_ETOOBIG);
    ck_assert_int_eq(cw_buf_setlen(&b, 9), CW_EINVAL);
    ck_assert_int_eq(cw_buf_setlen(&b, 2), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "he");
    ck_assert_int_eq(cw_buf_error(&b), CW_ETOOBIG);
    cw_buf_reset(&b);
}
END_TEST

/* A new bound holds even where the memory is already larger. */
START_TEST(test_buf_setlimit_moves_the_bound)
{
    struct cw_buf b;

    cw_buf_init(&b, 4);
    ck_assert_int_eq(cw_buf_adds(&b, "abcd"), CW_OK);
    ck_assert_int_eq(cw_buf_setlimit(&b, 3), CW_EINVAL);
    ck_assert_uint_eq(b.limit, 4);
    ck_assert_int_eq(cw_buf_setlimit(&b, 100), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "efghijklmnopqrstuvwxyz"), CW_OK);
    ck_assert_uint_gt(b.cap, 30);
    ck_assert_int_eq(cw_buf_setlimit(&b, 27), CW_OK);
    ck_assert_int_eq(cw_buf_addc(&b, '0'), CW_OK);
    ck_assert_int_eq(cw_buf_addc(&b, '1'), CW_ETOOBIG);
    ck_assert_str_eq(cw_buf_str(&b), "abcdefghijklmnopqrstuvwxyz0");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_addf(&b, "%028d", 0), CW_ETOOBIG);
    ck_assert_str_eq(cw_buf_str(&b), "");
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_buf_read_file_reads_within_the_limit)
{
    struct cw_buf b;
    char path[256], why[160] = "";

    scratch(path, sizeof(path), 100);
    cw_buf_init(&b, 100);
    ck_assert_int_eq(cw_buf_read_file(&b, path, why, sizeof(why)), CW_OK);
    ck_assert_uint_eq(b.len, 100);
    ck_assert_uint_eq(strspn(cw_buf_str(&b), "x"), 100);
    cw_buf_reset(&b);

    cw_buf_init(&b, 150);
    ck_assert_int_eq(cw_buf_adds(&b, "head:"), CW_OK);
    ck_assert_int_eq(cw_buf_read_file(&b, path, why, sizeof(why)), CW_OK);
    ck_assert_uint_eq(b.len, 105);
    ck_assert_int_eq(strncmp(cw_buf_str(&b), "head:xx", 7), 0);
    cw_buf_reset(&b);

    /* 100 bytes where 60 are left: refused before reading, and sticky */
    cw_buf_init(&b, 100);
    ck_assert_int_eq(cw_buf_add(&b, "0123456789012345678901234567890123456789", 40), CW_OK);
    ck_assert_int_eq(cw_buf_read_file(&b, path, why, sizeof(why)), CW_ETOOBIG);
    ck_assert_str_eq(why, "the file is 100 bytes, larger than the limit of 60 bytes");
    ck_assert_uint_eq(b.len, 40);
    ck_assert_int_eq(cw_buf_addc(&b, 'y'), CW_ETOOBIG);
    /* a buffer in error is not read into */
    ck_assert_int_eq(cw_buf_read_file(&b, path, why, sizeof(why)), CW_ETOOBIG);
    ck_assert_str_eq(why, "output too large");
    cw_buf_reset(&b);
    scratch_remove(path);
}
END_TEST

START_TEST(test_buf_read_file_fails_on_missing_special_and_growing_files)
{
    struct cw_buf b;
    char path[256], fifo[300], why[160];

    scratch(path, sizeof(path), 1);
    cw_buf_init(&b, 1 << 16);
    ck_assert_int_eq(cw_buf_read_file(&b, "/nonexistent/cw_test_buf", why, sizeof(why)), CW_EIO);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(why, "No such file or directory");
    ck_assert_int_eq(cw_buf_error(&b), CW_EIO);

    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_read_file(&b, "/tmp", why, sizeof(why)), CW_EPARSE);
    ck_assert_str_eq(why, "not a regular file (a directory)");

    /* A FIFO without a writer is refused at once, not waited on. */
    snprintf(fifo, sizeof(fifo), "%s.fifo", path);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_read_file(&b, fifo, why, sizeof(why)), CW_EPARSE);
    ck_assert_str_eq(why, "not a regular file (a FIFO)");
    unlink(fifo);

    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_read_file(&b, "/dev/null", why, sizeof(why)), CW_EPARSE);
    ck_assert_str_eq(why, "not a regular file (a character device)");

    /* /proc files are regular files of size 0 that hold more: past the
     * limit they "grow" while being read. */
    cw_buf_reset(&b);
    cw_buf_init(&b, 8);
    ck_assert_int_eq(cw_buf_read_file(&b, "/proc/self/status", why, sizeof(why)), CW_ETOOBIG);
    ck_assert_str_eq(why, "the file grew past the limit of 8 bytes while being read");
    ck_assert_uint_eq(b.len, 8);
    ck_assert_int_eq(strncmp(cw_buf_str(&b), "Name:", 5), 0);

    /* Out of memory while reading. */
    cw_buf_reset(&b);
    cw_buf_init(&b, 1 << 16);
    realloc_fails = true;
    ck_assert_int_eq(cw_buf_read_file(&b, path, why, sizeof(why)), CW_ENOMEM);
    ck_assert_str_eq(why, "out of memory");
    ck_assert_int_eq(cw_buf_error(&b), CW_ENOMEM);
    cw_buf_reset(&b);
    scratch_remove(path);
}
END_TEST

START_TEST(test_buf_read_file_at_reads_relative_to_a_directory)
{
    struct cw_buf b;
    char path[256], dir[256], why[160];
    int dfd;

    scratch(path, sizeof(path), 3);
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dfd, 0);
    cw_buf_init(&b, 16);
    ck_assert_int_eq(cw_buf_read_file_at(&b, dfd, "file", why, sizeof(why)), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "xxx");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_read_file_at(&b, dfd, "missing", why, sizeof(why)), CW_EIO);
    ck_assert_int_eq(errno, ENOENT);
    cw_buf_reset(&b);
    close(dfd);
    scratch_remove(path);
}
END_TEST

START_TEST(test_buf_read_fd_reads_a_pipe_to_its_end)
{
    struct cw_buf b;
    char why[160];
    int fd;

    cw_buf_init(&b, 64);
    fd = pipe_with("hello from a pipe", true, NULL);
    ck_assert_int_eq(cw_buf_read_fd(&b, fd, 1000, why, sizeof(why)), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "hello from a pipe");
    close(fd);
    /* exactly 'max' bytes and then the end: not too big */
    cw_buf_clear(&b);
    fd = pipe_with("12345", true, NULL);
    ck_assert_int_eq(cw_buf_read_fd(&b, fd, 5, NULL, 0), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "12345");
    close(fd);
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_buf_read_fd_keeps_a_prefix_past_its_bound)
{
    struct cw_buf b;
    char why[160];
    int fd;

    /* bounded by 'max' */
    cw_buf_init(&b, 64);
    fd = pipe_with("0123456789", true, NULL);
    ck_assert_int_eq(cw_buf_read_fd(&b, fd, 4, why, sizeof(why)), CW_ETOOBIG);
    ck_assert_str_eq(why, "more than 4 bytes");
    ck_assert_str_eq(cw_buf_str(&b), "0123");
    ck_assert_int_eq(cw_buf_error(&b), CW_ETOOBIG);
    close(fd);
    /* bounded by the buffer's limit */
    cw_buf_reset(&b);
    cw_buf_init(&b, 6);
    ck_assert_int_eq(cw_buf_adds(&b, "ab"), CW_OK);
    fd = pipe_with("0123456789", true, NULL);
    ck_assert_int_eq(cw_buf_read_fd(&b, fd, 1000, why, sizeof(why)), CW_ETOOBIG);
    ck_assert_str_eq(why, "more than 4 bytes");
    ck_assert_str_eq(cw_buf_str(&b), "ab0123");
    /* and, in error, it reads nothing more */
    ck_assert_int_eq(cw_buf_read_fd(&b, fd, 1000, why, sizeof(why)), CW_ETOOBIG);
    ck_assert_str_eq(why, "output too large");
    close(fd);
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_buf_read_fd_reports_errno)
{
    struct cw_buf b;
    char why[160];
    int fd, writer;

    cw_buf_init(&b, 64);
    ck_assert_int_eq(cw_buf_read_fd(&b, -1, 10, why, sizeof(why)), CW_EIO);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_str_eq(why, "Bad file descriptor");
    ck_assert_int_eq(cw_buf_error(&b), CW_EIO);

    /* a non-blocking descriptor with nothing more to read: EAGAIN, with
     * what came before it kept */
    cw_buf_clear(&b);
    fd = pipe_with("part", false, &writer);
    ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(cw_buf_read_fd(&b, fd, 10, why, sizeof(why)), CW_EIO);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_str_eq(cw_buf_str(&b), "part");
    close(fd);
    close(writer);

    /* out of memory */
    cw_buf_clear(&b);
    cw_buf_reset(&b);
    fd = pipe_with("x", true, NULL);
    realloc_fails = true;
    ck_assert_int_eq(cw_buf_read_fd(&b, fd, 10, why, sizeof(why)), CW_ENOMEM);
    ck_assert_str_eq(why, "out of memory");
    close(fd);
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_buf_read_path_reads_any_kind_of_file)
{
    struct cw_buf b;
    char why[160];

    cw_buf_init(&b, 1 << 16);
    ck_assert_int_eq(cw_buf_read_path(&b, "/proc/self/stat", 4096, why, sizeof(why)), CW_OK);
    ck_assert_ptr_nonnull(strchr(cw_buf_str(&b), ')'));
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_read_path(&b, "/proc/self/status", 5, why, sizeof(why)), CW_ETOOBIG);
    ck_assert_str_eq(cw_buf_str(&b), "Name:");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_buf_read_path(&b, "/nonexistent/x", 5, why, sizeof(why)), CW_EIO);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(why, "No such file or directory");
    /* in error: refused before opening anything */
    ck_assert_int_eq(cw_buf_read_path(&b, "/proc/self/stat", 4096, why, sizeof(why)), CW_EIO);
    ck_assert_str_eq(cw_buf_str(&b), "");
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_buf_take_hands_over_and_starts_afresh)
{
    struct cw_buf b;
    size_t len = 99;
    char *p;

    cw_buf_init(&b, 4);
    ck_assert_ptr_null(cw_buf_take(&b, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(cw_buf_adds(&b, "abc"), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "de"), CW_ETOOBIG);
    p = cw_buf_take(&b, &len);
    ck_assert_str_eq(p, "abc");
    ck_assert_uint_eq(len, 3);
    free(p);
    ck_assert_int_eq(cw_buf_error(&b), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "abcd"), CW_OK);
    cw_buf_reset(&b);
}
END_TEST

static Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *t = tcase_create("buf");

    tcase_add_test(t, test_buf_refuses_to_pass_its_limit);
    tcase_add_test(t, test_buf_error_is_sticky);
    tcase_add_test(t, test_buf_out_of_memory_is_sticky);
    tcase_add_test(t, test_buf_addf_that_cannot_format_fails);
    tcase_add_test(t, test_buf_setlen_cuts_and_takes_in_reserved_bytes);
    tcase_add_test(t, test_buf_setlimit_moves_the_bound);
    tcase_add_test(t, test_buf_read_file_reads_within_the_limit);
    tcase_add_test(t, test_buf_read_file_fails_on_missing_special_and_growing_files);
    tcase_add_test(t, test_buf_read_file_at_reads_relative_to_a_directory);
    tcase_add_test(t, test_buf_read_fd_reads_a_pipe_to_its_end);
    tcase_add_test(t, test_buf_read_fd_keeps_a_prefix_past_its_bound);
    tcase_add_test(t, test_buf_read_fd_reports_errno);
    tcase_add_test(t, test_buf_read_path_reads_any_kind_of_file);
    tcase_add_test(t, test_buf_take_hands_over_and_starts_afresh);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
