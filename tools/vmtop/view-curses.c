/*
 * vmtop: the live view, with ncurses
 *
 * Redraws every interval from the latest snapshots (which never
 * wait for a worker) and at every key.  Rows are view-text.c's lines:
 * a header, the column titles, one line per VM (after its host's group
 * line when there are several hosts) and, for an expanded VM, its
 * details and vCPUs; a key line at the bottom.  The selection follows
 * the VM (by name) across refreshes and sorts.  Columns that do not fit
 * the terminal are left out whole (Left/Right bring them in), never cut.
 * The f, o and h screens are in view-screens.c.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include <curses.h>

#include "view-curses.h"

#define KEY_WAIT_MS 250         /* longest getch() wait */
#define FILTER_MAX 128

static const char key_line[] =
    "h help  q quit  Enter vCPUs  < > sort  / filter  f o columns  W save";

typedef struct CursesView {
    VmtopSource *src;
    int interval_ms;
    ViewLayout layout;
    char *filter;
    const char *config_path;
    ViewScreen screen;
    ViewFrame *frame;
    char *selected;             /* the selected VM's name */
    unsigned sel;               /* its index in the frame */
    GHashTable *expanded;       /* names of expanded VMs */
    int top;                    /* first body row shown */
    int hcol;                   /* shown columns scrolled off on the left */
    int page;                   /* body rows on screen */
} CursesView;

typedef enum RowKind {
    ROW_VM,                     /* the VM's own line */
    ROW_GROUP,                  /* its host's group, before it */
    ROW_DETAIL,                 /* its details and vCPUs */
} RowKind;

/* Rows of the body: a line and the VM it belongs to */
typedef struct Rows {
    GPtrArray *text;            /* char * */
    GArray *vm;                 /* guint: index in the frame */
    GArray *kind;               /* RowKind */
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
    view_frame_filter(cv->frame, cv->filter);
    view_frame_sort(cv->frame, &cv->layout);
    follow_selection(cv);
}

static void resort(CursesView *cv)
{
    view_frame_sort(cv->frame, &cv->layout);
    follow_selection(cv);
}

static void rows_add(Rows *r, char *text, guint vm, RowKind kind)
{
    g_ptr_array_add(r->text, text);
    g_array_append_val(r->vm, vm);
    g_array_append_val(r->kind, kind);
}

/*
 * The columns that fit the screen: NAME, then the shown ones from hcol
 * on, each whole; the number of shown columns in *@of
 */
static unsigned fitting_columns(CursesView *cv, ViewColumnId *out,
                                unsigned *of)
{
    ViewColumnId shown[VIEW_COLUMNS_NR];
    unsigned n = view_layout_shown(&cv->layout, shown), k = 1, i;
    int width = view_columns[VIEW_COL_NAME].width;

    *of = n - 1;
    cv->hcol = CLAMP(cv->hcol, 0, MAX((int)n - 2, 0));
    out[0] = VIEW_COL_NAME;
    for (i = 1 + cv->hcol; i < n; i++) {
        width += 1 + view_columns[shown[i]].width;
        if (width > COLS && k > 1) {
            break;
        }
        out[k++] = shown[i];
    }
    return k;
}

static void rows_build(CursesView *cv, Rows *r, const ViewColumnId *cols,
                       unsigned ncols)
{
    g_autoptr(GPtrArray) detail = g_ptr_array_new();
    guint i, j;
    char *group;

    r->text = g_ptr_array_new_with_free_func(g_free);
    r->vm = g_array_new(false, false, sizeof(guint));
    r->kind = g_array_new(false, false, sizeof(RowKind));
    for (i = 0; i < cv->frame->vms->len; i++) {
        const ViewVm *v = view_vm(cv, i);

        group = view_group_line(cv->frame, i);
        if (group) {
            rows_add(r, group, i, ROW_GROUP);
        }
        rows_add(r, view_vm_line(v, cv->frame->now_ms, cols, ncols), i,
                 ROW_VM);
        if (!g_hash_table_contains(cv->expanded, v->s->name)) {
            continue;
        }
        g_ptr_array_set_size(detail, 0);
        view_vm_detail(v, detail);
        for (j = 0; j < detail->len; j++) {
            rows_add(r, g_ptr_array_index(detail, j), i, ROW_DETAIL);
        }
    }
}

static void rows_free(Rows *r)
{
    g_ptr_array_free(r->text, true);
    g_array_free(r->vm, true);
    g_array_free(r->kind, true);
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

void view_draw_line(int y, const char *text, attr_t attr)
{
    if (y < 0 || y >= LINES) {
        return;
    }
    attrset(attr);
    if (attr & A_REVERSE) {
        mvhline(y, 0, ' ', COLS);
    }
    mvaddnstr(y, 0, text, COLS);
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

void view_show_message(const char *message)
{
    log_to_screen(NULL, 0, message, NULL);
}

static void draw_log_line(void)
{
    g_autofree char *line = NULL;

    g_mutex_lock(&log_lock);
    if (log_last) {
        line = g_strdup_printf("last: %s", log_last);
    }
    g_mutex_unlock(&log_lock);
    if (line && LINES > 3) {
        view_draw_line(LINES - 2, line, A_NORMAL);
    }
}

static void draw_main(CursesView *cv)
{
    g_autofree char *header = view_header(cv->frame, &cv->layout);
    g_autofree char *titles = NULL, *keys = g_strdup(key_line);
    ViewColumnId cols[VIEW_COLUMNS_NR];
    unsigned ncols, of;
    Rows r;
    int i, n;

    ncols = fitting_columns(cv, cols, &of);
    titles = view_titles(cols, ncols);
    if (ncols - 1 < of) {
        g_free(keys);
        keys = g_strdup_printf("Left/Right: columns %d-%d of %u  %s",
                               cv->hcol + 1, cv->hcol + (int)ncols - 1, of,
                               key_line);
    }
    cv->page = MAX(LINES - 4, 1);     /* header, titles, log, keys */
    rows_build(cv, &r, cols, ncols);
    scroll_to_selection(cv, &r);
    erase();
    view_draw_line(0, header, A_BOLD);
    view_draw_line(1, titles, A_REVERSE);
    n = r.text->len;
    for (i = cv->top; i < n && i - cv->top < cv->page; i++) {
        const ViewVm *v = view_vm(cv, g_array_index(r.vm, guint, i));
        RowKind kind = g_array_index(r.kind, RowKind, i);
        bool is_vm = kind == ROW_VM;
        attr_t attr = A_NORMAL;

        if (is_vm && g_array_index(r.vm, guint, i) == cv->sel) {
            attr |= A_REVERSE;
        }
        if (is_vm && !v->s->responsive) {
            attr |= A_BOLD;
        }
        if (kind == ROW_GROUP) {
            attr |= A_BOLD;
        }
        view_draw_line(2 + i - cv->top, g_ptr_array_index(r.text, i), attr);
    }
    if (!n) {
        view_draw_line(2, cv->frame->total ? "  (no VM matches the filter)"
                                           : "  (no VMs found yet)",
                       A_NORMAL);
    }
    draw_log_line();
    view_draw_line(LINES - 1, keys, A_REVERSE);
    refresh();
    rows_free(&r);
}

static void draw(CursesView *cv)
{
    if (cv->screen == VIEW_SCREEN_MAIN) {
        draw_main(cv);
    } else {
        view_screen_draw(cv->screen, &cv->layout);
    }
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

/* Ask for a filter on the bottom line; empty: none */
static void ask_filter(CursesView *cv)
{
    char buf[FILTER_MAX] = "";
    static const char prompt[] = "filter (part of a name, or a glob; "
                                 "empty: none): ";

    view_draw_line(LINES - 1, prompt, A_NORMAL);
    clrtoeol();
    echo();
    curs_set(1);
    timeout(-1);
    mvgetnstr(LINES - 1, MIN((int)strlen(prompt), COLS - 1), buf,
              sizeof(buf) - 1);
    noecho();
    curs_set(0);
    g_free(cv->filter);
    cv->filter = *g_strstrip(buf) ? g_strdup(buf) : NULL;
    refresh_frame(cv);
}

static void save_layout(CursesView *cv)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *msg = NULL;

    if (!view_layout_save(&cv->layout, cv->config_path, &err)) {
        msg = g_strdup_printf("not saved: %s", err->message);
    } else {
        msg = g_strdup_printf("columns and sort saved to %s",
                              cv->config_path);
    }
    view_show_message(msg);
}

/* A sort key of the live view: a column's key, upper case for all */
static int sort_column_of_key(int ch)
{
    char name[2] = { 0 };

    if (ch <= 0 || ch >= 128 || strchr("fhoeqrW", ch)) {
        return -1;                  /* keys of their own */
    }
    name[0] = g_ascii_tolower(ch);
    return view_column_lookup(name);
}

/* Handle key @ch in the main screen; false to quit */
static bool handle_key(CursesView *cv, int ch)
{
    int c;

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
        cv->hcol = MAX(cv->hcol - 1, 0);
        break;
    case KEY_RIGHT:
        cv->hcol++;                 /* clamped when drawn */
        break;
    case '\n':
    case '\r':
    case KEY_ENTER:
    case 'e':
        toggle_expanded(cv);
        break;
    case 'r':
        cv->layout.reverse = !cv->layout.reverse;
        resort(cv);
        break;
    case '<':
    case '>':
        view_layout_sort_step(&cv->layout, ch == '<' ? -1 : 1);
        resort(cv);
        break;
    case '/':
        ask_filter(cv);
        break;
    case 'W':
        save_layout(cv);
        break;
    case 'f':
        cv->screen = VIEW_SCREEN_FIELDS;
        break;
    case 'o':
        cv->screen = VIEW_SCREEN_ORDER;
        break;
    case 'h':
    case '?':
        cv->screen = VIEW_SCREEN_HELP;
        break;
    case KEY_RESIZE:
        break;
    default:
        c = sort_column_of_key(ch);
        if (c >= 0) {
            cv->layout.sort = c;
            resort(cv);
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
        .layout = cfg->layout,
        .filter = g_strdup(cfg->filter),
        .config_path = cfg->config_path,
        .expanded = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          NULL),
    };
    int64_t next = 0, now, wait_ms;
    bool run = true;
    int ch;

    g_log_set_default_handler(log_to_screen, NULL);
    if (cfg->message) {
        view_show_message(cfg->message);
    }
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
        if (ch != ERR && cv.screen != VIEW_SCREEN_MAIN) {
            cv.screen = view_screen_key(cv.screen, &cv.layout, ch);
            resort(&cv);
        } else if (ch != ERR) {
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
    g_free(cv.filter);
    return 0;
}
