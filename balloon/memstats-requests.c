/*
 * Balloon statistics: the bookkeeping of requests for fresh statistics
 *
 * See include/balloon/memstats-requests.h.  No QEMU dependency
 * beyond qemu/osdep.h's standard headers and GLib: the fuzzer compiles
 * this file on its own.
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
                         MemStatsWhy why)
{
    uint64_t end = r->next_seq;
    Waiter *w;

    while ((w = take_waiter(r, device, end))) {
        void *token = w->token;

        g_free(w);
        r->done(r->opaque, token, fresh, why);
    }
}

void memstats_requests_register(MemStatsRequests *r, void *device,
                                     MemStatsAskFn *ask)
{
    /* (a done callback may register yet another one) */
    while (r->device && r->device != device) {
        memstats_requests_unregister(r, r->device);
    }
    r->device = device;
    r->ask = ask;
}

bool memstats_requests_unregister(MemStatsRequests *r, void *device)
{
    if (!device || device != r->device) {
        return false;
    }
    r->device = NULL;
    r->ask = NULL;
    r->event_wanted = false;
    /*
     * A done callback that asks from here finds no device: the waiters
     * all complete, and none can start on the device that goes.
     */
    complete_all(r, device, false, MEMSTATS_WHY_RESET);
    return true;
}

bool memstats_requests_ask(MemStatsRequests *r, MemStatsWhy *why)
{
    if (!r->device) {
        *why = MEMSTATS_WHY_UNSUPPORTED;
        return false;
    }
    return r->ask(r->device, why);
}

void memstats_requests_wait(MemStatsRequests *r, void *token)
{
    Waiter *w;

    if (!r->device) {
        r->done(r->opaque, token, false, MEMSTATS_WHY_UNSUPPORTED);
        return;
    }
    w = g_new0(Waiter, 1);
    w->token = token;
    w->device = r->device;
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

    if (!l) {
        return false;
    }
    g_free(l->data);
    g_queue_delete_link(&r->waiters, l);
    r->done(r->opaque, token, false, MEMSTATS_WHY_TIMEOUT);
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
    complete_all(r, device, true, MEMSTATS_WHY_NOT_REQUESTED);
    return event;
}

void memstats_requests_lost(MemStatsRequests *r, void *device,
                                 MemStatsWhy why)
{
    if (!device || device != r->device) {
        return;
    }
    r->event_wanted = false;
    complete_all(r, device, false, why);
}

void memstats_requests_stopped(MemStatsRequests *r)
{
    complete_all(r, NULL, false, MEMSTATS_WHY_STOPPED);
}

unsigned int memstats_requests_waiting(const MemStatsRequests *r)
{
    return g_queue_get_length((GQueue *)&r->waiters);
}
