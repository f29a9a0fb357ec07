/*
 * vCPU runstates (qemu-oc): a vCPU's KVM counters as QMP shows them
 *
 * The counters come from KVM's binary statistics of the vCPU, read by
 * the sampler without the vCPU (sysemu/kvm-vcpu-stats.h).  Those that a
 * lock-holder preemption diagnosis needs and older KVMs lack (the
 * preemption counts) are optional: absent, never 0, when not counted.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "vcpu-runstates/kvm-counters.h"

VcpuKvmCounters *vcpu_runstates_kvm_counters(const KvmVcpuStats *stats,
                                             const uint64_t *vals)
{
    VcpuKvmCounters *k = g_new0(VcpuKvmCounters, 1);

    k->halt_exits = vals[KVM_VCPU_STAT_HALT_EXITS];
    k->halt_wakeups = vals[KVM_VCPU_STAT_HALT_WAKEUP];
    k->halt_wait_ns = vals[KVM_VCPU_STAT_HALT_WAIT_NS];
    k->directed_yield_attempted = vals[KVM_VCPU_STAT_YIELD_ATTEMPTED];
    k->directed_yield_successful = vals[KVM_VCPU_STAT_YIELD_SUCCESSFUL];
    k->has_preemption_reported =
        kvm_vcpu_stats_has(stats, KVM_VCPU_STAT_PREEMPTION_REPORTED);
    k->preemption_reported = vals[KVM_VCPU_STAT_PREEMPTION_REPORTED];
    k->has_preemption_other =
        kvm_vcpu_stats_has(stats, KVM_VCPU_STAT_PREEMPTION_OTHER);
    k->preemption_other = vals[KVM_VCPU_STAT_PREEMPTION_OTHER];
    return k;
}
