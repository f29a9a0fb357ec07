/*
 * qemu-oc-balloond: the daemon's state, shared by its files
 *
 * balloond.c decides (plans, applies, brakes); export.c gives what it
 * knows to its readers (metrics scrapes, the collector's frames).  One
 * daemon per process: its state is the global bd.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_DAEMON_H
#define BALLOOND_DAEMON_H

#include <stdio.h>
#include <glib.h>

#include "brake.h"
#include "collector.h"
#include "domains.h"
#include "fleet.h"
#include "host-pressure.h"
#include "log-writer.h"
#include "metrics.h"
#include "policy.h"
#include "qemu-memory.h"
#include "trend.h"

/* The daemon's own state of one VM (under Daemon.lock) */
typedef struct BdVm {
    int64_t seen_update_ms;     /* the guest report last decided on */
    bool seen_responsive;
    PolicyReason last_reason;
    uint64_t target_mib;        /* last target set; 0: none */
    int64_t target_ms;          /* when (wall clock) */
    int64_t report_us;          /* monotonic: its last guest report came */
    int64_t asked_us;           /* monotonic: asked for a fresh one; 0: not */
    unsigned late_answers;      /* answers to asks, still not fresh */
    int pid;                    /* its QEMU process, as last seen */
    uint64_t domains;           /* the memory domains it is in */
    uint64_t decisions[POLICY_REASON__MAX];
    Trend demand;               /* used memory at each report, MiB */
    Trend rss;                  /* its QEMU's resident memory, MiB */
    int64_t rss_mib;            /* as last read; -1: unknown */
    int64_t rss_us;             /* monotonic: when */
    QemuStatm *statm;           /* its QEMU's statm, open; NULL: not yet */
    int64_t own_mib;            /* QEMU's own part of it; -1: unknown */
    int64_t own_us;             /* monotonic: when own_mib was asked for */
    int64_t distress_ms;        /* its guest last OOM-killed or stalled */
} BdVm;

typedef struct Daemon {
    Fleet *fleet;
    HostPressure *host;
    Metrics *metrics;
    Collector *collector;
    bool policy_off;            /* --policy off: collect and serve only */
    PolicyConfig policy;
    GHashTable *per_vm;         /* name -> PolicyVmConfig */
    bool dry_run;
    FILE *log_json;
    LogWriter *log;             /* where decisions are logged */

    Domains *domains;
    Brakes *brakes;
    GMutex log_lock;            /* one log line at a time */
    int64_t settled_us;         /* monotonic: every VM has been heard */
    gint ready;                 /* the fleet exists: watchers may use it */

    GMutex lock;
    GHashTable *vms;            /* name -> BdVm */
    uint64_t tight;             /* the tight memory domains, last plan */
    bool host_pressure;         /* as last seen */
} Daemon;

extern Daemon bd;

/* The metrics endpoint's callback: every VM, the host, the domains */
void daemon_collect(void *opaque, GPtrArray *vms, HostMemory *host,
                    GPtrArray *domains);
/* The collector's callback: every VM's wire form, as a JSON array */
GString *daemon_frame_vms(void *opaque);

#endif
