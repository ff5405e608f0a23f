/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_webcfg.c - libFuzzer target for the web config parser: YAML text
 * into a cw_webcfg through the option tables, the toolkit's rules and the
 * GnuTLS checks of inline PEM. Files the input names are never read
 * (CW_WEBCFG_NO_FILES) and passwords are never checked (bcrypt's cost is
 * part of the input).
 *
 * tests/fuzz/replay_main.c replays the corpus as a plain test without
 * clang. Single-threaded.
 */
#include "exporter/core/buf.h"
#include "exporter/core/config.h"
#include "exporter/core/err.h"
#include "exporter/core/webcfg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_FILE "fuzz/web.yml"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_webcfg *c;
    struct cw_diag d;
    size_t i;

    cw_diag_init(&d);
    c = cw_webcfg_parse(FUZZ_FILE, (const char *)data, size, CW_WEBCFG_NO_FILES, &d);
    /* Every diagnostic names the file; a result and diagnostics never
     * come together. A broken invariant is a finding: abort() is how a
     * fuzz target reports one. */
    for (i = 0; i < d.n; i++) {
        if (strncmp(d.entries[i].text, FUZZ_FILE, strlen(FUZZ_FILE)) != 0)
            abort();
    }
    if ((c == NULL) == (d.n == 0))
        abort();
    if (c != NULL && (!cw_webcfg_tls_equal(c, c) || (c->tls && c->priorities == NULL)))
        abort();
    cw_webcfg_free(c);
    cw_diag_reset(&d);
    return 0;
}
