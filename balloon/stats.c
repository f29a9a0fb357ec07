/*
 * Balloon statistics on demand: query-balloon refresh, HMP info balloon,
 * BALLOON_STATS
 *
 * Waiters (sync QMP requests, HMP) share one guest round trip: the device
 * is asked once, and every waiter completes when the guest answers, or
 * on its own timer.  Nothing here blocks: waiting is done by deferring
 * the monitor's reply (monitor/deferred.h).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-machine.h"
#include "qapi/qapi-events-balloon-stats.h"
#include "qapi/qapi-visit-machine.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qobject-output-visitor.h"
#include "monitor/deferred.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "sysemu/runstate.h"
#include "sysemu/balloon-stats.h"
#include "sysemu/balloon-stats-requests.h"
#include "trace.h"

const char *const balloon_stats_names[BALLOON_STATS_NR] = {
    "swap-in", "swap-out", "major-faults", "minor-faults",
    "free-memory", "total-memory", "available-memory", "disk-caches",
    "hugetlb-allocations", "hugetlb-failures", "oom-kills", "alloc-stalls",
    "async-scans", "direct-scans", "async-reclaims", "direct-reclaims",
};

/*
 * Where tag @tag (Linux's numbering, as in balloon_stats_names) lands in
 * the QAPI struct: its value, and its has_ flag in @has.
 */
static uint64_t *stat_field(BalloonGuestStats *gs, unsigned int tag,
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

QEMU_BUILD_BUG_ON(BALLOON_STATS_NR != 16);  /* the tags stat_field knows */
QEMU_BUILD_BUG_ON(ARRAY_SIZE(balloon_stats_names) != BALLOON_STATS_NR);
QEMU_BUILD_BUG_ON(BALLOON_STATS_NR > 32);   /* the reported bitmap */

typedef struct BalloonStatsWaiter {
    MonitorDeferred *deferred;
    QEMUTimer *timer;
} BalloonStatsWaiter;

static const BalloonStatsOps *stats_ops;
static void *stats_opaque;
static VMChangeStateEntry *stats_vmstate;

static void waiter_done(void *opaque, void *token, bool fresh,
                        BalloonStatsWhy why);

/* waiters (BalloonStatsWaiter tokens) and the event wanted */
static BalloonStatsRequests requests =
    BALLOON_STATS_REQUESTS_INIT(waiter_done, NULL);

/* The bookkeeping's reasons must be QAPI's, in the same order */
#define SAME_WHY(why, stale) QEMU_BUILD_BUG_ON((int)(why) != (int)(stale))
SAME_WHY(BALLOON_STATS_WHY__MAX, BALLOON_STATS_STALE__MAX);
SAME_WHY(BALLOON_STATS_WHY_NOT_REQUESTED, BALLOON_STATS_STALE_NOT_REQUESTED);
SAME_WHY(BALLOON_STATS_WHY_PENDING, BALLOON_STATS_STALE_PENDING);
SAME_WHY(BALLOON_STATS_WHY_TIMEOUT, BALLOON_STATS_STALE_TIMEOUT);
SAME_WHY(BALLOON_STATS_WHY_UNSUPPORTED, BALLOON_STATS_STALE_UNSUPPORTED);
SAME_WHY(BALLOON_STATS_WHY_NOT_READY, BALLOON_STATS_STALE_NOT_READY);
SAME_WHY(BALLOON_STATS_WHY_RESET, BALLOON_STATS_STALE_RESET);
SAME_WHY(BALLOON_STATS_WHY_STOPPED, BALLOON_STATS_STALE_STOPPED);
SAME_WHY(BALLOON_STATS_WHY_BROKEN, BALLOON_STATS_STALE_BROKEN);

static BalloonStatsStale stale_from(BalloonStatsWhy why)
{
    return (BalloonStatsStale)why;
}

static BalloonStatsWhy why_from(BalloonStatsStale stale)
{
    return (BalloonStatsWhy)stale;
}

/* A stopped guest cannot answer: waiters complete now, not at timeout */
static void stats_vm_state_change(void *opaque, bool running, RunState state)
{
    if (!running) {
        balloon_stats_requests_stopped(&requests);
    }
}

static bool requests_ask(void *device, BalloonStatsWhy *why)
{
    BalloonStatsStale stale = BALLOON_STATS_STALE_NOT_READY;

    g_assert(device == stats_opaque);
    if (stats_ops->ask(device, &stale)) {
        return true;
    }
    *why = why_from(stale);
    return false;
}

void balloon_stats_register(const BalloonStatsOps *ops, void *opaque)
{
    balloon_stats_requests_register(&requests, opaque, requests_ask);
    stats_ops = ops;
    stats_opaque = opaque;
    if (!stats_vmstate) {
        stats_vmstate = qemu_add_vm_change_state_handler(
            stats_vm_state_change, NULL);
    }
}

static BalloonGuestStats *guest_stats_from(const BalloonStatsSnapshot *snap)
{
    BalloonGuestStats *gs = g_new0(BalloonGuestStats, 1);
    bool *has;
    uint64_t *val;
    unsigned int i;

    for (i = 0; i < BALLOON_STATS_NR; i++) {
        if (snap->reported & (1u << i)) {
            val = stat_field(gs, i, &has);
            *has = true;
            *val = snap->val[i];
        }
    }
    return gs;
}

static void get_snapshot(BalloonStatsSnapshot *snap)
{
    memset(snap, 0, sizeof(*snap));
    if (stats_ops) {
        stats_ops->get(stats_opaque, snap);
    }
}

/* Put the latest statistics in @info, marked stale for @why */
static void fill_latest(BalloonInfo *info, BalloonStatsStale why)
{
    BalloonStatsSnapshot snap;

    get_snapshot(&snap);
    qapi_free_BalloonGuestStats(info->stats);
    info->stats = NULL;
    info->has_stats = info->has_last_update = info->has_age = false;
    if (snap.last_update_ms) {
        info->has_stats = true;
        info->stats = guest_stats_from(&snap);
        info->has_last_update = true;
        info->last_update = snap.last_update_ms;
        info->has_age = true;
        info->age = MAX(0, g_get_real_time() / 1000 - snap.last_update_ms);
    }
    info->fresh = false;
    info->has_stale_reason = true;
    info->stale_reason = why;
}

/* The reply of a waiter, built when it completes */
static BalloonInfo *current_info(bool fresh, BalloonStatsStale why,
                                 Error **errp)
{
    BalloonInfo *info = qmp_query_balloon(false, BALLOON_STATS_REFRESH_NONE,
                                          false, 0, errp);

    if (info && fresh) {
        info->fresh = true;
        info->has_stale_reason = false;
    } else if (info) {
        info->stale_reason = why;
    }
    return info;
}

static char *hmp_format(const BalloonInfo *info)
{
    GString *s = g_string_new(NULL);
    const uint64_t *val;
    bool *has;
    unsigned int i;

    g_string_append_printf(s, "balloon: actual=%" PRId64, info->actual >> 20);
    if (info->has_stats) {
        for (i = 0; i < BALLOON_STATS_NR; i++) {
            val = stat_field(info->stats, i, &has);
            if (*has) {
                g_string_append_printf(s, " %s=%" PRIu64,
                                       balloon_stats_names[i], *val);
            }
        }
        if (!info->fresh) {
            g_string_append_printf(s, " age=%" PRId64, info->age);
        }
    }
    g_string_append_c(s, '\n');
    return g_string_free(s, false);
}

/* The bookkeeping completes a waiter: reply to its monitor */
static void waiter_done(void *opaque, void *token, bool fresh,
                        BalloonStatsWhy why)
{
    BalloonStatsWaiter *w = token;
    Error *err = NULL;
    BalloonInfo *info;

    timer_free(w->timer);
    trace_balloon_stats_waiter_complete(w, fresh, why);
    info = current_info(fresh, stale_from(why), &err);
    if (monitor_deferred_is_hmp(w->deferred)) {
        g_autofree char *text = NULL;

        if (info) {
            text = hmp_format(info);
        } else {
            text = g_strdup_printf("Error: %s\n", error_get_pretty(err));
            error_free(err);
        }
        monitor_deferred_complete_hmp(w->deferred, text);
    } else {
        QObject *ret = NULL;

        if (info) {
            Visitor *v = qobject_output_visitor_new(&ret);

            visit_type_BalloonInfo(v, "unused", &info, &error_abort);
            visit_complete(v, &ret);
            visit_free(v);
        }
        monitor_deferred_complete_qmp(w->deferred, ret, err);
    }
    qapi_free_BalloonInfo(info);
    g_free(w);
}

static void waiter_timeout(void *opaque)
{
    balloon_stats_requests_timeout(&requests, opaque);
}

void balloon_stats_answered(void *opaque)
{
    trace_balloon_stats_answered(requests.event_wanted,
                                 balloon_stats_requests_waiting(&requests));
    if (balloon_stats_requests_answered(&requests, opaque)) {
        g_autoptr(BalloonInfo) info = current_info(true, 0, NULL);

        if (info && info->has_stats) {
            qapi_event_send_balloon_stats(info->actual, info->stats,
                                          info->last_update);
        }
    }
}

void balloon_stats_lost(void *opaque, BalloonStatsStale why)
{
    balloon_stats_requests_lost(&requests, opaque, why_from(why));
}

void balloon_stats_reset(void *opaque)
{
    balloon_stats_lost(opaque, BALLOON_STATS_STALE_RESET);
}

void balloon_stats_unregister(void *opaque)
{
    /* the waiters' replies still show the device's statistics */
    if (!balloon_stats_requests_unregister(&requests, opaque)) {
        return;
    }
    qemu_del_vm_change_state_handler(stats_vmstate);
    stats_vmstate = NULL;
    stats_ops = NULL;
    stats_opaque = NULL;
}

/*
 * Start a refresh for a reply built in @info.  Returns true if the reply
 * was deferred (a waiter completes it later), false if @info is the
 * reply to give now.
 */
static bool refresh_start(BalloonInfo *info, BalloonStatsRefresh refresh,
                          int64_t timeout_ms)
{
    BalloonStatsWhy why;
    BalloonStatsWaiter *w;
    MonitorDeferred *d;

    fill_latest(info, BALLOON_STATS_STALE_NOT_REQUESTED);
    if (refresh == BALLOON_STATS_REFRESH_NONE) {
        return false;
    }
    if (!balloon_stats_requests_ask(&requests, &why)) {
        trace_balloon_stats_cannot_ask(why);
        info->stale_reason = stale_from(why);
        return false;
    }
    if (refresh == BALLOON_STATS_REFRESH_SYNC) {
        d = monitor_defer();
        if (d) {
            w = g_new0(BalloonStatsWaiter, 1);
            w->deferred = d;
            w->timer = timer_new_ms(QEMU_CLOCK_REALTIME, waiter_timeout, w);
            timer_mod(w->timer,
                      qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + timeout_ms);
            trace_balloon_stats_waiter_start(w, timeout_ms);
            balloon_stats_requests_wait(&requests, w);
            return true;
        }
        /* this monitor cannot wait: answer now, the event follows */
    }
    balloon_stats_requests_want_event(&requests);
    info->stale_reason = BALLOON_STATS_STALE_PENDING;
    return false;
}

BalloonInfo *balloon_stats_query(BalloonInfo *info,
                                 bool has_refresh, BalloonStatsRefresh refresh,
                                 bool has_timeout, int64_t timeout,
                                 Error **errp)
{
    if (!has_refresh) {
        refresh = BALLOON_STATS_REFRESH_NONE;
    }
    if (has_timeout && refresh != BALLOON_STATS_REFRESH_SYNC) {
        error_setg(errp, "'timeout' applies only to 'refresh': 'sync'");
        goto fail;
    }
    if (!has_timeout) {
        timeout = BALLOON_STATS_TIMEOUT_DEFAULT;
    } else if (timeout < 1 || timeout > BALLOON_STATS_TIMEOUT_MAX) {
        error_setg(errp, "'timeout' must be between 1 and %d milliseconds",
                   BALLOON_STATS_TIMEOUT_MAX);
        goto fail;
    }
    refresh_start(info, refresh, timeout);
    return info;

fail:
    qapi_free_BalloonInfo(info);
    return NULL;
}

void hmp_info_balloon(Monitor *mon, const QDict *qdict)
{
    bool nowait = qdict_get_try_bool(qdict, "nowait", false);
    g_autoptr(BalloonInfo) info = NULL;
    g_autofree char *text = NULL;
    Error *err = NULL;

    info = qmp_query_balloon(false, BALLOON_STATS_REFRESH_NONE,
                             false, 0, &err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    if (refresh_start(info, nowait ? BALLOON_STATS_REFRESH_NONE
                                   : BALLOON_STATS_REFRESH_SYNC,
                      BALLOON_STATS_HMP_TIMEOUT)) {
        return;     /* the waiter prints */
    }
    text = hmp_format(info);
    monitor_puts(mon, text);
}
