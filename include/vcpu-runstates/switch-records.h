/*
 * vCPU and VM runstates: a thread's context switches from Linux
 *
 * perf_event_open() on the calling thread with a software dummy event
 * and context_switch = 1 gives every switch of the thread as a record
 * in a ring shared with the kernel: a switch-in, a switch-out while
 * still runnable (preempted: PERF_RECORD_MISC_SWITCH_OUT_PREEMPT), or a
 * switch-out to sleep, timestamped with CLOCK_MONOTONIC.  Records the
 * kernel had no room for are announced by PERF_RECORD_LOST.  This works
 * unprivileged (perf_event_paranoid <= 2) for the process's own threads
 * with exclude_kernel = 1.  The ring is drained by another thread (the
 * sampler), never by the traced one: reading it is a few loads, no
 * system call.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VCPU_RUNSTATES_SWITCH_RECORDS_H
#define VCPU_RUNSTATES_SWITCH_RECORDS_H

#include "vcpu-runstates/timeline.h"

typedef struct RsSwitchRing {
    int fd;
    void *map;              /* the metadata page, then the data */
    size_t map_size;
    uint8_t *data;
    size_t data_size;       /* a power of two */
} RsSwitchRing;

/*
 * Trace the calling thread's switches into a ring of @data_pages pages
 * (a power of two); if the kernel refuses that much locked memory, try
 * smaller rings down to @min_pages.  Returns 0, or a negative errno
 * with @why set to what failed (the caller says why the exact source is
 * unavailable).
 */
int rs_switch_open(RsSwitchRing *r, unsigned data_pages, unsigned min_pages,
                   const char **why);
void rs_switch_close(RsSwitchRing *r);

/* A switch of the thread at @t: it is now @view */
typedef void RsSwitchFn(void *opaque, int64_t t, RsSchedView view);

/*
 * Parse the records between the ring's tail and head, call @fn for each
 * switch in order, and free their space.  Returns the number of records
 * the kernel announced as lost; *@corrupt is set if the ring held
 * something that is not a record (everything up to the head is then
 * dropped, and counted as one lost record).
 */
uint64_t rs_switch_drain(RsSwitchRing *r, RsSwitchFn *fn, void *opaque,
                         bool *corrupt);

#endif
