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
#include "vm-snapshot.h"

/* Columns of the NAME of a VM line, with the space after it */
#define VIEW_NAME_COLS 17

/* Sort keys (the curses view's keys; --sort) */
#define VIEW_SORT_KEYS "nsfchbmauy"

/* One VM of a frame: its snapshot and what is computed from it */
typedef struct ViewVm {
    VmSnapshot *s;                  /* a reference */
    bool has_shares;
    double shares[VM_STATES_NR];    /* VM state shares, 0..1 */
    bool has_vcpu_mean;
    double run, rdy;                /* mean vCPU running/runnable share */
    int64_t age_ms;                 /* stats age, -1 if none */
} ViewVm;

/* What the fleet looked like at one moment */
typedef struct ViewFrame {
    int64_t now_ms;                 /* wall clock */
    GPtrArray *vms;                 /* of ViewVm */
    unsigned responsive, unresponsive;
    char *source;                   /* where it came from, or NULL */
    json_object *source_json;       /* the same, for JSON, or NULL */
} ViewFrame;

/* A frame of @snaps (as fleet_snapshots() returns it; taken) */
ViewFrame *view_frame_new(GPtrArray *snaps, int64_t now_ms);
/* A frame of @src's latest snapshots, saying where they came from */
ViewFrame *view_frame_from(VmtopSource *src, int64_t now_ms);
void view_frame_free(ViewFrame *f);

/* Is @key one of VIEW_SORT_KEYS? */
bool view_sort_key_valid(char key);
/* Sort by @key; VMs without the value always come last */
void view_frame_sort(ViewFrame *f, char key, bool reverse);

/* The header line: time, number of VMs */
char *view_header(const ViewFrame *f, char sort, bool reverse);
/* The column titles of VM lines, and of vCPU lines */
const char *view_vm_titles(void);
const char *view_vcpu_titles(void);
/* One VM's line */
char *view_vm_line(const ViewVm *v, int64_t now_ms);
/* Append a VM's detail lines (error, vCPU titles, one per vCPU) to @out */
void view_vm_detail(const ViewVm *v, GPtrArray *out);

/* The whole frame as text (batch mode); @expand: every VM's details */
void view_frame_print(const ViewFrame *f, FILE *out, char sort,
                      bool reverse, bool expand);
/* The whole frame as JSON: {"vms": [...], "time": ms} */
json_object *view_frame_to_json(const ViewFrame *f);

/* The live view: runs until 'q'; returns the exit status */
typedef struct ViewCursesConfig {
    int interval_ms;
    char sort;
    bool reverse;
} ViewCursesConfig;

int view_curses_run(VmtopSource *src, const ViewCursesConfig *cfg);

#endif
