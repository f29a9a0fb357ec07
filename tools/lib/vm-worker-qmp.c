/*
 * qemu-oc host tools: a VM worker's QMP socket, on its loop thread
 *
 * The transport of a VM reached by its QMP socket: one QmpAsync
 * connection (qmp-async.c) on the worker's loop, requests pipelined,
 * every one with the worker's timeout.  The connection failing answers
 * every request on it with the failure first (QmpAsync does), so the
 * worker hears of it from the oldest request, by name.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE     /* struct ucred */
#include <sys/socket.h>

#include "qmp-async.h"
#include "vm-worker-priv.h"

/* The peer of a unix socket is the QEMU process itself */
static int peer_pid(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (fd < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return 0;
    }
    return cred.pid;
}

static void on_ready(void *opaque)
{
    VmWorker *w = opaque;

    vm_worker_connected(w, peer_pid(qmp_async_fd(w->qmp)));
}

static void on_fail(void *opaque, const GError *err)
{
    VmWorker *w = opaque;

    vm_worker_link_failed(w, w->state == VM_W_CONNECTING ? "connect"
                          : "events", err);
}

static const QmpAsyncCallbacks callbacks = {
    .ready = on_ready,
    .event = vm_worker_event,
    .fail = on_fail,
};

static void qmp_open(VmWorker *w)
{
    g_autoptr(GError) err = NULL;
    QmpLimits lim = w->qmp_lim;

    if (w->cfg.timeout_ms > 0) {
        lim.greeting_ms = w->cfg.timeout_ms;
    }
    w->qmp = qmp_async_connect(w->ctx, w->qmp_path, &lim, &callbacks, w,
                               &err);
    if (!w->qmp) {
        vm_worker_link_failed(w, "connect", err);
    }
}

static void on_reply(void *opaque, json_object *ret, const GError *err)
{
    vm_worker_answer(opaque, ret, err);
}

static void qmp_send(VmWorker *w, VmReq *r)
{
    qmp_async_execute(w->qmp, r->command, g_steal_pointer(&r->args),
                      w->cfg.timeout_ms, on_reply, r);
}

static void qmp_close(VmWorker *w)
{
    g_autoptr(GError) err = NULL;
    GList *l;

    g_clear_pointer(&w->qmp, qmp_async_free);
    /*
     * No answer comes after the free: every request is on this
     * connection (those of the one before were answered at its close),
     * and is answered now but the one being answered
     */
    err = g_error_new_literal(QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CLOSED,
                              "connection closed");
    do {
        for (l = w->reqs.head; l && ((VmReq *)l->data)->answering;
             l = l->next) {
            /* skip */
        }
        if (l) {
            vm_worker_answer(l->data, NULL, err);
        }
    } while (l);
}

static void qmp_hold(VmWorker *w, bool hold)
{
    if (w->qmp && hold) {
        qmp_async_hold(w->qmp);
    } else if (w->qmp) {
        qmp_async_release(w->qmp);
    }
}

static bool qmp_idle(VmWorker *w G_GNUC_UNUSED)
{
    return true;
}

static void qmp_free(VmWorker *w)
{
    g_clear_pointer(&w->qmp, qmp_async_free);
    vm_worker_freed();
}

const VmTransportOps vm_transport_qmp = {
    .open = qmp_open,
    .send = qmp_send,
    .close = qmp_close,
    .hold = qmp_hold,
    .idle = qmp_idle,
    .free = qmp_free,
};
