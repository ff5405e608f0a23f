/* SPDX-License-Identifier: Apache-2.0 */
/*
 * settings.h - connwatch's configuration as typed structures: global
 * defaults, the host section, services and their check instances.
 *
 * cw_settings_load() is the one loader used by --config.check, startup and
 * reload. It builds every instance completely (kind->configure() included)
 * or fails with every problem in the cw_diag; it never exits and never
 * touches the running configuration. A cw_settings is immutable once loaded
 * and shared by reference: the scheduler and scrapes hold references.
 *
 * The instances themselves (struct cw_instance) are declared in instance.h.
 */
#ifndef CW_SETTINGS_H
#define CW_SETTINGS_H

#include "check.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/metric.h"
#include "instance.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One entry of probe.allow: which targets /probe may check with a kind. */
struct cw_probe_rule {
    const struct cw_check_kind *kind; /* borrowed: static */
    struct cw_strlist targets;        /* owned: HOST[:PORT] patterns (globs, CIDRs) */
    cw_duration timeout;              /* deadline of one probe */
    struct cw_strmap options;         /* owned: fixed options of the probed check (user, ...) */
};

/* What a targets_file was when a load last looked at it. */
struct cw_file_id {
    bool exists;
    uint64_t dev, ino;
    int64_t size, mtime_ns, ctime_ns;
};

/* One stanza's targets_file as a load found it. The instances of the
 * stanza come from 'text', the last version that loaded; a rejected newer
 * version is remembered by its identity, so that it counts once. */
struct cw_targets_src {
    char *key;  /* owned: service, kind and path: the stanza across loads */
    char *path; /* owned: resolved against the configuration's directory */
    char *text; /* owned: the version the instances come from */
    size_t len;
    struct cw_file_id seen; /* what the last read found (good or bad) */
    size_t ntargets;        /* instances made from 'text' */
    bool failed;            /* the version last read was rejected; 'text' is older */
    bool read_now;          /* this load read the file (false: unchanged, reused) */
    char *error;            /* owned: the first problem of the rejected version, or NULL */
};

struct cw_settings {
    atomic_int refs;
    char *file; /* owned: the file it came from, or "<built-in>" */
    char *text; /* owned: the configuration text it was loaded from */
    size_t textlen;
    struct cw_targets_src *tsrc; /* owned: every targets_file of the configuration */
    size_t ntsrc;
    cw_duration interval;
    cw_duration timeout;
    int64_t max_concurrent;    /* upper bound of worker threads */
    struct cw_instance **inst; /* owned references */
    size_t ninst;
    size_t capinst;
    struct cw_probe_rule *probe; /* owned: probe.allow */
    size_t nprobe;
};

/* The listener the built-in default's tcp check probes unless told otherwise. */
#define CW_DEFAULT_SELF_TARGET "127.0.0.1:19367"

/* cw_settings_load() loads 'path', or the built-in default when NULL.
 * Returns a settings object with one reference, or NULL with the problems
 * in 'diag'. */
struct cw_settings *cw_settings_load(const char *path, struct cw_diag *diag);

/* cw_settings_load_prev() is cw_settings_load() for a reload: a
 * targets_file of a stanza that 'prev' (may be NULL) had too is read
 * again, and when the new version is rejected the stanza keeps the targets
 * of the previous one (the source is then marked failed, with the reason).
 * Without 'prev', a bad targets_file is an error of the load. */
struct cw_settings *cw_settings_load_prev(const char *path, const struct cw_settings *prev,
                                          struct cw_diag *diag);

/* cw_settings_refresh() loads the configuration text of 'prev' again (not
 * the file: what was loaded), reading only the targets files that changed
 * since (cw_settings_targets_changed()); a rejected version keeps the
 * previous targets as in cw_settings_load_prev(). NULL with the problems in
 * 'diag' when even the previous versions no longer load. */
struct cw_settings *cw_settings_refresh(const struct cw_settings *prev, struct cw_diag *diag);

/* cw_settings_targets_changed() tells whether some targets_file of 's' has
 * another identity (device, inode, size, mtime, ctime; or appeared or
 * vanished) than when it was last read. A stat() per file. */
bool cw_settings_targets_changed(const struct cw_settings *s);

/* cw_file_id_of() fills 'id' from stat() of 'path' (exists false when that
 * fails). */
void cw_file_id_of(const char *path, struct cw_file_id *id);

/* cw_file_id_equal() tells whether two identities are the same. */
bool cw_file_id_equal(const struct cw_file_id *a, const struct cw_file_id *b);

/* cw_settings_load_builtin() loads the built-in default configuration (this
 * host: its host section, an icmp check of 127.0.0.1 and a tcp check of
 * connwatch's own listener at 'self_target', "HOST:PORT"; NULL:
 * CW_DEFAULT_SELF_TARGET). */
struct cw_settings *cw_settings_load_builtin(const char *self_target, struct cw_diag *diag);

/* cw_settings_load_text() is the same for YAML text named 'name'. */
struct cw_settings *cw_settings_load_text(const char *name, const char *text, struct cw_diag *diag);

/* cw_settings_adopt() replaces each instance of 'fresh' whose key and
 * fingerprint match an instance of 'old' by that old instance, so counters,
 * schedules and interval-based ratios survive a reload. Returns how many
 * instances were kept. */
size_t cw_settings_adopt(struct cw_settings *fresh, const struct cw_settings *old);

/* cw_settings_probe_rule() returns the probe.allow rule of 'kind' that lets
 * /probe check 'target' (borrowed from 's'), or NULL: some pattern of the
 * rule must match the target's host (and port), as cw_probe_rule_allows()
 * tells. URLs with user information are refused. */
const struct cw_probe_rule *cw_settings_probe_rule(const struct cw_settings *s,
                                                   const struct cw_check_kind *kind,
                                                   const char *target);

/* cw_settings_probe_instance() builds a one-shot instance of 'kind' whose
 * probe option is 'target', with the fixed options of 'rule' (the rule that
 * admitted the target; NULL: none) and no service labels, configured exactly
 * as a check in a file would be. Its run() sees 'rule' as
 * cw_run_info(run)->probe_rule, to check every further hop (a redirect), so
 * 'rule' (and the settings holding it) must outlive the instance's runs.
 * NULL with the reason in 'diag'. */
struct cw_instance *cw_settings_probe_instance(const struct cw_check_kind *kind, const char *target,
                                               cw_duration timeout,
                                               const struct cw_probe_rule *rule,
                                               struct cw_diag *diag);

struct cw_settings *cw_settings_ref(struct cw_settings *s);
void cw_settings_unref(struct cw_settings *s);

#endif
