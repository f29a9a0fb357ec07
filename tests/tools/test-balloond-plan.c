/*
 * qemu-oc host tools: test of qemu-oc-balloond's plan over memory domains
 *
 * policy_plan() on hand-made snapshots and domains: a short domain's
 * shortfall split among the VMs that can give, in parallel and in
 * proportion; a VM whose used memory rises gives after the idle ones,
 * one that allocates never; a VM in a domain that is fine is not shrunk
 * for another's sake; what a balloon gives counted in the memory the host
 * holds for the guest; floors, balloons already on their way, guests
 * under pressure, stale and unresponsive VMs; the cool-down after a
 * shortfall and after an OOM kill; the same inputs give the same plan.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include <glib.h>

#include "plan-fixtures.h"
#include "trend.h"

/* what a 1 GiB guest with 400 MiB available can give: 400 - 102.4 - 32 */
#define SPARE_1G_400 265

static void assert_reason(const PolicyDecision *d, PolicyReason r)
{
    g_assert_cmpstr(policy_reason_names[d->reason], ==,
                    policy_reason_names[r]);
}

/* The reserve: the larger of the MiB and the % of the limit */
static void test_reserve(void)
{
    PolicyDomain d = { .limit_mib = 1200 };

    g_assert_cmpuint(policy_domain_reserve_mib(cfg, &d), ==, 256);
    d.limit_mib = 10000;
    g_assert_cmpuint(policy_domain_reserve_mib(cfg, &d), ==, 2000);
}

/*
 * Short by 100 MiB below zero: the two idle guests give the whole
 * shortfall (reserve included) at once, half each; the allocating
 * guest gives nothing
 */
static void test_split(void)
{
    Plan p = { 0 };
    uint64_t need = 256 + 100;

    domain(&p, 1200, -100);
    add(&p, guest("idle-a", 1024, 700, 0), 1);
    add(&p, guest("idle-b", 1024, 700, 0), 1);
    add(&p, guest("allocating", 1024, 600, 50), 1);
    run(&p);
    assert_reason(&p.out[0], POLICY_DOMAIN_SHORT);
    assert_reason(&p.out[1], POLICY_DOMAIN_SHORT);
    g_assert_cmpuint(given(&p, 0) + given(&p, 1), >=, need);
    g_assert_cmpuint(given(&p, 0) + given(&p, 1), <=, need + 2);
    g_assert_cmpuint(given(&p, 0), ==, given(&p, 1));
    g_assert_cmpuint(given(&p, 2), ==, 0);
    plan_free(&p);

    /* the host sees it first: its QEMU grows, its guest has not said so */
    memset(&p, 0, sizeof(p));
    domain(&p, 1200, -100);
    add(&p, guest("idle", 1024, 700, 0), 1);
    add(&p, guest("bursting", 1024, 700, 0), 1);
    p.in[1].qemu_rss_mib_s = 150;
    run(&p);
    g_assert_cmpuint(given(&p, 0), >=, need);
    g_assert_cmpuint(given(&p, 1), ==, 0);
    plan_free(&p);
}

/* A daemon just started: a step at a time, what is on its way counted */
static void test_settling(void)
{
    Plan p = { 0 };

    domain(&p, 1200, -300);
    add(&p, guest("first", 1024, 700, 0), 1);
    p.in[0].settling = true;
    run(&p);
    g_assert_cmpuint(given(&p, 0), ==, 102);
    p.in[0].target_mib = 1024 - 102;
    run(&p);
    g_assert_cmpuint(p.out[0].target_mib, ==, p.out[0].current_mib);
    p.in[0].settling = false;
    run(&p);
    g_assert_cmpuint(p.out[0].target_mib, ==, 1024 - 256 - 300);
    plan_free(&p);
}

/* A headroom falling fast: the next second's fall is asked for too */
static void test_lookahead(void)
{
    Plan p = { 0 };

    domain(&p, 1200, 246);
    p.dom[0].falling_mib_s = 300;
    add(&p, guest("a", 1024, 700, 0), 1);
    run(&p);
    g_assert_cmpuint(given(&p, 0), ==, 10 + 300);

    /* not short yet: a fall alone asks for nothing */
    p.dom[0].headroom_mib = 300;
    run(&p);
    g_assert_cmpuint(given(&p, 0), ==, 0);
    plan_free(&p);
}

/* A shortfall larger than all they can give: each gives all it can */
static void test_split_capacity(void)
{
    Plan p = { 0 };

    domain(&p, 1200, -2000);
    add(&p, guest("a", 1024, 400, 0), 1);
    add(&p, guest("b", 600, 300, 0), 1);
    add(&p, guest("c", 1024, 1000, 0), 1);
    run(&p);
    /* above the low mark (10 % of total) and the hysteresis ... */
    g_assert_cmpuint(p.out[0].target_mib, ==, 1024 - SPARE_1G_400);
    g_assert_cmpuint(p.out[1].target_mib, ==, 600 - (300 - 60 - 32));
    /* ... and the floor, 256 MiB */
    g_assert_cmpuint(p.out[2].target_mib, ==, 256);
    plan_free(&p);
}

/*
 * Guests full of page cache whose free pages were never touched: the
 * host holds 500 of their 1024 MiB, so a balloon must inflate through
 * the 524 untouched MiB before it gives the host anything.  The need
 * (356 MiB) is counted in host memory: each goes below what the host
 * holds by its half; one whose held memory is at its floor gives
 * nothing; a balloon on its way counts for what it gives the host.
 */
static void test_held(void)
{
    Plan p = { 0 };
    uint64_t need = 256 + 100;

    domain(&p, 1200, -100);
    add(&p, guest("cache-a", 1024, 900, 0), 1);
    add(&p, guest("cache-b", 1024, 900, 0), 1);
    add(&p, guest("small", 1024, 900, 0), 1);
    p.in[0].held_mib = p.in[1].held_mib = 500;
    p.in[2].held_mib = 512;
    p.in[2].cfg = &(PolicyVmConfig) { .floor_mib = 512 };
    run(&p);
    g_assert_cmpuint(p.out[0].target_mib, ==, 500 - need / 2);
    g_assert_cmpuint(p.out[1].target_mib, ==, 500 - need / 2);
    assert_reason(&p.out[2], POLICY_STEADY);

    /* on their way there: nothing more is asked */
    p.in[0].target_mib = p.in[1].target_mib = 500 - need / 2;
    run(&p);
    assert_reason(&p.out[0], POLICY_STEADY);
    assert_reason(&p.out[1], POLICY_STEADY);

    /* a target still above what the host holds gives it nothing */
    p.in[0].target_mib = p.in[1].target_mib = 900;
    run(&p);
    g_assert_cmpuint(p.out[0].target_mib, ==, 500 - need / 2);
    g_assert_cmpuint(p.out[1].target_mib, ==, 500 - need / 2);
    plan_free(&p);
}

/*
 * Idle guests first; a guest whose use rises slowly, or rose lately,
 * only if needed
 */
static void test_tiers(void)
{
    Plan p = { 0 };

    domain(&p, 1200, 156);
    add(&p, guest("idle", 1024, 700, 0), 1);
    add(&p, guest("rising", 1024, 700, 2), 1);
    run(&p);
    g_assert_cmpuint(given(&p, 0), >=, 100);
    assert_reason(&p.out[1], POLICY_STEADY);
    plan_free(&p);

    /* risen by 100 MiB lately, flat now: the same */
    memset(&p, 0, sizeof(p));
    domain(&p, 1200, 156);
    add(&p, guest("idle", 1024, 700, 0), 1);
    add(&p, guest("stepping", 1024, 700, 0), 1);
    p.in[1].used_rise_mib = 100;
    run(&p);
    g_assert_cmpuint(given(&p, 0), >=, 100);
    assert_reason(&p.out[1], POLICY_STEADY);
    plan_free(&p);

    /*
     * demand not known yet (a daemon just started): it gives later, but
     * keeps its part (512 of 512 + 512): the idle VM is not asked for
     * all, the rising one not at all
     */
    memset(&p, 0, sizeof(p));
    domain(&p, 1200, 156);
    add(&p, guest("idle", 1024, 700, 0), 1);
    add(&p, guest("new", 1024, 700, 0), 1);
    add(&p, guest("rising", 1024, 700, 2), 1);
    p.in[1].demand_known = false;
    run(&p);
    g_assert_cmpuint(given(&p, 0), ==, 50);    /* ceil(100 * 512 / 1024) */
    assert_reason(&p.out[1], POLICY_STEADY);
    assert_reason(&p.out[2], POLICY_STEADY);
    plan_free(&p);

    /* ... and it waits to be known unless the domain is nearly out */
    memset(&p, 0, sizeof(p));
    domain(&p, 1200, 156);
    add(&p, guest("new", 1024, 700, 0), 1);
    p.in[0].demand_known = false;
    run(&p);
    assert_reason(&p.out[0], POLICY_STEADY);
    p.dom[0].headroom_mib = 200;
    run(&p);
    assert_reason(&p.out[0], POLICY_STEADY);
    /* nearly out (below half the reserve): a step (10 % of 1024) */
    p.dom[0].headroom_mib = 127;
    run(&p);
    g_assert_cmpuint(given(&p, 0), ==, 102);
    plan_free(&p);

    memset(&p, 0, sizeof(p));
    domain(&p, 1200, -1000);
    add(&p, guest("idle", 1024, 400, 0), 1);
    add(&p, guest("rising", 1024, 400, 2), 1);
    run(&p);
    g_assert_cmpuint(given(&p, 0), ==, SPARE_1G_400);
    g_assert_cmpuint(given(&p, 1), >, 0);
    plan_free(&p);
}

/* Another domain's shortfall shrinks no VM of a domain that is fine */
static void test_domains_apart(void)
{
    Plan p = { 0 };

    domain(&p, 1200, -100);
    domain(&p, 1200, 1000);
    add(&p, guest("short", 1024, 700, 0), 1);
    add(&p, guest("fine", 1024, 700, 0), 2);
    add(&p, guest("nowhere", 1024, 700, 0), 0);
    run(&p);
    assert_reason(&p.out[0], POLICY_DOMAIN_SHORT);
    g_assert_cmpuint(given(&p, 1), ==, 0);
    g_assert_cmpuint(given(&p, 2), ==, 0);
    plan_free(&p);
}

/* A balloon on its way counts: nobody is asked for it again */
static void test_pending(void)
{
    Plan p = { 0 };

    domain(&p, 1200, -100);
    add(&p, guest("a", 1024, 700, 0), 1);
    add(&p, guest("b", 1024, 700, 0), 1);
    p.in[0].target_mib = 1024 - 400;        /* 400 MiB coming */
    run(&p);
    /* 300 of headroom once it arrives: short by nothing more */
    g_assert_cmpuint(p.out[0].target_mib, ==, p.out[0].current_mib);
    g_assert_cmpuint(given(&p, 1), ==, 0);
    plan_free(&p);
}

/* Under pressure, stale or silent: never shrunk, short domain or not */
static void test_not_givers(void)
{
    Plan p = { 0 };
    VmSnapshot *low = guest("low", 700, 50, 0);
    VmSnapshot *stale = guest("stale", 1024, 700, 0);
    VmSnapshot *silent = guest("silent", 1024, 700, 0);

    stale->stats_update_ms = NOW_MS - 60000;
    silent->responsive = false;
    domain(&p, 1200, -500);
    add(&p, low, 1);
    add(&p, stale, 1);
    add(&p, silent, 1);
    run(&p);
    g_assert_cmpuint(given(&p, 0), ==, 0);
    g_assert_cmpuint(given(&p, 1), ==, 0);
    g_assert_cmpuint(given(&p, 2), ==, 0);
    /* short below zero: the guest under pressure waits for room */
    assert_reason(&p.out[0], POLICY_GUEST_PRESSURE);
    g_assert_cmpuint(p.out[0].target_mib, ==, 700);
    plan_free(&p);
}

/* A guest under pressure may take headroom down to half the reserve */
static void test_guest_pressure_room(void)
{
    Plan p = { 0 };

    domain(&p, 1200, 300);
    add(&p, guest("low", 700, 20, 0), 1);
    run(&p);
    assert_reason(&p.out[0], POLICY_GUEST_PRESSURE);
    g_assert_cmpuint(p.out[0].target_mib, ==, 770);     /* a 10 % step */
    plan_free(&p);

    /* 180 - 128: less than the step, more than the hysteresis */
    memset(&p, 0, sizeof(p));
    domain(&p, 1200, 180);
    add(&p, guest("low", 700, 20, 0), 1);
    run(&p);
    g_assert_cmpuint(p.out[0].target_mib, ==, 752);
    plan_free(&p);

    /* 150 - 128: less than the hysteresis, held */
    memset(&p, 0, sizeof(p));
    domain(&p, 1200, 150);
    add(&p, guest("low", 700, 20, 0), 1);
    run(&p);
    assert_reason(&p.out[0], POLICY_GUEST_PRESSURE);
    g_assert_cmpuint(p.out[0].target_mib, ==, 700);
    plan_free(&p);
}

/* No growth during the cool-down, then within the headroom's budget */
static void test_cooldown(void)
{
    Plan p = { 0 };

    domain(&p, 1200, 1000);
    p.dom[0].short_ms = NOW_MS - cfg->cooldown_ms + 1;
    add(&p, guest("a", 600, 500, 0), 1);
    run(&p);
    assert_reason(&p.out[0], POLICY_COOLDOWN);
    g_assert_cmpuint(p.out[0].target_mib, ==, 600);

    p.dom[0].short_ms = NOW_MS - cfg->cooldown_ms;
    run(&p);
    assert_reason(&p.out[0], POLICY_GROW);
    g_assert_cmpuint(p.out[0].target_mib, ==, 660);

    /* an OOM kill: a longer cool-down */
    p.dom[0].oom_ms = NOW_MS - cfg->cooldown_ms * 2;
    run(&p);
    assert_reason(&p.out[0], POLICY_COOLDOWN);
    plan_free(&p);
}

/* Growth shares one budget: above 1.5 reserves, and no more */
static void test_grow_budget(void)
{
    Plan p = { 0 };

    domain(&p, 1200, 384 + 80);
    add(&p, guest("a", 600, 500, 0), 1);
    add(&p, guest("b", 600, 500, 0), 1);
    run(&p);
    assert_reason(&p.out[0], POLICY_GROW);
    g_assert_cmpuint(p.out[0].target_mib, ==, 660);
    /* 20 MiB left: below the hysteresis */
    assert_reason(&p.out[1], POLICY_COOLDOWN);
    g_assert_cmpuint(p.out[1].target_mib, ==, 600);
    plan_free(&p);
}

/*
 * Host pressure: those that can give ranked, most available first, then
 * by name; the first half give now; the others are out of the ranking
 */
static void test_rank(void)
{
    Plan p = { 0 };
    VmSnapshot *stale = guest("stale", 1024, 900, 0);
    VmSnapshot *silent = guest("silent", 1024, 900, 0);

    stale->stats_update_ms = NOW_MS - 60000;
    silent->responsive = false;
    add(&p, guest("b", 1024, 500, 0), 0);
    add(&p, guest("a", 1024, 700, 0), 0);
    add(&p, stale, 0);
    add(&p, guest("c", 1024, 500, 0), 0);
    add(&p, guest("low", 1024, 150, 0), 0);    /* below low mark + step */
    add(&p, silent, 0);
    policy_rank(cfg, p.in, p.n, NOW_MS);
    g_assert_cmpuint(p.in[1].rank, ==, 0);     /* a: the most available */
    g_assert_cmpuint(p.in[0].rank, ==, 1);     /* b before c: the name */
    g_assert_cmpuint(p.in[3].rank, ==, 2);
    g_assert_cmpuint(p.in[0].n_ranked, ==, 2); /* half of 3, rounded up */
    g_assert_cmpuint(p.in[2].rank, ==, 2);     /* out: rank == n_ranked */
    g_assert_cmpuint(p.in[4].rank, ==, 2);
    g_assert_cmpuint(p.in[5].rank, ==, 2);
    plan_free(&p);
}

/* A number's recent rise: from its lowest in the window to now */
static void test_trend(void)
{
    Trend t = { 0 };
    unsigned i;

    g_assert_cmpint(trend_rise(&t), ==, 0);
    g_assert_cmpfloat(trend_rise_per_s(&t, 50), ==, 0);
    trend_add(&t, 1000, 500, 1000);
    trend_add(&t, 1020, 400, 1000);     /* the lowest */
    trend_add(&t, 1520, 600, 1000);
    g_assert_cmpint(trend_rise(&t), ==, 200);
    g_assert_cmpfloat(trend_rise_per_s(&t, 50), ==, 400);
    g_assert_cmpfloat(trend_rise_per_s(&t, 600), ==, 0);   /* too recent */
    /* the lowest falls out of the window */
    trend_add(&t, 2100, 600, 1000);
    g_assert_cmpint(trend_rise(&t), ==, 0);
    /* never more than TREND_SAMPLES, whatever the window */
    for (i = 0; i < 3 * TREND_SAMPLES; i++) {
        trend_add(&t, 3000 + i, i, 1000000);
    }
    g_assert_cmpuint(t.n, ==, TREND_SAMPLES);
    g_assert_cmpint(trend_rise(&t), ==, TREND_SAMPLES - 1);
}

/*
 * A guest that OOM-killed lately, its available memory back up since:
 * never shrunk (host pressure or a short domain), it grows, until the
 * hold is over
 */
static void test_distress(void)
{
    static const HostMemory pressed = {
        .total_kib = 64 * 1024 * 1024, .available_kib = 1024,
    };
    Plan p = { 0 };

    domain(&p, 1200, -300);
    add(&p, guest("killed", 600, 400, 0), 1);
    add(&p, guest("idle", 1024, 700, 0), 1);
    p.in[0].distress_ms = NOW_MS - cfg->guest_distress_ms + 1;
    p.in[0].rank = 0;
    p.in[0].n_ranked = 2;
    policy_plan(cfg, p.dom, p.n_doms, p.in, p.n, &pressed, NOW_MS, p.out);
    /* the domain is short: it waits for room, but is not shrunk */
    assert_reason(&p.out[0], POLICY_GUEST_PRESSURE);
    g_assert_cmpuint(p.out[0].target_mib, ==, 600);
    g_assert_cmpuint(given(&p, 1), >, 0);
    /* room in the domain, the host short: it grows */
    p.dom[0].headroom_mib = 600;
    policy_plan(cfg, p.dom, p.n_doms, p.in, p.n, &pressed, NOW_MS, p.out);
    assert_reason(&p.out[0], POLICY_GUEST_PRESSURE);
    g_assert_cmpuint(p.out[0].target_mib, ==, 660);
    /* the hold is over: it gives again */
    p.dom[0].headroom_mib = -300;
    p.in[0].distress_ms = NOW_MS - cfg->guest_distress_ms;
    policy_plan(cfg, p.dom, p.n_doms, p.in, p.n, &pressed, NOW_MS, p.out);
    g_assert_cmpuint(given(&p, 0), >, 0);
    plan_free(&p);
}

/* Pure: the same inputs, the same plan */
static void test_pure(void)
{
    Plan p = { 0 };
    PolicyDecision first[8];

    domain(&p, 1200, -100);
    add(&p, guest("a", 1024, 700, 0), 1);
    add(&p, guest("b", 900, 400, 1), 1);
    add(&p, guest("c", 700, 30, 0), 1);
    run(&p);
    memcpy(first, p.out, sizeof(first));
    run(&p);
    g_assert_cmpmem(first, sizeof(PolicyDecision) * p.n, p.out,
                    sizeof(PolicyDecision) * p.n);
    plan_free(&p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloond/plan/reserve", test_reserve);
    g_test_add_func("/balloond/plan/split", test_split);
    g_test_add_func("/balloond/plan/split-capacity", test_split_capacity);
    g_test_add_func("/balloond/plan/held", test_held);
    g_test_add_func("/balloond/plan/lookahead", test_lookahead);
    g_test_add_func("/balloond/plan/settling", test_settling);
    g_test_add_func("/balloond/plan/tiers", test_tiers);
    g_test_add_func("/balloond/plan/domains-apart", test_domains_apart);
    g_test_add_func("/balloond/plan/pending", test_pending);
    g_test_add_func("/balloond/plan/not-givers", test_not_givers);
    g_test_add_func("/balloond/plan/guest-pressure-room",
                    test_guest_pressure_room);
    g_test_add_func("/balloond/plan/cooldown", test_cooldown);
    g_test_add_func("/balloond/plan/grow-budget", test_grow_budget);
    g_test_add_func("/balloond/plan/rank", test_rank);
    g_test_add_func("/balloond/plan/trend", test_trend);
    g_test_add_func("/balloond/plan/distress", test_distress);
    g_test_add_func("/balloond/plan/pure", test_pure);
    return g_test_run();
}
