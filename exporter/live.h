/* SPDX-License-Identifier: Apache-2.0 */
/*
 * live.h - the live configuration and its one owner.
 *
 * A cw_live holds the running settings and the scheduler that runs them,
 * and is the only place where the configuration changes: a load (startup,
 * SIGHUP, POST /-/reload) keeps unchanged instances (cw_settings_adopt()),
 * hands the result to the scheduler and makes it the settings that scrapes,
 * the landing page and /probe read (cw_live_settings()), in that order and
 * under one lock. It also knows the outcome of the last load, and emits
 * its series (reload status, the scheduler's pool, the targets files)
 * through cw_live_emit(), a registry self emitter.
 *
 * A thread of its own watches the targets files of the live settings: every
 * CW_TARGETS_POLL it compares each file's identity (device, inode, size,
 * mtime, ctime) with what was read, and when one changed it loads the live
 * configuration text again with the changed files re-read
 * (cw_settings_refresh()); unchanged instances keep their state.
 */
#ifndef CW_LIVE_H
#define CW_LIVE_H

#include "core/config.h"
#include "scheduler.h"
#include "settings.h"

#include <stdbool.h>
#include <stddef.h>

struct cw_live;
struct cw_batch;

/* How often the targets files are looked at (a stat() each). */
#define CW_TARGETS_POLL CW_S(2)

/* cw_live_new() returns a live configuration with no settings yet that
 * runs its settings on 'sched' (owned from now on, also on failure), or
 * NULL. 'config_file' (borrowed; NULL: the built-in default) is what
 * cw_live_load() reads; the built-in default's tcp check probes
 * 'self_target' (borrowed; "HOST:PORT" of connwatch's own listener, NULL:
 * the default listener). */
struct cw_live *cw_live_new(struct cw_sched *sched, const char *config_file,
                            const char *self_target);

/* cw_live_load() loads the configuration file (or the built-in default)
 * and makes it live, or keeps the running one: CW_OK, or CW_ECONFIG with
 * every problem in 'diag' (logged as a failed reload when settings were
 * already live). Serialised with other loads. */
int cw_live_load(struct cw_live *l, struct cw_diag *diag);

/* cw_live_set() makes 'settings' live (takes its own reference): instances
 * unchanged since the running settings are kept with their counters and
 * schedules, the scheduler gets the result, the load counts as successful.
 * Returns how many instances were kept. */
size_t cw_live_set(struct cw_live *l, struct cw_settings *settings);

/* cw_live_settings() returns a reference to the live settings (or NULL). */
struct cw_settings *cw_live_settings(struct cw_live *l);

/* cw_live_ready() tells whether every check of the first live settings has
 * published a result. */
bool cw_live_ready(struct cw_live *l);

/* cw_live_emit() adds connwatch_config_last_reload_successful,
 * _success_timestamp_seconds, the scheduler's pool gauges and, per targets
 * file, connwatch_targets_file_errors_total, _last_load_successful and
 * _targets to 'b' ('live' is a struct cw_live; a cw_registry_self_fn). */
void cw_live_emit(void *live, struct cw_batch *b);

/* cw_live_free() stops the scheduler, waiting up to 'grace' for running
 * checks, and frees everything. If a check is still stuck it returns false
 * and frees nothing (the caller exits anyway). NULL-safe. */
bool cw_live_free(struct cw_live *l, cw_duration grace);

/* cw_live_self_target() writes into 'out' the "HOST:PORT" at which a client
 * on this host reaches listen address 'listen' (":9999" and "0.0.0.0:9999"
 * give "127.0.0.1:9999", "[::]:9999" gives "[::1]:9999", a named host stays).
 * Returns false when 'listen' has no port or 'out' is too small. */
bool cw_live_self_target(const char *listen, char *out, size_t outlen);

#endif
