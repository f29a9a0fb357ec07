/*
 * vmtop: what the live view's screens share (view-curses.c draws the
 * VMs, view-screens.c the f, o and help screens)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VMTOP_VIEW_CURSES_H
#define VMTOP_VIEW_CURSES_H

#include <curses.h>

#include "view.h"

typedef enum ViewScreen {
    VIEW_SCREEN_MAIN,           /* the VMs */
    VIEW_SCREEN_FIELDS,         /* f: show and hide columns */
    VIEW_SCREEN_ORDER,          /* o: order the shown columns */
    VIEW_SCREEN_HELP,           /* h, ?: keys and columns */
} ViewScreen;

/* Draw @text at row @y, cut at the right edge */
void view_draw_line(int y, const char *text, attr_t attr);
/* Show @message on the line above the keys */
void view_show_message(const char *message);

/* Draw screen @s (not MAIN) */
void view_screen_draw(ViewScreen s, const ViewLayout *l);
/* Handle key @ch on screen @s; the screen to show next */
ViewScreen view_screen_key(ViewScreen s, ViewLayout *l, int ch);

#endif
