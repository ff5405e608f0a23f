/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_relay_template.c - libFuzzer target for connwatch-relay's message
 * templates (alerts/relay/template.c): a template from the input rendered
 * over a notification, checked by cw_tmpl_check(), rendered per alert and
 * at group level with value caps, and digested against a budget.
 *
 * Input: one control byte (bit 0: language; bits 1-7: the value cap and
 * the budget), the template up to the first NUL, then an Alertmanager
 * payload. When the payload is absent or does not parse, a built-in
 * three-alert notification is used, so every input exercises the template.
 *
 * Invariants: a capped value never exceeds its cap, cut on a UTF-8
 * boundary; a digest that succeeds stays within its budget and shows at
 * most every alert; cw_tmpl_check() accepts the default texts.
 *
 * tests/fuzz/replay_main.c replays tests/fuzz/corpus/relay_template/ as a
 * plain test. Single-threaded; owns nothing between inputs.
 */
#include "alerts/relay/payload.h"
#include "alerts/relay/template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char builtin_payload[] =
    "{\"version\":\"4\",\"status\":\"firing\",\"receiver\":\"ops\",\"groupKey\":\"{}:{alertname="
    "\\\"X\\\"}\","
    "\"externalURL\":\"http://am:9093\",\"commonLabels\":{\"alertname\":\"X\",\"layer\":\"tcp\"},"
    "\"alerts\":["
    "{\"status\":\"firing\",\"fingerprint\":\"a1\",\"startsAt\":\"2026-01-02T03:04:05.678Z\","
    "\"endsAt\":\"0001-01-01T00:00:00Z\",\"generatorURL\":\"http://p:9090/g\","
    "\"labels\":{\"alertname\":\"X\",\"severity\":\"critical\",\"service\":\"\\u65e5\\u672c\"},"
    "\"annotations\":{\"summary\":\"\\u544a\\u8b66 long summary text\"}},"
    "{\"status\":\"resolved\",\"fingerprint\":\"a2\",\"startsAt\":\"2026-01-02T03:04:05+08:00\","
    "\"labels\":{\"alertname\":\"Y\",\"instance\":\"10.0.0.1:80\"},\"annotations\":{}},"
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"Z\"},\"annotations\":{\"description\":"
    "\"d\"}}"
    "]}";

static void check_cut(const char *s, size_t len, size_t max)
{
    size_t n = cw_utf8_cut(s, len, max);

    if (n > len || (len > max && n > max))
        abort();
    if (len > max && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        abort();
}

static void check_value(const char *s, size_t len, size_t max)
{
    struct cw_buf b;

    cw_buf_init(&b, 1u << 20);
    if (cw_tmpl_add_value(&b, s, len, max) == CW_OK && max > 3 && b.len > max)
        abort();
    cw_buf_reset(&b);
}

static void render_all(const char *tmpl, const struct cw_am_msg *m, enum cw_lang lang,
                       size_t value_max, size_t budget)
{
    struct cw_buf out, more;
    struct cw_tmpl_opts o = {.value_max = value_max, .more_out = NULL};
    struct cw_digest d = {.budget = budget, .value_max = value_max, .sep = "\n"};
    size_t i, shown = 0;
    int rc;

    cw_buf_init(&out, 1u << 20);
    cw_buf_init(&more, 4096);
    if (cw_tmpl_render_opts(&out, tmpl, m, NULL, lang, &o) == CW_ENOMEM)
        abort();
    o.more_out = &more;
    if (cw_tmpl_render_opts(&out, tmpl, m, NULL, lang, &o) == CW_ENOMEM)
        abort();
    for (i = 0; i < m->nalerts && i < 8; i++) {
        cw_buf_clear(&out);
        if (cw_tmpl_render(&out, tmpl, m, &m->alerts[i], lang) == CW_ENOMEM)
            abort();
    }
    cw_buf_clear(&out);
    rc = cw_tmpl_digest(&out, tmpl, m, lang, &d, &shown);
    if (rc == CW_ENOMEM || shown > m->nalerts || (rc == CW_OK && out.len > budget))
        abort();
    cw_buf_clear(&out);
    if (cw_tmpl_more(&out, m, shown, lang) == CW_ENOMEM)
        abort();
    cw_buf_reset(&out);
    cw_buf_reset(&more);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    struct cw_am_msg m;
    char err[256];
    const uint8_t *nul;
    char *tmpl;
    size_t tlen, value_max, budget;
    enum cw_lang lang;

    if (size == 0)
        return 0;
    lang = (data[0] & 1) ? CW_LANG_EN : CW_LANG_ZH;
    value_max = (size_t)(data[0] >> 1) % 64; /* 0: no cap */
    budget = (size_t)(data[0] >> 1) * 16;
    data++;
    size--;
    nul = memchr(data, '\0', size);
    tlen = nul != NULL ? (size_t)(nul - data) : size;
    tmpl = malloc(tlen + 1);
    if (tmpl == NULL)
        return 0;
    memcpy(tmpl, data, tlen);
    tmpl[tlen] = '\0';

    if (!cw_tmpl_check(cw_tmpl_default_alert(lang), &why) ||
        !cw_tmpl_check(cw_tmpl_default_title(lang), &why))
        abort();
    if (!cw_tmpl_check(tmpl, &why) && (why == NULL || why[0] == '\0'))
        abort();
    check_cut(tmpl, tlen, value_max);
    check_value(tmpl, tlen, value_max);

    if (nul == NULL ||
        cw_am_parse((const char *)nul + 1, size - tlen - 1, &m, err, sizeof(err)) != CW_OK) {
        if (cw_am_parse(builtin_payload, sizeof(builtin_payload) - 1, &m, err, sizeof(err)) !=
            CW_OK)
            abort();
    }
    render_all(tmpl, &m, lang, value_max, budget);
    cw_am_free(&m);
    free(tmpl);
    return 0;
}
