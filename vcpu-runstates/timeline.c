/*
 * vCPU and VM runstates: the exact timeline
 *
 * See include/vcpu-runstates/timeline.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "vcpu-runstates/timeline.h"

int rs_timeline_vcpu_state(RsQemuView qemu, RsSchedView sched,
                           bool sleep_is_blocked)
{
    switch (qemu) {
    case RS_QEMU_OFFLINE:
        return RS_VCPU_OFFLINE;
    case RS_QEMU_BLOCKED:
        return RS_VCPU_BLOCKED;
    case RS_QEMU_AWAKE:
        break;
    }
    switch (sched) {
    case RS_SCHED_ONCPU:
        return RS_VCPU_RUNNING;
    case RS_SCHED_PREEMPTED:
        return RS_VCPU_RUNNABLE;
    case RS_SCHED_SLEEPING:
        break;
    }
    return sleep_is_blocked ? RS_VCPU_BLOCKED : RS_VCPU_RUNNABLE;
}

void rs_timeline_init(RsTimeline *tl, unsigned n, bool sleep_is_blocked,
                      int64_t start)
{
    unsigned i, s;

    memset(tl, 0, sizeof(*tl));
    tl->n = n;
    tl->vcpu = g_new0(RsTimelineVcpu, n);
    tl->sleep_is_blocked = sleep_is_blocked;
    tl->now = tl->vm_entered = start;
    tl->vm_state = RS_VM_BLOCKED;
    for (i = 0; i < n; i++) {
        for (s = 0; s < RS_SOURCE__MAX; s++) {
            tl->vcpu[i].queue[s] = g_array_new(false, false, sizeof(RsChange));
        }
        tl->vcpu[i].qemu = RS_QEMU_OFFLINE;
        tl->vcpu[i].sched = RS_SCHED_SLEEPING;
        tl->vcpu[i].state = RS_VCPU_OFFLINE;
    }
}

void rs_timeline_destroy(RsTimeline *tl)
{
    unsigned i, s;

    for (i = 0; i < tl->n; i++) {
        for (s = 0; s < RS_SOURCE__MAX; s++) {
            g_array_free(tl->vcpu[i].queue[s], true);
        }
    }
    g_free(tl->vcpu);
    tl->vcpu = NULL;
    tl->n = 0;
}

/* Account the time from tl->now to @t to the current states */
static void account_to(RsTimeline *tl, int64_t t)
{
    uint64_t d;
    unsigned i;

    if (t <= tl->now) {
        return;
    }
    d = t - tl->now;
    for (i = 0; i < tl->n; i++) {
        tl->vcpu[i].acc[tl->vcpu[i].state] += d;
    }
    tl->vm_acc[tl->vm_state] += d;
    tl->now = t;
}

/* The VM's state may have changed at tl->now */
static void update_vm(RsTimeline *tl)
{
    int vm = rs_vm_state(tl->count[RS_VCPU_RUNNING],
                         tl->count[RS_VCPU_RUNNABLE],
                         tl->count[RS_VCPU_BLOCKED] +
                         tl->count[RS_VCPU_OFFLINE]);

    if (vm != tl->vm_state) {
        tl->vm_state = vm;
        tl->vm_entered = tl->now;
        tl->vm_transitions++;
    }
}

/* vCPU @v's views changed at tl->now */
static void update_vcpu(RsTimeline *tl, RsTimelineVcpu *v)
{
    int state = rs_timeline_vcpu_state(v->qemu, v->sched,
                                       tl->sleep_is_blocked);

    if (!v->present) {
        state = RS_VCPU_OFFLINE;
    }
    if (state == v->state) {
        return;
    }
    if (v->present) {
        tl->count[v->state]--;
        tl->count[state]++;
        v->transitions++;
    }
    v->state = state;
    update_vm(tl);
}

/* Move to @t (a late change, before tl->now, is applied at tl->now) */
static void move_to(RsTimeline *tl, int64_t t)
{
    if (t < tl->now) {
        tl->late++;
    }
    account_to(tl, t);
}

void rs_timeline_vcpu_start(RsTimeline *tl, unsigned i, int64_t t,
                            RsQemuView qemu, RsSchedView sched)
{
    RsTimelineVcpu *v = &tl->vcpu[i];

    g_assert(i < tl->n);
    rs_timeline_advance(tl, t);
    move_to(tl, t);
    if (!v->present) {
        v->present = true;
        tl->count[v->state]++;
        update_vm(tl);
    }
    v->qemu = qemu;
    v->sched = sched;
    update_vcpu(tl, v);
}

void rs_timeline_vcpu_gone(RsTimeline *tl, unsigned i, int64_t t)
{
    RsTimelineVcpu *v = &tl->vcpu[i];

    g_assert(i < tl->n);
    rs_timeline_advance(tl, t);
    move_to(tl, t);
    if (v->present) {
        tl->count[v->state]--;
        v->present = false;
        v->state = RS_VCPU_OFFLINE;
        update_vm(tl);
    }
}

void rs_timeline_push(RsTimeline *tl, unsigned i, RsSource src, int64_t t,
                      int value)
{
    RsChange c = { .t = t, .value = value };

    g_assert(i < tl->n && src < RS_SOURCE__MAX);
    g_array_append_val(tl->vcpu[i].queue[src], c);
}

/* The earliest queued change at or before @horizon, or NULL */
static RsChange *next_change(RsTimeline *tl, int64_t horizon,
                             unsigned *vcpu, RsSource *src)
{
    RsChange *best = NULL;
    unsigned i, s;

    for (i = 0; i < tl->n; i++) {
        RsTimelineVcpu *v = &tl->vcpu[i];

        for (s = 0; s < RS_SOURCE__MAX; s++) {
            RsChange *c;

            if (v->head[s] >= v->queue[s]->len) {
                continue;
            }
            c = &g_array_index(v->queue[s], RsChange, v->head[s]);
            if (c->t <= horizon && (!best || c->t < best->t)) {
                best = c;
                *vcpu = i;
                *src = s;
            }
        }
    }
    return best;
}

/* Drop the applied changes from the queues */
static void compact(RsTimeline *tl)
{
    unsigned i, s;

    for (i = 0; i < tl->n; i++) {
        RsTimelineVcpu *v = &tl->vcpu[i];

        for (s = 0; s < RS_SOURCE__MAX; s++) {
            if (v->head[s]) {
                g_array_remove_range(v->queue[s], 0, v->head[s]);
                v->head[s] = 0;
            }
        }
    }
}

void rs_timeline_advance(RsTimeline *tl, int64_t horizon)
{
    RsChange *c;
    unsigned i;
    RsSource src;

    while ((c = next_change(tl, horizon, &i, &src))) {
        RsTimelineVcpu *v = &tl->vcpu[i];

        move_to(tl, c->t);
        if (src == RS_SOURCE_QEMU) {
            v->qemu = c->value;
        } else {
            v->sched = c->value;
        }
        v->head[src]++;
        update_vcpu(tl, v);
    }
    compact(tl);
    account_to(tl, horizon);
}
