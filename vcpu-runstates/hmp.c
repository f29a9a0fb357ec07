/*
 * vCPU and VM runstates: HMP info runstates (qemu-oc)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/qapi-types-vcpu-runstates.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "vcpu-runstates/vcpu-runstates.h"

/* The previous info runstates, for the "last interval" columns */
static VcpuRunstates *hmp_prev;

static uint64_t vm_ns(const VmRunstateInfo *vm, int state)
{
    switch (state) {
    case VM_RUNSTATE_FULL_RUN:
        return vm->full_run_ns;
    case VM_RUNSTATE_FULL_CONTENTION:
        return vm->full_contention_ns;
    case VM_RUNSTATE_CONCURRENCY_HAZARD:
        return vm->concurrency_hazard_ns;
    case VM_RUNSTATE_BLOCKED:
        return vm->blocked_ns;
    case VM_RUNSTATE_PARTIAL_RUN:
        return vm->partial_run_ns;
    case VM_RUNSTATE_PARTIAL_CONTENTION:
        return vm->partial_contention_ns;
    default:
        g_assert_not_reached();
    }
}

static void vcpu_ns(const VcpuRunstateInfo *v,
                    uint64_t out[VCPU_RUNSTATE__MAX])
{
    out[VCPU_RUNSTATE_RUNNING] = v->running_ns;
    out[VCPU_RUNSTATE_RUNNABLE] = v->runnable_ns;
    out[VCPU_RUNSTATE_BLOCKED] = v->blocked_ns;
    out[VCPU_RUNSTATE_OFFLINE] = v->offline_ns;
}

static double pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * part / whole : 0;
}

static const VcpuRunstateInfo *find_vcpu(const VcpuRunstates *rs, int64_t i)
{
    VcpuRunstateInfoList *l;

    for (l = rs ? rs->vcpus : NULL; l; l = l->next) {
        if (l->value->cpu_index == i) {
            return l->value;
        }
    }
    return NULL;
}

void hmp_info_runstates(Monitor *mon, const QDict *qdict)
{
    VcpuRunstates *rs = vcpu_runstates_snapshot();
    const VcpuRunstates *prev = hmp_prev;
    uint64_t span = rs->elapsed_ns - (prev ? prev->elapsed_ns : 0);
    VcpuRunstateInfoList *l;
    int i;

    monitor_printf(mon, "method %s, source %s, period %" PRId64 " ms, %"
                   PRIu64 " samples, missed changes %" PRIu64 "\n",
                   RunstateMethod_str(rs->method),
                   RunstateSource_str(rs->source), rs->period_ms,
                   rs->samples, rs->vm->missed_changes);
    if (rs->source_reason) {
        monitor_printf(mon, "not exact: %s\n", rs->source_reason);
    }
    if (rs->kvm_pv) {
        monitor_printf(mon, "KVM PV: pv-unhalt %s, pv-sched-yield %s, "
                       "steal-time %s, dedicated-hint %s\n",
                       rs->kvm_pv->pv_unhalt ? "on" : "off",
                       rs->kvm_pv->pv_sched_yield ? "on" : "off",
                       rs->kvm_pv->steal_time ? "on" : "off",
                       rs->kvm_pv->dedicated_hint ? "on" : "off");
    }
    monitor_printf(mon, "VM: %s; last %.1f s / since start %.1f s:\n",
                   VmRunstate_str(rs->vm->state), span / 1e9,
                   rs->elapsed_ns / 1e9);
    for (i = 0; i < VM_RUNSTATE__MAX; i++) {
        uint64_t now = vm_ns(rs->vm, i);
        uint64_t before = prev ? vm_ns(prev->vm, i) : 0;

        monitor_printf(mon, "  %-20s %5.1f%%  %5.1f%%\n", VmRunstate_str(i),
                       pct(now - before, span), pct(now, rs->elapsed_ns));
    }
    monitor_printf(mon, "vCPU   thread  state      running runnable "
                   "blocked offline (last)  running runnable blocked "
                   "offline (since start)  transitions\n");
    for (l = rs->vcpus; l; l = l->next) {
        const VcpuRunstateInfo *v = l->value;
        const VcpuRunstateInfo *p = find_vcpu(prev, v->cpu_index);
        uint64_t now[VCPU_RUNSTATE__MAX], before[VCPU_RUNSTATE__MAX] = { 0 };
        uint64_t tot = 0, last = 0;

        vcpu_ns(v, now);
        if (p) {
            vcpu_ns(p, before);
        }
        for (i = 0; i < VCPU_RUNSTATE__MAX; i++) {
            tot += now[i];
            last += now[i] - before[i];
        }
        monitor_printf(mon, "%4" PRId64 " %8" PRId64 "  %-9s", v->cpu_index,
                       v->thread_id, VcpuRunstate_str(v->state));
        for (i = 0; i < VCPU_RUNSTATE__MAX; i++) {
            monitor_printf(mon, " %6.1f%%", pct(now[i] - before[i], last));
        }
        monitor_printf(mon, "        ");
        for (i = 0; i < VCPU_RUNSTATE__MAX; i++) {
            monitor_printf(mon, " %6.1f%%", pct(now[i], tot));
        }
        monitor_printf(mon, "  %" PRIu64 "\n", v->transitions);
        if (v->kvm) {
            monitor_printf(mon, "      kvm: halt-exits %" PRIu64
                           " halt-wakeups %" PRIu64 " yield attempted %"
                           PRIu64 " successful %" PRIu64,
                           v->kvm->halt_exits, v->kvm->halt_wakeups,
                           v->kvm->directed_yield_attempted,
                           v->kvm->directed_yield_successful);
            if (v->kvm->has_preemption_reported) {
                monitor_printf(mon, " preempted %" PRIu64,
                               v->kvm->preemption_reported);
            }
            monitor_printf(mon, "\n");
        }
    }
    qapi_free_VcpuRunstates(hmp_prev);
    hmp_prev = rs;
}
