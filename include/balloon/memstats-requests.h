/*
 * Balloon statistics: the bookkeeping of requests for fresh statistics
 *
 * A pure state machine (standard C and GLib only) behind
 * balloon/memstats.c, which adds the monitor, the timers and the QAPI
 * replies; the fuzzer (tests/fuzz/fuzz-balloon-memstats.c) drives it
 * directly.
 *
 * A request asks the registered device for fresh statistics.  A sync
 * request then waits, as an opaque token: every waiter completes exactly
 * once, through the done callback, with fresh statistics when the device
 * answers after it started waiting, or stale with a reason: its own
 * timeout (the caller keeps the deadline and calls
 * memstats_requests_timeout()), a reset, a lost request, unplug,
 * a VM stop.  An async request wants the answer as an event instead.
 * A completion may call back in: a waiter that starts then waits for a
 * later answer, and a waiter only ever completes fresh by an answer of
 * the device it asked.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOON_MEMSTATS_REQUESTS_H
#define BALLOON_MEMSTATS_REQUESTS_H

/* Why statistics are not fresh: the order of QAPI BalloonStatsStale */
typedef enum MemStatsWhy {
    MEMSTATS_WHY_NOT_REQUESTED,
    MEMSTATS_WHY_PENDING,
    MEMSTATS_WHY_TIMEOUT,
    MEMSTATS_WHY_UNSUPPORTED,
    MEMSTATS_WHY_NOT_READY,
    MEMSTATS_WHY_RESET,
    MEMSTATS_WHY_STOPPED,
    MEMSTATS_WHY_BROKEN,
    MEMSTATS_WHY__MAX,
} MemStatsWhy;

/*
 * A waiter completes: @fresh, or stale for @why.  Called once per
 * waiter; may call back into the state machine.
 */
typedef void MemStatsDoneFn(void *opaque, void *token, bool fresh,
                                MemStatsWhy why);

/*
 * Ask @device for fresh statistics.  Returns true if an answer will
 * come (a request is now, or already was, in flight), else false with
 * @why set.
 */
typedef bool MemStatsAskFn(void *device, MemStatsWhy *why);

typedef struct MemStatsRequests {
    MemStatsDoneFn *done;
    void *opaque;
    void *device;               /* the registered device, or NULL */
    MemStatsAskFn *ask;
    GQueue waiters;             /* in the order they started */
    uint64_t next_seq;          /* of the next waiter */
    bool event_wanted;          /* an async request waits for the answer */
} MemStatsRequests;

#define MEMSTATS_REQUESTS_INIT(done_fn, done_opaque) \
    { .done = (done_fn), .opaque = (done_opaque), .waiters = G_QUEUE_INIT }

void memstats_requests_init(MemStatsRequests *r,
                                 MemStatsDoneFn *done, void *opaque);

/*
 * @device answers from now on: the waiters of the device registered
 * before complete (stale, reset) before this returns.  The device
 * registered last answers: one registered from a completion here
 * replaces @device in turn.
 */
void memstats_requests_register(MemStatsRequests *r, void *device,
                                     MemStatsAskFn *ask);
/*
 * @device is gone: every waiter completes (stale, reset) before this
 * returns.  Returns false (and does nothing) if @device is not the one
 * registered.
 */
bool memstats_requests_unregister(MemStatsRequests *r, void *device);

/*
 * Start a request: ask the registered device.  Returns true if an answer
 * will come; then the caller either makes a token wait for it
 * (memstats_requests_wait) or wants it as an event
 * (memstats_requests_want_event), before anything else.  Else
 * false, with @why: unsupported (no device) or the device's reason.
 */
bool memstats_requests_ask(MemStatsRequests *r, MemStatsWhy *why);
/*
 * @token waits for the answer asked for.  Without a registered device it
 * completes at once (stale, unsupported).
 */
void memstats_requests_wait(MemStatsRequests *r, void *token);
/* The next answer is wanted as an event */
void memstats_requests_want_event(MemStatsRequests *r);

/*
 * @token's deadline passed: it completes (stale, timeout).  Returns false
 * (and does nothing) if it is not waiting.
 */
bool memstats_requests_timeout(MemStatsRequests *r, void *token);

/*
 * @device answered: the waiters complete with fresh statistics.  Returns
 * true if an async request wants the answer as an event (once).  An
 * answer from a device that is not registered is ignored.
 */
bool memstats_requests_answered(MemStatsRequests *r, void *device);
/*
 * @device can no longer answer the request in flight (@why): the waiters
 * complete now, stale, and no event will follow.
 */
void memstats_requests_lost(MemStatsRequests *r, void *device,
                                 MemStatsWhy why);
/*
 * The VM stopped: its guest cannot answer, the waiters complete now
 * (stale, stopped).  An event wanted stays wanted: the answer may come
 * after the VM runs again.
 */
void memstats_requests_stopped(MemStatsRequests *r);

/* How many tokens wait */
unsigned int memstats_requests_waiting(const MemStatsRequests *r);

#endif
