/*
 * vmtop: the columns of a VM line, defined once (see columns.h)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "columns.h"

const ViewColumn view_columns[VIEW_COLUMNS_NR] = {
    [VIEW_COL_NAME] = { "name", "NAME", 16, VIEW_KIND_TEXT, true, true, 'n',
        "the VM's name" },
    [VIEW_COL_HOST] = { "host", "HOST", 24, VIEW_KIND_TEXT, true, false, 0,
        "where it runs: the libvirt URI or the QMP socket's directory" },
    [VIEW_COL_STATE] = { "state", "STATE", 10, VIEW_KIND_TEXT, true, true,
        's', "the VM's runstate (full-run, full-cont, hazard, blocked, "
        "part-run, part-cont), UNRESP <time>, starting or ERROR" },
    [VIEW_COL_FULL] = { "full", "FULL%", 5, VIEW_KIND_SHARE, false, true,
        'f', "share of the interval every vCPU ran" },
    [VIEW_COL_CONT] = { "cont", "CONT%", 5, VIEW_KIND_SHARE, false, true, 0,
        "share every vCPU waited for a host CPU" },
    [VIEW_COL_HAZ] = { "haz", "HAZ%", 5, VIEW_KIND_SHARE, false, true, 'h',
        "share some vCPUs ran while others waited (concurrency hazard)" },
    [VIEW_COL_BLK] = { "blk", "BLK%", 5, VIEW_KIND_SHARE, false, true, 'b',
        "share every vCPU was idle (blocked)" },
    [VIEW_COL_PRUN] = { "prun", "PRUN%", 5, VIEW_KIND_SHARE, false, true, 0,
        "share some vCPUs ran, the others idle" },
    [VIEW_COL_PCON] = { "pcon", "PCON%", 5, VIEW_KIND_SHARE, false, true, 0,
        "share some vCPUs waited, none ran" },
    [VIEW_COL_CTN] = { "ctn", "CTN%", 5, VIEW_KIND_SHARE, false, false, 'c',
        "contention: CONT% + PCON%" },
    [VIEW_COL_VCPU] = { "vcpu", "VCPU", 4, VIEW_KIND_COUNT, false, true, 0,
        "number of vCPUs" },
    [VIEW_COL_RUN] = { "run", "RUN%", 5, VIEW_KIND_SHARE, false, true, 0,
        "the vCPUs' mean running share" },
    [VIEW_COL_RDY] = { "rdy", "RDY%", 7, VIEW_KIND_READY, false, true, 'y',
        "the vCPUs' mean ready share (runnable, waiting for a host CPU), "
        "marked + from 5 %, ! from 10 %, !! from 20 % as esxtop's %RDY" },
    [VIEW_COL_CSTP] = { "cstp", "CSTP%", 5, VIEW_KIND_SHARE, false, true, 0,
        "co-stop: the concurrency-hazard share, as esxtop's %CSTP" },
    [VIEW_COL_LHP] = { "lhp", "LHP", 3, VIEW_KIND_TEXT, false, true, 'l',
        "lock-holder preemption suspected: CSTP% at least 3 % and 10 "
        "directed yields or 50 preemptions per vCPU per second (KVM only; "
        "- under TCG)" },
    [VIEW_COL_MEMF] = { "memf", "MEM!", 4, VIEW_KIND_TEXT, false, true, 'd',
        "memory flags: D the guest in distress (under 5 % available, or an "
        "OOM kill or allocation stall since its last report), N the balloon "
        "not following the collector's target (over 64 MiB off after 2 "
        "min), ok neither, - not known" },
    [VIEW_COL_ACTUAL] = { "actual", "ACTUAL", 7, VIEW_KIND_MIB, false, true,
        0, "the balloon's actual size (guest RAM left), MiB" },
    [VIEW_COL_TOTAL] = { "total", "TOTAL", 7, VIEW_KIND_MIB, false, true, 0,
        "the guest's total memory, MiB" },
    [VIEW_COL_AVAIL] = { "avail", "AVAIL", 7, VIEW_KIND_MIB, true, true, 'm',
        "the guest's available memory, MiB (sorted least first)" },
    [VIEW_COL_FREE] = { "free", "FREE", 7, VIEW_KIND_MIB, false, true, 0,
        "the guest's free memory, MiB" },
    [VIEW_COL_MAJF] = { "majf", "MAJF/s", 6, VIEW_KIND_RATE, false, true, 0,
        "the guest's major page faults per second" },
    [VIEW_COL_SWAPIN] = { "swapin", "SWAPIN/s", 8, VIEW_KIND_BYTE_RATE,
        false, true, 0, "bytes the guest swapped in per second" },
    [VIEW_COL_AGE] = { "age", "AGE", 5, VIEW_KIND_SECONDS, false, true, 'a',
        "age of the guest's statistics, s (oldest first)" },
    [VIEW_COL_UNRESP] = { "unresp", "UNRESP", 6, VIEW_KIND_SECONDS, false,
        false, 'u', "how long the VM has not answered (longest first)" },
    [VIEW_COL_BAL] = { "bal", "BAL", 4, VIEW_KIND_TEXT, true, true, 0,
        "balloon features: F free page reporting, D deflate-on-oom, "
        "- neither, ? unknown" },
    [VIEW_COL_PV] = { "pv", "PV", 4, VIEW_KIND_TEXT, true, true, 0,
        "KVM PV features: U pv-unhalt, Y pv-sched-yield, S steal-time, "
        "D dedicated-hint" },
    [VIEW_COL_SRC] = { "src", "SRC", 7, VIEW_KIND_TEXT, true, true, 0,
        "where the runstates come from: exact, sampled, libvirt" },
};

/* Short forms of the VM states, in vm_state_names' order */
static const char *const vm_state_abbrevs[VM_STATES_NR] = {
    [VM_STATE_FULL_RUN] = "full-run",
    [VM_STATE_FULL_CONTENTION] = "full-cont",
    [VM_STATE_CONCURRENCY_HAZARD] = "hazard",
    [VM_STATE_BLOCKED] = "blocked",
    [VM_STATE_PARTIAL_RUN] = "part-run",
    [VM_STATE_PARTIAL_CONTENTION] = "part-cont",
};

int view_column_lookup(const char *name)
{
    int i;

    for (i = 0; name && i < VIEW_COLUMNS_NR; i++) {
        if (!g_ascii_strcasecmp(view_columns[i].name, name) ||
            (view_columns[i].key && name[0] == view_columns[i].key &&
             !name[1])) {
            return i;
        }
    }
    return -1;
}

/* Values */

static bool share(const ViewVm *v, int state, double *out)
{
    if (!v->has_shares) {
        return false;
    }
    *out = v->shares[state];
    return true;
}

static bool stat_value(const ViewVm *v, int stat, double *out)
{
    const VmSnapshot *s = v->s;

    if (!s->has_stats || !(s->stats_mask & (1u << stat))) {
        return false;
    }
    *out = s->stats[stat];
    return true;
}

static bool stat_rate(const ViewVm *v, int stat, double *out)
{
    return v->s->has_stats && vm_snapshot_stat_rate(v->s, stat, out) &&
           *out >= 0;
}

/*
 * The memory flags: D distress, N not following, "ok" neither; as a
 * rank in @rank (2 D + N: the worst first), as text in @buf; false if
 * neither is known
 */
static bool mem_flags(const ViewVm *v, int64_t now_ms, double *rank,
                      char *buf, size_t len)
{
    bool distress = false, following = true;
    bool kd = vm_snapshot_distress(v->s, &distress);
    bool kf = vm_snapshot_following(v->s, now_ms, &following);

    if (!kd && !kf) {
        return false;
    }
    if (rank) {
        *rank = 2 * distress + !following;
    }
    if (buf) {
        g_snprintf(buf, len, "%s%s%s", distress ? "D" : "",
                   following ? "" : "N",
                   distress || !following ? "" : "ok");
    }
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

bool view_column_value(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                       double *out)
{
    const VmSnapshot *s = v->s;
    double a, b;

    switch (c) {
    case VIEW_COL_STATE:
        *out = state_rank(v);
        return true;
    case VIEW_COL_LHP:
        *out = v->lhp.suspected;
        return v->has_lhp;
    case VIEW_COL_MEMF:
        return mem_flags(v, now_ms, out, NULL, 0);
    case VIEW_COL_FULL:
        return share(v, VM_STATE_FULL_RUN, out);
    case VIEW_COL_CONT:
        return share(v, VM_STATE_FULL_CONTENTION, out);
    case VIEW_COL_HAZ:
    case VIEW_COL_CSTP:
        return share(v, VM_STATE_CONCURRENCY_HAZARD, out);
    case VIEW_COL_BLK:
        return share(v, VM_STATE_BLOCKED, out);
    case VIEW_COL_PRUN:
        return share(v, VM_STATE_PARTIAL_RUN, out);
    case VIEW_COL_PCON:
        return share(v, VM_STATE_PARTIAL_CONTENTION, out);
    case VIEW_COL_CTN:
        if (!share(v, VM_STATE_FULL_CONTENTION, &a) ||
            !share(v, VM_STATE_PARTIAL_CONTENTION, &b)) {
            return false;
        }
        *out = a + b;
        return true;
    case VIEW_COL_VCPU:
        *out = s->cur.n_vcpus;
        return s->has_runstates;
    case VIEW_COL_RUN:
        *out = v->run;
        return v->has_vcpu_mean;
    case VIEW_COL_RDY:
        *out = v->rdy;
        return v->has_vcpu_mean;
    case VIEW_COL_ACTUAL:
        *out = MAX(s->actual, 0);
        return s->has_balloon;
    case VIEW_COL_TOTAL:
        return stat_value(v, STAT_TOTAL, out);
    case VIEW_COL_AVAIL:
        return stat_value(v, STAT_AVAILABLE, out);
    case VIEW_COL_FREE:
        return stat_value(v, STAT_FREE, out);
    case VIEW_COL_MAJF:
        return stat_rate(v, STAT_MAJOR_FAULTS, out);
    case VIEW_COL_SWAPIN:
        return stat_rate(v, STAT_SWAP_IN, out);
    case VIEW_COL_AGE:
        *out = v->age_ms / 1000.0;
        return v->age_ms >= 0;
    case VIEW_COL_UNRESP:
        if (s->responsive || !s->unresponsive_since_us) {
            return false;
        }
        *out = MAX(now_ms - s->unresponsive_since_us / 1000, 0) / 1000.0;
        return true;
    default:
        return false;
    }
}

/* Text cells */

void view_format_duration(char *buf, size_t len, int64_t s)
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

static void format_state(char *buf, size_t len, const VmSnapshot *s,
                         int64_t now_ms)
{
    char dur[16];
    int st = s->cur.vm_state;

    if (!s->responsive && s->unresponsive_since_us) {
        view_format_duration(dur, sizeof(dur),
                             (now_ms - s->unresponsive_since_us / 1000) /
                             1000);
        g_snprintf(buf, len, "UNRESP %s", dur);
    } else if (!s->responsive && !s->error) {
        g_strlcpy(buf, "starting", len);    /* no answer asked for yet */
    } else if (!s->responsive ||
               (s->error && !s->has_runstates && !s->has_balloon)) {
        g_strlcpy(buf, "ERROR", len);
    } else if (s->has_runstates && st >= 0 && st < VM_STATES_NR) {
        g_strlcpy(buf, vm_state_abbrevs[st], len);
    } else {
        g_strlcpy(buf, "-", len);
    }
}

/* The KVM PV features as letters: U Y S D; "-" if none */
static void format_pv(char *buf, size_t len, const VmSnapshot *s)
{
    size_t n = 0;
    unsigned i;

    for (i = 0; s->has_runstates && i < VM_KVM_PV_NR && n + 1 < len; i++) {
        if (s->cur.kvm_pv & (1u << i)) {
            buf[n++] = vm_kvm_pv_letters[i];
        }
    }
    if (!n && len > 1) {
        buf[n++] = '-';
    }
    buf[n] = '\0';
}

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

static void text_cell(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                      char *buf, size_t len)
{
    const VmSnapshot *s = v->s;

    switch (c) {
    case VIEW_COL_NAME:
        g_strlcpy(buf, s->name ? s->name : "", len);
        break;
    case VIEW_COL_HOST:
        g_strlcpy(buf, v->host ? v->host : "-", len);
        break;
    case VIEW_COL_STATE:
        format_state(buf, len, s, now_ms);
        break;
    case VIEW_COL_BAL:
        format_balloon(buf, len, s);
        break;
    case VIEW_COL_PV:
        format_pv(buf, len, s);
        break;
    case VIEW_COL_SRC:
        g_strlcpy(buf, s->has_runstates && s->cur.source ? s->cur.source
                                                          : "-", len);
        break;
    case VIEW_COL_LHP:
        g_strlcpy(buf, !v->has_lhp ? "-" : v->lhp.suspected ? "yes" : "no",
                  len);
        break;
    case VIEW_COL_MEMF:
        if (!mem_flags(v, now_ms, NULL, buf, len)) {
            g_strlcpy(buf, "-", len);
        }
        break;
    default:
        g_strlcpy(buf, "-", len);
        break;
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

static void format_seconds(char *buf, size_t len, double s)
{
    if (s < 100) {
        g_snprintf(buf, len, "%.1f", s);
    } else {
        view_format_duration(buf, len, (int64_t)s);
    }
}

void view_column_cell(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                      char *buf, size_t len)
{
    const ViewColumn *col = &view_columns[c];
    double x;

    if (col->kind == VIEW_KIND_TEXT) {
        text_cell(c, v, now_ms, buf, len);
        return;
    }
    if (!view_column_value(c, v, now_ms, &x)) {
        g_strlcpy(buf, "-", len);
        return;
    }
    switch (col->kind) {
    case VIEW_KIND_SHARE:
        g_snprintf(buf, len, "%.1f", x * 100);
        break;
    case VIEW_KIND_READY:
        g_snprintf(buf, len, "%.1f%s", x * 100,
                   vm_ready_band_marks[vm_ready_band(x)]);
        break;
    case VIEW_KIND_COUNT:
        g_snprintf(buf, len, "%.0f", x);
        break;
    case VIEW_KIND_MIB:
        g_snprintf(buf, len, "%" G_GUINT64_FORMAT, (uint64_t)x >> 20);
        break;
    case VIEW_KIND_RATE:
    case VIEW_KIND_BYTE_RATE:
        format_compact(buf, len, x,
                       col->kind == VIEW_KIND_RATE ? 1000 : 1024);
        break;
    case VIEW_KIND_SECONDS:
        format_seconds(buf, len, x);
        break;
    default:
        g_strlcpy(buf, "?", len);
        break;
    }
}

void view_column_csv(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                     GString *out)
{
    const ViewColumn *col = &view_columns[c];
    char buf[256];
    double x;
    const char *p;

    if (col->kind == VIEW_KIND_TEXT) {
        text_cell(c, v, now_ms, buf, sizeof(buf));
        if (!strcmp(buf, "-") && c != VIEW_COL_NAME) {
            return;
        }
        if (!strpbrk(buf, ",\"\n\r")) {
            g_string_append(out, buf);
            return;
        }
        g_string_append_c(out, '"');
        for (p = buf; *p; p++) {
            if (*p == '"') {
                g_string_append_c(out, '"');
            }
            g_string_append_c(out, *p);
        }
        g_string_append_c(out, '"');
        return;
    }
    if (!view_column_value(c, v, now_ms, &x)) {
        return;
    }
    switch (col->kind) {
    case VIEW_KIND_SHARE:
    case VIEW_KIND_READY:
        g_string_append_printf(out, "%.2f", x * 100);
        break;
    case VIEW_KIND_MIB:
        g_string_append_printf(out, "%" G_GUINT64_FORMAT, (uint64_t)x >> 20);
        break;
    case VIEW_KIND_COUNT:
        g_string_append_printf(out, "%.0f", x);
        break;
    default:
        g_string_append_printf(out, "%.3f", x);
        break;
    }
}

int view_column_compare(ViewColumnId c, const ViewVm *a, const ViewVm *b,
                        int64_t now_ms, bool reverse)
{
    const ViewColumn *col = &view_columns[c];
    char ta[256], tb[256];
    double va = 0, vb = 0;
    bool ha, hb;
    int r;

    if (col->kind == VIEW_KIND_TEXT && c != VIEW_COL_STATE &&
        c != VIEW_COL_LHP && c != VIEW_COL_MEMF) {
        text_cell(c, a, now_ms, ta, sizeof(ta));
        text_cell(c, b, now_ms, tb, sizeof(tb));
        ha = c == VIEW_COL_NAME || strcmp(ta, "-");
        hb = c == VIEW_COL_NAME || strcmp(tb, "-");
        r = strcmp(ta, tb);
    } else {
        ha = view_column_value(c, a, now_ms, &va);
        hb = view_column_value(c, b, now_ms, &vb);
        r = va < vb ? -1 : va > vb ? 1 : 0;
    }
    if (ha != hb) {
        return ha ? -1 : 1;             /* missing values last */
    }
    if (!ha) {
        return 0;
    }
    if (!col->ascending) {
        r = -r;
    }
    return reverse ? -r : r;
}

/* Lines */

void view_put_share(GString *g, int width, bool ok, double share)
{
    if (ok) {
        g_string_append_printf(g, " %*.1f", width, share * 100);
    } else {
        g_string_append_printf(g, " %*s", width, "-");
    }
}

/* A ready share with its band's mark: + significant, ! hurting, !! critical */
void view_put_ready(GString *g, bool ok, double share)
{
    if (ok) {
        g_string_append_printf(g, " %5.1f%-2s", share * 100,
                               vm_ready_band_marks[vm_ready_band(share)]);
    } else {
        g_string_append_printf(g, " %5s  ", "-");
    }
}

void view_put_rate(GString *g, int width, bool ok, double x, double base)
{
    char buf[32];

    if (ok && x >= 0) {
        format_compact(buf, sizeof(buf), x, base);
        g_string_append_printf(g, " %*s", width, buf);
    } else {
        g_string_append_printf(g, " %*s", width, "-");
    }
}

/* @text in @width columns, cut with a '~' if longer */
static void put_fitted(GString *g, const char *text, int width, bool left)
{
    int len = strlen(text);

    if (len > width) {
        g_string_append_len(g, text, width - 1);
        g_string_append_c(g, '~');
    } else {
        g_string_append_printf(g, left ? "%-*s" : "%*s", width, text);
    }
}

void view_column_put_title(ViewColumnId c, GString *line)
{
    const ViewColumn *col = &view_columns[c];

    if (c != VIEW_COL_NAME) {
        g_string_append_c(line, ' ');
    }
    if (col->kind == VIEW_KIND_READY) {
        /* over the number, not its mark */
        g_string_append_printf(line, "%*s  ", col->width - 2, col->title);
        return;
    }
    put_fitted(line, col->title, col->width, col->kind == VIEW_KIND_TEXT);
}

void view_column_put_cell(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                          GString *line)
{
    const ViewColumn *col = &view_columns[c];
    char buf[256];
    double x;

    if (col->kind == VIEW_KIND_READY) {
        bool ok = view_column_value(c, v, now_ms, &x);

        view_put_ready(line, ok, ok ? x : 0);
        return;
    }
    if (c != VIEW_COL_NAME) {
        g_string_append_c(line, ' ');
    }
    view_column_cell(c, v, now_ms, buf, sizeof(buf));
    put_fitted(line, buf, col->width, col->kind == VIEW_KIND_TEXT);
}
