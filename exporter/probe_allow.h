/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe_allow.h - the /probe allow-list: the "probe" section of the
 * configuration, which targets /probe may check with which kind. A rule
 * (struct cw_probe_rule, settings.h) lists HOST[:PORT] patterns; a target
 * is allowed when one of them matches its host and port. The settings own
 * the rules (s->probe, s->nprobe); cw_settings_probe_rule() (settings.h)
 * and cw_probe_rule_allows() (check.h) are implemented in probe_allow.c.
 */
#ifndef CW_PROBE_ALLOW_H
#define CW_PROBE_ALLOW_H

#include "settings.h"

/* cw_probe_allow_load() reads the "probe" section of 'root' into s->probe
 * and s->nprobe; a rule without a timeout takes 'default_timeout'. Returns
 * CW_OK, or CW_ECONFIG with every problem in 'diag' (the valid rules are
 * kept, to be freed with the settings). */
int cw_probe_allow_load(struct cw_settings *s, const struct cw_node *root,
                        cw_duration default_timeout, struct cw_diag *diag);

/* cw_probe_allow_free() frees the rules of 's' and leaves none. */
void cw_probe_allow_free(struct cw_settings *s);

#endif
