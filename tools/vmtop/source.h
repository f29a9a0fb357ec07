/*
 * vmtop: where the frames come from
 *
 * Attached to the host's collector (qemu-oc-balloond --serve): the
 * collector's latest frame, and no connection of vmtop's own to any VM;
 * or direct: vmtop's own fleet of workers (--qmp-dir, --connect).  Every
 * frame says which (the header's status, "source" in JSON).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VMTOP_SOURCE_H
#define VMTOP_SOURCE_H

#include "collector-client.h"
#include "fleet.h"

typedef struct VmtopSource VmtopSource;

/* Both take their argument */
VmtopSource *vmtop_source_direct(Fleet *fleet);
VmtopSource *vmtop_source_collector(CollectorClient *c, const char *path);

/* The latest snapshot of every VM, sorted by name (unref each, free) */
GPtrArray *vmtop_source_snapshots(VmtopSource *src);

/* Attached to a collector (its frames are there at once)? */
bool vmtop_source_is_collector(VmtopSource *src);

/* Has every VM had its two samples, or given up for now? */
bool vmtop_source_settled(VmtopSource *src);

/* One line: "direct" or "collector PATH (...)" */
char *vmtop_source_status(VmtopSource *src);

/* The same as JSON: {"mode": ..., ...} */
json_object *vmtop_source_to_json(VmtopSource *src);

void vmtop_source_free(VmtopSource *src);

#endif
