/*
 * Guest memory statistics on demand: the requests, their waiters and
 * the replies
 *
 * See include/balloon/stats.h.  Waiters (sync QMP requests, HMP
 * info balloon) share one guest round trip: the device is asked once,
 * and every waiter completes when the guest answers, or on its own
 * timer; the bookkeeping is balloon/stats-requests.c.  Nothing here
 * blocks: waiting is done by deferring the monitor's reply.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/qapi-events-balloon-stats.h"
#include "sysemu/balloon.h"
#include "sysemu/runstate.h"
#include "balloon/stats.h"
#include "balloon/stats-requests.h"
#include "trace.h"

const char *const balloon_stats_names[BALLOON_STATS_NR] = {
    "swap-in", "swap-out", "major-faults", "minor-faults",
    "free-memory", "total-memory", "available-memory", "disk-caches",
    "hugetlb-allocations", "hugetlb-failures", "oom-kills", "alloc-stalls",
    "async-scans", "direct-scans", "async-reclaims", "direct-reclaims",
};

/* Statistic @tag (Linux's numbering) in @gs: its value and has_ flag */
static uint64_t *guest_stat(BalloonGuestStats *gs, unsigned int tag,
                            bool **has)
{
    switch (tag) {
    case 0:
        *has = &gs->has_swap_in;
        return &gs->swap_in;
    case 1:
        *has = &gs->has_swap_out;
        return &gs->swap_out;
    case 2:
        *has = &gs->has_major_faults;
        return &gs->major_faults;
    case 3:
        *has = &gs->has_minor_faults;
        return &gs->minor_faults;
    case 4:
        *has = &gs->has_free_memory;
        return &gs->free_memory;
    case 5:
        *has = &gs->has_total_memory;
        return &gs->total_memory;
    case 6:
        *has = &gs->has_available_memory;
        return &gs->available_memory;
    case 7:
        *has = &gs->has_disk_caches;
        return &gs->disk_caches;
    case 8:
        *has = &gs->has_hugetlb_allocations;
        return &gs->hugetlb_allocations;
    case 9:
        *has = &gs->has_hugetlb_failures;
        return &gs->hugetlb_failures;
    case 10:
        *has = &gs->has_oom_kills;
        return &gs->oom_kills;
    case 11:
        *has = &gs->has_alloc_stalls;
        return &gs->alloc_stalls;
    case 12:
        *has = &gs->has_async_scans;
        return &gs->async_scans;
    case 13:
        *has = &gs->has_direct_scans;
        return &gs->direct_scans;
    case 14:
        *has = &gs->has_async_reclaims;
        return &gs->async_reclaims;
    case 15:
        *has = &gs->has_direct_reclaims;
        return &gs->direct_reclaims;
    }
    g_assert_not_reached();
}

QEMU_BUILD_BUG_ON(BALLOON_STATS_NR != 16);  /* the tags guest_stat knows */
QEMU_BUILD_BUG_ON(ARRAY_SIZE(balloon_stats_names) != BALLOON_STATS_NR);
QEMU_BUILD_BUG_ON(BALLOON_STATS_NR > 32);   /* the reported bitmap */

BalloonGuestStats *balloon_stats_guest_stats(const BalloonStats *ms)
{
    BalloonGuestStats *gs = g_new0(BalloonGuestStats, 1);
    uint64_t *val;
    bool *has;
    unsigned int i;

    for (i = 0; i < BALLOON_STATS_NR; i++) {
        if (ms->reported & (1u << i)) {
            val = guest_stat(gs, i, &has);
            *has = true;
            *val = ms->val[i];
        }
    }
    return gs;
}

typedef struct BalloonStatsWaiter {
    MonitorDeferred *deferred;
    BalloonStatsReplyFn *reply;
    QEMUTimer *timer;
} BalloonStatsWaiter;

static VMChangeStateEntry *vm_state_entry;

static void waiter_done(void *opaque, void *token, const BalloonStats *stats,
                        bool fresh, BalloonStatsStale why);

/* the device, the waiters (BalloonStatsWaiter tokens) and the event wanted */
static BalloonStatsRequests requests =
    BALLOON_STATS_REQUESTS_INIT(waiter_done, NULL);

/* The answer being given to the waiters of a guest's report, if any */
static BalloonStatsAnswer *answering;

/* A stopped guest cannot answer: waiters complete now, not at timeout */
static void vm_state_change(void *opaque, bool running, RunState state)
{
    if (!running) {
        balloon_stats_requests_stopped(&requests);
    }
}

void balloon_stats_device_register(void *device, BalloonStatsAskFn *ask,
                                   const BalloonStats *latest)
{
    balloon_stats_requests_register(&requests, device, ask, latest);
    if (!vm_state_entry) {
        vm_state_entry = qemu_add_vm_change_state_handler(vm_state_change,
                                                          NULL);
    }
}

void balloon_stats_device_unregister(void *device)
{
    /* the waiters' replies still show the device's statistics */
    if (balloon_stats_requests_unregister(&requests, device)) {
        qemu_del_vm_change_state_handler(vm_state_entry);
        vm_state_entry = NULL;
    }
}

/* The answer of the waiters completed with @stats, @fresh or for @why */
static void answer_make(BalloonStatsAnswer *a, const BalloonStats *stats,
                        bool fresh, BalloonStatsStale why)
{
    g_autoptr(BalloonInfo) size = qemu_balloon_info(&a->err);

    a->actual = size ? size->actual : 0;
    a->stats = stats && stats->last_update_ms ? stats : NULL;
    a->age_ms = a->stats
        ? MAX(0, g_get_real_time() / 1000 - a->stats->last_update_ms) : 0;
    a->fresh = fresh;
    a->why = fresh ? BALLOON_STATS_STALE_NOT_REQUESTED : why;
    trace_balloon_stats_answer(fresh, fresh ? "-" : BalloonStatsStale_str(why),
                               a->stats != NULL);
}

void balloon_stats_answer_now(BalloonStatsAnswer *a, BalloonStatsStale why)
{
    answer_make(a, balloon_stats_requests_latest(&requests), false, why);
}

void balloon_stats_answer_clear(BalloonStatsAnswer *a)
{
    error_free(a->err);
    a->err = NULL;
}

bool balloon_stats_ask(BalloonStatsStale *why)
{
    if (balloon_stats_requests_ask(&requests, why)) {
        return true;
    }
    trace_balloon_stats_cannot_ask(BalloonStatsStale_str(*why));
    return false;
}

static void waiter_timeout(void *opaque)
{
    balloon_stats_requests_timeout(&requests, opaque);
}

void balloon_stats_wait(MonitorDeferred *d, int64_t timeout_ms,
                        BalloonStatsReplyFn *reply)
{
    BalloonStatsWaiter *w = g_new0(BalloonStatsWaiter, 1);

    w->deferred = d;
    w->reply = reply;
    w->timer = timer_new_ms(QEMU_CLOCK_REALTIME, waiter_timeout, w);
    timer_mod(w->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + timeout_ms);
    trace_balloon_stats_waiter_start(w, timeout_ms);
    balloon_stats_requests_wait(&requests, w);
}

/* The bookkeeping completes a waiter: its entry point replies */
static void waiter_done(void *opaque, void *token, const BalloonStats *stats,
                        bool fresh, BalloonStatsStale why)
{
    BalloonStatsWaiter *w = token;
    BalloonStatsAnswer own = {};

    timer_free(w->timer);
    trace_balloon_stats_waiter_complete(w, fresh, fresh ? "-" :
                                        BalloonStatsStale_str(why));
    if (fresh && answering) {
        w->reply(w->deferred, answering);   /* (the report's answer) */
    } else {
        answer_make(&own, stats, fresh, why);
        w->reply(w->deferred, &own);
        balloon_stats_answer_clear(&own);
    }
    g_free(w);
}

void balloon_stats_want_event(void)
{
    balloon_stats_requests_want_event(&requests);
}

void balloon_stats_answered(void *device)
{
    BalloonStatsAnswer a = {};
    unsigned int waiting = balloon_stats_requests_waiting(&requests);
    bool event;

    trace_balloon_stats_answered(requests.event_wanted, waiting);
    if (!waiting && !requests.event_wanted) {
        return;
    }
    /* one answer for the waiters and the event (a stray device's: none) */
    answer_make(&a, balloon_stats_requests_latest(&requests), true, 0);
    answering = &a;
    event = balloon_stats_requests_answered(&requests, device);
    answering = NULL;
    if (event && a.stats && !a.err) {
        g_autoptr(BalloonGuestStats) gs = balloon_stats_guest_stats(a.stats);

        qapi_event_send_balloon_stats(a.actual, gs, a.stats->last_update_ms);
    }
    balloon_stats_answer_clear(&a);
}

void balloon_stats_lost(void *device, BalloonStatsStale why)
{
    balloon_stats_requests_lost(&requests, device, why);
}
