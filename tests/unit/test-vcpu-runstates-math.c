/*
 * Unit tests of the runstate arithmetic (vcpu-runstates/math.c)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "vcpu-runstates/math.h"

#define EPS (1.0 / 1000000000)

static void set(uint64_t p[RS_VCPU__MAX], uint64_t run, uint64_t wait,
                uint64_t blk, uint64_t off)
{
    p[RS_VCPU_RUNNING] = run;
    p[RS_VCPU_RUNNABLE] = wait;
    p[RS_VCPU_BLOCKED] = blk;
    p[RS_VCPU_OFFLINE] = off;
}

static double sum(const double *v, int n)
{
    double s = 0;

    for (int i = 0; i < n; i++) {
        s += v[i];
    }
    return s;
}

static void test_split(void)
{
    uint64_t p[RS_VCPU__MAX];

    /* 100: 10 offline, 30 blocked, ran 40 of the 60 it wanted */
    rs_vcpu_split(100, 10, 30, 40, p);
    g_assert_cmpuint(p[RS_VCPU_OFFLINE], ==, 10);
    g_assert_cmpuint(p[RS_VCPU_BLOCKED], ==, 30);
    g_assert_cmpuint(p[RS_VCPU_RUNNING], ==, 40);
    g_assert_cmpuint(p[RS_VCPU_RUNNABLE], ==, 20);

    /* sources disagreeing beyond the interval are clamped */
    rs_vcpu_split(100, 0, 0, 150, p);
    g_assert_cmpuint(p[RS_VCPU_RUNNING], ==, 100);
    g_assert_cmpuint(p[RS_VCPU_RUNNABLE], ==, 0);
    rs_vcpu_split(100, 80, 80, 80, p);
    g_assert_cmpuint(p[RS_VCPU_OFFLINE], ==, 80);
    g_assert_cmpuint(p[RS_VCPU_BLOCKED], ==, 20);
    g_assert_cmpuint(p[RS_VCPU_RUNNING] + p[RS_VCPU_RUNNABLE], ==, 0);
    rs_vcpu_split(0, 5, 5, 5, p);
    g_assert_cmpuint(p[0] + p[1] + p[2] + p[3], ==, 0);
}

static void test_state(void)
{
    g_assert_cmpint(rs_vm_state(2, 0, 0), ==, RS_VM_FULL_RUN);
    g_assert_cmpint(rs_vm_state(0, 2, 0), ==, RS_VM_FULL_CONTENTION);
    g_assert_cmpint(rs_vm_state(1, 1, 0), ==, RS_VM_CONCURRENCY_HAZARD);
    g_assert_cmpint(rs_vm_state(1, 1, 5), ==, RS_VM_CONCURRENCY_HAZARD);
    g_assert_cmpint(rs_vm_state(0, 0, 3), ==, RS_VM_BLOCKED);
    g_assert_cmpint(rs_vm_state(0, 0, 0), ==, RS_VM_BLOCKED);
    g_assert_cmpint(rs_vm_state(1, 0, 1), ==, RS_VM_PARTIAL_RUN);
    g_assert_cmpint(rs_vm_state(0, 1, 1), ==, RS_VM_PARTIAL_CONTENTION);
}

static void test_shares_pure(void)
{
    uint64_t p[3][RS_VCPU__MAX];
    double s[RS_VM__MAX];

    /* vCPUs that do not change state: the VM state is exact */
    set(p[0], 10, 0, 0, 0);
    set(p[1], 10, 0, 0, 0);
    rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])p, 2, s);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_FULL_RUN], 1, EPS);

    set(p[1], 0, 0, 10, 0);
    rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])p, 2, s);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_PARTIAL_RUN], 1, EPS);

    set(p[1], 0, 10, 0, 0);
    set(p[2], 0, 0, 0, 10);     /* offline counts as blocked */
    rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])p, 3, s);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_CONCURRENCY_HAZARD], 1, EPS);

    set(p[0], 0, 10, 0, 0);
    rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])p, 3, s);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_PARTIAL_CONTENTION], 1, EPS);

    rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])p, 2, s);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_FULL_CONTENTION], 1, EPS);

    rs_vm_shares(NULL, 0, s);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_BLOCKED], 1, EPS);
}

static void test_shares_mixed(void)
{
    uint64_t p[4][RS_VCPU__MAX];
    double s[RS_VM__MAX];
    int i;

    /* 4 vCPUs each half running, half runnable (4 on 2 host cores) */
    for (i = 0; i < 4; i++) {
        set(p[i], 50, 50, 0, 0);
    }
    rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])p, 4, s);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_FULL_RUN], 1.0 / 16, EPS);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_FULL_CONTENTION], 1.0 / 16, EPS);
    g_assert_cmpfloat_with_epsilon(s[RS_VM_CONCURRENCY_HAZARD], 14.0 / 16,
                                   EPS);
    g_assert_cmpfloat_with_epsilon(sum(s, RS_VM__MAX), 1, EPS);

    /* any mix sums to one, every share within [0, 1] */
    for (i = 0; i < 1000; i++) {
        int n = 1 + g_test_rand_int_range(0, 4), j;

        for (j = 0; j < n; j++) {
            set(p[j], g_test_rand_int_range(0, 100),
                g_test_rand_int_range(0, 100), g_test_rand_int_range(0, 100),
                g_test_rand_int_range(0, 100));
        }
        rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])p, n, s);
        g_assert_cmpfloat_with_epsilon(sum(s, RS_VM__MAX), 1, EPS);
        for (j = 0; j < RS_VM__MAX; j++) {
            g_assert_cmpfloat(s[j], >=, 0);
            g_assert_cmpfloat(s[j], <=, 1 + EPS);
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vcpu-runstates-math/split", test_split);
    g_test_add_func("/vcpu-runstates-math/state", test_state);
    g_test_add_func("/vcpu-runstates-math/shares-pure", test_shares_pure);
    g_test_add_func("/vcpu-runstates-math/shares-mixed", test_shares_mixed);
    return g_test_run();
}
