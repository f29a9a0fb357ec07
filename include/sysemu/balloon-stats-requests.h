/*
 * Balloon statistics: the bookkeeping of requests for fresh statistics
 *
 * A pure state machine (standard C and GLib only) behind
 * balloon/stats.c, which adds the monitor, the timers and the QAPI
 * replies; the fuzzer (tests/fuzz/fuzz-balloon-stats.c) drives it
 * directly.
 *
 * A request asks the registered device for fresh statistics.  A sync
 * request then waits, as an opaque token: every waiter completes exactly
 * once, through the done callback, with fresh statistics when the device
 * answers after it started waiting, or stale with a reason: its own
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

#ifndef SYSEMU_BALLOON_STATS_REQUESTS_H
#define SYSEMU_BALLOON_STATS_REQUESTS_H

/* Why statistics are not fresh: the order of QAPI BalloonStatsStale */
typedef enum BalloonStatsWhy {
    BALLOON_STATS_WHY_NOT_REQUESTED,
    BALLOON_STATS_WHY_PENDING,
    BALLOON_STATS_WHY_TIMEOUT,
    BALLOON_STATS_WHY_UNSUPPORTED,
    BALLOON_STATS_WHY_NOT_READY,
    BALLOON_STATS_WHY_RESET,
    BALLOON_STATS_WHY_STOPPED,
    BALLOON_STATS_WHY_BROKEN,
    BALLOON_STATS_WHY__MAX,
} BalloonStatsWhy;

/*
 * A waiter completes: @fresh, or stale for @why.  Called once per
 * waiter; may call back into the state machine.
 */
typedef void BalloonStatsDoneFn(void *opaque, void *token, bool fresh,
                                BalloonStatsWhy why);

/*
 * Ask @device for fresh statistics.  Returns true if an answer will
 * come (a request is now, or already was, in flight), else false with
 * @why set.
 */
typedef bool BalloonStatsAskFn(void *device, BalloonStatsWhy *why);

typedef struct BalloonStatsRequests {
    BalloonStatsDoneFn *done;
    void *opaque;
    void *device;               /* the registered device, or NULL */
    BalloonStatsAskFn *ask;
    GQueue waiters;             /* in the order they started */
    uint64_t next_seq;          /* of the next waiter */
    bool event_wanted;          /* an async request waits for the answer */
} BalloonStatsRequests;

#define BALLOON_STATS_REQUESTS_INIT(done_fn, done_opaque) \
    { .done = (done_fn), .opaque = (done_opaque), .waiters = G_QUEUE_INIT }

void balloon_stats_requests_init(BalloonStatsRequests *r,
                                 BalloonStatsDoneFn *done, void *opaque);

/* @device answers from now on (another one registered is unregistered) */
void balloon_stats_requests_register(BalloonStatsRequests *r, void *device,
                                     BalloonStatsAskFn *ask);
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
bool balloon_stats_requests_ask(BalloonStatsRequests *r, BalloonStatsWhy *why);
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
 * @device answered: the waiters complete with fresh statistics.  Returns
 * true if an async request wants the answer as an event (once).  An
 * answer from a device that is not registered is ignored.
 */
bool balloon_stats_requests_answered(BalloonStatsRequests *r, void *device);
/*
 * @device can no longer answer the request in flight (@why): the waiters
 * complete now, stale, and no event will follow.
 */
void balloon_stats_requests_lost(BalloonStatsRequests *r, void *device,
                                 BalloonStatsWhy why);
/*
 * The VM stopped: its guest cannot answer, the waiters complete now
 * (stale, stopped).  An event wanted stays wanted: the answer may come
 * after the VM runs again.
 */
void balloon_stats_requests_stopped(BalloonStatsRequests *r);

/* How many tokens wait */
unsigned int balloon_stats_requests_waiting(const BalloonStatsRequests *r);

#endif
