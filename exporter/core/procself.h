/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procself.h - the standard process_* metrics of the running process, read
 * from /proc/self (what every Prometheus client library exports).
 */
#ifndef CW_PROCSELF_H
#define CW_PROCSELF_H

#include "metric.h"

/* cw_procself_init() records the process start time; call once in main(). */
void cw_procself_init(void);

/* cw_procself_emit() adds process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds to 'b'. Values that cannot be read are left
 * out. Thread-safe. */
void cw_procself_emit(struct cw_batch *b);

/* cw_procself_parse_stat() parses the text of /proc/self/stat: utime and
 * stime (clock ticks), starttime (ticks after boot), vsize (bytes) and rss
 * (pages). Returns CW_OK or CW_EPARSE. Pure; unit-tested. */
int cw_procself_parse_stat(const char *text, unsigned long long *utime, unsigned long long *stime,
                           unsigned long long *starttime, unsigned long long *vsize,
                           long long *rss_pages);

#endif
