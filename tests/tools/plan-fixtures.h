/*
 * qemu-oc host tools: hand-made VMs and memory domains for the tests of
 * qemu-oc-balloond's plan (test-balloond-plan.c, test-balloond-brake.c)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_TOOLS_PLAN_FIXTURES_H
#define TESTS_TOOLS_PLAN_FIXTURES_H

#include <string.h>
#include <glib.h>

#include "policy.h"

#define MIB (1024ull * 1024)
#define NOW_MS 1800000000000LL
#define REPORT_MS 2000

static const PolicyConfig *cfg = &policy_default_config;

static const HostMemory host_calm = {
    .total_kib = 64 * 1024 * 1024, .available_kib = 32 * 1024 * 1024,
};

/*
 * A 1 GiB guest with balloon @actual_mib, @avail_mib available, whose
 * used memory rose @used_mib_s MiB/s between its last two reports
 */
static inline VmSnapshot *guest(const char *name, uint64_t actual_mib,
                         uint64_t avail_mib, double used_mib_s)
{
    VmSnapshot *s = vm_snapshot_new(name, name);
    unsigned i;

    s->responsive = true;
    s->has_balloon = true;
    s->actual = actual_mib * MIB;
    s->max_memory = 1024 * MIB;
    s->has_stats = true;
    s->stats_update_ms = NOW_MS - 500;
    s->prev_update_ms = s->stats_update_ms - REPORT_MS;
    for (i = 0; i < VM_STATS_NR; i++) {
        s->stats[i] = s->prev_stats[i] = 1000;
        s->stats_mask |= 1u << i;
    }
    s->stats[STAT_TOTAL] = s->prev_stats[STAT_TOTAL] = actual_mib * MIB;
    s->stats[STAT_AVAILABLE] = avail_mib * MIB;
    s->prev_stats[STAT_AVAILABLE] =
        avail_mib * MIB + used_mib_s * MIB * REPORT_MS / 1000;
    return s;
}

typedef struct Plan {
    VmSnapshot *s[8];
    PolicyVm in[8];
    PolicyDecision out[8];
    PolicyDomain dom[4];
    unsigned n, n_doms;
} Plan;

static inline void add(Plan *p, VmSnapshot *s, uint64_t domains)
{
    p->s[p->n] = s;
    p->in[p->n] = (PolicyVm) {
        .s = s, .cfg = &cfg->defaults, .max_mib = 1024,
        .domains = domains, .n_ranked = 1, .rank = 1, .demand_known = true,
    };
    p->n++;
}

/* A domain of @limit_mib with @headroom_mib */
static inline void domain(Plan *p, uint64_t limit_mib, int64_t headroom_mib)
{
    p->dom[p->n_doms++] = (PolicyDomain) {
        .limit_mib = limit_mib, .headroom_mib = headroom_mib,
    };
}

static inline void run(Plan *p)
{
    policy_plan(cfg, p->dom, p->n_doms, p->in, p->n, &host_calm, NOW_MS,
                p->out);
}

static inline void plan_free(Plan *p)
{
    unsigned i;

    for (i = 0; i < p->n; i++) {
        vm_snapshot_unref(p->s[i]);
    }
}

static inline uint64_t given(const Plan *p, unsigned i)
{
    const PolicyDecision *d = &p->out[i];

    return d->current_mib > d->target_mib ? d->current_mib - d->target_mib
                                          : 0;
}

#endif
