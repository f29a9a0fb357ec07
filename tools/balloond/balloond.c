/*
 * qemu-oc-balloond: event-driven, pressure-aware ballooning of many VMs
 *
 * The VMs' workers (tools/lib) keep each VM's statistics fresh with
 * query-balloon {refresh: async} and BALLOON_STATS.  Each publication
 * with new data (a new guest report, a change of responsiveness) asks
 * for a plan, made soon after in the main loop, once for every report
 * that arrived meanwhile: the policy (policy.c) with every VM's latest
 * data; unless --dry-run, a VM's worker then sets its balloon (on fresh
 * statistics only: see apply()).  A change of host pressure
 * (host-pressure.c) asks every VM for fresh statistics at once, and each
 * is decided as its answer arrives.  Every decision that changes
 * something or flags a VM is logged on one line (and as a JSON line
 * with --log-json); --metrics serves Prometheus text; --serve makes the
 * daemon the host's collector (collector.c).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>
#include "balloond-options.h"
#include "daemon.h"
#include "protect.h"
#include "brake.h"
#include "coalesce.h"
#include "collector.h"
#include "fleet.h"
#include "vm-snapshot-wire.h"
#include "domains.h"
#include "host-pressure.h"
#include "metrics.h"
#include "policy.h"
#include "log-writer.h"
#include "vm-memory.h"
#include "fd-limit.h"

/*
 * Plans are at least this far apart, and at least PLAN_COST_FACTOR times
 * the last plan's duration: many reports at once make one plan, and
 * planning takes at most 1/PLAN_COST_FACTOR of a core.  Where memory is
 * short (host pressure, a tight domain) a decision's delay matters more
 * than the daemon's CPU: plans may take 1/PLAN_COST_FACTOR_SHORT (at
 * 1,000 VMs a plan takes 2 to 5 ms here, and every report waits for the
 * next plan: 20 times that is up to 100 ms)
 */
#define PLAN_MIN_GAP_US (10 * 1000)
#define PLAN_COST_FACTOR 20
#define PLAN_COST_FACTOR_SHORT 4

Daemon bd;

static void plan_now(void);

/* Plans: many reports make one (coalesce.c); a worker never waits */
static Coalesce planner = {
    .work = plan_now,
    .min_gap_us = PLAN_MIN_GAP_US,
    .cost_factor = PLAN_COST_FACTOR,
};

static void plan_soon(void)
{
    coalesce_request(&planner);
}

/* A new report: remember its used memory (its demand) */
static void note_demand(BdVm *v, const VmSnapshot *s)
{
    if (!(s->stats_mask & (1u << STAT_TOTAL)) ||
        !(s->stats_mask & (1u << STAT_AVAILABLE)) ||
        s->stats[STAT_AVAILABLE] > s->stats[STAT_TOTAL]) {
        return;
    }
    trend_add(&v->demand, s->stats_update_ms,
              (s->stats[STAT_TOTAL] - s->stats[STAT_AVAILABLE]) >> 20,
              POLICY_DEMAND_MS);
}

/* A VM's QEMU process is new: find the memory domains it is in */
static void find_domains(const VmSnapshot *s)
{
    g_autoptr(GError) err = NULL;
    uint64_t set = 0;
    BdVm *v;

    if (s->pid) {
        set = domains_of_pid(bd.domains, s->pid, &err);
        if (err) {
            g_message("%s: QEMU process %d: no memory domain (%s): only "
                      "the host's memory counts for it", s->name, s->pid,
                      err->message);
        } else {
            g_message("%s: QEMU process %d is in %d memory domain(s)",
                      s->name, s->pid, __builtin_popcountll(set));
        }
    }
    g_mutex_lock(&bd.lock);
    v = daemon_vm(s->name);
    v->domains = set;
    g_mutex_unlock(&bd.lock);
}

/* A worker published: is the data new? (on the worker's loop thread) */
static void on_publish(void *opaque G_GNUC_UNUSED, VmWorker *w)
{
    VmSnapshot *s = vm_worker_snapshot(w);
    bool news, moved;
    BdVm *v;

    g_mutex_lock(&bd.lock);
    v = daemon_vm(s->name);
    news = s->stats_update_ms != v->seen_update_ms ||
           s->responsive != v->seen_responsive;
    moved = s->pid != v->pid;
    if (s->has_stats && s->stats_update_ms != v->seen_update_ms) {
        double r;

        v->report_us = g_get_monotonic_time();
        note_demand(v, s);
        if ((vm_snapshot_stat_rate(s, STAT_OOM_KILLS, &r) && r > 0) ||
            (vm_snapshot_stat_rate(s, STAT_ALLOC_STALLS, &r) && r > 0)) {
            v->distress_ms = s->stats_update_ms;
        }
    }
    v->seen_update_ms = s->stats_update_ms;
    v->seen_responsive = s->responsive;
    v->pid = s->pid;
    if (moved) {
        vm_memory_new_process(v);
    }
    g_mutex_unlock(&bd.lock);
    if (moved) {
        find_domains(s);
    }
    vm_memory_refresh(s);
    if (s->responsive) {
        brakes_seen(bd.brakes, s->name);
    }
    if (news || moved) {
        plan_soon();
    }
    vm_snapshot_unref(s);
}

/* The host's pressure changed: every VM's fresh statistics, now */
static void on_host(void *opaque G_GNUC_UNUSED, const HostMemory *now)
{
    HostMemory judged = *now, *host = &judged;
    bool changed;

    policy_host_pressure(&bd.policy, host);
    g_mutex_lock(&bd.lock);
    changed = host->pressure != bd.host_pressure;
    bd.host_pressure = host->pressure;
    g_mutex_unlock(&bd.lock);
    if (changed) {
        g_message("host memory pressure %s (MemAvailable %" G_GUINT64_FORMAT
                  " of %" G_GUINT64_FORMAT " MiB, PSI some avg10 %.2f)",
                  host->pressure ? "starts" : "ends",
                  host->available_kib >> 10, host->total_kib >> 10,
                  host->psi_some_avg10);
    }
    if (changed && g_atomic_int_get(&bd.ready)) {
        /*
         * fresh statistics from every VM: each decided as it answers
         * (before the fleet exists, each VM is decided as it connects)
         */
        fleet_kick_all(bd.fleet);
    }
}

/* A JSON log line (on the log writer's thread) */
static void write_json(gpointer o, gpointer log)
{
    log_writer_json(log, json_object_to_json_string_ext(
                        o, JSON_C_TO_STRING_PLAIN));
}

static void put_json(gpointer o)
{
    json_object_put(o);
}

static void balloon_done(void *opaque, VmWorker *w, uint64_t bytes,
                         const GError *err)
{
    int64_t update_ms = GPOINTER_TO_SIZE(opaque);
    int64_t now_ms = g_get_real_time() / 1000;

    if (err) {
        g_message("%s: balloon %" G_GUINT64_FORMAT " MiB failed: %s",
                  vm_worker_name(w), bytes >> 20, err->message);
    }
    if (bd.log_json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "time-ms", json_object_new_int64(now_ms));
        json_object_object_add(o, "vm",
                               json_object_new_string(vm_worker_name(w)));
        json_object_object_add(o, "sent-mib",
                               json_object_new_int64(bytes >> 20));
        json_object_object_add(o, "ok", json_object_new_boolean(!err));
        /* from the guest's report to the command made */
        json_object_object_add(o, "latency-ms",
                               json_object_new_int64(now_ms - update_ms));
        log_writer_call(bd.log, write_json, o, put_json);
    }
}

/* An input of the log line: "-" when unknown (negative) */
static char *figure_or_dash(double v, const char *fmt)
{
    return v < 0 ? g_strdup("-") : g_strdup_printf(fmt, v);
}

/* A decision to log, as the plan made it */
typedef struct Logged {
    VmSnapshot *s;
    PolicyDecision d;
    HostMemory host;
    const char *action;
    int64_t now_ms;
} Logged;

static void logged_free(gpointer p)
{
    Logged *l = p;

    vm_snapshot_unref(l->s);
    g_free(l);
}

/* A decision's log lines (on the log writer's thread) */
static void log_decision(gpointer opaque, gpointer log)
{
    const Logged *l = opaque;
    const VmSnapshot *s = l->s;
    const PolicyDecision *d = &l->d;
    const HostMemory *host = &l->host;
    const char *action = l->action;
    int64_t now_ms = l->now_ms;
    g_autofree char *avail = figure_or_dash(d->guest_avail_pct, "%.0f%%");
    g_autofree char *majflt = figure_or_dash(d->majflt_per_s, "%.1f/s");
    g_autofree char *swapin = figure_or_dash(d->swapin_per_s, "%.0f B/s");

    g_message("%s: %s %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
              " MiB (%s; guest available %s, major faults %s, swap-in %s, "
              "stats age %" G_GINT64_FORMAT " ms; host available %"
              G_GUINT64_FORMAT " MiB, PSI %.2f%s)",
              s->name, policy_reason_names[d->reason], d->current_mib,
              d->target_mib, action, avail, majflt, swapin,
              vm_snapshot_stats_age_ms(s, now_ms),
              host->available_kib >> 10, host->psi_some_avg10,
              host->pressure ? ", pressure" : "");
    if (bd.log_json) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "time-ms", json_object_new_int64(now_ms));
        json_object_object_add(o, "vm", json_object_new_string(s->name));
        json_object_object_add(o, "reason", json_object_new_string(
                                   policy_reason_names[d->reason]));
        json_object_object_add(o, "current-mib",
                               json_object_new_int64(d->current_mib));
        json_object_object_add(o, "target-mib",
                               json_object_new_int64(d->target_mib));
        json_object_object_add(o, "action", json_object_new_string(action));
        json_object_object_add(o, "guest-available-pct",
                               json_object_new_double(d->guest_avail_pct));
        json_object_object_add(o, "guest-major-faults-per-s",
                               json_object_new_double(d->majflt_per_s));
        json_object_object_add(o, "guest-swap-in-per-s",
                               json_object_new_double(d->swapin_per_s));
        json_object_object_add(o, "stats-age-ms", json_object_new_int64(
                                   vm_snapshot_stats_age_ms(s, now_ms)));
        json_object_object_add(o, "host-psi-some-avg10",
                               json_object_new_double(host->psi_some_avg10));
        json_object_object_add(o, "host-available-mib", json_object_new_int64(
                                   host->available_kib >> 10));
        json_object_object_add(o, "host-pressure",
                               json_object_new_boolean(host->pressure));
        write_json(o, log);
        json_object_put(o);
    }
}

/* A plan's decisions to log (on the log writer's thread) */
static void log_decisions(gpointer array, gpointer log)
{
    GPtrArray *a = array;
    unsigned i;

    for (i = 0; i < a->len; i++) {
        log_decision(g_ptr_array_index(a, i), log);
    }
}

static void unref_array(gpointer array)
{
    g_ptr_array_unref(array);
}

/*
 * A command is decided on a guest report that arrived at most FRESH_MS
 * ago, or on the latest after LATE_ANSWERS asks answered too late
 */
#define FRESH_MS 40
#define LATE_ANSWERS 3

/* A target set this recently and not reached is still on its way */
#define PENDING_MS 3000

/* The plan's view of one VM (under bd.lock) */
static void plan_input(const VmSnapshot *s, BdVm *v, int64_t now_ms,
                       PolicyVm *in)
{
    const PolicyVmConfig *vmc = g_hash_table_lookup(bd.per_vm, s->name);
    uint64_t actual = s->has_balloon && s->actual > 0 ? s->actual >> 20 : 0;

    in->s = s;
    in->cfg = vmc ? vmc : &bd.policy.defaults;
    in->max_mib = s->max_memory >> 20;
    in->domains = v->domains;
    in->used_rise_mib = trend_rise(&v->demand);
    in->demand_known = v->demand.n >= 2;
    in->qemu_rss_mib_s = vm_memory_growth(v);
    in->held_mib = vm_memory_guest_held_mib(v);
    in->settling = g_get_monotonic_time() < bd.settled_us;
    in->distress_ms = v->distress_ms;
    in->target_mib = v->target_mib && now_ms - v->target_ms < PENDING_MS &&
                     (actual > v->target_mib + 2 ||
                      actual + 2 < v->target_mib) ? v->target_mib : 0;
}

/* What a plan does for one VM */
typedef enum Act {
    ACT_NOTHING,
    ACT_SEND,           /* set its balloon */
    ACT_ASK,            /* ask it for fresh statistics */
} Act;

/*
 * Book one decision: what to do, and whether to log it (under bd.lock,
 * in the deciding thread).  A command is decided on fresh statistics: a
 * guest report made after the VM's previous command (a plan made for
 * another VM's report does not step this one again on statistics that
 * do not show its last step), that arrived at most FRESH_MS ago;
 * otherwise the VM is asked for a fresh report at once, and decided
 * again when it comes
 */
static Act book(const VmSnapshot *s, const PolicyVm *in,
                const PolicyDecision *d, int64_t now_ms, int64_t now_us,
                bool *log)
{
    bool change = d->target_mib != d->current_mib;
    bool sent, stale;
    BdVm *v = daemon_vm(s->name);

    /*
     * not again what is on its way, nor what was just set (a balloon
     * may stop a page or two short of its target: not a reason to ask
     * for it at every decision)
     */
    sent = change && d->target_mib != in->target_mib &&
           !(d->target_mib == v->target_mib &&
             now_ms - v->target_ms < PENDING_MS) &&
           !(s->has_stats && s->stats_update_ms <= v->target_ms);
    /*
     * a change on statistics not fresh (by the report's time): ask for
     * fresh ones first; after LATE_ANSWERS answers that still came too
     * late, the latest will do (a slow VM, a busy host or the clock of
     * another host must not starve a VM of its commands)
     */
    stale = sent && s->has_stats && now_ms - s->stats_update_ms > FRESH_MS;
    if (stale && v->asked_us && v->report_us >= v->asked_us) {
        v->late_answers++;
    }
    stale &= v->late_answers < LATE_ANSWERS;
    if (stale) {
        v->asked_us = now_us;
    }
    sent &= !stale;
    v->decisions[d->reason]++;
    *log = sent || d->reason != v->last_reason;
    v->last_reason = d->reason;
    if (sent) {
        v->target_mib = d->target_mib;
        v->target_ms = now_ms;
        v->asked_us = 0;
        v->late_answers = 0;
    }
    return stale ? ACT_ASK : sent ? ACT_SEND : ACT_NOTHING;
}

/* Do what book() said (under no lock); what was done, for the log */
static const char *act(const VmSnapshot *s, const PolicyDecision *d, Act a)
{
    switch (a) {
    case ACT_ASK:
        fleet_kick(bd.fleet, s->name);
        return "asked for fresh statistics";
    case ACT_SEND:
        if (bd.dry_run) {
            return "dry run";
        }
        return fleet_set_balloon(bd.fleet, s->name, d->target_mib << 20,
                                 balloon_done,
                                 GSIZE_TO_POINTER(s->stats_update_ms))
               ? "set" : "gone";
    default:
        return d->target_mib != d->current_mib ? "on its way" : "no change";
    }
}

/* A memory domain to watch closely: short of twice its reserve, or falling */
static bool domain_tight(const PolicyDomain *d)
{
    return d->falling_mib_s > 0 ||
           d->headroom_mib < 2 * (int64_t)policy_domain_reserve_mib(
               &bd.policy, d);
}

/*
 * Which VMs' QEMU resident memory a plan reads afresh (@want[i]; the
 * others' last reading, at a publication, serves): those in a tight
 * memory domain, or under host pressure (vm_memory_read() says how
 * many).  When memory is plentiful a plan reads no file.
 */
static void rss_wanted(GPtrArray *snaps, const PolicyDomain *doms,
                       unsigned n_doms, bool host_pressure, VmRssWant *want)
{
    uint64_t tight = 0;
    unsigned i;

    for (i = 0; i < n_doms; i++) {
        if (domain_tight(&doms[i])) {
            tight |= 1ull << i;
        }
    }
    g_mutex_lock(&bd.lock);
    bd.tight = tight;
    for (i = 0; i < snaps->len; i++) {
        VmSnapshot *s = g_ptr_array_index(snaps, i);
        BdVm *v = daemon_vm(s->name);

        want[i] = v->domains & tight ? VM_RSS_TIGHT :
                  host_pressure ? VM_RSS_PRESSURE : VM_RSS_NO;
    }
    g_mutex_unlock(&bd.lock);
}

/*
 * Decide for every VM at once, with every VM's latest data, the host and
 * the memory domains (the main loop's thread, through plan_soon(); one
 * plan at a time)
 */
static void plan_now(void)
{
    static GMutex plan_lock;
    g_autoptr(GPtrArray) snaps = fleet_snapshots(bd.fleet);
    int64_t now_ms = g_get_real_time() / 1000;
    g_autofree PolicyVm *in = g_new0(PolicyVm, snaps->len);
    g_autofree PolicyDecision *d = g_new0(PolicyDecision, snaps->len);
    g_autofree const char **action = g_new0(const char *, snaps->len);
    g_autofree bool *log = g_new0(bool, snaps->len);
    g_autofree Act *acts = g_new0(Act, snaps->len);
    g_autofree VmRssWant *want = g_new0(VmRssWant, snaps->len);
    g_autofree PolicyBrakeDecision *brake =
        g_new0(PolicyBrakeDecision, snaps->len);
    g_autofree const char **names = g_new0(const char *, snaps->len);
    g_autoptr(GPtrArray) logged = NULL;
    PolicyDomain doms[POLICY_MAX_DOMAINS];
    unsigned i, n_doms;
    HostMemory host;

    vm_memory_prune(snaps);
    if (bd.policy_off) {
        return;
    }
    g_mutex_lock(&plan_lock);
    host_pressure_get(bd.host, &host);
    policy_host_pressure(&bd.policy, &host);
    n_doms = domains_get(bd.domains, doms, NULL);
    rss_wanted(snaps, doms, n_doms, host.pressure, want);
    vm_memory_read(snaps, want, now_ms);
    planner.cost_factor = host.pressure || bd.tight ? PLAN_COST_FACTOR_SHORT
                                                    : PLAN_COST_FACTOR;
    g_mutex_lock(&bd.lock);
    for (i = 0; i < snaps->len; i++) {
        VmSnapshot *s = g_ptr_array_index(snaps, i);
        BdVm *v = daemon_vm(s->name);

        plan_input(s, v, now_ms, &in[i]);
        brakes_input(bd.brakes, s->name, &in[i]);
        names[i] = s->name;
    }
    g_mutex_unlock(&bd.lock);
    policy_rank(&bd.policy, in, snaps->len, now_ms);
    policy_plan(&bd.policy, doms, n_doms, in, snaps->len, &host, now_ms, d);
    policy_brake(&bd.policy, doms, n_doms, in, snaps->len, d, now_ms, brake);
    /* the brake first: a pause stops the growth the balloons race */
    brakes_apply(bd.brakes, names, in, brake, snaps->len, now_ms);
    for (i = 0; i < snaps->len; i++) {
        /* (locked a VM at a time: the workers publish meanwhile) */
        g_mutex_lock(&bd.lock);
        acts[i] = book(g_ptr_array_index(snaps, i), &in[i], &d[i],
                       g_get_real_time() / 1000, g_get_monotonic_time(),
                       &log[i]);
        g_mutex_unlock(&bd.lock);
    }
    for (i = 0; i < snaps->len; i++) {
        action[i] = act(g_ptr_array_index(snaps, i), &d[i], acts[i]);
    }
    g_mutex_unlock(&plan_lock);
    /* the log's formatting and I/O on its own thread, one call a plan */
    logged = g_ptr_array_new_with_free_func(logged_free);
    for (i = 0; i < snaps->len; i++) {
        if (log[i]) {
            Logged *l = g_new(Logged, 1);

            l->s = vm_snapshot_ref(g_ptr_array_index(snaps, i));
            l->d = d[i];
            l->host = host;
            l->action = action[i];
            l->now_ms = now_ms;
            g_ptr_array_add(logged, l);
        }
    }
    if (logged->len) {
        log_writer_call(bd.log, log_decisions, g_steal_pointer(&logged),
                        unref_array);
    }
}

/* A domain changed: decide at once, and ask for fresh statistics */
static void on_domains(void *opaque G_GNUC_UNUSED)
{
    static int64_t kicked_us;
    int64_t now_us = g_get_monotonic_time();

    if (!g_atomic_int_get(&bd.ready)) {
        return;         /* (the VMs come next: each is decided then) */
    }
    plan_soon();
    if (now_us - kicked_us >= 200 * 1000) {
        kicked_us = now_us;
        fleet_kick_all(bd.fleet);
    }
}

/* For a scrape (in the HTTP thread) */

/* The VMs of a frame for the collector's readers (main thread) */


/* While a VM is braked, the plan is made this often */
#define BRAKE_TICK_MS 100

/*
 * A braked VM's domain may recover without a change the watcher reports,
 * and the brake has a time limit: look again, often, while one holds
 */
static gboolean on_brake_tick(gpointer opaque G_GNUC_UNUSED)
{
    if (brakes_any(bd.brakes)) {
        plan_soon();
    }
    return G_SOURCE_CONTINUE;
}

/* A marker for operators and tests: full steps from now on */
static gboolean on_settled(gpointer opaque G_GNUC_UNUSED)
{
    g_message("settled: every VM has had its time to report; "
              "decisions in full from now on");
    return G_SOURCE_REMOVE;
}

static gboolean on_stop_signal(gpointer opaque)
{
    g_message("stopping (signal)");
    g_main_loop_quit(opaque);
    return G_SOURCE_REMOVE;
}

/*
 * Everything down, in the order that lets nothing call into what is
 * gone: readers and scrapes first, then the brakes' resumes (a braked VM
 * must not stay paused because the daemon stopped), the watchers, the
 * VMs' workers (waited for, at most a request's deadline), the state
 */
static void daemon_stop(int timeout_ms)
{
    metrics_stop(bd.metrics);
    collector_stop(bd.collector);
    brakes_release_all(bd.brakes, timeout_ms + 1000);
    domains_stop(bd.domains);
    host_pressure_stop(bd.host);
    fleet_free(bd.fleet);
    vm_worker_wait_all(timeout_ms);
    brakes_free(bd.brakes);
    g_hash_table_destroy(bd.vms);
    g_hash_table_destroy(bd.per_vm);
    log_writer_stop(bd.log);
    if (bd.log_json) {
        fclose(bd.log_json);
    }
    g_mutex_clear(&bd.lock);
    g_mutex_clear(&bd.log_lock);
    memset(&bd, 0, sizeof(bd));
}

/* The daemon, once its options are parsed; its exit status */
static int run(BalloondOptions *o)
{
    g_autoptr(GMainLoop) loop = NULL;
    DomainsConfig dc = { 0 };
    VmWorkerConfig wc = vm_worker_default_config;
    HostPressureConfig hc = { 0 };
    g_autoptr(GError) err = NULL;
    unsigned i;

    bd.policy = policy_default_config;
    bd.per_vm = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      g_free);
    if (o->config &&
        !policy_config_load(o->config, &bd.policy, &bd.per_vm, &err)) {
        g_printerr("qemu-oc-balloond: %s\n", err->message);
        return 2;
    }
    bd.log_json = o->log_json ? fopen(o->log_json, "a") : NULL;
    if (o->log_json && !bd.log_json) {
        g_printerr("qemu-oc-balloond: %s: %s\n", o->log_json,
                   g_strerror(errno));
        return 1;
    }
    bd.dry_run = o->dry_run;
    bd.policy_off = o->policy && !strcmp(o->policy, "off");
    bd.vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                   daemon_vm_free);
    g_mutex_init(&bd.lock);
    g_mutex_init(&bd.log_lock);
    bd.log = log_writer_start(bd.log_json, &bd.log_lock);

    hc.meminfo_path = o->meminfo;
    hc.psi_path = o->psi;
    bd.host = host_pressure_start(&hc, on_host, NULL, &err);
    if (!bd.host) {
        g_printerr("qemu-oc-balloond: host memory: %s\n", err->message);
        return 1;
    }
    if (!o->no_protect) {
        balloond_protect_self();
    }
    dc.policy = &bd.policy;
    dc.poll_ms = o->domain_poll_ms;
    bd.domains = domains_start(&dc, on_domains, NULL);
    for (i = 0; o->cgroups && o->cgroups[i]; i++) {
        if (domains_add(bd.domains, o->cgroups[i], &err) < 0) {
            g_printerr("qemu-oc-balloond: --cgroup %s: %s\n", o->cgroups[i],
                       err->message);
            return 1;
        }
    }
    wc.interval_ms = o->interval * 1000;
    /* two rounds of every VM, and at least two seconds */
    bd.settled_us = g_get_monotonic_time() +
                    MAX(2 * wc.interval_ms, 2000) * (int64_t)1000;
    wc.timeout_ms = o->timeout_ms;
    bd.fleet = fleet_new(&wc, &qmp_default_limits, on_publish, NULL);
    bd.brakes = brakes_new(bd.fleet, o->state_file, bd.dry_run, bd.log_json,
                           &bd.log_lock, &err);
    if (!bd.brakes) {
        g_printerr("qemu-oc-balloond: %s\n", err->message);
        return 1;
    }
    /* the host and domain watchers run already: from now on they act */
    g_atomic_int_set(&bd.ready, 1);
    if (!discovery_add_sources(fleet_discovery(bd.fleet), o->qmp_dirs, o->uris,
                               "qemu-oc-balloond")) {
        return 1;
    }
    if (o->metrics) {
        bd.metrics = metrics_start(o->metrics, daemon_collect, NULL, &err);
        if (!bd.metrics) {
            g_printerr("qemu-oc-balloond: --metrics %s: %s\n", o->metrics,
                       err->message);
            return 1;
        }
    }
    if (o->serve) {
        CollectorConfig cc = {
            .path = o->serve,
            .group = o->serve_group,
            .interval_ms = wc.interval_ms,
            .policy = bd.policy_off ? "off" : "on",
        };

        bd.collector = collector_start(&cc, daemon_frame_vms, NULL, &err);
        if (!bd.collector) {
            g_printerr("qemu-oc-balloond: --serve %s\n", err->message);
            return 1;
        }
        g_message("serving readers on %s", o->serve);
    }
    if (bd.policy_off) {
        g_message("started (policy off: collecting only, no VM is "
                  "changed)");
    } else {
        g_message("started%s: deciding as fresh statistics arrive",
                  bd.dry_run ? " (dry run: nothing is changed)" : "");
    }
    /* (the signals are ours before any VM can be braked) */
    loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, on_stop_signal, loop);
    g_unix_signal_add(SIGINT, on_stop_signal, loop);
    g_timeout_add(BRAKE_TICK_MS, on_brake_tick, NULL);
    g_timeout_add(MAX(bd.settled_us - g_get_monotonic_time(), 0) / 1000,
                  on_settled, NULL);
    fleet_start(bd.fleet);
    g_main_loop_run(loop);
    daemon_stop(o->timeout_ms);
    g_message("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    BalloondOptions o = { 0 };
    int ret;

    /*
     * A loop thread per 64 VMs, a thread per libvirt call running: glibc
     * would give each its own malloc arena, up to 8 per core, and keep
     * them once grown (the soak, bench/soak.py)
     */
    mallopt(M_ARENA_MAX, 2);
    fd_limit_raise();       /* a socket per VM */
    if (!balloond_parse_options(argc, argv, &o)) {
        balloond_options_clear(&o);
        return 2;
    }
    ret = run(&o);
    balloond_options_clear(&o);
    return ret;
}
