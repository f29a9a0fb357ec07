/*
 * qemu-oc-balloond: memory domains (memory cgroups with a limit)
 *
 * A VM run by libvirt or systemd lives in a scope under machine.slice
 * whose memory cgroup has a limit: that limit, not the host's memory, is
 * what a VM runs into first.  A memory domain is one such cgroup
 * directory, cgroup v1 (the memory controller's own hierarchy, files
 * memory.limit_in_bytes, memory.usage_in_bytes, ...) or cgroup v2 (the
 * unified hierarchy, files memory.max, memory.high, memory.current, ...),
 * told apart by which files the directory has.
 *
 * Reading a domain reads a few small files (each read bounded, at most
 * MEMDOMAIN_READ_MAX bytes: a larger file is an error) and never blocks
 * on anything but the kernel's cgroup files.  Every error names the file
 * it is about.  Sizes are in bytes; UINT64_MAX is "no limit" (v2 "max",
 * v1 any limit of at least MEMDOMAIN_V1_NO_LIMIT: the kernel's "none" is
 * 9223372036854771712, 2^63 rounded down to a page).
 *
 * Notification: on v1, the kernel signals an eventfd when usage crosses
 * a threshold (cgroup.event_control); on v2, memory.events changes when
 * the limits are hit (high, max, oom, oom_kill counters), and inotify
 * reports IN_MODIFY for it.  There is no v2 usage threshold: poll usage.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_MEMDOMAIN_H
#define BALLOOND_MEMDOMAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

/* v1 limits from here up mean "no limit" */
#define MEMDOMAIN_V1_NO_LIMIT (1ULL << 62)
/* The most read from one file; a larger file is an error */
#define MEMDOMAIN_READ_MAX 8192

typedef enum MemDomainKind { MEMDOMAIN_V1, MEMDOMAIN_V2 } MemDomainKind;

typedef struct MemDomainState {
    /* v1 memory.limit_in_bytes; v2 min(memory.max, memory.high) */
    uint64_t limit;
    /* v1 the same; v2 memory.max */
    uint64_t hard_limit;
    /* v1 memory.usage_in_bytes; v2 memory.current */
    uint64_t usage;
    /*
     * What the kernel can reclaim without swap: the page cache, from
     * memory.stat (v1 total_inactive_file + total_active_file, the
     * subtree's; v2 inactive_file + active_file, hierarchical already).
     * There is no swap on these hosts, so anonymous memory cannot be
     * reclaimed, only dropped by an OOM kill; file pages can be written
     * back if dirty and dropped.  The kernel reclaims them before the
     * domain hits its limit, so they count as room.
     */
    uint64_t reclaimable;
    /* limit - usage + reclaimable, saturated; INT64_MAX without a limit */
    int64_t headroom;
    /* "oom_kill N": v1 memory.oom_control (0 without it), v2 memory.events */
    uint64_t oom_kills;
    /* the PSI file's "some avg10=" if the domain has one, else -1 */
    double psi_some_avg10;
} MemDomainState;

typedef struct MemDomain MemDomain;

/*
 * The domain at cgroup directory @dir.  @psi_path: a memory.pressure
 * file to read PSI from (for v1, the process's v2 cgroup: see
 * memdomain_find()); NULL: for v2, @dir/memory.pressure if it exists
 * now, for v1 none.  NULL with @err if @dir has neither
 * memory.limit_in_bytes nor memory.max.
 */
MemDomain *memdomain_open(const char *dir, const char *psi_path,
                          GError **err);
const char *memdomain_dir(const MemDomain *d);
MemDomainKind memdomain_kind(const MemDomain *d);
/* The PSI file read by memdomain_read(), or NULL */
const char *memdomain_psi_path(const MemDomain *d);
/* Read the domain's files into *@out; false with @err (naming the file) */
bool memdomain_read(MemDomain *d, MemDomainState *out, GError **err);
void memdomain_free(MemDomain *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MemDomain, memdomain_free)

/* "123\n" or "max\n" (UINT64_MAX), the newline optional; false else */
bool memdomain_parse_u64_or_max(const char *text, uint64_t *out);
/*
 * The value of the line "@key N" (a line starting with @key, then spaces
 * or tabs, then decimal digits, then the line's end) in the text of
 * memory.stat, memory.events or memory.oom_control; false if no line has
 * @key, or if its value is not such a number
 */
bool memdomain_parse_keyed(const char *text, const char *key, uint64_t *out);
/* limit - usage + reclaimable, saturated to int64_t */
int64_t memdomain_headroom(uint64_t limit, uint64_t usage,
                           uint64_t reclaimable);

/*
 * The memory domains of process @pid: the memory cgroups with a limit
 * among its own cgroup and its ancestors, nearest first, the hierarchy's
 * root excluded.  Directories as g_strdup'd strings (the array frees
 * them); an empty array if none of them has a limit.
 *
 * @proc_root/PID/cgroup (@proc_root normally "/proc") names the cgroups:
 * a v1 line whose controller list has "memory" ("4:memory:/x",
 * "4:memory,foo:/x") selects v1, under @v1_root (normally
 * "/sys/fs/cgroup/memory"); else the line "0::/x" selects v2, under
 * @v2_root (normally "/sys/fs/cgroup"), if @v2_root/cgroup.controllers
 * lists "memory".  A v2 cgroup without memory.max (its parent does not
 * enable the memory controller) has no limit.
 *
 * @psi_path (may be NULL): set to the process's memory.pressure from the
 * v2 hierarchy mounted at @unified_root ("0::" path), a new string, or
 * NULL if there is none (no "0::" line, no such file, or @unified_root
 * NULL).  With v1 memory cgroups and a v2 mount for PSI alone, as
 * systemd's hybrid mode sets up, @unified_root is
 * "/sys/fs/cgroup/unified": pass the result to memdomain_open() for the
 * v1 domains.  On a v2-only host @unified_root is @v2_root, and the
 * result is the nearest cgroup's own memory.pressure.
 *
 * NULL with @err: no such process, no memory cgroup, a cgroup directory
 * that does not exist or whose limit cannot be read.
 */
GPtrArray *memdomain_find(pid_t pid, const char *proc_root,
                          const char *v1_root, const char *v2_root,
                          const char *unified_root, char **psi_path,
                          GError **err);

/*
 * v1: an eventfd (non-blocking, close-on-exec) the kernel signals when
 * the domain's usage crosses @threshold bytes, up or down
 * (cgroup.event_control: "<eventfd> <fd of memory.usage_in_bytes>
 * <threshold>").  Only a crossing signals: arm it from the usage just
 * read.  Poll it for POLLIN and read its 8-byte count.  To move the
 * threshold, close it (that unregisters it) and call again.  -1 with
 * @err for v2, or if the kernel refuses.
 */
int memdomain_usage_threshold_fd(MemDomain *d, uint64_t threshold,
                                 GError **err);
/*
 * v2: an inotify descriptor (non-blocking, close-on-exec) watching
 * memory.events for IN_MODIFY, which the kernel generates when a counter
 * in it changes.  Poll it for POLLIN, drain it with read(), then read
 * the domain.  -1 with @err for v1, or if inotify fails.
 */
int memdomain_events_watch_fd(MemDomain *d, GError **err);

#endif
