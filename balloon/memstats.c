/*
 * Guest memory statistics on demand: the requests, their waiters and
 * the replies
 *
 * See include/balloon/memstats.h.  Waiters (sync QMP requests, HMP
 * info balloon) share one guest round trip: the device is asked once,
 * and every waiter completes when the guest answers, or on its own
 * timer; the bookkeeping is balloon/memstats-requests.c.  Nothing here
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
#include "balloon/memstats.h"
#include "balloon/memstats-requests.h"
#include "trace.h"

const char *const memstats_names[MEMSTATS_NR] = {
    "swap-in", "swap-out", "major-faults", "minor-faults",
    "free-memory", "total-memory", "available-memory", "disk-caches",
    "hugetlb-allocations", "hugetlb-failures", "oom-kills", "alloc-stalls",
    "async-scans", "direct-scans", "async-reclaims", "direct-reclaims",
};

uint64_t *memstats_guest_stat(BalloonGuestStats *gs, unsigned int tag,
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

QEMU_BUILD_BUG_ON(MEMSTATS_NR != 16);  /* the tags memstats_guest_stat knows */
QEMU_BUILD_BUG_ON(ARRAY_SIZE(memstats_names) != MEMSTATS_NR);
QEMU_BUILD_BUG_ON(MEMSTATS_NR > 32);   /* the reported bitmap */

typedef struct MemStatsWaiter {
    MonitorDeferred *deferred;
    MemStatsReplyFn *reply;
    QEMUTimer *timer;
} MemStatsWaiter;

static const MemStatsDeviceOps *device_ops;
static void *device;
static VMChangeStateEntry *vm_state_entry;

static void waiter_done(void *opaque, void *token, bool fresh,
                        MemStatsWhy why);

/* waiters (MemStatsWaiter tokens) and the event wanted */
static MemStatsRequests requests = MEMSTATS_REQUESTS_INIT(waiter_done, NULL);

/* The bookkeeping's reasons must be QAPI's, in the same order */
#define SAME_WHY(why, stale) QEMU_BUILD_BUG_ON((int)(why) != (int)(stale))
SAME_WHY(MEMSTATS_WHY__MAX, BALLOON_STATS_STALE__MAX);
SAME_WHY(MEMSTATS_WHY_NOT_REQUESTED, BALLOON_STATS_STALE_NOT_REQUESTED);
SAME_WHY(MEMSTATS_WHY_PENDING, BALLOON_STATS_STALE_PENDING);
SAME_WHY(MEMSTATS_WHY_TIMEOUT, BALLOON_STATS_STALE_TIMEOUT);
SAME_WHY(MEMSTATS_WHY_UNSUPPORTED, BALLOON_STATS_STALE_UNSUPPORTED);
SAME_WHY(MEMSTATS_WHY_NOT_READY, BALLOON_STATS_STALE_NOT_READY);
SAME_WHY(MEMSTATS_WHY_RESET, BALLOON_STATS_STALE_RESET);
SAME_WHY(MEMSTATS_WHY_STOPPED, BALLOON_STATS_STALE_STOPPED);
SAME_WHY(MEMSTATS_WHY_BROKEN, BALLOON_STATS_STALE_BROKEN);

/* A stopped guest cannot answer: waiters complete now, not at timeout */
static void vm_state_change(void *opaque, bool running, RunState state)
{
    if (!running) {
        memstats_requests_stopped(&requests);
    }
}

static bool device_ask(void *dev, MemStatsWhy *why)
{
    BalloonStatsStale stale = BALLOON_STATS_STALE_NOT_READY;

    g_assert(dev == device);
    if (device_ops->ask(dev, &stale)) {
        return true;
    }
    *why = (MemStatsWhy)stale;
    return false;
}

void memstats_device_register(const MemStatsDeviceOps *ops, void *opaque)
{
    memstats_requests_register(&requests, opaque, device_ask);
    device_ops = ops;
    device = opaque;
    if (!vm_state_entry) {
        vm_state_entry = qemu_add_vm_change_state_handler(vm_state_change,
                                                          NULL);
    }
}

void memstats_device_unregister(void *opaque)
{
    /* the waiters' replies still show the device's statistics */
    if (!memstats_requests_unregister(&requests, opaque)) {
        return;
    }
    qemu_del_vm_change_state_handler(vm_state_entry);
    vm_state_entry = NULL;
    device_ops = NULL;
    device = NULL;
}

static BalloonGuestStats *guest_stats_from(const MemStats *ms)
{
    BalloonGuestStats *gs = g_new0(BalloonGuestStats, 1);
    uint64_t *val;
    bool *has;
    unsigned int i;

    for (i = 0; i < MEMSTATS_NR; i++) {
        if (ms->reported & (1u << i)) {
            val = memstats_guest_stat(gs, i, &has);
            *has = true;
            *val = ms->val[i];
        }
    }
    return gs;
}

void memstats_fill(BalloonInfo *info, bool fresh, BalloonStatsStale why)
{
    const MemStats *ms = device_ops ? device_ops->latest(device) : NULL;

    if (ms && ms->last_update_ms) {
        info->has_stats = true;
        info->stats = guest_stats_from(ms);
        info->has_last_update = true;
        info->last_update = ms->last_update_ms;
        info->has_age = true;
        info->age = MAX(0, g_get_real_time() / 1000 - ms->last_update_ms);
    }
    info->fresh = fresh;
    info->has_stale_reason = !fresh;
    info->stale_reason = fresh ? 0 : why;
}

BalloonInfo *memstats_balloon_info(bool fresh, BalloonStatsStale why,
                                   Error **errp)
{
    BalloonInfo *info = qemu_balloon_info(errp);

    if (info) {
        memstats_fill(info, fresh, why);
    }
    return info;
}

bool memstats_ask(BalloonStatsStale *why)
{
    MemStatsWhy w;

    if (memstats_requests_ask(&requests, &w)) {
        return true;
    }
    *why = (BalloonStatsStale)w;
    trace_memstats_cannot_ask(BalloonStatsStale_str(*why));
    return false;
}

static void waiter_timeout(void *opaque)
{
    memstats_requests_timeout(&requests, opaque);
}

void memstats_wait(MonitorDeferred *d, int64_t timeout_ms,
                   MemStatsReplyFn *reply)
{
    MemStatsWaiter *w = g_new0(MemStatsWaiter, 1);

    w->deferred = d;
    w->reply = reply;
    w->timer = timer_new_ms(QEMU_CLOCK_REALTIME, waiter_timeout, w);
    timer_mod(w->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + timeout_ms);
    trace_memstats_waiter_start(w, timeout_ms);
    memstats_requests_wait(&requests, w);
}

/* The bookkeeping completes a waiter: its entry point replies */
static void waiter_done(void *opaque, void *token, bool fresh,
                        MemStatsWhy why)
{
    MemStatsWaiter *w = token;

    timer_free(w->timer);
    trace_memstats_waiter_complete(
        w, fresh, fresh ? "-" : BalloonStatsStale_str((BalloonStatsStale)why));
    w->reply(w->deferred, fresh, (BalloonStatsStale)why);
    g_free(w);
}

void memstats_want_event(void)
{
    memstats_requests_want_event(&requests);
}

void memstats_answered(void *opaque)
{
    trace_memstats_answered(requests.event_wanted,
                            memstats_requests_waiting(&requests));
    if (memstats_requests_answered(&requests, opaque)) {
        g_autoptr(BalloonInfo) info = memstats_balloon_info(true, 0, NULL);

        if (info && info->has_stats) {
            qapi_event_send_balloon_stats(info->actual, info->stats,
                                          info->last_update);
        }
    }
}

void memstats_lost(void *opaque, BalloonStatsStale why)
{
    memstats_requests_lost(&requests, opaque, (MemStatsWhy)why);
}
