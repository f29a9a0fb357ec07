/*
 * Guest memory statistics on demand: QMP query-balloon
 *
 * The command is 'gen': false, so that its marshaller is this file's:
 * a sync request that waits returns nothing to the dispatcher (the
 * monitor drops the reply of a deferred request, and no return value is
 * built, marshalled or traced for it), and its one reply is built from
 * the answer when the wait ends.  Every reply, at once or deferred, is
 * made by reply_of() and traced by balloon_stats_qmp_reply.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/compat-policy.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-machine.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qobject-input-visitor.h"
#include "qapi/qobject-output-visitor.h"
#include "sysemu/balloon.h"
#include "balloon/stats.h"
#include "trace.h"

/* The reply @a gives, or its error */
static QObject *reply_of(const BalloonStatsAnswer *a, Error **errp)
{
    g_autoptr(BalloonInfo) info = NULL;
    QObject *ret = NULL;
    Visitor *v;

    trace_balloon_stats_qmp_reply(
        a->fresh, a->fresh ? "-" : BalloonStatsStale_str(a->why),
        a->err != NULL);
    if (a->err) {
        error_propagate(errp, error_copy(a->err));
        return NULL;
    }
    info = g_new0(BalloonInfo, 1);
    info->actual = a->actual;
    if (a->stats) {
        info->has_stats = true;
        info->stats = balloon_stats_guest_stats(a->stats);
        info->has_last_update = true;
        info->last_update = a->stats->last_update_ms;
        info->has_age = true;
        info->age = a->age_ms;
    }
    info->fresh = a->fresh;
    info->has_stale_reason = !a->fresh;
    info->stale_reason = a->why;
    v = qobject_output_visitor_new(&ret);
    visit_type_BalloonInfo(v, "unused", &info, &error_abort);
    visit_complete(v, &ret);
    visit_free(v);
    return ret;
}

/* A sync request's wait ended: its reply */
static void qmp_reply(MonitorDeferred *d, const BalloonStatsAnswer *a)
{
    Error *err = NULL;
    QObject *ret = reply_of(a, &err);

    monitor_deferred_complete_qmp(d, ret, err);
}

/*
 * Start the refresh asked for.  Returns true if the reply was deferred
 * (it is given when the wait ends), else false with @why: why the
 * reply given now is stale.
 */
static bool start_refresh(BalloonStatsRefresh refresh, int64_t timeout_ms,
                          BalloonStatsStale *why)
{
    MonitorDeferred *d;

    *why = BALLOON_STATS_STALE_NOT_REQUESTED;
    if (refresh == BALLOON_STATS_REFRESH_NONE || !balloon_stats_ask(why)) {
        return false;
    }
    if (refresh == BALLOON_STATS_REFRESH_SYNC) {
        d = monitor_defer();
        if (d) {
            balloon_stats_wait(d, timeout_ms, qmp_reply);
            return true;
        }
        /* this monitor cannot wait (out-of-band): the event follows */
    }
    balloon_stats_want_event();
    *why = BALLOON_STATS_STALE_PENDING;
    return false;
}

/* query-balloon's arguments, checked; false with @errp set if bad */
static bool get_args(QDict *args, q_obj_query_balloon_arg *arg,
                     Error **errp)
{
    Visitor *v = qobject_input_visitor_new_qmp(QOBJECT(args));
    bool ok = false;

    if (visit_start_struct(v, NULL, NULL, 0, errp)) {
        ok = visit_type_q_obj_query_balloon_arg_members(v, arg, errp) &&
             visit_check_struct(v, errp);
        visit_end_struct(v, NULL);
    }
    visit_free(v);
    if (!ok) {
        return false;
    }
    if (!arg->has_refresh) {
        arg->refresh = BALLOON_STATS_REFRESH_NONE;
    }
    if (arg->has_timeout && arg->refresh != BALLOON_STATS_REFRESH_SYNC) {
        error_setg(errp, "'timeout' applies only to 'refresh': 'sync'");
        return false;
    }
    if (!arg->has_timeout) {
        arg->timeout = BALLOON_STATS_TIMEOUT_DEFAULT;
    } else if (arg->timeout < 1 || arg->timeout > BALLOON_STATS_TIMEOUT_MAX) {
        error_setg(errp, "'timeout' must be between 1 and %d milliseconds",
                   BALLOON_STATS_TIMEOUT_MAX);
        return false;
    }
    return true;
}

void qmp_marshal_query_balloon(QDict *args, QObject **ret, Error **errp)
{
    q_obj_query_balloon_arg arg = {};
    BalloonStatsAnswer a = {};
    BalloonStatsStale why;

    if (!get_args(args, &arg, errp)) {
        return;
    }
    trace_balloon_stats_qmp_query(BalloonStatsRefresh_str(arg.refresh),
                                  arg.timeout);
    if (start_refresh(arg.refresh, arg.timeout, &why)) {
        return;         /* deferred: no reply now (see above) */
    }
    /* no balloon: its error (nothing was asked: it has no device) */
    balloon_stats_answer_now(&a, why);
    *ret = reply_of(&a, errp);
    balloon_stats_answer_clear(&a);
}
