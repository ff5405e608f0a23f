/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_accept.c - libFuzzer target for the request headers the renderer
 * parses: Accept (cw_render_negotiate), Accept-Encoding (cw_accepts_gzip)
 * and, for the health page, Accept-Language and ?lang= (cw_health_lang).
 *
 * Built with -fsanitize=fuzzer it is a fuzzer; tests/fuzz/replay_main.c
 * replays its corpus as a test in suite "fuzz-replay". Single-threaded.
 */
#include "exporter/core/render.h"
#include "exporter/health.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    enum cw_format fmt;

    if (s == NULL)
        return 0;
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    fmt = cw_render_negotiate(s);
    if (fmt != CW_FMT_TEXT && fmt != CW_FMT_OPENMETRICS)
        abort();
    if (cw_render_content_type(fmt) == NULL)
        abort();
    (void)cw_accepts_gzip(s);
    for (int q = 0; q < 2; q++) {
        enum cw_lang lang = cw_health_lang(q ? s : NULL, s);

        if (lang != CW_LANG_ZH && lang != CW_LANG_EN)
            abort();
    }
    free(s);
    return 0;
}
