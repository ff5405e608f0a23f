/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_relay_spool.c - Check suite "relay_spool": the durable queue in a
 * scratch directory: puts land as files, duplicates and a full queue are
 * refused, a reopened spool resumes in order (as after kill -9, with a torn
 * temporary file left behind), removal deletes the file and remembers the
 * key for the dedupe window, unreadable entries are moved aside, a dead
 * letter moves to dead/ and comes back at its place through a rescan.
 * Single-threaded.
 */
#include "alerts/relay/spool.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cw-spool-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void empty_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char p[512];

    while (d != NULL && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || de->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        if (unlink(p) != 0) {
            empty_dir(p); /* dead/ */
        }
    }
    if (d != NULL)
        closedir(d);
    rmdir(path);
}

static void teardown(void)
{
    empty_dir(dir);
}

static size_t files_in(const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    ck_assert_ptr_nonnull(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), s = strlen(suffix);

        if (l > s && strcmp(de->d_name + l - s, suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static const char *key(int i)
{
    static char k[33];

    snprintf(k, sizeof(k), "%032x", i);
    return k;
}

START_TEST(test_spool_put_resume_remove)
{
    struct cw_spool *sp;
    struct cw_spool_item it[8];
    enum cw_spool_outcome o;
    char why[256], tmp[600];
    size_t n;
    int fd;

    sp = cw_spool_open(dir, CW_S(60), 100, why, sizeof(why));
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_eq(cw_spool_put(sp, "one", 3, key(1), &o), CW_OK);
    ck_assert_int_eq(o, CW_SPOOL_ADDED);
    ck_assert_int_eq(cw_spool_put(sp, "two", 3, key(2), &o), CW_OK);
    ck_assert_int_eq(cw_spool_put(sp, "dup", 3, key(1), &o), CW_OK);
    ck_assert_int_eq(o, CW_SPOOL_DUPLICATE);
    ck_assert_int_eq(cw_spool_put(sp, "three", 5, key(3), &o), CW_OK);
    ck_assert_uint_eq(cw_spool_length(sp), 3);
    ck_assert_uint_eq(files_in(".json"), 3);
    cw_spool_close(sp); /* as after kill -9: nothing flushed at close */

    /* a put torn before its rename */
    snprintf(tmp, sizeof(tmp), "%s/.tmp-00000000000000000009", dir);
    fd = open(tmp, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);

    sp = cw_spool_open(dir, CW_S(60), 100, why, sizeof(why));
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    ck_assert_uint_eq(cw_spool_length(sp), 3);
    n = cw_spool_peek(sp, 8, it);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(it[0].body, "one");
    ck_assert_str_eq(it[1].body, "two");
    ck_assert_str_eq(it[2].body, "three");
    ck_assert(it[0].seq < it[1].seq && it[1].seq < it[2].seq);
    ck_assert_int_eq(cw_spool_remove(sp, it[0].seq), CW_OK);
    ck_assert_uint_eq(files_in(".json"), 2);
    /* delivered within the window: still a duplicate */
    ck_assert_int_eq(cw_spool_put(sp, "one again", 9, key(1), &o), CW_OK);
    ck_assert_int_eq(o, CW_SPOOL_DUPLICATE);
    /* new puts continue the sequence after the resumed ones */
    ck_assert_int_eq(cw_spool_put(sp, "four", 4, key(4), &o), CW_OK);
    cw_spool_items_free(it, n);
    n = cw_spool_peek(sp, 8, it);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(it[2].body, "four");
    ck_assert(it[2].seq > it[1].seq);
    cw_spool_items_free(it, n);
    cw_spool_close(sp);
}
END_TEST

START_TEST(test_spool_full_and_window)
{
    struct cw_spool *sp;
    struct cw_spool_item it[2];
    enum cw_spool_outcome o;
    char why[256];

    sp = cw_spool_open(dir, 0, 2, why, sizeof(why));
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_eq(cw_spool_put(sp, "a", 1, key(1), &o), CW_OK);
    ck_assert_int_eq(cw_spool_put(sp, "b", 1, key(2), &o), CW_OK);
    ck_assert_int_eq(cw_spool_put(sp, "c", 1, key(3), &o), CW_OK);
    ck_assert_int_eq(o, CW_SPOOL_FULL);
    ck_assert_uint_eq(cw_spool_peek(sp, 1, it), 1);
    ck_assert_int_eq(cw_spool_remove(sp, it[0].seq), CW_OK);
    cw_spool_items_free(it, 1);
    usleep(1000);
    /* window 0: a delivered key may come again */
    ck_assert_int_eq(cw_spool_put(sp, "a", 1, key(1), &o), CW_OK);
    ck_assert_int_eq(o, CW_SPOOL_ADDED);
    cw_spool_close(sp);
}
END_TEST

START_TEST(test_spool_unreadable_entry_moved_aside)
{
    struct cw_spool *sp;
    struct cw_spool_item it[2];
    enum cw_spool_outcome o;
    char why[256], p[600];
    size_t n;

    sp = cw_spool_open(dir, CW_S(60), 10, why, sizeof(why));
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_eq(cw_spool_put(sp, "a", 1, key(1), &o), CW_OK);
    ck_assert_int_eq(cw_spool_put(sp, "b", 1, key(2), &o), CW_OK);
    snprintf(p, sizeof(p), "%s/%020d-%s.json", dir, 1, key(1));
    ck_assert_int_eq(truncate(p, 0), 0); /* empty: unreadable */
    n = cw_spool_peek(sp, 2, it);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(it[0].body, "b");
    ck_assert_uint_eq(files_in(".bad"), 1);
    ck_assert_uint_eq(cw_spool_length(sp), 1);
    cw_spool_items_free(it, n);
    cw_spool_close(sp);
}
END_TEST

START_TEST(test_spool_bury_then_rescan_replays)
{
    struct cw_spool *sp;
    struct cw_spool_item it[4];
    enum cw_spool_outcome o;
    char why[256], name[96], from[600], to[600];
    size_t n;

    sp = cw_spool_open(dir, CW_S(60), 10, why, sizeof(why));
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_eq(cw_spool_put(sp, "poison", 6, key(1), &o), CW_OK);
    ck_assert_int_eq(cw_spool_put(sp, "good", 4, key(2), &o), CW_OK);
    ck_assert_uint_eq(cw_spool_peek(sp, 1, it), 1);
    ck_assert_int_eq(cw_spool_bury(sp, it[0].seq, name, sizeof(name)), CW_OK);
    cw_spool_items_free(it, 1);
    ck_assert_uint_eq(cw_spool_length(sp), 1);
    snprintf(from, sizeof(from), "%s/dead/%s", dir, name);
    ck_assert_int_eq(access(from, F_OK), 0);
    ck_assert_uint_eq(files_in(".json"), 1);
    /* not remembered: the same key may be queued again */
    ck_assert_int_eq(cw_spool_put(sp, "poison again", 12, key(1), &o), CW_OK);
    ck_assert_int_eq(o, CW_SPOOL_ADDED);
    ck_assert_uint_eq(cw_spool_peek(sp, 4, it), 2);
    ck_assert_int_eq(cw_spool_remove(sp, it[1].seq), CW_OK);
    cw_spool_items_free(it, 2);
    ck_assert_uint_eq(cw_spool_rescan(sp), 0);
    /* an unknown seq cannot be buried */
    ck_assert_int_eq(cw_spool_bury(sp, 999, name, sizeof(name)), CW_EINVAL);

    /* replay: the dead letter moved back goes first again (its sequence) */
    snprintf(to, sizeof(to), "%s/%s", dir, strrchr(from, '/') + 1);
    ck_assert_int_eq(rename(from, to), 0);
    ck_assert_uint_eq(cw_spool_rescan(sp), 1);
    ck_assert_uint_eq(cw_spool_rescan(sp), 0);
    n = cw_spool_peek(sp, 4, it);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(it[0].body, "poison");
    ck_assert_str_eq(it[1].body, "good");
    cw_spool_items_free(it, n);
    cw_spool_close(sp);
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("relay_spool");
    TCase *tc = tcase_create("spool");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_spool_put_resume_remove);
    tcase_add_test(tc, test_spool_full_and_window);
    tcase_add_test(tc, test_spool_unreadable_entry_moved_aside);
    tcase_add_test(tc, test_spool_bury_then_rescan_replays);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spool_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
