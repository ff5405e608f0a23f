/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_file_sd.c - libFuzzer target for the file_sd parser (targets_file):
 * JSON or YAML text -> node tree -> target groups. Whatever the input, it
 * either parses or says why, never crashes, leaks or loops; the groups it
 * returns hold only well-formed targets and label mappings.
 *
 * tests/fuzz/replay_main.c replays the corpus as a plain test without
 * clang. Single-threaded.
 */
#include "exporter/core/config.h"
#include "exporter/file_sd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cw_file_sd sd;
    struct cw_diag diag;
    size_t i, j, n = 0;
    int rc;

    cw_diag_init(&diag);
    rc = cw_file_sd_parse("fuzz.json", (const char *)data, size, &sd, &diag);
    if (rc != CW_OK && diag.n == 0)
        abort(); /* a rejected file always says why */
    for (i = 0; i < sd.ngroups; i++) {
        const struct cw_sd_group *g = &sd.groups[i];

        for (j = 0; g->targets != NULL && j < g->targets->nitems; j++) {
            if (rc == CW_OK && (g->targets->items[j]->type != CW_NODE_SCALAR ||
                                g->targets->items[j]->scalar[0] == '\0'))
                abort();
            n++;
        }
        for (j = 0; g->labels != NULL && j < g->labels->nitems; j++)
            (void)cw_file_sd_label_is_used(g->labels->items[j]);
    }
    if (n != sd.ntargets)
        abort();
    cw_file_sd_reset(&sd);
    cw_diag_reset(&diag);
    return 0;
}
