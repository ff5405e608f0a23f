/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - the configuration of connwatch-relay (config.c): the top-level
 * options and the receivers, loaded from one YAML file.
 *
 * A loaded configuration is immutable except for each receiver's delivery
 * part (struct cw_relay_run), which the delivery engine (delivery.h) fills
 * when the configuration goes live. It is owned by whoever loaded it and
 * freed with cw_relay_config_free() once no handler and no delivery thread
 * uses it.
 */
#ifndef CW_RELAY_CONFIG_H
#define CW_RELAY_CONFIG_H

#include "alerts/relay/receiver.h"
#include "exporter/core/clock.h"
#include "exporter/core/config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cw_slot;

/* The options every receiver has, whatever its kind (cw_opts, released by
 * cw_relay_config_free()). */
struct cw_recv_common {
    char *name; /* owned */
    int language;
    char *title_template; /* owned, or NULL for the kind's default */
    char *alert_template; /* owned, or NULL for the kind's default */
    char *fallback;       /* owned, or NULL: name of another receiver of the file */
    cw_duration fallback_after;
    cw_duration retry_initial;
    cw_duration retry_max;
    cw_duration timeout;
    bool send_resolved;
    char *min_severity; /* owned, or NULL for the kind's default */
    int64_t dead_letter_after;
    char *time_zone; /* owned: "local", "UTC", "+08:00", "Asia/Shanghai" (cw_tz_parse) */
};

/* The delivery engine's part of a receiver (delivery.c): zero in a loaded
 * configuration, set by cw_delivery_attach() and cw_delivery_start(). */
struct cw_relay_run {
    struct cw_slot *slot; /* borrowed from the process's cw_slots, which outlive every
                           * configuration; NULL until attached */
    pthread_t thread;
    bool started;
    atomic_bool stop; /* set to make the delivery thread end */
};

struct cw_relay_receiver {
    struct cw_recv_common c;
    const struct cw_receiver_kind *kind; /* borrowed from cw_receiver_kinds[] (static) */
    void *state;                         /* owned: kind->state_size bytes, kind->release() */
    struct cw_receiver_caps caps;
    struct cw_tz tz;                    /* c.time_zone, parsed */
    int min_rank;                       /* alerts below are filtered; 0 = all */
    struct cw_relay_receiver *fallback; /* borrowed from the same configuration, or NULL */
    struct cw_relay_run run;
};

struct cw_relay_config {
    char *spool_dir; /* owned */
    cw_duration dedupe_window;
    int64_t max_queue;
    int64_t max_request_bytes;
    struct cw_relay_receiver *recv; /* owned: nrecv receivers */
    size_t nrecv;
};

/* cw_relay_config_load() reads and validates 'file'. Validation does not stop
 * at the first problem: every one is recorded in 'diag' ("file:line:col:
 * path: message"), then the load fails. Returns the configuration (free it
 * with cw_relay_config_free()), or NULL with at least one diagnostic. */
struct cw_relay_config *cw_relay_config_load(const char *file, struct cw_diag *diag);

/* cw_relay_config_free() frees 'cfg' and what its receivers own; NULL does
 * nothing. The delivery threads must have been stopped. */
void cw_relay_config_free(struct cw_relay_config *cfg);

/* cw_relay_config_find() returns the receiver called 'name', or NULL. */
struct cw_relay_receiver *cw_relay_config_find(const struct cw_relay_config *cfg, const char *name);

#endif
