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
    unsigned i;

    memset(tl, 0, sizeof(*tl));
    tl->n = n;
    tl->vcpu = g_new0(RsTimelineVcpu, n);
    tl->sleep_is_blocked = sleep_is_blocked;
    tl->now = tl->vm_entered = start;
    tl->vm_state = RS_VM_BLOCKED;
    for (i = 0; i < n; i++) {
        tl->vcpu[i].since = start;
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
            g_free(tl->vcpu[i].queue[s].c);
        }
    }
    g_free(tl->vcpu);
    tl->vcpu = NULL;
    tl->n = 0;
}

/*
 * Move the timeline to @t: the VM's time since tl->now goes to its
 * state.  A vCPU's time is accounted when its state changes (and at the
 * end of rs_timeline_advance), so that a change costs the same whatever
 * the number of vCPUs.
 */
static void account_to(RsTimeline *tl, int64_t t)
{
    if (t > tl->now) {
        tl->vm_acc[tl->vm_state] += t - tl->now;
        tl->now = t;
    }
}

/* vCPU @v's time up to tl->now goes to its state */
static void account_vcpu(RsTimeline *tl, RsTimelineVcpu *v)
{
    v->acc[v->state] += tl->now - v->since;
    v->since = tl->now;
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
    account_vcpu(tl, v);
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
        account_vcpu(tl, v);
        tl->count[v->state]--;
        v->present = false;
        v->state = RS_VCPU_OFFLINE;
        update_vm(tl);
    }
}

void rs_queue_grow(RsQueue *q)
{
    if (q->head) {
        /* drop what was applied first */
        memmove(q->c, q->c + q->head, (q->len - q->head) * sizeof(*q->c));
        q->len -= q->head;
        q->head = 0;
    }
    if (q->len == q->size) {
        q->size = MAX(64, q->size * 2);
        q->c = g_renew(RsChange, q->c, q->size);
    }
}

/* The time of queue @s of @v's next change, if at or before @horizon */
static int64_t next_time(RsTimelineVcpu *v, unsigned s, int64_t horizon)
{
    RsQueue *q = &v->queue[s];

    if (q->head >= q->len || q->c[q->head].t > horizon) {
        return INT64_MAX;
    }
    return q->c[q->head].t;
}

/* Empty queues start again at their beginning */
static void compact(RsTimeline *tl)
{
    unsigned i, s;

    for (i = 0; i < tl->n; i++) {
        for (s = 0; s < RS_SOURCE__MAX; s++) {
            RsQueue *q = &tl->vcpu[i].queue[s];

            if (q->head == q->len) {
                q->head = q->len = 0;
            }
        }
    }
}

void rs_timeline_advance(RsTimeline *tl, int64_t horizon)
{
    unsigned nq = tl->n * RS_SOURCE__MAX;
    g_autofree int64_t *next = g_new(int64_t, nq);
    unsigned q, best, i;

    /* next[q]: the time of queue q's next change (INT64_MAX: none) */
    for (q = 0; q < nq; q++) {
        next[q] = next_time(&tl->vcpu[q / RS_SOURCE__MAX], q % RS_SOURCE__MAX,
                            horizon);
    }
    for (;;) {
        RsTimelineVcpu *v;
        RsChange *c;
        unsigned s;

        for (best = 0, q = 1; q < nq; q++) {
            if (next[q] < next[best]) {
                best = q;
            }
        }
        if (!nq || next[best] == INT64_MAX) {
            break;
        }
        v = &tl->vcpu[best / RS_SOURCE__MAX];
        s = best % RS_SOURCE__MAX;
        c = &v->queue[s].c[v->queue[s].head];
        move_to(tl, c->t);
        if (s == RS_SOURCE_QEMU) {
            v->qemu = c->value;
        } else {
            v->sched = c->value;
        }
        v->queue[s].head++;
        next[best] = next_time(v, s, horizon);
        update_vcpu(tl, v);
    }
    compact(tl);
    account_to(tl, horizon);
    for (i = 0; i < tl->n; i++) {
        account_vcpu(tl, &tl->vcpu[i]);
    }
}
