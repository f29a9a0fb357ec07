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

/* The group a VM is shown in: its libvirt URI, or its socket's directory */
static char *host_of(const char *where)
{
    if (!where || !*where) {
        return g_strdup("-");
    }
    if (strstr(where, ":/")) {
        return g_strdup(where);
    }
    return g_path_get_dirname(where);
}

static ViewVm *view_vm_new(VmSnapshot *s, int64_t now_ms)
{
    ViewVm *v = g_new0(ViewVm, 1);

    v->s = s;
    v->has_shares = s->has_runstates && vm_snapshot_vm_shares(s, v->shares);
    vm_compute_vcpu_mean(v);
    v->age_ms = s->has_stats ? vm_snapshot_stats_age_ms(s, now_ms) : -1;
    v->host = host_of(s->where);
    v->has_lhp = vm_snapshot_lhp(s, &v->lhp);
    return v;
}

static void view_vm_free(gpointer p)
{
    ViewVm *v = p;

    vm_snapshot_unref(v->s);
    g_free(v->host);
    g_free(v);
}

ViewFrame *view_frame_new(GPtrArray *snaps, int64_t now_ms)
{
    ViewFrame *f = g_new0(ViewFrame, 1);
    guint i;

    f->now_ms = now_ms;
    f->vms = g_ptr_array_new_full(snaps->len, view_vm_free);
    f->total = snaps->len;
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
        g_free(f->filter);
        json_object_put(f->source_json);
        g_free(f);
    }
}

/* Filter and sort */

bool view_name_matches(const char *name, const char *pattern)
{
    g_autofree char *n = NULL, *p = NULL;

    if (!pattern || !*pattern) {
        return true;
    }
    n = g_utf8_casefold(name ? name : "", -1);
    p = g_utf8_casefold(pattern, -1);
    if (strpbrk(p, "*?")) {
        return g_pattern_match_simple(p, n);
    }
    return strstr(n, p) != NULL;
}

static void count_responsive(ViewFrame *f)
{
    guint i;

    f->responsive = f->unresponsive = 0;
    for (i = 0; i < f->vms->len; i++) {
        const ViewVm *v = g_ptr_array_index(f->vms, i);

        if (v->s->responsive) {
            f->responsive++;
        } else {
            f->unresponsive++;
        }
    }
}

void view_frame_filter(ViewFrame *f, const char *pattern)
{
    guint i = 0;

    g_free(f->filter);
    f->filter = pattern && *pattern ? g_strdup(pattern) : NULL;
    while (i < f->vms->len) {
        const ViewVm *v = g_ptr_array_index(f->vms, i);

        if (view_name_matches(v->s->name, pattern)) {
            i++;
        } else {
            g_ptr_array_remove_index(f->vms, i);
        }
    }
    count_responsive(f);
}

typedef struct SortOrder {
    const ViewLayout *l;
    bool grouped;
    int64_t now_ms;
} SortOrder;

static gint compare_vms(gconstpointer pa, gconstpointer pb, gpointer opaque)
{
    const ViewVm *a = *(ViewVm *const *)pa;
    const ViewVm *b = *(ViewVm *const *)pb;
    const SortOrder *o = opaque;
    int c = 0;

    if (o->grouped) {
        c = g_strcmp0(a->host, b->host);
    }
    if (!c) {
        c = view_column_compare(o->l->sort, a, b, o->now_ms, o->l->reverse);
    }
    if (!c) {
        c = view_column_compare(VIEW_COL_NAME, a, b, o->now_ms, false);
    }
    return c;
}

void view_frame_sort(ViewFrame *f, const ViewLayout *l)
{
    SortOrder o = { .l = l, .now_ms = f->now_ms };
    guint i;

    f->grouped = false;
    for (i = 1; i < f->vms->len; i++) {
        const ViewVm *a = g_ptr_array_index(f->vms, 0);
        const ViewVm *b = g_ptr_array_index(f->vms, i);

        f->grouped |= g_strcmp0(a->host, b->host) != 0;
    }
    o.grouped = f->grouped;
    g_ptr_array_sort_with_data(f->vms, compare_vms, &o);
}

/* Lines */

char *view_titles(const ViewColumnId *cols, unsigned n)
{
    GString *g = g_string_new(NULL);
    unsigned i;

    for (i = 0; i < n; i++) {
        view_column_put_title(cols[i], g);
    }
    return g_strchomp(g_string_free(g, false));
}

char *view_vm_line(const ViewVm *v, int64_t now_ms,
                   const ViewColumnId *cols, unsigned n)
{
    GString *g = g_string_new(NULL);
    unsigned i;

    for (i = 0; i < n; i++) {
        view_column_put_cell(cols[i], v, now_ms, g);
    }
    return g_strchomp(g_string_free(g, false));
}

char *view_group_line(const ViewFrame *f, guint i)
{
    const ViewVm *v = g_ptr_array_index(f->vms, i);
    const ViewVm *prev = i ? g_ptr_array_index(f->vms, i - 1) : NULL;
    unsigned n = 0, down = 0;
    guint j;

    if (!f->grouped || (prev && !g_strcmp0(prev->host, v->host))) {
        return NULL;
    }
    for (j = i; j < f->vms->len; j++) {
        const ViewVm *w = g_ptr_array_index(f->vms, j);

        if (g_strcmp0(w->host, v->host)) {
            break;
        }
        n++;
        down += !w->s->responsive;
    }
    return g_strdup_printf("== %s: %u VM%s, %u unresponsive", v->host, n,
                           n == 1 ? "" : "s", down);
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
    static const int order[] = {
        VCPU_STATE_RUNNING, VCPU_STATE_RUNNABLE, VCPU_STATE_BLOCKED,
        VCPU_STATE_OFFLINE,
    };
    bool ok = vm_snapshot_vcpu_shares(s, i, sh);
    double rate = 0;
    size_t k;

    g_string_append_printf(g, "    %4" G_GINT64_FORMAT " %8" G_GINT64_FORMAT
                           "  %-9s", s->cur.vcpu[i].index,
                           s->cur.vcpu[i].thread_id,
                           st >= 0 && st < VCPU_STATES_NR ?
                           vcpu_state_names[st] : "-");
    for (k = 0; k < G_N_ELEMENTS(order); k++) {
        if (order[k] == VCPU_STATE_RUNNABLE) {
            g_string_append_c(g, ' ');
            view_put_ready(g, ok, sh[order[k]]);
            continue;
        }
        view_put_share(g, 6, ok, sh[order[k]]);
    }
    g_string_append_printf(g, " %9" G_GUINT64_FORMAT,
                           s->cur.vcpu[i].transitions);
    ok = vcpu_transition_rate(s, i, &rate);
    view_put_rate(g, 8, ok, rate, 1000);
    return g_string_free(g, false);
}

void view_vm_detail(const ViewVm *v, GPtrArray *out)
{
    const VmSnapshot *s = v->s;
    const VmRunstatesSample *c = &s->cur;
    g_autofree char *pv = vm_kvm_pv_string(c->kvm_pv);
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
        *pv ? pv : "none"));
    if (v->has_lhp) {
        g_autofree char *done = v->lhp.yield_done >= 0 ?
            g_strdup_printf(" (%.0f %% done)", v->lhp.yield_done * 100) :
            g_strdup("");
        g_autofree char *pre = v->lhp.has_preempted ?
            g_strdup_printf("%.1f/s", v->lhp.preempted_per_s) :
            g_strdup("not counted");

        g_ptr_array_add(out, g_strdup_printf(
            "    KVM per vCPU: directed yields %.1f/s%s, preempted %s; "
            "co-stop %.1f %%: lock-holder preemption %s", v->lhp.yields_per_s,
            done, pre, v->lhp.costop * 100,
            v->lhp.suspected ? "SUSPECTED" : "not suspected"));
    }
    g_ptr_array_add(out, g_strdup(view_vcpu_titles()));
    for (i = 0; i < c->n_vcpus; i++) {
        g_ptr_array_add(out, vcpu_line(s, i));
    }
}

char *view_header(const ViewFrame *f, const ViewLayout *l)
{
    g_autoptr(GDateTime) dt =
        g_date_time_new_from_unix_local(f->now_ms / 1000);
    g_autofree char *t = dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S")
                            : g_strdup("?");
    g_autofree char *filter = f->filter ?
        g_strdup_printf("  filter: %s (%u of %u)", f->filter, f->vms->len,
                        f->total) : g_strdup("");

    return g_strdup_printf("vmtop %s  %u VMs: %u responsive, %u "
                           "unresponsive  sort: %s%s%s%s%s", t, f->vms->len,
                           f->responsive, f->unresponsive,
                           view_columns[l->sort].title,
                           l->reverse ? " (reversed)" : "", filter,
                           f->source ? "  via " : "",
                           f->source ? f->source : "");
}

void view_frame_print(const ViewFrame *f, FILE *out, const ViewLayout *l,
                      bool expand)
{
    g_autofree char *header = view_header(f, l);
    g_autoptr(GPtrArray) detail = g_ptr_array_new_with_free_func(g_free);
    ViewColumnId cols[VIEW_COLUMNS_NR];
    unsigned n = view_layout_shown(l, cols);
    g_autofree char *titles = view_titles(cols, n);
    guint i, j;

    fprintf(out, "%s\n%s\n", header, titles);
    for (i = 0; i < f->vms->len; i++) {
        const ViewVm *v = g_ptr_array_index(f->vms, i);
        g_autofree char *group = view_group_line(f, i);
        g_autofree char *line = view_vm_line(v, f->now_ms, cols, n);

        if (group) {
            fprintf(out, "%s\n", group);
        }
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

void view_frame_print_csv(const ViewFrame *f, FILE *out, const ViewLayout *l,
                          bool titles)
{
    ViewColumnId cols[VIEW_COLUMNS_NR];
    unsigned n = view_layout_shown(l, cols), k;
    g_autoptr(GString) g = g_string_new(NULL);
    guint i;

    if (titles) {
        g_string_append(g, "time");
        for (k = 0; k < n; k++) {
            g_string_append_printf(g, ",%s", view_columns[cols[k]].name);
        }
        fprintf(out, "%s\n", g->str);
    }
    for (i = 0; i < f->vms->len; i++) {
        const ViewVm *v = g_ptr_array_index(f->vms, i);

        g_string_printf(g, "%" G_GINT64_FORMAT, f->now_ms);
        for (k = 0; k < n; k++) {
            g_string_append_c(g, ',');
            view_column_csv(cols[k], v, f->now_ms, g);
        }
        fprintf(out, "%s\n", g->str);
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
