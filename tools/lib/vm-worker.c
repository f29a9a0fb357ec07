/*
 * qemu-oc host tools: a worker per VM, on a loop thread
 *
 * See vm-worker.h and vm-worker-priv.h.  This file holds what any
 * thread calls (a reader taking the latest snapshot, the policy asking
 * for a balloon target), the publication and the VM's answering or
 * not.  The worker's own state lives on its loop thread; another thread
 * reaches it only by setting a request under the lock and waking the
 * worker's tick source.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "vm-worker-priv.h"

const VmWorkerConfig vm_worker_default_config = {
    .interval_ms = 2000,
    .timeout_ms = 1000,
    .backoff_max_ms = 10000,
};

/* A blocking call this long past its deadline makes the VM unresponsive */
#define CALL_GRACE_MS 250

/* Workers not freed yet, for vm_worker_wait_all() */
static GMutex live_lock;
static GCond live_cond;
static unsigned live_workers;

void vm_worker_publish(VmWorker *w)
{
    VmSnapshot *next = vm_snapshot_copy(w->work);
    VmWorkerNotifyFn *notify;
    VmSnapshot *old;

    next->taken_us = g_get_monotonic_time();
    g_mutex_lock(&w->lock);
    old = w->published;
    w->published = next;
    notify = w->notify;
    g_mutex_unlock(&w->lock);
    vm_snapshot_unref(old);
    if (notify) {
        notify(w->opaque, w);
    }
}

/*
 * A blocking call past its deadline (under lock): the published
 * snapshot marked unresponsive since the call began, built once per
 * call (NULL if no call is late)
 */
static VmSnapshot *overdue_locked(VmWorker *w)
{
    int64_t now = g_get_monotonic_time(), late;
    VmSnapshot *o;

    late = now - w->call_since_us -
           (int64_t)(w->cfg.timeout_ms + CALL_GRACE_MS) * 1000;
    if (!w->call_since_us || late < 0) {
        return NULL;
    }
    if (!w->overdue) {
        o = vm_snapshot_copy(w->published);
        o->taken_us = now;
        if (o->responsive || !o->unresponsive_since_us) {
            o->unresponsive_since_us = g_get_real_time() -
                                       (now - w->call_since_us);
        }
        o->responsive = false;
        g_free(o->error);
        o->error = g_strdup_printf("%s: no answer within %d ms (the call "
                                   "still waits)", w->call_what,
                                   w->cfg.timeout_ms);
        g_message("%s: %s", w->name, o->error);
        w->overdue = o;
    }
    return w->overdue;
}

VmSnapshot *vm_worker_snapshot(VmWorker *w)
{
    VmSnapshot *s;

    g_mutex_lock(&w->lock);
    s = overdue_locked(w);
    s = vm_snapshot_ref(s ? s : w->published);
    g_mutex_unlock(&w->lock);
    return s;
}

void vm_worker_call_begin(VmWorker *w, const char *what)
{
    g_mutex_lock(&w->lock);
    w->call_since_us = g_get_monotonic_time();
    w->call_what = what;
    g_mutex_unlock(&w->lock);
}

void vm_worker_call_end(VmWorker *w)
{
    VmSnapshot *o;

    g_mutex_lock(&w->lock);
    w->call_since_us = 0;
    o = g_steal_pointer(&w->overdue);
    g_mutex_unlock(&w->lock);
    vm_snapshot_unref(o);
}

const char *vm_worker_name(VmWorker *w)
{
    return w->name;
}

/* Wake the worker on its loop thread (under w->lock) */
static void wake_locked(VmWorker *w)
{
    g_atomic_int_set(&w->poked, 1);
    loop_pool_wake(w->loop);
}

void vm_worker_kick(VmWorker *w)
{
    g_mutex_lock(&w->lock);
    w->kick = true;
    wake_locked(w);
    g_mutex_unlock(&w->lock);
}

/*
 * Log the failure in work->error once: a dead VM fails every retry the
 * same way, so a repeat is counted, and said when something else happens
 */
static void log_failure(VmWorker *w)
{
    w->failures++;
    if (!g_strcmp0(w->failure, w->work->error)) {
        w->repeats++;
        return;
    }
    if (w->repeats) {
        g_message("%s: (the failure before repeated %u time%s)", w->name,
                  w->repeats, w->repeats == 1 ? "" : "s");
    }
    g_free(w->failure);
    w->failure = g_strdup(w->work->error);
    w->repeats = 0;
    g_message("%s: %s", w->name, w->failure);
}

void vm_worker_mark_unresponsive(VmWorker *w, const char *what,
                                 const GError *err)
{
    g_free(w->work->error);
    w->work->error = g_strdup_printf("%s: %s", what, err->message);
    log_failure(w);
    if (w->work->responsive || !w->work->unresponsive_since_us) {
        w->work->unresponsive_since_us = g_get_real_time();
    }
    w->work->responsive = false;
    vm_worker_publish(w);
}

void vm_worker_mark_responsive(VmWorker *w)
{
    if (w->failures) {
        g_message("%s: answering again, after %u failure%s", w->name,
                  w->failures, w->failures == 1 ? "" : "s");
    }
    g_clear_pointer(&w->failure, g_free);
    w->repeats = w->failures = 0;
    w->work->responsive = true;
    w->work->unresponsive_since_us = 0;
}

void vm_worker_set_balloon(VmWorker *w, uint64_t bytes,
                           VmWorkerBalloonFn *done, void *opaque)
{
    g_mutex_lock(&w->lock);
    w->balloon_pending = true;
    w->balloon_bytes = bytes;
    w->balloon_done = done;
    w->balloon_opaque = opaque;
    wake_locked(w);
    g_mutex_unlock(&w->lock);
}

void vm_worker_set_running(VmWorker *w, bool running, VmWorkerRunFn *done,
                           void *opaque)
{
    g_mutex_lock(&w->lock);
    w->run_pending = true;
    w->run_running = running;
    w->run_done = done;
    w->run_opaque = opaque;
    wake_locked(w);
    g_mutex_unlock(&w->lock);
}

void vm_worker_freed(void)
{
    g_mutex_lock(&live_lock);
    live_workers--;
    g_cond_broadcast(&live_cond);
    g_mutex_unlock(&live_lock);
}

bool vm_worker_wait_all(int timeout_ms)
{
    int64_t end = g_get_monotonic_time() + timeout_ms * (int64_t)1000;
    bool all;

    g_mutex_lock(&live_lock);
    while (live_workers &&
           g_cond_wait_until(&live_cond, &live_lock, end)) {
        /* one more ended: look again */
    }
    all = live_workers == 0;
    g_mutex_unlock(&live_lock);
    return all;
}

VmWorker *vm_worker_start(const char *name, const char *where, VmLink *link,
                          const VmWorkerConfig *cfg,
                          VmWorkerNotifyFn *notify, void *opaque)
{
    VmWorker *w = g_new0(VmWorker, 1);
    const char *path = vm_link_socket_path(link, &w->qmp_lim);

    w->name = g_strdup(name);
    w->where = g_strdup(where);
    w->cfg = cfg ? *cfg : vm_worker_default_config;
    w->notify = notify;
    w->opaque = opaque;
    g_mutex_init(&w->lock);
    w->work = vm_snapshot_new(name, where);
    w->published = vm_snapshot_copy(w->work);
    if (path) {
        /* a QMP socket: read on the loop itself */
        w->tr = &vm_transport_qmp;
        w->qmp_path = g_strdup(path);
        vm_link_free(link);
    } else {
        w->tr = &vm_transport_jobs;
        w->link = link;
        link->event_fn = vm_worker_event;   /* (on the loop: jobs_events) */
        link->event_opaque = w;
    }
    g_mutex_lock(&live_lock);
    live_workers++;
    g_mutex_unlock(&live_lock);
    w->loop = loop_pool_take();
    w->ctx = loop_pool_context(w->loop);
    vm_worker_attach(w);    /* from now on the worker lives there */
    return w;
}

void vm_worker_stop(VmWorker *w)
{
    g_mutex_lock(&w->lock);
    w->stop = true;
    w->notify = NULL;
    wake_locked(w);
    g_mutex_unlock(&w->lock);
}
