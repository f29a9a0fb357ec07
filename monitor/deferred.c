/*
 * Deferred completion of in-band monitor commands
 *
 * See include/monitor/deferred.h for the API.  The QMP dispatcher calls
 * the hooks of monitor/deferred-internal.h:
 *  - around each in-band dispatch, to learn whether the handler deferred
 *    its reply (then the dispatcher drops the handler's own reply and
 *    leaves the monitor suspended);
 *  - when picking the next request, to skip monitors with a deferred
 *    request outstanding (so one monitor's replies stay in order);
 *  - when a client disconnects and at shutdown.
 * Everything runs in the main thread under the BQL, except the QMP
 * disconnect hook: it is called in the monitor I/O thread, and only
 * schedules the work in the main thread (deferred_cancel_bh).
 *
 * A client must never wait for, nor see, anything of an earlier client
 * of the same monitor.  Each QMP client connection is a session: the
 * monitor's session number goes up when a client disconnects, and each
 * request carries the number of the session it came in.  A request can
 * outlive its session (it was taken off the queue just before the
 * client went away): its reply is dropped, and if it defers, the
 * deferral is orphaned from the start.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/coroutine.h"
#include "qemu/main-loop.h"
#include "qemu/queue.h"
#include "qapi/error.h"
#include "qapi/qmp/dispatch.h"
#include "qapi/qmp/qdict.h"
#include "qapi/qmp/qstring.h"
#include "block/aio.h"
#include "monitor/deferred.h"
#include "monitor-internal.h"
#include "deferred-internal.h"
#include "trace.h"

typedef enum MonitorDeferredKind {
    DEFERRED_QMP,           /* QMP in-band command */
    DEFERRED_HMP,           /* HMP command on an HMP monitor */
    DEFERRED_HMP_IN_QMP,    /* HMP command run by human-monitor-command */
} MonitorDeferredKind;

/* Their names in trace events */
static const char *const deferred_kind_names[] = {
    [DEFERRED_QMP] = "qmp",
    [DEFERRED_HMP] = "hmp",
    [DEFERRED_HMP_IN_QMP] = "hmp-in-qmp",
};

struct MonitorDeferred {
    QTAILQ_ENTRY(MonitorDeferred) next;
    MonitorDeferredKind kind;
    Monitor *mon;           /* NULL once orphaned */
    QObject *id;            /* QMP request id, may be NULL */
    bool resume;            /* the monitor was suspended for us */
    uint32_t session;       /* QMP: the client session that asked */
    bool client_gone;       /* HMP: to be orphaned (deferred_hmp_gone_bh) */
};

static QTAILQ_HEAD(, MonitorDeferred) deferred_pending =
    QTAILQ_HEAD_INITIALIZER(deferred_pending);

/* The in-band QMP request being dispatched right now, if any */
static struct {
    MonitorQMP *mon;
    QObject *id;
    uint32_t session;           /* the session it came in */
    MonitorDeferred *taken;     /* deferred by its handler */
    bool completed;             /* ... and already completed */
} cur_req;

uint32_t monitor_deferred_session(MonitorQMP *mon)
{
    return qatomic_read(&mon->oc_session);
}

/* Is the client that sent the request being dispatched gone? */
static bool cur_req_orphaned(void)
{
    return cur_req.session != monitor_deferred_session(cur_req.mon);
}

/* Did the dispatcher suspend @mon for this request? (no OOB: yes) */
static bool suspended_for_request(MonitorQMP *mon)
{
    return !mon->capab[QMP_CAPABILITY_OOB];
}

static MonitorDeferred *deferred_new(MonitorDeferredKind kind, Monitor *mon,
                                     QObject *id, bool resume)
{
    MonitorDeferred *d = g_new0(MonitorDeferred, 1);

    d->kind = kind;
    d->mon = mon;
    d->id = id ? qobject_ref(id) : NULL;
    d->resume = resume;
    QTAILQ_INSERT_TAIL(&deferred_pending, d, next);
    trace_monitor_deferred_defer(d, mon, deferred_kind_names[kind]);
    return d;
}

/* Defer the QMP request being dispatched (its reply is QMP or HMP text) */
static MonitorDeferred *deferred_new_for_request(MonitorDeferredKind kind)
{
    MonitorDeferred *d = deferred_new(kind, &cur_req.mon->common, cur_req.id,
                                      suspended_for_request(cur_req.mon));

    d->session = cur_req.session;
    if (cur_req_orphaned()) {
        /* its client is gone: the dispatcher resumes the monitor */
        trace_monitor_deferred_orphan(d, d->mon);
        d->mon = NULL;
        d->resume = false;
    }
    cur_req.taken = d;
    return d;
}

MonitorDeferred *monitor_defer(void)
{
    Monitor *cur = monitor_cur();

    if (!cur) {
        return NULL;
    }
    if (monitor_is_qmp(cur)) {
        if (!cur_req.mon || &cur_req.mon->common != cur || cur_req.taken) {
            return NULL;        /* out-of-band, or deferred already */
        }
        return deferred_new_for_request(DEFERRED_QMP);
    }
    if (qemu_chr_fe_backend_connected(&cur->chr)) {
        /* an HMP monitor of its own: stop reading its input meanwhile */
        if (monitor_suspend(cur) < 0) {
            return NULL;
        }
        return deferred_new(DEFERRED_HMP, cur, NULL, true);
    }
    /* HMP without a character device: run by QMP human-monitor-command */
    if (cur_req.mon && !cur_req.taken) {
        return deferred_new_for_request(DEFERRED_HMP_IN_QMP);
    }
    return NULL;
}

static void deferred_kick_dispatcher(void)
{
    if (qmp_dispatcher_co_shutdown ||
        qemu_coroutine_self() == qmp_dispatcher_co) {
        return;
    }
    if (!qatomic_xchg(&qmp_dispatcher_co_busy, true)) {
        aio_co_wake(qmp_dispatcher_co);
    }
}

/* Unlink @d; give its monitor back its input and its queue. */
static void deferred_finish(MonitorDeferred *d)
{
    Monitor *mon = d->mon;

    QTAILQ_REMOVE(&deferred_pending, d, next);
    trace_monitor_deferred_complete(d, mon);
    if (d == cur_req.taken) {
        /* completed before its handler returned */
        cur_req.completed = true;
    } else if (mon) {
        if (d->resume) {
            monitor_resume(mon);
        }
        if (monitor_is_qmp(mon)) {
            deferred_kick_dispatcher();
        }
    }
    qobject_unref(d->id);
    g_free(d);
}

static void deferred_send_qmp(MonitorDeferred *d, QObject *ret, Error *err)
{
    QDict *rsp = qmp_response(ret, err, d->id);

    qmp_send_response(container_of(d->mon, MonitorQMP, common), rsp);
    qobject_unref(rsp);
}

void monitor_deferred_complete_qmp(MonitorDeferred *d, QObject *ret,
                                   Error *err)
{
    assert(d->kind == DEFERRED_QMP);
    if (err) {
        qobject_unref(ret);     /* (the error is the reply) */
        ret = NULL;
    }
    if (d->mon) {
        deferred_send_qmp(d, ret, err);
    } else {
        qobject_unref(ret);
        error_free(err);
    }
    deferred_finish(d);
}

/*
 * @text as human-monitor-command returns it: what an HMP command prints
 * goes through monitor_puts(), which ends lines with "\r\n".
 */
static char *hmp_text_as_captured(const char *text)
{
    MonitorHMP hmp = {};
    char *out;

    monitor_data_init(&hmp.common, false, true, false);
    monitor_puts(&hmp.common, text);
    WITH_QEMU_LOCK_GUARD(&hmp.common.mon_lock) {
        out = g_strdup(hmp.common.outbuf->str);
    }
    monitor_data_destroy(&hmp.common);
    return out;
}

void monitor_deferred_complete_hmp(MonitorDeferred *d, const char *text)
{
    assert(d->kind != DEFERRED_QMP);
    if (d->mon && d->kind == DEFERRED_HMP) {
        if (!d->client_gone) {
            monitor_puts(d->mon, text);
        }
    } else if (d->mon) {
        g_autofree char *captured = hmp_text_as_captured(text);

        deferred_send_qmp(d, QOBJECT(qstring_from_str(captured)), NULL);
    }
    deferred_finish(d);
}

void monitor_deferred_dispatch_begin(MonitorQMP *mon, QObject *req,
                                     uint32_t session)
{
    QDict *qdict;

    if (!qemu_in_coroutine()) {
        return;                 /* out-of-band: never deferred */
    }
    qdict = qobject_to(QDict, req);
    cur_req.mon = mon;
    cur_req.id = qdict ? qdict_get(qdict, "id") : NULL;
    cur_req.session = session;
    cur_req.taken = NULL;
    cur_req.completed = false;
}

bool monitor_deferred_dispatch_end(MonitorQMP *mon)
{
    bool deferred, orphaned;

    if (!qemu_in_coroutine() || cur_req.mon != mon) {
        return false;
    }
    deferred = cur_req.taken != NULL;
    orphaned = cur_req_orphaned();
    cur_req.mon = NULL;
    cur_req.id = NULL;
    cur_req.taken = NULL;
    if (deferred && cur_req.completed) {
        /*
         * Completed within the handler: the reply is out, and the
         * dispatcher resumes the monitor as for any other command.
         */
        cur_req.completed = false;
        return true;
    }
    if (orphaned) {
        trace_monitor_deferred_drop_reply(mon);
        return true;
    }
    return deferred;
}

bool monitor_deferred_pending(Monitor *mon)
{
    MonitorDeferred *d;

    QTAILQ_FOREACH(d, &deferred_pending, next) {
        if (d->mon == mon && d->kind != DEFERRED_HMP) {
            return true;
        }
    }
    return false;
}

/*
 * Orphan @d: its client is gone, its reply goes nowhere.  If @d's
 * request is still being dispatched (a handler that is not a coroutine
 * runs in a bottom half, and this one may run before the dispatcher is
 * back), the dispatcher resumes the monitor, as for a request orphaned
 * when it was deferred: resuming here too would leave the monitor's
 * suspend count below zero, and the monitor would never read again.
 */
static void deferred_orphan(MonitorDeferred *d)
{
    trace_monitor_deferred_orphan(d, d->mon);
    if (d->resume && d != cur_req.taken) {
        monitor_resume(d->mon);
    }
    d->resume = false;
    d->mon = NULL;
}

typedef struct DeferredCancel {
    Monitor *mon;
    uint32_t session;       /* the session that ended */
} DeferredCancel;

static void deferred_cancel_bh(void *opaque)
{
    DeferredCancel *c = opaque;
    MonitorDeferred *d;

    QTAILQ_FOREACH(d, &deferred_pending, next) {
        /* not those a client connected since then may have made */
        if (d->mon == c->mon && d->kind != DEFERRED_HMP &&
            (int32_t)(d->session - c->session) <= 0) {
            deferred_orphan(d);
        }
    }
    /* requests of the next client may be queued behind the orphans */
    deferred_kick_dispatcher();
    g_free(c);
}

/*
 * A QMP client went away.  Called in the monitor I/O thread (or the
 * main thread for a monitor without one): the session ends here, so
 * any request of that client still to be dispatched is known to be
 * orphaned, and the main thread orphans its deferrals.
 */
static void deferred_qmp_client_gone(MonitorQMP *mon)
{
    DeferredCancel *c = g_new(DeferredCancel, 1);

    c->mon = &mon->common;
    c->session = qatomic_fetch_inc(&mon->oc_session);
    aio_bh_schedule_oneshot(qemu_get_aio_context(), deferred_cancel_bh, c);
}

static void deferred_hmp_gone_bh(void *opaque)
{
    MonitorDeferred *d;

    QTAILQ_FOREACH(d, &deferred_pending, next) {
        if (d->mon && d->client_gone) {
            deferred_orphan(d);
        }
    }
}

/*
 * An HMP client went away (main thread).  Its deferrals are marked now,
 * so that a client connecting next is never theirs, and orphaned in a
 * bottom half: the event may come from a failed write inside
 * monitor_flush_locked(), with the monitor's output lock held, where
 * resuming the monitor (it prints a prompt) must not happen.
 */
static void deferred_hmp_client_gone(Monitor *mon)
{
    MonitorDeferred *d;
    bool any = false;

    QTAILQ_FOREACH(d, &deferred_pending, next) {
        if (d->mon == mon && d->kind == DEFERRED_HMP) {
            d->client_gone = true;
            any = true;
        }
    }
    if (any) {
        aio_bh_schedule_oneshot(qemu_get_aio_context(), deferred_hmp_gone_bh,
                                NULL);
    }
}

void monitor_deferred_client_gone(Monitor *mon)
{
    if (monitor_is_qmp(mon)) {
        deferred_qmp_client_gone(container_of(mon, MonitorQMP, common));
    } else {
        deferred_hmp_client_gone(mon);
    }
}

void monitor_deferred_shutdown(void)
{
    MonitorDeferred *d;

    QTAILQ_FOREACH(d, &deferred_pending, next) {
        Monitor *mon = d->mon;

        if (!mon) {
            continue;
        }
        trace_monitor_deferred_orphan(d, mon);
        if (d->client_gone) {
            /* nobody to tell */
        } else if (d->kind == DEFERRED_HMP) {
            monitor_puts(mon, "Error: QEMU is shutting down\n");
        } else {
            Error *err = NULL;

            error_setg(&err, "QEMU is shutting down");
            deferred_send_qmp(d, NULL, err);
        }
        d->mon = NULL;
    }
}
