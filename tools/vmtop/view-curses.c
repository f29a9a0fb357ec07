/*
 * vmtop: the live view, with ncurses
 *
 * Redraws every interval from the latest snapshots (which never
 * wait for a worker) and at every key.  Rows are view-text.c's lines:
 * a header, the column titles, one line per VM and, for an expanded VM,
 * its details and vCPUs; a help line at the bottom.  The selection
 * follows the VM (by name) across refreshes and sorts.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include <curses.h>

#include "view.h"

#define KEY_WAIT_MS 250         /* longest getch() wait */
#define HSCROLL_STEP 8

static const char help_line[] =
    "q quit  Up/Down select  Enter/e vCPUs  Left/Right scroll  "
    "sort: n name s state f full c cont h hazard b blocked "
    "m avail a age u unresp y ready  r reverse";

typedef struct CursesView {
    VmtopSource *src;
    int interval_ms;
    char sort;
    bool reverse;
    ViewFrame *frame;
    char *selected;             /* the selected VM's name */
    unsigned sel;               /* its index in the frame */
    GHashTable *expanded;       /* names of expanded VMs */
    int top;                    /* first body row shown */
    int hoff;                   /* horizontal scroll */
    int page;                   /* body rows on screen */
} CursesView;

/* Rows of the body: a line and the VM it belongs to */
typedef struct Rows {
    GPtrArray *text;            /* char * */
    GArray *vm;                 /* guint: index in the frame */
    GArray *is_vm;              /* gboolean: the VM's own line */
} Rows;

static const ViewVm *view_vm(CursesView *cv, guint i)
{
    return g_ptr_array_index(cv->frame->vms, i);
}

/* Find the selected VM in the (new, or resorted) frame */
static void follow_selection(CursesView *cv)
{
    guint n = cv->frame->vms->len, i;

    for (i = 0; cv->selected && i < n; i++) {
        if (!g_strcmp0(view_vm(cv, i)->s->name, cv->selected)) {
            cv->sel = i;
            return;
        }
    }
    /* gone (or none yet): keep the position */
    if (cv->sel >= n) {
        cv->sel = n ? n - 1 : 0;
    }
    g_free(cv->selected);
    cv->selected = n ? g_strdup(view_vm(cv, cv->sel)->s->name) : NULL;
}

static void select_vm(CursesView *cv, int delta)
{
    int n = cv->frame->vms->len;
    int i = (int)cv->sel + delta;

    if (!n) {
        return;
    }
    cv->sel = CLAMP(i, 0, n - 1);
    g_free(cv->selected);
    cv->selected = g_strdup(view_vm(cv, cv->sel)->s->name);
}

static void refresh_frame(CursesView *cv)
{
    view_frame_free(cv->frame);
    cv->frame = view_frame_from(cv->src, g_get_real_time() / 1000);
    view_frame_sort(cv->frame, cv->sort, cv->reverse);
    follow_selection(cv);
}

static void rows_add(Rows *r, char *text, guint vm, gboolean is_vm)
{
    g_ptr_array_add(r->text, text);
    g_array_append_val(r->vm, vm);
    g_array_append_val(r->is_vm, is_vm);
}

static void rows_build(CursesView *cv, Rows *r)
{
    g_autoptr(GPtrArray) detail = g_ptr_array_new();
    guint i, j;

    r->text = g_ptr_array_new_with_free_func(g_free);
    r->vm = g_array_new(false, false, sizeof(guint));
    r->is_vm = g_array_new(false, false, sizeof(gboolean));
    for (i = 0; i < cv->frame->vms->len; i++) {
        const ViewVm *v = view_vm(cv, i);

        rows_add(r, view_vm_line(v, cv->frame->now_ms), i, true);
        if (!g_hash_table_contains(cv->expanded, v->s->name)) {
            continue;
        }
        g_ptr_array_set_size(detail, 0);
        view_vm_detail(v, detail);
        for (j = 0; j < detail->len; j++) {
            rows_add(r, g_ptr_array_index(detail, j), i, false);
        }
    }
}

static void rows_free(Rows *r)
{
    g_ptr_array_free(r->text, true);
    g_array_free(r->vm, true);
    g_array_free(r->is_vm, true);
}

/* Scroll so that the selected VM's line (and what fits of its details) shows */
static void scroll_to_selection(CursesView *cv, Rows *r)
{
    int n = r->text->len, first = -1, last = -1, i;

    for (i = 0; i < n; i++) {
        if (g_array_index(r->vm, guint, i) == cv->sel) {
            first = first < 0 ? i : first;
            last = i;
        }
    }
    if (first >= 0) {
        if (last >= cv->top + cv->page) {
            cv->top = last - cv->page + 1;
        }
        if (first < cv->top || first >= cv->top + cv->page) {
            cv->top = first;
        }
    }
    cv->top = CLAMP(cv->top, 0, MAX(n - cv->page, 0));
}

/*
 * Draw @text at row @y, cut at the right edge: its first @fixed columns
 * stay, the rest scrolls by hoff (@fixed -1: nothing scrolls)
 */
static void draw_line(CursesView *cv, int y, const char *text, int fixed,
                      attr_t attr)
{
    int len = strlen(text);
    int off;

    if (y < 0 || y >= LINES) {
        return;
    }
    attrset(attr);
    if (attr & A_REVERSE) {
        mvhline(y, 0, ' ', COLS);
    }
    if (fixed < 0 || fixed >= len) {
        mvaddnstr(y, 0, text, COLS);
    } else {
        off = MIN(fixed + cv->hoff, len);
        mvaddnstr(y, 0, text, MIN(fixed, COLS));
        if (COLS > fixed) {
            mvaddnstr(y, fixed, text + off, COLS - fixed);
        }
    }
    attrset(A_NORMAL);
}

/*
 * While the screen is ours, the workers' log lines (a VM that stops
 * answering, ...) would scribble over it: keep the latest one for the
 * bottom line instead.
 */
static GMutex log_lock;
static char *log_last;

static void log_to_screen(const gchar *domain G_GNUC_UNUSED,
                          GLogLevelFlags level G_GNUC_UNUSED,
                          const gchar *message, gpointer opaque G_GNUC_UNUSED)
{
    g_mutex_lock(&log_lock);
    g_free(log_last);
    log_last = g_strdup(message);
    g_mutex_unlock(&log_lock);
}

static void draw_log_line(CursesView *cv)
{
    g_autofree char *line = NULL;

    g_mutex_lock(&log_lock);
    if (log_last) {
        line = g_strdup_printf("last: %s", log_last);
    }
    g_mutex_unlock(&log_lock);
    if (line && LINES > 3) {
        draw_line(cv, LINES - 2, line, -1, A_NORMAL);
    }
}

static void draw(CursesView *cv)
{
    g_autofree char *header = view_header(cv->frame, cv->sort, cv->reverse);
    Rows r;
    int i, n;

    cv->page = MAX(LINES - 4, 1);     /* header, titles, log, help */
    rows_build(cv, &r);
    scroll_to_selection(cv, &r);
    erase();
    draw_line(cv, 0, header, -1, A_BOLD);
    draw_line(cv, 1, view_vm_titles(), VIEW_NAME_COLS, A_REVERSE);
    n = r.text->len;
    for (i = cv->top; i < n && i - cv->top < cv->page; i++) {
        const ViewVm *v = view_vm(cv, g_array_index(r.vm, guint, i));
        bool is_vm = g_array_index(r.is_vm, gboolean, i);
        attr_t attr = A_NORMAL;

        if (is_vm && g_array_index(r.vm, guint, i) == cv->sel) {
            attr |= A_REVERSE;
        }
        if (is_vm && !v->s->responsive) {
            attr |= A_BOLD;
        }
        draw_line(cv, 2 + i - cv->top, g_ptr_array_index(r.text, i),
                  is_vm ? VIEW_NAME_COLS : -1, attr);
    }
    if (!n) {
        draw_line(cv, 2, "  (no VMs found yet)", -1, A_NORMAL);
    }
    draw_log_line(cv);
    draw_line(cv, LINES - 1, help_line, -1, A_REVERSE);
    refresh();
    rows_free(&r);
}

static void toggle_expanded(CursesView *cv)
{
    if (!cv->selected) {
        return;
    }
    if (!g_hash_table_remove(cv->expanded, cv->selected)) {
        g_hash_table_add(cv->expanded, g_strdup(cv->selected));
    }
}

/* Handle key @ch; false to quit */
static bool handle_key(CursesView *cv, int ch)
{
    switch (ch) {
    case 'q':
    case 'Q':
        return false;
    case KEY_UP:
        select_vm(cv, -1);
        break;
    case KEY_DOWN:
        select_vm(cv, 1);
        break;
    case KEY_PPAGE:
        select_vm(cv, -MAX(cv->page - 1, 1));
        break;
    case KEY_NPAGE:
        select_vm(cv, MAX(cv->page - 1, 1));
        break;
    case KEY_HOME:
        select_vm(cv, -(int)cv->frame->vms->len);
        break;
    case KEY_END:
        select_vm(cv, cv->frame->vms->len);
        break;
    case KEY_LEFT:
        cv->hoff = MAX(cv->hoff - HSCROLL_STEP, 0);
        break;
    case KEY_RIGHT:
        cv->hoff = MIN(cv->hoff + HSCROLL_STEP,
                       MAX((int)strlen(view_vm_titles()) - VIEW_NAME_COLS -
                           HSCROLL_STEP, 0));
        break;
    case '\n':
    case '\r':
    case KEY_ENTER:
    case 'e':
        toggle_expanded(cv);
        break;
    case 'r':
        cv->reverse = !cv->reverse;
        view_frame_sort(cv->frame, cv->sort, cv->reverse);
        follow_selection(cv);
        break;
    case KEY_RESIZE:
        break;
    default:
        if (ch > 0 && ch < 256 && view_sort_key_valid((char)ch)) {
            cv->sort = (char)ch;
            view_frame_sort(cv->frame, cv->sort, cv->reverse);
            follow_selection(cv);
        }
        break;
    }
    return true;
}

static void sleep_until(int64_t deadline_us)
{
    int64_t now = g_get_monotonic_time();

    if (deadline_us > now) {
        g_usleep(deadline_us - now);
    }
}

static void curses_setup(void)
{
    initscr();
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
}

int view_curses_run(VmtopSource *src, const ViewCursesConfig *cfg)
{
    CursesView cv = {
        .src = src,
        .interval_ms = cfg->interval_ms,
        .sort = cfg->sort,
        .reverse = cfg->reverse,
        .expanded = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          NULL),
    };
    int64_t next = 0, now, wait_ms;
    bool run = true;
    int ch;

    g_log_set_default_handler(log_to_screen, NULL);
    curses_setup();
    while (run) {
        now = g_get_monotonic_time();
        if (now >= next) {
            refresh_frame(&cv);
            next = now + (int64_t)cv.interval_ms * 1000;
        }
        draw(&cv);
        wait_ms = MIN((next - now) / 1000 + 1, KEY_WAIT_MS);
        timeout((int)wait_ms);
        ch = getch();
        if (ch != ERR) {
            run = handle_key(&cv, ch);
        } else {
            /* input at its end (a pipe) returns at once: do not spin */
            sleep_until(now + wait_ms * 1000);
        }
    }
    endwin();
    g_log_set_default_handler(g_log_default_handler, NULL);
    view_frame_free(cv.frame);
    g_hash_table_destroy(cv.expanded);
    g_free(cv.selected);
    return 0;
}
