/*
 * qemu-oc-balloond: the balloon policy
 *
 * policy_decide() applies the rules of policy.h to one VM's snapshot,
 * in order: unresponsive, stale, bounds, guest pressure, host pressure,
 * grow; then the hysteresis.  policy_plan() decides for every VM at
 * once with the memory domains they are in.  Both are pure: every input
 * is an argument, including the wall clock.  The configuration file is
 * policy-config.c.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <math.h>
#include <stddef.h>
#include <string.h>
#include "policy.h"

const PolicyConfig policy_default_config = {
    .defaults = { .floor_mib = 256, .ceiling_mib = 0 },
    .step_mib = 256,
    .step_pct = 10,
    .hysteresis_mib = 32,
    .stale_ms = 10000,
    .guest_low_avail_pct = 10,
    .guest_majflt_per_s = 50,
    .guest_swapin_per_s = 1024 * 1024,
    .host_low_avail_pct = 10,
    .host_psi_some_avg10 = 10,
    .reserve_mib = 256,
    .reserve_pct = 20,
    .cooldown_ms = 30000,
    .oom_cooldown_ms = 300000,
    .guest_alloc_mib_s = 4,
    .lookahead_ms = 1000,
    .guest_distress_ms = 60000,
    .brake_max_ms = 10000,
};

const char *const policy_reason_names[POLICY_REASON__MAX] = {
    [POLICY_STEADY] = "steady",
    [POLICY_UNRESPONSIVE] = "unresponsive",
    [POLICY_STALE] = "stale",
    [POLICY_GUEST_PRESSURE] = "guest-pressure",
    [POLICY_HOST_PRESSURE] = "host-pressure",
    [POLICY_GROW] = "grow",
    [POLICY_BOUNDS] = "bounds",
    [POLICY_DOMAIN_SHORT] = "domain-short",
    [POLICY_COOLDOWN] = "cool-down",
};

/* The decision */

static uint64_t bytes_to_mib(uint64_t bytes)
{
    return bytes >> 20;
}

static bool has_stat(const VmSnapshot *s, unsigned stat)
{
    return s->has_stats && (s->stats_mask & (1u << stat));
}

/* The largest change of one decision: MiB and % bounded, at least 1 */
static uint64_t policy_step(const PolicyConfig *cfg, uint64_t current)
{
    uint64_t pct = (uint64_t)(current * cfg->step_pct / 100.0);

    return MAX(MIN(cfg->step_mib, pct), 1);
}

/* A rate for the log line and the pressure test, -1 if unknown */
static double stat_rate(const VmSnapshot *s, unsigned stat)
{
    double r;

    return vm_snapshot_stat_rate(s, stat, &r) ? r : -1;
}

/* Whether a counter rose between the guest's last two reports */
static bool stat_rose(const VmSnapshot *s, unsigned stat)
{
    return stat_rate(s, stat) > 0;
}

/* The guest's available memory in MiB, free memory if unknown, or -1 */
static int64_t guest_avail_mib(const VmSnapshot *s)
{
    if (has_stat(s, STAT_AVAILABLE)) {
        return bytes_to_mib(s->stats[STAT_AVAILABLE]);
    }
    if (has_stat(s, STAT_FREE)) {
        return bytes_to_mib(s->stats[STAT_FREE]);   /* a lower bound */
    }
    return -1;
}

static void guest_inputs(const VmSnapshot *s, PolicyDecision *out)
{
    out->guest_avail_pct = -1;
    if (has_stat(s, STAT_AVAILABLE) && has_stat(s, STAT_TOTAL) &&
        s->stats[STAT_TOTAL] > 0) {
        out->guest_avail_pct = s->stats[STAT_AVAILABLE] * 100.0 /
                               s->stats[STAT_TOTAL];
    }
    out->majflt_per_s = stat_rate(s, STAT_MAJOR_FAULTS);
    out->swapin_per_s = stat_rate(s, STAT_SWAP_IN);
}

/* Any one signal of pressure inside the guest (inputs already filled) */
static bool guest_pressure(const PolicyConfig *cfg, const VmSnapshot *s,
                           const PolicyDecision *in)
{
    return (in->guest_avail_pct >= 0 &&
            in->guest_avail_pct < cfg->guest_low_avail_pct) ||
           in->majflt_per_s > cfg->guest_majflt_per_s ||
           in->swapin_per_s > cfg->guest_swapin_per_s ||
           stat_rose(s, STAT_ALLOC_STALLS) || stat_rose(s, STAT_OOM_KILLS);
}

static bool host_pressure(const PolicyConfig *cfg, const HostMemory *host)
{
    return host->psi_stall ||
           (host->total_kib &&
            host->available_kib * 100.0 <
            cfg->host_low_avail_pct * host->total_kib) ||
           host->psi_some_avg10 > cfg->host_psi_some_avg10;
}

bool policy_host_pressure(const PolicyConfig *cfg, HostMemory *host)
{
    host->pressure = host_pressure(cfg, host);
    return host->pressure;
}

/*
 * What the guest can give without nearing its low mark: its available
 * memory above the low mark plus a step's margin; 0 if unknown
 */
static uint64_t guest_spare_mib(const PolicyConfig *cfg,
                                const VmSnapshot *s, uint64_t step)
{
    int64_t avail = guest_avail_mib(s);
    double low;

    if (avail < 0 || !has_stat(s, STAT_TOTAL)) {
        return 0;
    }
    low = bytes_to_mib(s->stats[STAT_TOTAL]) * cfg->guest_low_avail_pct /
          100.0 + step;
    return avail > low ? (uint64_t)(avail - low) : 0;
}

/*
 * Near pressure: a signal above half its threshold.  A guest near
 * pressure does not give, and VMs do not grow while the host is near
 * pressure: between the two marks nothing moves, so a signal wavering
 * around its threshold cannot make a VM shrink and grow in turn.
 */
static bool guest_near_pressure(const PolicyConfig *cfg,
                                const PolicyDecision *in)
{
    return in->majflt_per_s > cfg->guest_majflt_per_s / 2 ||
           in->swapin_per_s > cfg->guest_swapin_per_s / 2;
}

static bool host_near_pressure(const PolicyConfig *cfg,
                               const HostMemory *host)
{
    return host->psi_some_avg10 > cfg->host_psi_some_avg10 / 2;
}

/*
 * What the host can give without nearing its low mark: MemAvailable
 * above the low mark plus a step's margin; unbounded if unknown
 */
static uint64_t host_spare_mib(const PolicyConfig *cfg,
                               const HostMemory *host, uint64_t step)
{
    double avail = host->available_kib / 1024.0, low;

    if (!host->total_kib) {
        return UINT64_MAX;
    }
    low = host->total_kib / 1024.0 * cfg->host_low_avail_pct / 100.0 + step;
    return avail > low ? (uint64_t)(avail - low) : 0;
}

static uint64_t grow_target(uint64_t current, uint64_t step,
                            uint64_t ceiling)
{
    return current >= ceiling ? current
                              : current + MIN(step, ceiling - current);
}

static uint64_t shrink_target(uint64_t current, uint64_t give,
                              uint64_t floor)
{
    return current <= floor ? current : MAX(current - give, floor);
}

/*
 * The hysteresis: a change smaller than it is not made, unless it lands
 * exactly on the floor or the ceiling (a last small step there cannot
 * oscillate, and leaves a VM at its bound rather than just short of it)
 */
static void apply_hysteresis(const PolicyConfig *cfg, PolicyDecision *out,
                             PolicyReason reason, uint64_t target,
                             uint64_t floor, uint64_t ceiling)
{
    uint64_t delta = target > out->current_mib ? target - out->current_mib
                                                : out->current_mib - target;

    if (delta == 0 || (reason != POLICY_BOUNDS &&
                       delta < cfg->hysteresis_mib &&
                       target != floor && target != ceiling)) {
        out->reason = POLICY_STEADY;
        out->target_mib = out->current_mib;
        return;
    }
    out->reason = reason;
    out->target_mib = target;
}

/* The ceiling: the configured one if set, never above the VM's maximum */
static uint64_t vm_ceiling(const PolicyVmConfig *vm, uint64_t max_mib,
                           uint64_t current)
{
    if (!max_mib) {             /* maximum unknown: never grow past now */
        return vm->ceiling_mib ? vm->ceiling_mib : current;
    }
    return vm->ceiling_mib ? MIN(vm->ceiling_mib, max_mib) : max_mib;
}

/* Inside floor..ceiling: the pressure rules */
static void decide_inside(const PolicyConfig *cfg, const VmSnapshot *s,
                          const HostMemory *host, bool asked_to_give,
                          uint64_t floor, uint64_t ceiling,
                          PolicyDecision *out)
{
    uint64_t current = out->current_mib;
    uint64_t step = policy_step(cfg, current);
    uint64_t target = current;
    PolicyReason reason = POLICY_STEADY;

    if (guest_pressure(cfg, s, out)) {
        reason = POLICY_GUEST_PRESSURE;
        target = grow_target(current, step, ceiling);
    } else if (!host_pressure(cfg, host)) {
        reason = POLICY_GROW;
        if (!host_near_pressure(cfg, host)) {
            step = MIN(step, host_spare_mib(cfg, host, step));
            target = grow_target(current, step, ceiling);
        }
    } else if (asked_to_give && !guest_near_pressure(cfg, out)) {
        reason = POLICY_HOST_PRESSURE;
        target = shrink_target(current,
                               MIN(step, guest_spare_mib(cfg, s, step)),
                               floor);
    }
    apply_hysteresis(cfg, out, reason, target, floor, ceiling);
}

void policy_decide(const PolicyConfig *cfg, const PolicyVmConfig *vm,
                   const VmSnapshot *s, const HostMemory *host,
                   unsigned rank, unsigned n_ranked, uint64_t max_mib,
                   int64_t now_ms, PolicyDecision *out)
{
    uint64_t current, ceiling, floor, step;
    int64_t age;

    memset(out, 0, sizeof(*out));
    current = s->has_balloon && s->actual > 0 ? bytes_to_mib(s->actual) : 0;
    out->current_mib = out->target_mib = current;
    guest_inputs(s, out);
    out->reason = POLICY_UNRESPONSIVE;
    if (!s->responsive) {
        return;
    }
    out->reason = POLICY_STALE;
    age = vm_snapshot_stats_age_ms(s, now_ms);
    if (!s->has_balloon || age < 0 || age > cfg->stale_ms) {
        return;
    }
    ceiling = vm_ceiling(vm, max_mib, current);
    floor = MIN(vm->floor_mib, ceiling);
    step = policy_step(cfg, current);

    if (current > ceiling) {
        apply_hysteresis(cfg, out, POLICY_BOUNDS,
                         MAX(current - step, ceiling), floor, ceiling);
    } else if (current < floor) {
        apply_hysteresis(cfg, out, POLICY_BOUNDS, MIN(current + step, floor),
                         floor, ceiling);
    } else {
        decide_inside(cfg, s, host, rank < n_ranked, floor, ceiling, out);
    }
}


/* Host pressure: who gives first */

/* Whether @s can give under host pressure */
static bool can_give_to_host(const PolicyConfig *cfg, const VmSnapshot *s,
                             int64_t now_ms)
{
    uint64_t current = s->has_balloon && s->actual > 0 ? s->actual >> 20 : 0;
    int64_t age = vm_snapshot_stats_age_ms(s, now_ms);

    return s->responsive && age >= 0 && age <= cfg->stale_ms &&
           guest_spare_mib(cfg, s, policy_step(cfg, current)) > 0;
}

static uint64_t avail_bytes(const VmSnapshot *s)
{
    return has_stat(s, STAT_AVAILABLE) ? s->stats[STAT_AVAILABLE] : 0;
}

/* One VM to rank: its available memory, read once */
typedef struct RankKey {
    uint64_t avail;
    const char *name;
    unsigned index;
} RankKey;

/* The most available memory first; by name among equals */
static int rank_order(gconstpointer a, gconstpointer b,
                      gpointer opaque G_GNUC_UNUSED)
{
    const RankKey *x = a, *y = b;

    if (x->avail != y->avail) {
        return x->avail > y->avail ? -1 : 1;
    }
    return g_strcmp0(x->name, y->name);
}

void policy_rank(const PolicyConfig *cfg, PolicyVm *vms, unsigned n_vms,
                 int64_t now_ms)
{
    g_autofree RankKey *keys = g_new(RankKey, n_vms);
    unsigned i, eligible = 0;

    for (i = 0; i < n_vms; i++) {
        if (can_give_to_host(cfg, vms[i].s, now_ms)) {
            keys[eligible++] = (RankKey) {
                .avail = avail_bytes(vms[i].s),
                .name = vms[i].s->name,
                .index = i,
            };
        }
    }
    /* (n log n: a host of 1,000 VMs ranks them in well under 1 ms) */
    g_qsort_with_data(keys, eligible, sizeof(*keys), rank_order, NULL);
    for (i = 0; i < n_vms; i++) {
        vms[i].n_ranked = (eligible + 1) / 2;
        vms[i].rank = vms[i].n_ranked;      /* not eligible: not ranked */
    }
    for (i = 0; i < eligible; i++) {
        vms[keys[i].index].rank = i;
    }
}

/* Memory domains: the plan of every VM at once */

uint64_t policy_domain_reserve_mib(const PolicyConfig *cfg,
                                   const PolicyDomain *d)
{
    uint64_t mib = d->own ? d->own->reserve_mib : cfg->reserve_mib;
    double pct = d->own ? d->own->reserve_pct : cfg->reserve_pct;

    return MAX(mib, (uint64_t)(d->limit_mib * pct / 100.0));
}

/*
 * How fast the guest's used memory (total - available) rises, MiB/s:
 * inflating the balloon lowers both, so this is the guest's own demand.
 * 0 if unknown.
 */
static double used_rate_mib_s(const VmSnapshot *s)
{
    double now, before, dt;

    if (!has_stat(s, STAT_TOTAL) || !has_stat(s, STAT_AVAILABLE) ||
        !s->prev_update_ms || s->stats_update_ms <= s->prev_update_ms) {
        return 0;
    }
    now = (double)s->stats[STAT_TOTAL] - s->stats[STAT_AVAILABLE];
    before = (double)s->prev_stats[STAT_TOTAL] -
             s->prev_stats[STAT_AVAILABLE];
    dt = (s->stats_update_ms - s->prev_update_ms) / 1000.0;
    return (now - before) / (1024.0 * 1024.0) / dt;
}

/* The size the balloon is going to: the last target if one is pending */
static uint64_t going_to_mib(const PolicyVm *v, uint64_t current)
{
    return v->target_mib ? v->target_mib : current;
}

/* The guest memory the host holds for @v, MiB: its balloon's size if unknown */
static uint64_t held_mib(const PolicyVm *v, uint64_t current)
{
    return v->held_mib ? MIN(v->held_mib, current) : current;
}

/* What a balloon at @target surely gives back to the host, MiB */
static uint64_t relief_mib(const PolicyVm *v, uint64_t current,
                           uint64_t target)
{
    uint64_t held = held_mib(v, current);

    return held > target ? held - target : 0;
}

/* The balloon target that gives the host @give MiB more than @going */
static uint64_t target_giving(const PolicyVm *v, uint64_t current,
                              uint64_t going, uint64_t give)
{
    return MIN(going, held_mib(v, current)) - give;
}

/* What the domains know once the balloons reach their targets */
typedef struct DomainPlan {
    int64_t reserve;
    int64_t headroom;           /* with what the balloons still give */
    int64_t need;               /* > 0: short by this much */
    int64_t grow_budget;        /* what growth may still take */
    bool cooling;
} DomainPlan;

/* What one VM can give now, MiB (0: it does not give) */
static uint64_t give_capacity(const PolicyConfig *cfg, const PolicyVm *v,
                              const PolicyDecision *base, uint64_t *tier)
{
    const VmSnapshot *s = v->s;
    uint64_t going = going_to_mib(v, base->current_mib);
    uint64_t ceiling = vm_ceiling(v->cfg, v->max_mib, base->current_mib);
    uint64_t floor = MIN(v->cfg->floor_mib, ceiling);
    uint64_t spare, pending, lowest;
    double rate = used_rate_mib_s(s);

    if (base->reason == POLICY_UNRESPONSIVE || base->reason == POLICY_STALE ||
        base->reason == POLICY_GUEST_PRESSURE ||
        guest_near_pressure(cfg, base) || rate > cfg->guest_alloc_mib_s ||
        v->qemu_rss_mib_s > cfg->guest_alloc_mib_s || going <= floor) {
        return 0;
    }
    /* the guest's spare memory, less what its balloon still takes */
    spare = guest_spare_mib(cfg, s, cfg->hysteresis_mib);
    pending = base->current_mib > going ? base->current_mib - going : 0;
    spare = spare > pending ? spare - pending : 0;
    if (v->settling) {
        uint64_t step = policy_step(cfg, base->current_mib);

        spare = MIN(spare, step > pending ? step - pending : 0);
    }
    /* the lowest target it may get, and what that gives the host */
    lowest = going - MIN(spare, going - floor);
    /*
     * tier 0: used memory not rising, and not risen lately (a guest that
     * allocates in steps looks idle between them); tier 1: the others;
     * tier 2: those whose demand is not known yet (a daemon just
     * started), only when the domain is nearly out (urgent)
     */
    if (!v->demand_known) {
        *tier = 2;
    } else {
        *tier = rate > cfg->guest_alloc_mib_s / 4 ||
                v->used_rise_mib > 2 * cfg->hysteresis_mib ? 1 : 0;
    }
    return relief_mib(v, base->current_mib, lowest) -
           relief_mib(v, base->current_mib, going);
}

static void plan_domains(const PolicyConfig *cfg, const PolicyDomain *doms,
                         unsigned n_doms, const PolicyVm *vms,
                         unsigned n_vms, const PolicyDecision *base,
                         int64_t now_ms, DomainPlan *dp)
{
    unsigned i, j;

    for (i = 0; i < n_doms; i++) {
        int64_t reserve = policy_domain_reserve_mib(cfg, &doms[i]);

        dp[i].reserve = reserve;
        dp[i].headroom = doms[i].headroom_mib;
        for (j = 0; j < n_vms; j++) {
            uint64_t cur = base[j].current_mib;
            uint64_t going = going_to_mib(&vms[j], cur);

            if (!(vms[j].domains & (1ull << i))) {
                continue;
            }
            /* a balloon on its way: what it gives, or growth it takes */
            dp[i].headroom += going > cur ? -(int64_t)(going - cur) :
                              (int64_t)relief_mib(&vms[j], cur, going);
        }
        dp[i].need = reserve - dp[i].headroom;
        if (dp[i].need > 0) {
            /* a burst: what it takes before the balloons answer too */
            dp[i].need += (int64_t)(doms[i].falling_mib_s *
                                    cfg->lookahead_ms / 1000.0);
        }
        dp[i].grow_budget = dp[i].headroom - reserve - reserve / 2;
        dp[i].cooling = (doms[i].short_ms &&
                         now_ms - doms[i].short_ms < cfg->cooldown_ms) ||
                        (doms[i].oom_ms &&
                         now_ms - doms[i].oom_ms < cfg->oom_cooldown_ms);
    }
}

/* What the VMs of @tier in domain @d can give */
static uint64_t tier_total(unsigned d, uint64_t tier, const PolicyVm *vms,
                           unsigned n_vms, const uint64_t *cap,
                           const uint64_t *tiers)
{
    uint64_t total = 0;
    unsigned j;

    for (j = 0; j < n_vms; j++) {
        if ((vms[j].domains & (1ull << d)) && tiers[j] == tier) {
            total += cap[j];
        }
    }
    return total;
}

/*
 * Split domain @d's need among its VMs that can give: the VMs of tier 0
 * first, in proportion to what each can give; tier 1 only for what
 * tier 0 cannot cover; tier 2 (demand not known yet) only if @urgent.
 * Until then tier 2 keeps its part of the proportion (it gives it once
 * known), so the first VM a daemon hears from is not asked for all.
 * Each share is at least the hysteresis (or all the VM can give), so a
 * small need is not split into useless commands.
 */
static void split_need(const PolicyConfig *cfg, unsigned d, int64_t need,
                       bool urgent, const PolicyVm *vms, unsigned n_vms,
                       const PolicyDecision *base, const uint64_t *cap,
                       const uint64_t *tier, uint64_t *give)
{
    uint64_t waiting = urgent ? 0 : tier_total(d, 2, vms, n_vms, cap, tier);
    unsigned t, j;

    for (t = 0; t < (urgent ? 3 : 2) && need > 0; t++) {
        uint64_t total = tier_total(d, t, vms, n_vms, cap, tier);
        uint64_t whole = total + (t == 0 ? waiting : 0), share, covered;

        if (!total) {
            continue;
        }
        for (j = 0; j < n_vms; j++) {
            if (!(vms[j].domains & (1ull << d)) || tier[j] != t || !cap[j]) {
                continue;
            }
            share = (uint64_t)need >= whole ? cap[j] :
                    (uint64_t)ceil((double)need * cap[j] / whole);
            share = MIN(MAX(share, cfg->hysteresis_mib), cap[j]);
            if (t == 2) {
                /* a step at a time: it may be about to need it */
                share = MIN(share, policy_step(cfg, base[j].current_mib));
            }
            give[j] = MAX(give[j], share);
        }
        covered = (uint64_t)need >= whole ? whole : (uint64_t)need;
        need -= covered;        /* (tier 2's part included: it will come) */
    }
}

/* A VM that would grow: within every domain's budget, outside cool-down */
static void plan_grow(const PolicyConfig *cfg, const PolicyVm *v,
                      unsigned n_doms, DomainPlan *dp, PolicyDecision *out)
{
    uint64_t want = out->target_mib - out->current_mib, room = want;
    bool guest = out->reason == POLICY_GUEST_PRESSURE;
    unsigned i;

    for (i = 0; i < n_doms; i++) {
        if (!(v->domains & (1ull << i))) {
            continue;
        }
        if (guest) {
            /* a guest near its own OOM may take half the reserve */
            int64_t r = dp[i].headroom - dp[i].reserve / 2;

            room = MIN(room, (uint64_t)MAX(r, 0));
        } else if (dp[i].cooling || dp[i].need > 0) {
            room = 0;
        } else {
            room = MIN(room, (uint64_t)MAX(dp[i].grow_budget, 0));
        }
    }
    if (room < want && room < cfg->hysteresis_mib) {
        out->reason = guest ? POLICY_GUEST_PRESSURE : POLICY_COOLDOWN;
        out->target_mib = out->current_mib;
        return;
    }
    out->target_mib = out->current_mib + room;
    for (i = 0; i < n_doms; i++) {
        if (v->domains & (1ull << i)) {
            dp[i].headroom -= room;
            dp[i].grow_budget -= room;
        }
    }
}

/*
 * A guest that OOM-killed or stalled lately: the signal lasts one report
 * (the kill frees memory), but the guest is still short.  Never shrunk
 * for guest_distress_ms; it grows as under pressure.
 */
static void hold_distressed(const PolicyConfig *cfg, const PolicyVm *v,
                            int64_t now_ms, PolicyDecision *out)
{
    uint64_t ceiling, step;

    if (!v->distress_ms || now_ms - v->distress_ms >= cfg->guest_distress_ms ||
        out->reason == POLICY_UNRESPONSIVE || out->reason == POLICY_STALE ||
        out->reason == POLICY_GUEST_PRESSURE) {
        return;
    }
    ceiling = vm_ceiling(v->cfg, v->max_mib, out->current_mib);
    step = policy_step(cfg, out->current_mib);
    out->reason = POLICY_GUEST_PRESSURE;
    out->target_mib = grow_target(out->current_mib, step, ceiling);
}

void policy_plan(const PolicyConfig *cfg, const PolicyDomain *doms,
                 unsigned n_doms, const PolicyVm *vms, unsigned n_vms,
                 const HostMemory *host, int64_t now_ms,
                 PolicyDecision *out)
{
    g_autofree uint64_t *cap = g_new0(uint64_t, n_vms);
    g_autofree uint64_t *tier = g_new0(uint64_t, n_vms);
    g_autofree uint64_t *give = g_new0(uint64_t, n_vms);
    DomainPlan dp[POLICY_MAX_DOMAINS] = { 0 };
    unsigned i, j;

    n_doms = MIN(n_doms, POLICY_MAX_DOMAINS);
    for (j = 0; j < n_vms; j++) {
        policy_decide(cfg, vms[j].cfg, vms[j].s, host, vms[j].rank,
                      vms[j].n_ranked, vms[j].max_mib, now_ms, &out[j]);
        hold_distressed(cfg, &vms[j], now_ms, &out[j]);
        cap[j] = give_capacity(cfg, &vms[j], &out[j], &tier[j]);
    }
    plan_domains(cfg, doms, n_doms, vms, n_vms, out, now_ms, dp);
    for (i = 0; i < n_doms; i++) {
        if (dp[i].need > 0) {
            /* urgent: the headroom below half the reserve */
            split_need(cfg, i, dp[i].need,
                       dp[i].headroom < dp[i].reserve / 2, vms, n_vms, out,
                       cap, tier, give);
        }
    }
    for (j = 0; j < n_vms; j++) {
        uint64_t going = going_to_mib(&vms[j], out[j].current_mib);

        if (give[j]) {
            out[j].reason = POLICY_DOMAIN_SHORT;
            out[j].target_mib = target_giving(&vms[j], out[j].current_mib,
                                              going, give[j]);
        } else if (out[j].target_mib > out[j].current_mib) {
            plan_grow(cfg, &vms[j], n_doms, dp, &out[j]);
        }
    }
}
