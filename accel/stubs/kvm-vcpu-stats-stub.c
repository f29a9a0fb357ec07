/*
 * A vCPU's KVM binary statistics: stub for builds without KVM (qemu-oc)
 *
 * vcpu-runstates/accounting.c is built for every accelerator and opens the
 * statistics only when KVM is in use, which a build without KVM never is.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/core/cpu.h"
#include "sysemu/kvm-vcpu-stats.h"

bool kvm_vcpu_stats_open(CPUState *cpu, KvmVcpuStats *stats)
{
    int i;

    for (i = 0; i < KVM_VCPU_STAT__MAX; i++) {
        stats->offset[i] = -1;
    }
    stats->fd = -1;
    return false;
}

bool kvm_vcpu_stats_read(const KvmVcpuStats *stats,
                         uint64_t vals[KVM_VCPU_STAT__MAX])
{
    return false;
}
