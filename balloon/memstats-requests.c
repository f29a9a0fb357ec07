/*
 * Balloon statistics: the bookkeeping of requests for fresh statistics
 *
 * See include/balloon/memstats-requests.h.  No QEMU dependency
 * beyond qemu/osdep.h's standard headers, GLib and a generated QAPI
 * header (types only): the fuzzer compiles this file on its own.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "balloon/memstats-requests.h"

typedef struct Waiter {
    void *token;
    void *device;               /* the device asked */
    const MemStats *stats;      /* its statistics, which the reply shows */
    uint64_t seq;               /* started before waiters of higher seq */
} Waiter;

void memstats_requests_init(MemStatsRequests *r,
                                 MemStatsDoneFn *done, void *opaque)
{
    memset(r, 0, sizeof(*r));
    r->done = done;
    r->opaque = opaque;
    g_queue_init(&r->waiters);
}

/* The first waiter of @device (any if NULL) that started before @end */
static Waiter *take_waiter(MemStatsRequests *r, void *device,
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
static void complete_all(MemStatsRequests *r, void *device, bool fresh,
                         BalloonStatsStale why)
{
    uint64_t end = r->next_seq;
    Waiter *w;

    while ((w = take_waiter(r, device, end))) {
        void *token = w->token;
        const MemStats *stats = w->stats;

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
static void replace_device(MemStatsRequests *r, void *device,
                           MemStatsAskFn *ask, const MemStats *latest)
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

void memstats_requests_register(MemStatsRequests *r, void *device,
                                MemStatsAskFn *ask, const MemStats *latest)
{
    replace_device(r, device, ask, latest);
}

bool memstats_requests_unregister(MemStatsRequests *r, void *device)
{
    if (!device || device != r->device) {
        return false;
    }
    replace_device(r, NULL, NULL, NULL);
    return true;
}

bool memstats_requests_ask(MemStatsRequests *r, BalloonStatsStale *why)
{
    if (!r->device) {
        *why = BALLOON_STATS_STALE_UNSUPPORTED;
        return false;
    }
    return r->ask(r->device, why);
}

void memstats_requests_wait(MemStatsRequests *r, void *token)
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

void memstats_requests_want_event(MemStatsRequests *r)
{
    r->event_wanted = true;
}

static gint waiter_is(gconstpointer w, gconstpointer token)
{
    return ((const Waiter *)w)->token != token;
}

bool memstats_requests_timeout(MemStatsRequests *r, void *token)
{
    GList *l = g_queue_find_custom(&r->waiters, token, waiter_is);
    const MemStats *stats;

    if (!l) {
        return false;
    }
    stats = ((Waiter *)l->data)->stats;
    g_free(l->data);
    g_queue_delete_link(&r->waiters, l);
    r->done(r->opaque, token, stats, false, BALLOON_STATS_STALE_TIMEOUT);
    return true;
}

bool memstats_requests_answered(MemStatsRequests *r, void *device)
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

void memstats_requests_lost(MemStatsRequests *r, void *device,
                            BalloonStatsStale why)
{
    if (!device || device != r->device) {
        return;
    }
    r->event_wanted = false;
    complete_all(r, device, false, why);
}

void memstats_requests_stopped(MemStatsRequests *r)
{
    complete_all(r, NULL, false, BALLOON_STATS_STALE_STOPPED);
}

unsigned int memstats_requests_waiting(const MemStatsRequests *r)
{
    return g_queue_get_length((GQueue *)&r->waiters);
}

const MemStats *memstats_requests_latest(const MemStatsRequests *r)
{
    return r->latest;
}
