/*
 * qemu-oc-balloond: Prometheus metrics over HTTP (libmicrohttpd)
 *
 * See metrics.h.  One libmicrohttpd daemon with its own polling thread
 * listens on one address ("ADDR:PORT", "[IPV6]:PORT", parsed by GLib;
 * ":PORT": every address, IPv6 and IPv4).
 * GET (or HEAD) /metrics gives the page, another method on it 405, any
 * other path 404.
 *
 * For each scrape the collect callback is given an empty array whose
 * free function is metrics_vm_free(): it adds MetricsVm structures
 * allocated with g_new0(), each holding a reference of its own to its
 * snapshot (or snap NULL: the VM is left out), and the array's end
 * releases both.  It also fills the HostMemory, zeroed beforehand
 * (total_kib 0: the host's memory samples are left out).
 *
 * The page: every family has HELP and TYPE and its samples grouped,
 * and a family with no sample is left out altogether; label values are
 * valid UTF-8, escaped (backslash, quote, newline); counters end in
 * _total, units are in the name (_seconds, _bytes).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <gio/gio.h>
#include <microhttpd.h>

#include "metrics.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define HTTP_CONNECTION_LIMIT 32
#define HTTP_TIMEOUT_S 10
#define MIB (1024 * 1024ULL)

struct Metrics {
    struct MHD_Daemon *daemon;
    MetricsCollectFn *collect;
    void *opaque;
    char *addr_port;
    gint starting;              /* libmicrohttpd's log goes to start_log */
    GString *start_log;
};

/* ---- the exposition text ---- */

static void append_escaped(GString *s, const char *value)
{
    g_autofree char *valid = g_utf8_make_valid(value ? value : "", -1);
    const char *p;

    for (p = valid; *p; p++) {
        switch (*p) {
        case '\\':
            g_string_append(s, "\\\\");
            break;
        case '"':
            g_string_append(s, "\\\"");
            break;
        case '\n':
            g_string_append(s, "\\n");
            break;
        default:
            g_string_append_c(s, *p);
        }
    }
}

/* Whether the sample being written (the last line of @s) has labels */
static bool sample_has_labels(GString *s)
{
    const char *nl = g_strrstr_len(s->str, s->len, "\n");
    const char *line = nl ? nl + 1 : s->str;

    return memchr(line, '{', s->str + s->len - line) != NULL;
}

/* A sample's name, and its VM's label if @vm (the braces left open) */
static void sample_begin(GString *s, const char *name, const VmSnapshot *vm)
{
    g_string_append(s, name);
    if (vm) {
        g_string_append(s, "{vm=\"");
        append_escaped(s, vm->name);
        g_string_append_c(s, '"');
    }
}

static void sample_label(GString *s, const char *key, const char *value)
{
    g_string_append_c(s, sample_has_labels(s) ? ',' : '{');
    g_string_append_printf(s, "%s=\"", key);
    append_escaped(s, value);
    g_string_append_c(s, '"');
}

/* The labels' closing brace, if any, and the value's leading space */
static void sample_value(GString *s)
{
    g_string_append(s, sample_has_labels(s) ? "} " : " ");
}

static void sample_end_u64(GString *s, uint64_t v)
{
    sample_value(s);
    g_string_append_printf(s, "%" PRIu64 "\n", v);
}

/* The shortest of %.15g and %.17g that reads back the same */
static void sample_end_double(GString *s, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    sample_value(s);
    if (isnan(v)) {
        g_string_append(s, "NaN\n");
        return;
    }
    if (isinf(v)) {
        g_string_append(s, v > 0 ? "+Inf\n" : "-Inf\n");
        return;
    }
    g_ascii_formatd(buf, sizeof(buf), "%.15g", v);
    if (g_ascii_strtod(buf, NULL) != v) {
        g_ascii_formatd(buf, sizeof(buf), "%.17g", v);
    }
    g_string_append_printf(s, "%s\n", buf);
}

/* The samples of one family for one VM, appended to @s */
typedef void VmSamplesFn(GString *s, const char *name, const MetricsVm *v,
                         int64_t now_ms);

static void vm_responsive(GString *s, const char *name, const MetricsVm *v,
                          int64_t now_ms)
{
    (void)now_ms;
    sample_begin(s, name, v->snap);
    sample_end_u64(s, v->snap->responsive);
}

static void vm_unresponsive_since(GString *s, const char *name,
                                  const MetricsVm *v, int64_t now_ms)
{
    (void)now_ms;
    if (!v->snap->responsive && v->snap->unresponsive_since_us) {
        sample_begin(s, name, v->snap);
        sample_end_double(s, v->snap->unresponsive_since_us / 1e6);
    }
}

static void vm_state_seconds(GString *s, const char *name,
                             const MetricsVm *v, int64_t now_ms)
{
    unsigned j;

    (void)now_ms;
    if (!v->snap->has_runstates) {
        return;
    }
    for (j = 0; j < VM_STATES_NR; j++) {
        sample_begin(s, name, v->snap);
        sample_label(s, "state", vm_state_names[j]);
        sample_end_double(s, v->snap->cur.vm_ns[j] / 1e9);
    }
}

/* CPU ready: the mean of the vCPUs' runnable shares, last interval */
static void vm_ready(GString *s, const char *name, const MetricsVm *v,
                     int64_t now_ms)
{
    double share;

    (void)now_ms;
    if (vm_snapshot_ready(v->snap, &share)) {
        sample_begin(s, name, v->snap);
        sample_end_double(s, share);
    }
}

/* Co-stop: the VM's concurrency-hazard share, last interval */
static void vm_costop(GString *s, const char *name, const MetricsVm *v,
                      int64_t now_ms)
{
    double sh[VM_STATES_NR];

    (void)now_ms;
    if (vm_snapshot_vm_shares(v->snap, sh)) {
        sample_begin(s, name, v->snap);
        sample_end_double(s, sh[VM_STATE_CONCURRENCY_HAZARD]);
    }
}

/* Lock-holder preemption suspected (vm_snapshot_lhp()): KVM only */
static void vm_lhp(GString *s, const char *name, const MetricsVm *v,
                   int64_t now_ms)
{
    VmLhp lhp;

    (void)now_ms;
    if (vm_snapshot_lhp(v->snap, &lhp)) {
        sample_begin(s, name, v->snap);
        sample_end_u64(s, lhp.suspected);
    }
}

/* A vCPU's KVM counter, by @label: @what[0] from @a, @what[1] from @b */
static void vcpu_kvm_pair(GString *s, const char *name, const MetricsVm *v,
                          const char *label, const char *const what[2],
                          bool preemption)
{
    const VmRunstatesSample *r = &v->snap->cur;
    char index[24];
    uint64_t val[2];
    unsigned i, k;

    for (i = 0; v->snap->has_runstates && i < r->n_vcpus; i++) {
        if (!r->vcpu[i].has_kvm ||
            (preemption && !r->vcpu[i].has_preemption)) {
            continue;
        }
        val[0] = preemption ? r->vcpu[i].preempted : r->vcpu[i].yields;
        val[1] = preemption ? r->vcpu[i].preempted_other
                            : r->vcpu[i].yields_done;
        g_snprintf(index, sizeof(index), "%" PRId64, r->vcpu[i].index);
        for (k = 0; k < 2; k++) {
            sample_begin(s, name, v->snap);
            sample_label(s, "vcpu", index);
            sample_label(s, label, what[k]);
            sample_end_u64(s, val[k]);
        }
    }
}

static void vcpu_yields(GString *s, const char *name, const MetricsVm *v,
                        int64_t now_ms)
{
    static const char *const what[2] = { "attempted", "successful" };

    (void)now_ms;
    vcpu_kvm_pair(s, name, v, "result", what, false);
}

static void vcpu_preemptions(GString *s, const char *name,
                             const MetricsVm *v, int64_t now_ms)
{
    static const char *const what[2] = { "reported", "other" };

    (void)now_ms;
    vcpu_kvm_pair(s, name, v, "kind", what, true);
}

static void vcpu_state_seconds(GString *s, const char *name,
                               const MetricsVm *v, int64_t now_ms)
{
    const VmRunstatesSample *r = &v->snap->cur;
    char index[24];
    unsigned i, j;

    (void)now_ms;
    if (!v->snap->has_runstates) {
        return;
    }
    for (i = 0; i < r->n_vcpus; i++) {
        g_snprintf(index, sizeof(index), "%" PRId64, r->vcpu[i].index);
        for (j = 0; j < VCPU_STATES_NR; j++) {
            sample_begin(s, name, v->snap);
            sample_label(s, "vcpu", index);
            sample_label(s, "state", vcpu_state_names[j]);
            sample_end_double(s, r->vcpu[i].ns[j] / 1e9);
        }
    }
}

static void balloon_actual(GString *s, const char *name, const MetricsVm *v,
                           int64_t now_ms)
{
    (void)now_ms;
    if (v->snap->has_balloon && v->snap->actual >= 0) {
        sample_begin(s, name, v->snap);
        sample_end_u64(s, v->snap->actual);
    }
}

static void balloon_target(GString *s, const char *name, const MetricsVm *v,
                           int64_t now_ms)
{
    (void)now_ms;
    if (v->target_mib && v->target_mib <= G_MAXUINT64 / MIB) {
        sample_begin(s, name, v->snap);
        sample_end_u64(s, v->target_mib * MIB);
    }
}

static void balloon_flag(GString *s, const char *name, const MetricsVm *v,
                         int flag)
{
    if (flag >= 0) {
        sample_begin(s, name, v->snap);
        sample_end_u64(s, flag);
    }
}

static void balloon_fpr(GString *s, const char *name, const MetricsVm *v,
                        int64_t now_ms)
{
    (void)now_ms;
    balloon_flag(s, name, v, v->snap->balloon_fpr);
}

static void balloon_deflate(GString *s, const char *name,
                            const MetricsVm *v, int64_t now_ms)
{
    (void)now_ms;
    balloon_flag(s, name, v, v->snap->balloon_deflate);
}

/* The exported statistics (vm_stats[].label) of one kind, by label */
static void guest_stats(GString *s, const char *name, const MetricsVm *v,
                        bool level)
{
    uint64_t val;
    unsigned i;

    for (i = 0; i < VM_STATS_NR; i++) {
        if (vm_stats[i].label && vm_stats[i].level == level &&
            vm_snapshot_stat(v->snap, i, &val)) {
            sample_begin(s, name, v->snap);
            sample_label(s, "stat", vm_stats[i].label);
            sample_end_u64(s, val);
        }
    }
}

static void guest_memory(GString *s, const char *name, const MetricsVm *v,
                         int64_t now_ms)
{
    (void)now_ms;
    guest_stats(s, name, v, true);
}

static void guest_events(GString *s, const char *name, const MetricsVm *v,
                         int64_t now_ms)
{
    (void)now_ms;
    guest_stats(s, name, v, false);
}

static void guest_stats_age(GString *s, const char *name,
                            const MetricsVm *v, int64_t now_ms)
{
    int64_t age = vm_snapshot_stats_age_ms(v->snap, now_ms);

    if (age >= 0) {
        sample_begin(s, name, v->snap);
        sample_end_double(s, age / 1e3);
    }
}

static void decisions(GString *s, const char *name, const MetricsVm *v,
                      int64_t now_ms)
{
    unsigned r;

    (void)now_ms;
    for (r = 0; r < POLICY_REASON__MAX; r++) {
        sample_begin(s, name, v->snap);
        sample_label(s, "reason", policy_reason_names[r]);
        sample_end_u64(s, v->decisions[r]);
    }
}

static void vm_braked(GString *s, const char *name, const MetricsVm *v,
                      int64_t now_ms)
{
    (void)now_ms;
    sample_begin(s, name, v->snap);
    sample_end_u64(s, v->braked);
}

static void vm_brakes(GString *s, const char *name, const MetricsVm *v,
                      int64_t now_ms)
{
    (void)now_ms;
    sample_begin(s, name, v->snap);
    sample_end_u64(s, v->brakes);
}

typedef struct VmFamily {
    const char *name, *type, *help;
    VmSamplesFn *fn;
} VmFamily;

static const VmFamily vm_families[] = {
    { "qemu_oc_vm_responsive", "gauge",
      "1 if the VM answered its last request in time, else 0",
      vm_responsive },
    { "qemu_oc_vm_unresponsive_since_seconds", "gauge",
      "Since when the VM has not answered (Unix time), if it does not",
      vm_unresponsive_since },
    { "qemu_oc_vm_state_seconds_total", "counter",
      "Time the VM has spent in each VM runstate",
      vm_state_seconds },
    { "qemu_oc_vcpu_state_seconds_total", "counter",
      "Time each vCPU has spent in each vCPU state",
      vcpu_state_seconds },
    { "qemu_oc_vm_ready_ratio", "gauge",
      "CPU ready: the vCPUs' mean share of the last interval runnable but "
      "not running (esxtop %RDY; 0.05 significant, 0.10 hurting, 0.20 "
      "critical)", vm_ready },
    { "qemu_oc_vm_costop_ratio", "gauge",
      "Co-stop: the VM's share of the last interval in concurrency-hazard "
      "(some vCPUs run while others wait for a host CPU)", vm_costop },
    { "qemu_oc_vm_lock_holder_preemption_suspected", "gauge",
      "1 if lock-holder preemption is suspected over the last interval "
      "(co-stop >= 0.03 and >= 10 directed yields or >= 50 preemptions "
      "per vCPU per second; KVM only)", vm_lhp },
    { "qemu_oc_vcpu_directed_yields_total", "counter",
      "PV sched yields the vCPU asked KVM for (to a preempted vCPU it "
      "waits on), and those that yielded; KVM only", vcpu_yields },
    { "qemu_oc_vcpu_preemptions_total", "counter",
      "Times the host preempted the vCPU while it ran: reported to the "
      "guest (steal time), or not; KVM only", vcpu_preemptions },
    { "qemu_oc_balloon_actual_bytes", "gauge",
      "Memory the guest has with its balloon (balloon actual)",
      balloon_actual },
    { "qemu_oc_balloon_target_bytes", "gauge",
      "Balloon target last set by the daemon",
      balloon_target },
    { "qemu_oc_balloon_free_page_reporting", "gauge",
      "1 if the balloon reports the pages the guest frees, else 0",
      balloon_fpr },
    { "qemu_oc_balloon_deflate_on_oom", "gauge",
      "1 if the guest deflates the balloon before its own OOM kill, else 0",
      balloon_deflate },
    { "qemu_oc_guest_memory_bytes", "gauge",
      "The guest's memory statistics, as it last reported them",
      guest_memory },
    { "qemu_oc_guest_events_total", "counter",
      "The guest's event counters as it last reported them "
      "(swap_in and swap_out in bytes)",
      guest_events },
    { "qemu_oc_guest_stats_age_seconds", "gauge",
      "Age of the guest's last statistics report",
      guest_stats_age },
    { "qemu_oc_decisions_total", "counter",
      "Policy decisions for the VM, by reason",
      decisions },
    { "qemu_oc_vm_braked", "gauge",
      "1 while the daemon's brake holds the VM's vCPUs paused, else 0",
      vm_braked },
    { "qemu_oc_brakes_total", "counter",
      "How often the daemon's brake paused the VM",
      vm_brakes },
};

/* Family @name: HELP, TYPE and @samples, if there are any */
static void family_flush(GString *out, const char *name, const char *type,
                         const char *help, GString *samples)
{
    if (samples->len) {
        g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s",
                               name, help, name, type, samples->str);
    }
    g_string_truncate(samples, 0);
}

static void render_host(GString *out, GString *s, const HostMemory *host)
{
    if (host->total_kib && host->total_kib <= G_MAXUINT64 / 1024) {
        sample_begin(s, "qemu_oc_host_memory_bytes", NULL);
        sample_label(s, "kind", "total");
        sample_end_u64(s, host->total_kib * 1024);
        sample_begin(s, "qemu_oc_host_memory_bytes", NULL);
        sample_label(s, "kind", "available");
        sample_end_u64(s, MIN(host->available_kib, G_MAXUINT64 / 1024) *
                          1024);
    }
    family_flush(out, "qemu_oc_host_memory_bytes", "gauge",
                 "The host's MemTotal and MemAvailable", s);
    sample_begin(s, "qemu_oc_host_memory_pressure", NULL);
    sample_end_u64(s, host->pressure);
    family_flush(out, "qemu_oc_host_memory_pressure", "gauge",
                 "1 while the host is under memory pressure, else 0", s);
    sample_begin(s, "qemu_oc_host_psi_some_avg10", NULL);
    sample_end_double(s, host->psi_some_avg10);
    family_flush(out, "qemu_oc_host_psi_some_avg10", "gauge",
                 "The host's memory PSI \"some\" avg10 (percent of time)",
                 s);
}

void metrics_domain_free(gpointer p)
{
    MetricsDomain *d = p;

    g_free(d->dir);
    g_free(d);
}

static void domain_sample(GString *s, const char *name,
                          const MetricsDomain *d, const char *kind)
{
    sample_begin(s, name, NULL);
    sample_label(s, "domain", d->dir);
    if (kind) {
        sample_label(s, "kind", kind);
    }
}

static void render_domains(GString *out, GString *s, GPtrArray *domains)
{
    unsigned i;

    for (i = 0; i < domains->len; i++) {
        const MetricsDomain *d = g_ptr_array_index(domains, i);

        if (d->st.limit != UINT64_MAX) {
            domain_sample(s, "qemu_oc_domain_memory_bytes", d, "limit");
            sample_end_u64(s, d->st.limit);
        }
        domain_sample(s, "qemu_oc_domain_memory_bytes", d, "usage");
        sample_end_u64(s, d->st.usage);
        domain_sample(s, "qemu_oc_domain_memory_bytes", d, "reclaimable");
        sample_end_u64(s, d->st.reclaimable);
        domain_sample(s, "qemu_oc_domain_memory_bytes", d, "reserve");
        sample_end_u64(s, MIN(d->reserve_mib, G_MAXUINT64 / MIB) * MIB);
    }
    family_flush(out, "qemu_oc_domain_memory_bytes", "gauge",
                 "A memory domain's (cgroup's) limit, usage, reclaimable "
                 "page cache, and the headroom the daemon keeps (reserve)", s);
    for (i = 0; i < domains->len; i++) {
        const MetricsDomain *d = g_ptr_array_index(domains, i);

        domain_sample(s, "qemu_oc_domain_headroom_bytes", d, NULL);
        sample_end_double(s, (double)d->st.headroom);
    }
    family_flush(out, "qemu_oc_domain_headroom_bytes", "gauge",
                 "Limit - usage + reclaimable: what can still be charged "
                 "before the OOM killer (negative: over)", s);
    for (i = 0; i < domains->len; i++) {
        const MetricsDomain *d = g_ptr_array_index(domains, i);

        domain_sample(s, "qemu_oc_domain_oom_kills_total", d, NULL);
        sample_end_u64(s, d->st.oom_kills);
    }
    family_flush(out, "qemu_oc_domain_oom_kills_total", "counter",
                 "OOM kills the kernel counted in the memory domain", s);
}

char *metrics_render(GPtrArray *vms, const HostMemory *host,
                     GPtrArray *domains, int64_t now_ms)
{
    GString *out = g_string_new(NULL);
    g_autoptr(GString) s = g_string_new(NULL);
    unsigned f, i;

    for (f = 0; f < G_N_ELEMENTS(vm_families); f++) {
        for (i = 0; vms && i < vms->len; i++) {
            const MetricsVm *v = g_ptr_array_index(vms, i);

            if (v && v->snap) {
                vm_families[f].fn(s, vm_families[f].name, v, now_ms);
            }
        }
        family_flush(out, vm_families[f].name, vm_families[f].type,
                     vm_families[f].help, s);
    }
    if (host) {
        render_host(out, s, host);
    }
    if (domains) {
        render_domains(out, s, domains);
    }
    return g_string_free(out, false);
}

/* ---- HTTP ---- */

static void metrics_vm_free(gpointer p)
{
    MetricsVm *v = p;

    vm_snapshot_unref((VmSnapshot *)v->snap);
    g_free(v);
}

static char *collect_page(Metrics *m)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new_with_free_func(
        metrics_vm_free);
    g_autoptr(GPtrArray) domains = g_ptr_array_new_with_free_func(
        metrics_domain_free);
    HostMemory host = { 0 };

    m->collect(m->opaque, vms, &host, domains);
    return metrics_render(vms, &host, domains, g_get_real_time() / 1000);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status,
                               const char *type, char *body /* owned */)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer_with_free_callback(strlen(body),
                                                           body, g_free);
    if (!r) {
        g_free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c,
                                      const char *url, const char *method,
                                      const char *version,
                                      const char *upload_data,
                                      size_t *upload_data_size,
                                      void **con_cls)
{
    Metrics *m = cls;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (strcmp(url, "/metrics")) {
        return respond(c, MHD_HTTP_NOT_FOUND, "text/plain",
                       g_strdup("not found\n"));
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) &&
        strcmp(method, MHD_HTTP_METHOD_HEAD)) {
        return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                       g_strdup("method not allowed\n"));
    }
    return respond(c, MHD_HTTP_OK, CONTENT_TYPE, collect_page(m));
}

GQuark metrics_error_quark(void)
{
    return g_quark_from_static_string("metrics-error");
}

/* libmicrohttpd's messages: kept while starting, then logged */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    Metrics *m = cls;
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);

    g_strchomp(msg);
    if (g_atomic_int_get(&m->starting)) {
        g_string_append_printf(m->start_log, "%s%s",
                               m->start_log->len ? "; " : "", msg);
    } else {
        g_message("metrics %s: %s", m->addr_port, msg);
    }
}

/*
 * "ADDR:PORT", "[IPV6]:PORT" or ":PORT" (every address, IPv6 and IPv4):
 * a numeric address (no name is looked up) and a port 1..65535
 */
static GSocketAddress *parse_listen(const char *addr_port, GError **err)
{
    g_autoptr(GSocketConnectable) na = NULL;
    g_autoptr(GInetAddress) inet = NULL;
    const char *host = "::";
    guint64 port = 0;

    if (addr_port && addr_port[0] == ':' && addr_port[1] != ':') {
        /* (a port alone: GLib would take its digits for a host name) */
        if (!g_ascii_string_to_unsigned(addr_port + 1, 10, 1, 65535, &port,
                                        NULL)) {
            port = 0;
        }
    } else if (addr_port) {
        na = g_network_address_parse(addr_port, 0, NULL);
        if (na) {
            host = g_network_address_get_hostname(G_NETWORK_ADDRESS(na));
            port = g_network_address_get_port(G_NETWORK_ADDRESS(na));
        }
    }
    inet = port ? g_inet_address_new_from_string(host) : NULL;
    if (!inet) {
        g_set_error(err, METRICS_ERROR, METRICS_ERROR_ADDRESS,
                    "metrics: \"%s\" is not ADDR:PORT, [IPV6]:PORT or :PORT "
                    "(a numeric address, a port 1-65535)",
                    addr_port ? addr_port : "");
        return NULL;
    }
    return g_inet_socket_address_new(inet, port);
}

/* libmicrohttpd listening on @sa (and IPv4 too if it is IPv6's any) */
static struct MHD_Daemon *listen_on(Metrics *m, GSocketAddress *sa,
                                    GError **err)
{
    GInetAddress *inet = g_inet_socket_address_get_address(
        G_INET_SOCKET_ADDRESS(sa));
    bool v6 = g_inet_address_get_family(inet) == G_SOCKET_FAMILY_IPV6;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_storage ss;

    if (!g_socket_address_to_native(sa, &ss, sizeof(ss), err)) {
        return NULL;
    }
    if (v6) {
        flags |= g_inet_address_get_is_any(inet) ? MHD_USE_DUAL_STACK
                                                 : MHD_USE_IPv6;
    }
    return MHD_start_daemon(
        flags, g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(sa)),
        NULL, NULL, handle_request, m,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, m,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
        MHD_OPTION_END);
}

Metrics *metrics_start(const char *addr_port, MetricsCollectFn *collect,
                       void *opaque, GError **err)
{
    g_autoptr(GSocketAddress) sa = parse_listen(addr_port, err);
    Metrics *m;

    if (!sa) {
        return NULL;
    }
    m = g_new0(Metrics, 1);
    m->collect = collect;
    m->opaque = opaque;
    m->addr_port = g_strdup(addr_port);
    m->start_log = g_string_new(NULL);
    g_atomic_int_set(&m->starting, 1);
    m->daemon = listen_on(m, sa, err);
    g_atomic_int_set(&m->starting, 0);
    if (!m->daemon) {
        if (err && !*err) {
            g_set_error(err, METRICS_ERROR, METRICS_ERROR_LISTEN,
                        "metrics: cannot listen on %s: %s", addr_port,
                        m->start_log->len ? m->start_log->str
                                          : "libmicrohttpd failed to start");
        }
        metrics_stop(m);
        return NULL;
    }
    return m;
}

void metrics_stop(Metrics *m)
{
    if (!m) {
        return;
    }
    if (m->daemon) {
        MHD_stop_daemon(m->daemon);
    }
    g_string_free(m->start_log, true);
    g_free(m->addr_port);
    g_free(m);
}
