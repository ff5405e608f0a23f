/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_relay_webhook.c - libFuzzer target for connwatch-relay's webhook
 * payload parser (alerts/relay/payload.c) and what runs on every accepted
 * payload: the dedupe key and the default templates of both languages.
 *
 * tests/fuzz/replay_main.c replays tests/fuzz/corpus/relay_webhook/ as a
 * plain test. Single-threaded; owns nothing between inputs.
 */
#include "alerts/relay/payload.h"
#include "alerts/relay/template.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_am_msg m;
    struct cw_buf b;
    char why[256], key[CW_AM_KEY_LEN + 1];
    size_t i;

    if (cw_am_parse((const char *)data, size, &m, why, sizeof(why)) != CW_OK) {
        if (m.root != NULL || why[0] == '\0')
            abort();
        return 0;
    }
    if (m.nalerts == 0 || cw_am_dedupe_key(&m, key) != CW_OK || strlen(key) != CW_AM_KEY_LEN)
        abort();
    cw_buf_init(&b, 1u << 20);
    for (i = 0; i < m.nalerts && i < 8; i++) {
        if (cw_tmpl_render(&b, cw_tmpl_default_alert(CW_LANG_ZH), &m, &m.alerts[i], CW_LANG_ZH) ==
            CW_ENOMEM)
            abort();
    }
    if (cw_tmpl_render(&b, cw_tmpl_default_title(CW_LANG_EN), &m, NULL, CW_LANG_EN) == CW_ENOMEM)
        abort();
    cw_buf_reset(&b);
    cw_am_free(&m);
    return 0;
}
