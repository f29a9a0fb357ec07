/*
 * vCPU and VM runstates (qemu-oc)
 *
 * Each vCPU is running, runnable, blocked or offline; the VM's state
 * follows from its vCPUs'.  Blocked and offline come from the vCPU
 * thread's own halt and stop transitions (hooks below, called in the
 * vCPU thread) or, under KVM, from the vCPU's KVM statistics; running
 * and runnable from sampling the host scheduler's view of each vCPU
 * thread.  The vCPU hooks take no lock: each vCPU's exact part has one
 * writer, its own thread, and readers use a seqlock.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VCPU_RUNSTATES_H
#define VCPU_RUNSTATES_H

#include "qapi/qapi-types-vcpu-runstates.h"

#define VCPU_RUNSTATE_PERIOD_DEFAULT_MS 100
#define VCPU_RUNSTATE_PERIOD_MIN_MS     10
#define VCPU_RUNSTATE_PERIOD_MAX_MS     10000

/* In the vCPU thread: it is about to wait (halted or stopped) */
void vcpu_runstates_idle(CPUState *cpu);
/* In the vCPU thread: it stopped waiting */
void vcpu_runstates_wake(CPUState *cpu);

void vcpu_runstates_set_period(int64_t period_ms);

/* A consistent snapshot; the caller frees it */
VcpuRunstates *vcpu_runstates_snapshot(void);

/* The machine properties vcpu-runstates-exact and x-...-ring-pages */
void vcpu_runstates_machine_class_init(ObjectClass *oc);

/* The target reports the KVM PV features the guest sees (under BQL) */
typedef void VcpuRunstatesKvmPvFn(KvmPvFeatures *pv);
void vcpu_runstates_set_kvm_pv_reader(VcpuRunstatesKvmPvFn *fn);

#endif
