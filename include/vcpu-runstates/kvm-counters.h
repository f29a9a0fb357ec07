/*
 * vCPU runstates (qemu-oc): a vCPU's KVM counters as QMP shows them
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VCPU_RUNSTATES_KVM_COUNTERS_H
#define VCPU_RUNSTATES_KVM_COUNTERS_H

#include "qapi/qapi-types-vcpu-runstates.h"
#include "sysemu/kvm-vcpu-stats.h"

/*
 * @vals (read from @stats) as VcpuKvmCounters; a counter this KVM does
 * not have is absent where QAPI allows it
 */
VcpuKvmCounters *vcpu_runstates_kvm_counters(const KvmVcpuStats *stats,
                                             const uint64_t *vals);

#endif
