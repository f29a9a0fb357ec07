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
    /* memory domains (cgroups with a memory limit: policy_plan) */
    uint64_t reserve_mib;       /* a domain's headroom target, at least */
    double reserve_pct;         /* ... and at least this % of its limit */
    int64_t cooldown_ms;        /* no growth this long after a shortfall */
    int64_t oom_cooldown_ms;    /* ... and this long after an OOM kill */
    double guest_alloc_mib_s;   /* used memory rising faster: allocating */
    int64_t lookahead_ms;       /* a falling headroom: ask for this far on */
    int64_t guest_distress_ms;  /* after a guest OOM kill or stall: held */
    int64_t brake_max_ms;       /* a VM is braked this long at most; 0: no */
    /* [domain PATH] groups: canonical cgroup path -> PolicyDomainConfig */
    GHashTable *domains;
} PolicyConfig;

/* One memory domain's own reserve ([domain PATH] in the file) */
typedef struct PolicyDomainConfig {
    uint64_t reserve_mib;
    double reserve_pct;
} PolicyDomainConfig;

/* Safe for any guest: floor 256 MiB, steps of 256 MiB / 10 %, ... */
extern const PolicyConfig policy_default_config;

typedef struct HostMemory {
    uint64_t total_kib, available_kib;      /* /proc/meminfo */
    double psi_some_avg10;                  /* /proc/pressure/memory */
    bool psi_stall;             /* the kernel's PSI trigger fired lately */
    bool pressure;              /* the verdict: policy_host_pressure() */
} HostMemory;

/*
 * Whether the host is under memory pressure (the PSI trigger fired
 * lately, MemAvailable below host_low_avail_pct, or PSI avg10 above
 * host_psi_some_avg10): the one place it is decided.  Sets and returns
 * host->pressure.  Pure.
 */
bool policy_host_pressure(const PolicyConfig *cfg, HostMemory *host);

typedef enum PolicyReason {
    POLICY_STEADY,              /* no change */
    POLICY_UNRESPONSIVE,        /* flagged: not shrunk */
    POLICY_STALE,               /* flagged: not shrunk */
    POLICY_GUEST_PRESSURE,      /* grow first */
    POLICY_HOST_PRESSURE,       /* shrink, most available first */
    POLICY_GROW,                /* back toward the ceiling */
    POLICY_BOUNDS,              /* brought inside floor..ceiling */
    POLICY_DOMAIN_SHORT,        /* shrink: a domain it is in is short */
    POLICY_COOLDOWN,            /* would grow: a domain it is in cools down */
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

/*
 * A memory domain: a cgroup with a memory limit that holds VMs (their
 * QEMU processes).  Its headroom is what can still be charged before
 * the kernel's OOM killer kills a whole QEMU: limit - usage +
 * reclaimable page cache.  A domain is short while its headroom is below
 * its reserve (policy_domain_reserve_mib); the VMs in it that can give
 * are asked at once, in parallel, for the shortfall, and, while the
 * headroom falls, for what it will lose in the next lookahead_ms.  What
 * a VM gives is counted in host memory: a balloon target gives back
 * what the host holds for the VM above it (PolicyVm.held_mib), so a guest
 * whose free pages were never touched is asked to inflate through them.  VMs
 * grow back only once the headroom is above 1.5 times the reserve and
 * the cool-down after the last shortfall (and, longer, after the last
 * OOM kill) is over.
 */
typedef struct PolicyDomain {
    int64_t headroom_mib;       /* limit - usage + reclaimable */
    uint64_t limit_mib;
    int64_t short_ms;           /* wall clock: last seen short; 0: never */
    int64_t oom_ms;             /* wall clock: last OOM kill seen; 0: none */
    double falling_mib_s;       /* how fast the headroom falls (>= 0) */
    const PolicyDomainConfig *own;  /* its own reserve; NULL: [policy]'s */
} PolicyDomain;

uint64_t policy_domain_reserve_mib(const PolicyConfig *cfg,
                                   const PolicyDomain *d);

#define POLICY_MAX_DOMAINS 64

/* How far back a VM's demand is remembered */
#define POLICY_DEMAND_MS 30000

typedef struct PolicyVm {
    const VmSnapshot *s;
    const PolicyVmConfig *cfg;
    uint64_t max_mib;           /* boot RAM */
    uint64_t target_mib;        /* the last target set; 0: none */
    uint64_t domains;           /* bit i: the VM is in domain i */
    /* its used memory's rise in the last POLICY_DEMAND_MS: its demand */
    uint64_t used_rise_mib;
    bool demand_known;          /* from two reports at least */
    /*
     * how fast its QEMU process's resident memory grew over the last
     * second, MiB/s (0 if unknown): the host sees a guest allocate before
     * the guest's next report says so
     */
    double qemu_rss_mib_s;
    /*
     * the guest memory the host holds for it (its QEMU's resident
     * memory less QEMU's own), MiB, at most that; 0: unknown.  Inflating
     * takes the guest's free pages first, and those it never touched
     * cost the host nothing: a target below this gives the difference
     * back for sure, a target above it nothing.
     */
    uint64_t held_mib;
    /*
     * the daemon has just started and may not have heard from every VM:
     * a step at a time, the first VM to answer is not asked for all
     */
    bool settling;
    /* wall clock: the guest's OOM kills or allocation stalls last rose */
    int64_t distress_ms;
    unsigned rank, n_ranked;    /* as policy_decide() (host pressure) */
    /* the brake (policy_brake): wall clock since braked; 0: running */
    int64_t braked_ms;
    /* wall clock: last released after brake_max_ms; 0: never */
    int64_t released_ms;
} PolicyVm;

/*
 * Under host pressure the VMs that can give (responsive, fresh, more
 * available than their low mark and a step) are ranked, the most
 * available first (then by name); the first half give now.  Sets each
 * VM's rank and n_ranked (a VM that cannot give: rank == n_ranked).
 * Pure.
 */
void policy_rank(const PolicyConfig *cfg, PolicyVm *vms, unsigned n_vms,
                 int64_t now_ms);

/*
 * Decide for every VM at once: policy_decide() for each, then the
 * domains: a short domain's shortfall (reserve - headroom, less what the
 * balloons are already giving) split among its VMs that can give,
 * those whose used memory has not risen lately first, never one that
 * is allocating or under pressure itself; growth held during a domain's
 * cool-down and bounded by its headroom.  A VM is shrunk only for a
 * domain it is in.  @out has @n_vms entries.  Pure.
 */
void policy_plan(const PolicyConfig *cfg, const PolicyDomain *doms,
                 unsigned n_doms, const PolicyVm *vms, unsigned n_vms,
                 const HostMemory *host, int64_t now_ms,
                 PolicyDecision *out);

typedef enum PolicyBrakeReason {
    POLICY_BRAKE_NONE,          /* running, and stays so */
    POLICY_BRAKE_APPLIED,       /* paused now */
    POLICY_BRAKE_HELD,          /* stays paused */
    POLICY_BRAKE_RECOVERED,     /* resumed: no domain of it is short */
    POLICY_BRAKE_NOTHING_COMING,    /* resumed: nothing more is coming */
    POLICY_BRAKE_TIME,          /* resumed: braked brake_max_ms */
    POLICY_BRAKE_REASON__MAX,
} PolicyBrakeReason;

extern const char *const policy_brake_reason_names[POLICY_BRAKE_REASON__MAX];

typedef struct PolicyBrakeDecision {
    bool brake;                 /* the VM is to be paused (or stay so) */
    PolicyBrakeReason reason;
} PolicyBrakeDecision;

/*
 * The brake, after policy_plan (@plan): a VM whose QEMU grows faster than
 * guest_alloc_mib_s in a domain in distress (headroom below half its
 * reserve) is paused while the other VMs of that domain still have
 * memory on its way back (their balloons' targets below what the host
 * holds for them); it resumes once none of its domains is short, when
 * nothing more is coming, or after brake_max_ms, and is not braked again
 * for brake_max_ms after that.  @out has @n_vms entries.  Pure.
 */
void policy_brake(const PolicyConfig *cfg, const PolicyDomain *doms,
                  unsigned n_doms, const PolicyVm *vms, unsigned n_vms,
                  const PolicyDecision *plan, int64_t now_ms,
                  PolicyBrakeDecision *out);

/* Load a GKeyFile INI config ([policy] and [vm NAME] groups) */
bool policy_config_load(const char *path, PolicyConfig *cfg,
                        GHashTable **per_vm /* name -> PolicyVmConfig */,
                        GError **err);

#endif
