/*
 * qemu-oc host tools tests: VM workers on shared event loops
 *
 * 130 good fake VMs, 2 frozen ones (greet, never answer) and 2 that
 * answer garbage, served by one fake_fleet.py, each with a worker
 * (vm-worker.h) at a 200 ms interval: the workers share three loop
 * threads (64 VMs a loop), the misbehaving VMs are unresponsive with
 * their reason while every good VM sharing their loop keeps its rounds,
 * and a balloon request is done exactly once, whether the VM answers,
 * answers garbage, or never connects and its worker is stopped.  And a
 * link whose calls block (as libvirt's do), faked: its calls run on the
 * pool, its events reach the worker through its descriptor.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dirent.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/eventfd.h>

#include "fake-peer.h"
#include "loop-pool.h"
#include "vm-worker.h"

enum { GOOD = 130, FROZEN = 2, GARBAGE = 2, ALL = GOOD + FROZEN + GARBAGE };

typedef struct Vm {
    VmWorker *w;
    int64_t last_sample_us;     /* the runstates answer last counted */
    unsigned rounds;            /* answered while the misbehaving failed */
    unsigned balloon_done;
    bool balloon_ok;
} Vm;

static GMutex lock;
static GCond changed;
static Vm vms[ALL];
static bool counting;           /* rounds count from now */

/* (under the lock: a worker may publish before its start returned) */
static Vm *vm_of(VmWorker *w)
{
    unsigned i;

    for (i = 0; i < ALL; i++) {
        if (vms[i].w == w) {
            return &vms[i];
        }
    }
    return NULL;
}

static void on_publish(void *opaque G_GNUC_UNUSED, VmWorker *w)
{
    VmSnapshot *s = vm_worker_snapshot(w);
    Vm *v;

    g_mutex_lock(&lock);
    v = vm_of(w);
    if (v && s->has_runstates && s->cur.taken_us != v->last_sample_us) {
        v->last_sample_us = s->cur.taken_us;
        v->rounds += counting;
        g_cond_broadcast(&changed);
    }
    g_mutex_unlock(&lock);
    vm_snapshot_unref(s);
}

static void on_balloon(void *opaque G_GNUC_UNUSED, VmWorker *w,
                       uint64_t bytes, const GError *err)
{
    g_assert_cmpuint(bytes, ==, 512ull << 20);
    g_mutex_lock(&lock);
    g_assert_nonnull(vm_of(w));
    vm_of(w)->balloon_done++;
    vm_of(w)->balloon_ok = !err;
    g_cond_broadcast(&changed);
    g_mutex_unlock(&lock);
}

/* Wait (liveness only: 60 s) until @done says so, under the lock */
static void wait_for(bool (*done)(void))
{
    int64_t end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    g_mutex_lock(&lock);
    while (!done()) {
        g_assert_true(g_cond_wait_until(&changed, &lock, end));
    }
    g_mutex_unlock(&lock);
}

/* A misbehaving VM's snapshot: unresponsive, for its reason */
static bool misbehaving_down(void)
{
    unsigned i;

    for (i = GOOD; i < ALL; i++) {
        VmSnapshot *s = vm_worker_snapshot(vms[i].w);
        bool down = !s->responsive && s->error;

        vm_snapshot_unref(s);
        if (!down) {
            return false;
        }
    }
    return true;
}

static bool goods_answered(void)
{
    unsigned i;

    for (i = 0; i < GOOD; i++) {
        if (!vms[i].last_sample_us) {
            return false;
        }
    }
    return true;
}

/* Three more rounds of every good VM, each misbehaving one failed again */
static bool goods_went_on(void)
{
    unsigned i;

    for (i = 0; i < GOOD; i++) {
        if (vms[i].rounds < 3) {
            return false;
        }
    }
    return true;
}

static bool balloons_done(void)
{
    return vms[0].balloon_done && vms[ALL - 1].balloon_done;
}

static unsigned threads(void)
{
    DIR *d = opendir("/proc/self/task");
    unsigned n = 0;

    g_assert_nonnull(d);
    while (readdir(d)) {
        n++;
    }
    closedir(d);
    return n - 2;           /* . and .. */
}

static void test_fleet(void)
{
    static const VmWorkerConfig cfg = {
        .interval_ms = 200, .timeout_ms = 300, .backoff_max_ms = 400,
    };
    g_autofree char *dir = g_dir_make_tmp("test-vm-worker-XXXXXX", NULL);
    g_autofree char *frozen = g_strdup_printf("%d", FROZEN);
    g_autofree char *garbage = g_strdup_printf("%d", GARBAGE);
    GPid pid = fake_fleet_start(dir, GOOD + FROZEN, "--frozen", frozen,
                                "--garbage", garbage, NULL);
    unsigned i, before = threads();
    for (i = 0; i < ALL; i++) {
        g_autofree char *name = g_strdup_printf("vm%04u", i);
        g_autofree char *sock = g_build_filename(dir, name, NULL);

        VmWorker *w = vm_worker_start(name, sock,
                                      vm_link_qmp_new(sock, NULL), &cfg,
                                      on_publish, NULL);

        g_mutex_lock(&lock);
        vms[i].w = w;
        g_mutex_unlock(&lock);
    }
    /*
     * 134 workers, 3 loops of at most 64: 3 threads, not 134 (the
     * process's count has room for a sanitizer's own threads)
     */
    g_assert_cmpuint(loop_pool_threads(), ==, 3);
    g_assert_cmpuint(threads() - before, >=, 3);
    g_assert_cmpuint(threads() - before, <, 10);

    wait_for(goods_answered);
    wait_for(misbehaving_down);
    g_mutex_lock(&lock);
    counting = true;
    g_mutex_unlock(&lock);
    wait_for(goods_went_on);
    for (i = GOOD; i < ALL; i++) {
        VmSnapshot *s = vm_worker_snapshot(vms[i].w);

        g_assert_false(s->responsive);
        g_test_message("%s: %s", s->name, s->error);
        g_assert_true(strstr(s->error, i < GOOD + FROZEN ? "within 300 ms"
                             : "invalid"));
        vm_snapshot_unref(s);
    }

    /*
     * Balloon requests: a good VM's is done, a garbage one's fails (sent
     * with its next connection's first requests, answered with garbage);
     * a frozen one's waits for a connection, until its worker stops
     */
    vm_worker_set_balloon(vms[0].w, 512ull << 20, on_balloon, NULL);
    vm_worker_set_balloon(vms[ALL - 1].w, 512ull << 20, on_balloon, NULL);
    vm_worker_set_balloon(vms[GOOD].w, 512ull << 20, on_balloon, NULL);
    wait_for(balloons_done);
    g_assert_true(vms[0].balloon_ok);
    g_assert_false(vms[ALL - 1].balloon_ok);
    g_assert_cmpuint(vms[GOOD].balloon_done, ==, 0);
    for (i = 0; i < ALL; i++) {
        vm_worker_stop(vms[i].w);
    }
    g_assert_true(vm_worker_wait_all(30000));
    g_assert_cmpuint(vms[0].balloon_done, ==, 1);
    g_assert_cmpuint(vms[ALL - 1].balloon_done, ==, 1);
    g_assert_cmpuint(vms[GOOD].balloon_done, ==, 1);
    g_assert_false(vms[GOOD].balloon_ok);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
    rmdir(dir);
}

/*
 * A blocking link: answers at once from its calling thread, counts the
 * calls and the threads they ran on; its events wait in a queue, said
 * by an eventfd, as libvirt's link does
 */
typedef struct FakeLink {
    VmLink link;
    int efd;
    GAsyncQueue *events;        /* "actual" of each BALLOON_STATS */
    GThread *loop_thread;       /* where wait_events ran */
    bool call_on_loop;          /* a blocking call ran on the loop */
    gint balloons;
} FakeLink;

static FakeLink *fake_of(VmLink *l)
{
    return (FakeLink *)l;
}

static bool fake_open(VmLink *l, int timeout_ms, GError **err)
{
    (void)timeout_ms;
    (void)err;
    fake_of(l)->call_on_loop |= g_thread_self() == fake_of(l)->loop_thread;
    return true;
}

static json_object *fake_execute(VmLink *l, const char *command,
                                 json_object *args, int timeout_ms,
                                 GError **err)
{
    (void)timeout_ms;
    json_object_put(args);
    fake_of(l)->call_on_loop |= g_thread_self() == fake_of(l)->loop_thread;
    if (!strcmp(command, "query-balloon")) {
        return json_tokener_parse("{\"actual\": 1073741824}");
    }
    g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_COMMAND,
                "%s: CommandNotFound", command);
    return NULL;
}

static bool fake_set_balloon(VmLink *l, uint64_t bytes, int timeout_ms,
                             GError **err)
{
    (void)bytes;
    (void)timeout_ms;
    (void)err;
    g_atomic_int_inc(&fake_of(l)->balloons);
    return true;
}

static bool fake_wait_events(VmLink *l, int timeout_ms, GError **err)
{
    FakeLink *f = fake_of(l);
    eventfd_t n;
    gpointer e;

    (void)timeout_ms;
    (void)err;
    f->loop_thread = g_thread_self();
    if (eventfd_read(f->efd, &n) < 0) {
        /* nothing said */
    }
    while ((e = g_async_queue_try_pop(f->events))) {
        g_autofree char *text = g_strdup_printf(
            "{\"actual\": %d, \"last-update\": 1000, "
            "\"stats\": {\"free-memory\": 1}}", GPOINTER_TO_INT(e));
        json_object *data = json_tokener_parse(text);

        l->event_fn(l->event_opaque, "BALLOON_STATS", data, 0);
        json_object_put(data);
    }
    return true;
}

static int fake_fd(VmLink *l)
{
    return fake_of(l)->efd;
}

static void fake_close(VmLink *l)
{
    (void)l;
}

static void fake_free(VmLink *l)
{
    (void)l;            /* the test's, freed by it */
}

static const VmLinkOps fake_ops = {
    .open = fake_open,
    .execute = fake_execute,
    .wait_events = fake_wait_events,
    .set_balloon = fake_set_balloon,
    .fd = fake_fd,
    .close = fake_close,
    .free = fake_free,
};

static int64_t published_actual;

static void on_publish_actual(void *opaque G_GNUC_UNUSED, VmWorker *w)
{
    VmSnapshot *s = vm_worker_snapshot(w);

    g_mutex_lock(&lock);
    published_actual = s->has_balloon ? s->actual : 0;
    g_cond_broadcast(&changed);
    g_mutex_unlock(&lock);
    vm_snapshot_unref(s);
}

static bool answered_once(void)
{
    return published_actual == 1073741824;
}

static bool event_arrived(void)
{
    return published_actual == 536870912;
}

static void on_balloon_blocking(void *opaque, VmWorker *w, uint64_t bytes,
                                const GError *err)
{
    (void)w;
    (void)bytes;
    g_assert_no_error(err);
    g_mutex_lock(&lock);
    (*(unsigned *)opaque)++;
    g_cond_broadcast(&changed);
    g_mutex_unlock(&lock);
}

static unsigned blocking_done;

static bool blocking_balloon_done(void)
{
    return blocking_done == 1;
}

static void test_blocking_link(void)
{
    FakeLink f = { .link.ops = &fake_ops };
    VmWorker *w;

    f.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    f.events = g_async_queue_new();
    w = vm_worker_start("blocking", "fake:", &f.link, NULL,
                        on_publish_actual, NULL);
    wait_for(answered_once);
    /* an event: queued, said on the fd, published from the worker */
    g_async_queue_push(f.events, GINT_TO_POINTER(536870912));
    g_assert_cmpint(eventfd_write(f.efd, 1), ==, 0);
    wait_for(event_arrived);
    vm_worker_set_balloon(w, 256 << 20, on_balloon_blocking,
                          &blocking_done);
    wait_for(blocking_balloon_done);
    g_assert_cmpint(g_atomic_int_get(&f.balloons), ==, 1);
    vm_worker_stop(w);
    g_assert_true(vm_worker_wait_all(30000));
    /* the blocking calls never ran on the loop that took the events */
    g_assert_nonnull(f.loop_thread);
    g_assert_false(f.call_on_loop);
    g_assert_cmpuint(blocking_done, ==, 1);
    g_async_queue_unref(f.events);
    close(f.efd);
}

/*
 * With no descriptor left for a new loop's wake-up, the pool shares the
 * loops it has instead of making one (GLib would abort the process).
 * In a subprocess: the pool is the process's, and so is the limit.
 */
static void test_pool_without_descriptors(void)
{
    struct rlimit lim;
    GPtrArray *held;
    unsigned i;
    int fd;

    if (!g_test_subprocess()) {
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_test_trap_assert_passed();
        return;
    }
    /* (a low limit: the descriptors are all taken below) */
    g_assert_cmpint(getrlimit(RLIMIT_NOFILE, &lim), ==, 0);
    lim.rlim_cur = MIN(lim.rlim_max, 256);
    g_assert_cmpint(setrlimit(RLIMIT_NOFILE, &lim), ==, 0);
    held = g_ptr_array_new();
    for (i = 0; i < LOOP_POOL_VMS_PER_LOOP; i++) {
        g_ptr_array_add(held, loop_pool_take());
    }
    g_assert_cmpuint(loop_pool_threads(), ==, 1);
    /* every descriptor taken */
    while ((fd = eventfd(0, EFD_CLOEXEC)) >= 0) {
        continue;
    }
    g_assert_cmpint(errno, ==, EMFILE);
    for (i = 0; i < LOOP_POOL_VMS_PER_LOOP; i++) {
        LoopPoolLoop *l = loop_pool_take();

        g_assert_true(l == g_ptr_array_index(held, 0));
    }
    g_assert_cmpuint(loop_pool_threads(), ==, 1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vm-worker/fleet", test_fleet);
    g_test_add_func("/vm-worker/blocking-link", test_blocking_link);
    g_test_add_func("/vm-worker/pool-without-descriptors",
                    test_pool_without_descriptors);
    return g_test_run();
}
