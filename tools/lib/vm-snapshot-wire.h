/*
 * qemu-oc host tools: a VmSnapshot on the collector's reader protocol
 *
 * The collector (qemu-oc-balloond --serve) sends each VM's snapshot to
 * its readers (vmtop) with every raw counter it holds, so that a reader
 * computes exactly what it would from its own connection.  The format is
 * part of the reader protocol (docs/collector.md, version
 * VM_SNAPSHOT_WIRE_VERSION).  Decoding is strict: a member of the wrong
 * type or out of range fails the whole VM, with an error that names it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_VM_SNAPSHOT_WIRE_H
#define TOOLS_VM_SNAPSHOT_WIRE_H

#include "vm-snapshot.h"

#define VM_SNAPSHOT_WIRE_VERSION 1

/* @s as one "vms" element of a frame (a new object) */
json_object *vm_snapshot_to_wire(const VmSnapshot *s);

/* Errors of vm_snapshot_from_wire(): the member that is wrong, named */
#define VM_SNAPSHOT_WIRE_ERROR vm_snapshot_wire_error_quark()
GQuark vm_snapshot_wire_error_quark(void);

typedef enum VmSnapshotWireError {
    VM_SNAPSHOT_WIRE_ERROR_INVALID,
} VmSnapshotWireError;

/* A snapshot (ref 1) from a "vms" element; NULL with @err if malformed */
VmSnapshot *vm_snapshot_from_wire(json_object *o, GError **err);

#endif
