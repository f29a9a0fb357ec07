/*
 * qemu-oc-balloond: the balloon policy (pure: no I/O, no clock)
 *
 * Decides one VM's balloon target from its latest snapshot, the host's
 * memory state and the configuration.  Rules, in order:
 *  - a VM that does not answer, or whose statistics are stale, is never
 *    shrunk (reason stale / unresponsive): flagged, target unchanged;
 *  - a guest under pressure itself (major faults or swap-in per second,
 *    allocation stalls or OOM kills rising, available memory below its
 *    low mark) is never shrunk and gets memory back first (reason
 *    guest-pressure);
 *  - under host pressure, guests with the most available memory give
 *    first (reason host-pressure), never below their floor;
 *  - without host pressure, guests grow back toward their ceiling
 *    (reason grow);
 *  - every step is bounded (MiB and % of the current size), and a change
 *    smaller than the hysteresis is not made (reason steady).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_POLICY_H
#define BALLOOND_POLICY_H

#include "vm-snapshot.h"

typedef struct PolicyVmConfig {
    uint64_t floor_mib;         /* never below */
    uint64_t ceiling_mib;       /* never above; 0: the VM's maximum */
} PolicyVmConfig;

typedef struct PolicyConfig {
    PolicyVmConfig defaults;    /* per-VM overrides come from the file */
    uint64_t step_mib;          /* at most this much per decision */
    double step_pct;            /* and at most this % of the current size */
    uint64_t hysteresis_mib;    /* smaller changes are not made */
    int64_t stale_ms;           /* statistics older than this are stale */
    double guest_low_avail_pct; /* available < this % of total: pressure */
    double guest_majflt_per_s;  /* major faults/s above this: pressure */
    double guest_swapin_per_s;  /* swap-in bytes/s above this: pressure */
    double host_low_avail_pct;  /* host MemAvailable below: host pressure */
    double host_psi_some_avg10; /* PSI memory some avg10 above: pressure */
} PolicyConfig;

/* Safe for any guest: floor 512 MiB, steps of 256 MiB / 10 %, ... */
extern const PolicyConfig policy_default_config;

typedef struct HostMemory {
    uint64_t total_kib, available_kib;      /* /proc/meminfo */
    double psi_some_avg10;                  /* /proc/pressure/memory */
    bool pressure;              /* a PSI trigger fired, or low available */
} HostMemory;

typedef enum PolicyReason {
    POLICY_STEADY,              /* no change */
    POLICY_UNRESPONSIVE,        /* flagged: not shrunk */
    POLICY_STALE,               /* flagged: not shrunk */
    POLICY_GUEST_PRESSURE,      /* grow first */
    POLICY_HOST_PRESSURE,       /* shrink, most available first */
    POLICY_GROW,                /* back toward the ceiling */
    POLICY_BOUNDS,              /* brought inside floor..ceiling */
    POLICY_REASON__MAX,
} PolicyReason;

extern const char *const policy_reason_names[POLICY_REASON__MAX];

typedef struct PolicyDecision {
    PolicyReason reason;
    uint64_t current_mib;       /* balloon actual */
    uint64_t target_mib;        /* == current: no command */
    double guest_avail_pct;     /* inputs, for the log line; -1: unknown */
    double majflt_per_s, swapin_per_s;
} PolicyDecision;

/*
 * Decide for one VM.  @rank is the VM's place among the VMs that could
 * give memory, most available first (0 = gives first), @n_ranked how many
 * there are; @max_mib the VM's maximum memory (its boot size); @now_ms
 * wall clock.  Pure.
 */
void policy_decide(const PolicyConfig *cfg, const PolicyVmConfig *vm,
                   const VmSnapshot *s, const HostMemory *host,
                   unsigned rank, unsigned n_ranked, uint64_t max_mib,
                   int64_t now_ms, PolicyDecision *out);

/* Load a GKeyFile INI config ([policy] and [vm NAME] groups) */
bool policy_config_load(const char *path, PolicyConfig *cfg,
                        GHashTable **per_vm /* name -> PolicyVmConfig */,
                        GError **err);

#endif
