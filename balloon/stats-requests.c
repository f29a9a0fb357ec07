/*
 * Balloon statistics: the bookkeeping of requests for fresh statistics
 *
 * See include/balloon/stats-requests.h.  No QEMU dependency
 * beyond qemu/osdep.h's standard headers, GLib and a generated QAPI
 * header (types only): the fuzzer compiles this file on its own.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "balloon/stats-requests.h"

typedef struct Waiter {
    void *token;
    void *device;               /* the device asked */
    const BalloonStats *stats;      /* its statistics, which the reply shows */
    uint64_t seq;               /* started before waiters of higher seq */
} Waiter;

void balloon_stats_requests_init(BalloonStatsRequests *r,
                                 BalloonStatsDoneFn *done, void *opaque)
{
    memset(r, 0, sizeof(*r));
    r->done = done;
    r->opaque = opaque;
    g_queue_init(&r->waiters);
}

/* The first waiter of @device (any if NULL) that started before @end */
static Waiter *take_waiter(BalloonStatsRequests *r, void *device,
                           uint64_t end)
{
    GList *l;

    for (l = r->waiters.head; l; l = l->next) {
        Waiter *w = l->data;

        if (w->seq >= end) {
            break;              /* the queue is in start order */
        }
        if (!device || w->device == device) {
            g_queue_delete_link(&r->waiters, l);
            return w;
        }
    }
    return NULL;
}

/*
 * Complete the waiters of @device (all if NULL) that wait now (@fresh or
 * stale for @why), in the order they started.  A done callback may start
 * new waiters (they wait for a later answer), complete some (then they
 * are not completed twice), even register another device (its answer
 * completes none of these).
 */
static void complete_all(BalloonStatsRequests *r, void *device, bool fresh,
                         BalloonStatsStale why)
{
    uint64_t end = r->next_seq;
    Waiter *w;

    while ((w = take_waiter(r, device, end))) {
        void *token = w->token;
        const BalloonStats *stats = w->stats;

        g_free(w);
        r->done(r->opaque, token, stats, fresh, why);
    }
}

/*
 * Switch first, complete after: a done callback (from here or from any
 * other completion) sees the state of a finished call, so a device it
 * registers is simply the latest one and a request it starts asks that
 * one.
 */
static void replace_device(BalloonStatsRequests *r, void *device,
                           BalloonStatsAskFn *ask, const BalloonStats *latest)
{
    void *old = r->device;

    r->device = device;
    r->ask = ask;
    r->latest = latest;
    if (old && old != device) {
        /* the old device's answer will never come */
        r->event_wanted = false;
        complete_all(r, old, false, BALLOON_STATS_STALE_RESET);
    }
}

void balloon_stats_requests_register(BalloonStatsRequests *r, void *device,
                                     BalloonStatsAskFn *ask,
                                     const BalloonStats *latest)
{
    replace_device(r, device, ask, latest);
}

bool balloon_stats_requests_unregister(BalloonStatsRequests *r, void *device)
{
    if (!device || device != r->device) {
        return false;
    }
    replace_device(r, NULL, NULL, NULL);
    return true;
}

bool balloon_stats_requests_ask(BalloonStatsRequests *r, BalloonStatsStale *why)
{
    if (!r->device) {
        *why = BALLOON_STATS_STALE_UNSUPPORTED;
        return false;
    }
    return r->ask(r->device, why);
}

void balloon_stats_requests_wait(BalloonStatsRequests *r, void *token)
{
    Waiter *w;

    if (!r->device) {
        r->done(r->opaque, token, NULL, false,
                BALLOON_STATS_STALE_UNSUPPORTED);
        return;
    }
    w = g_new0(Waiter, 1);
    w->token = token;
    w->device = r->device;
    w->stats = r->latest;
    w->seq = r->next_seq++;
    g_queue_push_tail(&r->waiters, w);
}

void balloon_stats_requests_want_event(BalloonStatsRequests *r)
{
    r->event_wanted = true;
}

static gint waiter_is(gconstpointer w, gconstpointer token)
{
    return ((const Waiter *)w)->token != token;
}

bool balloon_stats_requests_timeout(BalloonStatsRequests *r, void *token)
{
    GList *l = g_queue_find_custom(&r->waiters, token, waiter_is);
    const BalloonStats *stats;

    if (!l) {
        return false;
    }
    stats = ((Waiter *)l->data)->stats;
    g_free(l->data);
    g_queue_delete_link(&r->waiters, l);
    r->done(r->opaque, token, stats, false, BALLOON_STATS_STALE_TIMEOUT);
    return true;
}

bool balloon_stats_requests_answered(BalloonStatsRequests *r, void *device)
{
    bool event;

    if (!device || device != r->device) {
        return false;
    }
    /*
     * The event is for the async requests that asked before this answer,
     * whatever the done callbacks do (an async request that starts there
     * waits for the next answer)
     */
    event = r->event_wanted;
    r->event_wanted = false;
    complete_all(r, device, true, BALLOON_STATS_STALE_NOT_REQUESTED);
    return event;
}

void balloon_stats_requests_lost(BalloonStatsRequests *r, void *device,
                                 BalloonStatsStale why)
{
    if (!device || device != r->device) {
        return;
    }
    r->event_wanted = false;
    complete_all(r, device, false, why);
}

void balloon_stats_requests_stopped(BalloonStatsRequests *r)
{
    complete_all(r, NULL, false, BALLOON_STATS_STALE_STOPPED);
}

unsigned int balloon_stats_requests_waiting(const BalloonStatsRequests *r)
{
    return g_queue_get_length((GQueue *)&r->waiters);
}

const BalloonStats *balloon_stats_requests_latest(const BalloonStatsRequests *r)
{
    return r->latest;
}
