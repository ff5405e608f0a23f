/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kinds.c - the one table of check kinds. Adding a kind is one extern and
 * one line here, plus its file in collectors/ and collectors/meson.build.
 * Sorted by name.
 */
#include "kinds.h"

extern const struct cw_check_kind cw_kind_dns;
extern const struct cw_check_kind cw_kind_host;
extern const struct cw_check_kind cw_kind_http;
extern const struct cw_check_kind cw_kind_icmp;
extern const struct cw_check_kind cw_kind_mysql;
extern const struct cw_check_kind cw_kind_redis;
extern const struct cw_check_kind cw_kind_tcp;
extern const struct cw_check_kind cw_kind_tls;
extern const struct cw_check_kind cw_kind_tls_file;

/* One kind a line, whatever clang-format would pack. */
/* clang-format off */
const struct cw_check_kind *const cw_check_kinds[] = {
    &cw_kind_dns,
    &cw_kind_host,
    &cw_kind_http,
    &cw_kind_icmp,
    &cw_kind_mysql,
    &cw_kind_redis,
    &cw_kind_tcp,
    &cw_kind_tls,
    &cw_kind_tls_file,
    NULL,
};
/* clang-format on */
