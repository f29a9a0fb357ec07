/*
 * qemu-oc host tools: one worker thread per VM
 *
 * See vm-worker.h.  The worker thread alone touches the link and the
 * snapshot it builds (work); publication copies it and swaps the
 * published pointer under the lock, which readers hold only to take a
 * reference.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "vm-worker.h"

const VmWorkerConfig vm_worker_default_config = {
    .interval_ms = 2000,
    .timeout_ms = 1000,
    .backoff_max_ms = 10000,
};

/* Events are waited for in slices this long, to notice a stop */
#define EVENT_SLICE_MS 100
#define BACKOFF_MIN_MS 200
/* A link call this long past its deadline makes the VM unresponsive */
#define CALL_GRACE_MS 250

/* Worker threads still running, for vm_worker_wait_all() */
static GMutex live_lock;
static GCond live_cond;
static unsigned live_workers;

struct VmWorker {
    char *name, *where;
    VmLink *link;
    VmWorkerConfig cfg;
    VmWorkerNotifyFn *notify;
    void *opaque;

    GMutex lock;
    GCond wake;             /* stop or kick */
    int wake_fd;            /* the same, for a worker waiting in poll() */
    VmSnapshot *published;  /* under lock */
    bool stop, kick;        /* under lock */
    /* a balloon request not yet made (under lock) */
    bool balloon_pending;
    uint64_t balloon_bytes;
    VmWorkerBalloonFn *balloon_done;
    void *balloon_opaque;
    /* a pause or resume request not yet made (under lock) */
    bool run_pending, run_running;
    VmWorkerRunFn *run_done;
    void *run_opaque;

    /*
     * a link call in flight (under lock): since when (monotonic, 0: none)
     * and what; past its deadline, readers get @overdue, the published
     * snapshot marked unresponsive (libvirt's calls have no deadline)
     */
    int64_t call_since_us;
    const char *call_what;
    VmSnapshot *overdue;

    /* the worker thread's own */
    VmSnapshot *work;
    char *failure;          /* the last failure logged, or NULL */
    unsigned repeats;       /* times it came again, not logged */
    unsigned failures;      /* since the VM last answered */
    bool connected;
    int backoff_ms;
};

static void publish(VmWorker *w)
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
 * A call past its deadline (under lock): the published snapshot marked
 * unresponsive since the call began, built once per call (NULL if the
 * call is not late)
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

/* Around every call on the link: see call_since_us */
static void call_begin(VmWorker *w, const char *what)
{
    g_mutex_lock(&w->lock);
    w->call_since_us = g_get_monotonic_time();
    w->call_what = what;
    g_mutex_unlock(&w->lock);
}

static void call_end(VmWorker *w)
{
    VmSnapshot *o;

    g_mutex_lock(&w->lock);
    w->call_since_us = 0;
    o = g_steal_pointer(&w->overdue);
    g_mutex_unlock(&w->lock);
    vm_snapshot_unref(o);
}

static json_object *link_execute(VmWorker *w, const char *command,
                                 json_object *args, GError **err)
{
    json_object *r;

    call_begin(w, command);
    r = vm_link_execute(w->link, command, args, w->cfg.timeout_ms, err);
    call_end(w);
    return r;
}

static bool link_set_balloon(VmWorker *w, uint64_t bytes, GError **err)
{
    bool ok;

    call_begin(w, "balloon");
    ok = vm_link_set_balloon(w->link, bytes, w->cfg.timeout_ms, err);
    call_end(w);
    return ok;
}

static bool link_set_running(VmWorker *w, bool running, GError **err)
{
    bool ok;

    call_begin(w, running ? "cont" : "stop");
    ok = vm_link_set_running(w->link, running, w->cfg.timeout_ms, err);
    call_end(w);
    return ok;
}

static bool link_open(VmWorker *w, GError **err)
{
    bool ok;

    call_begin(w, "connect");
    ok = vm_link_open(w->link, w->cfg.timeout_ms, err);
    call_end(w);
    return ok;
}

const char *vm_worker_name(VmWorker *w)
{
    return w->name;
}

static bool stopping(VmWorker *w)
{
    bool stop;

    g_mutex_lock(&w->lock);
    stop = w->stop;
    g_mutex_unlock(&w->lock);
    return stop;
}

/*
 * Sleep @ms unless stopped, kicked or given a balloon request; true if
 * stopped or kicked (a balloon request alone does not end a round)
 */
static bool nap(VmWorker *w, int ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
    bool woken;

    g_mutex_lock(&w->lock);
    while (!w->stop && !w->kick && !w->balloon_pending && !w->run_pending &&
           g_cond_wait_until(&w->wake, &w->lock, end)) {
        /* spurious wake-up: wait on */
    }
    woken = w->stop || w->kick;
    w->kick = false;
    g_mutex_unlock(&w->lock);
    return woken;
}

/* Wake the worker wherever it waits (under w->lock) */
static void wake_locked(VmWorker *w)
{
    g_cond_signal(&w->wake);
    if (eventfd_write(w->wake_fd, 1) < 0) {
        /* the counter is saturated: a wake-up is pending anyway */
    }
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

/* The VM did not answer in time, or the link failed */
static void mark_unresponsive(VmWorker *w, const char *what, GError *err)
{
    g_free(w->work->error);
    w->work->error = g_strdup_printf("%s: %s", what, err->message);
    log_failure(w);
    if (w->work->responsive || !w->work->unresponsive_since_us) {
        w->work->unresponsive_since_us = g_get_real_time();
    }
    w->work->responsive = false;
    g_error_free(err);
    if (w->connected) {
        vm_link_close(w->link);
        w->connected = false;
    }
    publish(w);
}

static void mark_responsive(VmWorker *w)
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

/* Make the pause or resume request waiting, if any; false if the link failed */
static bool do_run(VmWorker *w)
{
    VmWorkerRunFn *done;
    GError *err = NULL;
    void *opaque;
    bool running, ok;

    g_mutex_lock(&w->lock);
    if (!w->run_pending || !w->connected) {
        g_mutex_unlock(&w->lock);
        return true;
    }
    w->run_pending = false;
    running = w->run_running;
    done = w->run_done;
    opaque = w->run_opaque;
    g_mutex_unlock(&w->lock);
    ok = link_set_running(w, running, &err);
    if (done) {
        done(opaque, w, running, err);
    }
    if (!ok && !g_error_matches(err, QMP_CLIENT_ERROR,
                                QMP_CLIENT_ERROR_COMMAND)) {
        mark_unresponsive(w, running ? "cont" : "stop", err);
        return false;
    }
    g_clear_error(&err);
    return true;
}

/* Make the balloon request waiting, if any; false if the link failed */
static bool do_balloon(VmWorker *w)
{
    VmWorkerBalloonFn *done;
    GError *err = NULL;
    void *opaque;
    uint64_t bytes;
    bool ok;

    g_mutex_lock(&w->lock);
    if (!w->balloon_pending || !w->connected) {
        g_mutex_unlock(&w->lock);
        return true;
    }
    w->balloon_pending = false;
    bytes = w->balloon_bytes;
    done = w->balloon_done;
    opaque = w->balloon_opaque;
    g_mutex_unlock(&w->lock);
    ok = link_set_balloon(w, bytes, &err);
    if (done) {
        done(opaque, w, bytes, err);
    }
    if (!ok && !g_error_matches(err, QMP_CLIENT_ERROR,
                                QMP_CLIENT_ERROR_COMMAND)) {
        mark_unresponsive(w, "balloon", err);
        return false;
    }
    g_clear_error(&err);
    return true;
}

/* An answer that is an error reply: the VM is there, the command is not */
static bool command_failed(VmWorker *w, GError **errp)
{
    if (!g_error_matches(*errp, QMP_CLIENT_ERROR,
                         QMP_CLIENT_ERROR_COMMAND)) {
        return false;
    }
    g_free(w->work->error);
    w->work->error = g_strdup((*errp)->message);   /* names the command */
    g_clear_error(errp);
    return true;
}

static void on_event(void *opaque, const char *event, json_object *data,
                     int64_t timestamp_us G_GNUC_UNUSED)
{
    VmWorker *w = opaque;

    if (!g_strcmp0(event, "BALLOON_STATS") &&
        vm_snapshot_set_balloon(w->work, data)) {
        publish(w);
    }
}

/*
 * The VM's boot RAM, the most a balloon can give back (once a connect).
 * False (after marking) if the VM failed to answer.
 */
static bool read_max_memory(VmWorker *w)
{
    GError *err = NULL;
    json_object *r, *v;

    r = link_execute(w, "query-memory-size-summary", NULL, &err);
    if (!r && !command_failed(w, &err)) {
        mark_unresponsive(w, "query-memory-size-summary", err);
        return false;
    }
    if (r && json_object_object_get_ex(r, "base-memory", &v) &&
        json_object_is_type(v, json_type_int) &&
        json_object_get_int64(v) > 0) {
        w->work->max_memory = json_object_get_int64(v);
    }
    json_object_put(r);
    return true;
}

/*
 * The balloon device: the child<virtio-balloon-...> of the machine's
 * peripherals (a new string), or NULL
 */
static char *find_balloon(VmWorker *w, GError **err)
{
    static const char *const dirs[] = {
        "/machine/peripheral", "/machine/peripheral-anon",
    };
    char *found = NULL;
    unsigned i;
    size_t j;

    for (i = 0; i < G_N_ELEMENTS(dirs) && !found && !*err; i++) {
        json_object *args = json_object_new_object(), *r;

        json_object_object_add(args, "path", json_object_new_string(dirs[i]));
        r = link_execute(w, "qom-list", args, err);
        for (j = 0; r && json_object_is_type(r, json_type_array) &&
                    j < json_object_array_length(r) && !found; j++) {
            json_object *p = json_object_array_get_idx(r, j), *name, *type;

            if (json_object_object_get_ex(p, "name", &name) &&
                json_object_object_get_ex(p, "type", &type) &&
                g_str_has_prefix(json_object_get_string(type),
                                 "child<virtio-balloon")) {
                found = g_strdup_printf("%s/%s", dirs[i],
                                        json_object_get_string(name));
            }
        }
        json_object_put(r);
        if (g_error_matches(*err, QMP_CLIENT_ERROR,
                            QMP_CLIENT_ERROR_COMMAND)) {
            g_clear_error(err);     /* no such path, or no qom-list */
        }
    }
    return found;
}

/* A boolean property of @path: 0 or 1, -1 if unknown */
static int qom_bool(VmWorker *w, const char *path, const char *prop,
                    GError **err)
{
    json_object *args = json_object_new_object(), *r;
    int v = -1;

    json_object_object_add(args, "path", json_object_new_string(path));
    json_object_object_add(args, "property", json_object_new_string(prop));
    r = link_execute(w, "qom-get", args, err);
    if (r && json_object_is_type(r, json_type_boolean)) {
        v = json_object_get_boolean(r);
    }
    json_object_put(r);
    if (g_error_matches(*err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_COMMAND)) {
        g_clear_error(err);
    }
    return v;
}

/*
 * Whether the balloon reports free pages and deflates on OOM (once a
 * connect).  False (after marking) if the VM failed to answer.
 */
static bool read_balloon_features(VmWorker *w)
{
    GError *err = NULL;
    g_autofree char *path = find_balloon(w, &err);

    w->work->balloon_fpr = w->work->balloon_deflate = -1;
    if (path && !err) {
        w->work->balloon_fpr = qom_bool(w, path, "free-page-reporting",
                                        &err);
    }
    if (path && !err) {
        w->work->balloon_deflate = qom_bool(w, path, "deflate-on-oom", &err);
    }
    if (err) {
        mark_unresponsive(w, "qom-get", err);
        return false;
    }
    return true;
}

/* Connect if needed; false (after marking) if it failed */
static bool ensure_connected(VmWorker *w)
{
    GError *err = NULL;

    if (w->connected) {
        return true;
    }
    if (!link_open(w, &err)) {
        mark_unresponsive(w, "connect", err);
        return false;
    }
    w->connected = true;
    w->backoff_ms = BACKOFF_MIN_MS;
    w->work->pid = vm_link_pid(w->link);
    return read_max_memory(w) && read_balloon_features(w);
}

/* One round of queries; false if the VM failed to answer */
static bool query_round(VmWorker *w)
{
    json_object *args = json_object_new_object();
    json_object *r;
    GError *err = NULL;

    json_object_object_add(args, "refresh", json_object_new_string("async"));
    r = link_execute(w, "query-balloon", args, &err);
    if (r) {
        if (!vm_snapshot_set_balloon(w->work, r)) {
            g_free(w->work->error);
            w->work->error = g_strdup("query-balloon: unexpected answer");
        }
        json_object_put(r);
    } else if (!command_failed(w, &err)) {
        mark_unresponsive(w, "query-balloon", err);
        return false;
    }
    r = link_execute(w, "query-vcpu-runstates", NULL, &err);
    if (r) {
        if (!vm_snapshot_set_runstates(w->work, r, g_get_monotonic_time())) {
            g_free(w->work->error);
            w->work->error = g_strdup("query-vcpu-runstates: unexpected "
                                      "answer");
        }
        json_object_put(r);
    } else if (!command_failed(w, &err)) {
        mark_unresponsive(w, "query-vcpu-runstates", err);
        return false;
    }
    mark_responsive(w);
    publish(w);
    return true;
}

/*
 * Wait at most @ms for events or a wake-up; dispatch the events.  With a
 * link that has a file descriptor, a wake-up (a balloon request, a kick)
 * ends the wait at once; otherwise it waits in short slices.
 */
static bool wait_once(VmWorker *w, int ms, GError **err)
{
    struct pollfd p[2] = {
        { .fd = vm_link_fd(w->link), .events = POLLIN },
        { .fd = w->wake_fd, .events = POLLIN },
    };
    eventfd_t n;

    if (p[0].fd < 0) {
        return vm_link_wait_events(w->link, MIN(ms, EVENT_SLICE_MS), err);
    }
    if (poll(p, 2, ms) < 0) {
        return true;    /* EINTR: the caller loops */
    }
    if (p[1].revents && eventfd_read(w->wake_fd, &n) < 0) {
        /* nothing to clear */
    }
    return !p[0].revents || vm_link_wait_events(w->link, 0, err);
}

/* Take events until @end (monotonic µs); false if the link failed */
static bool wait_events_until(VmWorker *w, gint64 end)
{
    GError *err = NULL;
    gint64 left;

    while ((left = end - g_get_monotonic_time()) > 0 && !stopping(w)) {
        bool kicked = nap(w, 0);

        if (!do_run(w) || !do_balloon(w)) {
            return false;
        }
        if (kicked) {
            break;      /* query now */
        }
        if (!wait_once(w, left / 1000 + 1, &err)) {
            mark_unresponsive(w, "events", err);
            return false;
        }
    }
    return true;
}

static gpointer worker_thread(gpointer opaque)
{
    VmWorker *w = opaque;

    while (!stopping(w)) {
        gint64 round = g_get_monotonic_time();

        if (!ensure_connected(w) || !query_round(w)) {
            /* keep trying, less and less often */
            nap(w, w->backoff_ms);
            w->backoff_ms = MIN(w->backoff_ms * 2, w->cfg.backoff_max_ms);
            continue;
        }
        wait_events_until(w, round + (gint64)w->cfg.interval_ms * 1000);
    }
    /* nobody else refers to the worker now (vm_worker_stop) */
    if (w->connected) {
        vm_link_close(w->link);
    }
    vm_link_free(w->link);
    vm_snapshot_unref(w->work);
    vm_snapshot_unref(w->published);
    vm_snapshot_unref(w->overdue);
    g_free(w->failure);
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->wake);
    close(w->wake_fd);
    g_free(w->name);
    g_free(w->where);
    g_free(w);
    g_mutex_lock(&live_lock);
    live_workers--;
    g_cond_broadcast(&live_cond);
    g_mutex_unlock(&live_lock);
    return NULL;
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
    g_autofree char *thread_name = g_strdup_printf("vm:%.12s", name);

    w->name = g_strdup(name);
    w->where = g_strdup(where);
    w->link = link;
    w->cfg = cfg ? *cfg : vm_worker_default_config;
    w->notify = notify;
    w->opaque = opaque;
    w->backoff_ms = BACKOFF_MIN_MS;
    g_mutex_init(&w->lock);
    g_cond_init(&w->wake);
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    link->event_fn = on_event;
    link->event_opaque = w;
    w->work = vm_snapshot_new(name, where);
    w->published = vm_snapshot_copy(w->work);
    g_mutex_lock(&live_lock);
    live_workers++;
    g_mutex_unlock(&live_lock);
    g_thread_unref(g_thread_new(thread_name, worker_thread, w));
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
