/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_config.c - libFuzzer target for the configuration loader: YAML text
 * -> node tree -> option tables -> settings with every real check kind.
 * Whatever the input, loading must either succeed or report diagnostics,
 * never crash, leak or loop. Secret and path options only touch files the
 * input names, which is fine for a fuzzer run in a scratch directory.
 */
#include "exporter/core/config.h"
#include "exporter/settings.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_diag diag;
    struct cw_settings *s;
    char *text;

    /* The loader takes NUL-terminated text, as a file read gives it. */
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    cw_diag_init(&diag);
    s = cw_settings_load_text("fuzz.yml", text, &diag);
    if (s == NULL && diag.n == 0)
        abort(); /* a rejected configuration always says why */
    cw_settings_unref(s);
    cw_diag_reset(&diag);
    free(text);
    return 0;
}
