/*
 * Guest memory statistics on demand: QMP query-balloon
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-machine.h"
#include "qapi/qapi-visit-machine.h"
#include "qapi/qobject-output-visitor.h"
#include "sysemu/balloon.h"
#include "balloon/memstats.h"

/* A sync request's wait ended: its reply, built now */
static void qmp_reply(MonitorDeferred *d, bool fresh, BalloonStatsStale why)
{
    Error *err = NULL;
    BalloonInfo *info = memstats_balloon_info(fresh, why, &err);
    QObject *ret = NULL;

    if (info) {
        Visitor *v = qobject_output_visitor_new(&ret);

        visit_type_BalloonInfo(v, "unused", &info, &error_abort);
        visit_complete(v, &ret);
        visit_free(v);
        qapi_free_BalloonInfo(info);
    }
    monitor_deferred_complete_qmp(d, ret, err);
}

/*
 * Start the refresh asked for.  Returns true if the reply was deferred
 * (it is built when the wait ends), else false with @why: why the
 * reply given now is stale.
 */
static bool start_refresh(BalloonStatsRefresh refresh, int64_t timeout_ms,
                          BalloonStatsStale *why)
{
    MonitorDeferred *d;

    *why = BALLOON_STATS_STALE_NOT_REQUESTED;
    if (refresh == BALLOON_STATS_REFRESH_NONE || !memstats_ask(why)) {
        return false;
    }
    if (refresh == BALLOON_STATS_REFRESH_SYNC) {
        d = monitor_defer();
        if (d) {
            memstats_wait(d, timeout_ms, qmp_reply);
            return true;
        }
        /* this monitor cannot wait (out-of-band): the event follows */
    }
    memstats_want_event();
    *why = BALLOON_STATS_STALE_PENDING;
    return false;
}

BalloonInfo *qmp_query_balloon(bool has_refresh, BalloonStatsRefresh refresh,
                               bool has_timeout, int64_t timeout,
                               Error **errp)
{
    /* the balloon's size; no balloon (or KVM cannot balloon): an error */
    g_autoptr(BalloonInfo) info = qemu_balloon_info(errp);
    BalloonStatsStale why;

    if (!info) {
        return NULL;
    }
    if (!has_refresh) {
        refresh = BALLOON_STATS_REFRESH_NONE;
    }
    if (has_timeout && refresh != BALLOON_STATS_REFRESH_SYNC) {
        error_setg(errp, "'timeout' applies only to 'refresh': 'sync'");
        return NULL;
    }
    if (!has_timeout) {
        timeout = MEMSTATS_TIMEOUT_DEFAULT;
    } else if (timeout < 1 || timeout > MEMSTATS_TIMEOUT_MAX) {
        error_setg(errp, "'timeout' must be between 1 and %d milliseconds",
                   MEMSTATS_TIMEOUT_MAX);
        return NULL;
    }
    if (start_refresh(refresh, timeout, &why)) {
        /* discarded: the deferred reply is built when the wait ends */
        return g_steal_pointer(&info);
    }
    memstats_fill(info, false, why);
    return g_steal_pointer(&info);
}
