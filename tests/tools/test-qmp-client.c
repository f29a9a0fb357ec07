/*
 * qemu-oc host tools tests: the QMP client and the QMP VM link
 *
 * Each test starts tests/tools/fake_qmp.py with one behaviour, on a
 * socket in a new temporary directory, and checks what the client makes
 * of it: the right result or error code, within a generous liveness
 * bound, with bounded memory.
 *
 * The fake server is found at $FAKE_QMP if set, else at FAKE_QMP_PATH
 * if defined at compile time (-DFAKE_QMP_PATH='"/path/fake_qmp.py"'),
 * else next to this source file as named by __FILE__.  It runs with
 * /usr/bin/python3.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake-peer.h"
#include "qmp-client.h"
#include "vm-link.h"

/* Events seen by the callback */

typedef struct Events {
    unsigned count;
    unsigned balloon_stats;
    json_object *balloon_data;  /* the latest BALLOON_STATS data */
    int64_t flood_next;         /* the next X-FLOOD "n" expected */
    bool flood_in_order;
} Events;

static void record_event(void *opaque, const char *event, json_object *data,
                         int64_t timestamp_us)
{
    Events *ev = opaque;
    json_object *n;

    g_assert_nonnull(event);
    g_assert_cmpint(timestamp_us, >, 0);
    ev->count++;
    if (!strcmp(event, "BALLOON_STATS")) {
        ev->balloon_stats++;
        json_object_put(ev->balloon_data);
        ev->balloon_data = json_object_get(data);
    } else if (!strcmp(event, "X-FLOOD")) {
        if (!json_object_object_get_ex(data, "n", &n) ||
            json_object_get_int64(n) != ev->flood_next) {
            ev->flood_in_order = false;
        }
        ev->flood_next++;
    }
}

static void events_init(Events *ev)
{
    *ev = (Events) { .flood_in_order = true };
}

static void events_clear(Events *ev)
{
    json_object_put(ev->balloon_data);
    ev->balloon_data = NULL;
}

/* Helpers */

static void assert_error(GError *err, QmpClientError code, const char *part)
{
    g_assert_nonnull(err);
    if (!g_error_matches(err, QMP_CLIENT_ERROR, code) ||
        !strstr(err->message, part)) {
        g_test_message("got error %d: %s", err->code, err->message);
    }
    g_assert_error(err, QMP_CLIENT_ERROR, (int)code);
    g_assert_nonnull(strstr(err->message, part));
}

static QmpClient *connect_ok(Fake *f, const QmpLimits *lim, Events *ev)
{
    g_autoptr(GError) err = NULL;
    QmpClient *c;

    c = qmp_client_connect(f->sock, lim, ev ? record_event : NULL, ev, &err);
    g_assert_no_error(err);
    g_assert_nonnull(c);
    g_assert_cmpint(qmp_client_fd(c), >=, 0);
    return c;
}

/* Connect to a server with @behaviour and expect @code from connect */
static void connect_fails(const char *behaviour, const QmpLimits *lim,
                          QmpClientError code, const char *part)
{
    Fake *f = fake_start(behaviour, NULL);
    g_autoptr(GError) err = NULL;

    g_assert_null(qmp_client_connect(f->sock, lim, NULL, NULL, &err));
    assert_error(err, code, part);
    fake_stop(f);
}

/* Run @command against a server with @behaviour; expect @code */
static void execute_fails(const char *behaviour, const char *command,
                          QmpClientError code, const char *part)
{
    Fake *f = fake_start(behaviour, NULL);
    g_autoptr(GError) err = NULL;
    QmpClient *c = connect_ok(f, NULL, NULL);

    g_assert_null(qmp_client_execute(c, command, NULL, 5000, &err));
    assert_error(err, code, part);
    qmp_client_free(c);
    fake_stop(f);
}

static json_object *refresh_args(const char *refresh)
{
    json_object *args = json_object_new_object();

    json_object_object_add(args, "refresh", json_object_new_string(refresh));
    return args;
}

static int64_t get_int(json_object *obj, const char *key)
{
    json_object *v;

    g_assert_true(json_object_object_get_ex(obj, key, &v));
    g_assert_true(json_object_is_type(v, json_type_int));
    return json_object_get_int64(v);
}

/* The good server */

static void check_version(QmpClient *c)
{
    g_autoptr(GError) err = NULL;
    json_object *ret, *pkg;

    ret = qmp_client_execute(c, "query-version", NULL, 2000, &err);
    g_assert_no_error(err);
    g_assert_true(json_object_object_get_ex(ret, "package", &pkg));
    g_assert_nonnull(strstr(json_object_get_string(pkg), "qemu-oc"));
    json_object_put(ret);
}

static void check_balloon_async(QmpClient *c, Events *ev)
{
    g_autoptr(GError) err = NULL;
    json_object *ret, *stats;

    ret = qmp_client_execute(c, "query-balloon", refresh_args("async"),
                             2000, &err);
    g_assert_no_error(err);
    g_assert_cmpint(get_int(ret, "actual"), ==, 1 << 30);   /* --memory-mib */
    json_object_put(ret);

    while (!ev->balloon_stats) {
        g_assert_true(qmp_client_wait_events(c, 100, &err));
        g_assert_no_error(err);
    }
    g_assert_true(json_object_object_get_ex(ev->balloon_data, "stats",
                                            &stats));
    g_assert_cmpint(get_int(stats, "free-memory"), >, 0);
}

static void check_runstates(QmpClient *c)
{
    static const char *const vm[] = {
        "full-run-ns", "full-contention-ns", "concurrency-hazard-ns",
        "blocked-ns", "partial-run-ns", "partial-contention-ns",
    };
    g_autoptr(GError) err = NULL;
    json_object *ret, *vmobj, *vcpus;
    int64_t sum = 0;
    size_t i;

    ret = qmp_client_execute(c, "query-vcpu-runstates", NULL, 2000, &err);
    g_assert_no_error(err);
    g_assert_true(json_object_object_get_ex(ret, "vm", &vmobj));
    for (i = 0; i < G_N_ELEMENTS(vm); i++) {
        sum += get_int(vmobj, vm[i]);
    }
    g_assert_cmpint(sum, ==, get_int(ret, "elapsed-ns"));
    g_assert_true(json_object_object_get_ex(ret, "vcpus", &vcpus));
    g_assert_cmpint(json_object_array_length(vcpus), ==, 2);
    json_object_put(ret);
}

static void test_good(void)
{
    Fake *f = fake_start("good", NULL);
    g_autoptr(GError) err = NULL;
    Events ev;
    QmpClient *c;

    events_init(&ev);
    c = connect_ok(f, NULL, &ev);
    check_version(c);
    check_balloon_async(c, &ev);
    check_runstates(c);

    /* A QMP error leaves the connection usable */
    g_assert_null(qmp_client_execute(c, "x-nope", NULL, 2000, &err));
    assert_error(err, QMP_CLIENT_ERROR_COMMAND, "CommandNotFound");
    g_assert_cmpint(qmp_client_fd(c), >=, 0);
    check_version(c);

    /* A zero timeout polls once and returns */
    g_assert_true(qmp_client_wait_events(c, 0, NULL));

    qmp_client_free(c);
    events_clear(&ev);
    fake_stop(f);
}

static void test_refused(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-qmp-client-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "none.sock", NULL);

    g_assert_null(qmp_client_connect(sock, NULL, NULL, NULL, &err));
    assert_error(err, QMP_CLIENT_ERROR_CONNECT, "none.sock");
    rmdir(dir);
}

static void test_max_line(void)
{
    QmpLimits lim = qmp_default_limits;

    lim.max_line = 64;      /* the greeting is longer */
    connect_fails("good", &lim, QMP_CLIENT_ERROR_PROTOCOL,
                  "message longer than 64 bytes");
}

/* Misbehaving servers */

static void test_no_greeting(void)
{
    QmpLimits lim = qmp_default_limits;

    lim.greeting_ms = 500;
    connect_fails("no-greeting", &lim, QMP_CLIENT_ERROR_TIMEOUT,
                  "no QMP greeting within 500 ms");
}

static void test_silent(void)
{
    QmpLimits lim = qmp_default_limits;

    lim.greeting_ms = 500;
    connect_fails("silent", &lim, QMP_CLIENT_ERROR_TIMEOUT,
                  "no reply to qmp_capabilities within 500 ms");
}

static void test_slow(void)
{
    Fake *f = fake_start("slow", "--delay", "3", NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;
    QmpClient *c = connect_ok(f, NULL, NULL);

    g_assert_null(qmp_client_execute(c, "query-version", NULL, 300, &err));
    assert_error(err, QMP_CLIENT_ERROR_TIMEOUT,
                 "no reply to query-version within 300 ms");

    /* After a timeout the connection is unusable */
    g_assert_cmpint(qmp_client_fd(c), ==, -1);
    g_assert_null(qmp_client_execute(c, "query-version", NULL, 300, &err2));
    assert_error(err2, QMP_CLIENT_ERROR_CLOSED, "closed");
    qmp_client_free(c);
    fake_stop(f);
}

static void test_invalid_json(void)
{
    execute_fails("invalid-json", "query-version", QMP_CLIENT_ERROR_PROTOCOL,
                  "invalid JSON");
}

/* The peak resident set size in KiB */
static long vm_hwm_kib(void)
{
    g_autofree char *status = NULL;
    const char *p;

    g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL,
                                      NULL));
    p = strstr(status, "VmHWM:");
    g_assert_nonnull(p);
    return g_ascii_strtoll(p + strlen("VmHWM:"), NULL, 10);
}

static void test_huge_line(void)
{
    long before = vm_hwm_kib();

    connect_fails("huge-line", NULL, QMP_CLIENT_ERROR_PROTOCOL,
                  "message longer than 1048576 bytes");
    /* The 100 MB line was refused after about 1 MiB */
    g_assert_cmpint(vm_hwm_kib() - before, <, 32 * 1024);
}

static void test_deep_nesting(void)
{
    execute_fails("deep-nesting", "query-version", QMP_CLIENT_ERROR_PROTOCOL,
                  "JSON nested deeper than 32");
}

static void test_wrong_types(void)
{
    static const char *const bad[][2] = {
        { "x-bad-error", "\"error\" is not an object" },
        { "x-bad-event", "\"event\" is not a string" },
        { "x-bad-timestamp", "timestamp" },
        { "x-far-timestamp", "timestamp out of range" },
        { "x-no-return", "neither an event nor a reply" },
        { "x-wrong-id", "reply to an unknown request" },
        { "x-not-object", "not a JSON object" },
    };
    Fake *f = fake_start("wrong-types", NULL);
    g_autoptr(GError) err = NULL;
    json_object *ret;
    Events ev;
    QmpClient *c;
    size_t i;

    /* Values of unexpected types are the caller's business */
    events_init(&ev);
    c = connect_ok(f, NULL, &ev);
    ret = qmp_client_execute(c, "query-balloon", NULL, 2000, &err);
    g_assert_no_error(err);
    g_assert_true(json_object_is_type(ret, json_type_int));
    json_object_put(ret);
    while (!ev.balloon_stats) {
        g_assert_true(qmp_client_wait_events(c, 2000, &err));
        g_assert_no_error(err);
    }
    qmp_client_free(c);
    events_clear(&ev);

    /* Messages of the wrong shape are the client's */
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err2 = NULL;

        c = connect_ok(f, NULL, NULL);
        g_assert_null(qmp_client_execute(c, bad[i][0], NULL, 2000, &err2));
        assert_error(err2, QMP_CLIENT_ERROR_PROTOCOL, bad[i][1]);
        qmp_client_free(c);
    }
    fake_stop(f);
}

static void test_error_always(void)
{
    Fake *f = fake_start("error-always", NULL);
    QmpClient *c = connect_ok(f, NULL, NULL);
    int i;

    for (i = 0; i < 2; i++) {
        g_autoptr(GError) err = NULL;

        g_assert_null(qmp_client_execute(c, "query-balloon", NULL, 2000,
                                         &err));
        assert_error(err, QMP_CLIENT_ERROR_COMMAND, "GenericError");
        g_assert_cmpint(qmp_client_fd(c), >=, 0);
    }
    qmp_client_free(c);
    fake_stop(f);
}

static void test_event_flood(void)
{
    Fake *f = fake_start("event-flood", NULL);
    QmpLimits lim = qmp_default_limits;
    Events ev;
    QmpClient *c;

    lim.max_events = 100;
    events_init(&ev);
    c = connect_ok(f, &lim, &ev);
    /* each call: what has arrived, at most max_events */
    while (ev.count < 300) {
        unsigned before = ev.count;

        g_assert_true(qmp_client_wait_events(c, 5000, NULL));
        g_assert_cmpuint(ev.count, >, before);
        g_assert_cmpuint(ev.count - before, <=, 100);
    }

    /* A request still gets its reply; events before it are dispatched */
    check_version(c);
    g_assert_true(qmp_client_wait_events(c, 5000, NULL));
    g_assert_cmpuint(ev.count, >, 300);
    g_assert_true(ev.flood_in_order);

    qmp_client_free(c);
    fake_stop(f);
}

static void test_close_mid_reply(void)
{
    execute_fails("close-mid-reply", "query-version", QMP_CLIENT_ERROR_CLOSED,
                  "connection closed by peer");
}

static void test_reset(void)
{
    execute_fails("reset", "query-version", QMP_CLIENT_ERROR_CLOSED,
                  "connection closed by peer (Connection reset by peer)");
}

/* The QMP VM link */

static void test_link(void)
{
    Fake *f = fake_start("good", NULL);
    VmLink *l = vm_link_qmp_new(f->sock, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;
    json_object *ret;
    Events ev;

    g_assert_null(vm_link_execute(l, "query-version", NULL, 1000, &err));
    assert_error(err, QMP_CLIENT_ERROR_CLOSED, "not connected");

    events_init(&ev);
    l->event_fn = record_event;
    l->event_opaque = &ev;
    g_assert_true(vm_link_open(l, 2000, NULL));
    ret = vm_link_execute(l, "query-balloon", refresh_args("async"), 2000,
                          NULL);
    g_assert_nonnull(ret);
    json_object_put(ret);
    while (!ev.balloon_stats) {
        g_assert_true(vm_link_wait_events(l, 2000, NULL));
    }

    vm_link_close(l);
    g_assert_false(vm_link_wait_events(l, 100, &err2));
    assert_error(err2, QMP_CLIENT_ERROR_CLOSED, "not connected");
    g_assert_true(vm_link_open(l, 2000, NULL));
    ret = vm_link_execute(l, "query-version", NULL, 2000, NULL);
    g_assert_nonnull(ret);
    json_object_put(ret);

    vm_link_free(l);
    events_clear(&ev);
    fake_stop(f);
}

static void test_link_timeout(void)
{
    Fake *f = fake_start("slow", "--delay", "3", NULL);
    VmLink *l = vm_link_qmp_new(f->sock, NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) err2 = NULL;

    g_assert_true(vm_link_open(l, 2000, NULL));
    g_assert_null(vm_link_execute(l, "query-version", NULL, 200, &err));
    assert_error(err, QMP_CLIENT_ERROR_TIMEOUT, "within 200 ms");
    /* The link dropped the dead connection */
    g_assert_false(vm_link_wait_events(l, 0, &err2));
    assert_error(err2, QMP_CLIENT_ERROR_CLOSED, "not connected");
    vm_link_free(l);
    fake_stop(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-client/good", test_good);
    g_test_add_func("/qmp-client/refused", test_refused);
    g_test_add_func("/qmp-client/max-line", test_max_line);
    g_test_add_func("/qmp-client/no-greeting", test_no_greeting);
    g_test_add_func("/qmp-client/silent", test_silent);
    g_test_add_func("/qmp-client/slow", test_slow);
    g_test_add_func("/qmp-client/invalid-json", test_invalid_json);
    g_test_add_func("/qmp-client/huge-line", test_huge_line);
    g_test_add_func("/qmp-client/deep-nesting", test_deep_nesting);
    g_test_add_func("/qmp-client/wrong-types", test_wrong_types);
    g_test_add_func("/qmp-client/error-always", test_error_always);
    g_test_add_func("/qmp-client/event-flood", test_event_flood);
    g_test_add_func("/qmp-client/close-mid-reply", test_close_mid_reply);
    g_test_add_func("/qmp-client/reset", test_reset);
    g_test_add_func("/vm-link-qmp/basic", test_link);
    g_test_add_func("/vm-link-qmp/timeout", test_link_timeout);
    return g_test_run();
}
