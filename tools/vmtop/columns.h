/*
 * vmtop: the columns of a VM line, defined once
 *
 * Every column has one entry in view_columns[]: its name (for --columns,
 * --sort, the config file and CSV), its title, its width, how it is
 * formatted and sorted, and a line of help.  The text lines, the curses
 * view, CSV and sorting all read the table; nothing else lists columns.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VMTOP_COLUMNS_H
#define VMTOP_COLUMNS_H

#include <glib.h>

#include "vm-snapshot.h"

typedef enum ViewColumnId {
    VIEW_COL_NAME,              /* always first, always shown */
    VIEW_COL_HOST,
    VIEW_COL_STATE,
    VIEW_COL_FULL,
    VIEW_COL_CONT,
    VIEW_COL_HAZ,
    VIEW_COL_BLK,
    VIEW_COL_PRUN,
    VIEW_COL_PCON,
    VIEW_COL_CTN,
    VIEW_COL_VCPU,
    VIEW_COL_RUN,
    VIEW_COL_RDY,
    VIEW_COL_CSTP,
    VIEW_COL_LHP,
    VIEW_COL_MEMF,
    VIEW_COL_ACTUAL,
    VIEW_COL_TOTAL,
    VIEW_COL_AVAIL,
    VIEW_COL_FREE,
    VIEW_COL_MAJF,
    VIEW_COL_SWAPIN,
    VIEW_COL_AGE,
    VIEW_COL_UNRESP,
    VIEW_COL_BAL,
    VIEW_COL_PV,
    VIEW_COL_SRC,
    VIEW_COLUMNS_NR
} ViewColumnId;

/* How a column's value is shown (and written to CSV) */
typedef enum ViewColumnKind {
    VIEW_KIND_TEXT,             /* a word */
    VIEW_KIND_SHARE,            /* 0..1, shown as a percentage */
    VIEW_KIND_READY,            /* a share with its ready band's mark */
    VIEW_KIND_COUNT,            /* an integer */
    VIEW_KIND_MIB,              /* bytes, shown in MiB */
    VIEW_KIND_RATE,             /* per second, compact (12K) */
    VIEW_KIND_BYTE_RATE,        /* bytes per second, compact (3.4M) */
    VIEW_KIND_SECONDS,          /* an age: 1.5, then 12m, 3h */
} ViewColumnKind;

typedef struct ViewColumn {
    const char *name;           /* "rdy" */
    const char *title;          /* "RDY%" */
    int width;                  /* of the cell (a space goes before it) */
    ViewColumnKind kind;
    bool ascending;             /* sorted smallest first (else largest) */
    bool shown;                 /* in the default layout */
    char key;                   /* the sort key of --sort and the view */
    const char *help;
} ViewColumn;

extern const ViewColumn view_columns[VIEW_COLUMNS_NR];

/* One VM of a frame: its snapshot and what is computed from it */
typedef struct ViewVm {
    VmSnapshot *s;                  /* a reference */
    bool has_shares;
    double shares[VM_STATES_NR];    /* VM state shares, 0..1 */
    bool has_vcpu_mean;
    double run, rdy;                /* mean vCPU running/runnable share */
    int64_t age_ms;                 /* stats age, -1 if none */
    bool has_lhp;
    VmLhp lhp;                      /* lock-holder preemption figures */
    char *host;                     /* the group it is shown in */
} ViewVm;

/* The column called @name ("rdy"), or its sort key ("y"); -1 if none */
int view_column_lookup(const char *name);

/* The VM's value in column @c (false: none); text columns have none */
bool view_column_value(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                       double *out);
/* The cell as shown, @width wide at most ("-" if no value) */
void view_column_cell(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                      char *buf, size_t len);
/* The cell for CSV: full precision, no marks, empty if no value */
void view_column_csv(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                     GString *out);
/*
 * Order of @a and @b by column @c (ascending or descending as the column
 * says, @reverse turns it round); VMs without a value always come last
 */
int view_column_compare(ViewColumnId c, const ViewVm *a, const ViewVm *b,
                        int64_t now_ms, bool reverse);

/* Append column @c's title / cell to a line, aligned, with its space */
void view_column_put_title(ViewColumnId c, GString *line);
void view_column_put_cell(ViewColumnId c, const ViewVm *v, int64_t now_ms,
                          GString *line);

/* Formatting shared with the vCPU lines */
void view_put_share(GString *g, int width, bool ok, double share);
void view_put_ready(GString *g, bool ok, double share);
void view_put_rate(GString *g, int width, bool ok, double x, double base);
void view_format_duration(char *buf, size_t len, int64_t s);

#endif
