/*
 * Guest memory statistics on demand: query-balloon refresh, HMP info
 * balloon, BALLOON_STATS
 *
 * A balloon device registers its ask function and its statistics, and
 * calls balloon_stats_answered() when its guest reports.  The entry points
 * (balloon/stats-qmp.c, balloon/stats-hmp.c) ask for fresh
 * statistics and either reply at once, or make their deferred reply
 * (monitor/deferred.h) wait for the answer, bounded by a timer; each
 * waiter carries the function that gives its reply, and one answer
 * (BalloonStatsAnswer) is made for all the waiters it completes.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOON_BALLOON_STATS_H
#define BALLOON_BALLOON_STATS_H

#include "qapi/qapi-types-machine.h"
#include "monitor/deferred.h"
#include "balloon/stats-requests.h"

/* Default and bounds of query-balloon's timeout, in milliseconds */
#define BALLOON_STATS_TIMEOUT_DEFAULT 5000
#define BALLOON_STATS_TIMEOUT_MAX     60000
/* How long HMP info balloon waits for the guest */
#define BALLOON_STATS_HMP_TIMEOUT     1000

/* The device side: see balloon_stats_requests_register() for @ask, @latest */
void balloon_stats_device_register(void *device, BalloonStatsAskFn *ask,
                                   const BalloonStats *latest);
/* The device goes: every waiter completes (stale, reset) */
void balloon_stats_device_unregister(void *device);
/*
 * The guest reported: @device parsed the report into its latest
 * statistics, and the waiters complete with them, fresh
 */
void balloon_stats_answered(void *device);
/*
 * The guest can no longer answer the request in flight (@why: reset,
 * broken): waiters complete now with what is known, and no event will
 * follow.
 */
void balloon_stats_lost(void *device, BalloonStatsStale why);

/* The entry points' side */

/*
 * What a reply shows, made once for every waiter one answer completes:
 * the balloon's size (upstream's qemu_balloon_info) and the statistics
 */
typedef struct BalloonStatsAnswer {
    Error *err;                 /* no balloon: the reply is this error */
    int64_t actual;             /* the balloon's size, in bytes */
    const BalloonStats *stats;      /* NULL: the guest never reported */
    int64_t age_ms;             /* of @stats, when the answer was made */
    bool fresh;                 /* @stats answer the request */
    BalloonStatsStale why;      /* if not @fresh: why not */
} BalloonStatsAnswer;

/* Gives the reply of deferral @d: called once, when its wait ends */
typedef void BalloonStatsReplyFn(MonitorDeferred *d,
                                 const BalloonStatsAnswer *a);

/*
 * Ask the registered device for fresh statistics.  Returns true if an
 * answer will come; the caller then waits for it (balloon_stats_wait) or wants
 * it as an event (balloon_stats_want_event).  Else false, with @why.
 */
bool balloon_stats_ask(BalloonStatsStale *why);
/* @d waits for the answer asked for, at most @timeout_ms; then @reply */
void balloon_stats_wait(MonitorDeferred *d, int64_t timeout_ms,
                        BalloonStatsReplyFn *reply);
/* The answer asked for goes out as a BALLOON_STATS event */
void balloon_stats_want_event(void);

/* The answer of a reply given now: the latest statistics, stale for @why */
void balloon_stats_answer_now(BalloonStatsAnswer *a, BalloonStatsStale why);
/* Free what @a holds */
void balloon_stats_answer_clear(BalloonStatsAnswer *a);

/* @ms in QAPI's shape (the QMP reply, the event) */
BalloonGuestStats *balloon_stats_guest_stats(const BalloonStats *ms);
/* The QAPI name of each statistic (Linux's numbering) */
extern const char *const balloon_stats_names[BALLOON_STATS_NR];

#endif
