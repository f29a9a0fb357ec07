/*
 * qemu-oc-balloond: the brake (pure: no I/O, no clock)
 *
 * A balloon gives memory back at the speed the guest frees pages (50 to
 * 100 MiB/s for a TCG guest here); a guest can take it faster.  When a
 * domain's headroom is nearly gone and a VM's QEMU grows fast, the other
 * VMs' balloons cannot arrive in time and the kernel's OOM killer is
 * about to kill a whole QEMU.  The brake pauses that VM's vCPUs for the
 * moments the others' balloons need: it resumes as soon as the domain
 * is no longer short, when nothing more is on its way, or after
 * brake_max_ms at the latest.  It is what memory.high does for a cgroup
 * v2 (the kernel throttles the allocating tasks), for any domain.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "policy.h"

/* The guest memory the host holds for @v, MiB */
static uint64_t held(const PolicyVm *v, const PolicyDecision *d)
{
    return v->held_mib ? MIN(v->held_mib, d->current_mib) : d->current_mib;
}

/*
 * What @v's balloon is still to give back to the host, MiB: down to the
 * plan's new target, or else to the target already on its way
 */
static uint64_t giving(const PolicyVm *v, const PolicyDecision *d)
{
    uint64_t h = held(v, d), going = d->target_mib;

    if (going == d->current_mib && v->target_mib) {
        going = v->target_mib;
    }
    return h > going ? h - going : 0;
}

/*
 * What domain @k's VMs are still to give back, MiB: those not braked
 * (a paused guest frees nothing) other than @except
 */
static uint64_t domain_giving(unsigned k, const PolicyVm *vms,
                              unsigned n_vms, const PolicyDecision *plan,
                              const bool *braked, unsigned except)
{
    uint64_t sum = 0;
    unsigned j;

    for (j = 0; j < n_vms; j++) {
        if (j != except && !braked[j] && (vms[j].domains & (1ull << k))) {
            sum += giving(&vms[j], &plan[j]);
        }
    }
    return sum;
}

static bool is_short(const PolicyConfig *cfg, const PolicyDomain *d)
{
    return d->headroom_mib < (int64_t)policy_domain_reserve_mib(cfg, d);
}

static bool in_distress(const PolicyConfig *cfg, const PolicyDomain *d)
{
    return d->headroom_mib < (int64_t)policy_domain_reserve_mib(cfg, d) / 2;
}

/* Whether braked @v stays braked */
static bool hold(const PolicyConfig *cfg, const PolicyDomain *doms,
                 unsigned n_doms, const PolicyVm *vms, unsigned n_vms,
                 const PolicyDecision *plan, const bool *braked, unsigned i,
                 int64_t now_ms, PolicyBrakeReason *why)
{
    unsigned k;

    if (now_ms - vms[i].braked_ms >= cfg->brake_max_ms) {
        *why = POLICY_BRAKE_TIME;
        return false;
    }
    *why = POLICY_BRAKE_RECOVERED;
    for (k = 0; k < n_doms; k++) {
        if (!(vms[i].domains & (1ull << k)) || !is_short(cfg, &doms[k])) {
            continue;
        }
        if (domain_giving(k, vms, n_vms, plan, braked, i)) {
            return true;
        }
        *why = POLICY_BRAKE_NOTHING_COMING;
    }
    return false;
}

/* Whether running @v is braked now */
static bool apply_brake(const PolicyConfig *cfg, const PolicyDomain *doms,
                        unsigned n_doms, const PolicyVm *vms, unsigned n_vms,
                        const PolicyDecision *plan, const bool *braked,
                        unsigned i, int64_t now_ms)
{
    const PolicyVm *v = &vms[i];
    unsigned k;

    if (!v->s->responsive ||
        (v->released_ms && now_ms - v->released_ms < cfg->brake_max_ms) ||
        v->qemu_rss_mib_s <= cfg->guest_alloc_mib_s) {
        return false;
    }
    for (k = 0; k < n_doms; k++) {
        if ((v->domains & (1ull << k)) && in_distress(cfg, &doms[k]) &&
            domain_giving(k, vms, n_vms, plan, braked, i)) {
            return true;
        }
    }
    return false;
}

void policy_brake(const PolicyConfig *cfg, const PolicyDomain *doms,
                  unsigned n_doms, const PolicyVm *vms, unsigned n_vms,
                  const PolicyDecision *plan, int64_t now_ms,
                  PolicyBrakeDecision *out)
{
    g_autofree bool *braked = g_new0(bool, n_vms);
    unsigned i;

    for (i = 0; i < n_vms; i++) {
        braked[i] = vms[i].braked_ms != 0;
    }
    for (i = 0; i < n_vms; i++) {
        PolicyBrakeDecision *o = &out[i];

        o->reason = POLICY_BRAKE_NONE;
        if (braked[i]) {
            o->brake = hold(cfg, doms, n_doms, vms, n_vms, plan, braked, i,
                            now_ms, &o->reason);
            if (o->brake) {
                o->reason = POLICY_BRAKE_HELD;
            }
        } else {
            o->brake = cfg->brake_max_ms > 0 &&
                       apply_brake(cfg, doms, n_doms, vms, n_vms, plan,
                                   braked, i, now_ms);
            if (o->brake) {
                o->reason = POLICY_BRAKE_APPLIED;
            }
        }
    }
}

const char *const policy_brake_reason_names[POLICY_BRAKE_REASON__MAX] = {
    [POLICY_BRAKE_NONE] = "none",
    [POLICY_BRAKE_APPLIED] = "applied",
    [POLICY_BRAKE_HELD] = "held",
    [POLICY_BRAKE_RECOVERED] = "recovered",
    [POLICY_BRAKE_NOTHING_COMING] = "nothing-coming",
    [POLICY_BRAKE_TIME] = "time",
};
