/*
 * qemu-oc-balloond: the host's memory state and pressure
 *
 * MemTotal/MemAvailable from /proc/meminfo (or --host-meminfo FILE, a file
 * in the same format, re-read when it changes: inotify), and the memory
 * PSI (/proc/pressure/memory: its "some avg10=", and a trigger "some
 * 150000 1000000" written to it, then poll() for POLLPRI; or --host-psi
 * FILE, a file in the same format, re-read when it changes).  The
 * watcher measures; whether that is pressure is the policy's to say
 * (policy_host_pressure()).  It runs in its own thread (a GMainLoop on
 * its own context) and calls back on
 * every change: the numbers moved, a stall began (the trigger fired) or
 * ended (a window without one).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_HOST_PRESSURE_H
#define BALLOOND_HOST_PRESSURE_H

#include "policy.h"

typedef struct HostPressureConfig {
    const char *meminfo_path;   /* NULL: /proc/meminfo */
    const char *psi_path;       /* NULL: /proc/pressure/memory */
    uint64_t psi_stall_us;      /* trigger: stalled this long ... */
    uint64_t psi_window_us;     /* ... within this window */
    int poll_ms;                /* re-read meminfo at least this often */
} HostPressureConfig;

/* Called in the watcher thread with the new state */
typedef void HostPressureFn(void *opaque, const HostMemory *host);

typedef struct HostPressure HostPressure;

/* Start watching; NULL with @err if a source cannot be read */
HostPressure *host_pressure_start(const HostPressureConfig *cfg,
                                  HostPressureFn *fn, void *opaque,
                                  GError **err);
/* The latest state (never waits) */
void host_pressure_get(HostPressure *hp, HostMemory *out);
void host_pressure_stop(HostPressure *hp);

/* Parse meminfo text: false if MemTotal or MemAvailable is missing */
bool host_pressure_parse_meminfo(const char *text, uint64_t *total_kib,
                                 uint64_t *available_kib);
/*
 * The decimal digits at *@p (at least one) into @out, *@p moved past
 * them; false on overflow (also for memdomain.c's cgroup files)
 */
bool host_pressure_parse_digits(const char **p, uint64_t *out);
/* Read a PSI file's "some" avg10 (also a cgroup's memory.pressure) */
bool host_pressure_read_psi(const char *path, double *avg10, GError **err);
/* Parse PSI text: the "some" line's avg10; false if absent */
bool host_pressure_parse_psi(const char *text, double *some_avg10);

#endif
