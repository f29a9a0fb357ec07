/*
 * vmtop: the operator's choice of columns and sort (see layout.h)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>

#include "layout.h"

#define GROUP "vmtop"

void view_layout_init(ViewLayout *l)
{
    int i;

    for (i = 0; i < VIEW_COLUMNS_NR; i++) {
        l->order[i] = i;
        l->shown[i] = view_columns[i].shown;
    }
    l->shown[VIEW_COL_NAME] = true;
    l->sort = VIEW_COL_NAME;
    l->reverse = false;
}

bool view_layout_set_columns(ViewLayout *l, const char *list, GError **errp)
{
    g_auto(GStrv) names = g_strsplit_set(list, ",;", -1);
    ViewColumnId order[VIEW_COLUMNS_NR];
    bool seen[VIEW_COLUMNS_NR] = { [VIEW_COL_NAME] = true };
    unsigned n = 0, i;
    int c;

    order[n++] = VIEW_COL_NAME;
    for (i = 0; names[i]; i++) {
        g_strstrip(names[i]);
        if (!*names[i]) {
            continue;
        }
        c = view_column_lookup(names[i]);
        if (c < 0 || strlen(names[i]) == 1) {
            g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "unknown column '%s'", names[i]);
            return false;
        }
        if (seen[c]) {
            if (c == VIEW_COL_NAME) {
                continue;           /* NAME is always first */
            }
            g_set_error(errp, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                        "column '%s' given twice", names[i]);
            return false;
        }
        seen[c] = true;
        order[n++] = c;
    }
    for (i = 0; i < VIEW_COLUMNS_NR; i++) {
        l->shown[i] = seen[i];
    }
    /* the hidden ones keep their relative order, after the shown */
    for (i = 0; i < VIEW_COLUMNS_NR; i++) {
        if (!seen[l->order[i]]) {
            order[n++] = l->order[i];
        }
    }
    memcpy(l->order, order, sizeof(order));
    return true;
}

char *view_layout_columns_string(const ViewLayout *l, char sep)
{
    GString *g = g_string_new(NULL);
    unsigned i;

    for (i = 0; i < VIEW_COLUMNS_NR; i++) {
        ViewColumnId c = l->order[i];

        if (c != VIEW_COL_NAME && l->shown[c]) {
            if (g->len) {
                g_string_append_c(g, sep);
            }
            g_string_append(g, view_columns[c].name);
        }
    }
    return g_string_free(g, false);
}

unsigned view_layout_shown(const ViewLayout *l, ViewColumnId *out)
{
    unsigned i, n = 0;

    out[n++] = VIEW_COL_NAME;
    for (i = 0; i < VIEW_COLUMNS_NR; i++) {
        if (l->order[i] != VIEW_COL_NAME && l->shown[l->order[i]]) {
            out[n++] = l->order[i];
        }
    }
    return n;
}

void view_layout_toggle(ViewLayout *l, ViewColumnId c)
{
    if (c > VIEW_COL_NAME && c < VIEW_COLUMNS_NR) {
        l->shown[c] = !l->shown[c];
    }
}

void view_layout_move(ViewLayout *l, ViewColumnId c, int delta)
{
    int i, pos = -1, other = -1;

    for (i = 0; i < VIEW_COLUMNS_NR; i++) {
        if (l->order[i] == c) {
            pos = i;
        }
    }
    if (pos < 0 || c == VIEW_COL_NAME || !l->shown[c]) {
        return;
    }
    /* the next shown column that way, NAME staying first */
    for (i = pos + (delta < 0 ? -1 : 1); i > 0 && i < VIEW_COLUMNS_NR;
         i += delta < 0 ? -1 : 1) {
        if (l->shown[l->order[i]]) {
            other = i;
            break;
        }
    }
    if (other > 0) {
        l->order[pos] = l->order[other];
        l->order[other] = c;
    }
}

void view_layout_sort_step(ViewLayout *l, int delta)
{
    ViewColumnId shown[VIEW_COLUMNS_NR];
    unsigned n = view_layout_shown(l, shown), i, cur = 0;

    for (i = 0; i < n; i++) {
        if (shown[i] == l->sort) {
            cur = i;
        }
    }
    l->sort = shown[CLAMP((int)cur + delta, 0, (int)n - 1)];
}

char *view_layout_default_path(void)
{
    return g_build_filename(g_get_user_config_dir(), "qemu-oc", "vmtop.conf",
                            NULL);
}

bool view_layout_load(ViewLayout *l, const char *path, bool *found,
                      GError **errp)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *cols = NULL, *sort = NULL;
    ViewLayout next = *l;
    int c;

    *found = false;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
        if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            return true;
        }
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: %s", path,
                    err->message);
        return false;
    }
    *found = true;
    cols = g_key_file_get_string(kf, GROUP, "columns", NULL);
    if (cols && !view_layout_set_columns(&next, cols, &err)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: columns: %s", path, err->message);
        return false;
    }
    sort = g_key_file_get_string(kf, GROUP, "sort", NULL);
    if (sort) {
        c = view_column_lookup(sort);
        if (c < 0) {
            g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "%s: sort: unknown column '%s'", path, sort);
            return false;
        }
        next.sort = c;
    }
    if (g_key_file_has_key(kf, GROUP, "reverse", NULL)) {
        next.reverse = g_key_file_get_boolean(kf, GROUP, "reverse", &err);
        if (err) {
            g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "%s: reverse: %s", path, err->message);
            return false;
        }
    }
    *l = next;
    return true;
}

bool view_layout_save(const ViewLayout *l, const char *path, GError **errp)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *cols = view_layout_columns_string(l, ';');
    g_autofree char *dir = g_path_get_dirname(path);

    if (g_mkdir_with_parents(dir, 0755) < 0) {
        g_set_error(errp, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "%s: %s", dir, g_strerror(errno));
        return false;
    }
    g_key_file_set_comment(kf, NULL, NULL,
                           " vmtop's columns and sort, written by its W key",
                           NULL);
    g_key_file_set_string(kf, GROUP, "columns", cols);
    g_key_file_set_string(kf, GROUP, "sort", view_columns[l->sort].name);
    g_key_file_set_boolean(kf, GROUP, "reverse", l->reverse);
    return g_key_file_save_to_file(kf, path, errp);
}
