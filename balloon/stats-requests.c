/*
 * Balloon statistics: the bookkeeping of requests for fresh statistics
 *
 * See include/sysemu/balloon-stats-requests.h.  No QEMU dependency
 * beyond qemu/osdep.h's standard headers and GLib: the fuzzer compiles
 * this file on its own.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "sysemu/balloon-stats-requests.h"

typedef struct Waiter {
    void *token;
} Waiter;

void balloon_stats_requests_init(BalloonStatsRequests *r,
                                 BalloonStatsDoneFn *done, void *opaque)
{
    memset(r, 0, sizeof(*r));
    r->done = done;
    r->opaque = opaque;
    g_queue_init(&r->waiters);
}

/* Complete every waiter (@fresh or stale for @why), in start order */
static void complete_all(BalloonStatsRequests *r, bool fresh,
                         BalloonStatsWhy why)
{
    while (!g_queue_is_empty(&r->waiters)) {
        Waiter *w = g_queue_pop_head(&r->waiters);
        void *token = w->token;

        g_free(w);
        r->done(r->opaque, token, fresh, why);
    }
}

void balloon_stats_requests_register(BalloonStatsRequests *r, void *device,
                                     BalloonStatsAskFn *ask)
{
    r->device = device;
    r->ask = ask;
}

bool balloon_stats_requests_unregister(BalloonStatsRequests *r, void *device)
{
    if (!device || device != r->device) {
        return false;
    }
    balloon_stats_requests_lost(r, device, BALLOON_STATS_WHY_RESET);
    r->device = NULL;
    r->ask = NULL;
    return true;
}

bool balloon_stats_requests_ask(BalloonStatsRequests *r, BalloonStatsWhy *why)
{
    if (!r->device) {
        *why = BALLOON_STATS_WHY_UNSUPPORTED;
        return false;
    }
    return r->ask(r->device, why);
}

void balloon_stats_requests_wait(BalloonStatsRequests *r, void *token)
{
    Waiter *w;

    if (!r->device) {
        r->done(r->opaque, token, false, BALLOON_STATS_WHY_UNSUPPORTED);
        return;
    }
    w = g_new0(Waiter, 1);
    w->token = token;
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

    if (!l) {
        return false;
    }
    g_free(l->data);
    g_queue_delete_link(&r->waiters, l);
    r->done(r->opaque, token, false, BALLOON_STATS_WHY_TIMEOUT);
    return true;
}

bool balloon_stats_requests_answered(BalloonStatsRequests *r, void *device)
{
    if (!device || device != r->device) {
        return false;
    }
    complete_all(r, true, BALLOON_STATS_WHY_NOT_REQUESTED);
    if (r->event_wanted) {
        r->event_wanted = false;
        return true;
    }
    return false;
}

void balloon_stats_requests_lost(BalloonStatsRequests *r, void *device,
                                 BalloonStatsWhy why)
{
    if (!device || device != r->device) {
        return;
    }
    r->event_wanted = false;
    complete_all(r, false, why);
}

void balloon_stats_requests_stopped(BalloonStatsRequests *r)
{
    complete_all(r, false, BALLOON_STATS_WHY_STOPPED);
}

unsigned int balloon_stats_requests_waiting(const BalloonStatsRequests *r)
{
    return g_queue_get_length((GQueue *)&r->waiters);
}
