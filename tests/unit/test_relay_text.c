/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_relay_text.c - Check suite "relay_text": what a page says, in the
 * reader's language (alerts/relay/template.c, receiver_sms_aliyun.c). The
 * default blocks of a firing and of a resolved alert in zh and en (layer
 * as operators say it, the reason explained, the target rather than the
 * scrape address, the start in the reader's time zone, a resolved alert
 * without the "… failing" summary but with how long it lasted), every
 * reason of SPEC.md explained, unknown layers and reasons passed through,
 * the time_zone values, and the SMS TemplateParam within two segments.
 * Single-threaded (Check forks each test).
 */
#include "alerts/relay/payload.h"
#include "alerts/relay/receiver.h"
#include "alerts/relay/template.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* msg_of() parses a notification of one alert with 'labels' (a JSON object's
 * members) and 'ends' ("" for a firing alert). */
static void msg_of(struct cw_am_msg *m, const char *labels, const char *ends, const char *summary)
{
    char body[4096], why[256];

    snprintf(body, sizeof(body),
             "{\"version\":\"4\",\"status\":\"%s\",\"receiver\":\"r\",\"groupKey\":\"g\","
             "\"alerts\":[{\"status\":\"%s\",\"labels\":{%s},\"annotations\":{\"summary\":"
             "\"%s\"},\"startsAt\":\"2026-12-03T07:04:05.5Z\",\"endsAt\":\"%s\","
             "\"generatorURL\":\"http://prom/graph\",\"fingerprint\":\"01\"}]}",
             ends[0] != '\0' ? "resolved" : "firing", ends[0] != '\0' ? "resolved" : "firing",
             labels, summary, ends[0] != '\0' ? ends : "0001-01-01T00:00:00Z");
    ck_assert_int_eq(cw_am_parse(body, strlen(body), m, why, sizeof(why)), CW_OK);
}

#define NET_TIMEOUT                                                                                \
    "\"alertname\":\"ConnwatchNetworkCheckFailing\",\"severity\":\"critical\","                    \
    "\"service\":\"invoice\",\"target\":\"10.0.0.5:8443\",\"instance\":\"connwatch:19367\","       \
    "\"layer\":\"network\",\"reason\":\"timeout\",\"check\":\"tcp\""
#define NET_SUMMARY "tcp check of invoice/10.0.0.5:8443 failing"

/* block() renders the alerts of 'm' the way DingTalk and e-mail do with the
 * default texts: cw_tmpl_digest() with the resolved block. */
static void block(struct cw_buf *out, const struct cw_am_msg *m, enum cw_lang lang,
                  const char *zone)
{
    struct cw_tz tz;
    const char *why = NULL;
    struct cw_digest d = {.budget = 1u << 16, .value_max = 512, .sep = NULL};
    size_t shown;

    ck_assert_msg(cw_tz_parse(zone, &tz, &why), "%s: %s", zone, why);
    d.tz = &tz;
    d.resolved_tmpl = cw_tmpl_default_resolved(lang);
    cw_buf_clear(out);
    ck_assert_int_eq(cw_tmpl_digest(out, cw_tmpl_default_alert(lang), m, lang, &d, &shown), CW_OK);
    ck_assert_uint_eq(shown, m->nalerts);
}

START_TEST(test_firing_network_timeout_zh_en)
{
    struct cw_am_msg m;
    struct cw_buf out;

    cw_buf_init(&out, 1u << 20);
    msg_of(&m, NET_TIMEOUT, "", NET_SUMMARY);
    block(&out, &m, CW_LANG_ZH, "Asia/Shanghai");
    ck_assert_str_eq(cw_buf_str(&out), "**ConnwatchNetworkCheckFailing** 告警\n\n"
                                       "- 级别: 严重\n"
                                       "- 服务: invoice\n"
                                       "- 目标: 10.0.0.5:8443\n"
                                       "- 层级: 网络层\n"
                                       "- 原因: 连接超时（可能是防火墙丢弃 SYN）\n"
                                       "- 摘要: " NET_SUMMARY "\n"
                                       "- 开始时间: 2026-12-03 15:04:05 CST\n"
                                       "- [查看](http://prom/graph)\n");
    block(&out, &m, CW_LANG_EN, "UTC");
    ck_assert_str_eq(cw_buf_str(&out),
                     "**ConnwatchNetworkCheckFailing** FIRING\n\n"
                     "- severity: critical\n"
                     "- service: invoice\n"
                     "- target: 10.0.0.5:8443\n"
                     "- layer: network layer\n"
                     "- reason: connection timed out (a firewall may be dropping SYNs)\n"
                     "- summary: " NET_SUMMARY "\n"
                     "- since: 2026-12-03 07:04:05 UTC\n"
                     "- [source](http://prom/graph)\n");
    cw_am_free(&m);
    cw_buf_reset(&out);
}
END_TEST

/* The bundled rules carry summary_zh: a zh text quotes it, not the English
 * summary (sc_network_web saw "摘要: tcp check of … failing" in every zh
 * page); en keeps the English one, and a zh alert without summary_zh falls
 * back to it. */
START_TEST(test_zh_summary_annotation)
{
    static const char body[] =
        "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\","
        "\"alerts\":[{\"status\":\"firing\",\"labels\":{" NET_TIMEOUT "},"
        "\"annotations\":{\"summary\":\"" NET_SUMMARY "\",\"summary_zh\":\"网络层：invoice 的 tcp "
        "检查失败\",\"description\":\"en\",\"description_zh\":\"中文\"},"
        "\"startsAt\":\"2026-12-03T07:04:05.5Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
        "\"generatorURL\":\"http://prom/graph\",\"fingerprint\":\"01\"}]}";
    struct cw_am_msg m;
    struct cw_buf out;
    char why[256];

    cw_buf_init(&out, 1u << 20);
    ck_assert_int_eq(cw_am_parse(body, strlen(body), &m, why, sizeof(why)), CW_OK);
    block(&out, &m, CW_LANG_ZH, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- 摘要: 网络层：invoice 的 tcp 检查失败\n"));
    ck_assert_ptr_null(strstr(cw_buf_str(&out), "failing"));
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- 级别: 严重\n"));
    cw_buf_clear(&out);
    ck_assert_int_eq(cw_tmpl_render(&out, "{{description}}", &m, &m.alerts[0], CW_LANG_ZH), CW_OK);
    ck_assert_str_eq(cw_buf_str(&out), "中文");
    block(&out, &m, CW_LANG_EN, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- summary: " NET_SUMMARY "\n"));
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- severity: critical\n"));
    cw_am_free(&m);
    msg_of(&m, NET_TIMEOUT, "", NET_SUMMARY);
    block(&out, &m, CW_LANG_ZH, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- 摘要: " NET_SUMMARY "\n"));
    cw_am_free(&m);
    cw_buf_reset(&out);
}
END_TEST

START_TEST(test_resolved_network_timeout_zh_en)
{
    struct cw_am_msg m;
    struct cw_buf out;

    cw_buf_init(&out, 1u << 20);
    msg_of(&m, NET_TIMEOUT, "2026-12-03T07:09:35Z", NET_SUMMARY);
    block(&out, &m, CW_LANG_ZH, "+08:00");
    ck_assert_str_eq(cw_buf_str(&out), "**ConnwatchNetworkCheckFailing** 已恢复\n\n"
                                       "- 服务: invoice\n"
                                       "- 目标: 10.0.0.5:8443\n"
                                       "- 层级: 网络层\n"
                                       "- 持续: 5 分钟 30 秒\n"
                                       "- 恢复时间: 2026-12-03 15:09:35 +08:00\n");
    block(&out, &m, CW_LANG_EN, "UTC");
    ck_assert_str_eq(cw_buf_str(&out), "**ConnwatchNetworkCheckFailing** RESOLVED\n\n"
                                       "- service: invoice\n"
                                       "- target: 10.0.0.5:8443\n"
                                       "- layer: network layer\n"
                                       "- lasted: 5m 30s\n"
                                       "- resolved: 2026-12-03 07:09:35 UTC\n");
    ck_assert_ptr_null(strstr(cw_buf_str(&out), "failing"));
    cw_am_free(&m);
    cw_buf_reset(&out);
}
END_TEST

START_TEST(test_cert_hostname_and_host_alert)
{
    struct cw_am_msg m;
    struct cw_buf out;

    cw_buf_init(&out, 1u << 20);
    msg_of(&m,
           "\"alertname\":\"ConnwatchTlsVerifyFailing\",\"severity\":\"critical\","
           "\"service\":\"invoice\",\"target\":\"invoice.example.com:443\",\"layer\":\"tls\","
           "\"reason\":\"cert_hostname\"",
           "", "verification fails");
    block(&out, &m, CW_LANG_ZH, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- 层级: TLS 层 (应用层/TLS)\n"
                                                   "- 原因: 证书与主机名不符\n"));
    block(&out, &m, CW_LANG_EN, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- layer: TLS layer\n"
                                                   "- reason: host name not in the "
                                                   "certificate\n"));
    cw_am_free(&m);
    /* A host alert has no target: the instance stands in, no reason line. */
    msg_of(&m,
           "\"alertname\":\"ConnwatchHostCpuHigh\",\"severity\":\"warning\","
           "\"instance\":\"db1:19367\",\"layer\":\"host\"",
           "", "CPU 92%");
    block(&out, &m, CW_LANG_ZH, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- 实例: db1:19367\n- 层级: 主机\n- 摘要: CPU"));
    ck_assert_ptr_null(strstr(cw_buf_str(&out), "目标"));
    ck_assert_ptr_null(strstr(cw_buf_str(&out), "原因"));
    cw_am_free(&m);
    cw_buf_reset(&out);
}
END_TEST

START_TEST(test_unknown_layer_and_reason_pass_through)
{
    struct cw_am_msg m;
    struct cw_buf out;

    cw_buf_init(&out, 1u << 20);
    msg_of(&m,
           "\"alertname\":\"X\",\"target\":\"t\",\"layer\":\"quantum\",\"reason\":\"cosmic_ray\"",
           "", "s");
    block(&out, &m, CW_LANG_ZH, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- 层级: quantum\n- 原因: cosmic_ray\n"));
    block(&out, &m, CW_LANG_EN, "UTC");
    ck_assert_ptr_nonnull(strstr(cw_buf_str(&out), "- layer: quantum\n- reason: cosmic_ray\n"));
    /* the raw values stay available, and the old placeholders still render */
    cw_buf_clear(&out);
    ck_assert_int_eq(cw_tmpl_render(&out,
                                    "{{layer}}|{{reason}}|{{target}}|{{instance}}|{{starts_at}}|"
                                    "{{label:reason}}",
                                    &m, &m.alerts[0], CW_LANG_ZH),
                     CW_OK);
    ck_assert_str_eq(cw_buf_str(&out), "quantum|cosmic_ray|t||2026-12-03 07:04:05 UTC|cosmic_ray");
    cw_am_free(&m);
    cw_buf_reset(&out);
}
END_TEST

/* SPEC.md: the values of the reason label (redirect_refused: README changelog, issue 11). */
static const char *const spec_reasons[] = {
    "dns",
    "refused",
    "timeout",
    "unreachable",
    "tls_handshake",
    "cert_expired",
    "cert_not_yet_valid",
    "cert_untrusted",
    "cert_hostname",
    "http_status",
    "auth",
    "protocol",
    "internal",
    "redirect_refused",
};

START_TEST(test_every_reason_explained)
{
    const char *zh = cw_reason_words(spec_reasons[_i], CW_LANG_ZH);
    const char *en = cw_reason_words(spec_reasons[_i], CW_LANG_EN);
    const char *p;
    bool cjk = false;

    ck_assert_str_ne(zh, spec_reasons[_i]);
    ck_assert_str_ne(en, spec_reasons[_i]);
    ck_assert_str_ne(zh, en);
    for (p = zh; *p != '\0'; p++)
        cjk = cjk || (unsigned char)*p >= 0xE4;
    ck_assert_msg(cjk, "zh text of %s is not Chinese: %s", spec_reasons[_i], zh);
    for (p = en; *p != '\0'; p++)
        ck_assert_msg((unsigned char)*p < 0x80, "en text of %s: %s", spec_reasons[_i], en);
    /* the placeholders are known to the configuration check */
    ck_assert(cw_tmpl_check("{{reason_text}} {{layer_text}} {{target}} {{reason}} {{duration}} "
                            "{{target_or_instance}} {{instance_if_no_target}} {{reason_short}}",
                            &(const char *){NULL}));
    ck_assert(cw_tmpl_check(cw_tmpl_default_resolved(CW_LANG_ZH), &(const char *){NULL}));
    ck_assert(cw_tmpl_check(cw_tmpl_default_resolved(CW_LANG_EN), &(const char *){NULL}));
    /* the short form fits one SMS value (35 characters) */
    {
        struct cw_am_msg m;
        struct cw_buf out;
        char labels[128];

        snprintf(labels, sizeof(labels), "\"reason\":\"%s\"", spec_reasons[_i]);
        msg_of(&m, labels, "", "s");
        cw_buf_init(&out, 4096);
        ck_assert_int_eq(cw_tmpl_render(&out, "{{reason_short}}", &m, &m.alerts[0], CW_LANG_EN),
                         CW_OK);
        ck_assert_uint_le(out.len, 35);
        ck_assert_ptr_null(strchr(cw_buf_str(&out), '('));
        ck_assert(strncmp(en, cw_buf_str(&out), out.len) == 0);
        cw_buf_reset(&out);
        cw_am_free(&m);
    }
}
END_TEST

static const char *at(const char *zone, const char *t)
{
    static char buf[128];
    struct cw_am_msg m;
    struct cw_buf out;
    struct cw_tz tz;
    struct cw_tmpl_opts o = {.tz = &tz};
    const char *why = NULL, *tmpl = "{{starts_at}}";
    char body[512], perr[256];

    ck_assert_msg(cw_tz_parse(zone, &tz, &why), "%s: %s", zone, why);
    snprintf(body, sizeof(body),
             "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\",\"groupKey\":\"g\","
             "\"alerts\":[{\"status\":\"firing\",\"labels\":{},\"startsAt\":\"%s\"}]}",
             t);
    ck_assert_int_eq(cw_am_parse(body, strlen(body), &m, perr, sizeof(perr)), CW_OK);
    cw_buf_init(&out, 4096);
    ck_assert_int_eq(cw_tmpl_render_opts(&out, tmpl, &m, &m.alerts[0], CW_LANG_ZH, &o), CW_OK);
    snprintf(buf, sizeof(buf), "%s", cw_buf_str(&out));
    cw_buf_reset(&out);
    cw_am_free(&m);
    return buf;
}

START_TEST(test_time_zone_wall_time)
{
    static const char *const bad[] = {"Mars/Olympus",     "+15:00", "+08:60", "08:00", "",
                                      "America/New_York", "+8",     "Local"};
    struct cw_tz tz;
    const char *why;
    size_t i;

    ck_assert_str_eq(at("UTC", "2026-12-03T07:04:05Z"), "2026-12-03 07:04:05 UTC");
    ck_assert_str_eq(at("+08:00", "2026-12-03T07:04:05Z"), "2026-12-03 15:04:05 +08:00");
    ck_assert_str_eq(at("Asia/Shanghai", "2026-12-03T07:04:05.123456Z"), "2026-12-03 15:04:05 CST");
    ck_assert_str_eq(at("Asia/Shanghai", "2026-12-31T20:00:00Z"), "2027-01-01 04:00:00 CST");
    ck_assert_str_eq(at("-0530", "2026-03-01T03:00:00Z"), "2026-02-28 21:30:00 -05:30");
    ck_assert_str_eq(at("UTC", "2026-12-03T15:04:05+08:00"), "2026-12-03 07:04:05 UTC");
    ck_assert_str_eq(at("UTC", "not a time"), "not a time");
    /* local: the process's zone, as the C library reads it (TZ, else /etc/localtime) */
    ck_assert_int_eq(setenv("TZ", "Asia/Shanghai", 1), 0);
    tzset();
    ck_assert_str_eq(at("local", "2026-12-03T07:04:05Z"), "2026-12-03 15:04:05 CST");
    for (i = 0; i < CW_ARRAY_LEN(bad); i++) {
        why = NULL;
        ck_assert_msg(!cw_tz_parse(bad[i], &tz, &why), "\"%s\" accepted", bad[i]);
        ck_assert_ptr_nonnull(why);
    }
}
END_TEST

static json_t *sms_params(const struct cw_am_msg *m, enum cw_lang lang, size_t *total)
{
    struct cw_tz tz;
    const char *why = NULL, *k;
    struct cw_sms_params p = {.value_max = 35, .total_max = 90, .lang = lang, .tz = &tz};
    struct cw_buf json;
    json_t *root, *v;

    ck_assert(cw_tz_parse("Asia/Shanghai", &tz, &why));
    cw_buf_init(&json, 1u << 16);
    ck_assert_int_eq(cw_sms_aliyun_params(&json, &p, m), CW_OK);
    root = json_loadb(json.data, json.len, 0, NULL);
    ck_assert_ptr_nonnull(root);
    *total = 0;
    json_object_foreach(root, k, v)
    {
        const char *s = json_string_value(v);

        ck_assert_ptr_nonnull(s);
        for (; *s != '\0'; s++)
            *total += ((unsigned char)*s & 0xC0) != 0x80;
    }
    cw_buf_reset(&json);
    return root;
}

static const char *param(json_t *root, const char *key)
{
    const char *s = json_string_value(json_object_get(root, key));

    ck_assert_ptr_nonnull(s);
    return s;
}

START_TEST(test_sms_texts_and_two_segments)
{
    /* Aliyun counts the signature and the template's own text too; a long
     * SMS is split into 67-character segments. A template such as
     * "${status}：${alertname} ${instance} ${summary}" under "【连接监控】". */
    const size_t fixed = strlen("【】") / 3 + strlen("连接监控") / 3 + 3, two = 2 * 67;
    struct cw_am_msg m;
    size_t total;
    json_t *p;
    char labels[1024], body[8192], why[256];
    int i;

    msg_of(&m, NET_TIMEOUT, "", NET_SUMMARY);
    p = sms_params(&m, CW_LANG_ZH, &total);
    ck_assert_str_eq(param(p, "status"), "告警");
    ck_assert_str_eq(param(p, "alertname"), "ConnwatchNetworkCheckFailing");
    ck_assert_str_eq(param(p, "instance"), "10.0.0.5:8443");
    ck_assert_str_eq(param(p, "summary"), "网络层 连接超时（可能是防火墙丢弃 SYN）");
    ck_assert_uint_le(total + fixed, two);
    json_decref(p);
    p = sms_params(&m, CW_LANG_EN, &total);
    ck_assert_str_eq(param(p, "summary"), "connection timed out");
    json_decref(p);
    cw_am_free(&m);

    msg_of(&m, NET_TIMEOUT, "2026-12-03T07:09:35Z", NET_SUMMARY);
    p = sms_params(&m, CW_LANG_ZH, &total);
    ck_assert_str_eq(param(p, "status"), "已恢复");
    ck_assert_str_eq(param(p, "summary"), "网络层 持续 5 分钟 30 秒");
    json_decref(p);
    cw_am_free(&m);

    /* No reason label: the summary, as before. */
    msg_of(&m, "\"alertname\":\"ConnwatchHostCpuHigh\",\"instance\":\"db1:19367\"", "", "CPU 92%");
    p = sms_params(&m, CW_LANG_ZH, &total);
    ck_assert_str_eq(param(p, "instance"), "db1:19367");
    ck_assert_str_eq(param(p, "summary"), "CPU 92%");
    json_decref(p);
    cw_am_free(&m);

    /* The worst case: every value long, several alerts. All values fit 90
     * characters together, {{more}} kept whole, still two segments. */
    snprintf(labels, sizeof(labels),
             "\"alertname\":\"ConnwatchHttpProbeFailingForAVeryLongServiceName\","
             "\"target\":\"https://invoice.example.com:8443/health/deep/check\","
             "\"layer\":\"tls\",\"reason\":\"cert_untrusted\"");
    {
        int off = snprintf(body, sizeof(body),
                           "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"r\","
                           "\"groupKey\":\"g\",\"alerts\":[");

        for (i = 0; i < 12; i++)
            off += snprintf(body + off, sizeof(body) - (size_t)off,
                            "%s{\"status\":\"firing\",\"labels\":{%s},\"annotations\":{}}",
                            i > 0 ? "," : "", labels);
        snprintf(body + off, sizeof(body) - (size_t)off, "]}");
    }
    ck_assert_int_eq(cw_am_parse(body, strlen(body), &m, why, sizeof(why)), CW_OK);
    p = sms_params(&m, CW_LANG_ZH, &total);
    ck_assert_uint_le(total, 90);
    ck_assert_uint_le(total + fixed, two);
    ck_assert_ptr_nonnull(strstr(param(p, "alertname"), "…另有11条"));
    ck_assert_str_eq(param(p, "status"), "告警");
    ck_assert_ptr_nonnull(strstr(param(p, "summary"), "TLS 层"));
    json_decref(p);
    cw_am_free(&m);
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("relay_text");
    TCase *tc = tcase_create("text");

    tcase_add_test(tc, test_firing_network_timeout_zh_en);
    tcase_add_test(tc, test_zh_summary_annotation);
    tcase_add_test(tc, test_resolved_network_timeout_zh_en);
    tcase_add_test(tc, test_cert_hostname_and_host_alert);
    tcase_add_test(tc, test_unknown_layer_and_reason_pass_through);
    tcase_add_loop_test(tc, test_every_reason_explained, 0, (int)CW_ARRAY_LEN(spec_reasons));
    tcase_add_test(tc, test_time_zone_wall_time);
    tcase_add_test(tc, test_sms_texts_and_two_segments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(text_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
