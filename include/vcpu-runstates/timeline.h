/*
 * vCPU and VM runstates: the exact timeline
 *
 * Each vCPU's state at every instant follows from two views:
 *  - QEMU's: the vCPU thread is awake, halted (blocked) or stopped
 *    (offline), from the hooks in qemu_wait_io_event;
 *  - the host scheduler's: the thread is on a CPU, preempted (it still
 *    wants a CPU) or sleeping, from its context-switch records.
 * An awake vCPU is running on a CPU, runnable when preempted, and when
 * it sleeps: blocked under KVM (a voluntary sleep inside KVM_RUN is the
 * guest's halt), runnable under TCG (it waits for a lock in QEMU).
 *
 * The sources queue their changes per vCPU, each in time order; the
 * timeline merges all queues in time order up to a horizon and drives
 * the VM state machine at every change, accumulating nanoseconds per
 * vCPU state and per VM state.  A change that arrives after the horizon
 * passed its time (a record written while the queues were drained) is
 * applied at the horizon: it is counted as late.
 *
 * Pure code (standard C and GLib): its unit test drives it directly.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VCPU_RUNSTATES_TIMELINE_H
#define VCPU_RUNSTATES_TIMELINE_H

#include "vcpu-runstates/math.h"

/* QEMU's view of a vCPU thread */
typedef enum RsQemuView {
    RS_QEMU_AWAKE,
    RS_QEMU_BLOCKED,
    RS_QEMU_OFFLINE,
} RsQemuView;

/* The host scheduler's view of a vCPU thread */
typedef enum RsSchedView {
    RS_SCHED_ONCPU,
    RS_SCHED_PREEMPTED,
    RS_SCHED_SLEEPING,
} RsSchedView;

/* Where a change comes from: one queue per source and vCPU */
typedef enum RsSource {
    RS_SOURCE_QEMU,     /* value: RsQemuView */
    RS_SOURCE_SCHED,    /* value: RsSchedView */
    RS_SOURCE__MAX,
} RsSource;

typedef struct RsChange {
    int64_t t;          /* CLOCK_MONOTONIC, ns */
    int value;
} RsChange;

/* Changes of one source, in time order; [head, len) not yet applied */
typedef struct RsQueue {
    RsChange *c;
    unsigned head, len, size;
} RsQueue;

typedef struct RsTimelineVcpu {
    RsQueue queue[RS_SOURCE__MAX];
    bool present;       /* counted in the VM's state (not unplugged) */
    RsQemuView qemu;
    RsSchedView sched;
    int state;          /* RS_VCPU_* */
    int64_t since;      /* accounted up to then */
    uint64_t acc[RS_VCPU__MAX];
    uint64_t transitions;
} RsTimelineVcpu;

typedef struct RsTimeline {
    unsigned n;
    RsTimelineVcpu *vcpu;
    bool sleep_is_blocked;      /* KVM */
    int64_t now;                /* the VM's time is accounted up to now */
    unsigned count[RS_VCPU__MAX];   /* present vCPUs per state */
    int vm_state;               /* RS_VM_* */
    int64_t vm_entered;         /* when vm_state began (monotonic ns) */
    uint64_t vm_acc[RS_VM__MAX];
    uint64_t vm_transitions;
    uint64_t late;              /* changes applied after their time */
} RsTimeline;

/* @n vCPU slots, all absent, accounting from @start */
void rs_timeline_init(RsTimeline *tl, unsigned n, bool sleep_is_blocked,
                      int64_t start);
void rs_timeline_destroy(RsTimeline *tl);

/*
 * vCPU @i appears at @t (its thread started, or a hot-plugged one took
 * the slot): QEMU's view @qemu, the scheduler's @sched.  Changes queued
 * for the slot before are applied first.
 */
void rs_timeline_vcpu_start(RsTimeline *tl, unsigned i, int64_t t,
                            RsQemuView qemu, RsSchedView sched);
/* vCPU @i's thread is gone (unplugged) by @t: no longer counted */
void rs_timeline_vcpu_gone(RsTimeline *tl, unsigned i, int64_t t);

void rs_queue_grow(RsQueue *q);

/* Queue a change of vCPU @i from @src; each source in time order */
static inline void rs_timeline_push(RsTimeline *tl, unsigned i, RsSource src,
                                    int64_t t, int value)
{
    RsQueue *q = &tl->vcpu[i].queue[src];

    if (q->len == q->size) {
        rs_queue_grow(q);
    }
    q->c[q->len++] = (RsChange) { .t = t, .value = value };
}

/* Apply every queued change up to @horizon, in time order; account to it */
void rs_timeline_advance(RsTimeline *tl, int64_t horizon);

/* The state of an awake/halted/stopped vCPU thread in scheduler state */
int rs_timeline_vcpu_state(RsQemuView qemu, RsSchedView sched,
                           bool sleep_is_blocked);

#endif
