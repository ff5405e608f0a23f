/* SPDX-License-Identifier: Apache-2.0 */
/*
 * words.c - the plain words of connwatch's layers and failure reasons, in
 * Chinese and English: one table for every text a person reads (the
 * relay's pages, the health page, diagnose). See words.h.
 */
#include "words.h"

#include "err.h"

#include <string.h>

struct text_row {
    const char *key, *zh, *en;
};

/* The layer label of the bundled rules (alerts/rules/connwatch.rules.yml). */
static const struct text_row layers[] = {
    {"network", "网络层", "network layer"},
    {"tls", "TLS 层 (应用层/TLS)", "TLS layer"},
    {"http", "应用层 (HTTP)", "HTTP layer"},
    {"database", "数据库层", "database layer"},
    {"cache", "缓存层", "cache layer"},
    {"host", "主机", "host"},
    {"connwatch", "connwatch 自身", "connwatch itself"},
};

/* SPEC.md's reasons of connwatch_check_failure_info, one row each, and
 * redirect_refused (issue 11, /probe only). */
static const struct text_row reasons[] = {
    {"dns", "域名解析失败", "DNS lookup failed"},
    {"refused", "连接被拒绝（端口无服务监听）", "connection refused (nothing listens on the port)"},
    {"timeout", "连接超时（可能是防火墙丢弃 SYN）",
     "connection timed out (a firewall may be dropping SYNs)"},
    {"unreachable", "目标不可达（路由或防火墙拒绝）",
     "target unreachable (no route, or a firewall rejects)"},
    {"tls_handshake", "TLS 握手失败（协议或加密套件不匹配）",
     "TLS handshake failed (protocol or cipher mismatch)"},
    {"cert_expired", "证书已过期", "certificate expired"},
    {"cert_not_yet_valid", "证书尚未生效（检查时钟）",
     "certificate not yet valid (check the clock)"},
    {"cert_untrusted", "证书不受信任（自签名或未知 CA）",
     "certificate not trusted (self-signed or unknown CA)"},
    {"cert_hostname", "证书与主机名不符", "host name not in the certificate"},
    {"http_status", "HTTP 状态码异常", "unexpected HTTP status code"},
    {"auth", "认证失败", "authentication failed"},
    {"protocol", "协议错误（对端应答不符合协议）",
     "protocol error (the peer's answer does not follow the protocol)"},
    {"internal", "connwatch 内部错误", "internal error of connwatch"},
    {"redirect_refused", "重定向目标不在允许范围（probe.allow）",
     "redirect refused (outside probe.allow)"},
};

static const char *row_text(const struct text_row *rows, size_t n, const char *key,
                            enum cw_lang lang)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(rows[i].key, key) == 0)
            return lang == CW_LANG_ZH ? rows[i].zh : rows[i].en;
    }
    return key;
}

const char *cw_layer_words(const char *layer, enum cw_lang lang)
{
    return row_text(layers, CW_ARRAY_LEN(layers), layer, lang);
}

const char *cw_reason_words(const char *reason, enum cw_lang lang)
{
    return row_text(reasons, CW_ARRAY_LEN(reasons), reason, lang);
}
