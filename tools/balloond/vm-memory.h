/*
 * qemu-oc-balloond: what the daemon knows of each VM's QEMU memory
 *
 * A VM's QEMU resident memory (statm, kept open: qemu-memory.h) is read
 * at its publications (on its worker's loop thread) at most every
 * second, and by plans more often where memory is short; QEMU's own
 * part of it (smaps) far less often.  The policy gets from it how fast
 * the process grows and how much guest memory it holds.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_VM_MEMORY_H
#define BALLOOND_VM_MEMORY_H

#include "daemon.h"
#include "vm-snapshot.h"

/* The daemon's record of VM @name, made if new (under bd.lock) */
BdVm *daemon_vm(const char *name);
/* GDestroyNotify of a BdVm */
void daemon_vm_free(gpointer p);

/* The VM's QEMU process is another one now (under bd.lock) */
void vm_memory_new_process(BdVm *v);

/* A publication: read what is due (its worker's thread, no lock held) */
void vm_memory_refresh(const VmSnapshot *s);

/* Which VMs a plan reads afresh */
typedef enum VmRssWant {
    VM_RSS_NO,
    VM_RSS_TIGHT,       /* in a tight memory domain: every one */
    VM_RSS_PRESSURE,    /* the host is short: the oldest, a few per plan */
} VmRssWant;

/*
 * A plan: read afresh the resident memory of the VMs that @want[i] (one
 * per snapshot) says, unless read less than 100 ms ago (no lock held;
 * noted under bd.lock)
 */
void vm_memory_read(GPtrArray *snaps, const VmRssWant *want,
                    int64_t now_ms);

/* Forget the open files of the VMs not in @snaps (sorted by name) */
void vm_memory_prune(GPtrArray *snaps);

/* How fast the VM's QEMU process grows, MiB/s (under bd.lock) */
double vm_memory_growth(const BdVm *v);

/* The guest memory its QEMU process holds, MiB; 0: unknown (bd.lock) */
uint64_t vm_memory_guest_held_mib(const BdVm *v);

#endif
