/*
 * vCPU and VM runstates: the arithmetic
 *
 * Pure functions, shared by vcpu-runstates/accounting.c and its unit test.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VCPU_RUNSTATES_MATH_H
#define VCPU_RUNSTATES_MATH_H

/* vCPU states, in the order of QAPI VcpuRunstate */
enum {
    RS_VCPU_RUNNING,
    RS_VCPU_RUNNABLE,
    RS_VCPU_BLOCKED,
    RS_VCPU_OFFLINE,
    RS_VCPU__MAX,
};

/* VM states, in the order of QAPI VmRunstate */
enum {
    RS_VM_FULL_RUN,
    RS_VM_FULL_CONTENTION,
    RS_VM_CONCURRENCY_HAZARD,
    RS_VM_BLOCKED,
    RS_VM_PARTIAL_RUN,
    RS_VM_PARTIAL_CONTENTION,
    RS_VM__MAX,
};

/*
 * Split one vCPU's sampling interval of @wall_ns.  @offline_ns and
 * @blocked_ns are known exactly (or from KVM's counters); the rest of the
 * interval the vCPU wanted to run: it ran for @oncpu_ns (the host
 * scheduler's run time of its thread) and was runnable for the remainder
 * (waiting for a host CPU, or for a lock).  Out-of-range inputs (clock
 * skew between sources) are clamped so that the four parts add up to
 * @wall_ns.
 */
void rs_vcpu_split(uint64_t wall_ns, uint64_t offline_ns, uint64_t blocked_ns,
                   uint64_t oncpu_ns, uint64_t out[RS_VCPU__MAX]);

/*
 * The VM's state when @running vCPUs run, @runnable wait for a host CPU
 * and @blocked are blocked or offline.
 */
int rs_vm_state(unsigned running, unsigned runnable, unsigned blocked);

/*
 * Share of an interval spent in each VM state, given each vCPU's shares
 * of running, runnable, and blocked or offline time (@vcpu_parts[i] as
 * from rs_vcpu_split, in any unit) and assuming the vCPUs are independent
 * within the interval.  Exact when no vCPU changes state in the interval.
 * @out sums to 1 (n > 0); with n == 0 the VM is blocked.
 */
void rs_vm_shares(const uint64_t (*vcpu_parts)[RS_VCPU__MAX], unsigned n,
                  double out[RS_VM__MAX]);

#endif
