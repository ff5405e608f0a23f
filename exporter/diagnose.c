/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diagnose.c - `connwatch diagnose` (diagnose.h).
 *
 * A target on the command line becomes a configuration text (a service
 * "diagnose" with a dns, icmp, tcp, tls and http / mysql / redis check, and
 * the host section) loaded by the daemon's own loader, so every option is
 * checked as in a file and the checks are the daemon's. With --config.file
 * and --service, the service's checks are taken from the file instead. All
 * checks run at once, each within its timeout; ICMP, Redis and the host then
 * run a second time about a second later (ICMP to count a few echoes, Redis
 * for a hit ratio over the lookups between, the host to have CPU ratios over
 * an interval), so the whole run takes about the longest timeout, a few
 * seconds even when everything times out.
 */
#include "diagnose.h"

#include "core/log.h"
#include "core/metric.h"
#include "health.h"
#include "instance.h"
#include "kinds.h"
#include "settings.h"
#include "version.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DX_DEFAULT_TIMEOUT "3s"
#define DX_SECOND_PASS     CW_MS(1200) /* ICMP echoes every 200 ms: ~5 by then */
#define DX_MAX_STEPS       64

/* ---- the judgement -------------------------------------------------------- */

const char *cw_dx_server_full(const struct cw_dx_step *s)
{
    return s->ok ? NULL : cw_server_full(s->kind, s->reason, s->error);
}

enum cw_layer cw_dx_step_layer(const struct cw_dx_step *s)
{
    if (cw_dx_server_full(s) != NULL)
        return s->layer; /* the port accepted; the server said no */
    if (s->ok)
        return s->over ? s->over_layer : s->layer;
    return cw_check_layer(&(struct cw_check_kind){.layer = s->layer}, s->reason);
}

static bool is_network_kind(const char *kind)
{
    return strcmp(kind, "dns") == 0 || strcmp(kind, "icmp") == 0 || strcmp(kind, "tcp") == 0;
}

struct cw_dx_verdict cw_dx_judge(struct cw_dx_step *steps, size_t n)
{
    struct cw_dx_verdict v = {.state = CW_DX_OK, .step = n};
    size_t broken = n; /* the first broken step */

    for (size_t i = 0; i < n; i++) {
        struct cw_dx_step *s = &steps[i];

        if (s->ok) {
            s->state = s->over ? CW_DX_DEGRADED : CW_DX_OK;
            continue;
        }
        s->state = CW_DX_BROKEN;
        if (strcmp(s->kind, "icmp") == 0) {
            /* Echoes unanswered while a connection over TCP works: ICMP is
             * filtered on the path; the target is not down. */
            for (size_t j = 0; j < n; j++) {
                if (j != i && steps[j].ok && strcmp(steps[j].kind, "dns") != 0 &&
                    strcmp(steps[j].kind, "icmp") != 0 && steps[j].layer != CW_LAYER_HOST) {
                    s->state = CW_DX_FILTERED;
                    break;
                }
            }
            if (s->state == CW_DX_FILTERED)
                continue;
        }
        if (broken < n && s->layer != CW_LAYER_HOST &&
            cw_dx_step_layer(s) <= cw_dx_step_layer(&steps[broken])) {
            s->state = CW_DX_NOT_REACHED;
            continue;
        }
        if (broken == n)
            broken = i;
    }
    if (broken < n && strcmp(steps[broken].kind, "icmp") == 0) {
        /* Echoes and a connection both lost: the connection's failure says
         * more (its port, refused or dropped) than the echoes'. */
        for (size_t i = broken + 1; i < n; i++) {
            if (steps[i].state == CW_DX_NOT_REACHED && !is_network_kind(steps[i].kind))
                continue;
            if (steps[i].state == CW_DX_NOT_REACHED && strcmp(steps[i].kind, "tcp") == 0) {
                steps[i].state = CW_DX_BROKEN;
                broken = i;
                break;
            }
        }
    }
    if (broken < n) {
        v.state = CW_DX_BROKEN;
        v.step = broken;
        return v;
    }
    for (size_t i = 0; i < n; i++) {
        if (steps[i].state == CW_DX_DEGRADED) {
            v.state = CW_DX_DEGRADED;
            v.step = i;
            break;
        }
    }
    return v;
}

int cw_dx_exit_code(const struct cw_dx_verdict *v)
{
    switch (v->state) {
    case CW_DX_BROKEN:
    case CW_DX_NOT_REACHED:
        return CW_DX_EXIT_BROKEN;
    case CW_DX_DEGRADED:
        return CW_DX_EXIT_DEGRADED;
    default:
        return CW_DX_EXIT_OK;
    }
}

int cw_dx_cause(struct cw_buf *out, const struct cw_dx_step *s, enum cw_lang lang)
{
    bool zh = lang == CW_LANG_ZH;

    const char *full = cw_dx_server_full(s);

    switch (s->state) {
    case CW_DX_BROKEN:
    case CW_DX_NOT_REACHED:
        if (strcmp(s->kind, "icmp") == 0 && s->reason == CW_REASON_TIMEOUT)
            return cw_buf_adds(out,
                               zh ? "没有回显应答（主机未运行，或防火墙丢弃 ICMP）"
                                  : "no echo replies (the host is down, or a firewall drops ICMP)");
        if (full != NULL)
            return cw_buf_adds(out, cw_server_full_words(full, lang));
        return cw_buf_adds(out, cw_reason_words(cw_reason_label(s->reason), lang));
    case CW_DX_FILTERED:
        return cw_buf_adds(out,
                           zh ? "ICMP 被过滤：没有回显应答，但 TCP 连接正常（不是宕机）"
                              : "ICMP filtered: no echo replies while TCP connects (not down)");
    case CW_DX_DEGRADED:
        return cw_buf_addf(out, "%s%s",
                           zh ? "超过告警阈值：" : "over the alert threshold: ", s->over_text);
    default:
        return CW_OK;
    }
}

/* The advice, by reason (or state) and kind. %H host, %P port, %N TLS
 * server name, %U URL, %u MySQL user. */
struct advice {
    enum cw_reason reason; /* CW_REASON_NONE: for a degraded step */
    const char *kind;      /* NULL: any kind */
    const char *cmd;
    const char *en, *zh;
};

static const struct advice advice[] = {
    {CW_REASON_DNS, NULL, "getent ahosts %H; grep nameserver /etc/resolv.conf",
     "does the name resolve, and through which server?", "名称能否解析、由哪台 DNS 服务器解析？"},
    {CW_REASON_REFUSED, NULL, "ss -ltnp 'sport = :%P'",
     "on %H: is the service running and listening on %P?", "在 %H 上：服务是否在运行并监听 %P？"},
    {CW_REASON_TIMEOUT, "icmp", "mtr -rwc 20 %H; nft list ruleset | grep -n icmp",
     "where on the path the echoes stop, and the rules about ICMP",
     "回显在路径上的哪一跳中断，以及与 ICMP 有关的规则"},
    {CW_REASON_TIMEOUT, NULL, "nft list ruleset | grep -n -w %P; traceroute -T -p %P %H",
     "a firewall dropping the SYNs, or a route that goes nowhere", "防火墙丢弃了 SYN，或路由不通"},
    {CW_REASON_UNREACHABLE, NULL, "ip route get %H; nft list ruleset | grep -n reject",
     "no route to the host, or a firewall REJECT rule", "没有到该主机的路由，或防火墙 REJECT 规则"},
    {CW_REASON_TLS_HANDSHAKE, NULL, "openssl s_client -connect %H:%P -servername %N </dev/null",
     "which protocol versions and ciphers does the server offer?",
     "服务器支持哪些协议版本和加密套件？"},
    {CW_REASON_CERT_EXPIRED, NULL,
     "openssl s_client -connect %H:%P -servername %N </dev/null 2>/dev/null | openssl x509 -noout "
     "-dates",
     "renew the certificate and reload the server", "续期证书并重新加载服务"},
    {CW_REASON_CERT_NOT_YET_VALID, NULL,
     "openssl s_client -connect %H:%P -servername %N </dev/null 2>/dev/null | openssl x509 -noout "
     "-dates; date -u",
     "is a clock wrong (this host's or the server's)?", "是否有一端的时钟不对（本机或服务器）？"},
    {CW_REASON_CERT_UNTRUSTED, NULL,
     "openssl s_client -connect %H:%P -servername %N -showcerts </dev/null",
     "a self-signed certificate, or a missing intermediate?", "自签名证书，或缺少中间证书？"},
    {CW_REASON_CERT_HOSTNAME, NULL,
     "openssl s_client -connect %H:%P -servername %N </dev/null 2>/dev/null | openssl x509 -noout "
     "-subject -ext subjectAltName",
     "the names the certificate is for, against %N", "证书包含的名称，与 %N 对比"},
    {CW_REASON_HTTP_STATUS, NULL, "curl -sv -o /dev/null %U",
     "the status, and which server or gateway answered it", "状态码，以及由哪台服务器或网关返回"},
    {CW_REASON_AUTH, "mysql", "mysql -h %H -P %P -u %u -p -e 'SELECT 1'",
     "does the user exist for this client host, with this password?",
     "该用户是否允许从本机登录、密码是否正确？"},
    {CW_REASON_AUTH, "redis", "redis-cli -h %H -p %P --askpass PING",
     "the password (and user) the server expects", "服务器要求的密码（和用户）"},
    {CW_REASON_AUTH, NULL, "curl -sv -o /dev/null %U", "the credentials the server expects",
     "服务器要求的凭据"},
    {CW_REASON_PROTOCOL, "mysql", "mysql -h %H -P %P -u %u -p -e 'SHOW PROCESSLIST'",
     "refused clients (max_connections) or a server in trouble?",
     "是否因 max_connections 拒绝客户端，或服务器异常？"},
    {CW_REASON_PROTOCOL, "redis", "redis-cli -h %H -p %P INFO clients",
     "refused clients (maxclients) or not a Redis server?",
     "是否因 maxclients 拒绝客户端，或对端不是 Redis？"},
    {CW_REASON_PROTOCOL, "http", "curl -sv -o /dev/null %U", "what answers on the port?",
     "端口上应答的是什么服务？"},
    {CW_REASON_PROTOCOL, NULL, "openssl s_client -connect %H:%P </dev/null",
     "what answers on the port?", "端口上应答的是什么服务？"},
    {CW_REASON_INTERNAL, NULL, "connwatch diagnose --log.level=debug ...",
     "connwatch itself failed: see the error above", "connwatch 自身出错：见上面的错误"},
    {CW_REASON_NONE, "icmp", "mtr -rwc 50 %H", "where on the path the loss or latency starts",
     "丢包或延迟从路径上的哪一跳开始"},
    {CW_REASON_NONE, "tcp", "ss -ti dst %H", "the kernel's RTT and retransmits to the host",
     "内核到该主机的 RTT 与重传"},
    {CW_REASON_NONE, "tls",
     "openssl s_client -connect %H:%P -servername %N </dev/null 2>/dev/null | openssl x509 -noout "
     "-dates; date -u",
     "renew the certificate before it expires; compare the clocks",
     "在过期前续期证书；核对两端时钟"},
    {CW_REASON_NONE, "http",
     "openssl s_client -connect %H:%P -servername %N </dev/null 2>/dev/null | openssl x509 -noout "
     "-dates; date -u",
     "renew the certificate before it expires; compare the clocks",
     "在过期前续期证书；核对两端时钟"},
    {CW_REASON_NONE, "mysql", "mysql -h %H -P %P -u %u -p -e 'SHOW FULL PROCESSLIST'",
     "who holds the connections (keep 15-20 % headroom)", "谁占用了连接（保留 15–20% 余量）"},
    {CW_REASON_NONE, "redis", "redis-cli -h %H -p %P INFO stats",
     "keyspace hits and misses, evictions: a cold or too small cache?",
     "命中/未命中与淘汰：缓存是否冷启动或容量不足？"},
    {CW_REASON_NONE, "host", "top -b -n 1 | head -20; ss -s",
     "what uses the CPU, and how many connections are open", "谁在占用 CPU，打开了多少连接"},
};

/* put_subst() appends 'text' with the %-letters replaced. */
static int put_subst(struct cw_buf *out, const char *text, const struct cw_dx_step *s,
                     const struct cw_dx_context *ctx)
{
    int rc = CW_OK;

    for (const char *p = text; *p != '\0' && rc == CW_OK; p++) {
        const char *v = NULL;

        if (p[0] == '%' && p[1] != '\0') {
            switch (p[1]) {
            case 'H':
                v = s->host[0] != '\0' ? s->host : "HOST";
                break;
            case 'P':
                v = s->port[0] != '\0' ? s->port : "PORT";
                break;
            case 'N':
                v = ctx->server_name != NULL && ctx->server_name[0] != '\0' ? ctx->server_name
                    : s->host[0] != '\0'                                    ? s->host
                                                                            : "NAME";
                break;
            case 'U':
                v = ctx->url != NULL && ctx->url[0] != '\0' ? ctx->url : s->target;
                break;
            case 'u':
                v = ctx->user != NULL && ctx->user[0] != '\0' ? ctx->user : "USER";
                break;
            default:
                break;
            }
        }
        if (v != NULL) {
            rc = cw_buf_adds(out, v);
            p++;
        } else {
            rc = cw_buf_addc(out, *p);
        }
    }
    return rc;
}

int cw_dx_next(struct cw_buf *out, const struct cw_dx_step *s, const struct cw_dx_context *ctx,
               enum cw_lang lang)
{
    enum cw_reason want;
    int rc = CW_OK;

    if (s->state == CW_DX_BROKEN)
        want = cw_dx_server_full(s) != NULL ? CW_REASON_PROTOCOL : s->reason; /* who holds them */
    else if (s->state == CW_DX_DEGRADED)
        want = CW_REASON_NONE;
    else
        return CW_OK;
    for (size_t i = 0; i < sizeof(advice) / sizeof(advice[0]); i++) {
        const struct advice *a = &advice[i];

        if (a->reason != want || (a->kind != NULL && strcmp(a->kind, s->kind) != 0))
            continue;
        rc |= put_subst(out, a->cmd, s, ctx);
        rc |= cw_buf_adds(out, "   # ");
        rc |= put_subst(out, lang == CW_LANG_ZH ? a->zh : a->en, s, ctx);
        return rc == CW_OK ? CW_OK : cw_buf_error(out);
    }
    return CW_OK;
}

bool cw_dx_split_address(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *p = addr, *end, *colon = NULL;
    const char *defport = "";
    const char *scheme = strstr(addr, "://");
    size_t n;

    host[0] = '\0';
    port[0] = '\0';
    if (scheme != NULL) {
        static const struct {
            const char *scheme, *port;
        } ports[] = {{"http", "80"},
                     {"https", "443"},
                     {"redis", "6379"},
                     {"rediss", "6379"},
                     {"mysql", "3306"}};
        const char *at;

        for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
            if ((size_t)(scheme - addr) == strlen(ports[i].scheme) &&
                strncmp(addr, ports[i].scheme, strlen(ports[i].scheme)) == 0)
                defport = ports[i].port;
        }
        p = scheme + 3;
        end = p + strcspn(p, "/?#");
        at = memchr(p, '@', (size_t)(end - p));
        if (at != NULL)
            p = at + 1;
    } else {
        end = p + strlen(p);
    }
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));

        if (close == NULL)
            return false;
        n = (size_t)(close - p - 1);
        if (n >= hostlen)
            return false;
        memcpy(host, p + 1, n);
        host[n] = '\0';
        if (close + 1 < end && close[1] == ':')
            colon = close + 1;
    } else {
        const char *c = memchr(p, ':', (size_t)(end - p));

        /* Two colons without brackets: an IPv6 literal without a port. */
        if (c != NULL && memchr(c + 1, ':', (size_t)(end - c - 1)) != NULL)
            c = NULL;
        n = (size_t)((c != NULL ? c : end) - p);
        if (n >= hostlen)
            return false;
        memcpy(host, p, n);
        host[n] = '\0';
        colon = c;
    }
    if (colon != NULL && (size_t)(end - colon - 1) < portlen) {
        memcpy(port, colon + 1, (size_t)(end - colon - 1));
        port[end - colon - 1] = '\0';
    }
    if (port[0] == '\0' && strlen(defport) < portlen)
        snprintf(port, portlen, "%s", defport);
    return host[0] != '\0';
}

/* ---- the command ------------------------------------------------------------ */

struct dx_opts {
    const char *target;
    const char *kind; /* --kind; NULL: from the target */
    const char *user, *password_file, *server_name, *ca_file, *timeout;
    const char *config_file, *service, *lang_flag;
    bool insecure, json, no_icmp, no_host;
    enum cw_log_level log_level;
};

static void dx_usage(FILE *f)
{
    fputs("usage: connwatch diagnose TARGET [flags]\n"
          "       connwatch diagnose --config.file=PATH --service=NAME [flags]\n"
          "\n"
          "Checks the layers behind TARGET now, in order (DNS, ICMP, TCP, TLS, then HTTP or\n"
          "the MySQL / Redis protocol, and this host), prints one line per layer and a\n"
          "verdict: the broken layer, its likely cause and the next command to confirm it.\n"
          "\n"
          "TARGET: https://HOST[:PORT]/PATH, http://..., redis://HOST[:PORT],\n"
          "        mysql://[USER@]HOST[:PORT], HOST:PORT (--kind tcp, tls, mysql or redis),\n"
          "        or HOST (DNS and ICMP only)\n"
          "\n"
          "flags:\n"
          "  --kind=KIND             tcp (default for HOST:PORT), tls, http, mysql or redis\n"
          "  --user=NAME             MySQL user (default monitor)\n"
          "  --password-file=PATH    MySQL or Redis password\n"
          "  --server-name=NAME      TLS server name (SNI and verification; default the host)\n"
          "  --ca-file=PATH          CA bundle for TLS verification\n"
          "  --insecure-skip-verify  do not verify the TLS certificate\n"
          "  --timeout=DURATION      deadline of each check (default " DX_DEFAULT_TIMEOUT ")\n"
          "  --config.file=PATH      take the checks of --service from this configuration\n"
          "  --service=NAME          the service whose checks to run (with --config.file)\n"
          "  --no-icmp, --no-host    leave out the ICMP echoes, this host's figures\n"
          "  --lang=zh|en            language (default: from LC_ALL, LC_MESSAGES, LANG)\n"
          "  --json                  print one JSON document instead of text\n"
          "  --log.level=LEVEL       log of the checks on stderr (default error)\n"
          "\n"
          "exit codes: 0 every layer ok, 1 degraded, 2 usage or configuration error,\n"
          "            3 broken\n",
          f);
}

static const char *flag_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static int dx_parse(int argc, char **argv, struct dx_opts *o)
{
    struct {
        const char *name;
        const char **dst;
    } valued[] = {
        {"--kind", &o->kind},
        {"--user", &o->user},
        {"--password-file", &o->password_file},
        {"--server-name", &o->server_name},
        {"--ca-file", &o->ca_file},
        {"--timeout", &o->timeout},
        {"--config.file", &o->config_file},
        {"--service", &o->service},
        {"--lang", &o->lang_flag},
    };
    const char *level = NULL;

    o->log_level = CW_LOG_ERROR;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        bool known = false;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            dx_usage(stdout);
            return 0;
        }
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]) && !known; k++) {
            v = flag_value(argc, argv, &i, valued[k].name);
            if (v != NULL) {
                *valued[k].dst = v;
                known = true;
            }
        }
        if (!known) {
            v = flag_value(argc, argv, &i, "--log.level");
            if (v != NULL) {
                level = v;
                known = true;
            }
        }
        if (!known && strcmp(a, "--insecure-skip-verify") == 0)
            known = o->insecure = true;
        if (!known && strcmp(a, "--json") == 0)
            known = o->json = true;
        if (!known && strcmp(a, "--no-icmp") == 0)
            known = o->no_icmp = true;
        if (!known && strcmp(a, "--no-host") == 0)
            known = o->no_host = true;
        if (!known && a[0] != '-' && o->target == NULL) {
            o->target = a;
            known = true;
        }
        if (!known) {
            fprintf(stderr,
                    "connwatch diagnose: unknown flag or extra argument \"%s\" (see --help)\n", a);
            return CW_DX_EXIT_USAGE;
        }
    }
    if (level != NULL && cw_log_level_parse(level, &o->log_level) != CW_OK) {
        fprintf(stderr,
                "connwatch diagnose: --log.level: \"%s\" is not debug, info, warn or error\n",
                level);
        return CW_DX_EXIT_USAGE;
    }
    if (o->lang_flag != NULL && strcmp(o->lang_flag, "zh") != 0 &&
        strcmp(o->lang_flag, "en") != 0) {
        fprintf(stderr, "connwatch diagnose: --lang: \"%s\" is not zh or en\n", o->lang_flag);
        return CW_DX_EXIT_USAGE;
    }
    if (o->timeout != NULL) {
        cw_duration d;

        if (cw_duration_parse(o->timeout, &d) != CW_OK || d <= 0) {
            fprintf(stderr,
                    "connwatch diagnose: --timeout: \"%s\" is not a duration (use e.g. 3s, "
                    "500ms)\n",
                    o->timeout);
            return CW_DX_EXIT_USAGE;
        }
    }
    if ((o->config_file == NULL) == (o->target == NULL) ||
        (o->config_file != NULL) != (o->service != NULL)) {
        fprintf(stderr, "connwatch diagnose: give a TARGET, or --config.file with --service "
                        "(see --help)\n");
        return CW_DX_EXIT_USAGE;
    }
    return -1;
}

static enum cw_lang dx_lang(const struct dx_opts *o)
{
    static const char *const vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};

    if (o->lang_flag != NULL)
        return strcmp(o->lang_flag, "zh") == 0 ? CW_LANG_ZH : CW_LANG_EN;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);

        if (v != NULL && v[0] != '\0')
            return strncmp(v, "zh", 2) == 0 ? CW_LANG_ZH : CW_LANG_EN;
    }
    return CW_LANG_EN;
}

/* yq() appends 's' as a double-quoted YAML scalar. */
static int yq(struct cw_buf *b, const char *s)
{
    int rc = cw_buf_addc(b, '"');

    for (; *s != '\0' && rc == CW_OK; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            rc = cw_buf_addf(b, "\\%c", c);
        else if (c < 0x20)
            rc = cw_buf_addf(b, "\\x%02x", c);
        else
            rc = cw_buf_addc(b, (char)c);
    }
    return rc | cw_buf_addc(b, '"');
}

/* yopt() appends ", KEY: VALUE" when value is set. */
static int yopt(struct cw_buf *b, const char *key, const char *value)
{
    if (value == NULL)
        return CW_OK;
    return cw_buf_addf(b, ", %s: ", key) | yq(b, value);
}

static bool ip_literal(const char *host)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* dx_config() writes the configuration of a command-line target. */
static int dx_config(struct cw_buf *b, const struct dx_opts *o, char *err, size_t errlen)
{
    char host[256], port[8], hostport[300];
    const char *kind = o->kind;
    const char *t = o->target;
    bool tls;
    int rc = CW_OK;

    if (has_prefix(t, "http://") || has_prefix(t, "https://"))
        kind = kind != NULL ? kind : "http";
    else if (has_prefix(t, "redis://"))
        kind = kind != NULL ? kind : "redis";
    else if (has_prefix(t, "mysql://"))
        kind = kind != NULL ? kind : "mysql";
    else if (strstr(t, "://") != NULL) {
        snprintf(err, errlen, "\"%s\": the scheme is not http, https, redis or mysql", t);
        return CW_EINVAL;
    }
    if (!cw_dx_split_address(t, host, sizeof(host), port, sizeof(port))) {
        snprintf(err, errlen, "\"%s\": no host in the target", t);
        return CW_EINVAL;
    }
    if (kind == NULL && port[0] != '\0')
        kind = "tcp";
    if (kind != NULL && strcmp(kind, "tcp") != 0 && strcmp(kind, "tls") != 0 &&
        strcmp(kind, "http") != 0 && strcmp(kind, "mysql") != 0 && strcmp(kind, "redis") != 0) {
        snprintf(err, errlen, "--kind: \"%s\" is not tcp, tls, http, mysql or redis", kind);
        return CW_EINVAL;
    }
    if (kind != NULL && strcmp(kind, "http") == 0 && strstr(t, "://") == NULL) {
        snprintf(err, errlen, "\"%s\": an http check needs a URL (http:// or https://)", t);
        return CW_EINVAL;
    }
    if (kind != NULL && port[0] == '\0') {
        snprintf(err, errlen, "\"%s\": a %s check needs a port (HOST:PORT)", t, kind);
        return CW_EINVAL;
    }
    if (strchr(host, ':') != NULL)
        snprintf(hostport, sizeof(hostport), "[%s]:%s", host, port);
    else
        snprintf(hostport, sizeof(hostport), "%s:%s", host, port);
    tls = kind != NULL && (strcmp(kind, "tls") == 0 || has_prefix(t, "https://"));

    rc |= cw_buf_adds(b, "global: {interval: ");
    rc |= yq(b, o->timeout);
    rc |= cw_buf_adds(b, ", timeout: ");
    rc |= yq(b, o->timeout);
    rc |= cw_buf_adds(b, "}\n");
    rc |= cw_buf_addf(b, "host: {enabled: %s}\n", o->no_host ? "false" : "true");
    rc |= cw_buf_adds(b, "services:\n  - name: diagnose\n    checks:\n");
    if (!ip_literal(host)) {
        rc |= cw_buf_adds(b, "      - dns: {name: ");
        rc |= yq(b, host);
        rc |= cw_buf_adds(b, "}\n");
    }
    if (!o->no_icmp) {
        rc |= cw_buf_adds(b, "      - icmp: {target: ");
        rc |= yq(b, host);
        rc |= cw_buf_adds(b, ", probe_interval: 200ms, probe_timeout: 600ms}\n");
    }
    if (kind == NULL)
        return rc;
    rc |= cw_buf_adds(b, "      - tcp: {target: ");
    rc |= yq(b, hostport);
    rc |= cw_buf_adds(b, "}\n");
    if (tls) {
        rc |= cw_buf_adds(b, "      - tls: {target: ");
        rc |= yq(b, hostport);
        rc |= yopt(b, "server_name", o->server_name);
        rc |= yopt(b, "ca_file", o->ca_file);
        if (o->insecure)
            rc |= cw_buf_adds(b, ", insecure_skip_verify: true");
        rc |= cw_buf_adds(b, "}\n");
    }
    if (strcmp(kind, "http") == 0) {
        rc |= cw_buf_adds(b, "      - http: {url: ");
        rc |= yq(b, t);
        rc |= yopt(b, "server_name", o->server_name);
        rc |= yopt(b, "ca_file", o->ca_file);
        if (o->insecure)
            rc |= cw_buf_adds(b, ", insecure_skip_verify: true");
        rc |= cw_buf_adds(b, "}\n");
    } else if (strcmp(kind, "mysql") == 0 || strcmp(kind, "redis") == 0) {
        const char *at = strchr(t, '@');
        char user[128] = "monitor";

        if (has_prefix(t, "mysql://") && at != NULL && (size_t)(at - t - 8) < sizeof(user)) {
            memcpy(user, t + 8, (size_t)(at - t - 8));
            user[at - t - 8] = '\0';
        }
        rc |= cw_buf_addf(b, "      - %s: {address: ", kind);
        rc |= yq(b, hostport);
        if (strcmp(kind, "mysql") == 0)
            rc |= yopt(b, "user", o->user != NULL ? o->user : user);
        rc |= yopt(b, "password_file", o->password_file);
        rc |= cw_buf_adds(b, "}\n");
    }
    return rc;
}

/* ---- running the checks ------------------------------------------------------ */

struct dx_run {
    struct cw_instance *in; /* borrowed from the settings */
    pthread_t thread;
    bool started;
};

static void *dx_thread(void *arg)
{
    struct dx_run *r = arg;

    cw_instance_execute(r->in);
    return NULL;
}

/* dx_run_all() runs the instances of 'runs' for which 'pick' holds, each on
 * its own thread, and waits for them. */
static void dx_run_all(struct dx_run *runs, size_t n, bool (*pick)(const struct cw_instance *))
{
    for (size_t i = 0; i < n; i++) {
        runs[i].started = pick == NULL || pick(runs[i].in);
        if (runs[i].started && pthread_create(&runs[i].thread, NULL, dx_thread, &runs[i]) != 0) {
            cw_instance_execute(runs[i].in); /* no thread: run it here */
            runs[i].started = false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (runs[i].started)
            pthread_join(runs[i].thread, NULL);
    }
}

static bool needs_second_pass(const struct cw_instance *in)
{
    /* redis: its hit ratio is over the lookups between two runs */
    return strcmp(in->kind->name, "icmp") == 0 || strcmp(in->kind->name, "redis") == 0 ||
           in->kind->layer == CW_LAYER_HOST;
}

/* The order of the layers: what a connection goes through first. */
static int kind_rank(const struct cw_check_kind *k)
{
    static const char *const order[] = {"dns", "icmp", "tcp", "tls", "tls_file"};

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        if (strcmp(order[i], k->name) == 0)
            return (int)i;
    }
    return k->layer == CW_LAYER_HOST ? 10 : 5;
}

static int cmp_rank(const void *a, const void *b)
{
    const struct dx_run *x = a, *y = b;
    int d = kind_rank(x->in->kind) - kind_rank(y->in->kind);

    return d != 0 ? d : (x->in->line > y->in->line) - (x->in->line < y->in->line);
}

static void dx_step(struct cw_dx_step *s, struct cw_instance *in, enum cw_lang lang)
{
    struct cw_instance_status st;
    struct cw_batch *b = cw_instance_snapshot(in);
    struct cw_buf fig;

    cw_instance_status(in, &st);
    memset(s, 0, sizeof(*s));
    s->kind = in->kind->name;
    s->layer = in->kind->layer;
    snprintf(s->target, sizeof(s->target), "%s", st.target);
    if (st.address != NULL)
        (void)cw_dx_split_address(st.address, s->host, sizeof(s->host), s->port, sizeof(s->port));
    s->ok = st.has_run && st.reason == CW_REASON_NONE;
    s->reason = st.has_run ? st.reason : CW_REASON_INTERNAL;
    snprintf(s->error, sizeof(s->error), "%s", st.has_run ? st.last_error : "no result");
    s->took = st.last_took;
    cw_buf_init(&fig, sizeof(s->figures) - 1);
    if (cw_health_figures(&fig, s->kind, b, time(NULL), lang, 0, &s->over) == CW_OK)
        snprintf(s->figures, sizeof(s->figures), "%s", cw_buf_str(&fig));
    s->over_layer = cw_health_over_layer(s->kind, b, time(NULL), s->layer);
    cw_buf_clear(&fig);
    if (cw_health_figures(&fig, s->kind, b, time(NULL), lang, CW_FIG_ONLY_OVER, NULL) == CW_OK)
        snprintf(s->over_text, sizeof(s->over_text), "%s", cw_buf_str(&fig));
    cw_buf_reset(&fig);
    cw_batch_unref(b);
}

/* ---- output ------------------------------------------------------------------ */

static const char *state_words(enum cw_dx_state st, enum cw_lang lang)
{
    static const char *const en[] = {"ok", "filtered", "degraded", "not reached", "broken"};
    static const char *const zh[] = {"正常", "被过滤", "降级", "未到达", "故障"};

    return lang == CW_LANG_ZH ? zh[st] : en[st];
}

static const char *state_key(enum cw_dx_state st)
{
    static const char *const key[] = {"ok", "filtered", "degraded", "not_reached", "broken"};

    return key[st];
}

static const char *layer_column(enum cw_layer l, enum cw_lang lang)
{
    return lang == CW_LANG_ZH ? cw_layer_words(cw_layer_label(l), lang) : cw_layer_label(l);
}

/* print_padded() prints 's' left-aligned in 'width' terminal columns (CJK
 * characters take two). */
static void print_padded(const char *s, int width)
{
    int w = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p & 0xC0) != 0x80)
            w += *p >= 0xE0 ? 2 : 1;
    }
    printf("%s%*s", s, w < width ? width - w : 1, "");
}

static void print_text(const char *what, struct cw_dx_step *steps, size_t n,
                       const struct cw_dx_verdict *v, const struct cw_dx_context *ctx,
                       enum cw_lang lang)
{
    bool zh = lang == CW_LANG_ZH;
    struct cw_buf b;

    cw_buf_init(&b, 1 << 16);
    printf("connwatch diagnose %s\n", what);
    for (size_t i = 0; i < n; i++) {
        const struct cw_dx_step *s = &steps[i];

        printf("  ");
        print_padded(layer_column(s->layer, lang), lang == CW_LANG_ZH ? 20 : 10);
        printf("%-8s ", s->kind);
        print_padded(state_words(s->state, lang), 12);
        printf("%8.1f ms  %s", (double)s->took / 1e6, s->target);
        if (s->figures[0] != '\0')
            printf("  %s", s->figures);
        if (!s->ok) {
            /* the cause as the verdict says it (a full server, no echoes) */
            cw_buf_clear(&b);
            if (s->state == CW_DX_FILTERED || cw_dx_cause(&b, s, lang) != CW_OK)
                cw_buf_clear(&b);
            printf("\n      -> %s: %s",
                   b.len > 0 ? cw_buf_str(&b) : cw_reason_words(cw_reason_label(s->reason), lang),
                   s->error);
        }
        printf("\n");
    }
    if (v->state == CW_DX_OK) {
        printf("%s %s\n", zh ? "结论：" : "verdict:", zh ? "各层正常" : "every layer is ok");
    } else {
        const struct cw_dx_step *s = &steps[v->step];

        cw_buf_clear(&b);
        (void)cw_dx_cause(&b, s, lang);
        printf("%s %s — %s (%s%s%s): %s\n", zh ? "结论：" : "verdict:", state_words(v->state, lang),
               cw_layer_words(cw_layer_label(cw_dx_step_layer(s)), lang), s->kind,
               s->target[0] != '\0' ? " " : "", s->target, cw_buf_str(&b));
        cw_buf_clear(&b);
        if (cw_dx_next(&b, s, ctx, lang) == CW_OK && b.len > 0)
            printf("%s %s\n", zh ? "下一步：" : "next:   ", cw_buf_str(&b));
    }
    for (size_t i = 0; i < n; i++) {
        if (steps[i].state == CW_DX_FILTERED) {
            cw_buf_clear(&b);
            (void)cw_dx_cause(&b, &steps[i], lang);
            printf("%s %s\n", zh ? "注意：" : "note:   ", cw_buf_str(&b));
        }
    }
    cw_buf_reset(&b);
}

static void json_set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_string(v));
}

static int print_json(const char *what, struct cw_dx_step *steps, size_t n,
                      const struct cw_dx_verdict *v, const struct cw_dx_context *ctx,
                      enum cw_lang lang)
{
    json_t *doc = json_object(), *arr = json_array(), *vd = json_object();
    struct cw_buf b;
    char *text;

    cw_buf_init(&b, 1 << 16);
    if (doc == NULL || arr == NULL || vd == NULL) {
        json_decref(doc), json_decref(arr), json_decref(vd);
        return CW_ENOMEM;
    }
    json_set_str(doc, "target", what);
    json_set_str(doc, "lang", lang == CW_LANG_ZH ? "zh" : "en");
    for (size_t i = 0; i < n; i++) {
        const struct cw_dx_step *s = &steps[i];
        json_t *o = json_object();

        if (o == NULL)
            continue;
        json_set_str(o, "layer", cw_layer_label(s->layer));
        json_set_str(o, "check", s->kind);
        json_set_str(o, "target", s->target);
        json_set_str(o, "state", state_key(s->state));
        json_set_str(o, "reason", cw_reason_label(s->reason));
        cw_buf_clear(&b);
        (void)cw_dx_cause(&b, s, lang);
        json_set_str(o, "cause", cw_buf_str(&b));
        json_set_str(o, "error", s->ok ? "" : s->error);
        json_set_str(o, "figures", s->figures);
        json_object_set_new(o, "took_seconds", json_real((double)s->took / 1e9));
        json_array_append_new(arr, o);
    }
    json_object_set_new(doc, "steps", arr);
    json_set_str(vd, "state", state_key(v->state));
    if (v->step < n) {
        const struct cw_dx_step *s = &steps[v->step];

        json_set_str(vd, "layer", cw_layer_label(cw_dx_step_layer(s)));
        json_set_str(vd, "check", s->kind);
        json_set_str(vd, "target", s->target);
        json_set_str(vd, "reason", s->ok ? "" : cw_reason_label(s->reason));
        cw_buf_clear(&b);
        (void)cw_dx_cause(&b, s, lang);
        json_set_str(vd, "cause", cw_buf_str(&b));
        cw_buf_clear(&b);
        (void)cw_dx_next(&b, s, ctx, lang);
        json_set_str(vd, "next", cw_buf_str(&b));
    }
    json_object_set_new(doc, "verdict", vd);
    json_object_set_new(doc, "exit_code", json_integer(cw_dx_exit_code(v)));
    text = json_dumps(doc, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(doc);
    cw_buf_reset(&b);
    if (text == NULL)
        return CW_ENOMEM;
    printf("%s\n", text);
    free(text);
    return CW_OK;
}

int cw_diagnose_main(int argc, char **argv)
{
    struct dx_opts o = {.timeout = DX_DEFAULT_TIMEOUT};
    struct cw_settings *s = NULL;
    struct dx_run runs[DX_MAX_STEPS];
    struct cw_dx_step steps[DX_MAX_STEPS];
    struct cw_dx_verdict v;
    struct cw_dx_context ctx = {0};
    struct cw_diag diag;
    enum cw_lang lang;
    size_t n = 0, nservice = 0;
    cw_mono start;
    int code;

    code = dx_parse(argc, argv, &o);
    if (code >= 0)
        return code;
    lang = dx_lang(&o);
    cw_log_setup(o.log_level, CW_LOG_LOGFMT);
    cw_diag_init(&diag);
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        fprintf(stderr, "connwatch diagnose: curl_global_init failed\n");
        return 1;
    }
    if (o.config_file != NULL) {
        s = cw_settings_load(o.config_file, &diag);
    } else {
        struct cw_buf yaml;
        char err[512] = "";

        cw_buf_init(&yaml, 1 << 16);
        if (dx_config(&yaml, &o, err, sizeof(err)) != CW_OK) {
            fprintf(stderr, "connwatch diagnose: %s\n", err[0] != '\0' ? err : "target too long");
            cw_buf_reset(&yaml);
            curl_global_cleanup();
            return CW_DX_EXIT_USAGE;
        }
        s = cw_settings_load_text("diagnose", cw_buf_str(&yaml), &diag);
        cw_buf_reset(&yaml);
        ctx.url = strstr(o.target, "://") != NULL ? o.target : NULL;
    }
    ctx.server_name = o.server_name;
    ctx.user = o.user;
    if (s == NULL) {
        for (size_t i = 0; i < diag.n; i++)
            fprintf(stderr, "connwatch diagnose: %s\n", diag.entries[i].text);
        cw_diag_reset(&diag);
        cw_check_kinds_shutdown();
        curl_global_cleanup();
        return CW_DX_EXIT_USAGE;
    }
    cw_diag_reset(&diag);
    for (size_t i = 0; i < s->ninst && n < DX_MAX_STEPS; i++) {
        struct cw_instance *in = s->inst[i];
        bool host = in->kind->layer == CW_LAYER_HOST;

        if ((host && o.no_host) || (!host && o.service != NULL &&
                                    (in->service == NULL || strcmp(in->service, o.service) != 0)))
            continue;
        if (!host && strcmp(in->kind->name, "icmp") == 0 && o.no_icmp)
            continue;
        runs[n++] = (struct dx_run){.in = in};
        nservice += !host;
    }
    if (o.service != NULL && nservice == 0) {
        fprintf(stderr, "connwatch diagnose: %s has no checks of a service \"%s\"\n", o.config_file,
                o.service);
        cw_settings_unref(s);
        cw_check_kinds_shutdown();
        curl_global_cleanup();
        return CW_DX_EXIT_USAGE;
    }
    qsort(runs, n, sizeof(runs[0]), cmp_rank);

    start = cw_now();
    dx_run_all(runs, n, NULL);
    /* ICMP counts the echoes of about a second, the host its CPU over it,
     * Redis its hit ratio. */
    while (cw_now() - start < DX_SECOND_PASS) {
        cw_duration left = DX_SECOND_PASS - (cw_now() - start);
        struct timespec ts = {(time_t)(left / CW_S(1)), (long)(left % CW_S(1))};

        (void)nanosleep(&ts, NULL);
    }
    dx_run_all(runs, n, needs_second_pass);

    for (size_t i = 0; i < n; i++)
        dx_step(&steps[i], runs[i].in, lang);
    v = cw_dx_judge(steps, n);
    code = CW_OK;
    if (o.json)
        code = print_json(o.target != NULL ? o.target : o.service, steps, n, &v, &ctx, lang);
    else
        print_text(o.target != NULL ? o.target : o.service, steps, n, &v, &ctx, lang);
    fflush(stdout);
    cw_settings_unref(s);
    cw_check_kinds_shutdown();
    curl_global_cleanup();
    return code == CW_OK ? cw_dx_exit_code(&v) : 1;
}
