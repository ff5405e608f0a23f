/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_redis_info.c - Check suite "redis_info": the pure INFO, CLUSTER INFO
 * and CLUSTER NODES parsers of collectors/redis_info.c and the hit ratio
 * arithmetic, on replies captured from redis-server 7.0.15 and on crafted
 * ones (LF only, truncated, garbage, fields of later versions) in
 * tests/fixtures/redis/.
 *
 * Fixtures are loaded into buffers of their exact size, without a NUL, so
 * that ASan and valgrind catch a parser reading past the end. The fixture
 * directory is CW_FIXTURES (compile-time define, overridden by the
 * environment variable of the same name). Single-threaded.
 */
#include "collectors/redis_info.h"
#include "tests/lib/fixture.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fixture fixture_load(const char *name)
{
    return fixture_load_kind("redis", name);
}

/* parse_info_file() parses a fixture into a heap struct (it is large). */
static struct cw_redis_info *parse_info_file(const char *name, int *rc)
{
    struct fixture fx = fixture_load(name);
    struct cw_redis_info *in = malloc(sizeof(*in));

    ck_assert_ptr_nonnull(in);
    *rc = cw_redis_parse_info(fx.data, fx.len, in);
    free(fx.data);
    return in;
}

static void assert_field(const struct cw_redis_info *in, enum cw_redis_field f, uint64_t want)
{
    ck_assert_msg(cw_redis_info_has(in, f), "%s missing", cw_redis_field_name(f));
    ck_assert_msg(in->v[f] == want, "%s = %llu, want %llu", cw_redis_field_name(f),
                  (unsigned long long)in->v[f], (unsigned long long)want);
}

static void assert_no_field(const struct cw_redis_info *in, enum cw_redis_field f)
{
    ck_assert_msg(!cw_redis_info_has(in, f), "%s present (%llu)", cw_redis_field_name(f),
                  (unsigned long long)in->v[f]);
}

static void assert_db(const struct cw_redis_info *in, size_t i, unsigned index, uint64_t keys,
                      uint64_t expires)
{
    ck_assert_uint_gt(in->ndb, i);
    ck_assert_uint_eq(in->db[i].index, index);
    ck_assert_uint_eq(in->db[i].keys, keys);
    ck_assert_uint_eq(in->db[i].expires, expires);
}

/* ---- INFO ------------------------------------------------------------------ */

/* The reply to INFO server clients memory stats keyspace cluster of a real
 * 7.0.15 with 2 keys in db0 (one with a TTL), 1 in db3, one hit, one miss. */
START_TEST(test_redis_info_parses_real_7_0_sections)
{
    int rc;
    struct cw_redis_info *in = parse_info_file("info-7.0-sections.txt", &rc);

    ck_assert_int_eq(rc, CW_OK);
    assert_field(in, CW_REDIS_KEYSPACE_HITS, 1);
    assert_field(in, CW_REDIS_KEYSPACE_MISSES, 1);
    assert_field(in, CW_REDIS_CONNECTED_CLIENTS, 1);
    assert_field(in, CW_REDIS_MAXCLIENTS, 10000);
    assert_field(in, CW_REDIS_MAXMEMORY, 0);
    assert_field(in, CW_REDIS_REJECTED_CONNECTIONS, 0);
    assert_field(in, CW_REDIS_EVICTED_KEYS, 0);
    assert_field(in, CW_REDIS_EXPIRED_KEYS, 0);
    assert_field(in, CW_REDIS_CLUSTER_ENABLED, 0);
    ck_assert(cw_redis_info_has(in, CW_REDIS_USED_MEMORY));
    ck_assert_uint_gt(in->v[CW_REDIS_USED_MEMORY], 100000);
    ck_assert(cw_redis_info_has(in, CW_REDIS_UPTIME));
    ck_assert_str_eq(in->run_id, "edce923265c2d60a59d6534143a833cd408faf88");
    ck_assert_uint_eq(in->ndb, 2);
    assert_db(in, 0, 0, 2, 1);
    assert_db(in, 1, 3, 1, 0);
    ck_assert_uint_eq(in->dbs_dropped, 0);
    /* Not in INFO: from CLUSTER INFO only. */
    assert_no_field(in, CW_REDIS_CLUSTER_STATE_OK);
    assert_no_field(in, CW_REDIS_CLUSTER_SLOTS_ASSIGNED);
    free(in);
}
END_TEST

/* Plain INFO (all default sections, what servers before 7.0 get). */
START_TEST(test_redis_info_parses_real_7_0_default_info)
{
    int rc;
    struct cw_redis_info *in = parse_info_file("info-7.0-default.txt", &rc);

    ck_assert_int_eq(rc, CW_OK);
    assert_field(in, CW_REDIS_KEYSPACE_HITS, 1);
    assert_field(in, CW_REDIS_KEYSPACE_MISSES, 1);
    assert_field(in, CW_REDIS_MAXCLIENTS, 10000);
    ck_assert_uint_eq(in->ndb, 2);
    ck_assert_str_eq(in->run_id, "edce923265c2d60a59d6534143a833cd408faf88");
    free(in);
}
END_TEST

START_TEST(test_redis_info_detects_cluster_mode)
{
    int rc;
    struct cw_redis_info *in = parse_info_file("info-7.0-cluster.txt", &rc);

    ck_assert_int_eq(rc, CW_OK);
    assert_field(in, CW_REDIS_CLUSTER_ENABLED, 1);
    free(in);
}
END_TEST

/* assert_info_eq() compares two parses field by field (a memcmp of the
 * structs would also compare their padding, which struct assignment need
 * not copy: it failed under TSan at -O0). */
static void assert_info_eq(const struct cw_redis_info *a, const struct cw_redis_info *b)
{
    size_t i;

    ck_assert_uint_eq(a->present, b->present);
    for (i = 0; i < CW_REDIS_NFIELDS; i++)
        ck_assert_msg(a->v[i] == b->v[i], "%s: %llu != %llu",
                      cw_redis_field_name((enum cw_redis_field)i), (unsigned long long)a->v[i],
                      (unsigned long long)b->v[i]);
    ck_assert_str_eq(a->run_id, b->run_id);
    ck_assert_uint_eq(a->ndb, b->ndb);
    for (i = 0; i < a->ndb; i++) {
        ck_assert_uint_eq(a->db[i].index, b->db[i].index);
        ck_assert_uint_eq(a->db[i].keys, b->db[i].keys);
        ck_assert_uint_eq(a->db[i].expires, b->db[i].expires);
    }
    ck_assert_uint_eq(a->dbs_dropped, b->dbs_dropped);
}

START_TEST(test_redis_info_same_with_lf_only)
{
    int rc1, rc2;
    struct cw_redis_info *a = parse_info_file("info-7.0-sections.txt", &rc1);
    struct cw_redis_info *b = parse_info_file("info-lf.txt", &rc2);

    ck_assert_int_eq(rc1, CW_OK);
    ck_assert_int_eq(rc2, CW_OK);
    assert_info_eq(a, b);
    free(a);
    free(b);
}
END_TEST

/* A reply cut in the middle of "keyspace_misses:1..." must not yield a
 * shortened number: the unterminated last line is dropped. */
START_TEST(test_redis_info_drops_truncated_last_line)
{
    int rc;
    struct cw_redis_info *in = parse_info_file("info-truncated.txt", &rc);

    ck_assert_int_eq(rc, CW_OK);
    assert_field(in, CW_REDIS_KEYSPACE_HITS, 1);
    assert_no_field(in, CW_REDIS_KEYSPACE_MISSES);
    ck_assert_uint_eq(in->ndb, 0); /* the keyspace section came after */
    free(in);
}
END_TEST

START_TEST(test_redis_info_survives_garbage)
{
    int rc;
    struct cw_redis_info *in = parse_info_file("info-garbage.txt", &rc);

    ck_assert_int_eq(rc, CW_OK);
    assert_field(in, CW_REDIS_KEYSPACE_HITS, UINT64_MAX);
    assert_no_field(in, CW_REDIS_KEYSPACE_MISSES);      /* 2^64: overflow */
    assert_no_field(in, CW_REDIS_EVICTED_KEYS);         /* -1 */
    assert_no_field(in, CW_REDIS_EXPIRED_KEYS);         /* 12abc */
    assert_no_field(in, CW_REDIS_USED_MEMORY);          /* " 5" */
    assert_no_field(in, CW_REDIS_CONNECTED_CLIENTS);    /* empty */
    assert_no_field(in, CW_REDIS_REJECTED_CONNECTIONS); /* a later bad value voids it */
    ck_assert_str_eq(in->run_id, "");
    ck_assert_uint_eq(in->ndb, 2);
    assert_db(in, 0, 0, 5, 2); /* the first db0 line wins */
    assert_db(in, 1, 3, 7, 1);
    ck_assert_uint_eq(in->dbs_dropped, 1);
    free(in);
}
END_TEST

START_TEST(test_redis_info_ignores_fields_of_later_versions)
{
    int rc;
    struct cw_redis_info *in = parse_info_file("info-7.4-unknown-fields.txt", &rc);

    ck_assert_int_eq(rc, CW_OK);
    assert_field(in, CW_REDIS_KEYSPACE_HITS, 92);
    assert_field(in, CW_REDIS_KEYSPACE_MISSES, 8);
    assert_field(in, CW_REDIS_EVICTED_KEYS, 11);
    assert_field(in, CW_REDIS_EXPIRED_KEYS, 13);
    assert_field(in, CW_REDIS_MAXCLIENTS, 20);
    assert_field(in, CW_REDIS_MAXMEMORY, 2000000);
    assert_field(in, CW_REDIS_REJECTED_CONNECTIONS, 5);
    assert_field(in, CW_REDIS_CONNECTED_CLIENTS, 3);
    assert_field(in, CW_REDIS_UPTIME, 42);
    ck_assert_str_eq(in->run_id, "0123456789abcdef0123456789abcdef01234567");
    ck_assert_uint_eq(in->ndb, 2);
    assert_db(in, 0, 0, 100, 40); /* subexpiry= ignored */
    assert_db(in, 1, 15, 1, 0);
    free(in);
}
END_TEST

START_TEST(test_redis_info_rejects_text_without_fields)
{
    struct cw_redis_info *in = malloc(sizeof(*in));
    static const char *const bad[] = {
        "", "\r\n", "# Server\r\n\r\n", "no colon\n", ":starts with colon\n", "key:value"};

    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(cw_redis_parse_info(bad[i], strlen(bad[i]), in), CW_EPARSE);
    ck_assert_int_eq(cw_redis_parse_info(NULL, 0, in), CW_EPARSE);
    ck_assert_int_eq(cw_redis_parse_info("a:b\n", 4, in), CW_OK);
    ck_assert_uint_eq(in->present, 0);
    free(in);
}
END_TEST

/* Values cut off after 256 databases are counted, never overflow db[]. */
START_TEST(test_redis_info_bounds_databases)
{
    struct cw_redis_info *in = malloc(sizeof(*in));
    char *text = malloc(64 * 300);
    size_t len = 0;

    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(text);
    for (unsigned i = 0; i < 300; i++)
        len += (size_t)snprintf(text + len, 64, "db%u:keys=%u,expires=1,avg_ttl=0\r\n", i, i + 1);
    ck_assert_int_eq(cw_redis_parse_info(text, len, in), CW_OK);
    ck_assert_uint_eq(in->ndb, CW_REDIS_MAX_DBS);
    ck_assert_uint_eq(in->dbs_dropped, 300 - CW_REDIS_MAX_DBS);
    assert_db(in, 255, 255, 256, 1);
    free(text);
    free(in);
}
END_TEST

START_TEST(test_redis_info_parses_cluster_info)
{
    int rc;
    struct cw_redis_info *in = parse_info_file("cluster_info-7.0.txt", &rc);

    ck_assert_int_eq(rc, CW_OK);
    assert_field(in, CW_REDIS_CLUSTER_STATE_OK, 1);
    assert_field(in, CW_REDIS_CLUSTER_SLOTS_ASSIGNED, 16384);
    ck_assert_int_eq(cw_redis_parse_info("cluster_state:fail\r\n", 20, in), CW_OK);
    assert_field(in, CW_REDIS_CLUSTER_STATE_OK, 0);
    free(in);
}
END_TEST

START_TEST(test_redis_info_parses_u64_strictly)
{
    uint64_t v = 7;

    ck_assert(cw_redis_parse_u64("0", 1, &v) && v == 0);
    ck_assert(cw_redis_parse_u64("18446744073709551615", 20, &v) && v == UINT64_MAX);
    ck_assert(!cw_redis_parse_u64("18446744073709551616", 20, &v));
    ck_assert(!cw_redis_parse_u64("", 0, &v));
    ck_assert(!cw_redis_parse_u64("+1", 2, &v));
    ck_assert(!cw_redis_parse_u64("1 ", 2, &v));
    ck_assert(!cw_redis_parse_u64("000000000000000000001", 21, &v));
    ck_assert(cw_redis_parse_u64("12x", 2, &v) && v == 12); /* exactly len bytes */
}
END_TEST

/* ---- Hit ratio ------------------------------------------------------------- */

START_TEST(test_redis_hit_ratio_over_the_interval)
{
    double r = -1;

    ck_assert(cw_redis_hit_ratio(100, 50, 192, 58, false, &r));
    ck_assert_double_eq_tol(r, 0.92, 1e-12);
    ck_assert(cw_redis_hit_ratio(192, 58, 237, 113, false, &r));
    ck_assert_double_eq_tol(r, 0.45, 1e-12);
    ck_assert(cw_redis_hit_ratio(5, 5, 5, 9, false, &r));
    ck_assert_double_eq(r, 0.0);
}
END_TEST

START_TEST(test_redis_hit_ratio_absent_without_lookups)
{
    double r = -1;

    ck_assert(!cw_redis_hit_ratio(10, 10, 10, 10, false, &r));
    ck_assert(!cw_redis_hit_ratio(10, 10, 0, 0, true, &r));
    ck_assert(!cw_redis_hit_ratio(0, 0, 0, 0, false, &r));
    ck_assert_double_eq(r, -1); /* untouched: never NaN */
}
END_TEST

/* After a restart (or CONFIG RESETSTAT) the counters start from 0: the
 * lookups since then are the current values, not a negative difference. */
START_TEST(test_redis_hit_ratio_across_reset)
{
    double r = -1;

    ck_assert(cw_redis_hit_ratio(1000, 100, 30, 70, true, &r));
    ck_assert_double_eq_tol(r, 0.3, 1e-12);
    ck_assert(cw_redis_hit_ratio(1000, 100, 30, 70, false, &r)); /* counters went down */
    ck_assert_double_eq_tol(r, 0.3, 1e-12);
    /* Restart detected by run_id although the counters grew past the old ones. */
    ck_assert(cw_redis_hit_ratio(10, 10, 45, 55, true, &r));
    ck_assert_double_eq_tol(r, 0.45, 1e-12);
    ck_assert(cw_redis_hit_ratio(0, 0, UINT64_MAX, 0, false, &r));
    ck_assert_double_eq(r, 1.0);
}
END_TEST

/* ---- CLUSTER NODES --------------------------------------------------------- */

static const struct cw_redis_node *find_node(const struct cw_redis_node *ns, size_t n,
                                             const char *id_prefix)
{
    for (size_t i = 0; i < n; i++) {
        if (strncmp(ns[i].id, id_prefix, strlen(id_prefix)) == 0)
            return &ns[i];
    }
    ck_abort_msg("node %s not found", id_prefix);
    return NULL;
}

START_TEST(test_redis_nodes_parses_real_7_0)
{
    struct fixture fx = fixture_load("cluster_nodes-7.0.txt");
    struct cw_redis_node ns[8];
    size_t n = 0, dropped = 9;
    const struct cw_redis_node *me;

    ck_assert_int_eq(cw_redis_parse_nodes(fx.data, fx.len, ns, 8, &n, &dropped), CW_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(dropped, 0);
    me = find_node(ns, n, "489f5533");
    ck_assert(me->myself && me->master && !me->failing);
    ck_assert_str_eq(me->host, "127.0.0.1");
    ck_assert_uint_eq(me->port, 27001);
    ck_assert_uint_eq(me->slots, 5461);
    ck_assert_uint_eq(find_node(ns, n, "16df359b")->slots, 5462);
    ck_assert_uint_eq(find_node(ns, n, "677606cc")->slots, 5461);
    ck_assert_uint_eq(find_node(ns, n, "677606cc")->port, 27003);
    ck_assert(!find_node(ns, n, "677606cc")->myself);
    /* Bounded output: the rest are counted. */
    ck_assert_int_eq(cw_redis_parse_nodes(fx.data, fx.len, ns, 1, &n, &dropped), CW_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(dropped, 2);
    free(fx.data);
}
END_TEST

START_TEST(test_redis_nodes_parses_replicas_failures_and_migrations)
{
    struct fixture fx = fixture_load("cluster_nodes-mixed.txt");
    struct cw_redis_node ns[16];
    size_t n = 0, dropped = 0;
    const struct cw_redis_node *x;

    ck_assert_int_eq(cw_redis_parse_nodes(fx.data, fx.len, ns, 16, &n, &dropped), CW_OK);
    ck_assert_uint_eq(n, 6); /* the non-hex id, the bad port and the short line are skipped */
    x = find_node(ns, n, "07c37dfe");
    ck_assert(!x->master && !x->myself && !x->failing);
    ck_assert_str_eq(x->host, "127.0.0.1"); /* ",hostname" after the bus port */
    ck_assert_uint_eq(x->port, 30004);
    ck_assert_uint_eq(x->slots, 0);
    x = find_node(ns, n, "292f8b36");
    ck_assert_uint_eq(x->slots, 5461); /* the migrating [..->-..] entry is not counted */
    x = find_node(ns, n, "6ec23923");
    ck_assert(x->master && x->failing);
    ck_assert_str_eq(x->host, "::1");
    ck_assert_uint_eq(x->port, 30005);
    x = find_node(ns, n, "824fe116");
    ck_assert(x->failing);
    ck_assert_str_eq(x->host, "");
    ck_assert_uint_eq(x->slots, 1); /* "7"; "9-8", "16384", "abc" are not slots */
    free(fx.data);
}
END_TEST

START_TEST(test_redis_nodes_drops_truncated_line)
{
    struct fixture fx = fixture_load("cluster_nodes-truncated.txt");
    struct cw_redis_node ns[4];
    size_t n = 9, dropped = 9;

    ck_assert_int_eq(cw_redis_parse_nodes(fx.data, fx.len, ns, 4, &n, &dropped), CW_EPARSE);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(dropped, 0);
    ck_assert_int_eq(cw_redis_parse_nodes(NULL, 0, ns, 4, &n, &dropped), CW_EPARSE);
    free(fx.data);
}
END_TEST

static Suite *redis_info_suite(void)
{
    Suite *s = suite_create("redis_info");
    TCase *tc = tcase_create("info");

    tcase_add_test(tc, test_redis_info_parses_real_7_0_sections);
    tcase_add_test(tc, test_redis_info_parses_real_7_0_default_info);
    tcase_add_test(tc, test_redis_info_detects_cluster_mode);
    tcase_add_test(tc, test_redis_info_same_with_lf_only);
    tcase_add_test(tc, test_redis_info_drops_truncated_last_line);
    tcase_add_test(tc, test_redis_info_survives_garbage);
    tcase_add_test(tc, test_redis_info_ignores_fields_of_later_versions);
    tcase_add_test(tc, test_redis_info_rejects_text_without_fields);
    tcase_add_test(tc, test_redis_info_bounds_databases);
    tcase_add_test(tc, test_redis_info_parses_cluster_info);
    tcase_add_test(tc, test_redis_info_parses_u64_strictly);
    suite_add_tcase(s, tc);

    tc = tcase_create("hit_ratio");
    tcase_add_test(tc, test_redis_hit_ratio_over_the_interval);
    tcase_add_test(tc, test_redis_hit_ratio_absent_without_lookups);
    tcase_add_test(tc, test_redis_hit_ratio_across_reset);
    suite_add_tcase(s, tc);

    tc = tcase_create("cluster_nodes");
    tcase_add_test(tc, test_redis_nodes_parses_real_7_0);
    tcase_add_test(tc, test_redis_nodes_parses_replicas_failures_and_migrations);
    tcase_add_test(tc, test_redis_nodes_drops_truncated_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(redis_info_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
