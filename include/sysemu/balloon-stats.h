/*
 * Balloon statistics on demand: the device-independent part
 *
 * A balloon device registers BalloonStatsOps.  query-balloon and HMP
 * info balloon ask it for fresh statistics and wait (bounded, without
 * blocking any other monitor: monitor/deferred.h) or not; the device
 * calls balloon_stats_answered() when the guest reports.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSEMU_BALLOON_STATS_H
#define SYSEMU_BALLOON_STATS_H

#include "qapi/qapi-types-machine.h"
#include "sysemu/balloon-stats-buffer.h"

/* Default and bounds of query-balloon's timeout, in milliseconds */
#define BALLOON_STATS_TIMEOUT_DEFAULT 5000
#define BALLOON_STATS_TIMEOUT_MAX     60000
/* How long HMP info balloon waits for the guest */
#define BALLOON_STATS_HMP_TIMEOUT     1000

typedef struct BalloonStatsOps {
    /*
     * Ask the guest for fresh statistics.  Returns true if an answer
     * will come (a request is now, or already was, in flight), else
     * false with @why set.
     */
    bool (*ask)(void *opaque, BalloonStatsStale *why);
    /* The latest statistics the guest reported */
    void (*get)(void *opaque, BalloonStatsSnapshot *snap);
} BalloonStatsOps;

extern const char *const balloon_stats_names[BALLOON_STATS_NR];

void balloon_stats_register(const BalloonStatsOps *ops, void *opaque);
/* Completes every waiter (stale, reset) */
void balloon_stats_unregister(void *opaque);
/* The guest reported: waiters complete with fresh statistics */
void balloon_stats_answered(void *opaque);
/* The device was reset: waiters complete with what is known */
void balloon_stats_reset(void *opaque);
/*
 * The guest can no longer answer the request in flight (@why): waiters
 * complete now with what is known, and no event will follow.
 */
void balloon_stats_lost(void *opaque, BalloonStatsStale why);

/*
 * query-balloon's statistics part: validate the arguments, add the
 * statistics to @info and start a refresh.  Returns @info, or NULL with
 * @errp set (then @info is freed).
 */
BalloonInfo *balloon_stats_query(BalloonInfo *info,
                                 bool has_refresh, BalloonStatsRefresh refresh,
                                 bool has_timeout, int64_t timeout,
                                 Error **errp);

#endif
