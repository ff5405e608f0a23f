/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_relay_sign.c - Check suite "relay_sign": the Aliyun RPC signature V1
 * against the known-answer vector of Aliyun's SendSms documentation, the
 * RFC 3986 percent-encoding rules it depends on, the DingTalk robot
 * signature against a value computed with python3's hmac/base64, and JSON
 * string escaping. Single-threaded.
 */
#include "alerts/relay/sign.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_aliyun_doc_vector)
{
    /* help.aliyun.com "SendSms signature" example: AccessKeySecret testSecret. */
    struct cw_kv kv[] = {
        {"AccessKeyId", "testId"},
        {"Action", "SendSms"},
        {"Format", "XML"},
        {"OutId", "123"},
        {"PhoneNumbers", "15300000001"},
        {"RegionId", "cn-hangzhou"},
        {"SignName", "阿里云短信测试专用"},
        {"SignatureMethod", "HMAC-SHA1"},
        {"SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"},
        {"SignatureVersion", "1.0"},
        {"TemplateCode", "SMS_71390007"},
        {"TemplateParam", "{\"customer\":\"test\"}"},
        {"Timestamp", "2017-07-12T02:42:19Z"},
        {"Version", "2017-05-25"},
    };
    struct cw_buf q, sts;

    /* shuffle: the function sorts */
    struct cw_kv t = kv[0];
    kv[0] = kv[13];
    kv[13] = t;
    cw_buf_init(&q, 1 << 20);
    cw_buf_init(&sts, 1 << 20);
    ck_assert_int_eq(cw_aliyun_sign(kv, CW_ARRAY_LEN(kv), "testSecret", &q, &sts), CW_OK);
    ck_assert_msg(strncmp(cw_buf_str(&q), "Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&", 45) == 0,
                  "got %s", cw_buf_str(&q));
    ck_assert_msg(strstr(cw_buf_str(&q), "&AccessKeyId=testId&Action=SendSms&Format=XML&") != NULL,
                  "query not sorted: %s", cw_buf_str(&q));
    ck_assert_msg(strstr(cw_buf_str(&q),
                         "SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95"
                         "%E4%B8%93%E7%94%A8") != NULL,
                  "SignName not UTF-8 percent-encoded: %s", cw_buf_str(&q));
    ck_assert(strncmp(cw_buf_str(&sts), "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms", 47) ==
              0);
    cw_buf_reset(&q);
    cw_buf_reset(&sts);
}
END_TEST

START_TEST(test_pct_encode_rules)
{
    struct cw_buf b;

    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_pct_encode(&b, "a b*c~d-_.+/=:é"), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "a%20b%2Ac~d-_.%2B%2F%3D%3A%C3%A9");
    cw_buf_reset(&b);
}
END_TEST

START_TEST(test_dingtalk_sign_vector)
{
    char out[128];

    /* python3: quote(b64encode(hmac.new(sec, ts+"\n"+sec, sha256).digest()), safe='') */
    ck_assert_int_eq(cw_dingtalk_sign("SEC0123456789abcdef", "1700000000000", out, sizeof(out)),
                     CW_OK);
    ck_assert_str_eq(out, "TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D");
    ck_assert_int_eq(cw_dingtalk_sign("SEC0123456789abcdef", "1700000000000", out, 8), CW_ETOOBIG);
}
END_TEST

START_TEST(test_json_escape)
{
    struct cw_buf b;
    const char s[] = "a\"b\\c\nd\x01é";

    cw_buf_init(&b, 4096);
    ck_assert_int_eq(cw_json_escape(&b, s, strlen(s)), CW_OK);
    ck_assert_str_eq(cw_buf_str(&b), "a\\\"b\\\\c\\nd\\u0001é");
    cw_buf_reset(&b);
}
END_TEST

static Suite *sign_suite(void)
{
    Suite *s = suite_create("relay_sign");
    TCase *tc = tcase_create("sign");

    tcase_add_test(tc, test_aliyun_doc_vector);
    tcase_add_test(tc, test_pct_encode_rules);
    tcase_add_test(tc, test_dingtalk_sign_vector);
    tcase_add_test(tc, test_json_escape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sign_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
