/*
 * vmtop: one frame of the fleet as text lines and as JSON
 *
 * The batch mode prints these lines; the curses view draws the same
 * lines, one per screen row.  Every number comes from a snapshot that a
 * worker published: nothing here waits for a VM.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "view.h"

#define NAME_WIDTH (VIEW_NAME_COLS - 1)

/* Short forms of the VM states, in vm_state_names' order */
static const struct {
    const char *name, *abbrev;
} vm_state_abbrevs[] = {
    { "full-run", "full-run" },
    { "full-contention", "full-cont" },
    { "concurrency-hazard", "hazard" },
    { "blocked", "blocked" },
    { "partial-run", "part-run" },
    { "partial-contention", "part-cont" },
};

/* Short forms of the KVM PV features */
static const struct {
    const char *name;
    char letter;
} pv_letters[] = {
    { "pv-unhalt", 'U' },
    { "pv-sched-yield", 'Y' },
    { "steal-time", 'S' },
    { "dedicated-hint", 'D' },
};

/* The index of @name in @names, -1 if absent */
static int name_index(const char *const *names, int n, const char *name)
{
    int i;

    for (i = 0; i < n; i++) {
        if (names[i] && !strcmp(names[i], name)) {
            return i;
        }
    }
    return -1;
}

static int stat_index(const char *name)
{
    return name_index(vm_stat_names, VM_STATS_NR, name);
}

static int vm_state_index(const char *name)
{
    return name_index(vm_state_names, VM_STATES_NR, name);
}

static int vcpu_state_index(const char *name)
{
    return name_index(vcpu_state_names, VCPU_STATES_NR, name);
}

static const char *vm_state_abbrev(int state)
{
    size_t i;

    if (state < 0 || state >= VM_STATES_NR) {
        return "-";
    }
    for (i = 0; i < G_N_ELEMENTS(vm_state_abbrevs); i++) {
        if (!strcmp(vm_state_abbrevs[i].name, vm_state_names[state])) {
            return vm_state_abbrevs[i].abbrev;
        }
    }
    return vm_state_names[state];
}

/* Has the guest reported statistic @name?  Its value in @val */
static bool stat_get(const VmSnapshot *s, const char *name, uint64_t *val)
{
    int i = stat_index(name);

    if (!s->has_stats || i < 0 || !(s->stats_mask & (1u << i))) {
        return false;
    }
    *val = s->stats[i];
    return true;
}

static bool stat_rate(const VmSnapshot *s, const char *name, double *rate)
{
    int i = stat_index(name);

    return i >= 0 && s->has_stats && vm_snapshot_stat_rate(s, i, rate);
}

/* The mean running and runnable (ready) shares of the vCPUs */
static void vm_compute_vcpu_mean(ViewVm *v)
{
    double sh[VCPU_STATES_NR];
    unsigned i, n = 0;

    v->run = v->rdy = 0;
    if (!vm_snapshot_ready(v->s, &v->rdy)) {
        return;
    }
    for (i = 0; i < v->s->cur.n_vcpus; i++) {
        if (vm_snapshot_vcpu_shares(v->s, i, sh)) {
            v->run += sh[VCPU_STATE_RUNNING];
            n++;
        }
    }
    v->has_vcpu_mean = n > 0;
    v->run /= MAX(n, 1);
}

static ViewVm *view_vm_new(VmSnapshot *s, int64_t now_ms)
{
    ViewVm *v = g_new0(ViewVm, 1);

    v->s = s;
    v->has_shares = s->has_runstates && vm_snapshot_vm_shares(s, v->shares);
    vm_compute_vcpu_mean(v);
    v->age_ms = s->has_stats ? vm_snapshot_stats_age_ms(s, now_ms) : -1;
    return v;
}

static void view_vm_free(gpointer p)
{
    ViewVm *v = p;

    vm_snapshot_unref(v->s);
    g_free(v);
}

ViewFrame *view_frame_new(GPtrArray *snaps, int64_t now_ms)
{
    ViewFrame *f = g_new0(ViewFrame, 1);
    guint i;

    f->now_ms = now_ms;
    f->vms = g_ptr_array_new_full(snaps->len, view_vm_free);
    for (i = 0; i < snaps->len; i++) {
        VmSnapshot *s = g_ptr_array_index(snaps, i);

        g_ptr_array_add(f->vms, view_vm_new(s, now_ms));
        if (s->responsive) {
            f->responsive++;
        } else {
            f->unresponsive++;
        }
    }
    /* the references moved to the frame */
    g_ptr_array_set_free_func(snaps, NULL);
    g_ptr_array_free(snaps, true);
    return f;
}

ViewFrame *view_frame_from(VmtopSource *src, int64_t now_ms)
{
    ViewFrame *f = view_frame_new(vmtop_source_snapshots(src), now_ms);

    f->source = vmtop_source_status(src);
    f->source_json = vmtop_source_to_json(src);
    return f;
}

void view_frame_free(ViewFrame *f)
{
    if (f) {
        g_ptr_array_free(f->vms, true);
        g_free(f->source);
        json_object_put(f->source_json);
        g_free(f);
    }
}

/* Sorting */

bool view_sort_key_valid(char key)
{
    return key && strchr(VIEW_SORT_KEYS, key);
}

static const char *sort_key_name(char key)
{
    switch (key) {
    case 'n': return "name";
    case 's': return "state";
    case 'f': return "full-run";
    case 'c': return "contention";
    case 'h': return "hazard";
    case 'b': return "blocked";
    case 'm': return "available memory";
    case 'a': return "stats age";
    case 'u': return "unresponsive";
    case 'y': return "ready";
    default: return "?";
    }
}

static bool share_of(const ViewVm *v, const char *state, double *out)
{
    int i = vm_state_index(state);

    if (!v->has_shares || i < 0) {
        return false;
    }
    *out = v->shares[i];
    return true;
}

/* The VM's state as a rank: the VM states in order, then no data, error */
static double state_rank(const ViewVm *v)
{
    const VmSnapshot *s = v->s;

    if (!s->responsive) {
        return s->unresponsive_since_us ? VM_STATES_NR + 2 : VM_STATES_NR + 1;
    }
    if (s->has_runstates && s->cur.vm_state >= 0) {
        return s->cur.vm_state;
    }
    return VM_STATES_NR;
}

/*
 * The value VMs are sorted by, in ascending order (so the descending
 * ones are negated); false if the VM has none
 */
static bool sort_value(const ViewVm *v, char key, double *out)
{
    double a, b;
    uint64_t avail;

    switch (key) {
    case 's':
        *out = state_rank(v);
        return true;
    case 'f':
    case 'h':
    case 'b':
        if (!share_of(v, key == 'f' ? "full-run" :
                      key == 'h' ? "concurrency-hazard" : "blocked", &a)) {
            return false;
        }
        *out = -a;
        return true;
    case 'c':
        if (!share_of(v, "full-contention", &a) ||
            !share_of(v, "partial-contention", &b)) {
            return false;
        }
        *out = -(a + b);
        return true;
    case 'm':
        if (!stat_get(v->s, "available-memory", &avail)) {
            return false;
        }
        *out = avail;
        return true;
    case 'a':
        if (v->age_ms < 0) {
            return false;
        }
        *out = -(double)v->age_ms;
        return true;
    case 'y':
        if (!v->has_vcpu_mean) {
            return false;
        }
        *out = -v->rdy;
        return true;
    case 'u':
        /* unresponsive first, the longest unresponsive first of them */
        *out = v->s->responsive ? 1e300 : (double)v->s->unresponsive_since_us;
        return true;
    default:
        return false;
    }
}

typedef struct SortOrder {
    char key;
    bool reverse;
} SortOrder;

static gint compare_vms(gconstpointer pa, gconstpointer pb, gpointer opaque)
{
    const ViewVm *a = *(ViewVm *const *)pa;
    const ViewVm *b = *(ViewVm *const *)pb;
    const SortOrder *o = opaque;
    double va = 0, vb = 0;
    bool ha, hb;
    int c = 0;

    if (o->key != 'n') {
        ha = sort_value(a, o->key, &va);
        hb = sort_value(b, o->key, &vb);
        if (ha != hb) {
            return ha ? -1 : 1;         /* missing values last */
        }
        c = va < vb ? -1 : va > vb ? 1 : 0;
        if (o->reverse) {
            c = -c;
        }
    }
    if (!c) {
        c = g_strcmp0(a->s->name, b->s->name);
        if (o->key == 'n' && o->reverse) {
            c = -c;
        }
    }
    return c;
}

void view_frame_sort(ViewFrame *f, char key, bool reverse)
{
    SortOrder o = { .key = key, .reverse = reverse };

    g_ptr_array_sort_with_data(f->vms, compare_vms, &o);
}

/* Formatting */

/* A share as a percentage in @width columns, or "-" */
static void put_pct(GString *g, int width, bool ok, double share)
{
    if (ok) {
        g_string_append_printf(g, " %*.1f", width, share * 100);
    } else {
        g_string_append_printf(g, " %*s", width, "-");
    }
}

/* A ready share with its band's mark: + significant, ! hurting, !! critical */
static void put_ready(GString *g, bool ok, double share)
{
    if (ok) {
        g_string_append_printf(g, " %5.1f%-2s", share * 100,
                               vm_ready_band_marks[vm_ready_band(share)]);
    } else {
        g_string_append_printf(g, " %5s  ", "-");
    }
}

static void put_mib(GString *g, int width, bool ok, uint64_t bytes)
{
    if (ok) {
        g_string_append_printf(g, " %*" G_GUINT64_FORMAT, width,
                               bytes >> 20);
    } else {
        g_string_append_printf(g, " %*s", width, "-");
    }
}

/* A non-negative number in a few characters: 0.5, 12, 340, 12K, 3.4M */
static void format_compact(char *buf, size_t len, double x, double base)
{
    static const char suffix[] = " KMGTP";
    int i = 0;

    while (x >= 9999.5 && suffix[i + 1]) {
        x /= base;
        i++;
    }
    if (i == 0) {
        bool frac = x < 9.95 && x != (double)(int64_t)x;

        g_snprintf(buf, len, frac ? "%.1f" : "%.0f", x);
    } else {
        g_snprintf(buf, len, x < 9.95 ? "%.1f%c" : "%.0f%c", x, suffix[i]);
    }
}

static void put_rate(GString *g, int width, bool ok, double x, double base)
{
    char buf[32];

    if (ok && x >= 0) {
        format_compact(buf, sizeof(buf), x, base);
        g_string_append_printf(g, " %*s", width, buf);
    } else {
        g_string_append_printf(g, " %*s", width, "-");
    }
}

/* A duration in a few characters: 12s, 5m, 3h, 2d */
static void format_duration(char *buf, size_t len, int64_t s)
{
    if (s < 0) {
        s = 0;
    }
    if (s < 100) {
        g_snprintf(buf, len, "%" G_GINT64_FORMAT "s", s);
    } else if (s < 100 * 60) {
        g_snprintf(buf, len, "%" G_GINT64_FORMAT "m", s / 60);
    } else if (s < 100 * 3600) {
        g_snprintf(buf, len, "%" G_GINT64_FORMAT "h", s / 3600);
    } else {
        g_snprintf(buf, len, "%" G_GINT64_FORMAT "d", s / 86400);
    }
}

static void put_age(GString *g, int width, int64_t age_ms)
{
    char buf[32];

    if (age_ms < 0) {
        g_snprintf(buf, sizeof(buf), "-");
    } else if (age_ms < 100000) {
        g_snprintf(buf, sizeof(buf), "%.1f", age_ms / 1000.0);
    } else {
        format_duration(buf, sizeof(buf), age_ms / 1000);
    }
    g_string_append_printf(g, " %*s", width, buf);
}

/* The VM's STATE column */
static void format_state(char *buf, size_t len, const VmSnapshot *s,
                         int64_t now_ms)
{
    char dur[16];

    if (!s->responsive && s->unresponsive_since_us) {
        format_duration(dur, sizeof(dur),
                        (now_ms - s->unresponsive_since_us / 1000) / 1000);
        g_snprintf(buf, len, "UNRESP %s", dur);
    } else if (!s->responsive && !s->error) {
        g_snprintf(buf, len, "starting");   /* no answer asked for yet */
    } else if (!s->responsive ||
               (s->error && !s->has_runstates && !s->has_balloon)) {
        g_snprintf(buf, len, "ERROR");
    } else if (s->has_runstates) {
        g_snprintf(buf, len, "%s", vm_state_abbrev(s->cur.vm_state));
    } else {
        g_snprintf(buf, len, "-");
    }
}

/* "pv-unhalt pv-sched-yield steal-time" -> "UYS"; "-" if none */
static void format_pv(char *buf, size_t len, const VmSnapshot *s)
{
    g_auto(GStrv) words = NULL;
    size_t n = 0, j;
    int i;

    if (s->has_runstates && s->cur.kvm_pv) {
        words = g_strsplit_set(s->cur.kvm_pv, " ,", -1);
        for (i = 0; words[i] && n + 1 < len; i++) {
            if (!*words[i]) {
                continue;
            }
            buf[n] = '?';
            for (j = 0; j < G_N_ELEMENTS(pv_letters); j++) {
                if (!strcmp(words[i], pv_letters[j].name)) {
                    buf[n] = pv_letters[j].letter;
                }
            }
            n++;
        }
    }
    if (!n) {
        buf[n++] = '-';
    }
    buf[n] = '\0';
}

/*
 * The balloon's features: F free page reporting, D deflate-on-oom, '-'
 * neither, '?' not known (no balloon, or the VM could not be asked)
 */
static void format_balloon(char *buf, size_t len, const VmSnapshot *s)
{
    if (s->balloon_fpr < 0 && s->balloon_deflate < 0) {
        g_strlcpy(buf, "?", len);
        return;
    }
    g_snprintf(buf, len, "%s%s%s", s->balloon_fpr > 0 ? "F" : "",
               s->balloon_deflate > 0 ? "D" : "",
               s->balloon_fpr <= 0 && s->balloon_deflate <= 0 ? "-" : "");
}

static void put_name(GString *g, const char *name)
{
    size_t len = strlen(name ? name : "");

    if (len <= NAME_WIDTH) {
        g_string_append_printf(g, "%-*s", NAME_WIDTH, name ? name : "");
    } else {
        g_string_append_len(g, name, NAME_WIDTH - 1);
        g_string_append_c(g, '~');
    }
}

const char *view_vm_titles(void)
{
    return "NAME             STATE      FULL% CONT%  HAZ%  BLK% PRUN% PCON%"
           " VCPU  RUN%  RDY%   CSTP%  ACTUAL   TOTAL   AVAIL    FREE MAJF/s"
           " SWAPIN/s   AGE  BAL   PV  SRC";
}

char *view_vm_line(const ViewVm *v, int64_t now_ms)
{
    const VmSnapshot *s = v->s;
    GString *g = g_string_new(NULL);
    static const char *const cols[] = {
        "full-run", "full-contention", "concurrency-hazard",
        "blocked", "partial-run", "partial-contention",
    };
    char buf[64];
    uint64_t val = 0;
    double rate = 0, sh = 0;
    bool ok;
    size_t i;

    put_name(g, s->name);
    format_state(buf, sizeof(buf), s, now_ms);
    g_string_append_printf(g, " %-10s", buf);
    for (i = 0; i < G_N_ELEMENTS(cols); i++) {
        ok = share_of(v, cols[i], &sh);
        put_pct(g, 5, ok, sh);
    }
    if (s->has_runstates) {
        g_string_append_printf(g, " %4u", s->cur.n_vcpus);
    } else {
        g_string_append_printf(g, " %4s", "-");
    }
    put_pct(g, 5, v->has_vcpu_mean, v->run);
    put_ready(g, v->has_vcpu_mean, v->rdy);
    ok = share_of(v, "concurrency-hazard", &sh);
    put_pct(g, 5, ok, sh);
    put_mib(g, 7, s->has_balloon, s->actual > 0 ? s->actual : 0);
    ok = stat_get(s, "total-memory", &val);
    put_mib(g, 7, ok, val);
    ok = stat_get(s, "available-memory", &val);
    put_mib(g, 7, ok, val);
    ok = stat_get(s, "free-memory", &val);
    put_mib(g, 7, ok, val);
    ok = stat_rate(s, "major-faults", &rate);
    put_rate(g, 6, ok, rate, 1000);
    ok = stat_rate(s, "swap-in", &rate);          /* bytes per second */
    put_rate(g, 8, ok, rate, 1024);
    put_age(g, 5, v->age_ms);
    format_balloon(buf, sizeof(buf), s);
    g_string_append_printf(g, " %4s", buf);
    format_pv(buf, sizeof(buf), s);
    g_string_append_printf(g, " %4s", buf);
    g_string_append_printf(g, "  %s", s->has_runstates && s->cur.source ?
                           s->cur.source : "-");
    return g_string_free(g, false);
}

const char *view_vcpu_titles(void)
{
    return "    vCPU   THREAD  STATE       RUN%   RDY%     BLK%   OFF%"
           "     TRANS  TRANS/s";
}

/* vCPU @i's transitions per second over the last interval */
static bool vcpu_transition_rate(const VmSnapshot *s, unsigned i,
                                 double *rate)
{
    const VmRunstatesSample *c = &s->cur, *p = &s->prev;

    if (!s->has_prev || i >= p->n_vcpus || c->elapsed_ns <= p->elapsed_ns ||
        c->vcpu[i].thread_id != p->vcpu[i].thread_id ||
        c->vcpu[i].transitions < p->vcpu[i].transitions) {
        return false;
    }
    *rate = (c->vcpu[i].transitions - p->vcpu[i].transitions) * 1e9 /
            (c->elapsed_ns - p->elapsed_ns);
    return true;
}

static char *vcpu_line(const VmSnapshot *s, unsigned i)
{
    GString *g = g_string_new(NULL);
    int st = s->cur.vcpu[i].state;
    double sh[VCPU_STATES_NR];
    const char *order[] = { "running", "runnable", "blocked", "offline" };
    bool ok = vm_snapshot_vcpu_shares(s, i, sh);
    double rate = 0;
    size_t k;
    int j;

    g_string_append_printf(g, "    %4" G_GINT64_FORMAT " %8" G_GINT64_FORMAT
                           "  %-9s", s->cur.vcpu[i].index,
                           s->cur.vcpu[i].thread_id,
                           st >= 0 && st < VCPU_STATES_NR ?
                           vcpu_state_names[st] : "-");
    for (k = 0; k < G_N_ELEMENTS(order); k++) {
        j = vcpu_state_index(order[k]);
        if (j == VCPU_STATE_RUNNABLE) {
            g_string_append_c(g, ' ');
            put_ready(g, ok, sh[j]);
            continue;
        }
        put_pct(g, 6, ok && j >= 0, j >= 0 ? sh[j] : 0);
    }
    g_string_append_printf(g, " %9" G_GUINT64_FORMAT,
                           s->cur.vcpu[i].transitions);
    ok = vcpu_transition_rate(s, i, &rate);
    put_rate(g, 8, ok, rate, 1000);
    return g_string_free(g, false);
}

void view_vm_detail(const ViewVm *v, GPtrArray *out)
{
    const VmSnapshot *s = v->s;
    const VmRunstatesSample *c = &s->cur;
    unsigned i;

    g_ptr_array_add(out, g_strdup_printf("    at %s",
                                         s->where ? s->where : "-"));
    if (s->error) {
        g_ptr_array_add(out, g_strdup_printf("    error: %s", s->error));
    }
    if (!s->has_runstates) {
        return;
    }
    g_ptr_array_add(out, g_strdup_printf(
        "    method %s, source %s%s%s%s, missed changes %" G_GUINT64_FORMAT
        ", KVM PV: %s",
        c->method ? c->method : "-", c->source ? c->source : "-",
        c->source_reason ? " (" : "",
        c->source_reason ? c->source_reason : "",
        c->source_reason ? ")" : "", c->missed_changes,
        c->kvm_pv && *c->kvm_pv ? c->kvm_pv : "none"));
    g_ptr_array_add(out, g_strdup(view_vcpu_titles()));
    for (i = 0; i < c->n_vcpus; i++) {
        g_ptr_array_add(out, vcpu_line(s, i));
    }
}

char *view_header(const ViewFrame *f, char sort, bool reverse)
{
    g_autoptr(GDateTime) dt =
        g_date_time_new_from_unix_local(f->now_ms / 1000);
    g_autofree char *t = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S")
                            : g_strdup("?");

    return g_strdup_printf("vmtop %s  %u VMs: %u responsive, %u "
                           "unresponsive  sort: %s%s%s%s", t, f->vms->len,
                           f->responsive, f->unresponsive,
                           sort_key_name(sort), reverse ? " (reversed)" : "",
                           f->source ? "  via " : "",
                           f->source ? f->source : "");
}

void view_frame_print(const ViewFrame *f, FILE *out, char sort,
                      bool reverse, bool expand)
{
    g_autofree char *header = view_header(f, sort, reverse);
    g_autoptr(GPtrArray) detail = g_ptr_array_new_with_free_func(g_free);
    guint i, j;

    fprintf(out, "%s\n%s\n", header, view_vm_titles());
    for (i = 0; i < f->vms->len; i++) {
        const ViewVm *v = g_ptr_array_index(f->vms, i);
        g_autofree char *line = view_vm_line(v, f->now_ms);

        fprintf(out, "%s\n", line);
        if (expand) {
            g_ptr_array_set_size(detail, 0);
            view_vm_detail(v, detail);
            for (j = 0; j < detail->len; j++) {
                fprintf(out, "%s\n", (char *)g_ptr_array_index(detail, j));
            }
        }
    }
}

json_object *view_frame_to_json(const ViewFrame *f)
{
    json_object *o = json_object_new_object();
    json_object *vms = json_object_new_array();
    guint i;

    for (i = 0; i < f->vms->len; i++) {
        const ViewVm *v = g_ptr_array_index(f->vms, i);

        json_object_array_add(vms, vm_snapshot_to_json(v->s, f->now_ms));
    }
    json_object_object_add(o, "vms", vms);
    json_object_object_add(o, "time", json_object_new_int64(f->now_ms));
    if (f->source_json) {
        json_object_object_add(o, "source",
                               json_object_get(f->source_json));
    }
    return o;
}
