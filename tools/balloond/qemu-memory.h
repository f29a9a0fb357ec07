/*
 * qemu-oc-balloond: the memory the host holds for a QEMU process
 *
 * A VM's QEMU process is resident in guest RAM the guest has touched
 * (and not given back) plus QEMU's own memory (its code, heap, TCG's
 * translation buffer, device buffers).  What a balloon gives back to the
 * host is bounded by the first: a guest's free pages it never touched
 * cost nothing, and a balloon takes free pages first.  /proc/PID/statm
 * says the whole cheaply; /proc/PID/smaps splits it: guest RAM is
 * QEMU's writable, non-executable mappings larger than 64 MiB (its RAM
 * blocks; glibc's arenas are 64 MiB at most, TCG's buffer executable).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_QEMU_MEMORY_H
#define BALLOOND_QEMU_MEMORY_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* The resident memory of process @pid (statm), MiB; -1 if unknown */
int64_t qemu_memory_rss_mib(int pid);

/*
 * A process's statm kept open: each reading is one pread() instead of
 * open, read and close (a host of 1,000 VMs reads them often).  The
 * file belongs to the process it was opened for: once that process is
 * gone, a reading fails (-1) even if its pid is reused.  Shared between
 * threads by reference (a reading needs no lock).
 */
typedef struct QemuStatm QemuStatm;

/* NULL if @pid's statm cannot be opened (no such process) */
QemuStatm *qemu_statm_open(int pid);
QemuStatm *qemu_statm_ref(QemuStatm *m);
void qemu_statm_unref(QemuStatm *m);
int qemu_statm_pid(const QemuStatm *m);
/* Resident memory, MiB; -1 if unknown (the process is gone) */
int64_t qemu_statm_rss_mib(QemuStatm *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuStatm, qemu_statm_unref)

/*
 * Parse smaps text: @rss_kib the resident memory of every mapping,
 * @guest_kib that of the guest RAM mappings.  False if no mapping has
 * an Rss line (not smaps).
 */
bool qemu_memory_parse_smaps(const char *text, uint64_t *rss_kib,
                             uint64_t *guest_kib);

/*
 * QEMU's own resident memory, MiB: all of it less its guest RAM's, read
 * from /proc/@pid/smaps; false with @err if unreadable, or if no guest
 * RAM mapping is found (a guest smaller than 64 MiB).
 */
bool qemu_memory_own_mib(int pid, int64_t *own_mib, GError **err);

#endif
