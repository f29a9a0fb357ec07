/*
 * qemu-oc-balloond: the policy's configuration file
 *
 * policy_config_load() reads the INI file ([policy] and [vm NAME]
 * groups) and refuses anything it does not know or that is out of
 * range, naming the file, group and key.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <math.h>
#include <stddef.h>
#include <string.h>
#include "policy.h"


typedef enum KeyKind {
    KEY_MIB,            /* a non-negative integer */
    KEY_STEP_MIB,       /* a positive integer */
    KEY_MS,             /* a positive integer */
    KEY_MS_OFF,         /* a non-negative integer, 0: off */
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
    KEY("reserve-mib", KEY_MIB, reserve_mib),
    KEY("reserve-pct", KEY_PCT, reserve_pct),
    KEY("cooldown-ms", KEY_MS, cooldown_ms),
    KEY("oom-cooldown-ms", KEY_MS, oom_cooldown_ms),
    KEY("guest-alloc-mib-per-s", KEY_RATE, guest_alloc_mib_s),
    KEY("lookahead-ms", KEY_MS, lookahead_ms),
    KEY("guest-distress-ms", KEY_MS, guest_distress_ms),
    KEY("brake-max-ms", KEY_MS_OFF, brake_max_ms),
};

/* In a [vm NAME] group: offsets in PolicyVmConfig */
static const KeyDef vm_keys[] = {
    { "floor-mib", KEY_MIB, offsetof(PolicyVmConfig, floor_mib) },
    { "ceiling-mib", KEY_MIB, offsetof(PolicyVmConfig, ceiling_mib) },
};

/* In a [domain PATH] group: offsets in PolicyDomainConfig */
static const KeyDef domain_keys[] = {
    { "reserve-mib", KEY_MIB, offsetof(PolicyDomainConfig, reserve_mib) },
    { "reserve-pct", KEY_PCT, offsetof(PolicyDomainConfig, reserve_pct) },
};

#define VM_GROUP_PREFIX "vm "
#define DOMAIN_GROUP_PREFIX "domain "

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
    int64_t min = k->kind == KEY_MIB || k->kind == KEY_MS_OFF ? 0 : 1;
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
    if (k->kind == KEY_MS || k->kind == KEY_MS_OFF) {
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

/*
 * A [domain PATH] group: [policy]'s reserve, overridden by its keys, for
 * the cgroup at PATH (an absolute path)
 */
static bool load_domain(GKeyFile *kf, const char *path, const char *group,
                        const PolicyConfig *cfg, GError **err)
{
    const char *dir = group + strlen(DOMAIN_GROUP_PREFIX);
    PolicyDomainConfig *d;

    if (!g_path_is_absolute(dir)) {
        g_set_error(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                    "%s: [%s]: a domain group needs the cgroup's absolute "
                    "path: [domain /sys/fs/cgroup/...]", path, group);
        return false;
    }
    d = g_new(PolicyDomainConfig, 1);
    d->reserve_mib = cfg->reserve_mib;
    d->reserve_pct = cfg->reserve_pct;
    g_hash_table_replace(cfg->domains, g_canonicalize_filename(dir, "/"), d);
    return load_group(kf, path, group, domain_keys,
                      G_N_ELEMENTS(domain_keys), d, err);
}

static bool load_groups(GKeyFile *kf, const char *path, PolicyConfig *cfg,
                        GHashTable *per_vm, GError **err)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    size_t i;

    for (i = 0; groups[i]; i++) {
        if (!strcmp(groups[i], "policy") ||
            g_str_has_prefix(groups[i], VM_GROUP_PREFIX) ||
            g_str_has_prefix(groups[i], DOMAIN_GROUP_PREFIX)) {
            continue;
        }
        g_set_error(err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                    "%s: [%s]: unknown group (expected [policy], "
                    "[vm NAME] or [domain PATH])", path, groups[i]);
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
        if (g_str_has_prefix(groups[i], DOMAIN_GROUP_PREFIX) &&
            !load_domain(kf, path, groups[i], cfg, err)) {
            return false;
        }
    }
    return true;
}

/*
 * Start from policy_default_config; @cfg and @per_vm are set only on
 * success (*per_vm: a new table, name -> g_new'd PolicyVmConfig;
 * cfg->domains: a new table, canonical path -> PolicyDomainConfig)
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
    c.domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      g_free);
    if (!load_groups(kf, path, &c, vms, err)) {
        g_hash_table_unref(vms);
        g_hash_table_unref(c.domains);
        return false;
    }
    *cfg = c;
    *per_vm = vms;
    return true;
}
