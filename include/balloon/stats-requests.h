/*
 * Balloon statistics: the owner of the device, and the bookkeeping of
 * requests for fresh statistics
 *
 * A pure state machine (standard C, GLib and the QAPI enum
 * BalloonStatsStale) behind balloon/stats.c, which adds the monitor,
 * the timers and the replies; the fuzzer
 * (tests/fuzz/fuzz-balloon-stats.c) drives it directly.
 *
 * It alone holds the registered device: its ask function and the
 * BalloonStats it parses each report into.  A request asks the registered
 * device for fresh statistics.  A sync
 * request then waits, as an opaque token: every waiter completes exactly
 * once, through the done callback, with the device's BalloonStats: fresh
 * when the device answers after it started waiting, or stale with a
 * reason: its own
 * timeout (the caller keeps the deadline and calls
 * balloon_stats_requests_timeout()), a reset, a lost request, unplug,
 * a VM stop.  An async request wants the answer as an event instead.
 * A completion may call back in: a waiter that starts then waits for a
 * later answer, and a waiter only ever completes fresh by an answer of
 * the device it asked.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOON_BALLOON_STATS_REQUESTS_H
#define BALLOON_BALLOON_STATS_REQUESTS_H

#include "qapi/qapi-types-balloon-stats.h"
#include "balloon/stats-buffer.h"

/*
 * A waiter completes with @stats, the statistics its reply shows (the
 * asked device's; NULL if none was registered): @fresh, or stale for
 * @why.  Called once per waiter; may call back into the state machine.
 */
typedef void BalloonStatsDoneFn(void *opaque, void *token,
                                const BalloonStats *stats, bool fresh,
                                BalloonStatsStale why);

/*
 * Ask @device for fresh statistics.  Returns true if an answer will
 * come (a request is now, or already was, in flight), else false with
 * @why set.
 */
typedef bool BalloonStatsAskFn(void *device, BalloonStatsStale *why);

typedef struct BalloonStatsRequests {
    BalloonStatsDoneFn *done;
    void *opaque;
    void *device;               /* the registered device, or NULL */
    BalloonStatsAskFn *ask;
    const BalloonStats *latest; /* the device's statistics (it updates them) */
    GQueue waiters;             /* in the order they started */
    uint64_t next_seq;          /* of the next waiter */
    bool event_wanted;          /* an async request waits for the answer */
} BalloonStatsRequests;

#define BALLOON_STATS_REQUESTS_INIT(done_fn, done_opaque) \
    { .done = (done_fn), .opaque = (done_opaque), .waiters = G_QUEUE_INIT }

void balloon_stats_requests_init(BalloonStatsRequests *r,
                                 BalloonStatsDoneFn *done, void *opaque);

/*
 * @device answers from now on, with @ask; it parses each report into
 * @latest (last_update_ms 0: none yet), which outlives its registration.
 * The waiters of the device registered before complete (stale, reset)
 * before this returns.  The device
 * registered last answers: one registered from a completion here
 * replaces @device in turn.
 */
void balloon_stats_requests_register(BalloonStatsRequests *r, void *device,
                                     BalloonStatsAskFn *ask,
                                     const BalloonStats *latest);
/*
 * @device is gone: every waiter completes (stale, reset) before this
 * returns.  Returns false (and does nothing) if @device is not the one
 * registered.
 */
bool balloon_stats_requests_unregister(BalloonStatsRequests *r, void *device);

/*
 * Start a request: ask the registered device.  Returns true if an answer
 * will come; then the caller either makes a token wait for it
 * (balloon_stats_requests_wait) or wants it as an event
 * (balloon_stats_requests_want_event), before anything else.  Else
 * false, with @why: unsupported (no device) or the device's reason.
 */
bool balloon_stats_requests_ask(BalloonStatsRequests *r,
                                BalloonStatsStale *why);
/*
 * @token waits for the answer asked for.  Without a registered device it
 * completes at once (stale, unsupported).
 */
void balloon_stats_requests_wait(BalloonStatsRequests *r, void *token);
/* The next answer is wanted as an event */
void balloon_stats_requests_want_event(BalloonStatsRequests *r);

/*
 * @token's deadline passed: it completes (stale, timeout).  Returns false
 * (and does nothing) if it is not waiting.
 */
bool balloon_stats_requests_timeout(BalloonStatsRequests *r, void *token);

/*
 * @device answered (its latest statistics are the report it just
 * parsed): the waiters complete with them, fresh.  Returns
 * true if an async request wants the answer as an event (once).  An
 * answer from a device that is not registered is ignored.
 */
bool balloon_stats_requests_answered(BalloonStatsRequests *r, void *device);
/*
 * @device can no longer answer the request in flight (@why): the waiters
 * complete now, stale, and no event will follow.
 */
void balloon_stats_requests_lost(BalloonStatsRequests *r, void *device,
                                 BalloonStatsStale why);
/*
 * The VM stopped: its guest cannot answer, the waiters complete now
 * (stale, stopped).  An event wanted stays wanted: the answer may come
 * after the VM runs again.
 */
void balloon_stats_requests_stopped(BalloonStatsRequests *r);

/* How many tokens wait */
unsigned int balloon_stats_requests_waiting(const BalloonStatsRequests *r);
/* The registered device's statistics (NULL: no device) */
const BalloonStats *
balloon_stats_requests_latest(const BalloonStatsRequests *r);

#endif
