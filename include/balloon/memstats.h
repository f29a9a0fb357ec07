/*
 * Guest memory statistics on demand: query-balloon refresh, HMP info
 * balloon, BALLOON_STATS
 *
 * A balloon device registers MemStatsDeviceOps and calls
 * memstats_answered() when its guest reports.  The entry points
 * (balloon/memstats-qmp.c, balloon/memstats-hmp.c) ask the device for
 * fresh statistics and either reply at once, or make their deferred
 * reply (monitor/deferred.h) wait for the answer, bounded by a timer;
 * each waiter carries the function that gives its reply.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOON_MEMSTATS_H
#define BALLOON_MEMSTATS_H

#include "qapi/qapi-types-machine.h"
#include "monitor/deferred.h"
#include "balloon/memstats-buffer.h"

/* Default and bounds of query-balloon's timeout, in milliseconds */
#define MEMSTATS_TIMEOUT_DEFAULT 5000
#define MEMSTATS_TIMEOUT_MAX     60000
/* How long HMP info balloon waits for the guest */
#define MEMSTATS_HMP_TIMEOUT     1000

/* What a balloon device provides */
typedef struct MemStatsDeviceOps {
    /*
     * Ask the guest for fresh statistics.  Returns true if an answer
     * will come (a request is now, or already was, in flight), else
     * false with @why set.
     */
    bool (*ask)(void *opaque, BalloonStatsStale *why);
    /* The latest statistics the guest reported (last_update_ms 0: none) */
    const MemStats *(*latest)(void *opaque);
} MemStatsDeviceOps;

/* The device side */
void memstats_device_register(const MemStatsDeviceOps *ops, void *opaque);
/* The device goes: every waiter completes (stale, reset) */
void memstats_device_unregister(void *opaque);
/* The guest reported: waiters complete with fresh statistics */
void memstats_answered(void *opaque);
/*
 * The guest can no longer answer the request in flight (@why: reset,
 * broken): waiters complete now with what is known, and no event will
 * follow.
 */
void memstats_lost(void *opaque, BalloonStatsStale why);

/* The entry points' side */

/* Gives the reply of deferral @d: called once, when its wait ends */
typedef void MemStatsReplyFn(MonitorDeferred *d, bool fresh,
                             BalloonStatsStale why);

/*
 * Ask the registered device for fresh statistics.  Returns true if an
 * answer will come; the caller then waits for it (memstats_wait) or wants
 * it as an event (memstats_want_event).  Else false, with @why.
 */
bool memstats_ask(BalloonStatsStale *why);
/* @d waits for the answer asked for, at most @timeout_ms; then @reply */
void memstats_wait(MonitorDeferred *d, int64_t timeout_ms,
                   MemStatsReplyFn *reply);
/* The answer asked for goes out as a BALLOON_STATS event */
void memstats_want_event(void);

/*
 * Add the latest statistics to @info (upstream filled its size), @fresh
 * or stale for @why
 */
void memstats_fill(BalloonInfo *info, bool fresh, BalloonStatsStale why);
/*
 * A reply of query-balloon: the balloon's size (upstream's
 * qemu_balloon_info) and the latest statistics.  NULL with @errp set if
 * there is no balloon.
 */
BalloonInfo *memstats_balloon_info(bool fresh, BalloonStatsStale why,
                                   Error **errp);

/* Statistic @tag (Linux's numbering) in @gs: its value and has_ flag */
uint64_t *memstats_guest_stat(BalloonGuestStats *gs, unsigned int tag,
                              bool **has);
/* Its QAPI name */
extern const char *const memstats_names[MEMSTATS_NR];

#endif
