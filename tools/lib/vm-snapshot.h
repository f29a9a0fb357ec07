/*
 * qemu-oc host tools: what a worker knows of its VM, at one moment
 *
 * Immutable once published and reference counted: a reader takes a
 * reference and reads at leisure, while the worker builds the next one.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_VM_SNAPSHOT_H
#define TOOLS_VM_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-c/json.h>

#define VM_STATS_NR 16      /* Linux virtio_balloon stat tags: VmStat */
#define VM_STATES_NR 6      /* full-run ... partial-contention */
#define VCPU_STATES_NR 4    /* running, runnable, blocked, offline */

/* The guest's statistics, in Linux's tag order (virtio_balloon.h) */
typedef enum VmStat {
    STAT_SWAP_IN,
    STAT_SWAP_OUT,
    STAT_MAJOR_FAULTS,
    STAT_MINOR_FAULTS,
    STAT_FREE,
    STAT_TOTAL,
    STAT_AVAILABLE,
    STAT_DISK_CACHES,
    STAT_HUGETLB_ALLOCATIONS,
    STAT_HUGETLB_FAILURES,
    STAT_OOM_KILLS,
    STAT_ALLOC_STALLS,
    STAT_ASYNC_SCANS,
    STAT_DIRECT_SCANS,
    STAT_ASYNC_RECLAIMS,
    STAT_DIRECT_RECLAIMS,
} VmStat;

/* What each is called and what it is: the one table of them */
typedef struct VmStatInfo {
    const char *name;           /* QAPI's ("swap-in") */
    const char *label;          /* the metrics' label, NULL: not exported */
    bool level;                 /* memory held now (else a running count) */
    bool bytes;                 /* in bytes (else a number of events) */
} VmStatInfo;
extern const VmStatInfo vm_stats[VM_STATS_NR];

/* Indices in vm_state_names */
enum {
    VM_STATE_FULL_RUN,
    VM_STATE_FULL_CONTENTION,
    VM_STATE_CONCURRENCY_HAZARD,
    VM_STATE_BLOCKED,
    VM_STATE_PARTIAL_RUN,
    VM_STATE_PARTIAL_CONTENTION,
};

extern const char *const vm_state_names[VM_STATES_NR];
extern const char *const vcpu_state_names[VCPU_STATES_NR];

/* KVM PV features the guest sees, bits of VmRunstatesSample.kvm_pv */
enum {
    VM_KVM_PV_UNHALT,
    VM_KVM_PV_SCHED_YIELD,
    VM_KVM_PV_STEAL_TIME,
    VM_KVM_PV_DEDICATED_HINT,
    VM_KVM_PV_NR
};
extern const char *const vm_kvm_pv_names[VM_KVM_PV_NR];   /* QAPI names */
extern const char vm_kvm_pv_letters[VM_KVM_PV_NR + 1];     /* "UYSD" */

/* Indices in vcpu_state_names */
enum {
    VCPU_STATE_RUNNING,
    VCPU_STATE_RUNNABLE,
    VCPU_STATE_BLOCKED,
    VCPU_STATE_OFFLINE,
};

/* One vCPU of a runstates sample */
typedef struct VmVcpuSample {
    int64_t index, thread_id;
    int state;                      /* index in vcpu_state_names */
    uint64_t ns[VCPU_STATES_NR];
    uint64_t transitions;
    /* KVM's counters: none under TCG, nor from libvirt */
    bool has_kvm, has_preemption;
    uint64_t yields, yields_done;   /* directed yields: asked, done */
    uint64_t preempted, preempted_other;
} VmVcpuSample;

/* One query-vcpu-runstates answer, the counters a share is computed from */
typedef struct VmRunstatesSample {
    int64_t taken_us;               /* monotonic, when the answer came */
    uint64_t elapsed_ns;
    bool has_vm;                    /* the VM's states (not from libvirt) */
    int vm_state;                   /* index in vm_state_names, -1 unknown */
    uint64_t vm_ns[VM_STATES_NR];
    uint64_t missed_changes;
    unsigned n_vcpus;
    VmVcpuSample *vcpu;
    char *method, *source, *source_reason;
    bool has_kvm_pv;                /* the guest's KVM PV features known */
    uint32_t kvm_pv;                /* bit n: vm_kvm_pv_names[n] */
} VmRunstatesSample;

typedef struct VmSnapshot {
    gint ref;
    char *name;                     /* the VM's name */
    char *where;                    /* socket path, or libvirt URI */
    int64_t taken_us;               /* monotonic */

    bool responsive;                /* answered its last request in time */
    int64_t unresponsive_since_us;  /* wall clock µs; 0 if responsive */
    char *error;                    /* the last failure, or NULL */

    int pid;                        /* the QEMU process; 0: unknown */
    /* the balloon's free-page-reporting, deflate-on-oom; -1: unknown */
    int balloon_fpr, balloon_deflate;
    int64_t max_memory;             /* boot RAM, bytes; 0: unknown */
    /* the balloon target a collector's policy set, and when (wall ms) */
    int64_t balloon_target, balloon_target_ms;   /* 0: none known */
    bool has_balloon;
    int64_t actual;                 /* bytes */
    bool has_stats;
    uint64_t stats[VM_STATS_NR];
    uint32_t stats_mask;            /* bit n: stat n reported */
    int64_t stats_update_ms;        /* wall clock ms of the guest's report */
    /* the guest's previous report, for rates (prev_update_ms 0: none) */
    uint64_t prev_stats[VM_STATS_NR];
    int64_t prev_update_ms;

    /* the two latest runstates answers; shares come from their difference */
    bool has_runstates, has_prev;
    VmRunstatesSample cur, prev;
} VmSnapshot;

VmSnapshot *vm_snapshot_new(const char *name, const char *where);
VmSnapshot *vm_snapshot_ref(VmSnapshot *s);
void vm_snapshot_unref(VmSnapshot *s);
/* A deep copy with ref 1, for the worker to build the next one from */
VmSnapshot *vm_snapshot_copy(const VmSnapshot *s);

/* Fill @s from a query-balloon answer / a BALLOON_STATS event's data */
bool vm_snapshot_set_balloon(VmSnapshot *s, json_object *info);
/* Make a query-vcpu-runstates answer the current sample (old one: prev) */
bool vm_snapshot_set_runstates(VmSnapshot *s, json_object *rs,
                               int64_t now_us);

/*
 * Shares over the interval between prev and cur (false if there is no
 * such interval): the VM's per state, and vCPU @i's per state
 */
bool vm_snapshot_vm_shares(const VmSnapshot *s, double out[VM_STATES_NR]);
bool vm_snapshot_vcpu_shares(const VmSnapshot *s, unsigned i,
                             double out[VCPU_STATES_NR]);
/*
 * CPU ready: the share of time runnable but not running (waiting for a
 * host CPU), in the bands operators know from esxtop's %RDY: under 5 %
 * fine, 5-10 % significant, 10-20 % hurting, 20 % and more critical
 */
typedef enum VmReadyBand {
    VM_READY_FINE,
    VM_READY_SIGNIFICANT,
    VM_READY_HURTING,
    VM_READY_CRITICAL,
} VmReadyBand;

extern const char *const vm_ready_band_names[4];   /* "fine", ... */
extern const char *const vm_ready_band_marks[4];   /* "", "+", "!", "!!" */
VmReadyBand vm_ready_band(double share);

/*
 * The VM's ready share over the last interval: the mean of its vCPUs'
 * runnable shares (false if there is no interval yet)
 */
bool vm_snapshot_ready(const VmSnapshot *s, double *share);

/*
 * Lock-holder preemption suspected: over the last interval the VM's
 * co-stop (concurrency-hazard share) is at least 3 %, and its vCPUs
 * either ask KVM to yield to a preempted vCPU at least 10 times a second
 * each, or are preempted by the host while running at least 50 times a
 * second each (docs/signals.md says why these marks)
 */
#define VM_LHP_COSTOP_MIN 0.03
#define VM_LHP_YIELDS_MIN 10.0
#define VM_LHP_PREEMPTED_MIN 50.0

typedef struct VmLhp {
    double costop;                  /* concurrency-hazard share */
    double yields_per_s;            /* directed yields asked, per vCPU */
    double yield_done;              /* the share that yielded, -1: none */
    bool has_preempted;             /* this KVM counts preemptions */
    double preempted_per_s;         /* reported preemptions, per vCPU */
    bool suspected;
} VmLhp;

/*
 * The VM's figures over the last interval and the rule's verdict; false
 * if unknown (no interval, no VM states, no KVM counters: TCG, libvirt)
 */
bool vm_snapshot_lhp(const VmSnapshot *s, VmLhp *out);

/*
 * Memory flags (docs/signals.md): the guest in distress (under 5 % of
 * its memory available, or an OOM kill or allocation stall between its
 * last two reports); a balloon not following its target (over 64 MiB
 * from it 120 s after it was set).  Each false if unknown.
 */
#define VM_DISTRESS_AVAILABLE 0.05
#define VM_FOLLOW_SLACK_BYTES (64ll << 20)
#define VM_FOLLOW_MS (120 * 1000)
bool vm_snapshot_distress(const VmSnapshot *s, bool *distress);
bool vm_snapshot_following(const VmSnapshot *s, int64_t now_ms,
                           bool *following);

/* The guest's statistic @stat in its last report (false: not reported) */
bool vm_snapshot_stat(const VmSnapshot *s, VmStat stat, uint64_t *val);

/* A guest statistic's increase per second between its last two reports */
bool vm_snapshot_stat_rate(const VmSnapshot *s, unsigned stat, double *per_s);
/* Age of the statistics in ms at wall clock @now_ms, -1 if none */
int64_t vm_snapshot_stats_age_ms(const VmSnapshot *s, int64_t now_ms);

/*
 * The balloon's members, each if known: balloon-actual, max-memory
 * (bytes), free-page-reporting, deflate-on-oom (vmtop --json and the
 * collector's wire form)
 */
void vm_snapshot_add_balloon(json_object *o, const VmSnapshot *s);

/* vCPU @i's KVM counters as QMP names them (it has them: has_kvm) */
json_object *vm_snapshot_kvm_json(const VmRunstatesSample *r, unsigned i);

/* @mask as QAPI names, space-separated ("" if none) */
char *vm_kvm_pv_string(uint32_t mask);
/* The reverse; false if a word is not a feature's name */
bool vm_kvm_pv_parse(const char *words, uint32_t *mask);

/* "balloon-target" and its time, if @target is known (> 0) */
void vm_snapshot_add_target(json_object *o, int64_t target, int64_t when_ms);

/* The snapshot as a JSON object (vmtop --json) */
json_object *vm_snapshot_to_json(const VmSnapshot *s, int64_t now_ms);

#endif
