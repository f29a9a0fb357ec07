/*
 * qemu-oc host tools: a libvirt domain read through libvirt's own APIs
 *
 * See vm-link-libvirt-stats.h.  The answers, per command:
 *   query-memory-size-summary  base-memory from virDomainGetMaxMemory();
 *   query-balloon              actual from balloon.current and the guest's
 *                              statistics (libvirt's KiB made bytes; its
 *                              "available" is the guest's total memory,
 *                              its "usable" what the guest can give);
 *   query-vcpu-runstates       per vCPU: running from vcpu.N.time, runnable
 *                              from vcpu.N.delay (waiting in the host's run
 *                              queue), blocked the rest of the host's
 *                              monotonic time (so that its increase is
 *                              the blocked time); no VM states (they
 *                              need qemu-oc), method and source "libvirt".
 * Anything else is a command error, as from a QEMU without it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include <libvirt/virterror.h>

#include "vm-link-libvirt-stats.h"
#include "vm-snapshot.h"

/* A machine type only qemu-oc has (hw/i386, patches/) */
#define LV_OC_MACHINE "pc-i440fx-7.2-oc"

/* What the domain XML says of its emulator, through GMarkup */
typedef struct DomainFacts {
    GString *emulator;          /* <devices><emulator> */
    char *virt;                 /* <domain type=...> */
    char *arch;                 /* <os><type arch=...> */
    bool in_emulator;
} DomainFacts;

static const char *attr(const char **names, const char **values,
                        const char *want)
{
    for (; *names; names++, values++) {
        if (!strcmp(*names, want)) {
            return *values;
        }
    }
    return NULL;
}

static void facts_start(GMarkupParseContext *ctx, const char *name,
                        const char **names, const char **values,
                        gpointer opaque, GError **err G_GNUC_UNUSED)
{
    DomainFacts *f = opaque;
    const GSList *stack = g_markup_parse_context_get_element_stack(ctx);
    const char *parent = stack->next ? stack->next->data : "";
    unsigned depth = g_slist_length((GSList *)stack);

    if (depth == 1 && !strcmp(name, "domain") && !f->virt) {
        f->virt = g_strdup(attr(names, values, "type"));
    } else if (depth == 3 && !strcmp(name, "type") &&
               !strcmp(parent, "os") && !f->arch) {
        f->arch = g_strdup(attr(names, values, "arch"));
    } else if (depth == 3 && !strcmp(name, "emulator") &&
               !strcmp(parent, "devices")) {
        f->in_emulator = true;
    }
}

static void facts_end(GMarkupParseContext *ctx G_GNUC_UNUSED,
                      const char *name G_GNUC_UNUSED, gpointer opaque,
                      GError **err G_GNUC_UNUSED)
{
    ((DomainFacts *)opaque)->in_emulator = false;
}

static void facts_text(GMarkupParseContext *ctx G_GNUC_UNUSED,
                       const char *text, gsize len, gpointer opaque,
                       GError **err G_GNUC_UNUSED)
{
    DomainFacts *f = opaque;

    if (f->in_emulator && f->emulator->len + len < 4096) {
        g_string_append_len(f->emulator, text, len);
    }
}

static void facts_clear(DomainFacts *f)
{
    g_string_free(f->emulator, true);
    g_free(f->virt);
    g_free(f->arch);
}

static bool domain_facts(virDomainPtr dom, DomainFacts *f, GError **err)
{
    static const GMarkupParser parser = {
        .start_element = facts_start,
        .end_element = facts_end,
        .text = facts_text,
    };
    g_autoptr(GMarkupParseContext) ctx = NULL;
    char *xml = virDomainGetXMLDesc(dom, 0);
    bool ok;

    memset(f, 0, sizeof(*f));
    f->emulator = g_string_new(NULL);
    if (!xml) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "virDomainGetXMLDesc: %s", virGetLastErrorMessage());
        return false;
    }
    ctx = g_markup_parse_context_new(&parser, 0, f, NULL);
    ok = g_markup_parse_context_parse(ctx, xml, -1, err) &&
         g_markup_parse_context_end_parse(ctx, err);
    free(xml);
    if (!ok) {
        g_prefix_error(err, "the domain's XML: ");
        return false;
    }
    g_strstrip(f->emulator->str);
    return true;
}

/*
 * Does the emulator offer qemu-oc's machine type?  libvirt answers from
 * its capability cache (it probed the binary once), locally or remotely.
 * Asked once per connection and emulator.
 */
static bool emulator_has_oc_machine(virConnectPtr conn, const DomainFacts *f)
{
    static GMutex lock;
    static GHashTable *known;   /* "URI emulator" -> 1 + answer */
    char *uri = virConnectGetURI(conn);
    g_autofree char *key = g_strdup_printf("%s %s", uri ? uri : "?",
                                           f->emulator->str);
    gpointer seen;
    char *caps;

    free(uri);
    g_mutex_lock(&lock);
    if (!known) {
        known = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    }
    seen = g_hash_table_lookup(known, key);
    g_mutex_unlock(&lock);
    if (seen) {
        return GPOINTER_TO_INT(seen) - 1;
    }
    caps = virConnectGetDomainCapabilities(conn, f->emulator->str, f->arch,
                                           LV_OC_MACHINE, f->virt, 0);
    free(caps);
    g_mutex_lock(&lock);
    g_hash_table_insert(known, g_steal_pointer(&key),
                        GINT_TO_POINTER(1 + (caps != NULL)));
    g_mutex_unlock(&lock);
    return caps != NULL;
}

int lv_domain_runs_qemu_oc(virConnectPtr conn, virDomainPtr dom,
                           char **emulator, GError **err)
{
    DomainFacts f;
    g_autofree char *base = NULL;
    bool yes;

    if (!domain_facts(dom, &f, err)) {
        facts_clear(&f);
        return -1;
    }
    base = g_path_get_basename(f.emulator->str);
    /*
     * (Debian's own emulators are stock: asking libvirt for a machine
     * type they lack would leave an error in libvirtd's log)
     */
    yes = g_str_has_prefix(base, "qemu-oc") ||
          (f.arch && !strcmp(f.arch, "x86_64") && f.emulator->len &&
           !g_str_has_prefix(f.emulator->str, "/usr/bin/qemu-system-") &&
           emulator_has_oc_machine(conn, &f));
    if (emulator) {
        *emulator = g_strdup(f.emulator->str);
    }
    facts_clear(&f);
    return yes;
}

/* The domain's statistics of @groups: its typed parameters, or NULL */
static virDomainStatsRecordPtr *get_stats(virDomainPtr dom,
                                          unsigned groups, GError **err)
{
    virDomainPtr doms[] = { dom, NULL };
    virDomainStatsRecordPtr *recs = NULL;

    if (virDomainListGetStats(doms, groups, &recs, 0) < 1) {
        g_set_error(err, QMP_CLIENT_ERROR,
                    virDomainIsActive(dom) == 1 ? QMP_CLIENT_ERROR_CONNECT
                                                : QMP_CLIENT_ERROR_CLOSED,
                    "virDomainListGetStats: %s", virGetLastErrorMessage());
        virDomainStatsRecordListFree(recs);
        return NULL;
    }
    return recs;
}

/* A counter, whichever unsigned type libvirt gives it (vcpu.maximum: uint) */
static bool param_u64(virDomainStatsRecordPtr r, const char *name,
                      uint64_t *out)
{
    unsigned long long v;
    unsigned int u;

    if (virTypedParamsGetULLong(r->params, r->nparams, name, &v) == 1) {
        *out = v;
        return true;
    }
    if (virTypedParamsGetUInt(r->params, r->nparams, name, &u) == 1) {
        *out = u;
        return true;
    }
    return false;
}

/* libvirt's balloon statistics, in KiB where ours are in bytes */
static const char *const libvirt_stats[VM_STATS_NR] = {
    [STAT_SWAP_IN] = "balloon.swap_in",
    [STAT_SWAP_OUT] = "balloon.swap_out",
    [STAT_MAJOR_FAULTS] = "balloon.major_fault",
    [STAT_MINOR_FAULTS] = "balloon.minor_fault",
    [STAT_FREE] = "balloon.unused",
    [STAT_TOTAL] = "balloon.available",
    [STAT_AVAILABLE] = "balloon.usable",
    [STAT_DISK_CACHES] = "balloon.disk_caches",
    [STAT_HUGETLB_ALLOCATIONS] = "balloon.hugetlb_pgalloc",
    [STAT_HUGETLB_FAILURES] = "balloon.hugetlb_pgfail",
};

static json_object *balloon_answer(virDomainPtr dom, GError **err)
{
    virDomainStatsRecordPtr *recs = get_stats(dom, VIR_DOMAIN_STATS_BALLOON,
                                              err);
    json_object *o, *stats;
    uint64_t v, update;
    unsigned i;

    if (!recs) {
        return NULL;
    }
    o = json_object_new_object();
    if (param_u64(recs[0], "balloon.current", &v)) {
        json_object_object_add(o, "actual", json_object_new_int64(v << 10));
    }
    if (param_u64(recs[0], "balloon.last-update", &update) && update) {
        stats = json_object_new_object();
        for (i = 0; i < VM_STATS_NR; i++) {
            if (libvirt_stats[i] &&
                param_u64(recs[0], libvirt_stats[i], &v)) {
                json_object_object_add(stats, vm_stats[i].name,
                    json_object_new_uint64(vm_stats[i].bytes ? v << 10
                                                                : v));
            }
        }
        json_object_object_add(o, "stats", stats);
        json_object_object_add(o, "last-update",
                               json_object_new_int64(update * 1000));
    }
    virDomainStatsRecordListFree(recs);
    return o;
}

static json_object *vcpus_answer(virDomainPtr dom, GError **err)
{
    virDomainStatsRecordPtr *recs = get_stats(dom, VIR_DOMAIN_STATS_VCPU,
                                              err);
    /* (a vCPU thread cannot have run or waited longer than the host) */
    uint64_t elapsed = g_get_monotonic_time() * 1000;
    uint64_t n = 0, i, run, wait;
    json_object *o, *vcpus;
    char key[64];

    if (!recs) {
        return NULL;
    }
    param_u64(recs[0], "vcpu.maximum", &n);
    o = json_object_new_object();
    vcpus = json_object_new_array();
    for (i = 0; i < MIN(n, 4096); i++) {
        json_object *c;

        g_snprintf(key, sizeof(key), "vcpu.%" G_GUINT64_FORMAT ".time", i);
        if (!param_u64(recs[0], key, &run)) {
            continue;           /* offline */
        }
        g_snprintf(key, sizeof(key), "vcpu.%" G_GUINT64_FORMAT ".delay", i);
        if (!param_u64(recs[0], key, &wait)) {
            wait = 0;
        }
        c = json_object_new_object();
        json_object_object_add(c, "cpu-index", json_object_new_int64(i));
        json_object_object_add(c, "running-ns", json_object_new_uint64(run));
        json_object_object_add(c, "runnable-ns",
                               json_object_new_uint64(wait));
        /* the rest of the time: its increase is the blocked time */
        json_object_object_add(c, "blocked-ns", json_object_new_uint64(
            elapsed > run + wait ? elapsed - run - wait : 0));
        json_object_object_add(c, "offline-ns", json_object_new_uint64(0));
        json_object_array_add(vcpus, c);
    }
    virDomainStatsRecordListFree(recs);
    json_object_object_add(o, "elapsed-ns", json_object_new_uint64(elapsed));
    json_object_object_add(o, "method", json_object_new_string("libvirt"));
    json_object_object_add(o, "source", json_object_new_string("libvirt"));
    json_object_object_add(o, "vcpus", vcpus);
    return o;
}

json_object *lv_stats_execute(virDomainPtr dom, const char *command,
                              GError **err)
{
    if (!strcmp(command, "query-balloon")) {
        return balloon_answer(dom, err);
    }
    if (!strcmp(command, "query-vcpu-runstates")) {
        return vcpus_answer(dom, err);
    }
    if (!strcmp(command, "query-memory-size-summary")) {
        unsigned long kib = virDomainGetMaxMemory(dom);
        json_object *o;

        if (!kib) {
            g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                        "virDomainGetMaxMemory: %s",
                        virGetLastErrorMessage());
            return NULL;
        }
        o = json_object_new_object();
        json_object_object_add(o, "base-memory",
                               json_object_new_int64((int64_t)kib << 10));
        return o;
    }
    g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_COMMAND,
                "%s: not read from a domain of stock QEMU (libvirt's "
                "statistics only)", command);
    return NULL;
}
