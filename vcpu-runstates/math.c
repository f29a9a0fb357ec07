/*
 * vCPU and VM runstates: the arithmetic
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "vcpu-runstates/math.h"

void rs_vcpu_split(uint64_t wall_ns, uint64_t offline_ns, uint64_t blocked_ns,
                   uint64_t oncpu_ns, uint64_t out[RS_VCPU__MAX])
{
    uint64_t active;

    out[RS_VCPU_OFFLINE] = MIN(offline_ns, wall_ns);
    out[RS_VCPU_BLOCKED] = MIN(blocked_ns, wall_ns - out[RS_VCPU_OFFLINE]);
    active = wall_ns - out[RS_VCPU_OFFLINE] - out[RS_VCPU_BLOCKED];
    out[RS_VCPU_RUNNING] = MIN(oncpu_ns, active);
    out[RS_VCPU_RUNNABLE] = active - out[RS_VCPU_RUNNING];
}

int rs_vm_state(unsigned running, unsigned runnable, unsigned blocked)
{
    if (running && runnable) {
        return RS_VM_CONCURRENCY_HAZARD;
    }
    if (running) {
        return blocked ? RS_VM_PARTIAL_RUN : RS_VM_FULL_RUN;
    }
    if (runnable) {
        return blocked ? RS_VM_PARTIAL_CONTENTION : RS_VM_FULL_CONTENTION;
    }
    return RS_VM_BLOCKED;
}

void rs_vm_shares(const uint64_t (*vcpu_parts)[RS_VCPU__MAX], unsigned n,
                  double out[RS_VM__MAX])
{
    /* products over the vCPUs of P(running), P(runnable), P(blocked) ... */
    double all_run = 1, all_wait = 1, all_idle = 1;
    double no_wait = 1, no_run = 1;
    unsigned i;

    memset(out, 0, sizeof(double) * RS_VM__MAX);
    if (n == 0) {
        out[RS_VM_BLOCKED] = 1;
        return;
    }
    for (i = 0; i < n; i++) {
        const uint64_t *p = vcpu_parts[i];
        double total = (double)p[RS_VCPU_RUNNING] + p[RS_VCPU_RUNNABLE] +
                       p[RS_VCPU_BLOCKED] + p[RS_VCPU_OFFLINE];
        double run, wait, idle;

        if (total <= 0) {
            run = wait = 0;
            idle = 1;
        } else {
            run = p[RS_VCPU_RUNNING] / total;
            wait = p[RS_VCPU_RUNNABLE] / total;
            /* not 1 - run - wait: rounding could make that negative */
            idle = (p[RS_VCPU_BLOCKED] + (double)p[RS_VCPU_OFFLINE]) / total;
        }
        all_run *= run;
        all_wait *= wait;
        all_idle *= idle;
        no_wait *= run + idle;
        no_run *= wait + idle;
    }
    out[RS_VM_FULL_RUN] = all_run;
    out[RS_VM_FULL_CONTENTION] = all_wait;
    out[RS_VM_BLOCKED] = all_idle;
    out[RS_VM_PARTIAL_RUN] = MAX(0.0, no_wait - all_run - all_idle);
    out[RS_VM_PARTIAL_CONTENTION] = MAX(0.0, no_run - all_wait - all_idle);
    /* at least one running and at least one runnable */
    out[RS_VM_CONCURRENCY_HAZARD] = MAX(0.0, 1 - no_wait - no_run + all_idle);
}
