/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_targets.c - many targets in one check stanza: "targets: [...]" and
 * "targets_file:" (Prometheus file_sd, JSON or YAML). Every error class is
 * asserted with the exact "file:line:col: path: message" text; reloads
 * keep the previous version of a rejected file and the unchanged
 * instances.
 *
 * The kinds linked are tcp (its probe option is "target") and dns ("name"),
 * so that the one rule, the probe option takes each element, is seen with
 * two field names.
 */
#include "exporter/check.h"
#include "exporter/core/buf.h"
#include "exporter/core/config.h"
#include "exporter/file_sd.h"
#include "exporter/instance.h"
#include "exporter/kinds.h"
#include "exporter/settings.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const struct cw_check_kind cw_kind_dns, cw_kind_host, cw_kind_tcp;
const struct cw_check_kind *const cw_check_kinds[] = {&cw_kind_dns, &cw_kind_host, &cw_kind_tcp,
                                                      NULL};

static char dir[64];

static void dir_setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cwtargets.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void dir_teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        (void)unlink(path);
    }
    if (d != NULL)
        closedir(d);
    (void)rmdir(dir);
}

/* put() writes 'text' to dir/name; each write gets a distinct mtime. */
static void put(const char *name, const char *text)
{
    char path[256], tmp[272];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, path), 0); /* a new inode, as file_sd writers do */
}

static char *joined(const struct cw_diag *d)
{
    struct cw_buf b;
    size_t i;
    char *r;

    cw_buf_init(&b, 1 << 20);
    for (i = 0; i < d->n; i++)
        ck_assert_int_eq(cw_buf_addf(&b, "%s%s", i ? "\n" : "", d->entries[i].text), CW_OK);
    r = strdup(cw_buf_str(&b));
    cw_buf_reset(&b);
    return r;
}

/* load() loads dir/c.yml (after writing 'yaml' there) and returns the
 * diagnostics, with the directory replaced by "D" ("" when it loaded). */
static char *load_prev(const char *yaml, const struct cw_settings *prev, struct cw_settings **out)
{
    struct cw_diag d;
    struct cw_settings *s;
    char path[256], *r, *p;
    struct cw_buf b;
    size_t dl = strlen(dir);

    put("c.yml", yaml);
    snprintf(path, sizeof(path), "%s/c.yml", dir);
    cw_diag_init(&d);
    s = cw_settings_load_prev(path, prev, &d);
    r = joined(&d);
    if (s == NULL)
        ck_assert_uint_gt(d.n, 0);
    cw_diag_reset(&d);
    if (out != NULL)
        *out = s;
    else
        cw_settings_unref(s);
    cw_buf_init(&b, 1 << 20);
    for (p = r; *p != '\0';) {
        if (strncmp(p, dir, dl) == 0) {
            ck_assert_int_eq(cw_buf_addc(&b, 'D'), CW_OK);
            p += dl;
        } else {
            ck_assert_int_eq(cw_buf_addc(&b, *p++), CW_OK);
        }
    }
    free(r);
    r = strdup(cw_buf_str(&b));
    cw_buf_reset(&b);
    return r;
}

static char *load(const char *yaml, struct cw_settings **out)
{
    return load_prev(yaml, NULL, out);
}

#define ASSERT_LOAD_ERROR(yaml, expected)                                                          \
    do {                                                                                           \
        char *got_ = load(yaml, NULL);                                                             \
        ck_assert_str_eq(got_, expected);                                                          \
        free(got_);                                                                                \
    } while (0)

/* A service "s" with one tcp stanza made of 'opts'. */
#define TCP(opts)                                                                                  \
    "host: {enabled: false}\nservices:\n  - name: s\n    checks:\n      - tcp: " opts "\n"

/* find() returns the instance of 'kind' with target 'target', or NULL. */
static struct cw_instance *find(const struct cw_settings *s, const char *kind, const char *target)
{
    size_t i;

    for (i = 0; i < s->ninst; i++) {
        if (strcmp(s->inst[i]->kind->name, kind) == 0 && strcmp(s->inst[i]->target, target) == 0)
            return s->inst[i];
    }
    return NULL;
}

/* ---- targets: [...] ------------------------------------------------------ */

START_TEST(test_targets_list_makes_one_instance_each)
{
    struct cw_settings *s;
    char *got = load(TCP("{targets: [\"a:1\", \"b:2\", \"[::1]:3\"], interval: 7s}"), &s);
    struct cw_instance *in;

    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(s->ninst, 3);
    in = find(s, "tcp", "b:2");
    ck_assert_ptr_nonnull(in);
    ck_assert_int_eq(in->interval, CW_S(7));
    ck_assert_str_eq(in->prefix, "service=\"s\",target=\"b:2\"");
    ck_assert_ptr_nonnull(find(s, "tcp", "[::1]:3"));
    /* Each instance is at its element: line 5, the column of "b:2". */
    ck_assert_uint_eq(in->line, 5);
    ck_assert_uint_eq(in->col, 32);
    ck_assert_uint_eq(s->ntsrc, 0);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_targets_list_fills_each_kinds_probe_option)
{
    struct cw_settings *s;
    char *got = load("host: {enabled: false}\nservices:\n  - name: s\n    checks:\n"
                     "      - dns: {targets: [a.example, b.example], server: \"127.0.0.1:53\"}\n",
                     &s);

    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(s->ninst, 2);
    ck_assert_ptr_nonnull(find(s, "dns", "a.example"));
    ck_assert_ptr_nonnull(find(s, "dns", "b.example"));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_targets_list_rejects_duplicates)
{
    ASSERT_LOAD_ERROR(TCP("{targets: [\"a:1\", \"b:2\", \"a:1\"]}"),
                      "D/c.yml:5:39: services[0].checks[0].tcp.targets[2]: duplicate target "
                      "\"a:1\" (also at line 5, column 25)");
}
END_TEST

START_TEST(test_targets_list_rejects_duplicate_of_another_stanza)
{
    ASSERT_LOAD_ERROR(TCP("{target: \"a:1\"}\n      - tcp: {targets: [\"b:2\", \"a:1\"]}"),
                      "D/c.yml:6:32: services[0].checks[1].tcp.targets[1]: duplicate check: this "
                      "service already has a tcp check with target \"a:1\" (line 5)");
}
END_TEST

START_TEST(test_targets_list_rejects_empty_list)
{
    ASSERT_LOAD_ERROR(TCP("{targets: []}"),
                      "D/c.yml:5:24: services[0].checks[0].tcp.targets: must list at least one "
                      "target");
}
END_TEST

START_TEST(test_targets_list_rejects_non_list)
{
    ASSERT_LOAD_ERROR(TCP("{targets: \"a:1\"}"),
                      "D/c.yml:5:24: services[0].checks[0].tcp.targets: must be a list of "
                      "targets, not a string");
}
END_TEST

START_TEST(test_targets_list_rejects_non_string_element)
{
    ASSERT_LOAD_ERROR(TCP("{targets: [\"a:1\", {b: 2}, ~]}"),
                      "D/c.yml:5:32: services[0].checks[0].tcp.targets[1]: a target is a "
                      "non-empty string, not a mapping\n"
                      "D/c.yml:5:40: services[0].checks[0].tcp.targets[2]: a target is a "
                      "non-empty string, not an empty");
}
END_TEST

START_TEST(test_targets_list_reports_bad_targets_at_their_element)
{
    ASSERT_LOAD_ERROR(TCP("{targets: [\"a:1\", \"nope\"]}"),
                      "D/c.yml:5:32: services[0].checks[0].tcp.targets[1]: \"nope\": missing "
                      "port (write host:port)");
}
END_TEST

START_TEST(test_targets_shared_option_error_is_reported_once)
{
    ASSERT_LOAD_ERROR(TCP("{targets: [\"a:1\", \"b:2\", \"c:3\"], colour: red}"),
                      "D/c.yml:5:47: services[0].checks[0].tcp.colour: unknown field \"colour\"");
}
END_TEST

START_TEST(test_targets_exclude_the_probe_option_name_and_each_other)
{
    ASSERT_LOAD_ERROR(TCP("{targets: [\"a:1\"], target: \"b:2\", name: n}"),
                      "D/c.yml:5:33: services[0].checks[0].tcp.target: \"target\" and \"targets\" "
                      "exclude each other: list every target in targets\n"
                      "D/c.yml:5:48: services[0].checks[0].tcp.name: a check with targets is "
                      "named by each target; one name would be shared");
    ASSERT_LOAD_ERROR(TCP("{targets: [\"a:1\"], targets_file: sd.json}"),
                      "D/c.yml:5:33: services[0].checks[0].tcp.targets_file: use either targets "
                      "or targets_file, not both");
}
END_TEST

START_TEST(test_targets_unknown_to_kinds_without_probe_option)
{
    ASSERT_LOAD_ERROR("host: {targets: [a]}\n",
                      "D/c.yml:1:8: host.targets: unknown field \"targets\"");
}
END_TEST

/* ---- targets_file: file_sd ---------------------------------------------- */

START_TEST(test_targets_file_json_with_labels)
{
    struct cw_settings *s;
    struct cw_instance *in;
    char *got;

    put("sd.json", "[{\"targets\": [\"10.0.0.1:443\", \"10.0.0.2:443\"],\n"
                   "  \"labels\": {\"env\": \"prod\", \"team\": \"db\", \"__meta_x\": \"y\"}},\n"
                   " {\"targets\": [\"10.0.0.3:22\"]}]\n");
    got = load("host: {enabled: false}\nservices:\n  - name: s\n    labels: {team: web, dc: a}\n"
               "    checks:\n      - tcp: {targets_file: sd.json, interval: 3s}\n",
               &s);
    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(s->ninst, 3);
    in = find(s, "tcp", "10.0.0.2:443");
    ck_assert_ptr_nonnull(in);
    /* The group's team replaces the service's; __ labels are dropped. */
    ck_assert_str_eq(in->prefix,
                     "service=\"s\",target=\"10.0.0.2:443\",team=\"db\",dc=\"a\",env=\"prod\"");
    ck_assert_int_eq(in->interval, CW_S(3));
    /* The check's own position is the stanza's, in the configuration. */
    ck_assert_uint_eq(in->line, 6);
    in = find(s, "tcp", "10.0.0.3:22");
    ck_assert_str_eq(in->prefix, "service=\"s\",target=\"10.0.0.3:22\",team=\"web\",dc=\"a\"");
    ck_assert_uint_eq(s->ntsrc, 1);
    ck_assert_uint_eq(s->tsrc[0].ntargets, 3);
    ck_assert(!s->tsrc[0].failed);
    ck_assert(s->tsrc[0].read_now);
    ck_assert_ptr_nonnull(strstr(s->tsrc[0].path, "/sd.json"));
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_targets_file_yaml)
{
    struct cw_settings *s;
    char *got;

    put("sd.yml", "- targets:\n    - a:1\n    - b:2\n  labels:\n    env: dev\n"
                  "- targets: []\n- targets:\n  labels: {x: y}\n");
    got = load(TCP("{targets_file: sd.yml}"), &s);
    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(s->ninst, 2);
    ck_assert_str_eq(find(s, "tcp", "a:1")->prefix, "service=\"s\",target=\"a:1\",env=\"dev\"");
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_targets_file_empty_list_loads_no_target)
{
    struct cw_settings *s;
    char *got;

    put("sd.json", "[]\n");
    got = load(TCP("{targets_file: sd.json}"), &s);
    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(s->ninst, 0);
    ck_assert_uint_eq(s->ntsrc, 1);
    ck_assert_uint_eq(s->tsrc[0].ntargets, 0);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_targets_file_absolute_path)
{
    char yaml[512];
    struct cw_settings *s;
    char *got;

    put("abs.json", "[{\"targets\": [\"a:1\"]}]");
    snprintf(yaml, sizeof(yaml), TCP("{targets_file: \"%s/abs.json\"}"), dir);
    got = load(yaml, &s);
    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(s->ninst, 1);
    cw_settings_unref(s);
}
END_TEST

/* load_sd() writes 'sd' to sd.json and returns the errors of loading it. */
static char *load_sd(const char *sd)
{
    put("sd.json", sd);
    return load(TCP("{targets_file: sd.json}"), NULL);
}

#define ASSERT_SD_ERROR(sd, expected)                                                              \
    do {                                                                                           \
        char *got_ = load_sd(sd);                                                                  \
        ck_assert_str_eq(got_, expected);                                                          \
        free(got_);                                                                                \
    } while (0)

START_TEST(test_targets_file_errors)
{
    ASSERT_SD_ERROR("[{\"targets\": [\"a:1\"]\n",
                    "D/sd.json:2:1: YAML syntax error: did not find expected ',' or '}' while "
                    "parsing a flow mapping");
    ASSERT_SD_ERROR("",
                    "D/sd.json: empty file: a file_sd file is a list of {targets, labels} groups "
                    "(\"[]\" for none)");
    ASSERT_SD_ERROR("{\"targets\": [\"a:1\"]}",
                    "D/sd.json:1:1: a file_sd file is a list of {targets, labels} groups, not a "
                    "mapping");
    ASSERT_SD_ERROR("[\"a:1\"]", "D/sd.json:1:2: [0]: a target group is a mapping with targets "
                                 "and labels, not a string");
    ASSERT_SD_ERROR("[{\"targets\": [], \"label\": {}}]",
                    "D/sd.json:1:18: [0].label: unknown field \"label\" (expected targets, "
                    "labels)");
    ASSERT_SD_ERROR("[{\"labels\": {}}]", "D/sd.json:1:2: [0]: missing required field \"targets\"");
    ASSERT_SD_ERROR("[{\"targets\": \"a:1\"}]",
                    "D/sd.json:1:14: [0].targets: must be a list of targets, not a string");
    ASSERT_SD_ERROR("[{\"targets\": [[\"a:1\"], \"\"]}]",
                    "D/sd.json:1:15: [0].targets[0]: a target is a string, not a list\n"
                    "D/sd.json:1:24: [0].targets[1]: a target must not be empty");
    ASSERT_SD_ERROR("[{\"targets\": [\"a:1\"], \"labels\": [\"env\"]}]",
                    "D/sd.json:1:33: [0].labels: must be a mapping of label names to values, not "
                    "a list");
    ASSERT_SD_ERROR("[{\"targets\": [\"a:1\"], \"labels\": {\"a-b\": \"x\", \"c\": {\"d\": 1}}}]",
                    "D/sd.json:1:34: [0].labels.a-b: \"a-b\" is not a valid label name\n"
                    "D/sd.json:1:51: [0].labels.c: a label value is a string, not a mapping");
    ASSERT_SD_ERROR("[{\"targets\": [\"a:1\"], \"labels\": {\"target\": \"x\", \"check\": \"y\"}}]",
                    "D/sd.json:1:34: [0].labels.target: label \"target\" is set by connwatch "
                    "itself\n"
                    "D/sd.json:1:49: [0].labels.check: label \"check\" is set by connwatch "
                    "itself");
    ASSERT_SD_ERROR("[{\"targets\": [\"a:1\", \"b:2\"]},\n {\"targets\": [\"b:2\"]}]",
                    "D/sd.json:2:15: [1].targets[0]: duplicate target \"b:2\" (also at line 1, "
                    "column 22)");
    ASSERT_SD_ERROR("[{\"targets\": [\"a:1\", \"a\"]}]",
                    "D/sd.json:1:22: [0].targets[1]: \"a\": missing port (write host:port)");
    ASSERT_SD_ERROR("[{\"targets\": [\"a:1\"], \"labels\": {\"env\": \"x\"}}] extra",
                    "D/sd.json:1:48: YAML syntax error: did not find expected <document start>");
}
END_TEST

START_TEST(test_targets_file_missing_or_not_a_path)
{
    ASSERT_LOAD_ERROR(TCP("{targets_file: nothere.json}"),
                      "D/c.yml:5:29: services[0].checks[0].tcp.targets_file: cannot read "
                      "D/nothere.json: No such file or directory");
    ASSERT_LOAD_ERROR(TCP("{targets_file: [a]}"),
                      "D/c.yml:5:29: services[0].checks[0].tcp.targets_file: must be the path of "
                      "a file_sd file, not a list");
}
END_TEST

/* ---- reloads -------------------------------------------------------------- */

START_TEST(test_targets_file_rejected_version_keeps_previous_targets)
{
    struct cw_settings *a, *b, *c;
    char *got;

    put("sd.json", "[{\"targets\": [\"a:1\", \"b:2\"]}]");
    got = load(TCP("{targets_file: sd.json}"), &a);
    ck_assert_str_eq(got, "");
    free(got);

    put("sd.json", "[{\"targets\": [\"a:1\", \"b:2\", \"c\"]}]");
    got = load_prev(TCP("{targets_file: sd.json}"), a, &b);
    ck_assert_str_eq(got, ""); /* the load succeeds with the previous targets */
    free(got);
    ck_assert_uint_eq(b->ninst, 2);
    ck_assert(b->tsrc[0].failed);
    ck_assert(b->tsrc[0].read_now);
    ck_assert_ptr_nonnull(strstr(b->tsrc[0].error, "[0].targets[2]: \"c\": missing port"));
    ck_assert_uint_eq(cw_settings_adopt(b, a), 2);

    /* Unchanged since: a refresh does not read it again (it counts once). */
    ck_assert(!cw_settings_targets_changed(b));
    {
        struct cw_diag d;

        cw_diag_init(&d);
        c = cw_settings_refresh(b, &d);
        ck_assert_uint_eq(d.n, 0);
        cw_diag_reset(&d);
    }
    ck_assert_ptr_nonnull(c);
    ck_assert(c->tsrc[0].failed);
    ck_assert(!c->tsrc[0].read_now);
    ck_assert_uint_eq(c->ninst, 2);
    cw_settings_unref(c);

    /* Fixed: the new version is read, the unchanged instances are adopted. */
    put("sd.json", "[{\"targets\": [\"a:1\", \"c:3\"]}]");
    ck_assert(cw_settings_targets_changed(b));
    {
        struct cw_diag d;

        cw_diag_init(&d);
        c = cw_settings_refresh(b, &d);
        cw_diag_reset(&d);
    }
    ck_assert_ptr_nonnull(c);
    ck_assert(!c->tsrc[0].failed);
    ck_assert(c->tsrc[0].read_now);
    ck_assert_uint_eq(c->ninst, 2);
    ck_assert_ptr_nonnull(find(c, "tcp", "c:3"));
    ck_assert_ptr_null(find(c, "tcp", "b:2"));
    ck_assert_uint_eq(cw_settings_adopt(c, b), 1);
    ck_assert_ptr_eq(find(c, "tcp", "a:1"), find(a, "tcp", "a:1"));
    cw_settings_unref(c);
    cw_settings_unref(b);
    cw_settings_unref(a);
}
END_TEST

START_TEST(test_targets_file_deleted_keeps_previous_targets)
{
    struct cw_settings *a, *b;
    char path[256], *got;
    struct cw_diag d;

    put("sd.json", "[{\"targets\": [\"a:1\"]}]");
    got = load(TCP("{targets_file: sd.json}"), &a);
    ck_assert_str_eq(got, "");
    free(got);
    snprintf(path, sizeof(path), "%s/sd.json", dir);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert(cw_settings_targets_changed(a));
    cw_diag_init(&d);
    b = cw_settings_refresh(a, &d);
    cw_diag_reset(&d);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->ninst, 1);
    ck_assert(b->tsrc[0].failed);
    ck_assert_ptr_nonnull(strstr(b->tsrc[0].error, "No such file or directory"));
    ck_assert(!cw_settings_targets_changed(b));
    cw_settings_unref(b);
    cw_settings_unref(a);
}
END_TEST

START_TEST(test_targets_label_change_replaces_only_that_instance)
{
    struct cw_settings *a, *b;
    char *got;

    put("sd.json",
        "[{\"targets\": [\"a:1\"]}, {\"targets\": [\"b:2\"], \"labels\": {\"x\": \"1\"}}]");
    got = load(TCP("{targets_file: sd.json}"), &a);
    ck_assert_str_eq(got, "");
    free(got);
    put("sd.json",
        "[{\"targets\": [\"a:1\"]}, {\"targets\": [\"b:2\"], \"labels\": {\"x\": \"2\"}}]");
    got = load_prev(TCP("{targets_file: sd.json}"), a, &b);
    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(cw_settings_adopt(b, a), 1);
    ck_assert_str_eq(find(b, "tcp", "b:2")->prefix, "service=\"s\",target=\"b:2\",x=\"2\"");
    cw_settings_unref(b);
    cw_settings_unref(a);
}
END_TEST

/* A changed file that takes a target of an unchanged one: the unchanged one
 * cannot fall back, so the refresh fails as a whole (the running settings
 * stay, and the watcher does not retry until a file changes again). */
START_TEST(test_targets_refresh_fails_when_an_unchanged_file_collides)
{
    struct cw_settings *a, *b;
    struct cw_diag d;
    char *got, *text;

    put("a.json", "[{\"targets\": [\"a:1\"]}]");
    put("b.json", "[{\"targets\": [\"b:2\"]}]");
    got = load(TCP("{targets_file: a.json}\n      - tcp: {targets_file: b.json}"), &a);
    ck_assert_str_eq(got, "");
    free(got);
    put("a.json", "[{\"targets\": [\"a:1\", \"b:2\"]}]");
    ck_assert(cw_settings_targets_changed(a));
    cw_diag_init(&d);
    b = cw_settings_refresh(a, &d);
    ck_assert_ptr_null(b);
    text = joined(&d);
    ck_assert_ptr_nonnull(strstr(text,
                                 "/b.json:1:15: [0].targets[0]: duplicate check: this service "
                                 "already has a tcp check with target \"b:2\" (line 5)"));
    free(text);
    cw_diag_reset(&d);
    cw_settings_unref(a);
}
END_TEST

/* A first load has no previous version: a bad file is an error of the load. */
START_TEST(test_targets_file_bad_without_previous_is_an_error)
{
    struct cw_settings *a;
    char *got;

    put("other.json", "[]");
    got = load(TCP("{targets_file: other.json}"), &a);
    ck_assert_str_eq(got, "");
    free(got);
    put("sd.json", "[{]");
    got = load_prev(TCP("{targets_file: sd.json}"), a, NULL);
    ck_assert_ptr_nonnull(strstr(got, "D/sd.json:1:3: YAML syntax error"));
    free(got);
    cw_settings_unref(a);
}
END_TEST

/* 10,000 targets in one file: linear, and well under a second unsanitised. */
START_TEST(test_targets_file_ten_thousand)
{
    struct cw_buf b;
    struct cw_settings *s;
    struct timespec t0, t1;
    char *got;
    int i;

    cw_buf_init(&b, 1 << 24);
    ck_assert_int_eq(cw_buf_adds(&b, "[{\"targets\": ["), CW_OK);
    for (i = 0; i < 10000; i++)
        ck_assert_int_eq(cw_buf_addf(&b, "%s\"10.%d.%d.%d:443\"", i ? ", " : "", i / 65536,
                                     (i / 256) % 256, i % 256),
                         CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "], \"labels\": {\"env\": \"prod\"}}]\n"), CW_OK);
    put("sd.json", cw_buf_str(&b));
    cw_buf_reset(&b);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    got = load(TCP("{targets_file: sd.json}"), &s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_str_eq(got, "");
    free(got);
    ck_assert_uint_eq(s->ninst, 10000);
    fprintf(stderr, "10000 targets loaded in %.3f s\n",
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    cw_settings_unref(s);
}
END_TEST

/* ---- the parser alone ---------------------------------------------------- */

START_TEST(test_file_sd_parse_counts_groups_and_targets)
{
    static const char text[] = "[{\"targets\": [\"a\", \"b\"]}, {\"targets\": [], \"labels\": "
                               "{\"__x\": \"1\", \"y\": \"2\"}}]";
    struct cw_file_sd sd;
    struct cw_diag d;

    cw_diag_init(&d);
    ck_assert_int_eq(cw_file_sd_parse("f", text, strlen(text), &sd, &d), CW_OK);
    ck_assert_uint_eq(d.n, 0);
    ck_assert_uint_eq(sd.ngroups, 2);
    ck_assert_uint_eq(sd.ntargets, 2);
    ck_assert(!cw_file_sd_label_is_used(sd.groups[1].labels->items[0]));
    ck_assert(cw_file_sd_label_is_used(sd.groups[1].labels->items[1]));
    cw_file_sd_reset(&sd);
    cw_diag_reset(&d);
}
END_TEST

static Suite *targets_suite(void)
{
    Suite *s = suite_create("targets");
    TCase *tc = tcase_create("targets");

    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_targets_list_makes_one_instance_each);
    tcase_add_test(tc, test_targets_list_fills_each_kinds_probe_option);
    tcase_add_test(tc, test_targets_list_rejects_duplicates);
    tcase_add_test(tc, test_targets_list_rejects_duplicate_of_another_stanza);
    tcase_add_test(tc, test_targets_list_rejects_empty_list);
    tcase_add_test(tc, test_targets_list_rejects_non_list);
    tcase_add_test(tc, test_targets_list_rejects_non_string_element);
    tcase_add_test(tc, test_targets_list_reports_bad_targets_at_their_element);
    tcase_add_test(tc, test_targets_shared_option_error_is_reported_once);
    tcase_add_test(tc, test_targets_exclude_the_probe_option_name_and_each_other);
    tcase_add_test(tc, test_targets_unknown_to_kinds_without_probe_option);
    tcase_add_test(tc, test_targets_file_json_with_labels);
    tcase_add_test(tc, test_targets_file_yaml);
    tcase_add_test(tc, test_targets_file_empty_list_loads_no_target);
    tcase_add_test(tc, test_targets_file_absolute_path);
    tcase_add_test(tc, test_targets_file_errors);
    tcase_add_test(tc, test_targets_file_missing_or_not_a_path);
    tcase_add_test(tc, test_targets_file_rejected_version_keeps_previous_targets);
    tcase_add_test(tc, test_targets_file_deleted_keeps_previous_targets);
    tcase_add_test(tc, test_targets_label_change_replaces_only_that_instance);
    tcase_add_test(tc, test_targets_file_bad_without_previous_is_an_error);
    tcase_add_test(tc, test_targets_refresh_fails_when_an_unchanged_file_collides);
    tcase_add_test(tc, test_targets_file_ten_thousand);
    tcase_add_test(tc, test_file_sd_parse_counts_groups_and_targets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(targets_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
