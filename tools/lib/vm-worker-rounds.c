/*
 * qemu-oc host tools: a VM worker's life on its loop thread
 *
 * States (vm-worker-priv.h): DOWN, waiting to connect (at once the
 * first time, then with exponential backoff from 200 ms to
 * backoff_max_ms); CONNECTING; SETUP, asking at once what is asked once
 * a connection (the VM's boot RAM, its balloon device and the device's
 * free-page-reporting and deflate-on-oom); then READY and ROUND in
 * turn: every interval_ms a round asks query-balloon {refresh: async}
 * (the fresh statistics come later as BALLOON_STATS, never waited for)
 * and query-vcpu-runstates together, and publishes when both are
 * answered.  A QMP error reply is the VM's answer (the command is
 * missing, say); any other failure, a missed deadline first of all,
 * makes the VM unresponsive and drops the connection, back to DOWN.
 *
 * One GSource, the tick, wakes the worker: at the next thing due (a
 * retry, a round: a field its prepare() reads, so that the loop thread
 * sets it without a system call), or at once when another thread set a
 * request (kick, balloon target, pause or resume, stop: its ready time,
 * which wakes the loop); a link with events of its own has its
 * descriptor there too.  A balloon or run
 * request goes at the next wake-up once the worker is connected (a
 * later one replaces one not yet sent: only the later one's done is
 * called), run before balloon; its done callback is called once, on the
 * loop thread, with its answer, its failure, or "the worker stopped".
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "vm-worker-priv.h"

#define BACKOFF_MIN_MS 200

typedef struct Tick {
    GSource source;
    VmWorker *w;
    int64_t due_us;         /* dispatch at (monotonic µs), -1: never */
} Tick;

static const char *const peripheral_dirs[] = {
    "/machine/peripheral", "/machine/peripheral-anon",
};
static const char *const balloon_props[] = {
    "free-page-reporting", "deflate-on-oom",
};

static VmReq *req_new(VmWorker *w, VmReqKind kind, const char *command,
                      json_object *args)
{
    VmReq *r = g_new0(VmReq, 1);

    r->w = w;
    r->gen = w->gen;
    r->kind = kind;
    r->command = g_strdup(command);
    r->args = args;
    g_queue_push_tail(&w->reqs, r);
    return r;
}

static void req_free(VmReq *r)
{
    g_queue_remove(&r->w->reqs, r);
    json_object_put(r->args);
    g_free(r->command);
    g_free(r);
}

static void send_new(VmWorker *w, VmReqKind kind, const char *command,
                     json_object *args, int index)
{
    VmReq *r = req_new(w, kind, command, args);

    r->index = index;
    w->tr->send(w, r);
}

/* The requests to do with their owner's done callback */
static void user_done(VmReq *r, const GError *err)
{
    if (r->balloon_done) {
        r->balloon_done(r->done_opaque, r->w, r->bytes, err);
    }
    if (r->run_done) {
        r->run_done(r->done_opaque, r->w, r->running, err);
    }
}

void vm_worker_arm(VmWorker *w)
{
    int64_t t = -1;
    bool serving = w->state >= VM_W_SETUP;

    g_mutex_lock(&w->lock);
    if (w->stop ||
        (serving && (w->balloon_pending || w->run_pending)) ||
        (w->state == VM_W_READY && w->kick)) {
        t = 0;
    } else if (w->state == VM_W_DOWN) {
        t = w->retry_us;
    } else if (w->state == VM_W_READY) {
        t = w->next_round_us;
    }
    /* (under the lock: a request set meanwhile wakes it after this) */
    ((Tick *)w->tick)->due_us = t;
    g_mutex_unlock(&w->lock);
}

void vm_worker_link_failed(VmWorker *w, const char *what, const GError *err)
{
    if (w->state == VM_W_DOWN) {
        return;         /* the same failure, said already */
    }
    w->gen++;
    w->state = VM_W_DOWN;
    vm_worker_mark_unresponsive(w, what, err);
    w->tr->close(w);
    w->retry_us = g_get_monotonic_time() + (int64_t)w->backoff_ms * 1000;
    w->backoff_ms = MIN(w->backoff_ms * 2, w->cfg.backoff_max_ms);
    vm_worker_arm(w);
}

static void take_requests(VmWorker *w, bool send);

static void setup_done(VmWorker *w)
{
    w->state = VM_W_READY;
    w->next_round_us = g_get_monotonic_time();     /* a round now */
}

void vm_worker_connected(VmWorker *w, int pid)
{
    unsigned i;

    w->state = VM_W_SETUP;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->work->pid = pid;
    w->work->balloon_fpr = w->work->balloon_deflate = -1;
    w->props_asked = false;
    g_clear_pointer(&w->balloon_path[0], g_free);
    g_clear_pointer(&w->balloon_path[1], g_free);
    w->setup_left = 1 + G_N_ELEMENTS(peripheral_dirs);
    send_new(w, VM_REQ_MEMORY, "query-memory-size-summary", NULL, 0);
    for (i = 0; i < G_N_ELEMENTS(peripheral_dirs); i++) {
        json_object *args = json_object_new_object();

        json_object_object_add(args, "path",
                               json_object_new_string(peripheral_dirs[i]));
        send_new(w, VM_REQ_PERIPHERALS, "qom-list", args, i);
    }
    take_requests(w, true);     /* what waited for a connection, now */
    vm_worker_arm(w);
}

/* The VM's boot RAM, the most a balloon can give back */
static void got_memory(VmWorker *w, json_object *ret)
{
    json_object *v;

    if (ret && json_object_object_get_ex(ret, "base-memory", &v) &&
        json_object_is_type(v, json_type_int) &&
        json_object_get_int64(v) > 0) {
        w->work->max_memory = json_object_get_int64(v);
    }
}

/* The child<virtio-balloon-...> of a peripherals directory, if any */
static void got_peripherals(VmWorker *w, int index, json_object *ret)
{
    size_t j;

    for (j = 0; ret && json_object_is_type(ret, json_type_array) &&
                j < json_object_array_length(ret); j++) {
        json_object *p = json_object_array_get_idx(ret, j), *name, *type;

        if (json_object_object_get_ex(p, "name", &name) &&
            json_object_object_get_ex(p, "type", &type) &&
            g_str_has_prefix(json_object_get_string(type),
                             "child<virtio-balloon")) {
            w->balloon_path[index] = g_strdup_printf(
                "%s/%s", peripheral_dirs[index], json_object_get_string(name));
            return;
        }
    }
}

static void got_balloon_prop(VmWorker *w, int index, json_object *ret)
{
    int v = ret && json_object_is_type(ret, json_type_boolean)
            ? json_object_get_boolean(ret) : -1;

    if (index == 0) {
        w->work->balloon_fpr = v;
    } else {
        w->work->balloon_deflate = v;
    }
}

/* One setup answer in; the balloon's properties once it is found */
static void setup_step(VmWorker *w)
{
    const char *path;
    unsigned i;

    if (--w->setup_left) {
        return;
    }
    path = w->balloon_path[0] ? w->balloon_path[0] : w->balloon_path[1];
    if (w->props_asked || !path) {
        setup_done(w);
        return;
    }
    w->props_asked = true;
    w->setup_left = G_N_ELEMENTS(balloon_props);
    for (i = 0; i < G_N_ELEMENTS(balloon_props); i++) {
        json_object *args = json_object_new_object();

        json_object_object_add(args, "path", json_object_new_string(path));
        json_object_object_add(args, "property",
                               json_object_new_string(balloon_props[i]));
        send_new(w, VM_REQ_BALLOON_PROP, "qom-get", args, i);
    }
}

static void start_round(VmWorker *w)
{
    json_object *args = json_object_new_object();

    g_mutex_lock(&w->lock);
    w->kick = false;
    g_mutex_unlock(&w->lock);
    w->state = VM_W_ROUND;
    w->round_us = g_get_monotonic_time();
    w->round_left = 2;
    json_object_object_add(args, "refresh", json_object_new_string("async"));
    send_new(w, VM_REQ_BALLOON_STATS, "query-balloon", args, 0);
    send_new(w, VM_REQ_RUNSTATES, "query-vcpu-runstates", NULL, 0);
}

static void round_step(VmWorker *w)
{
    if (--w->round_left) {
        return;
    }
    vm_worker_mark_responsive(w);
    vm_worker_publish(w);
    w->state = VM_W_READY;
    w->next_round_us = w->round_us + (int64_t)w->cfg.interval_ms * 1000;
}

/* A round's answer: @ret, or NULL after a QMP error reply (@err) */
static void got_round(VmWorker *w, VmReq *r, json_object *ret,
                      const GError *err)
{
    bool ok = true;

    if (err) {
        g_free(w->work->error);
        w->work->error = g_strdup(err->message);   /* names the command */
    } else if (r->kind == VM_REQ_BALLOON_STATS) {
        ok = vm_snapshot_set_balloon(w->work, ret);
    } else {
        ok = vm_snapshot_set_runstates(w->work, ret, g_get_monotonic_time());
    }
    if (!ok) {
        g_free(w->work->error);
        w->work->error = g_strdup_printf("%s: unexpected answer",
                                         r->command);
    }
    round_step(w);
}

/* A QMP error reply to a setup question: not known, the VM is there */
static void handle(VmWorker *w, VmReq *r, json_object *ret,
                   const GError *err)
{
    switch (r->kind) {
    case VM_REQ_MEMORY:
        got_memory(w, ret);
        setup_step(w);
        break;
    case VM_REQ_PERIPHERALS:
        got_peripherals(w, r->index, ret);
        setup_step(w);
        break;
    case VM_REQ_BALLOON_PROP:
        got_balloon_prop(w, r->index, ret);
        setup_step(w);
        break;
    case VM_REQ_BALLOON_STATS:
    case VM_REQ_RUNSTATES:
        got_round(w, r, ret, err);
        break;
    case VM_REQ_SET_BALLOON:
    case VM_REQ_SET_RUNNING:
        break;          /* the owner was told */
    }
}

void vm_worker_answer(VmReq *r, json_object *ret, const GError *err)
{
    VmWorker *w = r->w;

    r->answering = true;
    user_done(r, err);
    if (r->gen == w->gen && w->state >= VM_W_SETUP) {
        if (err && !g_error_matches(err, QMP_CLIENT_ERROR,
                                    QMP_CLIENT_ERROR_COMMAND)) {
            vm_worker_link_failed(w, r->command, err);
        } else {
            handle(w, r, ret, err);
        }
    }
    req_free(r);
    vm_worker_arm(w);
}

void vm_worker_event(void *opaque, const char *event, json_object *data,
                     int64_t timestamp_us G_GNUC_UNUSED)
{
    VmWorker *w = opaque;

    if (!g_strcmp0(event, "BALLOON_STATS") &&
        vm_snapshot_set_balloon(w->work, data)) {
        vm_worker_publish(w);
    }
}

/*
 * The policy's requests waiting, as requests of the worker (run before
 * balloon), sent if @send
 */
static void take_requests(VmWorker *w, bool send)
{
    VmReq *run = NULL, *balloon = NULL;
    json_object *args;

    g_mutex_lock(&w->lock);
    if (w->run_pending) {
        w->run_pending = false;
        run = req_new(w, VM_REQ_SET_RUNNING, w->run_running ? "cont" : "stop",
                      NULL);
        run->running = w->run_running;
        run->run_done = w->run_done;
        run->done_opaque = w->run_opaque;
    }
    if (w->balloon_pending) {
        w->balloon_pending = false;
        args = json_object_new_object();
        json_object_object_add(args, "value",
                               json_object_new_int64(w->balloon_bytes));
        balloon = req_new(w, VM_REQ_SET_BALLOON, "balloon", args);
        balloon->bytes = w->balloon_bytes;
        balloon->balloon_done = w->balloon_done;
        balloon->done_opaque = w->balloon_opaque;
    }
    g_mutex_unlock(&w->lock);
    if (run && send) {
        w->tr->send(w, run);
    }
    if (balloon && send) {
        w->tr->send(w, balloon);
    }
}

static void send_requests(VmWorker *w)
{
    take_requests(w, true);
}

/* Stopped: once no call is in flight, everything goes */
static gboolean teardown(VmWorker *w)
{
    g_autoptr(GError) err = NULL;
    GSource *tick = w->tick;
    VmReq *r;

    if (w->state != VM_W_DOWN) {
        w->gen++;
        w->state = VM_W_DOWN;
        w->tr->close(w);
    }
    if (!w->tr->idle(w)) {
        ((Tick *)tick)->due_us = -1;        /* woken when it is */
        return G_SOURCE_CONTINUE;
    }
    err = g_error_new_literal(QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CLOSED,
                              "the worker stopped");
    take_requests(w, false);    /* never sent: answered below */
    while ((r = g_queue_peek_head(&w->reqs))) {
        vm_worker_answer(r, NULL, err);
    }
    w->tr->free(w);         /* (vm_worker_freed() when it is gone) */
    vm_snapshot_unref(w->work);
    vm_snapshot_unref(w->published);
    vm_snapshot_unref(w->overdue);
    g_free(w->balloon_path[0]);
    g_free(w->balloon_path[1]);
    g_free(w->failure);
    g_free(w->qmp_path);
    loop_pool_release(w->loop);
    g_mutex_clear(&w->lock);
    g_free(w->name);
    g_free(w->where);
    g_free(w);
    g_source_destroy(tick);
    g_source_unref(tick);
    return G_SOURCE_REMOVE;
}

static gboolean tick_dispatch(GSource *source, GSourceFunc callback,
                              gpointer user_data)
{
    VmWorker *w = ((Tick *)source)->w;
    int64_t now = g_get_monotonic_time();
    bool stop, kick;

    (void)callback;
    (void)user_data;
    /* (before the flags are read: a later request pokes again) */
    g_atomic_int_set(&w->poked, 0);
    if (w->link_tag && g_source_query_unix_fd(source, w->link_tag)) {
        w->tr->events(w);
    }
    g_mutex_lock(&w->lock);
    stop = w->stop;
    kick = w->kick;
    g_mutex_unlock(&w->lock);
    if (stop) {
        return teardown(w);
    }
    if (w->state == VM_W_DOWN && now >= w->retry_us) {
        w->state = VM_W_CONNECTING;
        w->tr->open(w);
    }
    if (w->tr->hold) {
        w->tr->hold(w, true);   /* what follows goes in one write */
    }
    if (w->state >= VM_W_SETUP) {
        send_requests(w);
    }
    if (w->state == VM_W_READY && (kick || now >= w->next_round_us)) {
        start_round(w);
    }
    if (w->tr->hold) {
        w->tr->hold(w, false);
    }
    vm_worker_arm(w);
    return G_SOURCE_CONTINUE;
}

static gboolean tick_prepare(GSource *source, gint *timeout)
{
    int64_t due = ((Tick *)source)->due_us, now;

    if (g_atomic_int_get(&((Tick *)source)->w->poked)) {
        *timeout = 0;
        return true;
    }
    if (due < 0) {
        *timeout = -1;
        return false;
    }
    now = g_source_get_time(source);
    if (now >= due) {
        *timeout = 0;
        return true;
    }
    *timeout = MIN((due - now + 999) / 1000, G_MAXINT);
    return false;
}

static gboolean tick_check(GSource *source)
{
    int64_t due = ((Tick *)source)->due_us;

    return g_atomic_int_get(&((Tick *)source)->w->poked) ||
           (due >= 0 && g_source_get_time(source) >= due);
}

static GSourceFuncs tick_funcs = {
    .prepare = tick_prepare,
    .check = tick_check,
    .dispatch = tick_dispatch,
};

void vm_worker_attach(VmWorker *w)
{
    GSource *s = g_source_new(&tick_funcs, sizeof(Tick));

    ((Tick *)s)->w = w;
    g_source_set_name(s, "vm-worker");
    g_source_set_can_recurse(s, true);      /* as qmp-async.c says why */
    w->tick = s;
    w->state = VM_W_DOWN;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->retry_us = 0;                    /* connect at once */
    ((Tick *)s)->due_us = 0;
    g_source_attach(s, w->ctx);
}
