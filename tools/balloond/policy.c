/*
 * qemu-oc-balloond: the balloon policy and its configuration file
 *
 * policy_decide() applies the rules of policy.h to one VM's snapshot,
 * in order: unresponsive, stale, bounds, guest pressure, host pressure,
 * grow; then the hysteresis.  It is pure: every input is an argument,
 * including the wall clock.  policy_config_load() reads the INI file
 * ([policy] and [vm NAME] groups) and refuses anything it does not
 * know or that is out of range, naming the file, group and key.
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
    .defaults = { .floor_mib = 512, .ceiling_mib = 0 },
    .step_mib = 256,
    .step_pct = 10,
    .hysteresis_mib = 32,
    .stale_ms = 10000,
    .guest_low_avail_pct = 10,
    .guest_majflt_per_s = 50,
    .guest_swapin_per_s = 1024 * 1024,
    .host_low_avail_pct = 10,
    .host_psi_some_avg10 = 10,
};

const char *const policy_reason_names[POLICY_REASON__MAX] = {
    [POLICY_STEADY] = "steady",
    [POLICY_UNRESPONSIVE] = "unresponsive",
    [POLICY_STALE] = "stale",
    [POLICY_GUEST_PRESSURE] = "guest-pressure",
    [POLICY_HOST_PRESSURE] = "host-pressure",
    [POLICY_GROW] = "grow",
    [POLICY_BOUNDS] = "bounds",
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
    return host->pressure ||
           (host->total_kib &&
            host->available_kib * 100.0 <
            cfg->host_low_avail_pct * host->total_kib) ||
           host->psi_some_avg10 > cfg->host_psi_some_avg10;
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
static void finish(const PolicyConfig *cfg, PolicyDecision *out,
                   PolicyReason reason, uint64_t target, uint64_t floor,
                   uint64_t ceiling)
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
    finish(cfg, out, reason, target, floor, ceiling);
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
        finish(cfg, out, POLICY_BOUNDS, MAX(current - step, ceiling),
               floor, ceiling);
    } else if (current < floor) {
        finish(cfg, out, POLICY_BOUNDS, MIN(current + step, floor),
               floor, ceiling);
    } else {
        decide_inside(cfg, s, host, rank < n_ranked, floor, ceiling, out);
    }
}

/* The configuration file */

typedef enum KeyKind {
    KEY_MIB,            /* a non-negative integer */
    KEY_STEP_MIB,       /* a positive integer */
    KEY_MS,             /* a positive integer */
    KEY_PCT,            /* a number in 0..100 */
    KEY_STEP_PCT,       /* a number in (0, 100] */
    KEY_RATE,           /* a non-negative number */
} KeyKind;

typedef struct KeyDef {
    const char *name;
    KeyKind kind;
    size_t offset;      /* in PolicyConfig */
} KeyDef;

#define KEY(n, k, f) { n, k, offsetof(PolicyConfig, f) }

static const KeyDef policy_keys[] = {
    KEY("floor-mib", KEY_MIB, defaults.floor_mib),
    KEY("ceiling-mib", KEY_MIB, defaults.ceiling_mib),
    KEY("step-mib", KEY_STEP_MIB, step_mib),
    KEY("step-pct", KEY_STEP_PCT, step_pct),
    KEY("hysteresis-mib", KEY_MIB, hysteresis_mib),
    KEY("stale-ms", KEY_MS, stale_ms),
    KEY("guest-low-avail-pct", KEY_PCT, guest_low_avail_pct),
    KEY("guest-majflt-per-s", KEY_RATE, guest_majflt_per_s),
    KEY("guest-swapin-per-s", KEY_RATE, guest_swapin_per_s),
    KEY("host-low-avail-pct", KEY_PCT, host_low_avail_pct),
    KEY("host-psi-some-avg10", KEY_PCT, host_psi_some_avg10),
};

/* In a [vm NAME] group: offsets in PolicyVmConfig */
static const KeyDef vm_keys[] = {
    { "floor-mib", KEY_MIB, offsetof(PolicyVmConfig, floor_mib) },
    { "ceiling-mib", KEY_MIB, offsetof(PolicyVmConfig, ceiling_mib) },
};

#define VM_GROUP_PREFIX "vm "

static bool bad_value(GError **err, const char *path, const char *group,
                      const char *key, const char *value, const char *why)
{
    g_set_error(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                "%s: [%s] %s: '%s' %s", path, group, key, value, why);
    return false;
}

static bool parse_int(const char *path, const char *group,
                      const KeyDef *k, const char *value, void *field,
                      GError **err)
{
    int64_t min = k->kind == KEY_MIB ? 0 : 1;
    gint64 v;

    if (!g_ascii_string_to_signed(value, 10, G_MININT64, G_MAXINT64, &v,
                                  NULL)) {
        return bad_value(err, path, group, k->name, value,
                         "is not an integer");
    }
    if (v < 0) {
        return bad_value(err, path, group, k->name, value, "is negative");
    }
    if (v < min) {
        return bad_value(err, path, group, k->name, value,
                         "must be above zero");
    }
    if (k->kind == KEY_MS) {
        *(int64_t *)field = v;
    } else {
        *(uint64_t *)field = v;
    }
    return true;
}

static bool parse_double(const char *path, const char *group,
                         const KeyDef *k, const char *value, double *field,
                         GError **err)
{
    char *end;
    double v = g_ascii_strtod(value, &end);

    if (end == value || *end || !isfinite(v)) {
        return bad_value(err, path, group, k->name, value,
                         "is not a number");
    }
    if (v < 0) {
        return bad_value(err, path, group, k->name, value, "is negative");
    }
    if (k->kind == KEY_STEP_PCT && v == 0) {
        return bad_value(err, path, group, k->name, value,
                         "must be above zero");
    }
    if (k->kind != KEY_RATE && v > 100) {
        return bad_value(err, path, group, k->name, value,
                         "is not a percentage (0 to 100)");
    }
    *field = v;
    return true;
}

/* Set the fields of @base named by @group's keys; unknown keys refused */
static bool load_group(GKeyFile *kf, const char *path, const char *group,
                       const KeyDef *defs, size_t n_defs, void *base,
                       GError **err)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, group, NULL, err);
    size_t i, j;

    for (i = 0; keys && keys[i]; i++) {
        g_autofree char *value = NULL;
        const KeyDef *k = NULL;
        bool ok;

        for (j = 0; j < n_defs && !k; j++) {
            k = strcmp(defs[j].name, keys[i]) ? NULL : &defs[j];
        }
        if (!k) {
            g_set_error(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                        "%s: [%s] %s: unknown key", path, group, keys[i]);
            return false;
        }
        value = g_key_file_get_value(kf, group, keys[i], err);
        if (!value) {
            return false;
        }
        if (k->kind == KEY_PCT || k->kind == KEY_STEP_PCT ||
            k->kind == KEY_RATE) {
            ok = parse_double(path, group, k, value,
                              (double *)((char *)base + k->offset), err);
        } else {
            ok = parse_int(path, group, k, value,
                           (char *)base + k->offset, err);
        }
        if (!ok) {
            return false;
        }
    }
    return keys != NULL;
}

static bool check_bounds(const char *path, const char *group,
                         const PolicyVmConfig *vm, GError **err)
{
    if (vm->ceiling_mib && vm->floor_mib > vm->ceiling_mib) {
        g_set_error(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "%s: [%s] floor-mib: %" G_GUINT64_FORMAT
                    " is above ceiling-mib %" G_GUINT64_FORMAT "%s",
                    path, group, vm->floor_mib, vm->ceiling_mib,
                    strcmp(group, "policy") ? " (a key not set here "
                    "comes from [policy])" : "");
        return false;
    }
    return true;
}

/* A [vm NAME] group: the defaults, overridden by its keys */
static bool load_vm(GKeyFile *kf, const char *path, const char *group,
                    const PolicyConfig *cfg, GHashTable *per_vm,
                    GError **err)
{
    const char *name = group + strlen(VM_GROUP_PREFIX);
    PolicyVmConfig *vm;

    if (!*name) {
        g_set_error(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                    "%s: [%s]: a VM group needs a name: [vm NAME]",
                    path, group);
        return false;
    }
    vm = g_new(PolicyVmConfig, 1);
    *vm = cfg->defaults;
    g_hash_table_replace(per_vm, g_strdup(name), vm);
    return load_group(kf, path, group, vm_keys, G_N_ELEMENTS(vm_keys), vm,
                      err) &&
           check_bounds(path, group, vm, err);
}

static bool load_groups(GKeyFile *kf, const char *path, PolicyConfig *cfg,
                        GHashTable *per_vm, GError **err)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    size_t i;

    for (i = 0; groups[i]; i++) {
        if (!strcmp(groups[i], "policy") ||
            g_str_has_prefix(groups[i], VM_GROUP_PREFIX)) {
            continue;
        }
        g_set_error(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                    "%s: [%s]: unknown group (expected [policy] or "
                    "[vm NAME])", path, groups[i]);
        return false;
    }
    if (g_key_file_has_group(kf, "policy") &&
        (!load_group(kf, path, "policy", policy_keys,
                     G_N_ELEMENTS(policy_keys), cfg, err) ||
         !check_bounds(path, "policy", &cfg->defaults, err))) {
        return false;
    }
    for (i = 0; groups[i]; i++) {
        if (g_str_has_prefix(groups[i], VM_GROUP_PREFIX) &&
            !load_vm(kf, path, groups[i], cfg, per_vm, err)) {
            return false;
        }
    }
    return true;
}

/*
 * Start from policy_default_config; @cfg and @per_vm are set only on
 * success (*per_vm: a new table, name -> g_new'd PolicyVmConfig)
 */
bool policy_config_load(const char *path, PolicyConfig *cfg,
                        GHashTable **per_vm, GError **err)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) local = NULL;
    PolicyConfig c = policy_default_config;
    GHashTable *vms;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
        g_set_error(err, local->domain, local->code, "%s: %s", path,
                    local->message);
        return false;
    }
    vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (!load_groups(kf, path, &c, vms, err)) {
        g_hash_table_unref(vms);
        return false;
    }
    *cfg = c;
    *per_vm = vms;
    return true;
}
