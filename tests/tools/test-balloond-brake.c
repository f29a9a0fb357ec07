/*
 * qemu-oc host tools: test of qemu-oc-balloond's brake
 *
 * policy_brake() after policy_plan() on hand-made VMs and domains: a VM
 * whose QEMU grows fast in a domain nearly out is paused while the
 * others' balloons are on their way, and only then; it is resumed when
 * the domain recovers, when nothing more is coming, or at the time
 * limit, and is not braked again right after the limit; a VM is braked
 * only for a domain it is in; brake-max-ms 0 turns the brake off.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "plan-fixtures.h"

/* 20 % of 1600: the reserve; distress below half of it */
#define LIMIT 1600
#define RESERVE 320

typedef struct Brake {
    Plan p;
    PolicyConfig cfg;
    PolicyBrakeDecision out[8];
} Brake;

/*
 * Two guests full of page cache (the host holds 600 of their 1024 MiB)
 * and one whose QEMU grows @burst_mib_s, in one domain of 1600 MiB with
 * @headroom_mib
 */
static void setup(Brake *b, int64_t headroom_mib, double burst_mib_s)
{
    memset(b, 0, sizeof(*b));
    b->cfg = policy_default_config;
    domain(&b->p, LIMIT, headroom_mib);
    add(&b->p, guest("cache-a", 1024, 900, 0), 1);
    add(&b->p, guest("cache-b", 1024, 900, 0), 1);
    add(&b->p, guest("burst", 1024, 700, 0), 1);
    b->p.in[0].held_mib = b->p.in[1].held_mib = 600;
    b->p.in[2].held_mib = 300;
    b->p.in[2].qemu_rss_mib_s = burst_mib_s;
}

static void decide(Brake *b)
{
    policy_plan(&b->cfg, b->p.dom, b->p.n_doms, b->p.in, b->p.n, &host_calm,
                NOW_MS, b->p.out);
    policy_brake(&b->cfg, b->p.dom, b->p.n_doms, b->p.in, b->p.n, b->p.out,
                 NOW_MS, b->out);
}

static void assert_brake(const PolicyBrakeDecision *d, bool brake,
                         PolicyBrakeReason r)
{
    g_assert_cmpstr(policy_brake_reason_names[d->reason], ==,
                    policy_brake_reason_names[r]);
    g_assert_cmpint(d->brake, ==, brake);
}

/* Nearly out, the others giving: the fast grower is paused, only it */
static void test_applied(void)
{
    Brake b;

    setup(&b, RESERVE / 2 - 1, 300);
    decide(&b);
    g_assert_cmpuint(b.p.out[0].target_mib, <, 600);
    assert_brake(&b.out[2], true, POLICY_BRAKE_APPLIED);
    assert_brake(&b.out[0], false, POLICY_BRAKE_NONE);
    assert_brake(&b.out[1], false, POLICY_BRAKE_NONE);
    plan_free(&b.p);
}

/* Short but not in distress, or a slow grower: no brake */
static void test_not_applied(void)
{
    Brake b;

    setup(&b, RESERVE / 2, 300);
    decide(&b);
    g_assert_cmpuint(b.p.out[0].target_mib, <, 600);    /* short */
    assert_brake(&b.out[2], false, POLICY_BRAKE_NONE);
    plan_free(&b.p);

    setup(&b, 10, b.cfg.guest_alloc_mib_s);
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_NONE);
    plan_free(&b.p);

    /* the brake turned off */
    setup(&b, 10, 300);
    b.cfg.brake_max_ms = 0;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_NONE);
    plan_free(&b.p);

    /* a VM that does not answer cannot be paused */
    setup(&b, 10, 300);
    b.p.s[2]->responsive = false;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_NONE);
    plan_free(&b.p);
}

/*
 * Nothing on its way: the others are at what they can give (their
 * balloons hold what the host held), so a pause would only wait
 */
static void test_nothing_coming(void)
{
    Brake b;

    setup(&b, 10, 300);
    b.p.in[0].held_mib = b.p.in[1].held_mib = 256;
    b.p.s[0]->actual = b.p.s[1]->actual = 256 * MIB;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_NONE);

    /* braked, and nothing more is coming: resumed */
    b.p.in[2].braked_ms = NOW_MS - 500;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_NOTHING_COMING);
    plan_free(&b.p);
}

/*
 * Held while the domain is short and the balloons are on their way (the
 * paused VM no longer grows); resumed once the domain has its reserve
 */
static void test_held_then_recovered(void)
{
    Brake b;

    setup(&b, RESERVE - 1, 0);
    b.p.in[2].braked_ms = NOW_MS - 500;
    decide(&b);
    assert_brake(&b.out[2], true, POLICY_BRAKE_HELD);

    /* their balloons on their way: nothing new asked, still coming */
    b.p.in[0].target_mib = b.p.out[0].target_mib;
    b.p.in[1].target_mib = b.p.out[1].target_mib;
    decide(&b);
    g_assert_cmpuint(b.p.out[0].target_mib, ==, b.p.out[0].current_mib);
    assert_brake(&b.out[2], true, POLICY_BRAKE_HELD);

    b.p.dom[0].headroom_mib = RESERVE;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_RECOVERED);
    plan_free(&b.p);
}

/* The time limit: resumed, and not braked again for as long */
static void test_time_limit(void)
{
    Brake b;

    setup(&b, 10, 0);
    b.p.in[2].braked_ms = NOW_MS - b.cfg.brake_max_ms;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_TIME);
    plan_free(&b.p);

    setup(&b, 10, 300);
    b.p.in[2].released_ms = NOW_MS - b.cfg.brake_max_ms + 1;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_NONE);
    b.p.in[2].released_ms = NOW_MS - b.cfg.brake_max_ms;
    decide(&b);
    assert_brake(&b.out[2], true, POLICY_BRAKE_APPLIED);
    plan_free(&b.p);
}

/*
 * A domain nearly out brakes only its own VMs: the grower of a domain
 * that is fine runs on, and the others' giving for another domain does
 * not count
 */
static void test_domains_apart(void)
{
    Brake b;

    setup(&b, 10, 300);
    domain(&b.p, LIMIT, 1000);
    b.p.in[2].domains = 2;
    decide(&b);
    assert_brake(&b.out[2], false, POLICY_BRAKE_NONE);

    /* in both: braked for the first one */
    b.p.in[2].domains = 3;
    decide(&b);
    assert_brake(&b.out[2], true, POLICY_BRAKE_APPLIED);
    plan_free(&b.p);
}

/* The same inputs, the same decisions */
static void test_pure(void)
{
    PolicyBrakeDecision first[8];
    Brake b;

    setup(&b, 10, 300);
    decide(&b);
    memcpy(first, b.out, sizeof(first));
    decide(&b);
    g_assert_cmpmem(first, sizeof(first), b.out, sizeof(b.out));
    plan_free(&b.p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloond/brake/applied", test_applied);
    g_test_add_func("/balloond/brake/not-applied", test_not_applied);
    g_test_add_func("/balloond/brake/nothing-coming", test_nothing_coming);
    g_test_add_func("/balloond/brake/held-then-recovered",
                    test_held_then_recovered);
    g_test_add_func("/balloond/brake/time-limit", test_time_limit);
    g_test_add_func("/balloond/brake/domains-apart", test_domains_apart);
    g_test_add_func("/balloond/brake/pure", test_pure);
    return g_test_run();
}
