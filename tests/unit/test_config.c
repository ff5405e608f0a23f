/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_config.c - the configuration loader: YAML to nodes, option tables,
 * settings, and one test per error class asserting the exact
 * "file:line:col: path: message" text users see.
 *
 * A small "probe" kind is declared here, beside the real host kind, so that
 * the option types a future collector uses (address, URL, secret file,
 * enum) are exercised through the same loader.
 */
#include "exporter/check.h"
#include "exporter/core/buf.h"
#include "exporter/core/clock.h"
#include "exporter/core/config.h"
#include "exporter/core/strindex.h"
#include "exporter/kinds.h"
#include "exporter/live.h"
#include "exporter/settings.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct probe_state {
    struct cw_hostport target;
    char *url;
    struct cw_secret password;
    int mode;
};

/* under_valgrind() tells the limit tests to run at a tenth of their size
 * under memcheck (CW_UNDER_VALGRIND, set by the valgrind test setup). */
static bool under_valgrind(void)
{
    return getenv("CW_UNDER_VALGRIND") != NULL;
}

static const char *const probe_modes[] = {"fast", "slow", NULL};

static const struct cw_opt probe_opts[] = {
    CW_OPT("target", CW_OPT_T_HOSTPORT, struct probe_state, target, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("url", CW_OPT_T_URL, struct probe_state, url, NULL, 0, 0, 0),
    CW_OPT("password_file", CW_OPT_T_SECRET_FILE, struct probe_state, password, NULL, 0, 0, 0),
    CW_OPT_ENUM("mode", struct probe_state, mode, "fast", probe_modes, 0),
    CW_OPT_END,
};

static int probe_configure(void *state, const struct cw_node *node,
                           const struct cw_check_info *info, struct cw_diag *diag)
{
    (void)info;
    return cw_opts_apply(probe_opts, state, node, cw_check_common_keys, diag);
}

static const char *probe_target(const void *state)
{
    const struct probe_state *ps = state;

    return ps->target.text;
}

static void probe_run(void *state, struct cw_run *run)
{
    (void)state;
    (void)run;
}

static void probe_release(void *state)
{
    cw_opts_release(probe_opts, state);
}

static const struct cw_check_kind kind_probe = {
    .name = "probe",
    .state_size = sizeof(struct probe_state),
    .configure = probe_configure,
    .target = probe_target,
    .run = probe_run,
    .release = probe_release,
    .probe_option = "target",
};

extern const struct cw_check_kind cw_kind_host, cw_kind_icmp, cw_kind_tcp;
const struct cw_check_kind *const cw_check_kinds[] = {&cw_kind_host, &cw_kind_icmp, &kind_probe,
                                                      &cw_kind_tcp, NULL};

/* load() loads YAML text named "t.yml" and returns the diagnostics joined
 * by newlines ("" when it loaded). */
static char *load(const char *yaml, struct cw_settings **out)
{
    struct cw_diag d;
    struct cw_settings *s;
    struct cw_buf b;
    size_t i;

    cw_diag_init(&d);
    s = cw_settings_load_text("t.yml", yaml, &d);
    cw_buf_init(&b, 1 << 20);
    for (i = 0; i < d.n; i++)
        ck_assert_int_eq(cw_buf_addf(&b, "%s%s", i ? "\n" : "", d.entries[i].text), CW_OK);
    cw_diag_reset(&d);
    if (out != NULL)
        *out = s;
    else
        cw_settings_unref(s);
    if (s == NULL)
        ck_assert_uint_gt(b.len, 0);
    {
        char *r = strdup(cw_buf_str(&b));

        cw_buf_reset(&b);
        return r;
    }
}

#define ASSERT_LOAD_ERROR(yaml, expected)                                                          \
    do {                                                                                           \
        char *got_ = load(yaml, NULL);                                                             \
        ck_assert_str_eq(got_, expected);                                                          \
        free(got_);                                                                                \
    } while (0)

START_TEST(test_config_builtin_default_loads)
{
    struct cw_diag d;
    struct cw_settings *s;

    cw_diag_init(&d);
    s = cw_settings_load(NULL, &d);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(d.n, 0);
    /* The host, and ICMP and TCP to 127.0.0.1 (connwatch's own default port). */
    ck_assert_uint_eq(s->ninst, 3);
    ck_assert_str_eq(s->inst[0]->kind->name, "host");
    ck_assert_str_eq(s->inst[1]->kind->name, "icmp");
    ck_assert_str_eq(s->inst[1]->target, "127.0.0.1");
    ck_assert_str_eq(s->inst[2]->kind->name, "tcp");
    ck_assert_str_eq(s->inst[2]->target, "127.0.0.1:19367");
    ck_assert_int_eq(s->interval, CW_S(15));
    cw_settings_unref(s);
    cw_diag_reset(&d);
}
END_TEST

START_TEST(test_config_rejects_yaml_syntax_error)
{
    ASSERT_LOAD_ERROR("global:\n  interval: [1s\n",
                      "t.yml:3:1: YAML syntax error: did not find expected ',' or ']' while "
                      "parsing a flow sequence");
}
END_TEST

START_TEST(test_config_rejects_unknown_top_level_key)
{
    ASSERT_LOAD_ERROR("global: {}\nservice: []\n",
                      "t.yml:2:1: service: unknown field \"service\" (expected global, host, "
                      "probe, services)");
}
END_TEST

START_TEST(test_config_rejects_unknown_key)
{
    ASSERT_LOAD_ERROR("global:\n  intervall: 10s\n",
                      "t.yml:2:3: global.intervall: unknown field \"intervall\"");
}
END_TEST

START_TEST(test_config_rejects_wrong_type)
{
    ASSERT_LOAD_ERROR("global:\n  interval: [10s]\n",
                      "t.yml:2:13: global.interval: must be a duration, not a list");
}
END_TEST

START_TEST(test_config_rejects_bad_duration)
{
    ASSERT_LOAD_ERROR("global:\n  interval: 15x\n",
                      "t.yml:2:13: global.interval: \"15x\" is not a duration (use e.g. 15s, "
                      "1m30s, 250ms)");
}
END_TEST

START_TEST(test_config_rejects_duration_out_of_range)
{
    ASSERT_LOAD_ERROR("global:\n  interval: 10ms\n",
                      "t.yml:2:13: global.interval: 10ms is below the minimum 100ms");
}
END_TEST

START_TEST(test_config_rejects_timeout_above_interval)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n"
                      "      - probe: {target: \"h:1\", interval: 2s, timeout: 3s}\n",
                      "t.yml:4:55: services[0].checks[0].probe.timeout: timeout 3s must not "
                      "exceed interval 2s");
}
END_TEST

START_TEST(test_config_inherited_timeout_shrinks_to_interval)
{
    struct cw_settings *s;
    char *err = load("services:\n  - name: a\n    checks:\n"
                     "      - probe: {target: \"h:1\", interval: 1s}\n",
                     &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_int_eq(s->inst[1]->interval, CW_S(1));
    ck_assert_int_eq(s->inst[1]->timeout, CW_S(1));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_config_rejects_duplicate_key)
{
    ASSERT_LOAD_ERROR("global:\n  interval: 10s\n  interval: 20s\n",
                      "t.yml:3:3: global.interval: duplicate key \"interval\"");
}
END_TEST

START_TEST(test_config_rejects_duplicate_service_name)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks: []\n  - name: a\n    checks: []\n",
                      "t.yml:4:11: services[1].name: duplicate service name \"a\" (line 2)");
}
END_TEST

START_TEST(test_config_rejects_duplicate_check)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n"
                      "      - probe: {target: \"h:1\"}\n      - probe: {target: \"h:1\"}\n",
                      "t.yml:5:9: services[0].checks[1]: duplicate check: this service already "
                      "has a probe check with target \"h:1\" (line 4); give one a distinct name");
}
END_TEST

START_TEST(test_config_accepts_same_target_with_distinct_names)
{
    char *err = load("services:\n  - name: a\n    checks:\n"
                     "      - probe: {target: \"h:1\"}\n"
                     "      - probe: {target: \"h:1\", name: second}\n",
                     NULL);

    ck_assert_str_eq(err, "");
    free(err);
}
END_TEST

START_TEST(test_config_rejects_unknown_check_kind)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n      - pnig: {target: x}\n",
                      "t.yml:4:9: services[0].checks[0].pnig: unknown check kind \"pnig\" "
                      "(known: icmp, probe, tcp)");
}
END_TEST

START_TEST(test_config_rejects_section_kind_under_service)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n      - host: {}\n",
                      "t.yml:4:9: services[0].checks[0].host: host is configured in the "
                      "top-level \"host:\" section");
}
END_TEST

START_TEST(test_config_rejects_check_with_two_kinds)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n"
                      "      - {probe: {target: \"h:1\"}, other: {}}\n",
                      "t.yml:4:9: services[0].checks[0]: a check is a mapping with one key "
                      "naming its kind, e.g. \"- tcp: {target: \\\"host:443\\\"}\"");
}
END_TEST

START_TEST(test_config_rejects_missing_required_field)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n      - probe: {mode: slow}\n",
                      "t.yml:4:16: services[0].checks[0].probe: missing required field "
                      "\"target\"");
}
END_TEST

START_TEST(test_config_rejects_bad_address)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n      - probe: {target: \"h:99999\"}\n",
                      "t.yml:4:25: services[0].checks[0].probe.target: \"h:99999\": port must be "
                      "a number from 1 to 65535");
}
END_TEST

START_TEST(test_config_rejects_bad_ip_address)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n"
                      "      - probe: {target: \"300.1.2.3:80\"}\n",
                      "t.yml:4:25: services[0].checks[0].probe.target: \"300.1.2.3:80\": not a "
                      "valid IP address or host name");
}
END_TEST

START_TEST(test_config_accepts_bracketed_ipv6_address)
{
    struct cw_settings *s;
    char *err =
        load("services:\n  - name: a\n    checks:\n      - probe: {target: \"[::1]:443\"}\n", &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_str_eq(((struct probe_state *)s->inst[1]->state)->target.host, "::1");
    ck_assert_uint_eq(((struct probe_state *)s->inst[1]->state)->target.port, 443);
    ck_assert_str_eq(s->inst[1]->target, "[::1]:443");
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_config_rejects_url_without_scheme)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n"
                      "      - probe: {target: \"h:1\", url: invoice.example.com/health}\n",
                      "t.yml:4:37: services[0].checks[0].probe.url: missing scheme (use http:// "
                      "or https://)");
}
END_TEST

START_TEST(test_config_rejects_bad_enum)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n"
                      "      - probe: {target: \"h:1\", mode: medium}\n",
                      "t.yml:4:38: services[0].checks[0].probe.mode: \"medium\" is not one of: "
                      "fast, slow");
}
END_TEST

START_TEST(test_config_rejects_unreadable_secret_file)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    checks:\n"
                      "      - probe: {target: \"h:1\", password_file: /nonexistent/pw}\n",
                      "t.yml:4:47: services[0].checks[0].probe.password_file: cannot read "
                      "/nonexistent/pw: No such file or directory");
}
END_TEST

START_TEST(test_config_reads_secret_file_relative_to_config)
{
    char dir[] = "/tmp/cwtest.XXXXXX";
    char path[256], yml[256];
    FILE *f;
    struct cw_diag d;
    struct cw_settings *s;
    struct probe_state *ps;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/pw", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("s3cret\n", f);
    fclose(f);
    snprintf(yml, sizeof(yml), "%s/c.yml", dir);
    f = fopen(yml, "w");
    ck_assert_ptr_nonnull(f);
    fputs("services:\n  - name: a\n    checks:\n"
          "      - probe: {target: \"h:1\", password_file: pw}\n",
          f);
    fclose(f);
    cw_diag_init(&d);
    s = cw_settings_load(yml, &d);
    ck_assert_ptr_nonnull(s);
    ps = s->inst[1]->state;
    ck_assert_str_eq(ps->password.value, "s3cret");
    ck_assert_uint_eq(ps->password.len, 6);
    cw_settings_unref(s);
    cw_diag_reset(&d);
    unlink(path);
    unlink(yml);
    rmdir(dir);
}
END_TEST

START_TEST(test_config_rejects_reserved_label)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    labels: {target: x}\n    checks: []\n",
                      "t.yml:3:14: services[0].labels.target: label \"target\" is set by "
                      "connwatch itself");
}
END_TEST

/* The labels a service may not set are derived from the kinds' families:
 * here host (mode, state) and tcp, whose TLS families (cw_tls_descs) add
 * depth, subject, issuer, serial, not_after, version and cipher; plus the
 * core's own. A label no family uses is free. */
START_TEST(test_config_reserves_the_kinds_label_names)
{
    static const char *const taken[] = {"check",  "service",   "target",  "reason",  "le",
                                        "mode",   "state",     "depth",   "subject", "issuer",
                                        "serial", "not_after", "version", "cipher",  NULL};
    size_t i;

    for (i = 0; taken[i] != NULL; i++) {
        char yaml[200], want[200];
        char *got;

        snprintf(yaml, sizeof(yaml),
                 "services:\n  - name: a\n    labels: {%s: x}\n    checks: []\n", taken[i]);
        snprintf(want, sizeof(want), "label \"%s\" is set by connwatch itself", taken[i]);
        got = load(yaml, NULL);
        ck_assert_msg(strstr(got, want) != NULL, "%s: %s", taken[i], got);
        free(got);
    }
    {
        /* "db" is mysql's and redis's, kinds this test does not link. */
        char *got = load("services:\n  - name: a\n    labels: {db: x, env: prod}\n"
                         "    checks: []\n",
                         NULL);

        ck_assert_str_eq(got, "");
        free(got);
    }
}
END_TEST

/* The built-in default probes the listener it is given, and only an address. */
START_TEST(test_config_builtin_default_probes_its_listener)
{
    struct cw_diag d;
    struct cw_settings *s;
    char t[64];

    cw_diag_init(&d);
    s = cw_settings_load_builtin("127.0.0.1:9999", &d);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->inst[2]->kind->name, "tcp");
    ck_assert_str_eq(s->inst[2]->target, "127.0.0.1:9999");
    cw_settings_unref(s);
    s = cw_settings_load_builtin("x\", interval: 1ms, y: \"", &d);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->inst[2]->target, CW_DEFAULT_SELF_TARGET);
    cw_settings_unref(s);
    ck_assert_uint_eq(d.n, 0);
    cw_diag_reset(&d);

    ck_assert(cw_live_self_target(":9999", t, sizeof(t)));
    ck_assert_str_eq(t, "127.0.0.1:9999");
    ck_assert(cw_live_self_target("0.0.0.0:19367", t, sizeof(t)));
    ck_assert_str_eq(t, "127.0.0.1:19367");
    ck_assert(cw_live_self_target("[::]:41234", t, sizeof(t)));
    ck_assert_str_eq(t, "[::1]:41234");
    ck_assert(cw_live_self_target("[::1]:8080", t, sizeof(t)));
    ck_assert_str_eq(t, "[::1]:8080");
    ck_assert(cw_live_self_target("localhost:8080", t, sizeof(t)));
    ck_assert_str_eq(t, "localhost:8080");
    ck_assert(!cw_live_self_target("localhost", t, sizeof(t)));
    ck_assert(!cw_live_self_target("127.0.0.1:", t, sizeof(t)));
    ck_assert(!cw_live_self_target("127.0.0.1:9999", t, 8));
}
END_TEST

START_TEST(test_config_rejects_invalid_label_name)
{
    ASSERT_LOAD_ERROR("services:\n  - name: a\n    labels: {\"1env\": x}\n    checks: []\n",
                      "t.yml:3:14: services[0].labels.1env: \"1env\" is not a valid label name");
}
END_TEST

START_TEST(test_config_rejects_missing_service_name)
{
    ASSERT_LOAD_ERROR("services:\n  - checks: []\n",
                      "t.yml:2:5: services[0]: missing required field \"name\"");
}
END_TEST

START_TEST(test_config_rejects_non_bool)
{
    ASSERT_LOAD_ERROR("host:\n  enabled: maybe\n",
                      "t.yml:2:12: host.enabled: \"maybe\" is not true or false");
}
END_TEST

START_TEST(test_config_host_can_be_disabled)
{
    struct cw_settings *s;
    char *err = load("host:\n  enabled: false\n", &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_uint_eq(s->ninst, 0);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_config_collects_every_error)
{
    ASSERT_LOAD_ERROR("global:\n  interval: 1x\n  timeout: 2y2\nservices:\n  - name: a\n"
                      "    checks:\n      - probe: {}\n      - nope: {}\n",
                      "t.yml:2:13: global.interval: \"1x\" is not a duration (use e.g. 15s, "
                      "1m30s, 250ms)\n"
                      "t.yml:3:12: global.timeout: \"2y2\" is not a duration (use e.g. 15s, 1m30s, "
                      "250ms)\n"
                      "t.yml:7:16: services[0].checks[0].probe: missing required field "
                      "\"target\"\n"
                      "t.yml:8:9: services[0].checks[1].nope: unknown check kind \"nope\" (known: "
                      "icmp, probe, tcp)");
}
END_TEST

START_TEST(test_config_rejects_alias_bomb)
{
    char *err = load("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                     NULL);

    ck_assert_ptr_nonnull(strstr(err, "document too large"));
    free(err);
}
END_TEST

START_TEST(test_config_expands_aliases_with_their_own_paths)
{
    struct cw_settings *s;
    char *err = load("services:\n  - name: a\n    checks:\n"
                     "      - probe: &p {target: \"h:1\", mode: slow}\n"
                     "      - probe: *p\n",
                     &s);

    /* The copy is a duplicate check, reported at the alias. */
    ck_assert_str_eq(err, "t.yml:5:9: services[0].checks[1]: duplicate check: this service "
                          "already has a probe check with target \"h:1\" (line 4); give one a "
                          "distinct name");
    free(err);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_config_reports_missing_file)
{
    struct cw_diag d;

    cw_diag_init(&d);
    ck_assert_ptr_null(cw_settings_load("/nonexistent/connwatch.yml", &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.entries[0].text,
                     "/nonexistent/connwatch.yml: cannot read: No such file or directory");
    cw_diag_reset(&d);
}
END_TEST

START_TEST(test_config_empty_file_is_the_defaults)
{
    struct cw_settings *s;
    char *err = load("", &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_uint_eq(s->ninst, 1); /* host is on by default */
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_config_labels_are_escaped_in_prefix)
{
    struct cw_settings *s;
    char *err = load("services:\n  - name: \"in\\\"v\"\n    labels: {env: \"a\\\\b\"}\n"
                     "    checks:\n      - probe: {target: \"h:1\"}\n",
                     &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_str_eq(s->inst[1]->prefix, "service=\"in\\\"v\",target=\"h:1\",env=\"a\\\\b\"");
    ck_assert_str_eq(s->inst[1]->common_prefix,
                     "check=\"probe\",service=\"in\\\"v\",target=\"h:1\",env=\"a\\\\b\"");
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_config_adopt_keeps_unchanged_instances)
{
    struct cw_settings *a, *b;
    char *e1 = load("services:\n  - name: a\n    checks:\n      - probe: {target: \"h:1\"}\n"
                    "      - probe: {target: \"h:2\"}\n",
                    &a);
    char *e2 = load("services:\n  - name: a\n    checks:\n      - probe: {target: \"h:1\"}\n"
                    "      - probe: {target: \"h:2\", mode: slow}\n",
                    &b);

    ck_assert_str_eq(e1, "");
    ck_assert_str_eq(e2, "");
    free(e1);
    free(e2);
    /* host and h:1 are unchanged; h:2 changed its options. */
    ck_assert_uint_eq(cw_settings_adopt(b, a), 2);
    ck_assert_ptr_eq(b->inst[1], a->inst[1]);
    ck_assert_ptr_ne(b->inst[2], a->inst[2]);
    cw_settings_unref(a);
    cw_settings_unref(b);
}
END_TEST

START_TEST(test_duration_parses_prometheus_forms)
{
    static const struct {
        const char *text;
        cw_duration ns;
    } ok[] = {{"0", 0},
              {"1s", CW_S(1)},
              {"250ms", CW_MS(250)},
              {"1m30s", CW_S(90)},
              {"1.5s", CW_MS(1500)},
              {"2h", CW_S(7200)},
              {"100us", CW_US(100)},
              {"1d", CW_S(86400)},
              {"10ns", 10}};
    static const char *const bad[] = {"", "s", "1", "1x", "-1s", "1s2", "1 s", "abc", "1e400s"};
    size_t i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cw_duration d = -1;

        ck_assert_msg(cw_duration_parse(ok[i].text, &d) == CW_OK, "%s", ok[i].text);
        ck_assert_int_eq(d, ok[i].ns);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cw_duration d;

        ck_assert_msg(cw_duration_parse(bad[i], &d) == CW_EPARSE, "%s", bad[i]);
    }
}
END_TEST

START_TEST(test_duration_formats_shortest)
{
    char b[32];

    ck_assert_str_eq(cw_duration_format(CW_S(90), b, sizeof(b)), "1m30s");
    ck_assert_str_eq(cw_duration_format(CW_MS(250), b, sizeof(b)), "250ms");
    ck_assert_str_eq(cw_duration_format(0, b, sizeof(b)), "0s");
    ck_assert_str_eq(cw_duration_format(CW_S(3600) + 1, b, sizeof(b)), "1h1ns");
}
END_TEST

START_TEST(test_hostport_parses_forms)
{
    struct cw_hostport hp;
    const char *why = NULL;

    ck_assert_int_eq(cw_hostport_parse("db.internal:3306", 0, &hp, &why), CW_OK);
    ck_assert_str_eq(hp.host, "db.internal");
    ck_assert_uint_eq(hp.port, 3306);
    cw_hostport_reset(&hp);
    ck_assert_int_eq(cw_hostport_parse("10.0.0.5", 6379, &hp, &why), CW_OK);
    ck_assert_uint_eq(hp.port, 6379);
    cw_hostport_reset(&hp);
    ck_assert_int_eq(cw_hostport_parse("fe80::1", 443, &hp, &why), CW_OK);
    ck_assert_str_eq(hp.host, "fe80::1");
    cw_hostport_reset(&hp);
    ck_assert_int_eq(cw_hostport_parse("host", 0, &hp, &why), CW_EPARSE);
    ck_assert_str_eq(why, "missing port (write host:port)");
    ck_assert_int_eq(cw_hostport_parse("[::1", 0, &hp, &why), CW_EPARSE);
    ck_assert_int_eq(cw_hostport_parse(":80", 0, &hp, &why), CW_EPARSE);
    ck_assert_str_eq(why, "missing host");
    ck_assert_int_eq(cw_hostport_parse("bad_host!:80", 0, &hp, &why), CW_EPARSE);
}
END_TEST

START_TEST(test_config_probe_allows_only_listed_targets)
{
    struct cw_settings *s;
    char *err = load("probe:\n  allow:\n    - check: probe\n      timeout: 2s\n"
                     "      targets: [\"127.0.0.1:*\", \"10.0.0.0/8\", \"*.example.com:443\",\n"
                     "                \"[fd00::]/8\", \"db.internal:33?6\"]\n",
                     &s);

    ck_assert_str_eq(err, "");
    free(err);
    ck_assert_ptr_nonnull(cw_settings_probe_rule(s, &kind_probe, "127.0.0.1:8080"));
    ck_assert_int_eq(cw_settings_probe_rule(s, &kind_probe, "127.0.0.1:8080")->timeout, CW_S(2));
    ck_assert_ptr_nonnull(cw_settings_probe_rule(s, &kind_probe, "10.200.3.4:22"));
    ck_assert_ptr_null(cw_settings_probe_rule(s, &kind_probe, "11.0.0.1:22"));
    ck_assert_ptr_nonnull(cw_settings_probe_rule(s, &kind_probe, "API.Example.com:443"));
    ck_assert_ptr_null(cw_settings_probe_rule(s, &kind_probe, "api.example.com:80"));
    ck_assert_ptr_null(cw_settings_probe_rule(s, &kind_probe, "example.com.evil.net:443"));
    ck_assert_ptr_nonnull(cw_settings_probe_rule(s, &kind_probe, "[fd00::5]:443"));
    ck_assert_ptr_null(cw_settings_probe_rule(s, &kind_probe, "[fe80::1]:443"));
    ck_assert_ptr_nonnull(cw_settings_probe_rule(s, &kind_probe, "db.internal:3306"));
    /* URLs: host and port come from the authority; user information is refused. */
    ck_assert_ptr_nonnull(cw_settings_probe_rule(s, &kind_probe, "https://api.example.com/health"));
    ck_assert_ptr_null(cw_settings_probe_rule(s, &kind_probe, "http://api.example.com/health"));
    ck_assert_ptr_null(cw_settings_probe_rule(s, &kind_probe, "https://127.0.0.1:1@evil.net/"));
    /* Another kind has no rule at all. */
    ck_assert_ptr_null(cw_settings_probe_rule(s, &cw_kind_host, "127.0.0.1:80"));
    cw_settings_unref(s);
}
END_TEST

/* Address-shaped globs ("127.0.0.*", "10.*", "[fd00::*]") match IP literals
 * only: a name such as 127.0.0.2.nip.io resolves wherever its owner likes. */
START_TEST(test_config_probe_address_globs_match_ip_literals_only)
{
    static const struct {
        const char *target;
        bool allowed;
    } rows[] = {
        {"127.0.0.5:8080", true},
        {"127.0.0.255:1", true},
        {"127.0.0.2.nip.io:8080", false},
        {"127.0.0.2.example:8080", false},
        {"127.0.0.2.:8080", false},
        {"http://127.0.0.2.nip.io:8080/", false},
        {"http://127.0.0.7:8080/", true},
        {"10.1.2.3:80", true},
        {"10.1.2.3:81", false},
        {"10.1.2.3.nip.io:80", false},
        {"10.evil.net:80", false},
        {"10.1:80", false},      /* not a dotted quad: a name to the resolver */
        {"010.1.2.3:80", false}, /* octal to inet_aton, a name here */
        {"[fd00::5]:443", true},
        {"[fd00::5]:80", false},
        {"[fe80::5]:443", false},
        {"api.example.com:443", true}, /* name globs still match names */
        {"API.Example.COM:9", true},
        {"example.com.evil.net:443", false},
        {"db7.internal:3306", true},
        {"db77.internal:3306", false},
    };
    struct cw_settings *s;
    size_t i;
    char *err = load("probe:\n  allow:\n    - check: probe\n"
                     "      targets: [\"127.0.0.*\", \"10.*:80\", \"[fd00::*]:443\",\n"
                     "                \"*.example.com\", \"db?.internal:3306\"]\n",
                     &s);

    ck_assert_str_eq(err, "");
    free(err);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        bool got = cw_settings_probe_rule(s, &kind_probe, rows[i].target) != NULL;

        ck_assert_msg(got == rows[i].allowed, "%s: %s, expected %s", rows[i].target,
                      got ? "allowed" : "refused", rows[i].allowed ? "allowed" : "refused");
    }
    cw_settings_unref(s);
}
END_TEST

/* The hop check a probed run applies to redirects matches like the target
 * check; "*" still admits names and addresses alike. */
START_TEST(test_config_probe_rule_allows_hops)
{
    struct cw_settings *s;
    const struct cw_probe_rule *r;
    char *err = load("probe:\n  allow:\n    - check: probe\n"
                     "      targets: [\"127.0.0.1:*\", \"127.0.0.*:80\"]\n"
                     "    - check: tcp\n      targets: [\"*\"]\n",
                     &s);

    ck_assert_str_eq(err, "");
    free(err);
    r = cw_settings_probe_rule(s, &kind_probe, "127.0.0.1:8080");
    ck_assert_ptr_nonnull(r);
    ck_assert(cw_probe_rule_allows(r, "127.0.0.1", "9"));
    ck_assert(cw_probe_rule_allows(r, "127.0.0.2", "80"));
    ck_assert(!cw_probe_rule_allows(r, "127.0.0.2", "81"));
    ck_assert(!cw_probe_rule_allows(r, "127.0.0.2.nip.io", "80"));
    ck_assert(!cw_probe_rule_allows(r, "localhost", "80"));
    ck_assert(!cw_probe_rule_allows(r, "127.0.0.2", "")); /* a port pattern needs a port */
    ck_assert(!cw_probe_rule_allows(NULL, "127.0.0.1", "80"));
    r = cw_settings_probe_rule(s, &cw_kind_tcp, "anything.example:1");
    ck_assert_ptr_nonnull(r);
    ck_assert(cw_probe_rule_allows(r, "127.0.0.2.nip.io", "1"));
    ck_assert(cw_probe_rule_allows(r, "10.0.0.1", "1"));
    ck_assert(cw_probe_rule_allows(r, "::1", "1"));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_config_probe_rejects_kind_that_cannot_be_probed)
{
    ASSERT_LOAD_ERROR("probe:\n  allow:\n    - {check: host, targets: [\"*\"]}\n",
                      "t.yml:3:15: probe.allow[0].check: \"host\" is not a check kind /probe can "
                      "run");
}
END_TEST

START_TEST(test_config_probe_rejects_bad_cidr)
{
    ASSERT_LOAD_ERROR("probe:\n  allow:\n    - {check: probe, targets: [\"10.0.0.0/33\"]}\n",
                      "t.yml:3:32: probe.allow[0].targets[0]: \"10.0.0.0/33\" is not a HOST[:PORT] "
                      "pattern (a name glob, an IP, or a CIDR like 10.0.0.0/8)");
}
END_TEST

START_TEST(test_config_probe_instance_is_configured_like_a_check)
{
    struct cw_diag d;
    struct cw_instance *in;

    cw_diag_init(&d);
    in = cw_settings_probe_instance(&kind_probe, "[::1]:8443", CW_S(3), NULL, &d);
    ck_assert_ptr_nonnull(in);
    ck_assert_str_eq(in->target, "[::1]:8443");
    ck_assert_str_eq(in->prefix, "");
    ck_assert_str_eq(in->common_prefix, "check=\"probe\"");
    ck_assert_int_eq(in->timeout, CW_S(3));
    cw_instance_unref(in);
    /* A target the kind rejects comes back as a diagnostic, not a crash. */
    ck_assert_ptr_null(cw_settings_probe_instance(&kind_probe, "no-port", CW_S(3), NULL, &d));
    ck_assert_uint_eq(d.n, 1);
    ck_assert_str_eq(d.entries[0].text,
                     "probe:1:9: target: \"no-port\": missing port (write host:port)");
    cw_diag_reset(&d);
}
END_TEST

START_TEST(test_config_probe_rule_options_reach_the_probed_check)
{
    struct cw_settings *s;
    const struct cw_probe_rule *r;
    struct cw_instance *in;
    struct cw_diag d;
    char *err = load("probe:\n  allow:\n    - check: probe\n      targets: [\"*\"]\n"
                     "      options: {mode: slow}\n",
                     &s);

    ck_assert_str_eq(err, "");
    free(err);
    r = cw_settings_probe_rule(s, &kind_probe, "db:3306");
    ck_assert_ptr_nonnull(r);
    cw_diag_init(&d);
    in = cw_settings_probe_instance(&kind_probe, "db:3306", CW_S(1), r, &d);
    ck_assert_ptr_nonnull(in);
    ck_assert_int_eq(((struct probe_state *)in->state)->mode, 1);
    cw_instance_unref(in);
    cw_diag_reset(&d);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_config_probe_rule_cannot_fix_the_target)
{
    ASSERT_LOAD_ERROR("probe:\n  allow:\n    - check: probe\n      targets: [\"*\"]\n"
                      "      options: {target: \"evil:1\"}\n",
                      "t.yml:5:17: probe.allow[0].options.target: \"target\" cannot be a fixed "
                      "probe option");
}
END_TEST

/* ---- limits and scale --------------------------------------------------- */

/* repeat() returns 'n' copies of 'c' in a malloc'ed string. */
static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    ck_assert_ptr_nonnull(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* load_file() loads 'path' and returns the first diagnostic ("" when it loaded). */
static char *load_file(const char *path)
{
    struct cw_diag d;
    struct cw_settings *s;
    char *r;

    cw_diag_init(&d);
    s = cw_settings_load(path, &d);
    r = strdup(d.n != 0 ? d.entries[0].text : "");
    ck_assert_ptr_nonnull(r);
    if (s != NULL)
        ck_assert_uint_eq(d.n, 0);
    else
        ck_assert_uint_gt(d.n, 0);
    cw_settings_unref(s);
    cw_diag_reset(&d);
    return r;
}

START_TEST(test_config_rejects_fifo_without_blocking)
{
    char dir[] = "/tmp/cwcfg.XXXXXX";
    char path[64];
    char *err;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/fifo.yml", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    /* No writer: the old open() waited here forever (Check's timeout fails it). */
    err = load_file(path);
    ck_assert_ptr_nonnull(strstr(err, "/fifo.yml: cannot read: not a regular file (a FIFO)"));
    free(err);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_config_rejects_character_device)
{
    char *err = load_file("/dev/zero");

    ck_assert_str_eq(err, "/dev/zero: cannot read: not a regular file (a character device)");
    free(err);
}
END_TEST

START_TEST(test_config_rejects_directory)
{
    char *err = load_file("/");

    ck_assert_str_eq(err, "/: cannot read: not a regular file (a directory)");
    free(err);
}
END_TEST

START_TEST(test_config_rejects_file_above_size_limit)
{
    char path[] = "/tmp/cwcfg-big.XXXXXX";
    int fd = mkstemp(path);
    char want[128];
    char *err;

    ck_assert_int_ge(fd, 0);
    /* Sparse: 32 MiB + 1 without writing them. */
    ck_assert_int_eq(ftruncate(fd, (32 << 20) + 1), 0);
    close(fd);
    err = load_file(path);
    snprintf(want, sizeof(want),
             "%s: cannot read: the file is 33554433 bytes, larger than the limit of 33554432 "
             "bytes",
             path);
    ck_assert_str_eq(err, want);
    free(err);
    unlink(path);
}
END_TEST

/* load_filled() loads the YAML 'fmt' with its one %s replaced by 'n'
 * copies of 'c' and returns the diagnostics, as load() does. */
static char *load_filled(const char *fmt, char c, size_t n)
{
    char *fill = repeat(c, n);
    struct cw_buf b;
    char *err;

    cw_buf_init(&b, n + 256);
    ck_assert_int_eq(cw_buf_addf(&b, fmt, fill), CW_OK);
    err = load(cw_buf_str(&b), NULL);
    cw_buf_reset(&b);
    free(fill);
    return err;
}

START_TEST(test_config_rejects_long_string)
{
    char *err = load_filled("global:\n  interval: %s\n", 'x', 70000);

    ck_assert_str_eq(err, "t.yml:2:13: global.interval: string of 70000 bytes is longer than the "
                          "limit of 65536 bytes");
    free(err);
    /* An explicit key ("? "): YAML allows implicit keys of 1024 characters only. */
    err = load_filled("global:\n  ? %s\n  : 1\n", 'x', 70000);
    ck_assert_str_eq(
        err, "t.yml:2:5: global: key of 70000 bytes is longer than the limit of 65536 bytes");
    free(err);
}
END_TEST

START_TEST(test_config_cuts_long_diagnostic_and_marks_it)
{
    /* 60,000 bytes fit the string limit; the message quoting them is cut. */
    char *err = load_filled("global:\n  interval: x%s\n", '9', 60000);
    size_t n = strlen(err);

    ck_assert_uint_eq(n, 4096 + strlen(" [...]"));
    ck_assert_str_eq(err + n - 6, " [...]");
    ck_assert_int_eq(strncmp(err, "t.yml:2:13: global.interval: \"x999", 34), 0);
    free(err);
}
END_TEST

START_TEST(test_config_rejects_deep_nesting)
{
    char yaml[256];
    char *err;

    memset(yaml, '[', 70);
    yaml[70] = '\0';
    err = load(yaml, NULL);
    ck_assert_str_eq(
        err, "t.yml:1:66: [0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
             "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
             "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: nesting deeper than the limit of "
             "64 levels");
    free(err);
}
END_TEST

START_TEST(test_config_rejects_too_many_nodes)
{
    /* 1,000,001 scalars in one list: 2 MB of text. */
    size_t n = 1000001, i;
    char *yaml;
    char *err;

    /* The limit is fixed, so this cannot be scaled down: under valgrind a
     * million nodes take minutes, and the error path it walks is the one
     * the smaller limit tests here take. The normal, ASan and TSan runs
     * of this suite run it. */
    if (under_valgrind())
        return;
    yaml = malloc(2 * n + 8);
    ck_assert_ptr_nonnull(yaml);
    yaml[0] = '[';
    for (i = 0; i < n; i++) {
        yaml[1 + 2 * i] = '1';
        yaml[2 + 2 * i] = ',';
    }
    yaml[2 * n] = ']';
    yaml[2 * n + 1] = '\0';
    err = load(yaml, NULL);
    ck_assert_str_eq(err, "t.yml:1:2000000: [999999]: document too large: more than the limit of "
                          "1000000 nodes (aliases included)");
    free(err);
    free(yaml);
}
END_TEST

START_TEST(test_config_rejects_long_field_path)
{
    char *k = repeat('k', 40000);
    char *yaml = malloc(2 * 40000 + 64);
    char *err;

    ck_assert_ptr_nonnull(yaml);
    snprintf(yaml, 2 * 40000 + 64, "? %s\n: {? %s\n  : 1}\n", k, k);
    err = load(yaml, NULL);
    /* The path shown is shortened: 128 bytes, "...", the last 128 bytes. */
    ck_assert_int_eq(strncmp(err, "t.yml:2:6: kkkk", 15), 0);
    ck_assert_ptr_nonnull(strstr(err, "kkk...kkk"));
    ck_assert_str_eq(err + strlen(err) - 53,
                     "kkkk: field path longer than the limit of 65536 bytes");
    ck_assert_uint_eq(strlen(err), strlen("t.yml:2:6: ") + 256 + 3 + 2 + 47);
    free(err);
    free(yaml);
    free(k);
}
END_TEST

START_TEST(test_config_rejects_tree_above_memory_limit)
{
    /* Every node keeps its field path: 5,000 items under a 60,000-byte key
     * would take 300 MB although the text is 70 kB. */
    char *k = repeat('k', 60000);
    struct cw_buf b;
    char *err;
    size_t i;

    cw_buf_init(&b, 1 << 20);
    ck_assert_int_eq(cw_buf_addf(&b, "? %s\n: [", k), CW_OK);
    for (i = 0; i < 5000; i++)
        ck_assert_int_eq(cw_buf_adds(&b, "1,"), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "]\n"), CW_OK);
    err = load(cw_buf_str(&b), NULL);
    ck_assert_ptr_nonnull(strstr(err, ": document too large: its nodes would take more than the "
                                      "limit of 268435456 bytes of memory (aliases included)"));
    ck_assert_int_eq(strncmp(err, "t.yml:2:", 8), 0);
    free(err);
    cw_buf_reset(&b);
    free(k);
}
END_TEST

/* big_config() writes 'nsvc' services of 'per' tcp checks each, names spread. */
static void big_config(struct cw_buf *b, size_t nsvc, size_t per)
{
    size_t i, j;

    cw_buf_init(b, 64u << 20);
    ck_assert_int_eq(cw_buf_adds(b, "host: {enabled: false}\nservices:\n"), CW_OK);
    for (i = 0; i < nsvc; i++) {
        ck_assert_int_eq(
            cw_buf_addf(b, "  - name: %08x-svc-%zu\n    checks:\n", (unsigned)(i * 2654435761u), i),
            CW_OK);
        for (j = 0; j < per; j++)
            ck_assert_int_eq(cw_buf_addf(b, "      - tcp: {target: \"h%zu.example.net:443\"}\n", j),
                             CW_OK);
    }
}

START_TEST(test_config_loads_100000_checks_in_10000_services)
{
    struct cw_settings *s;
    struct cw_diag d;
    struct cw_buf b;

    /* Under valgrind a tenth: memory errors show at any scale, and the
     * full one would take minutes there. */
    size_t nsvc = under_valgrind() ? 1000 : 10000;

    big_config(&b, nsvc, 10);
    cw_diag_init(&d);
    s = cw_settings_load_text("big.yml", cw_buf_str(&b), &d);
    ck_assert_msg(s != NULL, "%s", d.n != 0 ? d.entries[0].text : "?");
    ck_assert_uint_eq(s->ninst, nsvc * 10);
    cw_settings_unref(s);
    cw_diag_reset(&d);
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_config_finds_duplicate_service_among_10000)
{
    struct cw_diag d;
    struct cw_buf b;
    size_t nsvc = under_valgrind() ? 1000 : 10000; /* a tenth, as above */
    char want[160];

    big_config(&b, nsvc, 1);
    /* Service 0's name again, as the last service. */
    ck_assert_int_eq(
        cw_buf_addf(&b, "  - name: %08x-svc-0\n    checks: [{tcp: {target: \"x:1\"}}]\n", 0u),
        CW_OK);
    cw_diag_init(&d);
    ck_assert_ptr_null(cw_settings_load_text("big.yml", cw_buf_str(&b), &d));
    ck_assert_uint_eq(d.n, 1);
    /* Two lines of header, three per service: the last name is on line
     * 3 * nsvc + 3, at column 11. */
    snprintf(want, sizeof(want),
             "big.yml:%zu:11: services[%zu].name: duplicate service name \"00000000-svc-0\" "
             "(line 3)",
             3 * nsvc + 3, nsvc);
    ck_assert_str_eq(d.entries[0].text, want);
    cw_diag_reset(&d);
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_strindex_compares_linearly)
{
    /* 100,000 spread names, then each again: each lookup compares strings
     * only on a full 64-bit hash match, so about one comparison per
     * duplicate and none per new name (a scan would make 5e9). A tenth
     * under valgrind. */
    const size_t N = under_valgrind() ? 10000 : 100000;
    struct cw_strindex ix;
    char(*names)[24] = malloc(sizeof(*names) * N);
    void *old;
    size_t i;

    ck_assert_ptr_nonnull(names);
    cw_strindex_init(&ix);
    for (i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "%08x-svc-%zu", (unsigned)(i * 2654435761u), i);
        ck_assert_int_eq(cw_strindex_add(&ix, names[i], names[i], &old), CW_OK);
        ck_assert_ptr_null(old);
    }
    ck_assert_uint_le(ix.compares, N / 100);
    for (i = 0; i < N; i++) {
        ck_assert_int_eq(cw_strindex_add(&ix, names[i], NULL, &old), CW_OK);
        ck_assert_ptr_eq(old, names[i]);
        ck_assert_ptr_eq(cw_strindex_find(&ix, names[i]), names[i]);
    }
    ck_assert_uint_eq(ix.n, N);
    ck_assert_uint_le(ix.compares, 2 * N + N / 100);
    ck_assert_ptr_null(cw_strindex_find(&ix, "absent"));
    ck_assert_int_eq(cw_strindex_set(&ix, names[7], NULL), CW_OK);
    ck_assert_ptr_null(cw_strindex_find(&ix, names[7]));
    cw_strindex_reset(&ix);
    free(names);
}
END_TEST

START_TEST(test_seconds_parse_bounds_and_clamps)
{
    static const struct {
        const char *text;
        int rc;
        cw_duration want;
    } rows[] = {
        {"10", CW_OK, CW_S(10)},
        {"9.5", CW_OK, CW_MS(9500)},
        {"0.001", CW_OK, CW_MS(1)},
        {".5", CW_OK, CW_MS(500)},
        {"2e1", CW_OK, CW_S(20)},
        {"0", CW_OK, 0},
        {"1e-400", CW_OK, 0},          /* underflow: zero */
        {"86400", CW_OK, CW_S(86400)}, /* the bound itself */
        {"86401", CW_OK, CW_S(86400)}, /* clamped */
        {"1e18", CW_OK, CW_S(86400)},  /* would overflow int64 nanoseconds */
        {"1e308", CW_OK, CW_S(86400)},
        {"1e400", CW_OK, CW_S(86400)}, /* strtod overflow (ERANGE): clamped too */
        {"inf", CW_EPARSE, 0},
        {"infinity", CW_EPARSE, 0},
        {"nan", CW_EPARSE, 0},
        {"NAN", CW_EPARSE, 0},
        {"-1", CW_EPARSE, 0},
        {"-0", CW_EPARSE, 0},
        {"+1", CW_EPARSE, 0},
        {" 1", CW_EPARSE, 0},
        {"1 ", CW_EPARSE, 0},
        {"0x10", CW_EPARSE, 0},
        {"1s", CW_EPARSE, 0},
        {"1e", CW_EPARSE, 0},
        {"1.2.3", CW_EPARSE, 0},
        {"", CW_EPARSE, 0},
        {".", CW_EPARSE, 0},
    };
    size_t i;

    for (i = 0; i < CW_ARRAY_LEN(rows); i++) {
        cw_duration d = -42;

        ck_assert_msg(cw_seconds_parse(rows[i].text, CW_S(86400), &d) == rows[i].rc, "\"%s\"",
                      rows[i].text);
        ck_assert_msg(d == (rows[i].rc == CW_OK ? rows[i].want : -42), "\"%s\": %lld", rows[i].text,
                      (long long)d);
    }
    ck_assert_int_eq(cw_seconds_parse(NULL, CW_S(1), &(cw_duration){0}), CW_EPARSE);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    TCase *tv = tcase_create("values");
    TCase *tl = tcase_create("limits");
    TCase *tf = tcase_create("files");

    tcase_add_test(tc, test_config_builtin_default_loads);
    tcase_add_test(tc, test_config_builtin_default_probes_its_listener);
    tcase_add_test(tc, test_config_reserves_the_kinds_label_names);
    tcase_add_test(tc, test_config_rejects_yaml_syntax_error);
    tcase_add_test(tc, test_config_rejects_unknown_top_level_key);
    tcase_add_test(tc, test_config_rejects_unknown_key);
    tcase_add_test(tc, test_config_rejects_wrong_type);
    tcase_add_test(tc, test_config_rejects_bad_duration);
    tcase_add_test(tc, test_config_rejects_duration_out_of_range);
    tcase_add_test(tc, test_config_rejects_timeout_above_interval);
    tcase_add_test(tc, test_config_inherited_timeout_shrinks_to_interval);
    tcase_add_test(tc, test_config_rejects_duplicate_key);
    tcase_add_test(tc, test_config_rejects_duplicate_service_name);
    tcase_add_test(tc, test_config_rejects_duplicate_check);
    tcase_add_test(tc, test_config_accepts_same_target_with_distinct_names);
    tcase_add_test(tc, test_config_rejects_unknown_check_kind);
    tcase_add_test(tc, test_config_rejects_section_kind_under_service);
    tcase_add_test(tc, test_config_rejects_check_with_two_kinds);
    tcase_add_test(tc, test_config_rejects_missing_required_field);
    tcase_add_test(tc, test_config_rejects_bad_address);
    tcase_add_test(tc, test_config_rejects_bad_ip_address);
    tcase_add_test(tc, test_config_accepts_bracketed_ipv6_address);
    tcase_add_test(tc, test_config_rejects_url_without_scheme);
    tcase_add_test(tc, test_config_rejects_bad_enum);
    tcase_add_test(tc, test_config_rejects_unreadable_secret_file);
    tcase_add_test(tc, test_config_reads_secret_file_relative_to_config);
    tcase_add_test(tc, test_config_rejects_reserved_label);
    tcase_add_test(tc, test_config_rejects_invalid_label_name);
    tcase_add_test(tc, test_config_rejects_missing_service_name);
    tcase_add_test(tc, test_config_rejects_non_bool);
    tcase_add_test(tc, test_config_host_can_be_disabled);
    tcase_add_test(tc, test_config_collects_every_error);
    tcase_add_test(tc, test_config_rejects_alias_bomb);
    tcase_add_test(tc, test_config_expands_aliases_with_their_own_paths);
    tcase_add_test(tc, test_config_reports_missing_file);
    tcase_add_test(tc, test_config_empty_file_is_the_defaults);
    tcase_add_test(tc, test_config_labels_are_escaped_in_prefix);
    tcase_add_test(tc, test_config_adopt_keeps_unchanged_instances);
    tcase_add_test(tc, test_config_probe_allows_only_listed_targets);
    tcase_add_test(tc, test_config_probe_address_globs_match_ip_literals_only);
    tcase_add_test(tc, test_config_probe_rule_allows_hops);
    tcase_add_test(tc, test_config_probe_rejects_kind_that_cannot_be_probed);
    tcase_add_test(tc, test_config_probe_rejects_bad_cidr);
    tcase_add_test(tc, test_config_probe_instance_is_configured_like_a_check);
    tcase_add_test(tc, test_config_probe_rule_options_reach_the_probed_check);
    tcase_add_test(tc, test_config_probe_rule_cannot_fix_the_target);
    suite_add_tcase(s, tc);
    tcase_add_test(tv, test_duration_parses_prometheus_forms);
    tcase_add_test(tv, test_duration_formats_shortest);
    tcase_add_test(tv, test_hostport_parses_forms);
    suite_add_tcase(s, tv);
    tcase_add_test(tv, test_seconds_parse_bounds_and_clamps);
    /* Large documents: seconds under ASan or valgrind, so a generous timeout. */
    tcase_set_timeout(tl, 300);
    tcase_add_test(tl, test_strindex_compares_linearly); /* 100,000 names, twice */
    tcase_add_test(tl, test_config_rejects_file_above_size_limit);
    tcase_add_test(tl, test_config_rejects_long_string);
    tcase_add_test(tl, test_config_cuts_long_diagnostic_and_marks_it);
    tcase_add_test(tl, test_config_rejects_deep_nesting);
    tcase_add_test(tl, test_config_rejects_too_many_nodes);
    tcase_add_test(tl, test_config_rejects_long_field_path);
    tcase_add_test(tl, test_config_rejects_tree_above_memory_limit);
    tcase_add_test(tl, test_config_loads_100000_checks_in_10000_services);
    tcase_add_test(tl, test_config_finds_duplicate_service_among_10000);
    suite_add_tcase(s, tl);
    /* A FIFO made the old loader block in open(): the timeout fails it. */
    tcase_set_timeout(tf, 20);
    tcase_add_test(tf, test_config_rejects_fifo_without_blocking);
    tcase_add_test(tf, test_config_rejects_character_device);
    tcase_add_test(tf, test_config_rejects_directory);
    suite_add_tcase(s, tf);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
