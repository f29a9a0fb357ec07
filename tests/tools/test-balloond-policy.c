/*
 * qemu-oc host tools tests: qemu-oc-balloond's policy and its config file
 *
 * Every rule of tools/balloond/policy.h on hand-built snapshots (the
 * guest's statistics set through their mask, the previous report for
 * rates), simulated guests and hosts run for 50 rounds to check that
 * decisions converge instead of flip-flopping, and the configuration
 * loader on good and bad files written to temporary files.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "policy.h"

/* for comparing doubles */
#define EPSILON (1.0 / 1000000000)

#define MIB (1024ull * 1024)
#define NOW_MS 1800000000000LL      /* wall clock of every decision */
#define REPORT_MS 2000              /* between the guest's two reports */
#define ROUNDS 50

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmSnapshot, vm_snapshot_unref)

static const PolicyConfig *cfg = &policy_default_config;
static const PolicyVmConfig *vmc = &policy_default_config.defaults;

/* 64 GiB, half of it available, no PSI stalls */
static const HostMemory host_calm = {
    .total_kib = 64 * 1024 * 1024, .available_kib = 32 * 1024 * 1024,
};
static const HostMemory host_pressed = {
    .total_kib = 64 * 1024 * 1024, .available_kib = 32 * 1024 * 1024,
    .psi_stall = true,
};

/* Snapshots */

static void set_stat(VmSnapshot *s, unsigned stat, uint64_t val)
{
    s->stats[stat] = s->prev_stats[stat] = val;
    s->stats_mask |= 1u << stat;
}

/*
 * A responsive VM with balloon @actual_mib whose guest reported @total
 * and @avail MiB a second ago, and the same numbers one report earlier
 * (every rate known and zero)
 */
static VmSnapshot *snap(uint64_t actual_mib, uint64_t total_mib,
                        uint64_t avail_mib)
{
    VmSnapshot *s = vm_snapshot_new("vm0", "/run/qemu-oc/qmp/vm0");
    unsigned i;

    s->responsive = true;
    s->has_balloon = true;
    s->actual = actual_mib * MIB;
    s->has_stats = true;
    s->stats_update_ms = NOW_MS - 1000;
    s->prev_update_ms = s->stats_update_ms - REPORT_MS;
    for (i = 0; i < VM_STATS_NR; i++) {
        set_stat(s, i, 1000);
    }
    set_stat(s, STAT_TOTAL, total_mib * MIB);
    set_stat(s, STAT_AVAILABLE, avail_mib * MIB);
    set_stat(s, STAT_FREE, avail_mib * MIB / 2);
    return s;
}

/* Make counter @stat rise by @per_s per second between the two reports */
static void set_rate(VmSnapshot *s, unsigned stat, double per_s)
{
    s->stats[stat] = s->prev_stats[stat] + per_s * REPORT_MS / 1000;
}

static PolicyDecision decide(const VmSnapshot *s, const HostMemory *host,
                             unsigned rank, unsigned n_ranked,
                             uint64_t max_mib)
{
    PolicyDecision d;

    policy_decide(cfg, vmc, s, host, rank, n_ranked, max_mib, NOW_MS, &d);
    g_assert_cmpuint(d.current_mib, ==,
                     s->has_balloon ? s->actual / MIB : 0);
    return d;
}

static void assert_reason(const PolicyDecision *d, PolicyReason r)
{
    g_assert_cmpstr(policy_reason_names[d->reason], ==,
                    policy_reason_names[r]);
}

/* Unresponsive and stale VMs */

static void test_unresponsive(void)
{
    g_autoptr(VmSnapshot) s = snap(8192, 8192, 7000);
    PolicyDecision d;

    s->responsive = false;
    s->unresponsive_since_us = 1;
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_UNRESPONSIVE);
    g_assert_cmpuint(d.target_mib, ==, 8192);
    /* not grown either, nor brought inside its bounds */
    d = decide(s, &host_calm, 0, 1, 16384);
    assert_reason(&d, POLICY_UNRESPONSIVE);
    g_assert_cmpuint(d.target_mib, ==, d.current_mib);
    d = decide(s, &host_calm, 0, 1, 4096);
    g_assert_cmpuint(d.target_mib, ==, d.current_mib);
}

static void test_stale(void)
{
    g_autoptr(VmSnapshot) s = snap(8192, 8192, 7000);
    PolicyDecision d;

    /* statistics older than stale-ms */
    s->stats_update_ms = NOW_MS - cfg->stale_ms - 1;
    s->prev_update_ms = s->stats_update_ms - REPORT_MS;
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_STALE);
    g_assert_cmpuint(d.target_mib, ==, 8192);
    d = decide(s, &host_calm, 0, 1, 4096);
    assert_reason(&d, POLICY_STALE);
    g_assert_cmpuint(d.target_mib, ==, 8192);

    /* just fresh enough */
    s->stats_update_ms = NOW_MS - cfg->stale_ms;
    s->prev_update_ms = s->stats_update_ms - REPORT_MS;
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);

    /* no statistics at all */
    s->has_stats = false;
    s->stats_mask = 0;
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_STALE);
    g_assert_cmpuint(d.target_mib, ==, 8192);
    g_assert_cmpfloat(d.guest_avail_pct, ==, -1);
    g_assert_cmpfloat(d.majflt_per_s, ==, -1);
    g_assert_cmpfloat(d.swapin_per_s, ==, -1);

    /* no balloon answer: nothing known */
    s->has_stats = true;
    s->has_balloon = false;
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_STALE);
    g_assert_cmpuint(d.target_mib, ==, d.current_mib);
}

/* Guest pressure, each signal on its own, under host pressure too */

typedef enum Signal {
    SIG_LOW_AVAIL, SIG_MAJFLT, SIG_SWAPIN, SIG_ALLOC_STALLS, SIG_OOM_KILLS,
    SIG__MAX,
} Signal;

static VmSnapshot *pressed_guest(Signal sig, uint64_t actual_mib)
{
    /* 40 % available: not low */
    VmSnapshot *s = snap(actual_mib, actual_mib, actual_mib * 4 / 10);

    switch (sig) {
    case SIG_LOW_AVAIL:
        set_stat(s, STAT_AVAILABLE, actual_mib * MIB / 20);     /* 5 % */
        break;
    case SIG_MAJFLT:
        set_rate(s, STAT_MAJOR_FAULTS, cfg->guest_majflt_per_s + 1);
        break;
    case SIG_SWAPIN:
        set_rate(s, STAT_SWAP_IN, cfg->guest_swapin_per_s + 4096);
        break;
    case SIG_ALLOC_STALLS:
        set_rate(s, STAT_ALLOC_STALLS, 0.5);
        break;
    case SIG_OOM_KILLS:
        set_rate(s, STAT_OOM_KILLS, 0.5);
        break;
    default:
        g_assert_not_reached();
    }
    return s;
}

static void test_guest_pressure(void)
{
    const HostMemory *hosts[] = { &host_calm, &host_pressed };
    unsigned sig, h;

    for (sig = 0; sig < SIG__MAX; sig++) {
        for (h = 0; h < G_N_ELEMENTS(hosts); h++) {
            g_autoptr(VmSnapshot) s = pressed_guest(sig, 4096);
            g_autoptr(VmSnapshot) top = pressed_guest(sig, 8192);
            PolicyDecision d = decide(s, hosts[h], 0, 1, 8192);

            assert_reason(&d, POLICY_GUEST_PRESSURE);
            g_assert_cmpuint(d.target_mib, ==, 4096 + cfg->step_mib);
            /* at its ceiling: kept, never shrunk */
            d = decide(top, hosts[h], 0, 1, 8192);
            g_assert_cmpuint(d.target_mib, ==, 8192);
        }
    }
}

static void test_guest_inputs(void)
{
    g_autoptr(VmSnapshot) s = snap(4096, 4000, 1000);
    PolicyDecision d;

    set_rate(s, STAT_MAJOR_FAULTS, 12);
    set_rate(s, STAT_SWAP_IN, 4096);
    d = decide(s, &host_calm, 0, 1, 8192);
    g_assert_cmpfloat_with_epsilon(d.guest_avail_pct, 25, EPSILON);
    g_assert_cmpfloat_with_epsilon(d.majflt_per_s, 12, EPSILON);
    g_assert_cmpfloat_with_epsilon(d.swapin_per_s, 4096, EPSILON);

    /* one report only: rates unknown, and no pressure from them */
    s->prev_update_ms = 0;
    s->stats_mask &= ~(1u << STAT_TOTAL);
    d = decide(s, &host_pressed, 0, 1, 8192);
    g_assert_cmpfloat(d.guest_avail_pct, ==, -1);
    g_assert_cmpfloat(d.majflt_per_s, ==, -1);
    g_assert_cmpfloat(d.swapin_per_s, ==, -1);
    g_assert_true(d.reason != POLICY_GUEST_PRESSURE);
}

/* Host pressure */

static void test_host_rank(void)
{
    g_autoptr(VmSnapshot) s = snap(8192, 8192, 6000);
    PolicyDecision d;

    /* only the first of the ranked VMs is asked to give */
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);
    g_assert_cmpuint(d.target_mib, ==, 8192 - cfg->step_mib);
    d = decide(s, &host_pressed, 1, 1, 8192);
    assert_reason(&d, POLICY_STEADY);
    g_assert_cmpuint(d.target_mib, ==, 8192);
    d = decide(s, &host_pressed, 3, 2, 8192);
    assert_reason(&d, POLICY_STEADY);
    d = decide(s, &host_pressed, 1, 2, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);
    d = decide(s, &host_pressed, 0, 0, 8192);
    assert_reason(&d, POLICY_STEADY);
}

static void test_host_signals(void)
{
    g_autoptr(VmSnapshot) s = snap(8192, 8192, 6000);
    HostMemory low = host_calm, psi = host_calm;
    PolicyDecision d;

    low.available_kib = low.total_kib / 20;     /* 5 % */
    d = decide(s, &low, 0, 1, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);
    psi.psi_some_avg10 = cfg->host_psi_some_avg10 + 1;
    d = decide(s, &psi, 0, 1, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);
    d = decide(s, &host_calm, 0, 1, 8192);
    assert_reason(&d, POLICY_STEADY);           /* at the ceiling */

    /* the verdict the daemon logs and exports: the same signals */
    g_assert_true(policy_host_pressure(cfg, &low) && low.pressure);
    g_assert_true(policy_host_pressure(cfg, &psi) && psi.pressure);
    psi = host_pressed;
    g_assert_true(policy_host_pressure(cfg, &psi));
    psi = host_calm;
    psi.pressure = true;            /* (an old verdict counts for nothing) */
    g_assert_false(policy_host_pressure(cfg, &psi) || psi.pressure);
}

static void test_host_floor(void)
{
    g_autoptr(VmSnapshot) s = snap(280, 280, 275);  /* step 28 */
    g_autoptr(VmSnapshot) at = snap(256, 256, 250);
    PolicyDecision d;

    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);
    g_assert_cmpuint(d.target_mib, ==, vmc->floor_mib);
    d = decide(at, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_STEADY);
    g_assert_cmpuint(d.target_mib, ==, 256);
}

/* Never the guest's used memory: it keeps low mark + a step available */
static void test_host_used_memory(void)
{
    uint64_t avail;

    for (avail = 0; avail <= 8192; avail += 16) {
        g_autoptr(VmSnapshot) s = snap(8192, 8192, avail);
        PolicyDecision d = decide(s, &host_pressed, 0, 1, 8192);
        uint64_t low = 8192 * cfg->guest_low_avail_pct / 100;
        uint64_t given = d.current_mib - d.target_mib;

        g_assert_cmpuint(d.target_mib, <=, d.current_mib);
        if (given) {
            g_assert_cmpuint(avail, >, low);
            g_assert_cmpuint(d.target_mib, >=, 8192 - (avail - low));
            g_assert_cmpuint(avail - given, >=, low + cfg->step_mib);
        }
    }
}

/* A guest reporting free memory only gives from that, a lower bound */
static void test_host_free_only(void)
{
    g_autoptr(VmSnapshot) s = snap(8192, 8192, 1200);
    PolicyDecision d;

    s->stats_mask &= ~(1u << STAT_AVAILABLE);   /* free: 600 */
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_STEADY);
    set_stat(s, STAT_FREE, 2000 * MIB);
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);
    s->stats_mask &= ~(1u << STAT_FREE);
    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_STEADY);
}

/* Steps */

static void test_step_bounds(void)
{
    g_autoptr(VmSnapshot) big = snap(16384, 16384, 12000);
    g_autoptr(VmSnapshot) small = snap(1024, 1024, 900);
    g_autoptr(VmSnapshot) grow = snap(1024, 1024, 900);
    PolicyDecision d;

    /* 10 % of 16 GiB is more than 256 MiB: the MiB bound */
    d = decide(big, &host_pressed, 0, 1, 16384);
    g_assert_cmpuint(d.target_mib, ==, 16384 - 256);
    /* 10 % of 1 GiB is less: the % bound */
    d = decide(small, &host_pressed, 0, 1, 16384);
    g_assert_cmpuint(d.target_mib, ==, 1024 - 102);
    d = decide(grow, &host_calm, 0, 1, 16384);
    assert_reason(&d, POLICY_GROW);
    g_assert_cmpuint(d.target_mib, ==, 1024 + 102);
}

/* A change smaller than the hysteresis is not made */
static void test_hysteresis(void)
{
    uint64_t low = 8192 * cfg->guest_low_avail_pct / 100;
    /* spare above the margin: 20 MiB, less than the hysteresis */
    g_autoptr(VmSnapshot) s = snap(8192, 8192, low + 256 + 20);
    g_autoptr(VmSnapshot) near = snap(8160, 8160, 4000);
    g_autoptr(VmSnapshot) tiny = snap(264, 264, 250);
    PolicyDecision d;

    d = decide(s, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_STEADY);
    g_assert_cmpuint(d.target_mib, ==, 8192);
    /* a last small step onto the ceiling or the floor is made */
    d = decide(near, &host_calm, 0, 1, 8180);
    assert_reason(&d, POLICY_GROW);
    g_assert_cmpuint(d.target_mib, ==, 8180);
    d = decide(tiny, &host_pressed, 0, 1, 8192);
    assert_reason(&d, POLICY_HOST_PRESSURE);
    g_assert_cmpuint(d.target_mib, ==, 256);
}

/* No pressure: back to the ceiling in bounded steps */
static void test_grow_to_ceiling(void)
{
    uint64_t size = 1000, max = 8192;
    unsigned round;

    for (round = 0; round < ROUNDS && size < max; round++) {
        g_autoptr(VmSnapshot) s = snap(size, size, size - 300);
        PolicyDecision d = decide(s, &host_calm, 0, 1, max);

        assert_reason(&d, POLICY_GROW);
        g_assert_cmpuint(d.target_mib, >, size);
        g_assert_cmpuint(d.target_mib - size, <=, cfg->step_mib);
        g_assert_cmpuint(d.target_mib - size, <=,
                         MAX(size * cfg->step_pct / 100, 1));
        size = d.target_mib;
    }
    g_assert_cmpuint(size, ==, max);
    g_assert_cmpuint(round, >=, (max - 1000) / cfg->step_mib);
}

/* Growth leaves the host its low mark and a step: no growing into it */
static void test_grow_host_headroom(void)
{
    g_autoptr(VmSnapshot) s = snap(4096, 4096, 3000);
    HostMemory h = { .total_kib = 60 * 1024 * 1024 };    /* 60 GiB */
    uint64_t low_kib = h.total_kib / 10;
    PolicyDecision d;

    h.available_kib = low_kib + 256 * 1024 + 100 * 1024;
    d = decide(s, &h, 0, 1, 8192);
    assert_reason(&d, POLICY_GROW);
    g_assert_cmpuint(d.target_mib, ==, 4096 + 100);
    h.available_kib = low_kib + 256 * 1024 + 10 * 1024;
    d = decide(s, &h, 0, 1, 8192);
    assert_reason(&d, POLICY_STEADY);
    /* PSI above half its threshold: near pressure, no growth */
    h = host_calm;
    h.psi_some_avg10 = cfg->host_psi_some_avg10 * 0.75;
    d = decide(s, &h, 0, 1, 8192);
    assert_reason(&d, POLICY_STEADY);
}

/* Bounds */

static void test_bounds(void)
{
    PolicyVmConfig vm = { .floor_mib = 2048, .ceiling_mib = 4096 };
    g_autoptr(VmSnapshot) above = snap(6000, 6000, 5000);
    g_autoptr(VmSnapshot) below = snap(1024, 1024, 100);
    g_autoptr(VmSnapshot) unknown = snap(1024, 1024, 900);
    PolicyDecision d;

    /* above the ceiling: shrunk even with the guest under pressure */
    set_rate(above, STAT_OOM_KILLS, 1);
    policy_decide(cfg, &vm, above, &host_calm, 5, 1, 8192, NOW_MS, &d);
    assert_reason(&d, POLICY_BOUNDS);
    g_assert_cmpuint(d.target_mib, ==, 6000 - 256);
    /* below the floor: grown, by a step, whatever the host */
    policy_decide(cfg, &vm, below, &host_pressed, 0, 1, 8192, NOW_MS, &d);
    assert_reason(&d, POLICY_BOUNDS);
    g_assert_cmpuint(d.target_mib, ==, 1024 + 102);
    /* the configured ceiling is capped by the VM's maximum */
    policy_decide(cfg, &vm, above, &host_calm, 0, 1, 3000, NOW_MS, &d);
    assert_reason(&d, POLICY_BOUNDS);
    /* a floor above the ceiling: the ceiling */
    vm.floor_mib = 8192;
    policy_decide(cfg, &vm, below, &host_calm, 0, 1, 2000, NOW_MS, &d);
    assert_reason(&d, POLICY_BOUNDS);
    g_assert_cmpuint(d.target_mib, ==, 1024 + 102);
    /* the last step to a bound is made however small */
    vm.floor_mib = 1030;
    policy_decide(cfg, &vm, below, &host_calm, 0, 1, 8192, NOW_MS, &d);
    assert_reason(&d, POLICY_BOUNDS);
    g_assert_cmpuint(d.target_mib, ==, 1030);
    /* maximum unknown and no ceiling: never grown past its size */
    vm.floor_mib = 512;
    vm.ceiling_mib = 0;
    policy_decide(cfg, &vm, unknown, &host_calm, 0, 1, 0, NOW_MS, &d);
    assert_reason(&d, POLICY_STEADY);
}

/* Ceiling 0 is the VM's maximum */
static void test_ceiling_zero(void)
{
    PolicyVmConfig vm = { .floor_mib = 512, .ceiling_mib = 0 };
    g_autoptr(VmSnapshot) s = snap(4000, 4000, 3000);
    PolicyDecision d;

    policy_decide(cfg, &vm, s, &host_calm, 0, 1, 4096, NOW_MS, &d);
    assert_reason(&d, POLICY_GROW);
    g_assert_cmpuint(d.target_mib, ==, 4096);
    policy_decide(cfg, &vm, s, &host_calm, 0, 1, 3500, NOW_MS, &d);
    assert_reason(&d, POLICY_BOUNDS);
    g_assert_cmpuint(d.target_mib, ==, 3744);
    vm.ceiling_mib = 100000;    /* above the maximum: the maximum */
    policy_decide(cfg, &vm, s, &host_calm, 0, 1, 4096, NOW_MS, &d);
    g_assert_cmpuint(d.target_mib, ==, 4096);
}

/*
 * Simulations: a guest of balloon size `size` uses `used` MiB (total =
 * size, available = size - used); every round the policy decides and its
 * target is applied.  Over 50 rounds of slightly varying pressure the
 * size must settle, with few changes of direction.
 */

typedef struct Sim {
    uint64_t size, used, max;
    double majflt_per_s;
    unsigned moves, turns;      /* changes, changes of direction */
    int last_dir;
} Sim;

static void sim_round(Sim *sim, const HostMemory *host)
{
    g_autoptr(VmSnapshot) s = snap(sim->size, sim->size,
                                   sim->size - sim->used);
    PolicyDecision d;
    int dir;

    set_rate(s, STAT_MAJOR_FAULTS, sim->majflt_per_s);
    d = decide(s, host, 0, 1, sim->max);
    /* the guest always keeps its low mark available */
    g_assert_cmpuint(d.target_mib, >=,
                     sim->used + d.target_mib * cfg->guest_low_avail_pct /
                     100);
    dir = d.target_mib > sim->size ? 1 : d.target_mib < sim->size ? -1 : 0;
    if (dir) {
        sim->moves++;
        sim->turns += sim->last_dir && dir != sim->last_dir;
        sim->last_dir = dir;
    }
    sim->size = d.target_mib;
}

static void sim_done(const Sim *sim)
{
    g_test_message("size %" G_GUINT64_FORMAT " MiB after %u moves, "
                   "%u turns", sim->size, sim->moves, sim->turns);
}

/* Host pressure throughout; the guest's use wobbles by 16 MiB */
static void test_sim_guest_wobble(void)
{
    Sim sim = { .size = 8192, .max = 8192 };
    unsigned round, moves_before_tail = 0;

    for (round = 0; round < ROUNDS; round++) {
        sim.used = 2000 + (round % 2) * 16;
        sim_round(&sim, &host_pressed);
        if (round == ROUNDS - 11) {
            moves_before_tail = sim.moves;
        }
    }
    g_assert_cmpuint(sim.turns, ==, 0);
    g_assert_cmpuint(sim.moves, ==, moves_before_tail);   /* settled */
    g_assert_cmpuint(sim.size, <, 8192);
    g_assert_cmpuint(sim.moves, >, 0);
    sim_done(&sim);
}

/*
 * The host's MemAvailable falls as the VM grows, and wobbles by 16 MiB
 * around its low mark: shrink below it, grow only with headroom
 */
static void test_sim_host_wobble(void)
{
    Sim sim = { .size = 8192, .used = 1000, .max = 8192 };
    HostMemory h = { .total_kib = 16384 * 1024 };
    unsigned round;
    uint64_t host_used = 8000;

    for (round = 0; round < ROUNDS; round++) {
        uint64_t in_use = host_used + sim.size + (round % 2) * 16;

        h.available_kib = in_use < 16384 ? (16384 - in_use) * 1024 : 0;
        sim_round(&sim, &h);
        if (round == ROUNDS / 2) {
            host_used += 512;   /* another VM takes some */
        } else if (round == ROUNDS * 3 / 4) {
            host_used -= 1024;  /* and gives more back */
        }
    }
    g_assert_cmpuint(sim.turns, <=, 1);
    g_assert_cmpuint(sim.moves, <, 25);
    g_assert_cmpuint(sim.moves, >, 0);
    sim_done(&sim);
}

/* PSI avg10 wavering around its threshold, 9.5 / 10.5 */
static void test_sim_psi_wobble(void)
{
    Sim sim = { .size = 8192, .used = 3000, .max = 8192 };
    HostMemory h = host_calm;
    unsigned round;

    for (round = 0; round < ROUNDS; round++) {
        h.psi_some_avg10 = cfg->host_psi_some_avg10 +
                           (round % 2 ? 0.5 : -0.5);
        sim_round(&sim, &h);
    }
    g_assert_cmpuint(sim.turns, ==, 0);
    g_assert_cmpuint(sim.moves, >, 0);
    sim_done(&sim);
}

/* The guest's major faults wavering around theirs, under host pressure */
static void test_sim_majflt_wobble(void)
{
    Sim sim = { .size = 6000, .used = 3000, .max = 8192 };
    unsigned round;

    for (round = 0; round < ROUNDS; round++) {
        sim.majflt_per_s = cfg->guest_majflt_per_s +
                           (round % 2 ? 5 : -5);
        sim_round(&sim, &host_pressed);
    }
    g_assert_cmpuint(sim.turns, ==, 0);
    g_assert_cmpuint(sim.size, ==, sim.max);
    sim_done(&sim);
}

/* Configuration files */

static char *write_tmp(const char *text)
{
    GError *err = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("balloond-policy-XXXXXX.conf", &path, &err);

    g_assert_no_error(err);
    g_assert_cmpint(write(fd, text, strlen(text)), ==, strlen(text));
    close(fd);
    return path;
}

static void test_config_good(void)
{
    g_autofree char *path = write_tmp(
        "# a comment\n"
        "[policy]\n"
        "floor-mib = 1024\n"
        "ceiling-mib = 0\n"
        "step-mib = 128\n"
        "step-pct = 5.5\n"
        "hysteresis-mib = 16\n"
        "stale-ms = 30000\n"
        "guest-low-avail-pct = 15\n"
        "guest-majflt-per-s = 100\n"
        "guest-swapin-per-s = 524288\n"
        "host-low-avail-pct = 20\n"
        "host-psi-some-avg10 = 2.5\n"
        "\n"
        "[vm db1]\n"
        "floor-mib = 8192\n"
        "\n"
        "[vm web-2]\n"
        "ceiling-mib = 4096\n");
    g_autoptr(GHashTable) per_vm = NULL;
    GError *err = NULL;
    PolicyConfig c;
    PolicyVmConfig *vm;

    g_assert_true(policy_config_load(path, &c, &per_vm, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(c.defaults.floor_mib, ==, 1024);
    g_assert_cmpuint(c.defaults.ceiling_mib, ==, 0);
    g_assert_cmpuint(c.step_mib, ==, 128);
    g_assert_cmpfloat(c.step_pct, ==, 5.5);
    g_assert_cmpuint(c.hysteresis_mib, ==, 16);
    g_assert_cmpint(c.stale_ms, ==, 30000);
    g_assert_cmpfloat(c.guest_low_avail_pct, ==, 15);
    g_assert_cmpfloat(c.guest_majflt_per_s, ==, 100);
    g_assert_cmpfloat(c.guest_swapin_per_s, ==, 524288);
    g_assert_cmpfloat(c.host_low_avail_pct, ==, 20);
    g_assert_cmpfloat(c.host_psi_some_avg10, ==, 2.5);

    g_assert_cmpuint(g_hash_table_size(per_vm), ==, 2);
    vm = g_hash_table_lookup(per_vm, "db1");
    g_assert_nonnull(vm);
    g_assert_cmpuint(vm->floor_mib, ==, 8192);
    g_assert_cmpuint(vm->ceiling_mib, ==, 0);       /* from [policy] */
    vm = g_hash_table_lookup(per_vm, "web-2");
    g_assert_nonnull(vm);
    g_assert_cmpuint(vm->floor_mib, ==, 1024);      /* from [policy] */
    g_assert_cmpuint(vm->ceiling_mib, ==, 4096);
    g_hash_table_unref(c.domains);
    g_unlink(path);
}

/* Missing keys and groups keep the defaults */
static void test_config_defaults(void)
{
    g_autofree char *path = write_tmp("[policy]\nstep-mib=64\n");
    g_autofree char *empty = write_tmp("");
    g_autoptr(GHashTable) per_vm = NULL;
    g_autoptr(GHashTable) none = NULL;
    GError *err = NULL;
    PolicyConfig c, want = policy_default_config;

    g_assert_true(policy_config_load(path, &c, &per_vm, &err));
    g_assert_no_error(err);
    want.step_mib = 64;
    /* (an empty table of domains: the rest is the defaults') */
    g_assert_cmpuint(g_hash_table_size(c.domains), ==, 0);
    g_hash_table_unref(c.domains);
    c.domains = NULL;
    g_assert_true(memcmp(&c, &want, sizeof(c)) == 0);
    g_assert_cmpuint(g_hash_table_size(per_vm), ==, 0);

    g_assert_true(policy_config_load(empty, &c, &none, &err));
    g_assert_no_error(err);
    g_hash_table_unref(c.domains);
    c.domains = NULL;
    g_assert_true(memcmp(&c, &policy_default_config, sizeof(c)) == 0);
    g_unlink(path);
    g_unlink(empty);
}

typedef struct BadFile {
    const char *text;
    const char *group, *key, *why;      /* all in the message */
} BadFile;

static const BadFile bad_files[] = {
    { "[policy]\nfloor-mib = -1\n", "[policy]", "floor-mib", "negative" },
    { "[domain machine.slice]\nreserve-mib = 1\n", "[domain machine.slice]",
      "domain", "absolute path" },
    { "[domain /sys/fs/cgroup/x]\nreserve-pct = 120\n",
      "[domain /sys/fs/cgroup/x]", "reserve-pct", "percentage" },
    { "[domain /sys/fs/cgroup/x]\nfloor-mib = 1\n",
      "[domain /sys/fs/cgroup/x]", "floor-mib", "unknown key" },
    { "[policy]\nhysteresis-mib = -5\n", "[policy]", "hysteresis-mib",
      "negative" },
    { "[policy]\nguest-majflt-per-s = -0.5\n", "[policy]",
      "guest-majflt-per-s", "negative" },
    { "[policy]\nstep-mib = 0\n", "[policy]", "step-mib", "above zero" },
    { "[policy]\nstep-pct = 0\n", "[policy]", "step-pct", "above zero" },
    { "[policy]\nstale-ms = 0\n", "[policy]", "stale-ms", "above zero" },
    { "[policy]\nstep-pct = 150\n", "[policy]", "step-pct", "percentage" },
    { "[policy]\nguest-low-avail-pct = 101\n", "[policy]",
      "guest-low-avail-pct", "percentage" },
    { "[policy]\nhost-low-avail-pct = -1\n", "[policy]",
      "host-low-avail-pct", "negative" },
    { "[policy]\nhost-psi-some-avg10 = 200\n", "[policy]",
      "host-psi-some-avg10", "percentage" },
    { "[policy]\nfloor-mib = 4096\nceiling-mib = 2048\n", "[policy]",
      "floor-mib", "above ceiling-mib" },
    { "[vm a]\nfloor-mib = 4096\nceiling-mib = 1024\n", "[vm a]",
      "floor-mib", "above ceiling-mib" },
    { "[policy]\nfloor-mib = 2048\n[vm a]\nceiling-mib = 1024\n", "[vm a]",
      "floor-mib", "above ceiling-mib" },
    { "[policy]\nfloor-mib = lots\n", "[policy]", "floor-mib",
      "not an integer" },
    { "[policy]\nstep-pct = 10%\n", "[policy]", "step-pct",
      "not a number" },
    { "[policy]\nhost-psi-some-avg10 = nan\n", "[policy]",
      "host-psi-some-avg10", "not a number" },
    { "[policy]\nfloor = 512\n", "[policy]", "floor", "unknown key" },
    { "[vm a]\nstep-mib = 64\n", "[vm a]", "step-mib", "unknown key" },
    { "[polcy]\nfloor-mib = 512\n", "[polcy]", "", "unknown group" },
    { "[vm]\nfloor-mib = 512\n", "[vm]", "", "unknown group" },
    { "floor-mib = 512\n", "", "", "" },            /* no group: syntax */
};

/* [domain PATH]: a cgroup's own reserve, the rest from [policy] */
static void test_config_domains(void)
{
    g_autofree char *path = write_tmp(
        "[policy]\nreserve-mib = 300\nreserve-pct = 5\n"
        "[domain /sys/fs/cgroup/memory/machine.slice/]\nreserve-mib = 1024\n"
        "[domain /sys/fs/cgroup/other]\nreserve-pct = 30\n");
    g_autoptr(GHashTable) per_vm = NULL;
    g_autoptr(GHashTable) domains = NULL;
    const PolicyDomainConfig *d;
    PolicyDomain dom = { .limit_mib = 10000 };
    GError *err = NULL;
    PolicyConfig c;

    g_assert_true(policy_config_load(path, &c, &per_vm, &err));
    g_assert_no_error(err);
    domains = c.domains;
    /* found by its canonical path */
    d = g_hash_table_lookup(domains,
                            "/sys/fs/cgroup/memory/machine.slice");
    g_assert_nonnull(d);
    g_assert_cmpuint(d->reserve_mib, ==, 1024);
    g_assert_cmpfloat(d->reserve_pct, ==, 5);
    dom.own = d;
    g_assert_cmpuint(policy_domain_reserve_mib(&c, &dom), ==, 1024);
    d = g_hash_table_lookup(domains, "/sys/fs/cgroup/other");
    g_assert_nonnull(d);
    dom.own = d;
    g_assert_cmpuint(policy_domain_reserve_mib(&c, &dom), ==, 3000);
    dom.own = NULL;
    g_assert_cmpuint(policy_domain_reserve_mib(&c, &dom), ==, 500);
    g_unlink(path);
}

static void test_config_bad(void)
{
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(bad_files); i++) {
        const BadFile *b = &bad_files[i];
        g_autofree char *path = write_tmp(b->text);
        GHashTable *per_vm = NULL;
        GError *err = NULL;
        PolicyConfig c = { .step_mib = 12345 };

        g_assert_false(policy_config_load(path, &c, &per_vm, &err));
        g_assert_nonnull(err);
        if (g_test_verbose()) {
            g_test_message("%s", err->message);
        }
        g_assert_nonnull(strstr(err->message, path));
        g_assert_nonnull(strstr(err->message, b->group));
        g_assert_nonnull(strstr(err->message, b->key));
        g_assert_nonnull(strstr(err->message, b->why));
        /* nothing is set on failure */
        g_assert_null(per_vm);
        g_assert_cmpuint(c.step_mib, ==, 12345);
        g_error_free(err);
        g_unlink(path);
    }
}

static void test_config_missing_file(void)
{
    GHashTable *per_vm = NULL;
    GError *err = NULL;
    PolicyConfig c;

    g_assert_false(policy_config_load("/nonexistent/balloond.conf", &c,
                                      &per_vm, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "/nonexistent/balloond.conf"));
    g_error_free(err);
}

static void test_reason_names(void)
{
    static const char *const want[] = {
        "steady", "unresponsive", "stale", "guest-pressure",
        "host-pressure", "grow", "bounds", "domain-short", "cool-down",
    };
    unsigned i;

    g_assert_cmpuint(G_N_ELEMENTS(want), ==, POLICY_REASON__MAX);
    for (i = 0; i < POLICY_REASON__MAX; i++) {
        g_assert_cmpstr(policy_reason_names[i], ==, want[i]);
    }
}

static void test_defaults(void)
{
    g_assert_cmpuint(cfg->defaults.floor_mib, ==, 256);
    g_assert_cmpuint(cfg->defaults.ceiling_mib, ==, 0);
    g_assert_cmpuint(cfg->step_mib, ==, 256);
    g_assert_cmpfloat(cfg->step_pct, ==, 10);
    g_assert_cmpuint(cfg->hysteresis_mib, ==, 32);
    g_assert_cmpint(cfg->stale_ms, ==, 10000);
    g_assert_cmpfloat(cfg->guest_low_avail_pct, ==, 10);
    g_assert_cmpfloat(cfg->guest_majflt_per_s, ==, 50);
    g_assert_cmpfloat(cfg->guest_swapin_per_s, ==, 1024 * 1024);
    g_assert_cmpfloat(cfg->host_low_avail_pct, ==, 10);
    g_assert_cmpfloat(cfg->host_psi_some_avg10, ==, 10);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloond/policy/defaults", test_defaults);
    g_test_add_func("/balloond/policy/reason-names", test_reason_names);
    g_test_add_func("/balloond/policy/unresponsive", test_unresponsive);
    g_test_add_func("/balloond/policy/stale", test_stale);
    g_test_add_func("/balloond/policy/guest-pressure", test_guest_pressure);
    g_test_add_func("/balloond/policy/guest-inputs", test_guest_inputs);
    g_test_add_func("/balloond/policy/host-rank", test_host_rank);
    g_test_add_func("/balloond/policy/host-signals", test_host_signals);
    g_test_add_func("/balloond/policy/host-floor", test_host_floor);
    g_test_add_func("/balloond/policy/host-used-memory",
                    test_host_used_memory);
    g_test_add_func("/balloond/policy/host-free-only", test_host_free_only);
    g_test_add_func("/balloond/policy/step-bounds", test_step_bounds);
    g_test_add_func("/balloond/policy/hysteresis", test_hysteresis);
    g_test_add_func("/balloond/policy/grow-to-ceiling",
                    test_grow_to_ceiling);
    g_test_add_func("/balloond/policy/grow-host-headroom",
                    test_grow_host_headroom);
    g_test_add_func("/balloond/policy/bounds", test_bounds);
    g_test_add_func("/balloond/policy/ceiling-zero", test_ceiling_zero);
    g_test_add_func("/balloond/policy/sim/guest-wobble",
                    test_sim_guest_wobble);
    g_test_add_func("/balloond/policy/sim/host-wobble",
                    test_sim_host_wobble);
    g_test_add_func("/balloond/policy/sim/psi-wobble", test_sim_psi_wobble);
    g_test_add_func("/balloond/policy/sim/majflt-wobble",
                    test_sim_majflt_wobble);
    g_test_add_func("/balloond/config/good", test_config_good);
    g_test_add_func("/balloond/config/defaults", test_config_defaults);
    g_test_add_func("/balloond/config/domains", test_config_domains);
    g_test_add_func("/balloond/config/bad", test_config_bad);
    g_test_add_func("/balloond/config/missing-file",
                    test_config_missing_file);
    return g_test_run();
}
