/*
 * vmtop: which columns show, in which order, and the sort: what an
 * operator chooses (--columns, --sort, the f/o/</> keys) and saves (W)
 *
 * The config file is a GKeyFile, by default
 * $XDG_CONFIG_HOME/qemu-oc/vmtop.conf:
 *
 *   [vmtop]
 *   columns=state;full;cont;...;src    (the shown ones, in order)
 *   sort=rdy
 *   reverse=false
 *
 * A file that cannot be read or names an unknown column is reported
 * and left as it is; vmtop then starts with the defaults.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VMTOP_LAYOUT_H
#define VMTOP_LAYOUT_H

#include "columns.h"

typedef struct ViewLayout {
    ViewColumnId order[VIEW_COLUMNS_NR];  /* every column, NAME first */
    bool shown[VIEW_COLUMNS_NR];          /* by column */
    ViewColumnId sort;
    bool reverse;
} ViewLayout;

/* The default columns, sorted by name */
void view_layout_init(ViewLayout *l);

/*
 * Show the columns of @list (names separated by ',' or ';', NAME
 * implied) in that order, hide the others (kept after them)
 */
bool view_layout_set_columns(ViewLayout *l, const char *list, GError **errp);
/* The shown columns after NAME, as set_columns takes them: "state,..." */
char *view_layout_columns_string(const ViewLayout *l, char sep);
/* The shown columns in order, NAME first; their number */
unsigned view_layout_shown(const ViewLayout *l, ViewColumnId *out);

/* Show or hide column @c (not NAME) */
void view_layout_toggle(ViewLayout *l, ViewColumnId c);
/* Move shown column @c @delta places among the shown (not NAME) */
void view_layout_move(ViewLayout *l, ViewColumnId c, int delta);
/* Sort by the shown column @delta places from the current sort column */
void view_layout_sort_step(ViewLayout *l, int delta);

/* $XDG_CONFIG_HOME/qemu-oc/vmtop.conf */
char *view_layout_default_path(void);
/* Read @path into @l: true if read or absent (*@found says which) */
bool view_layout_load(ViewLayout *l, const char *path, bool *found,
                      GError **errp);
bool view_layout_save(const ViewLayout *l, const char *path, GError **errp);

#endif
