/*
 * qemu-oc host tools: what a worker knows of its VM, at one moment
 *
 * See vm-snapshot.h.  The QMP answers are checked member by member:
 * anything of the wrong type is left out (and the function says so),
 * never trusted.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include "vm-snapshot.h"

const VmStatInfo vm_stats[VM_STATS_NR] = {
    [STAT_SWAP_IN] = { "swap-in", "swap_in", false, true },
    [STAT_SWAP_OUT] = { "swap-out", "swap_out", false, true },
    [STAT_MAJOR_FAULTS] = { "major-faults", "major_faults", false, false },
    [STAT_MINOR_FAULTS] = { "minor-faults", "minor_faults", false, false },
    [STAT_FREE] = { "free-memory", "free", true, true },
    [STAT_TOTAL] = { "total-memory", "total", true, true },
    [STAT_AVAILABLE] = { "available-memory", "available", true, true },
    [STAT_DISK_CACHES] = { "disk-caches", "disk_caches", true, true },
    [STAT_HUGETLB_ALLOCATIONS] = { "hugetlb-allocations", NULL, false, false },
    [STAT_HUGETLB_FAILURES] = { "hugetlb-failures", NULL, false, false },
    [STAT_OOM_KILLS] = { "oom-kills", "oom_kills", false, false },
    [STAT_ALLOC_STALLS] = { "alloc-stalls", "alloc_stalls", false, false },
    [STAT_ASYNC_SCANS] = { "async-scans", NULL, false, false },
    [STAT_DIRECT_SCANS] = { "direct-scans", NULL, false, false },
    [STAT_ASYNC_RECLAIMS] = { "async-reclaims", NULL, false, false },
    [STAT_DIRECT_RECLAIMS] = { "direct-reclaims", NULL, false, false },
};
G_STATIC_ASSERT(STAT_DIRECT_RECLAIMS + 1 == VM_STATS_NR);

bool vm_snapshot_stat(const VmSnapshot *s, VmStat stat, uint64_t *val)
{
    if (!s->has_stats || stat >= VM_STATS_NR ||
        !(s->stats_mask & (1u << stat))) {
        return false;
    }
    *val = s->stats[stat];
    return true;
}

const char *const vm_state_names[VM_STATES_NR] = {
    "full-run", "full-contention", "concurrency-hazard", "blocked",
    "partial-run", "partial-contention",
};

const char *const vcpu_state_names[VCPU_STATES_NR] = {
    "running", "runnable", "blocked", "offline",
};

/* The largest vCPU count we accept from a peer */
#define VM_SNAPSHOT_MAX_VCPUS 4096

VmSnapshot *vm_snapshot_new(const char *name, const char *where)
{
    VmSnapshot *s = g_new0(VmSnapshot, 1);

    s->ref = 1;
    s->name = g_strdup(name);
    s->where = g_strdup(where);
    s->cur.vm_state = s->prev.vm_state = -1;
    s->balloon_fpr = s->balloon_deflate = -1;
    return s;
}

VmSnapshot *vm_snapshot_ref(VmSnapshot *s)
{
    g_atomic_int_inc(&s->ref);
    return s;
}

static void sample_clear(VmRunstatesSample *r)
{
    g_free(r->vcpu);
    g_free(r->method);
    g_free(r->source);
    g_free(r->source_reason);
    memset(r, 0, sizeof(*r));
    r->vm_state = -1;
}

static void sample_copy(VmRunstatesSample *dst, const VmRunstatesSample *src)
{
    *dst = *src;
    dst->vcpu = g_memdup2(src->vcpu, sizeof(*src->vcpu) * src->n_vcpus);
    dst->method = g_strdup(src->method);
    dst->source = g_strdup(src->source);
    dst->source_reason = g_strdup(src->source_reason);
}

void vm_snapshot_unref(VmSnapshot *s)
{
    if (!s || !g_atomic_int_dec_and_test(&s->ref)) {
        return;
    }
    g_free(s->name);
    g_free(s->where);
    g_free(s->error);
    sample_clear(&s->cur);
    sample_clear(&s->prev);
    g_free(s);
}

VmSnapshot *vm_snapshot_copy(const VmSnapshot *s)
{
    VmSnapshot *c = g_new(VmSnapshot, 1);

    *c = *s;
    c->ref = 1;
    c->name = g_strdup(s->name);
    c->where = g_strdup(s->where);
    c->error = g_strdup(s->error);
    sample_copy(&c->cur, &s->cur);
    sample_copy(&c->prev, &s->prev);
    return c;
}

/* Member @key of @o if it has type @type, else NULL */
static json_object *member(json_object *o, const char *key, json_type type)
{
    json_object *v;

    if (!o || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, type)) {
        return NULL;
    }
    return v;
}

static bool get_int(json_object *o, const char *key, int64_t *out)
{
    json_object *v = member(o, key, json_type_int);

    if (v) {
        *out = json_object_get_int64(v);
    }
    return v != NULL;
}

static bool get_uint(json_object *o, const char *key, uint64_t *out)
{
    json_object *v = member(o, key, json_type_int);

    if (v) {
        *out = json_object_get_uint64(v);
    }
    return v != NULL;
}

static int name_index(const char *const *names, unsigned n, const char *s)
{
    unsigned i;

    for (i = 0; s && i < n; i++) {
        if (!strcmp(names[i], s)) {
            return i;
        }
    }
    return -1;
}

bool vm_snapshot_set_balloon(VmSnapshot *s, json_object *info)
{
    json_object *stats = member(info, "stats", json_type_object);
    int64_t actual, update = 0;
    uint64_t val[VM_STATS_NR];
    uint32_t mask = 0;
    unsigned i;

    if (!get_int(info, "actual", &actual) || actual < 0) {
        return false;
    }
    s->has_balloon = true;
    s->actual = actual;
    if (!stats || !get_int(info, "last-update", &update) || update <= 0) {
        return stats == NULL;   /* no statistics yet is not an error */
    }
    for (i = 0; i < VM_STATS_NR; i++) {
        if (get_uint(stats, vm_stats[i].name, &val[i])) {
            mask |= 1u << i;
        }
    }
    if (update != s->stats_update_ms) {
        if (s->has_stats) {
            memcpy(s->prev_stats, s->stats, sizeof(s->stats));
            s->prev_update_ms = s->stats_update_ms;
        }
        memcpy(s->stats, val, sizeof(val));
        s->stats_mask = mask;
        s->stats_update_ms = update;
        s->has_stats = true;
    }
    return true;
}

const char *const vm_kvm_pv_names[VM_KVM_PV_NR] = {
    [VM_KVM_PV_UNHALT] = "pv-unhalt",
    [VM_KVM_PV_SCHED_YIELD] = "pv-sched-yield",
    [VM_KVM_PV_STEAL_TIME] = "steal-time",
    [VM_KVM_PV_DEDICATED_HINT] = "dedicated-hint",
};
const char vm_kvm_pv_letters[VM_KVM_PV_NR + 1] = "UYSD";

char *vm_kvm_pv_string(uint32_t mask)
{
    GString *str = g_string_new(NULL);
    unsigned i;

    for (i = 0; i < VM_KVM_PV_NR; i++) {
        if (mask & (1u << i)) {
            g_string_append_printf(str, "%s%s", str->len ? " " : "",
                                   vm_kvm_pv_names[i]);
        }
    }
    return g_string_free(str, false);
}

bool vm_kvm_pv_parse(const char *words, uint32_t *mask)
{
    g_auto(GStrv) w = g_strsplit(words, " ", -1);
    int i, j;

    *mask = 0;
    for (i = 0; w[i]; i++) {
        j = *w[i] ? name_index(vm_kvm_pv_names, VM_KVM_PV_NR, w[i]) : -2;
        if (j == -1) {
            return false;
        }
        if (j >= 0) {
            *mask |= 1u << j;
        }
    }
    return true;
}

/* QMP's KvmPvFeatures object as a mask of the features set */
static uint32_t pv_mask(json_object *pv)
{
    json_object *v;
    uint32_t mask = 0;
    unsigned i;

    for (i = 0; i < VM_KVM_PV_NR; i++) {
        v = member(pv, vm_kvm_pv_names[i], json_type_boolean);
        if (v && json_object_get_boolean(v)) {
            mask |= 1u << i;
        }
    }
    return mask;
}

/* vCPU @i's KVM counters, from QMP's VcpuKvmCounters @kvm (or none) */
static void set_kvm_counters(VmRunstatesSample *r, size_t i, json_object *kvm)
{
    VmVcpuSample *c = &r->vcpu[i];

    c->has_kvm = kvm && get_uint(kvm, "directed-yield-attempted",
                                 &c->yields) &&
                 get_uint(kvm, "directed-yield-successful", &c->yields_done);
    c->has_preemption = c->has_kvm &&
                        get_uint(kvm, "preemption-reported", &c->preempted);
    if (c->has_preemption) {
        get_uint(kvm, "preemption-other", &c->preempted_other);
    }
}

bool vm_snapshot_set_runstates(VmSnapshot *s, json_object *rs,
                               int64_t now_us)
{
    json_object *vm = member(rs, "vm", json_type_object);
    json_object *vcpus = member(rs, "vcpus", json_type_array);
    json_object *str;
    VmRunstatesSample r = { .taken_us = now_us, .vm_state = -1 };
    size_t n, i, j;
    char key[64];

    /* (no "vm": a domain of stock QEMU, from libvirt's statistics) */
    if (!vcpus || !get_uint(rs, "elapsed-ns", &r.elapsed_ns) ||
        (!vm && json_object_object_get_ex(rs, "vm", NULL))) {
        return false;
    }
    n = json_object_array_length(vcpus);
    if (n > VM_SNAPSHOT_MAX_VCPUS) {
        return false;
    }
    for (j = 0; vm && j < VM_STATES_NR; j++) {
        g_snprintf(key, sizeof(key), "%s-ns", vm_state_names[j]);
        if (!get_uint(vm, key, &r.vm_ns[j])) {
            return false;
        }
    }
    r.has_vm = vm != NULL;
    str = member(vm, "state", json_type_string);
    r.vm_state = name_index(vm_state_names, VM_STATES_NR,
                            str ? json_object_get_string(str) : NULL);
    get_uint(vm, "missed-changes", &r.missed_changes);
    r.vcpu = g_new0(typeof(*r.vcpu), n);
    for (i = 0; i < n; i++) {
        json_object *v = json_object_array_get_idx(vcpus, i);

        if (!get_int(v, "cpu-index", &r.vcpu[i].index) ||
            r.vcpu[i].index < 0) {
            g_free(r.vcpu);
            return false;
        }
        /* (a thread id is positive: anything else is unknown, 0) */
        if (get_int(v, "thread-id", &r.vcpu[i].thread_id) &&
            r.vcpu[i].thread_id < 0) {
            r.vcpu[i].thread_id = 0;
        }
        get_uint(v, "transitions", &r.vcpu[i].transitions);
        str = member(v, "state", json_type_string);
        r.vcpu[i].state = name_index(vcpu_state_names, VCPU_STATES_NR,
                                     str ? json_object_get_string(str)
                                         : NULL);
        for (j = 0; j < VCPU_STATES_NR; j++) {
            g_snprintf(key, sizeof(key), "%s-ns", vcpu_state_names[j]);
            get_uint(v, key, &r.vcpu[i].ns[j]);
        }
        set_kvm_counters(&r, i, member(v, "kvm", json_type_object));
    }
    r.n_vcpus = n;
    str = member(rs, "method", json_type_string);
    r.method = g_strdup(str ? json_object_get_string(str) : NULL);
    str = member(rs, "source", json_type_string);
    r.source = g_strdup(str ? json_object_get_string(str) : NULL);
    str = member(rs, "source-reason", json_type_string);
    r.source_reason = g_strdup(str ? json_object_get_string(str) : NULL);
    if (member(rs, "kvm-pv", json_type_object)) {
        r.has_kvm_pv = true;
        r.kvm_pv = pv_mask(member(rs, "kvm-pv", json_type_object));
    }
    sample_clear(&s->prev);
    s->prev = s->cur;
    s->has_prev = s->has_runstates;
    s->cur = r;
    s->has_runstates = true;
    return true;
}

bool vm_snapshot_vm_shares(const VmSnapshot *s, double out[VM_STATES_NR])
{
    double span, sum = 0;
    unsigned j;

    if (!s->has_prev || s->cur.elapsed_ns <= s->prev.elapsed_ns ||
        !s->cur.has_vm || !s->prev.has_vm) {
        return false;   /* none yet, QEMU restarted (a migration), libvirt */
    }
    span = s->cur.elapsed_ns - s->prev.elapsed_ns;
    /* (counters that add up to more than the time are a peer's error) */
    for (j = 0; j < VM_STATES_NR; j++) {
        uint64_t a = s->prev.vm_ns[j], b = s->cur.vm_ns[j];

        sum += b >= a ? b - a : 0;
    }
    span = MAX(span, sum);
    for (j = 0; j < VM_STATES_NR; j++) {
        uint64_t a = s->prev.vm_ns[j], b = s->cur.vm_ns[j];

        out[j] = b >= a ? (double)(b - a) / span : 0;
    }
    return true;
}

bool vm_snapshot_vcpu_shares(const VmSnapshot *s, unsigned i,
                             double out[VCPU_STATES_NR])
{
    /* (in double: a peer's huge counters must not wrap the total) */
    double d[VCPU_STATES_NR], total = 0;
    unsigned j, k;

    if (!s->has_prev || i >= s->cur.n_vcpus ||
        s->cur.elapsed_ns <= s->prev.elapsed_ns) {
        return false;
    }
    for (k = 0; k < s->prev.n_vcpus; k++) {
        if (s->prev.vcpu[k].index == s->cur.vcpu[i].index) {
            break;
        }
    }
    if (k == s->prev.n_vcpus) {
        return false;
    }
    for (j = 0; j < VCPU_STATES_NR; j++) {
        uint64_t a = s->prev.vcpu[k].ns[j], b = s->cur.vcpu[i].ns[j];

        d[j] = b >= a ? (double)(b - a) : 0;
        total += d[j];
    }
    for (j = 0; j < VCPU_STATES_NR; j++) {
        out[j] = total > 0 ? d[j] / total : 0;
    }
    return total > 0;
}

const char *const vm_ready_band_names[4] = {
    "fine", "significant", "hurting", "critical",
};

const char *const vm_ready_band_marks[4] = { "", "+", "!", "!!" };

VmReadyBand vm_ready_band(double share)
{
    return share >= 0.20 ? VM_READY_CRITICAL :
           share >= 0.10 ? VM_READY_HURTING :
           share >= 0.05 ? VM_READY_SIGNIFICANT : VM_READY_FINE;
}

bool vm_snapshot_ready(const VmSnapshot *s, double *share)
{
    double sh[VCPU_STATES_NR], sum = 0;
    unsigned i, n = 0;

    for (i = 0; s->has_runstates && i < s->cur.n_vcpus; i++) {
        if (vm_snapshot_vcpu_shares(s, i, sh)) {
            sum += sh[VCPU_STATE_RUNNABLE];
            n++;
        }
    }
    if (n) {
        *share = sum / n;
    }
    return n > 0;
}

/* vCPU @i's match in the previous sample (same index and thread), or -1 */
static int prev_vcpu(const VmSnapshot *s, unsigned i)
{
    unsigned k;

    for (k = 0; k < s->prev.n_vcpus; k++) {
        if (s->prev.vcpu[k].index == s->cur.vcpu[i].index &&
            s->prev.vcpu[k].thread_id == s->cur.vcpu[i].thread_id) {
            return k;
        }
    }
    return -1;
}

bool vm_snapshot_lhp(const VmSnapshot *s, VmLhp *out)
{
    double vm[VM_STATES_NR], span_s, yields = 0, done = 0, preempted = 0;
    bool all_preempted = true;
    unsigned i, n = 0;
    int k;

    if (!s->has_runstates || !vm_snapshot_vm_shares(s, vm)) {
        return false;
    }
    span_s = (s->cur.elapsed_ns - s->prev.elapsed_ns) / 1e9;
    for (i = 0; i < s->cur.n_vcpus; i++) {
        const VmVcpuSample *c = &s->cur.vcpu[i], *p;

        k = prev_vcpu(s, i);
        if (k < 0 || !c->has_kvm || !s->prev.vcpu[k].has_kvm) {
            continue;
        }
        p = &s->prev.vcpu[k];
        if (c->yields < p->yields || c->yields_done < p->yields_done) {
            continue;               /* (counters of another vCPU) */
        }
        yields += c->yields - p->yields;
        done += c->yields_done - p->yields_done;
        if (c->has_preemption && p->has_preemption &&
            c->preempted >= p->preempted) {
            preempted += c->preempted - p->preempted;
        } else {
            all_preempted = false;
        }
        n++;
    }
    if (!n) {
        return false;
    }
    out->costop = vm[VM_STATE_CONCURRENCY_HAZARD];
    out->yields_per_s = yields / span_s / n;
    out->yield_done = yields > 0 ? MIN(done / yields, 1.0) : -1;
    out->has_preempted = all_preempted;
    out->preempted_per_s = all_preempted ? preempted / span_s / n : 0;
    out->suspected = out->costop >= VM_LHP_COSTOP_MIN &&
                     (out->yields_per_s >= VM_LHP_YIELDS_MIN ||
                      (out->has_preempted &&
                       out->preempted_per_s >= VM_LHP_PREEMPTED_MIN));
    return true;
}

bool vm_snapshot_distress(const VmSnapshot *s, bool *distress)
{
    const uint32_t need = (1u << STAT_TOTAL) | (1u << STAT_AVAILABLE);
    double oom = 0, stalls = 0;

    if (!s->has_stats || (s->stats_mask & need) != need ||
        !s->stats[STAT_TOTAL]) {
        return false;
    }
    vm_snapshot_stat_rate(s, STAT_OOM_KILLS, &oom);
    vm_snapshot_stat_rate(s, STAT_ALLOC_STALLS, &stalls);
    *distress = oom > 0 || stalls > 0 ||
                s->stats[STAT_AVAILABLE] <
                VM_DISTRESS_AVAILABLE * s->stats[STAT_TOTAL];
    return true;
}

bool vm_snapshot_following(const VmSnapshot *s, int64_t now_ms,
                           bool *following)
{
    if (!s->has_balloon || s->balloon_target <= 0 ||
        s->balloon_target_ms <= 0) {
        return false;
    }
    *following = now_ms - s->balloon_target_ms < VM_FOLLOW_MS ||
                 ABS(s->actual - s->balloon_target) <= VM_FOLLOW_SLACK_BYTES;
    return true;
}

bool vm_snapshot_stat_rate(const VmSnapshot *s, unsigned stat, double *per_s)
{
    if (stat >= VM_STATS_NR || !s->has_stats || !s->prev_update_ms ||
        !(s->stats_mask & (1u << stat)) ||
        s->stats_update_ms <= s->prev_update_ms ||
        s->stats[stat] < s->prev_stats[stat]) {
        return false;
    }
    *per_s = (double)(s->stats[stat] - s->prev_stats[stat]) * 1000.0 /
             (s->stats_update_ms - s->prev_update_ms);
    return true;
}

int64_t vm_snapshot_stats_age_ms(const VmSnapshot *s, int64_t now_ms)
{
    return s->has_stats ? MAX(0, now_ms - s->stats_update_ms) : -1;
}

static json_object *shares_json(const double *v, const char *const *names,
                                unsigned n)
{
    json_object *o = json_object_new_object();
    unsigned i;

    for (i = 0; i < n; i++) {
        json_object_object_add(o, names[i], json_object_new_double(v[i]));
    }
    return o;
}

json_object *vm_snapshot_kvm_json(const VmRunstatesSample *r, unsigned i)
{
    json_object *k = json_object_new_object();

    json_object_object_add(k, "directed-yield-attempted",
                           json_object_new_uint64(r->vcpu[i].yields));
    json_object_object_add(k, "directed-yield-successful",
                           json_object_new_uint64(r->vcpu[i].yields_done));
    if (r->vcpu[i].has_preemption) {
        json_object_object_add(k, "preemption-reported",
                               json_object_new_uint64(r->vcpu[i].preempted));
        json_object_object_add(k, "preemption-other", json_object_new_uint64(
                                   r->vcpu[i].preempted_other));
    }
    return k;
}

static json_object *lhp_json(const VmLhp *l)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "suspected",
                           json_object_new_boolean(l->suspected));
    json_object_object_add(o, "costop", json_object_new_double(l->costop));
    json_object_object_add(o, "yields-per-s",
                           json_object_new_double(l->yields_per_s));
    if (l->yield_done >= 0) {
        json_object_object_add(o, "yield-done",
                               json_object_new_double(l->yield_done));
    }
    if (l->has_preempted) {
        json_object_object_add(o, "preempted-per-s",
                               json_object_new_double(l->preempted_per_s));
    }
    return o;
}

static json_object *runstates_json(const VmSnapshot *s)
{
    json_object *o = json_object_new_object();
    json_object *vcpus = json_object_new_array();
    double vm[VM_STATES_NR], v[VCPU_STATES_NR], ready;
    VmLhp lhp;
    unsigned i;

    if (s->cur.vm_state >= 0) {
        json_object_object_add(o, "state", json_object_new_string(
                                   vm_state_names[s->cur.vm_state]));
    }
    if (s->cur.source) {
        json_object_object_add(o, "source",
                               json_object_new_string(s->cur.source));
    }
    if (s->cur.has_kvm_pv) {
        g_autofree char *pv = vm_kvm_pv_string(s->cur.kvm_pv);

        json_object_object_add(o, "kvm-pv", json_object_new_string(pv));
    }
    if (vm_snapshot_vm_shares(s, vm)) {
        json_object_object_add(o, "shares",
                               shares_json(vm, vm_state_names, VM_STATES_NR));
    }
    if (vm_snapshot_ready(s, &ready)) {
        json_object_object_add(o, "ready", json_object_new_double(ready));
        json_object_object_add(o, "ready-band", json_object_new_string(
            vm_ready_band_names[vm_ready_band(ready)]));
    }
    if (vm_snapshot_lhp(s, &lhp)) {
        json_object_object_add(o, "lock-holder-preemption", lhp_json(&lhp));
    }
    for (i = 0; i < s->cur.n_vcpus; i++) {
        json_object *c = json_object_new_object();

        json_object_object_add(c, "cpu-index",
                               json_object_new_int64(s->cur.vcpu[i].index));
        if (s->cur.vcpu[i].state >= 0) {
            json_object_object_add(c, "state", json_object_new_string(
                vcpu_state_names[s->cur.vcpu[i].state]));
        }
        if (vm_snapshot_vcpu_shares(s, i, v)) {
            json_object_object_add(c, "shares",
                                   shares_json(v, vcpu_state_names,
                                               VCPU_STATES_NR));
            json_object_object_add(c, "ready-band", json_object_new_string(
                vm_ready_band_names[vm_ready_band(
                    v[VCPU_STATE_RUNNABLE])]));
        }
        if (s->cur.vcpu[i].has_kvm) {
            json_object_object_add(c, "kvm", vm_snapshot_kvm_json(&s->cur, i));
        }
        json_object_array_add(vcpus, c);
    }
    json_object_object_add(o, "vcpus", vcpus);
    return o;
}

void vm_snapshot_add_balloon(json_object *o, const VmSnapshot *s)
{
    if (s->has_balloon) {
        json_object_object_add(o, "balloon-actual",
                               json_object_new_int64(s->actual));
    }
    if (s->max_memory) {
        json_object_object_add(o, "max-memory",
                               json_object_new_int64(s->max_memory));
    }
    if (s->balloon_fpr >= 0) {
        json_object_object_add(o, "free-page-reporting",
                               json_object_new_boolean(s->balloon_fpr));
    }
    if (s->balloon_deflate >= 0) {
        json_object_object_add(o, "deflate-on-oom",
                               json_object_new_boolean(s->balloon_deflate));
    }
    vm_snapshot_add_target(o, s->balloon_target, s->balloon_target_ms);
}

void vm_snapshot_add_target(json_object *o, int64_t target, int64_t when_ms)
{
    if (target > 0 && when_ms > 0) {
        json_object_object_add(o, "balloon-target",
                               json_object_new_int64(target));
        json_object_object_add(o, "balloon-target-ms",
                               json_object_new_int64(when_ms));
    }
}

json_object *vm_snapshot_to_json(const VmSnapshot *s, int64_t now_ms)
{
    json_object *o = json_object_new_object();
    unsigned i;

    json_object_object_add(o, "name", json_object_new_string(s->name));
    json_object_object_add(o, "where", json_object_new_string(s->where));
    json_object_object_add(o, "responsive",
                           json_object_new_boolean(s->responsive));
    if (!s->responsive && s->unresponsive_since_us) {
        json_object_object_add(o, "unresponsive-since-ms",
            json_object_new_int64(s->unresponsive_since_us / 1000));
    }
    if (s->error) {
        json_object_object_add(o, "error", json_object_new_string(s->error));
    }
    vm_snapshot_add_balloon(o, s);
    if (s->has_stats) {
        json_object *st = json_object_new_object();

        for (i = 0; i < VM_STATS_NR; i++) {
            if (s->stats_mask & (1u << i)) {
                json_object_object_add(st, vm_stats[i].name,
                                       json_object_new_uint64(s->stats[i]));
            }
        }
        json_object_object_add(o, "stats", st);
        json_object_object_add(o, "stats-age-ms", json_object_new_int64(
                                   vm_snapshot_stats_age_ms(s, now_ms)));
    }
    if (s->has_runstates) {
        json_object_object_add(o, "runstates", runstates_json(s));
    }
    return o;
}
