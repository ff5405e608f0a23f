/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fixture.h - loading a test fixture (tests/fixtures/KIND/NAME, or under
 * $CW_FIXTURES) for the parsers' Check suites. The file is read with
 * cw_buf_read_file() and copied into a buffer of its exact size, without a
 * NUL, so that ASan catches a parser reading past the end. Failing to read
 * it fails the test. Header-only: each suite is one file.
 */
#ifndef CW_TEST_FIXTURE_H
#define CW_TEST_FIXTURE_H

#include "exporter/core/buf.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CW_FIXTURES
#define CW_FIXTURES "tests/fixtures"
#endif

struct fixture {
    char *data; /* owned, exactly len bytes, no NUL */
    size_t len;
};

/* fixture_load_kind() reads the fixture 'name' of 'kind' ("host", "redis", ...). */
static inline struct fixture fixture_load_kind(const char *kind, const char *name)
{
    const char *env = getenv("CW_FIXTURES");
    struct fixture fx = {NULL, 0};
    struct cw_buf b;
    char path[4096], why[160];

    ck_assert_int_lt(snprintf(path, sizeof(path), "%s/%s/%s",
                              env != NULL && env[0] != '\0' ? env : CW_FIXTURES, kind, name),
                     (int)sizeof(path));
    cw_buf_init(&b, 64u << 20);
    ck_assert_msg(cw_buf_read_file(&b, path, why, sizeof(why)) == CW_OK, "read %s: %s", path, why);
    fx.len = b.len;
    fx.data = malloc(fx.len > 0 ? fx.len : 1);
    ck_assert_ptr_nonnull(fx.data);
    memcpy(fx.data, cw_buf_str(&b), fx.len);
    cw_buf_reset(&b);
    return fx;
}

static inline void fixture_free(struct fixture *fx)
{
    free(fx->data);
    fx->data = NULL;
}

#endif
