/*
 * vmtop: one frame of the fleet, formatted as text (batch, --once and
 * the curses view) or as JSON
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VMTOP_VIEW_H
#define VMTOP_VIEW_H

#include <stdio.h>
#include <glib.h>
#include <json-c/json.h>

#include "source.h"

#include "layout.h"

/* What the fleet looked like at one moment */
typedef struct ViewFrame {
    int64_t now_ms;                 /* wall clock */
    GPtrArray *vms;                 /* of ViewVm */
    unsigned responsive, unresponsive;
    unsigned total;                 /* VMs before the filter */
    char *filter;                   /* the filter applied, or NULL */
    bool grouped;                   /* VMs of more than one host */
    char *source;                   /* where it came from, or NULL */
    json_object *source_json;       /* the same, for JSON, or NULL */
} ViewFrame;

/* A frame of @snaps (as fleet_snapshots() returns it; taken) */
ViewFrame *view_frame_new(GPtrArray *snaps, int64_t now_ms);
/* A frame of @src's latest snapshots, saying where they came from */
ViewFrame *view_frame_from(VmtopSource *src, int64_t now_ms);
void view_frame_free(ViewFrame *f);

/*
 * Does @name match @pattern: a glob if it has '*' or '?', else a
 * substring; case-insensitive
 */
bool view_name_matches(const char *name, const char *pattern);
/* Keep the VMs whose name matches @pattern (NULL or "": all) */
void view_frame_filter(ViewFrame *f, const char *pattern);
/* Sort as @l says, grouped by host when there are several */
void view_frame_sort(ViewFrame *f, const ViewLayout *l);

/* The header line: time, number of VMs, sort, filter, source */
char *view_header(const ViewFrame *f, const ViewLayout *l);
/* The titles of @cols, the line of a VM in them */
char *view_titles(const ViewColumnId *cols, unsigned n);
char *view_vm_line(const ViewVm *v, int64_t now_ms,
                   const ViewColumnId *cols, unsigned n);
/* The line before VM @i if it starts a host's group, else NULL */
char *view_group_line(const ViewFrame *f, guint i);
/* The column titles of vCPU lines */
const char *view_vcpu_titles(void);
/* Append a VM's detail lines (error, vCPU titles, one per vCPU) to @out */
void view_vm_detail(const ViewVm *v, GPtrArray *out);

/* The whole frame as text (batch mode); @expand: every VM's details */
void view_frame_print(const ViewFrame *f, FILE *out, const ViewLayout *l,
                      bool expand);
/* The frame as CSV rows (time, then @l's columns), after a title row */
void view_frame_print_csv(const ViewFrame *f, FILE *out, const ViewLayout *l,
                          bool titles);
/* The whole frame as JSON: {"vms": [...], "time": ms} */
json_object *view_frame_to_json(const ViewFrame *f);

/* The live view: runs until 'q'; returns the exit status */
typedef struct ViewCursesConfig {
    int interval_ms;
    ViewLayout layout;
    const char *filter;             /* or NULL */
    const char *config_path;        /* where W saves the layout */
    const char *message;            /* shown at start, or NULL */
} ViewCursesConfig;

int view_curses_run(VmtopSource *src, const ViewCursesConfig *cfg);

#endif
