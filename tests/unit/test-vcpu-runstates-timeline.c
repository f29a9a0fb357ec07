/*
 * Unit tests of the exact runstates timeline (vcpu-runstates/timeline.c)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "vcpu-runstates/timeline.h"

static uint64_t sum(const uint64_t *a, unsigned n)
{
    uint64_t s = 0;
    unsigned i;

    for (i = 0; i < n; i++) {
        s += a[i];
    }
    return s;
}

/* Every vCPU's and the VM's counters add up to the time accounted */
static void check_sums(RsTimeline *tl, int64_t start)
{
    unsigned i;

    g_assert_cmpuint(sum(tl->vm_acc, RS_VM__MAX), ==, tl->now - start);
    for (i = 0; i < tl->n; i++) {
        g_assert_cmpuint(sum(tl->vcpu[i].acc, RS_VCPU__MAX), ==,
                         tl->now - start);
    }
}

/* Two spinning vCPUs sharing one host core: one runs, the other waits */
static void test_one_core_two_spinners(void)
{
    RsTimeline tl;
    int64_t t;

    rs_timeline_init(&tl, 2, false, 0);
    rs_timeline_vcpu_start(&tl, 0, 0, RS_QEMU_AWAKE, RS_SCHED_ONCPU);
    rs_timeline_vcpu_start(&tl, 1, 0, RS_QEMU_AWAKE, RS_SCHED_PREEMPTED);
    for (t = 10; t <= 1000; t += 10) {
        int on = (t / 10) % 2;

        /* the switch-out comes first in the kernel, then the switch-in */
        rs_timeline_push(&tl, !on, RS_SOURCE_SCHED, t, RS_SCHED_PREEMPTED);
        rs_timeline_push(&tl, on, RS_SOURCE_SCHED, t, RS_SCHED_ONCPU);
    }
    rs_timeline_advance(&tl, 1000);
    check_sums(&tl, 0);
    g_assert_cmpuint(tl.vm_acc[RS_VM_CONCURRENCY_HAZARD], ==, 1000);
    g_assert_cmpuint(tl.vcpu[0].acc[RS_VCPU_RUNNING], ==, 500);
    g_assert_cmpuint(tl.vcpu[0].acc[RS_VCPU_RUNNABLE], ==, 500);
    g_assert_cmpuint(tl.vcpu[1].transitions, ==, 1 + 100);  /* + start */
    g_assert_cmpuint(tl.late, ==, 0);
    rs_timeline_destroy(&tl);
}

/* Each VM state where it is known by construction */
static void test_vm_states(void)
{
    RsTimeline tl;

    rs_timeline_init(&tl, 2, false, 0);
    rs_timeline_vcpu_start(&tl, 0, 0, RS_QEMU_AWAKE, RS_SCHED_ONCPU);
    rs_timeline_vcpu_start(&tl, 1, 0, RS_QEMU_AWAKE, RS_SCHED_ONCPU);
    /* 0..100 full-run; 100..200 partial-run (vCPU 1 halts) */
    rs_timeline_push(&tl, 1, RS_SOURCE_QEMU, 100, RS_QEMU_BLOCKED);
    rs_timeline_push(&tl, 1, RS_SOURCE_SCHED, 101, RS_SCHED_SLEEPING);
    /* 200..300 partial-contention (vCPU 0 preempted) */
    rs_timeline_push(&tl, 0, RS_SOURCE_SCHED, 200, RS_SCHED_PREEMPTED);
    /* 300..400 full-contention (vCPU 1 wakes, waits for a CPU) */
    rs_timeline_push(&tl, 1, RS_SOURCE_SCHED, 300, RS_SCHED_PREEMPTED);
    rs_timeline_push(&tl, 1, RS_SOURCE_QEMU, 300, RS_QEMU_AWAKE);
    /* 400..500 blocked (both halted), 500..600 offline counts as blocked */
    rs_timeline_push(&tl, 0, RS_SOURCE_QEMU, 400, RS_QEMU_BLOCKED);
    rs_timeline_push(&tl, 1, RS_SOURCE_QEMU, 400, RS_QEMU_BLOCKED);
    rs_timeline_push(&tl, 0, RS_SOURCE_QEMU, 500, RS_QEMU_OFFLINE);
    rs_timeline_push(&tl, 1, RS_SOURCE_QEMU, 500, RS_QEMU_OFFLINE);
    /* queued beyond the horizon: not applied yet */
    rs_timeline_push(&tl, 0, RS_SOURCE_QEMU, 700, RS_QEMU_AWAKE);
    rs_timeline_advance(&tl, 600);
    check_sums(&tl, 0);
    g_assert_cmpuint(tl.vm_acc[RS_VM_FULL_RUN], ==, 100);
    g_assert_cmpuint(tl.vm_acc[RS_VM_PARTIAL_RUN], ==, 100);
    g_assert_cmpuint(tl.vm_acc[RS_VM_PARTIAL_CONTENTION], ==, 100);
    g_assert_cmpuint(tl.vm_acc[RS_VM_FULL_CONTENTION], ==, 100);
    g_assert_cmpuint(tl.vm_acc[RS_VM_BLOCKED], ==, 200);
    g_assert_cmpuint(tl.vm_acc[RS_VM_CONCURRENCY_HAZARD], ==, 0);
    g_assert_cmpint(tl.vm_state, ==, RS_VM_BLOCKED);
    g_assert_cmpint(tl.vm_entered, ==, 400);
    g_assert_cmpuint(tl.vcpu[0].acc[RS_VCPU_OFFLINE], ==, 100);
    g_assert_cmpint(tl.vcpu[0].state, ==, RS_VCPU_OFFLINE);
    rs_timeline_advance(&tl, 800);
    g_assert_cmpint(tl.vcpu[0].state, ==, RS_VCPU_RUNNABLE);  /* sleeping */
    g_assert_cmpuint(tl.vm_acc[RS_VM_PARTIAL_CONTENTION], ==, 200);
    check_sums(&tl, 0);
    rs_timeline_destroy(&tl);
}

/* An awake vCPU thread that sleeps: halted in KVM, waiting under TCG */
static void test_sleep_meaning(void)
{
    g_assert_cmpint(rs_timeline_vcpu_state(RS_QEMU_AWAKE, RS_SCHED_SLEEPING,
                                           true), ==, RS_VCPU_BLOCKED);
    g_assert_cmpint(rs_timeline_vcpu_state(RS_QEMU_AWAKE, RS_SCHED_SLEEPING,
                                           false), ==, RS_VCPU_RUNNABLE);
    g_assert_cmpint(rs_timeline_vcpu_state(RS_QEMU_BLOCKED, RS_SCHED_ONCPU,
                                           false), ==, RS_VCPU_BLOCKED);
    g_assert_cmpint(rs_timeline_vcpu_state(RS_QEMU_OFFLINE, RS_SCHED_ONCPU,
                                           true), ==, RS_VCPU_OFFLINE);
}

/* A change that arrives after its time is applied at the horizon */
static void test_late_change(void)
{
    RsTimeline tl;

    rs_timeline_init(&tl, 1, false, 0);
    rs_timeline_vcpu_start(&tl, 0, 0, RS_QEMU_AWAKE, RS_SCHED_ONCPU);
    rs_timeline_advance(&tl, 100);
    rs_timeline_push(&tl, 0, RS_SOURCE_SCHED, 90, RS_SCHED_PREEMPTED);
    rs_timeline_advance(&tl, 200);
    g_assert_cmpuint(tl.late, ==, 1);
    g_assert_cmpuint(tl.vcpu[0].acc[RS_VCPU_RUNNING], ==, 100);
    g_assert_cmpuint(tl.vcpu[0].acc[RS_VCPU_RUNNABLE], ==, 100);
    check_sums(&tl, 0);
    rs_timeline_destroy(&tl);
}

/* An unplugged vCPU leaves the VM's state; a re-plugged one comes back */
static void test_unplug(void)
{
    RsTimeline tl;

    rs_timeline_init(&tl, 2, false, 0);
    rs_timeline_vcpu_start(&tl, 0, 0, RS_QEMU_AWAKE, RS_SCHED_ONCPU);
    rs_timeline_vcpu_start(&tl, 1, 0, RS_QEMU_BLOCKED, RS_SCHED_SLEEPING);
    rs_timeline_vcpu_gone(&tl, 1, 100);     /* partial-run until 100 */
    rs_timeline_advance(&tl, 200);          /* then full-run */
    rs_timeline_vcpu_start(&tl, 1, 200, RS_QEMU_AWAKE, RS_SCHED_PREEMPTED);
    rs_timeline_advance(&tl, 300);          /* hazard */
    check_sums(&tl, 0);
    g_assert_cmpuint(tl.vm_acc[RS_VM_PARTIAL_RUN], ==, 100);
    g_assert_cmpuint(tl.vm_acc[RS_VM_FULL_RUN], ==, 100);
    g_assert_cmpuint(tl.vm_acc[RS_VM_CONCURRENCY_HAZARD], ==, 100);
    g_assert_cmpuint(tl.vcpu[1].acc[RS_VCPU_OFFLINE], ==, 100);
    rs_timeline_destroy(&tl);
}

/*
 * Random changes of 3 vCPUs against a reference that evaluates every
 * nanosecond on its own: the latest change of each source at or before
 * it decides.
 */
#define R_N 3
#define R_END 400
static void test_random(void)
{
    unsigned round;

    for (round = 0; round < 200; round++) {
        GRand *r = g_rand_new_with_seed(round);
        int view[R_N][RS_SOURCE__MAX][R_END + 1];
        uint64_t ref_vm[RS_VM__MAX] = { 0 };
        uint64_t ref_vcpu[R_N][RS_VCPU__MAX] = { { 0 } };
        bool kvm = round & 1;
        RsTimeline tl;
        unsigned i, s, j;
        int64_t t, horizon;

        rs_timeline_init(&tl, R_N, kvm, 0);
        for (i = 0; i < R_N; i++) {
            view[i][RS_SOURCE_QEMU][0] = g_rand_int_range(r, 0, 3);
            view[i][RS_SOURCE_SCHED][0] = g_rand_int_range(r, 0, 3);
            rs_timeline_vcpu_start(&tl, i, 0, view[i][RS_SOURCE_QEMU][0],
                                   view[i][RS_SOURCE_SCHED][0]);
        }
        for (t = 1; t <= R_END; t++) {
            for (i = 0; i < R_N; i++) {
                for (s = 0; s < RS_SOURCE__MAX; s++) {
                    view[i][s][t] = view[i][s][t - 1];
                    if (g_rand_int_range(r, 0, 20) == 0) {
                        view[i][s][t] = g_rand_int_range(r, 0, 3);
                        rs_timeline_push(&tl, i, s, t, view[i][s][t]);
                    }
                }
            }
        }
        /* drain in random steps */
        for (horizon = 0; horizon < R_END;) {
            horizon = MIN(R_END, horizon + g_rand_int_range(r, 1, 60));
            rs_timeline_advance(&tl, horizon);
        }
        /* the reference: state over [t, t+1) from the views at t */
        for (t = 0; t < R_END; t++) {
            unsigned count[RS_VCPU__MAX] = { 0 };

            for (i = 0; i < R_N; i++) {
                int st = rs_timeline_vcpu_state(view[i][RS_SOURCE_QEMU][t],
                                                view[i][RS_SOURCE_SCHED][t],
                                                kvm);
                ref_vcpu[i][st]++;
                count[st]++;
            }
            ref_vm[rs_vm_state(count[RS_VCPU_RUNNING],
                               count[RS_VCPU_RUNNABLE],
                               count[RS_VCPU_BLOCKED] +
                               count[RS_VCPU_OFFLINE])]++;
        }
        for (j = 0; j < RS_VM__MAX; j++) {
            g_assert_cmpuint(tl.vm_acc[j], ==, ref_vm[j]);
        }
        for (i = 0; i < R_N; i++) {
            for (j = 0; j < RS_VCPU__MAX; j++) {
                g_assert_cmpuint(tl.vcpu[i].acc[j], ==, ref_vcpu[i][j]);
            }
        }
        g_assert_cmpuint(tl.late, ==, 0);
        check_sums(&tl, 0);
        rs_timeline_destroy(&tl);
        g_rand_free(r);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vcpu-runstates-timeline/one-core-two-spinners",
                    test_one_core_two_spinners);
    g_test_add_func("/vcpu-runstates-timeline/vm-states", test_vm_states);
    g_test_add_func("/vcpu-runstates-timeline/sleep-meaning",
                    test_sleep_meaning);
    g_test_add_func("/vcpu-runstates-timeline/late-change", test_late_change);
    g_test_add_func("/vcpu-runstates-timeline/unplug", test_unplug);
    g_test_add_func("/vcpu-runstates-timeline/random", test_random);
    return g_test_run();
}
