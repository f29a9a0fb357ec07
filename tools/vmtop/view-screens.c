/*
 * vmtop: the live view's f, o and help screens
 *
 * As in esxtop: f lists every column with a letter, the letter shows or
 * hides it; o lists the shown columns in order, a lower-case letter
 * moves its column right (later), an upper-case one left.  Any other
 * key returns to the VMs.  W (in the VMs' screen) saves the choice.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "view-curses.h"

/* Every column but NAME has a letter: a for the first after it */
static char column_letter(ViewColumnId c)
{
    return 'a' + (c - 1);
}

static int column_of_letter(int ch)
{
    int c = g_ascii_tolower(ch) - 'a' + 1;

    return ch > 0 && ch < 128 && g_ascii_isalpha(ch) && c > 0 &&
           c < VIEW_COLUMNS_NR ? c : -1;
}

static int help_top;            /* first line of the help shown */

static void draw_list(const char *title, GPtrArray *lines, int top)
{
    int y, i;

    erase();
    view_draw_line(0, title, A_BOLD);
    for (y = 2, i = top; y < LINES && i < (int)lines->len; y++, i++) {
        view_draw_line(y, g_ptr_array_index(lines, i), A_NORMAL);
    }
    refresh();
}

/* The help: keys, then every column (more than a screen: Up/Down) */
static GPtrArray *help_lines(void)
{
    static const char *const keys[] = {
        "q                quit",
        "Up Down PgUp PgDn Home End   select a VM",
        "Enter, e         show or hide the selected VM's vCPUs",
        "< >              sort by the shown column left / right of the "
        "current",
        "N S F C H B M A U Y (or n s c b m a u y)   sort by the column "
        "with that key",
        "r                reverse the sort",
        "/                filter by name (part of it, or a glob: web*)",
        "f                show or hide columns",
        "o                order the shown columns",
        "W                save the columns and the sort",
        "Left Right       bring in the columns that do not fit",
        "h ?              this help",
        "",
        "Columns (key, name for --columns and --sort):",
    };
    GPtrArray *lines = g_ptr_array_new_with_free_func(g_free);
    size_t i;
    int c;

    for (i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_ptr_array_add(lines, g_strdup(keys[i]));
    }
    for (c = 0; c < VIEW_COLUMNS_NR; c++) {
        const ViewColumn *col = &view_columns[c];

        g_ptr_array_add(lines, g_strdup_printf(
            "  %-8s %c %-7s %s", col->title, col->key ? col->key : ' ',
            col->name, col->help));
    }
    return lines;
}

void view_screen_draw(ViewScreen s, const ViewLayout *l)
{
    g_autoptr(GPtrArray) lines = NULL;
    ViewColumnId shown[VIEW_COLUMNS_NR];
    unsigned n, i;
    int c;

    switch (s) {
    case VIEW_SCREEN_FIELDS:
        lines = g_ptr_array_new_with_free_func(g_free);
        for (c = 1; c < VIEW_COLUMNS_NR; c++) {
            g_ptr_array_add(lines, g_strdup_printf(
                "%c %c %-8s %s", l->shown[c] ? '*' : ' ', column_letter(c),
                view_columns[c].title, view_columns[c].help));
        }
        draw_list("Columns: a letter shows or hides its column (*: shown); "
                  "any other key returns", lines, 0);
        break;
    case VIEW_SCREEN_ORDER:
        lines = g_ptr_array_new_with_free_func(g_free);
        n = view_layout_shown(l, shown);
        for (i = 1; i < n; i++) {
            g_ptr_array_add(lines, g_strdup_printf(
                "%2u  %c %-8s %s", i, column_letter(shown[i]),
                view_columns[shown[i]].title, view_columns[shown[i]].help));
        }
        draw_list("Order: a letter moves its column down (later), upper "
                  "case up (earlier); any other key returns", lines, 0);
        break;
    case VIEW_SCREEN_HELP:
        lines = help_lines();
        help_top = CLAMP(help_top, 0, MAX((int)lines->len - (LINES - 2), 0));
        draw_list("vmtop keys (Up/Down scroll; any other key returns)",
                  lines, help_top);
        break;
    default:
        break;
    }
}

ViewScreen view_screen_key(ViewScreen s, ViewLayout *l, int ch)
{
    int c = column_of_letter(ch);

    switch (s) {
    case VIEW_SCREEN_FIELDS:
        if (c < 0) {
            return VIEW_SCREEN_MAIN;
        }
        view_layout_toggle(l, c);
        if (!l->shown[c] && (int)l->sort == c) {
            l->sort = VIEW_COL_NAME;    /* sort by what is shown */
        }
        return s;
    case VIEW_SCREEN_ORDER:
        if (c < 0) {
            return VIEW_SCREEN_MAIN;
        }
        view_layout_move(l, c, g_ascii_isupper(ch) ? -1 : 1);
        return s;
    case VIEW_SCREEN_HELP:
        if (ch == KEY_DOWN || ch == KEY_NPAGE) {
            help_top += ch == KEY_DOWN ? 1 : MAX(LINES - 3, 1);
            return s;
        }
        if (ch == KEY_UP || ch == KEY_PPAGE) {
            help_top -= ch == KEY_UP ? 1 : MAX(LINES - 3, 1);
            help_top = MAX(help_top, 0);
            return s;
        }
        return VIEW_SCREEN_MAIN;
    default:
        return VIEW_SCREEN_MAIN;
    }
}
