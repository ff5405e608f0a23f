/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_relay_webhook.c - Check suite "relay_webhook": the Alertmanager
 * payload parser (a payload as Alertmanager 0.25 sends it, and one reason
 * per kind of malformed input), the dedupe key (order of alerts does not
 * matter; status, group and fingerprints do), templates and UTF-8 cutting,
 * bounded rendering (10,000 alerts and a 20 KB label within a budget, the
 * rest counted, values cut on a character, {{more}}).
 * Single-threaded.
 */
#include "alerts/relay/payload.h"
#include "alerts/relay/template.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Shape of a real Alertmanager 0.25 webhook body (captured in it_relay_alertmanager). */
static const char am_body[] =
    "{\"receiver\":\"relay\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":"
    "{\"alertname\":\"ProbeFailure\",\"instance\":\"db1:3306\",\"severity\":\"critical\","
    "\"service\":\"orders\",\"layer\":\"tcp\"},\"annotations\":{\"summary\":\"连接失败\"},"
    "\"startsAt\":\"2025-01-01T08:00:00.123Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prom/graph\",\"fingerprint\":\"0123456789abcdef\"},"
    "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"ProbeFailure\",\"instance\":\"db2:3306\","
    "\"severity\":\"warning\"},\"annotations\":{},\"startsAt\":\"2025-01-01T08:00:00Z\","
    "\"endsAt\":\"2025-01-01T08:05:00Z\",\"generatorURL\":\"\",\"fingerprint\":"
    "\"fedcba9876543210\"}],"
    "\"groupLabels\":{\"alertname\":\"ProbeFailure\"},\"commonLabels\":{\"alertname\":"
    "\"ProbeFailure\"},\"commonAnnotations\":{},\"externalURL\":\"http://"
    "am:9093\",\"version\":\"4\","
    "\"groupKey\":\"{}:{alertname=\\\"ProbeFailure\\\"}\",\"truncatedAlerts\":0}";

START_TEST(test_parse_alertmanager_payload)
{
    struct cw_am_msg m;
    char why[256];

    ck_assert_int_eq(cw_am_parse(am_body, strlen(am_body), &m, why, sizeof(why)), CW_OK);
    ck_assert_str_eq(m.status, "firing");
    ck_assert_str_eq(m.receiver, "relay");
    ck_assert_str_eq(m.group_key, "{}:{alertname=\"ProbeFailure\"}");
    ck_assert_str_eq(m.external_url, "http://am:9093");
    ck_assert_uint_eq(m.nalerts, 2);
    ck_assert_str_eq(cw_am_label(&m.alerts[0], "instance"), "db1:3306");
    ck_assert_str_eq(cw_am_annotation(&m.alerts[0], "summary"), "连接失败");
    ck_assert_str_eq(cw_am_label(&m.alerts[1], "missing"), "");
    ck_assert_str_eq(m.alerts[1].status, "resolved");
    cw_am_free(&m);
}
END_TEST

static const struct {
    const char *body;
    const char *reason; /* substring of the one-line reason */
} bad[] = {
    {"", "malformed JSON"},
    {"{", "malformed JSON"},
    {"[]", "not a JSON object"},
    {"{\"version\":\"3\",\"status\":\"firing\"}", "version"},
    {"{\"version\":4}", "\"version\" must be a string"},
    {"{\"version\":\"4\"}", "missing \"status\""},
    {"{\"version\":\"4\",\"status\":\"burning\"}", "status must be"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\"}", "missing \"groupKey\""},
    {"{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\"}",
     "missing \"alerts\""},
    {"{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\",\"alerts\":[]"
     "}",
     "want 1 to"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\",\"alerts\":[1]"
     "}",
     "alerts[0] is not an object"},
    {"{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\",\"alerts\":"
     "[{\"status\":\"firing\",\"labels\":{\"a\":1}}]}",
     "labels must be an object of strings"},
    {"{\"version\":\"4\",\"version\":\"4\"}", "malformed JSON"},
};

START_TEST(test_parse_rejects_with_reason)
{
    struct cw_am_msg m;
    char why[256] = "";

    ck_assert_int_eq(cw_am_parse(bad[_i].body, strlen(bad[_i].body), &m, why, sizeof(why)),
                     CW_EPARSE);
    ck_assert_msg(strstr(why, bad[_i].reason) != NULL, "case %d: reason \"%s\" lacks \"%s\"", _i,
                  why, bad[_i].reason);
    ck_assert_msg(strchr(why, '\n') == NULL, "reason is not one line: %s", why);
    ck_assert_ptr_null(m.root);
}
END_TEST

static void key_of(const char *body, char *key)
{
    struct cw_am_msg m;
    char why[256];

    ck_assert_int_eq(cw_am_parse(body, strlen(body), &m, why, sizeof(why)), CW_OK);
    ck_assert_int_eq(cw_am_dedupe_key(&m, key), CW_OK);
    cw_am_free(&m);
}

START_TEST(test_dedupe_key)
{
    const char *a =
        "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\","
        "\"alerts\":[{\"status\":\"firing\",\"labels\":{},\"fingerprint\":\"1\"},"
        "{\"status\":\"firing\",\"labels\":{},\"fingerprint\":\"2\"}]}";
    const char *b =
        "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"x\",\"groupKey\":\"g\","
        "\"alerts\":[{\"status\":\"firing\",\"labels\":{},\"fingerprint\":\"2\"},"
        "{\"status\":\"firing\",\"labels\":{},\"fingerprint\":\"1\"}]}";
    const char *c =
        "{\"version\":\"4\",\"status\":\"resolved\",\"receiver\":\"r\",\"groupKey\":"
        "\"g\",\"alerts\":[{\"status\":\"resolved\",\"labels\":{},\"fingerprint\":\"1\"},"
        "{\"status\":\"resolved\",\"labels\":{},\"fingerprint\":\"2\"}]}";
    const char *d =
        "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\","
        "\"alerts\":[{\"status\":\"firing\",\"labels\":{},\"fingerprint\":\"1\"}]}";
    char ka[40], kb[40], kc[40], kd[40];

    key_of(a, ka);
    key_of(b, kb);
    key_of(c, kc);
    key_of(d, kd);
    ck_assert_uint_eq(strlen(ka), CW_AM_KEY_LEN);
    ck_assert_str_eq(ka, kb);
    ck_assert_str_ne(ka, kc);
    ck_assert_str_ne(ka, kd);
}
END_TEST

START_TEST(test_template_render)
{
    struct cw_am_msg m;
    struct cw_buf b;
    char why[256];
    const char *w = NULL;

    ck_assert_int_eq(cw_am_parse(am_body, strlen(am_body), &m, why, sizeof(why)), CW_OK);
    cw_buf_init(&b, 1 << 16);
    ck_assert_int_eq(cw_tmpl_render(&b,
                                    "{{status_text}} {{ alertname }} {{instance}} {{label:layer}} "
                                    "{{annotation:summary}} {{starts_at}} {{firing}}/{{count}}"
                                    " {{nope}}|{{unclosed",
                                    &m, &m.alerts[0], CW_LANG_EN),
                     CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "FIRING ProbeFailure db1:3306 tcp 连接失败 2025-01-01 "
                                     "08:00:00 UTC 1/2 |{{unclosed");
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_tmpl_render(&b, "{{status_text}}", &m, &m.alerts[1], CW_LANG_ZH), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "已恢复");
    /* lines whose placeholders are all empty are left out; plain lines stay */
    cw_buf_clear(&b);
    ck_assert_int_eq(cw_tmpl_render(&b,
                                    "a {{alertname}}\n- svc: {{service}}\nplain\n\n{{layer}}"
                                    "{{label:x}}\nend {{label:x}}{{instance}}",
                                    &m, &m.alerts[1], CW_LANG_EN),
                     CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "a ProbeFailure\nplain\n\nend db2:3306");
    ck_assert(cw_tmpl_check(cw_tmpl_default_alert(CW_LANG_ZH), &w));
    ck_assert(cw_tmpl_check(cw_tmpl_default_alert(CW_LANG_EN), &w));
    ck_assert(cw_tmpl_check("{{label:x}} {{annotation:y}}", &w));
    ck_assert(!cw_tmpl_check("{{bogus}}", &w));
    ck_assert(!cw_tmpl_check("{{alertname", &w));
    cw_buf_reset(&b);
    cw_am_free(&m);
}
END_TEST

START_TEST(test_utf8_cut)
{
    const char *s = "ab连接"; /* 2 + 3 + 3 bytes */

    ck_assert_uint_eq(cw_utf8_cut(s, 8, 100), 8);
    ck_assert_uint_eq(cw_utf8_cut(s, 8, 8), 8);
    ck_assert_uint_eq(cw_utf8_cut(s, 8, 7), 5);
    ck_assert_uint_eq(cw_utf8_cut(s, 8, 5), 5);
    ck_assert_uint_eq(cw_utf8_cut(s, 8, 4), 2);
    ck_assert_uint_eq(cw_utf8_cut(s, 8, 3), 2);
    ck_assert_uint_eq(cw_utf8_cut(s, 8, 0), 0);
}
END_TEST

/* big_msg() parses a notification of 'n' alerts (every third resolved)
 * whose common label "instance" is 'vlen' bytes of "连" (3 bytes each) and
 * ASCII, so that cutting must find character boundaries. */
static void big_msg(struct cw_am_msg *m, size_t n, size_t vlen)
{
    struct cw_buf b;
    char why[256];
    size_t i;

    cw_buf_init(&b, 64u << 20);
    ck_assert_int_eq(cw_buf_adds(&b, "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\","
                                     "\"groupKey\":\"g\",\"commonLabels\":{\"instance\":\""),
                     CW_OK);
    for (i = 0; i + 4 <= vlen; i += 4)
        ck_assert_int_eq(cw_buf_adds(&b, "x连"), CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "\"},\"alerts\":["), CW_OK);
    for (i = 0; i < n; i++)
        ck_assert_int_eq(cw_buf_addf(&b,
                                     "%s{\"status\":\"%s\",\"labels\":{\"alertname\":\"A%zu\"}}",
                                     i > 0 ? "," : "", i % 3 == 2 ? "resolved" : "firing", i),
                         CW_OK);
    ck_assert_int_eq(cw_buf_adds(&b, "]}"), CW_OK);
    ck_assert_int_eq(cw_am_parse(b.data, b.len, m, why, sizeof(why)), CW_OK);
    cw_buf_reset(&b);
}

static bool valid_utf8(const char *s, size_t len)
{
    size_t i = 0, k;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : 3;

        if (i + need >= len + (need == 0))
            return false;
        for (k = 1; k <= need; k++) {
            if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                return false;
        }
        i += need + 1;
    }
    return true;
}

START_TEST(test_template_digest_fits_budget_and_counts_the_rest)
{
    const char *tmpl = "**{{alertname}}** {{status_text}} {{instance}}\n";
    struct cw_digest d = {.budget = 18000, .value_max = 512, .sep = "\n"};
    struct cw_am_msg m;
    struct cw_buf out;
    size_t shown, n, f, r, i, firing = 0;
    const char *more, *p, *nl;

    big_msg(&m, 10000, 20000);
    cw_buf_init(&out, 1u << 20);
    ck_assert_int_eq(cw_tmpl_digest(&out, tmpl, &m, CW_LANG_EN, &d, &shown), CW_OK);
    ck_assert_uint_le(out.len, d.budget);
    ck_assert(valid_utf8(out.data, out.len));
    ck_assert_uint_gt(shown, 0);
    ck_assert_uint_lt(shown, 10000);
    more = strstr(out.data, "… and ");
    ck_assert_ptr_nonnull(more);
    ck_assert_int_eq(sscanf(more, "… and %zu more alerts (%zu firing, %zu resolved)", &n, &f, &r),
                     3);
    for (i = 0; i < shown; i++)
        firing += i % 3 != 2;
    ck_assert_uint_eq(n, 10000 - shown);
    ck_assert_uint_eq(firing + f, cw_am_firing(&m, 0));
    ck_assert_uint_eq(f + r, n);
    /* values cut on a character to 512 bytes, "…" included: no line is longer */
    for (p = out.data; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
        ck_assert_uint_le((size_t)(nl - p), 512 + strlen("**A9999** RESOLVED "));
    ck_assert_ptr_nonnull(strstr(out.data, "…\n"));
    /* zh, and a budget too small even for the count */
    cw_buf_clear(&out);
    ck_assert_int_eq(cw_tmpl_digest(&out, tmpl, &m, CW_LANG_ZH, &d, &shown), CW_OK);
    ck_assert_ptr_nonnull(strstr(out.data, "条告警未显示（"));
    cw_buf_clear(&out);
    d.budget = 20;
    ck_assert_int_eq(cw_tmpl_digest(&out, tmpl, &m, CW_LANG_EN, &d, &shown), CW_ETOOBIG);
    cw_buf_reset(&out);
    cw_am_free(&m);
}
END_TEST

START_TEST(test_template_value_cap_and_more)
{
    struct cw_buf out, more;
    struct cw_tmpl_opts o = {.value_max = 10};
    struct cw_am_msg m;

    big_msg(&m, 3, 400);
    cw_buf_init(&out, 4096);
    cw_buf_init(&more, 4096);
    /* 10 bytes: "x连" (4) + "x" (1) + "…" (3) = 8; the next "连" would pass 7 */
    ck_assert_int_eq(cw_tmpl_render_opts(&out, "{{instance}}|{{more}}", &m, NULL, CW_LANG_EN, &o),
                     CW_OK);
    ck_assert_str_eq(cw_buf_str(&out), "x连x…| … and 2 more");
    cw_buf_clear(&out);
    o.more_out = &more;
    ck_assert_int_eq(cw_tmpl_render_opts(&out, "{{alertname}}{{more}}", &m, NULL, CW_LANG_ZH, &o),
                     CW_OK);
    ck_assert_str_eq(cw_buf_str(&out), "A0");
    ck_assert_str_eq(cw_buf_str(&more), "…另有2条");
    /* per alert, {{more}} is empty */
    cw_buf_clear(&out);
    ck_assert_int_eq(cw_tmpl_render_opts(&out, "{{more}}", &m, &m.alerts[0], CW_LANG_EN, NULL),
                     CW_OK);
    ck_assert_uint_eq(out.len, 0);
    ck_assert(cw_tmpl_check("{{alertname}}{{more}}", &(const char *){NULL}));
    cw_buf_reset(&out);
    cw_buf_reset(&more);
    cw_am_free(&m);
}
END_TEST

static Suite *webhook_suite(void)
{
    Suite *s = suite_create("relay_webhook");
    TCase *tc = tcase_create("webhook");

    tcase_add_test(tc, test_parse_alertmanager_payload);
    tcase_add_loop_test(tc, test_parse_rejects_with_reason, 0, (int)CW_ARRAY_LEN(bad));
    tcase_add_test(tc, test_dedupe_key);
    tcase_add_test(tc, test_template_render);
    tcase_add_test(tc, test_utf8_cut);
    tcase_add_test(tc, test_template_digest_fits_budget_and_counts_the_rest);
    tcase_add_test(tc, test_template_value_cap_and_more);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(webhook_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
