/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kinds.h - the core's side of the check kinds: the one list (kinds.c),
 * lookup by name, and the kinds' process-wide shared state. Collectors do
 * not include this: their whole interface is check.h.
 */
#ifndef CW_KINDS_H
#define CW_KINDS_H

#include "check.h"

/* The one list of kinds, in exporter/kinds.c, sorted by name, NULL-terminated. */
extern const struct cw_check_kind *const cw_check_kinds[];

/* cw_check_kind_find() returns the kind named 'name', or NULL. */
const struct cw_check_kind *cw_check_kind_find(const char *name);

/* cw_check_kinds_shutdown() frees every kind's shared state (at exit, after
 * the last instance was released). */
void cw_check_kinds_shutdown(void);

#endif
