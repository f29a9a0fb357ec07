/*
 * qemu-oc host tools tests: the QMP connection on an event loop
 *
 * Against the fake peers of tests/tools/fake_qmp.py (one behaviour
 * each) and a fleet of them in one process (fake_fleet.py), driven by
 * one GMainContext in the test's thread: the greeting and negotiation,
 * pipelined requests answered in order, error replies that keep the
 * connection, every way a peer can fail it (each with its code), a
 * flood of events that does not starve the loop, a connection freed
 * from its own callback, and a hundred connections on one loop.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "fake-peer.h"
#include "qmp-async.h"

/* (for liveness only: every wait ends on an event of the connection) */
#define LIVENESS_MS 20000

typedef struct Conn {
    QmpAsync *q;
    bool ready, failed;
    GError *error;              /* the failure */
    unsigned events, flood_next;
    bool flood_in_order;
    GPtrArray *answers;         /* char *: "ok:JSON" or "err:CODE:text" */
    bool free_in_reply;
} Conn;

static void on_ready(void *opaque)
{
    Conn *c = opaque;

    g_assert_false(c->ready);
    c->ready = true;
}

static void on_fail(void *opaque, const GError *err)
{
    Conn *c = opaque;

    g_assert_false(c->failed);
    c->failed = true;
    c->error = g_error_copy(err);
}

static void on_event(void *opaque, const char *event, json_object *data,
                     int64_t timestamp_us)
{
    Conn *c = opaque;
    json_object *n;

    g_assert_nonnull(event);
    g_assert_cmpint(timestamp_us, >, 0);
    c->events++;
    if (!strcmp(event, "X-FLOOD")) {
        if (!json_object_object_get_ex(data, "n", &n) ||
            json_object_get_int64(n) != c->flood_next) {
            c->flood_in_order = false;
        }
        c->flood_next++;
    }
}

static void on_reply(void *opaque, json_object *ret, const GError *err)
{
    Conn *c = opaque;

    if (err) {
        g_assert_null(ret);
        g_ptr_array_add(c->answers, g_strdup_printf("err:%d:%s", err->code,
                                                    err->message));
    } else {
        g_ptr_array_add(c->answers, g_strdup_printf(
            "ok:%s", json_object_to_json_string_ext(ret,
                                                    JSON_C_TO_STRING_PLAIN)));
    }
    if (c->free_in_reply) {
        qmp_async_free(c->q);
        c->q = NULL;
    }
}

static const QmpAsyncCallbacks callbacks = {
    .ready = on_ready, .event = on_event, .fail = on_fail,
};

static gboolean liveness(gpointer opaque G_GNUC_UNUSED)
{
    g_error("no end within %d ms", LIVENESS_MS);
    return G_SOURCE_REMOVE;
}

/* Iterate @ctx until *@flag or @c has @n answers */
static void run_until(GMainContext *ctx, bool *flag, Conn *c, guint n)
{
    GSource *t = g_timeout_source_new(LIVENESS_MS);

    g_source_set_callback(t, liveness, NULL, NULL);
    g_source_attach(t, ctx);
    while (!(flag && *flag) && !(c && c->answers->len >= n && n)) {
        g_main_context_iteration(ctx, TRUE);
    }
    g_source_destroy(t);
    g_source_unref(t);
}

static void conn_init(Conn *c)
{
    *c = (Conn) { .flood_in_order = true };
    c->answers = g_ptr_array_new_with_free_func(g_free);
}

static void conn_clear(Conn *c)
{
    qmp_async_free(c->q);
    g_clear_error(&c->error);
    g_ptr_array_free(c->answers, true);
}

static const char *answer(Conn *c, guint i)
{
    g_assert_cmpuint(i, <, c->answers->len);
    return g_ptr_array_index(c->answers, i);
}

/* A connection to fake @f with small limits; ready (or failed) */
static void open_conn(GMainContext *ctx, Fake *f, Conn *c, int greeting_ms)
{
    QmpLimits lim = {
        .max_line = 1024 * 1024, .max_depth = 16, .greeting_ms = greeting_ms,
        .max_events = 100,
    };
    g_autoptr(GError) err = NULL;

    conn_init(c);
    c->q = qmp_async_connect(ctx, f->sock, &lim, &callbacks, c, &err);
    g_assert_no_error(err);
    g_assert_nonnull(c->q);
}

static void test_good(void)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    Fake *f = fake_start("good", NULL);
    Conn c;

    open_conn(ctx, f, &c, 2000);
    run_until(ctx, &c.ready, NULL, 0);
    g_assert_false(c.failed);
    /* three requests sent at once: answered in order */
    qmp_async_execute(c.q, "query-balloon", NULL, 2000, on_reply, &c);
    qmp_async_execute(c.q, "query-vcpu-runstates", NULL, 2000, on_reply, &c);
    qmp_async_execute(c.q, "no-such-command", NULL, 2000, on_reply, &c);
    g_assert_cmpuint(qmp_async_pending(c.q), ==, 3);
    run_until(ctx, NULL, &c, 3);
    g_assert_true(g_str_has_prefix(answer(&c, 0), "ok:{\"actual\":"));
    g_assert_nonnull(strstr(answer(&c, 1), "\"vcpus\""));
    g_assert_true(g_str_has_prefix(answer(&c, 2), "err:4:"));   /* COMMAND */
    g_assert_nonnull(strstr(answer(&c, 2), "CommandNotFound"));
    g_assert_cmpuint(qmp_async_pending(c.q), ==, 0);
    /* an error reply keeps the connection */
    qmp_async_execute(c.q, "query-version", NULL, 2000, on_reply, &c);
    run_until(ctx, NULL, &c, 4);
    g_assert_true(g_str_has_prefix(answer(&c, 3), "ok:"));
    g_assert_false(c.failed);
    conn_clear(&c);
    fake_stop(f);
}

/* A behaviour that fails the connection: with @code, words in @words */
static void check_fails(const char *behaviour, const char *command,
                        int code, const char *words, const char *arg)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    Fake *f = fake_start(behaviour, arg ? "--delay" : NULL, arg, NULL);

    g_test_message("%s", behaviour);
    Conn c;

    open_conn(ctx, f, &c, 500);
    while (command && !c.ready && !c.failed) {
        g_main_context_iteration(ctx, TRUE);    /* (some fail at once) */
    }
    if (c.ready) {
        qmp_async_execute(c.q, command, NULL, 300, on_reply, &c);
    }
    run_until(ctx, &c.failed, NULL, 0);
    g_test_message("%s: %s", behaviour, c.error->message);
    g_assert_cmpint(c.error->code, ==, code);
    g_assert_nonnull(strstr(c.error->message, words));
    if (c.ready) {
        /* the request was answered with the failure, before the fail */
        g_assert_cmpuint(c.answers->len, ==, 1);
        g_assert_true(g_str_has_prefix(answer(&c, 0), "err:"));
    }
    /* a request after the failure is answered with it, not sent */
    qmp_async_execute(c.q, "query-status", NULL, 300, on_reply, &c);
    run_until(ctx, NULL, &c, c.answers->len + 1);
    g_assert_nonnull(strstr(answer(&c, c.answers->len - 1), words));
    conn_clear(&c);
    fake_stop(f);
}

static void test_failures(void)
{
    check_fails("no-greeting", NULL, QMP_CLIENT_ERROR_TIMEOUT,
                "no QMP greeting", NULL);
    check_fails("silent", NULL, QMP_CLIENT_ERROR_TIMEOUT,
                "no reply to qmp_capabilities", NULL);
    check_fails("slow", "query-balloon", QMP_CLIENT_ERROR_TIMEOUT,
                "no reply to query-balloon within 300 ms", "2");
    check_fails("invalid-json", "query-balloon", QMP_CLIENT_ERROR_PROTOCOL,
                "invalid JSON", NULL);
    check_fails("huge-line", "query-balloon", QMP_CLIENT_ERROR_PROTOCOL,
                "longer than", NULL);
    check_fails("deep-nesting", "query-balloon", QMP_CLIENT_ERROR_PROTOCOL,
                "nested deeper", NULL);
    check_fails("close-mid-reply", "query-balloon", QMP_CLIENT_ERROR_CLOSED,
                "closed", NULL);
    /* (a peer that closes with our request unread: the read is reset) */
    check_fails("reset", "query-balloon", QMP_CLIENT_ERROR_CLOSED,
                "connection closed by peer (Connection reset by peer)", NULL);
}

static void test_refused(void)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GError) err = NULL;
    Conn c;

    conn_init(&c);
    c.q = qmp_async_connect(ctx, "/nonexistent/qmp.sock", NULL, &callbacks,
                            &c, &err);
    g_assert_null(c.q);
    g_assert_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT);
    conn_clear(&c);
}

static gboolean count_tick(gpointer opaque)
{
    (*(unsigned *)opaque)++;
    return G_SOURCE_CONTINUE;
}

/*
 * A flood: every event in order, the reply too, and the loop breathes:
 * another source of the same priority (another VM's, a timer) runs
 * while the flood goes on
 */
static void test_event_flood(void)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    Fake *f = fake_start("event-flood", NULL);
    GSource *tick = g_timeout_source_new(1);
    unsigned ticks = 0;
    Conn c;

    open_conn(ctx, f, &c, 2000);
    run_until(ctx, &c.ready, NULL, 0);
    g_source_set_callback(tick, count_tick, &ticks, NULL);
    g_source_attach(tick, ctx);
    qmp_async_execute(c.q, "query-status", NULL, 5000, on_reply, &c);
    run_until(ctx, NULL, &c, 1);
    g_assert_true(g_str_has_prefix(answer(&c, 0), "ok:"));
    while (c.events < 20000) {
        g_main_context_iteration(ctx, TRUE);
    }
    g_assert_true(c.flood_in_order);
    g_assert_false(c.failed);
    /* 20,000 events at most 100 a dispatch: the timer had its turns */
    g_assert_cmpuint(ticks, >, 0);
    g_source_destroy(tick);
    g_source_unref(tick);
    conn_clear(&c);
    fake_stop(f);
}

/* Freed from its own reply callback: nothing more is called */
static void test_free_in_callback(void)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    Fake *f = fake_start("good", NULL);
    Conn c;

    open_conn(ctx, f, &c, 2000);
    run_until(ctx, &c.ready, NULL, 0);
    c.free_in_reply = true;
    qmp_async_execute(c.q, "query-balloon", NULL, 2000, on_reply, &c);
    qmp_async_execute(c.q, "query-status", NULL, 2000, on_reply, &c);
    run_until(ctx, NULL, &c, 1);
    g_assert_null(c.q);
    /* the second reply, and the connection's end, never reach us */
    while (g_main_context_iteration(ctx, FALSE)) {
        /* drain */
    }
    g_assert_cmpuint(c.answers->len, ==, 1);
    g_assert_false(c.failed);
    conn_clear(&c);
    fake_stop(f);
}

/* A hundred connections on one loop, five rounds of two requests each */
static void test_many(void)
{
    enum { N = 100, ROUNDS = 5 };
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autofree char *dir = g_dir_make_tmp("test-qmp-async-XXXXXX", NULL);
    GPid pid = fake_fleet_start(dir, N, NULL);
    Conn *c = g_new0(Conn, N);
    bool all;
    int i, r;

    for (i = 0; i < N; i++) {
        g_autofree char *sock = g_strdup_printf("%s/vm%04d", dir, i);
        Fake f = { .sock = sock };

        open_conn(ctx, &f, &c[i], 5000);
    }
    for (r = 0; r < ROUNDS; r++) {
        for (i = 0; i < N; i++) {
            if (r == 0) {
                run_until(ctx, &c[i].ready, NULL, 0);
            }
            qmp_async_execute(c[i].q, "query-balloon", NULL, 5000, on_reply,
                              &c[i]);
            qmp_async_execute(c[i].q, "query-vcpu-runstates", NULL, 5000,
                              on_reply, &c[i]);
        }
        do {
            g_main_context_iteration(ctx, TRUE);
            for (all = true, i = 0; i < N; i++) {
                all &= c[i].answers->len == 2u * (r + 1);
            }
        } while (!all);
    }
    for (i = 0; i < N; i++) {
        g_assert_false(c[i].failed);
        for (r = 0; r < 2 * ROUNDS; r++) {
            g_assert_true(g_str_has_prefix(answer(&c[i], r), "ok:"));
        }
        conn_clear(&c[i]);
    }
    g_free(c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    g_spawn_close_pid(pid);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp-async/good", test_good);
    g_test_add_func("/qmp-async/failures", test_failures);
    g_test_add_func("/qmp-async/refused", test_refused);
    g_test_add_func("/qmp-async/event-flood", test_event_flood);
    g_test_add_func("/qmp-async/free-in-callback", test_free_in_callback);
    g_test_add_func("/qmp-async/many", test_many);
    return g_test_run();
}
