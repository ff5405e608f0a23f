/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_health.c - the connection health page (exporter/health.c): cell
 * states per layer, the verdict (lowest broken layer), a network failure of
 * an http check counted at the network layer with the http cell "not
 * reached", degraded figures at SPEC.md's thresholds, pending checks, the
 * last failure kept after recovery, /probe links only for allowed targets,
 * escaping, both languages and Accept-Language, and the buffer limit.
 *
 * The kinds are the test's own, named like the real ones so that the page
 * reads their figures: each run emits the figure of its kind with the value
 * of its "value" option and fails with its "fail" option (a reason label),
 * which the test changes between runs through the instance's state.
 * Runs are synchronous (cw_instance_execute_clock on the test's clock).
 */
#include "exporter/check.h"
#include "exporter/core/buf.h"
#include "exporter/health.h"
#include "exporter/instance.h"
#include "exporter/settings.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0   CW_S(5000)
#define WALL ((time_t)1800000000) /* 2027-01-15 08:00:00 UTC */

struct fake_state {
    char *target;
    char *fail; /* a reason label, or NULL or "" */
    double value;
};

static const struct cw_opt fake_opts[] = {
    CW_OPT("target", CW_OPT_T_STRING, struct fake_state, target, NULL, 0, 0, CW_OPT_REQUIRED),
    CW_OPT("fail", CW_OPT_T_STRING, struct fake_state, fail, NULL, 0, 0, 0),
    CW_OPT("value", CW_OPT_T_DOUBLE, struct fake_state, value, "0", 0, 0, 0),
    CW_OPT_END,
};

/* The figure each kind emits, by kind name. */
static const struct cw_desc d_rtt = {.name = "connwatch_icmp_rtt_avg_seconds", .help = "x"};
static const struct cw_desc d_connect = {.name = "connwatch_tcp_connect_seconds", .help = "x"};
static const struct cw_desc d_status = {.name = "connwatch_http_status_code", .help = "x"};
static const struct cw_desc d_expiry = {
    .name = "connwatch_tls_earliest_cert_expiry_timestamp_seconds", .help = "x"};
static const struct cw_desc d_pool = {.name = "connwatch_mysql_connection_usage_ratio",
                                      .help = "x"};
static const struct cw_desc d_hit = {.name = "connwatch_redis_hit_ratio", .help = "x"};
static const struct cw_desc d_cpu = {.name = "connwatch_host_cpu_usage_ratio", .help = "x"};

static double host_cpu = 0.10; /* the host section's figure */

static int fake_configure(void *st, const struct cw_node *n, const struct cw_check_info *i,
                          struct cw_diag *d)
{
    (void)i;
    return cw_opts_apply(fake_opts, st, n, cw_check_common_keys, d);
}

static const char *fake_target(const void *st)
{
    return ((const struct fake_state *)st)->target;
}

static enum cw_reason reason_of(const char *label)
{
    for (int r = 1; r < CW_REASON_COUNT; r++) {
        if (strcmp(cw_reason_label((enum cw_reason)r), label) == 0)
            return (enum cw_reason)r;
    }
    ck_abort_msg("unknown reason %s", label);
    return CW_REASON_INTERNAL;
}

static void fake_emit_and_fail(struct cw_run *run, const struct cw_desc *d, double v,
                               const char *fail)
{
    char reason[64];
    const char *colon = fail != NULL ? strchr(fail, ':') : NULL;

    cw_emit(run, d, v, NULL);
    if (colon != NULL && (size_t)(colon - fail) < sizeof(reason)) {
        /* "REASON:detail": the failure's own text (a server's error) */
        memcpy(reason, fail, (size_t)(colon - fail));
        reason[colon - fail] = '\0';
        cw_run_fail(run, reason_of(reason), "%s", colon + 1);
    } else if (fail != NULL && fail[0] != '\0') {
        cw_run_fail(run, reason_of(fail), "injected %s <b>&amp;", fail);
    }
}

#define FAKE_RUN(fn, desc, expr)                                                                   \
    static void fn(void *st, struct cw_run *run)                                                   \
    {                                                                                              \
        struct fake_state *fs = st;                                                                \
        fake_emit_and_fail(run, &(desc), (expr), fs->fail);                                        \
    }
FAKE_RUN(run_icmp, d_rtt, fs->value)
FAKE_RUN(run_tcp, d_connect, fs->value)
FAKE_RUN(run_http, d_status, fs->value)
FAKE_RUN(run_tls, d_expiry, (double)WALL + fs->value * 86400)
FAKE_RUN(run_mysql, d_pool, fs->value)
FAKE_RUN(run_redis, d_hit, fs->value)

static int host_configure(void *st, const struct cw_node *n, const struct cw_check_info *i,
                          struct cw_diag *d)
{
    (void)st, (void)n, (void)i, (void)d;
    return CW_OK;
}

static void host_run(void *st, struct cw_run *run)
{
    (void)st;
    cw_emit(run, &d_cpu, host_cpu, NULL);
}

static void fake_release(void *st)
{
    cw_opts_release(fake_opts, st);
}

static void host_release(void *st)
{
    (void)st;
}

#define FAKE_KIND(var, kname, klayer, krun)                                                        \
    static const struct cw_check_kind var = {                                                      \
        .name = kname,                                                                             \
        .state_size = sizeof(struct fake_state),                                                   \
        .layer = klayer,                                                                           \
        .configure = fake_configure,                                                               \
        .target = fake_target,                                                                     \
        .run = krun,                                                                               \
        .release = fake_release,                                                                   \
        .probe_option = "target",                                                                  \
    }
FAKE_KIND(k_icmp, "icmp", CW_LAYER_NETWORK, run_icmp);
FAKE_KIND(k_tcp, "tcp", CW_LAYER_NETWORK, run_tcp);
FAKE_KIND(k_http, "http", CW_LAYER_HTTP, run_http);
FAKE_KIND(k_tls, "tls", CW_LAYER_TLS, run_tls);
FAKE_KIND(k_mysql, "mysql", CW_LAYER_DATABASE, run_mysql);
FAKE_KIND(k_redis, "redis", CW_LAYER_CACHE, run_redis);
static const struct cw_check_kind k_host = {
    .name = "host",
    .flags = CW_KIND_SECTION | CW_KIND_ON_BY_DEFAULT,
    .layer = CW_LAYER_HOST,
    .configure = host_configure,
    .run = host_run,
    .release = host_release,
};

const struct cw_check_kind *const cw_check_kinds[] = {&k_host,  &k_http, &k_icmp, &k_mysql,
                                                      &k_redis, &k_tcp,  &k_tls,  NULL};

/* ---- helpers ---------------------------------------------------------------- */

static cw_mono clock_now = T0;

static cw_mono test_clock(void *ctx)
{
    (void)ctx;
    return clock_now;
}

static struct cw_settings *load(const char *yaml)
{
    struct cw_diag d;
    struct cw_settings *s;

    cw_diag_init(&d);
    s = cw_settings_load_text("t.yml", yaml, &d);
    ck_assert_msg(s != NULL, "%s", d.n ? d.entries[0].text : "?");
    cw_diag_reset(&d);
    return s;
}

/* run_all() runs every check once, 'took' long, at the test clock. */
static void run_all(struct cw_settings *s)
{
    for (size_t i = 0; i < s->ninst; i++)
        cw_instance_execute_clock(s->inst[i], test_clock, NULL);
}

/* set_fail() changes the "fail" option of the check whose target is 't'. */
static void set_fail(struct cw_settings *s, const char *t, const char *fail)
{
    for (size_t i = 0; i < s->ninst; i++) {
        struct fake_state *fs = s->inst[i]->state;

        if (s->inst[i]->kind != &k_host && strcmp(fs->target, t) == 0) {
            free(fs->fail);
            fs->fail = strdup(fail);
            ck_assert_ptr_nonnull(fs->fail);
            return;
        }
    }
    ck_abort_msg("no check of %s", t);
}

static char *render(const struct cw_settings *s, enum cw_lang lang)
{
    struct cw_health_page page = {.telemetry_path = "/metrics",
                                  .lang = lang,
                                  .now = clock_now,
                                  .wall = WALL,
                                  .refresh_s = 10};
    struct cw_buf b;
    char *text;

    cw_buf_init(&b, 4u << 20);
    ck_assert_int_eq(cw_health_render(&b, s, &page), CW_OK);
    text = cw_buf_take(&b, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* cell() returns the opening tag of the cell of 'layer' in the row of
 * 'service' (a copy the caller frees), failing the test when it is absent. */
static char *row_of(const char *page, const char *service)
{
    char key[256];
    const char *p, *end;
    char *row;

    snprintf(key, sizeof(key), "<tr class=\"service\" data-service=\"%s\">", service);
    p = strstr(page, key);
    ck_assert_msg(p != NULL, "no row for %s", service);
    end = strstr(p, "</tr>");
    ck_assert_ptr_nonnull(end);
    row = strndup(p, (size_t)(end - p));
    ck_assert_ptr_nonnull(row);
    return row;
}

static void assert_cell(const char *page, const char *service, const char *layer, const char *state)
{
    char *row = row_of(page, service);
    char want[128];

    snprintf(want, sizeof(want), "data-layer=\"%s\" data-state=\"%s\"", layer, state);
    ck_assert_msg(strstr(row, want) != NULL, "%s: want %s in %s", service, want, row);
    free(row);
}

static void assert_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        fprintf(stderr, "%s\n", text);
    ck_assert_msg(strstr(text, want) != NULL, "missing «%s» (the page is above)", want);
}

static void assert_lacks(const char *text, const char *bad)
{
    if (strstr(text, bad) != NULL)
        fprintf(stderr, "%s\n", text);
    ck_assert_msg(strstr(text, bad) == NULL, "unexpected «%s» (the page is above)", bad);
}

static const char two_services[] =
    "services:\n"
    "  - name: invoice\n"
    "    checks:\n"
    "      - icmp: {target: ping.invoice, value: 0.012}\n"
    "      - tcp: {target: \"invoice:8443\", value: 0.002}\n"
    "      - http: {target: \"https://invoice:8443/health\", value: 200}\n"
    "  - name: billing\n"
    "    checks:\n"
    "      - mysql: {target: \"db:3306\", value: 0.30}\n"
    "      - redis: {target: \"cache:6379\", value: 0.92}\n"
    "probe:\n"
    "  allow:\n"
    "    - {check: tcp, targets: [\"invoice:*\"]}\n";

/* ---- tests ------------------------------------------------------------------ */

START_TEST(test_healthy_and_failing_services)
{
    struct cw_settings *s = load(two_services);
    char *page;

    run_all(s);
    clock_now += CW_S(30);
    set_fail(s, "db:3306", "auth");
    run_all(s);
    clock_now += CW_S(95);
    page = render(s, CW_LANG_EN);
    assert_cell(page, "invoice", "network", "ok");
    assert_cell(page, "invoice", "http", "ok");
    assert_cell(page, "invoice", "tls", "none");
    assert_cell(page, "invoice", "host", "ok");
    assert_cell(page, "billing", "database", "failing");
    assert_cell(page, "billing", "cache", "ok");
    assert_has(page, "<td class=\"verdict ok\" data-state=\"ok\">all layers ok</td>");
    assert_has(page, "data-state=\"failing\" data-layer=\"database\"><strong>database</strong>: "
                     "failing — authentication failed");
    /* Since when: the failure began 95 s before the render. */
    assert_has(page, "since <time datetime=\"1799999905\">");
    assert_has(page, "(1m35s ago)");
    assert_has(page, "2 services: 1 ok, 0 degraded, 1 failing, 0 pending");
    /* The check's row, with the escaped detail of its failure. */
    assert_has(page, "<code>injected auth &lt;b&gt;&amp;amp;</code>");
    assert_lacks(page, "<b>");
    /* Links: metrics, and /probe only for what probe.allow lets through. */
    assert_has(page, "<a href=\"/metrics\">Metrics</a>");
    assert_has(page, "href=\"/probe?check=tcp&amp;target=invoice%3A8443\"");
    assert_lacks(page, "/probe?check=http");
    assert_lacks(page, "/probe?check=mysql");
    assert_has(page, "<meta http-equiv=\"refresh\" content=\"10\">");
    free(page);
    cw_settings_unref(s);
}
END_TEST

/* An http check that times out is a network fault: the network cell is
 * red, the http cell reads "not reached", the verdict names the network. */
START_TEST(test_network_reason_counts_at_network_layer)
{
    struct cw_settings *s = load(two_services);
    char *page;

    set_fail(s, "https://invoice:8443/health", "timeout");
    run_all(s);
    page = render(s, CW_LANG_EN);
    assert_cell(page, "invoice", "network", "failing");
    assert_cell(page, "invoice", "http", "blocked");
    assert_has(page, "data-layer=\"network\"><strong>network</strong>: failing — connection timed "
                     "out (a firewall may be dropping SYNs)");
    assert_has(
        page,
        "<span class=\"state\">not reached</span></a><br><small>network: connection timed out");
    /* Two network checks and one more: 2 of 3 ok in the cell. */
    assert_has(page, "2/3 ok");
    free(page);
    cw_settings_unref(s);
}
END_TEST

/* MariaDB at max_connections answers "Too many connections" (the check's
 * reason is refused): the database layer, the server refusing new clients,
 * not the network's "nothing listens on the port" (sc_data_host). */
START_TEST(test_server_full_counts_at_its_layer)
{
    struct cw_settings *s = load(two_services);
    char *page;

    set_fail(s, "db:3306", "refused:connect: Too many connections (1040)");
    run_all(s);
    page = render(s, CW_LANG_ZH);
    assert_cell(page, "billing", "database", "failing");
    assert_cell(page, "billing", "network", "none");
    assert_has(page, "服务器已满，拒绝新客户端（已达 max_connections）");
    assert_lacks(page, "端口无服务监听");
    free(page);
    cw_settings_unref(s);
}
END_TEST

/* A certificate failure of an http check is the TLS layer's. When both
 * the network and TLS fail, the verdict is the lower one. */
START_TEST(test_cert_reason_counts_at_tls_layer)
{
    struct cw_settings *s = load(two_services);
    char *page;

    set_fail(s, "https://invoice:8443/health", "cert_hostname");
    run_all(s);
    page = render(s, CW_LANG_EN);
    assert_cell(page, "invoice", "tls", "failing");
    assert_cell(page, "invoice", "http", "blocked");
    assert_cell(page, "invoice", "network", "ok");
    assert_has(page, "<strong>TLS</strong>: failing — host name not in the certificate");
    free(page);
    set_fail(s, "ping.invoice", "unreachable");
    run_all(s);
    page = render(s, CW_LANG_EN);
    assert_has(page, "<strong>network</strong>: failing — target unreachable");
    assert_cell(page, "invoice", "tls", "failing");
    free(page);
    cw_settings_unref(s);
}
END_TEST

/* Succeeding checks whose figures cross SPEC.md's thresholds are degraded
 * (amber) at the layer of the figure; the page names the figure. */
START_TEST(test_degraded_figures)
{
    struct cw_settings *s = load("services:\n"
                                 "  - name: slow\n"
                                 "    checks:\n"
                                 "      - icmp: {target: far, value: 0.250}\n"
                                 "      - tls: {target: \"far:443\", value: 12}\n"
                                 "  - name: cache\n"
                                 "    checks:\n"
                                 "      - redis: {target: \"r:6379\", value: 0.45}\n"
                                 "      - mysql: {target: \"m:3306\", value: 0.79}\n");
    char *page;

    host_cpu = 0.91;
    run_all(s);
    page = render(s, CW_LANG_EN);
    assert_cell(page, "slow", "network", "degraded");
    assert_cell(page, "slow", "tls", "degraded");
    assert_cell(page, "cache", "cache", "degraded");
    assert_cell(page, "cache", "database", "ok"); /* 79 % < 80 % */
    assert_cell(page, "cache", "host", "degraded");
    assert_has(page, "<strong>network</strong>: degraded — <span class=\"fig over\" "
                     "data-metric=\"connwatch_icmp_rtt_avg_seconds\">rtt 250.0 ms</span>");
    assert_has(page, "cert expires in 12 days");
    assert_has(page, "hit ratio 45.0 %");
    assert_has(page, "<span class=\"fig\" data-metric=\"connwatch_mysql_connection_usage_ratio\">"
                     "pool usage 79.0 %</span>");
    assert_has(page, "cpu 91.0 %");
    free(page);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_pending_then_recovered_keeps_last_failure)
{
    struct cw_settings *s = load(two_services);
    char *page;

    page = render(s, CW_LANG_EN);
    assert_cell(page, "invoice", "network", "pending");
    assert_has(page, "<strong>network</strong>: pending");
    assert_has(page, "2 services: 0 ok, 0 degraded, 0 failing, 2 pending");
    free(page);

    set_fail(s, "cache:6379", "refused");
    run_all(s);
    clock_now += CW_S(10);
    set_fail(s, "cache:6379", "");
    run_all(s);
    clock_now += CW_S(5);
    page = render(s, CW_LANG_EN);
    assert_cell(page, "billing", "cache", "ok");
    /* The failure stays in the check's row, with its time. */
    assert_has(page, "<td class=\"last-failure\"><code>injected refused");
    assert_has(page, "(15s ago)");
    /* The state changed 5 s ago. */
    assert_has(page, "since <time datetime=\"1799999995\">");
    free(page);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_chinese_page)
{
    struct cw_settings *s = load(two_services);
    char *page;

    set_fail(s, "invoice:8443", "timeout");
    run_all(s);
    page = render(s, CW_LANG_ZH);
    assert_has(page, "<html lang=\"zh-CN\">");
    assert_has(page, "<title>connwatch — 连接健康</title>");
    assert_has(page, "<strong>网络层</strong>: 故障 — 连接超时（可能是防火墙丢弃 SYN）");
    assert_has(page, "<th>数据库层</th><th>缓存层</th><th>主机</th>");
    assert_has(page, "<a href=\"?lang=en\" hreflang=\"en\">English</a>");
    assert_lacks(page, "timed out");
    assert_lacks(page, "connection refused");
    assert_lacks(page, ">failing<");
    assert_lacks(page, "this host");
    free(page);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_escapes_names_and_targets)
{
    struct cw_settings *s = load("services:\n"
                                 "  - name: \"a<b>&\\\"c\"\n"
                                 "    checks:\n"
                                 "      - tcp: {target: \"<script>alert(1)</script>:1\"}\n"
                                 "probe:\n"
                                 "  allow:\n"
                                 "    - {check: tcp, targets: [\"*\"]}\n");
    char *page;

    run_all(s);
    page = render(s, CW_LANG_EN);
    assert_lacks(page, "<script>");
    assert_has(page, "data-service=\"a&lt;b&gt;&amp;&quot;c\"");
    assert_has(page, "&lt;script&gt;alert(1)&lt;/script&gt;:1");
    assert_has(page, "target=%3Cscript%3Ealert%281%29%3C%2Fscript%3E%3A1\"");
    free(page);
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_without_services_host_row_and_no_settings)
{
    struct cw_settings *s = load("global: {interval: 10s}\n");
    struct cw_health_page page = {
        .telemetry_path = "/m<", .lang = CW_LANG_EN, .now = T0, .wall = WALL};
    struct cw_buf b;
    char *text;

    run_all(s);
    text = render(s, CW_LANG_EN);
    assert_has(text, "<tr class=\"service\" data-service=\"\"><th>this host</th>");
    assert_cell(text, "", "host", "ok");
    free(text);
    cw_settings_unref(s);

    cw_buf_init(&b, 1 << 20);
    ck_assert_int_eq(cw_health_render(&b, NULL, &page), CW_OK);
    assert_has(cw_buf_str(&b), "No checks are configured.");
    assert_has(cw_buf_str(&b), "<a href=\"/m&lt;\">");
    assert_lacks(cw_buf_str(&b), "refresh");
    cw_buf_reset(&b);
}
END_TEST

/* A page larger than the buffer's limit is an error, not a cut page. */
START_TEST(test_limit)
{
    struct cw_settings *s = load(two_services);
    struct cw_health_page page = {
        .telemetry_path = "/metrics", .lang = CW_LANG_EN, .now = T0, .wall = WALL};
    struct cw_buf b;
    size_t full;

    run_all(s);
    cw_buf_init(&b, 1 << 20);
    ck_assert_int_eq(cw_health_render(&b, s, &page), CW_OK);
    full = b.len;
    cw_buf_reset(&b);
    ck_assert_uint_gt(full, 2000);
    for (size_t limit = 1; limit < full; limit += full / 13) {
        cw_buf_init(&b, limit);
        ck_assert_int_eq(cw_health_render(&b, s, &page), CW_ETOOBIG);
        cw_buf_reset(&b);
    }
    cw_settings_unref(s);
}
END_TEST

START_TEST(test_language_negotiation)
{
    static const struct {
        const char *query, *accept;
        enum cw_lang want;
    } cases[] = {
        {NULL, NULL, CW_LANG_EN},
        {"zh", "en", CW_LANG_ZH},
        {"en", "zh-CN", CW_LANG_EN},
        {"fr", "zh-CN", CW_LANG_ZH},
        {NULL, "zh-CN,zh;q=0.9,en;q=0.8", CW_LANG_ZH},
        {NULL, "en-US,en;q=0.9,zh-CN;q=0.8", CW_LANG_EN},
        {NULL, "  zh-TW ; q=0.5 , en;q=0.4", CW_LANG_ZH},
        {NULL, "en;q=0.5, zh;q=0.5", CW_LANG_EN},
        {NULL, "zh;q=0", CW_LANG_EN},
        {NULL, "zhx, zh-;q=2", CW_LANG_EN},
        {NULL, "de, *", CW_LANG_EN},
        {NULL, "ZH-cn", CW_LANG_ZH},
        {NULL, ",,;q=,zh;q=0.123456789999", CW_LANG_ZH},
        {NULL, "", CW_LANG_EN},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(cw_health_lang(cases[i].query, cases[i].accept) == cases[i].want,
                      "case %zu: lang=%s Accept-Language: %s", i, cases[i].query, cases[i].accept);
}
END_TEST

/* Each test starts from the same clock and host figures (CK_FORK=no, as
 * under valgrind, runs them all in one process). */
static void reset_globals(void)
{
    clock_now = T0;
    host_cpu = 0.10;
}

int main(void)
{
    Suite *s = suite_create("health");
    TCase *t = tcase_create("page");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(t, reset_globals, NULL);
    tcase_add_test(t, test_healthy_and_failing_services);
    tcase_add_test(t, test_network_reason_counts_at_network_layer);
    tcase_add_test(t, test_server_full_counts_at_its_layer);
    tcase_add_test(t, test_cert_reason_counts_at_tls_layer);
    tcase_add_test(t, test_degraded_figures);
    tcase_add_test(t, test_pending_then_recovered_keeps_last_failure);
    tcase_add_test(t, test_chinese_page);
    tcase_add_test(t, test_escapes_names_and_targets);
    tcase_add_test(t, test_without_services_host_row_and_no_settings);
    tcase_add_test(t, test_limit);
    tcase_add_test(t, test_language_negotiation);
    suite_add_tcase(s, t);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
