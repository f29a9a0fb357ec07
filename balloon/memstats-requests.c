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

/*
 * Switch first, complete after: a done callback (from here or from any
 * other completion) sees the state of a finished call, so a device it
 * registers is simply the latest one and a request it starts asks that
 * one.
 */
static void replace_device(MemStatsRequests *r, void *device,
                           MemStatsAskFn *ask)
{
    void *old = r->device;

    r->device = device;
    r->ask = ask;
    if (old && old != device) {
        /* the old device's answer will never come */
        r->event_wanted = false;
        complete_all(r, old, false, MEMSTATS_WHY_RESET);
    }
}

void memstats_requests_register(MemStatsRequests *r, void *device,
                                     MemStatsAskFn *ask)
{
    replace_device(r, device, ask);
}

bool memstats_requests_unregister(MemStatsRequests *r, void *device)
{
    if (!device || device != r->device) {
        return false;
    }
    replace_device(r, NULL, NULL);
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
