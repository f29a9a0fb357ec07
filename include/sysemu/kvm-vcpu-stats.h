/*
 * A vCPU's KVM binary statistics, read without the vCPU (qemu-oc)
 *
 * KVM_GET_STATS_FD is a vCPU ioctl (it waits while the vCPU is in
 * KVM_RUN), so the descriptor is opened once, in the vCPU thread; reading
 * it later (pread) takes no vCPU lock and works from any thread.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSEMU_KVM_VCPU_STATS_H
#define SYSEMU_KVM_VCPU_STATS_H

/* The statistics we read, by KVM's names */
typedef enum KvmVcpuStat {
    KVM_VCPU_STAT_HALT_WAIT_NS,             /* "halt_wait_ns" */
    KVM_VCPU_STAT_BLOCKING,                 /* "blocking" (0 or 1) */
    KVM_VCPU_STAT_HALT_EXITS,               /* "halt_exits" */
    KVM_VCPU_STAT_HALT_WAKEUP,              /* "halt_wakeup" */
    KVM_VCPU_STAT_YIELD_ATTEMPTED,          /* "directed_yield_attempted" */
    KVM_VCPU_STAT_YIELD_SUCCESSFUL,         /* "directed_yield_successful" */
    KVM_VCPU_STAT_PREEMPTION_REPORTED,      /* "preemption_reported" */
    KVM_VCPU_STAT_PREEMPTION_OTHER,         /* "preemption_other" */
    KVM_VCPU_STAT__MAX,
} KvmVcpuStat;

typedef struct KvmVcpuStats KvmVcpuStats;

struct KvmVcpuStats {
    int fd;
    uint32_t data_offset;   /* where the values start in the file */
    /* bytes of values, read whole (some KVMs fail reads starting mid-block) */
    uint32_t data_size;
    /* offset of each statistic in the values, or -1 if KVM lacks it */
    int64_t offset[KVM_VCPU_STAT__MAX];
};

/* Does this KVM count @stat (opened with kvm_vcpu_stats_open())? */
static inline bool kvm_vcpu_stats_has(const KvmVcpuStats *stats,
                                      KvmVcpuStat stat)
{
    return stats->offset[stat] >= 0;
}

/* In @cpu's own thread.  False if KVM has no binary statistics. */
bool kvm_vcpu_stats_open(CPUState *cpu, KvmVcpuStats *stats);
/*
 * Any thread: read every statistic into @vals (0 where not available).
 * False if they could not be read.
 */
bool kvm_vcpu_stats_read(const KvmVcpuStats *stats,
                         uint64_t vals[KVM_VCPU_STAT__MAX]);

#endif
