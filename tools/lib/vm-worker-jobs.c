/*
 * qemu-oc host tools: a VM worker's blocking link, as jobs on a pool
 *
 * The transport of a VM reached through a link whose calls block (a
 * libvirt domain): every call is a job, run on a thread of a shared
 * pool, one job of a VM at a time and in order; its answer is brought
 * back to the worker's loop thread.  The pool grows a thread for every
 * call running at once and lets idle ones go, so a VM whose call never
 * returns holds one thread and nobody else waits for it.  A call past
 * its deadline (the link itself may have none) makes the VM's snapshot
 * unresponsive for every reader while it waits (vm_worker_call_begin()).
 *
 * Events: the link's descriptor (vm_link_fd()) is watched by the tick;
 * when it is readable the worker takes what has arrived with
 * vm_link_wait_events(0) on its loop thread, which such a link allows
 * beside a call running on another thread (vm-link.h).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "vm-worker-priv.h"

typedef enum JobKind {
    JOB_OPEN,
    JOB_REQ,
    JOB_CLOSE,
    JOB_FREE,               /* the link goes (no worker any more) */
} JobKind;

typedef struct Job {
    JobKind kind;
    VmWorker *w;
    VmLink *link;
    unsigned gen;
    VmReq *r;               /* JOB_REQ */
    /* the outcome */
    bool ok;
    int pid;
    json_object *ret;
    GError *err;
} Job;

static GThreadPool *pool;

static void job_free(Job *j)
{
    json_object_put(j->ret);
    g_clear_error(&j->err);
    g_free(j);
}

static void run_req(Job *j)
{
    VmWorker *w = j->w;
    VmReq *r = j->r;

    vm_worker_call_begin(w, r->command);
    switch (r->kind) {
    case VM_REQ_SET_BALLOON:
        j->ok = vm_link_set_balloon(j->link, r->bytes, w->cfg.timeout_ms,
                                    &j->err);
        break;
    case VM_REQ_SET_RUNNING:
        j->ok = vm_link_set_running(j->link, r->running, w->cfg.timeout_ms,
                                    &j->err);
        break;
    default:
        j->ret = vm_link_execute(j->link, r->command,
                                 g_steal_pointer(&r->args),
                                 w->cfg.timeout_ms, &j->err);
        j->ok = j->ret != NULL;
        break;
    }
    vm_worker_call_end(w);
}

static void start_next(VmWorker *w);

/* A job's outcome, on the worker's loop thread */
static gboolean job_done(gpointer opaque)
{
    Job *j = opaque;
    VmWorker *w = j->w;

    w->job_running = false;
    switch (j->kind) {
    case JOB_OPEN:
        if (j->gen != w->gen || w->state != VM_W_CONNECTING) {
            break;          /* stopped meanwhile: a close follows */
        }
        if (!j->ok) {
            vm_worker_link_failed(w, "connect", j->err);
            break;
        }
        if (vm_link_fd(w->link) >= 0) {
            w->link_tag = g_source_add_unix_fd(w->tick, vm_link_fd(w->link),
                                               G_IO_IN);
        }
        vm_worker_connected(w, j->pid);
        break;
    case JOB_REQ:
        vm_worker_answer(j->r, j->ok ? j->ret : NULL, j->err);
        break;
    default:
        break;
    }
    job_free(j);
    start_next(w);
    vm_worker_arm(w);       /* (a stopped worker goes on with its end) */
    return G_SOURCE_REMOVE;
}

static void job_run(gpointer data, gpointer user_data G_GNUC_UNUSED)
{
    Job *j = data;

    switch (j->kind) {
    case JOB_OPEN:
        vm_worker_call_begin(j->w, "connect");
        j->ok = vm_link_open(j->link, j->w->cfg.timeout_ms, &j->err);
        j->pid = j->ok ? vm_link_pid(j->link) : 0;
        vm_worker_call_end(j->w);
        break;
    case JOB_REQ:
        run_req(j);
        break;
    case JOB_CLOSE:
        vm_link_close(j->link);
        break;
    case JOB_FREE:
        vm_link_free(j->link);
        job_free(j);
        vm_worker_freed();
        return;
    }
    g_main_context_invoke(j->w->ctx, job_done, j);
}

static void push(Job *j)
{
    static gsize once;

    if (g_once_init_enter(&once)) {
        /* unbounded: a stuck call must never hold up another VM's */
        pool = g_thread_pool_new(job_run, NULL, -1, false, NULL);
        g_once_init_leave(&once, 1);
    }
    g_thread_pool_push(pool, j, NULL);
}

static void start_next(VmWorker *w)
{
    Job *j = w->job_running ? NULL : g_queue_pop_head(&w->jobs);

    if (j) {
        w->job_running = true;
        push(j);
    }
}

static void add_job(VmWorker *w, JobKind kind, VmReq *r)
{
    Job *j = g_new0(Job, 1);

    j->kind = kind;
    j->w = w;
    j->link = w->link;
    j->gen = w->gen;
    j->r = r;
    g_queue_push_tail(&w->jobs, j);
    start_next(w);
}

static void jobs_open(VmWorker *w)
{
    add_job(w, JOB_OPEN, NULL);
}

static void jobs_send(VmWorker *w, VmReq *r)
{
    add_job(w, JOB_REQ, r);
}

static void jobs_close(VmWorker *w)
{
    g_autoptr(GError) err = NULL;
    GQueue waiting = G_QUEUE_INIT;
    Job *j;

    if (w->link_tag) {
        g_source_remove_unix_fd(w->tick, w->link_tag);
        w->link_tag = NULL;
    }
    /* the jobs not started are not made: their requests answered now */
    err = g_error_new_literal(QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CLOSED,
                              "connection closed");
    while ((j = g_queue_pop_head(&w->jobs))) {
        g_queue_push_tail(&waiting, j);
    }
    while ((j = g_queue_pop_head(&waiting))) {
        if (j->r) {
            vm_worker_answer(j->r, NULL, err);
        }
        job_free(j);
    }
    add_job(w, JOB_CLOSE, NULL);
}

static bool jobs_idle(VmWorker *w)
{
    return !w->job_running && !w->jobs.length;
}

static void jobs_events(VmWorker *w)
{
    g_autoptr(GError) err = NULL;

    if (w->state >= VM_W_SETUP &&
        !vm_link_wait_events(w->link, 0, &err)) {
        vm_worker_link_failed(w, "events", err);
    }
}

static void jobs_free(VmWorker *w)
{
    Job *j = g_new0(Job, 1);

    /* the link may say goodbye to its peer: on a pool thread too */
    j->kind = JOB_FREE;
    j->link = g_steal_pointer(&w->link);
    push(j);
}

const VmTransportOps vm_transport_jobs = {
    .open = jobs_open,
    .send = jobs_send,
    .close = jobs_close,
    .idle = jobs_idle,
    .events = jobs_events,
    .free = jobs_free,
};
