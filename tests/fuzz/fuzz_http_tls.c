/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_http_tls.c - libFuzzer target for the parsers of outside input of
 * the http, tls and tls_file checks: the HTTP Date header
 * (cw_http_parse_date) and PEM certificate bundles (cw_tls_pem_each, which
 * drives OpenSSL's PEM and DER decoders and our date conversion).
 *
 * tests/fuzz/replay_main.c replays tests/fuzz/corpus/http_tls/ as a plain
 * test without clang. Single-threaded; owns nothing between inputs.
 */
#include "collectors/http_util.h"
#include "collectors/tlsinspect.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_cert(void *arg, const struct cw_tls_cert *c)
{
    size_t *n = arg;

    /* Texts are always terminated within their arrays. */
    if (strnlen(c->subject, sizeof(c->subject)) == sizeof(c->subject) ||
        strnlen(c->serial, sizeof(c->serial)) == sizeof(c->serial))
        abort();
    (*n)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);
    size_t seen = 0, count = 0;
    int64_t t;

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    if (cw_http_parse_date(copy, size, &t) == CW_OK && (t < -62167219200LL || t > 253402300799LL))
        abort(); /* years 0..9999 only */
    if (cw_tls_pem_each(copy, size, fuzz_cert, &seen, &count) == CW_OK && count == 0)
        abort();
    if (seen != count)
        abort();
    free(copy);
    return 0;
}
