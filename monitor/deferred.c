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
 *  - when a QMP client disconnects and at shutdown.
 * Everything runs in the main thread under the BQL, except the
 * disconnect hook: it is called in the monitor I/O thread, and only
 * schedules the work in the main thread (deferred_cancel_bh).
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

struct MonitorDeferred {
    QTAILQ_ENTRY(MonitorDeferred) next;
    MonitorDeferredKind kind;
    Monitor *mon;           /* NULL once orphaned */
    QObject *id;            /* QMP request id, may be NULL */
    bool resume;            /* the monitor was suspended for us */
    uint32_t seq;           /* order of creation (deferred_seq) */
};

static QTAILQ_HEAD(, MonitorDeferred) deferred_pending =
    QTAILQ_HEAD_INITIALIZER(deferred_pending);

/* Number of the latest deferral: written in the main thread only */
static uint32_t deferred_seq;

/* The in-band QMP request being dispatched right now, if any */
static struct {
    MonitorQMP *mon;
    QObject *id;
    MonitorDeferred *taken;     /* deferred by its handler */
    bool completed;             /* ... and already completed */
} cur_req;

/* Did the dispatcher suspend @mon for this request? (no OOB: yes) */
static bool suspended_for_request(MonitorQMP *mon)
{
    return !mon->capab[QMP_CAPABILITY_OOB];
}

bool monitor_deferred_is_hmp(const MonitorDeferred *d)
{
    return d->kind != DEFERRED_QMP;
}

static MonitorDeferred *deferred_new(MonitorDeferredKind kind, Monitor *mon,
                                     QObject *id, bool resume)
{
    MonitorDeferred *d = g_new0(MonitorDeferred, 1);

    d->kind = kind;
    d->mon = mon;
    d->id = id ? qobject_ref(id) : NULL;
    d->resume = resume;
    d->seq = deferred_seq + 1;
    qatomic_set(&deferred_seq, d->seq);
    QTAILQ_INSERT_TAIL(&deferred_pending, d, next);
    trace_monitor_deferred_defer(d, mon, kind);
    return d;
}

MonitorDeferred *monitor_defer(void)
{
    Monitor *cur = monitor_cur();
    MonitorDeferred *d;

    if (!cur) {
        return NULL;
    }
    if (monitor_is_qmp(cur)) {
        if (!cur_req.mon || &cur_req.mon->common != cur || cur_req.taken) {
            return NULL;        /* out-of-band, or deferred already */
        }
        d = deferred_new(DEFERRED_QMP, cur, cur_req.id,
                         suspended_for_request(cur_req.mon));
        cur_req.taken = d;
        return d;
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
        d = deferred_new(DEFERRED_HMP_IN_QMP, &cur_req.mon->common,
                         cur_req.id, suspended_for_request(cur_req.mon));
        cur_req.taken = d;
        return d;
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
    QDict *rsp;

    if (err) {
        rsp = qmp_error_response(err);
    } else {
        rsp = qdict_new();
        qdict_put_obj(rsp, "return", ret ? ret : QOBJECT(qdict_new()));
    }
    if (d->id) {
        qdict_put_obj(rsp, "id", qobject_ref(d->id));
    }
    qmp_send_response(container_of(d->mon, MonitorQMP, common), rsp);
    qobject_unref(rsp);
}

void monitor_deferred_complete_qmp(MonitorDeferred *d, QObject *ret,
                                   Error *err)
{
    assert(d->kind == DEFERRED_QMP);
    if (d->mon) {
        deferred_send_qmp(d, ret, err);
    } else {
        qobject_unref(ret);
        error_free(err);
    }
    deferred_finish(d);
}

void monitor_deferred_complete_hmp(MonitorDeferred *d, const char *text)
{
    assert(d->kind != DEFERRED_QMP);
    if (d->mon && d->kind == DEFERRED_HMP) {
        monitor_puts(d->mon, text);
    } else if (d->mon) {
        deferred_send_qmp(d, QOBJECT(qstring_from_str(text)), NULL);
    }
    deferred_finish(d);
}

void monitor_deferred_dispatch_begin(MonitorQMP *mon, QObject *req)
{
    QDict *qdict;

    if (!qemu_in_coroutine()) {
        return;                 /* out-of-band: never deferred */
    }
    qdict = qobject_to(QDict, req);
    cur_req.mon = mon;
    cur_req.id = qdict ? qdict_get(qdict, "id") : NULL;
    cur_req.taken = NULL;
    cur_req.completed = false;
}

bool monitor_deferred_dispatch_end(MonitorQMP *mon)
{
    bool deferred;

    if (!qemu_in_coroutine() || cur_req.mon != mon) {
        return false;
    }
    deferred = cur_req.taken != NULL;
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

typedef struct DeferredCancel {
    Monitor *mon;
    uint32_t upto;          /* deferrals up to this number were its */
} DeferredCancel;

static void deferred_cancel_bh(void *opaque)
{
    DeferredCancel *c = opaque;
    MonitorDeferred *d;

    QTAILQ_FOREACH(d, &deferred_pending, next) {
        /* not those a client connected since then may have made */
        if (d->mon == c->mon && (int32_t)(d->seq - c->upto) <= 0) {
            trace_monitor_deferred_orphan(d, c->mon);
            if (d->resume) {
                monitor_resume(c->mon);
            }
            d->mon = NULL;
        }
    }
    g_free(c);
}

/*
 * Called in the monitor I/O thread, which must not touch the list: the
 * main thread orphans the client's deferrals.  Its monitor stays
 * suspended until then.
 */
void monitor_deferred_cancel(Monitor *mon)
{
    DeferredCancel *c = g_new(DeferredCancel, 1);

    c->mon = mon;
    c->upto = qatomic_read(&deferred_seq);
    aio_bh_schedule_oneshot(qemu_get_aio_context(), deferred_cancel_bh, c);
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
        if (d->kind == DEFERRED_HMP) {
            monitor_puts(mon, "Error: QEMU is shutting down\n");
        } else {
            Error *err = NULL;

            error_setg(&err, "QEMU is shutting down");
            deferred_send_qmp(d, NULL, err);
        }
        d->mon = NULL;
    }
}
