/*
 * qemu-oc host tools: a VmSnapshot on the collector's reader protocol
 *
 * See vm-snapshot-wire.h; the members are documented in
 * docs/collector.md.  Counters are unsigned 64-bit numbers; times are
 * the host's monotonic clock in µs (*-us, the collector and its readers
 * share a host) or the wall clock in ms (*-ms).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include "vm-snapshot-wire.h"

/* As vm-snapshot.c accepts from QEMU */
#define WIRE_MAX_VCPUS 4096
#define WIRE_MAX_STRING 4096

GQuark vm_snapshot_wire_error_quark(void)
{
    return g_quark_from_static_string("vm-snapshot-wire-error");
}

/* A member is wrong: @err says which, and how */
static void G_GNUC_PRINTF(2, 3) wire_fail(GError **err, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(err, VM_SNAPSHOT_WIRE_ERROR,
                        VM_SNAPSHOT_WIRE_ERROR_INVALID, msg);
}

/* Names of counters: in an array of names, or a member of a table's rows */
typedef struct Names {
    const void *first;
    size_t stride;              /* bytes from one name to the next */
} Names;

static Names array_names(const char *const *a)
{
    return (Names){ a, sizeof(*a) };
}

static Names stat_names(void)
{
    return (Names){ &vm_stats[0].name, sizeof(vm_stats[0]) };
}

static const char *name_at(Names names, unsigned i)
{
    return *(const char *const *)((const char *)names.first +
                                  i * names.stride);
}

static void add_u64s(json_object *o, const char *key, const uint64_t *v,
                     Names names, unsigned n, uint32_t mask)
{
    json_object *m = json_object_new_object();
    unsigned i;

    for (i = 0; i < n; i++) {
        if (mask & (1u << i)) {
            json_object_object_add(m, name_at(names, i),
                                   json_object_new_uint64(v[i]));
        }
    }
    json_object_object_add(o, key, m);
}

static void add_string(json_object *o, const char *key, const char *v)
{
    if (v) {
        json_object_object_add(o, key, json_object_new_string(v));
    }
}

static json_object *sample_to_wire(const VmRunstatesSample *r)
{
    json_object *o = json_object_new_object();
    json_object *vcpus = json_object_new_array_ext(r->n_vcpus);
    unsigned i;

    json_object_object_add(o, "taken-us", json_object_new_int64(r->taken_us));
    json_object_object_add(o, "elapsed-ns",
                           json_object_new_uint64(r->elapsed_ns));
    if (r->vm_state >= 0) {
        add_string(o, "state", vm_state_names[r->vm_state]);
    }
    if (r->has_vm) {
        add_u64s(o, "vm-ns", r->vm_ns, array_names(vm_state_names),
                 VM_STATES_NR, ~0u);
    }
    json_object_object_add(o, "missed-changes",
                           json_object_new_uint64(r->missed_changes));
    for (i = 0; i < r->n_vcpus; i++) {
        json_object *c = json_object_new_object();

        json_object_object_add(c, "cpu-index",
                               json_object_new_int64(r->vcpu[i].index));
        json_object_object_add(c, "thread-id",
                               json_object_new_int64(r->vcpu[i].thread_id));
        if (r->vcpu[i].state >= 0) {
            add_string(c, "state", vcpu_state_names[r->vcpu[i].state]);
        }
        add_u64s(c, "ns", r->vcpu[i].ns, array_names(vcpu_state_names),
                 VCPU_STATES_NR, ~0u);
        json_object_object_add(c, "transitions",
                               json_object_new_uint64(r->vcpu[i].transitions));
        if (r->vcpu[i].has_kvm) {
            json_object_object_add(c, "kvm", vm_snapshot_kvm_json(r, i));
        }
        json_object_array_add(vcpus, c);
    }
    json_object_object_add(o, "vcpus", vcpus);
    add_string(o, "method", r->method);
    add_string(o, "source", r->source);
    add_string(o, "source-reason", r->source_reason);
    if (r->has_kvm_pv) {
        g_autofree char *pv = vm_kvm_pv_string(r->kvm_pv);

        add_string(o, "kvm-pv", pv);
    }
    return o;
}

json_object *vm_snapshot_to_wire(const VmSnapshot *s)
{
    json_object *o = json_object_new_object();

    add_string(o, "name", s->name);
    add_string(o, "where", s->where);
    json_object_object_add(o, "taken-us", json_object_new_int64(s->taken_us));
    json_object_object_add(o, "responsive",
                           json_object_new_boolean(s->responsive));
    if (s->unresponsive_since_us) {
        json_object_object_add(o, "unresponsive-since-us",
                               json_object_new_int64(
                                   s->unresponsive_since_us));
    }
    add_string(o, "error", s->error);
    if (s->pid > 0) {
        json_object_object_add(o, "pid", json_object_new_int(s->pid));
    }
    vm_snapshot_add_balloon(o, s);      /* (as vmtop --json has them) */
    if (s->has_stats) {
        json_object *st = json_object_new_object();

        json_object_object_add(st, "update-ms",
                               json_object_new_int64(s->stats_update_ms));
        add_u64s(st, "values", s->stats, stat_names(), VM_STATS_NR,
                 s->stats_mask);
        if (s->prev_update_ms) {
            json_object_object_add(st, "prev-update-ms",
                                   json_object_new_int64(s->prev_update_ms));
            add_u64s(st, "prev-values", s->prev_stats, stat_names(),
                     VM_STATS_NR, s->stats_mask);
        }
        json_object_object_add(o, "stats", st);
    }
    if (s->has_runstates) {
        json_object *rs = json_object_new_object();

        json_object_object_add(rs, "cur", sample_to_wire(&s->cur));
        if (s->has_prev) {
            json_object_object_add(rs, "prev", sample_to_wire(&s->prev));
        }
        json_object_object_add(o, "runstates", rs);
    }
    return o;
}

/* Decoding: each helper fails with an error naming the member */

typedef enum Need { OPTIONAL, REQUIRED } Need;

static json_object *get(json_object *o, const char *key, json_type type,
                        Need need, bool *ok, GError **err)
{
    json_object *v = NULL;

    if (!*ok) {
        return NULL;
    }
    if (!json_object_object_get_ex(o, key, &v)) {
        if (need == REQUIRED) {
            wire_fail(err, "'%s' is missing", key);
            *ok = false;
        }
        return NULL;
    }
    if (!json_object_is_type(v, type)) {
        wire_fail(err, "'%s' has the wrong type", key);
        *ok = false;
        return NULL;
    }
    return v;
}

static uint64_t get_u64(json_object *o, const char *key, Need need, bool *ok,
                        GError **err);

/* vCPU @i's KVM counters (@kvm: NULL if it has none) */
static void get_kvm(VmRunstatesSample *r, unsigned i, json_object *kvm,
                    bool *ok, GError **err)
{
    VmVcpuSample *c = &r->vcpu[i];

    if (!kvm || !*ok) {
        return;
    }
    c->has_kvm = true;
    c->yields = get_u64(kvm, "directed-yield-attempted", REQUIRED, ok, err);
    c->yields_done = get_u64(kvm, "directed-yield-successful", REQUIRED, ok,
                             err);
    c->has_preemption = json_object_object_get_ex(kvm, "preemption-reported",
                                                  NULL);
    if (c->has_preemption) {
        c->preempted = get_u64(kvm, "preemption-reported", REQUIRED, ok,
                               err);
        c->preempted_other = get_u64(kvm, "preemption-other", REQUIRED, ok,
                                     err);
    }
}

static int64_t get_i64(json_object *o, const char *key, int64_t min,
                       Need need, bool *ok, GError **err)
{
    json_object *v = get(o, key, json_type_int, need, ok, err);
    int64_t x;

    if (!v) {
        return 0;
    }
    errno = 0;
    x = json_object_get_int64(v);
    if (errno || x < min) {
        wire_fail(err, "'%s' is out of range", key);
        *ok = false;
        return 0;
    }
    return x;
}

static uint64_t get_u64(json_object *o, const char *key, Need need, bool *ok,
                        GError **err)
{
    json_object *v = get(o, key, json_type_int, need, ok, err);
    uint64_t x;

    if (!v) {
        return 0;
    }
    errno = 0;
    x = json_object_get_uint64(v);
    if (errno || (x == 0 && json_object_get_int64(v) < 0)) {
        wire_fail(err, "'%s' is out of range", key);
        *ok = false;
        return 0;
    }
    return x;
}

static char *get_str(json_object *o, const char *key, Need need, bool *ok,
                     GError **err)
{
    json_object *v = get(o, key, json_type_string, need, ok, err);

    if (!v) {
        return NULL;
    }
    if (json_object_get_string_len(v) > WIRE_MAX_STRING) {
        wire_fail(err, "'%s' is too long", key);
        *ok = false;
        return NULL;
    }
    return g_strdup(json_object_get_string(v));
}

static int get_bool(json_object *o, const char *key, bool *ok, GError **err)
{
    json_object *v = get(o, key, json_type_boolean, OPTIONAL, ok, err);

    return v ? json_object_get_boolean(v) : -1;
}

/* A state name, -1 if absent; an unknown name is an error */
static int get_name(json_object *o, const char *key,
                    const char *const *names, unsigned n, bool *ok,
                    GError **err)
{
    json_object *v = get(o, key, json_type_string, OPTIONAL, ok, err);
    unsigned i;

    if (!v) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!strcmp(names[i], json_object_get_string(v))) {
            return i;
        }
    }
    wire_fail(err, "'%s': unknown name '%.64s'",
              key, json_object_get_string(v));
    *ok = false;
    return -1;
}

/* Members of @o named by @names into @v; the bit of each present, mask */
static uint32_t get_u64s(json_object *o, const char *key, uint64_t *v,
                         Names names, unsigned n, Need need, bool *ok,
                         GError **err)
{
    json_object *m = get(o, key, json_type_object, need, ok, err);
    uint32_t mask = 0;
    unsigned i;

    for (i = 0; m && *ok && i < n; i++) {
        if (json_object_object_get_ex(m, name_at(names, i), NULL)) {
            v[i] = get_u64(m, name_at(names, i), REQUIRED, ok, err);
            mask |= 1u << i;
        }
    }
    return mask;
}

static bool sample_from_wire(json_object *o, VmRunstatesSample *r,
                             GError **err)
{
    g_autofree char *pv = NULL;
    json_object *vcpus;
    bool ok = true;
    size_t n, i;

    memset(r, 0, sizeof(*r));
    r->vm_state = -1;
    r->taken_us = get_i64(o, "taken-us", 0, REQUIRED, &ok, err);
    r->elapsed_ns = get_u64(o, "elapsed-ns", REQUIRED, &ok, err);
    r->vm_state = get_name(o, "state", vm_state_names, VM_STATES_NR, &ok,
                           err);
    r->has_vm = json_object_object_get_ex(o, "vm-ns", NULL);
    get_u64s(o, "vm-ns", r->vm_ns, array_names(vm_state_names),
             VM_STATES_NR, OPTIONAL, &ok, err);
    r->missed_changes = get_u64(o, "missed-changes", OPTIONAL, &ok, err);
    vcpus = get(o, "vcpus", json_type_array, REQUIRED, &ok, err);
    n = vcpus ? json_object_array_length(vcpus) : 0;
    if (n > WIRE_MAX_VCPUS) {
        wire_fail(err, "too many vCPUs (%zu)", n);
        return false;
    }
    r->vcpu = g_new0(typeof(*r->vcpu), n);
    r->n_vcpus = n;
    for (i = 0; ok && i < n; i++) {
        json_object *c = json_object_array_get_idx(vcpus, i);

        if (!json_object_is_type(c, json_type_object)) {
            wire_fail(err, "vCPU %zu is not an "
                        "object", i);
            return false;
        }
        r->vcpu[i].index = get_i64(c, "cpu-index", 0, REQUIRED, &ok, err);
        r->vcpu[i].thread_id = get_i64(c, "thread-id", 0, OPTIONAL, &ok,
                                       err);
        r->vcpu[i].state = get_name(c, "state", vcpu_state_names,
                                    VCPU_STATES_NR, &ok, err);
        get_u64s(c, "ns", r->vcpu[i].ns, array_names(vcpu_state_names),
                 VCPU_STATES_NR, REQUIRED, &ok, err);
        r->vcpu[i].transitions = get_u64(c, "transitions", OPTIONAL, &ok,
                                         err);
        get_kvm(r, i, get(c, "kvm", json_type_object, OPTIONAL, &ok, err),
                &ok, err);
    }
    r->method = get_str(o, "method", OPTIONAL, &ok, err);
    r->source = get_str(o, "source", OPTIONAL, &ok, err);
    r->source_reason = get_str(o, "source-reason", OPTIONAL, &ok, err);
    pv = get_str(o, "kvm-pv", OPTIONAL, &ok, err);
    r->has_kvm_pv = pv != NULL;
    if (pv && !vm_kvm_pv_parse(pv, &r->kvm_pv)) {
        wire_fail(err, "'kvm-pv': unknown feature in '%.64s'", pv);
        ok = false;
    }
    return ok;
}

static bool stats_from_wire(json_object *st, VmSnapshot *s, GError **err)
{
    bool ok = true;

    s->stats_update_ms = get_i64(st, "update-ms", 1, REQUIRED, &ok, err);
    s->stats_mask = get_u64s(st, "values", s->stats, stat_names(),
                             VM_STATS_NR, REQUIRED, &ok, err);
    s->prev_update_ms = get_i64(st, "prev-update-ms", 1, OPTIONAL, &ok, err);
    get_u64s(st, "prev-values", s->prev_stats, stat_names(), VM_STATS_NR,
             OPTIONAL, &ok, err);
    s->has_stats = ok;
    return ok;
}

static bool runstates_from_wire(json_object *rs, VmSnapshot *s, GError **err)
{
    bool ok = true;
    json_object *cur = get(rs, "cur", json_type_object, REQUIRED, &ok, err);
    json_object *prev = get(rs, "prev", json_type_object, OPTIONAL, &ok,
                            err);

    if (!ok || !sample_from_wire(cur, &s->cur, err)) {
        return false;
    }
    s->has_runstates = true;
    if (prev) {
        if (!sample_from_wire(prev, &s->prev, err)) {
            return false;
        }
        s->has_prev = true;
    }
    return true;
}

VmSnapshot *vm_snapshot_from_wire(json_object *o, GError **err)
{
    g_autofree char *name = NULL, *where = NULL;
    json_object *st, *rs;
    VmSnapshot *s;
    bool ok = true;

    if (!json_object_is_type(o, json_type_object)) {
        wire_fail(err, "a VM is not an object");
        return NULL;
    }
    name = get_str(o, "name", REQUIRED, &ok, err);
    where = get_str(o, "where", REQUIRED, &ok, err);
    if (!ok) {
        return NULL;
    }
    s = vm_snapshot_new(name, where);
    s->taken_us = get_i64(o, "taken-us", 0, REQUIRED, &ok, err);
    s->responsive = get_bool(o, "responsive", &ok, err) == 1;
    s->unresponsive_since_us = get_i64(o, "unresponsive-since-us", 0,
                                       OPTIONAL, &ok, err);
    s->error = get_str(o, "error", OPTIONAL, &ok, err);
    s->pid = get_i64(o, "pid", 0, OPTIONAL, &ok, err);
    if (s->pid > G_MAXINT) {
        s->pid = 0;
    }
    s->balloon_fpr = get_bool(o, "free-page-reporting", &ok, err);
    s->balloon_deflate = get_bool(o, "deflate-on-oom", &ok, err);
    s->max_memory = get_i64(o, "max-memory", 0, OPTIONAL, &ok, err);
    s->has_balloon = json_object_object_get_ex(o, "balloon-actual", NULL);
    s->actual = get_i64(o, "balloon-actual", 0, OPTIONAL, &ok, err);
    s->balloon_target = get_i64(o, "balloon-target", 1, OPTIONAL, &ok, err);
    s->balloon_target_ms = get_i64(o, "balloon-target-ms", 1, OPTIONAL, &ok,
                                   err);
    if (ok && !s->balloon_target != !s->balloon_target_ms) {
        wire_fail(err, "'balloon-target' and "
                    "'balloon-target-ms' go together");
        ok = false;
    }
    st = get(o, "stats", json_type_object, OPTIONAL, &ok, err);
    rs = get(o, "runstates", json_type_object, OPTIONAL, &ok, err);
    if (ok && st) {
        ok = stats_from_wire(st, s, err);
    }
    if (ok && rs) {
        ok = runstates_from_wire(rs, s, err);
    }
    if (!ok) {
        g_prefix_error(err, "VM '%.64s': ", name);
        vm_snapshot_unref(s);
        return NULL;
    }
    return s;
}
