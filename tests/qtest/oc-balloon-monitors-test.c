/*
 * QTest: virtio-balloon statistics on demand, several monitors (qemu-oc)
 *
 * The test plays the guest's virtio-balloon driver through libqos (see
 * oc-balloon-stats-test) while QMP and HMP clients ask for statistics
 * on up to three QMP monitors and one HMP monitor: at the same time, on
 * an out-of-band capable monitor, hanging up while their request waits,
 * hundreds of times in a row, and while QEMU quits.  Each case checks
 * who gets which reply and in which order; QEMU's trace log (-D) tells
 * when a request waits, is orphaned or completes.  The helpers are in
 * oc-balloon-qtest.c.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqmp.h"
#include "oc-balloon-qtest.h"
#include "qemu/atomic.h"

/* Clients that ask and hang up at once, on one monitor */
#define RECONNECT_CYCLES 300
/* The timeout of the request on the out-of-band capable monitor, in ms */
#define OOB_TIMEOUT_MS  300

/*
 * Two QMP monitors and HMP (through human-monitor-command and on an HMP
 * monitor) wait at the same time: the device asks the guest once, and
 * all of them get the answer.
 */
static void test_concurrent(void)
{
    static const Stat first[] = { { 4, 1000 }, { 5, 2000 } };
    static const Stat second[] = { { 4, 4000 }, { 5, 2000 } };
    Balloon b;
    QDict *rsp, *info;
    int64_t t0;
    int m2, m3, h1;
    g_autofree char *greeting = NULL;
    g_autofree char *hmp_text = NULL;
    g_autofree char *line = NULL;
    const char *text;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));
    m2 = qmp_connect(&b, "m2.sock");
    m3 = qmp_connect(&b, "m3.sock");
    h1 = mon_connect(&b, "h1.sock");
    greeting = hmp_read_prompt(h1);

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}, 'id': 'm1'}");
    assert_returned(&b, b.head);
    qmp_fd_send(m2, "{'execute': 'query-balloon',"
                " 'arguments': {'refresh': 'sync'}, 'id': 'm2'}");
    qmp_fd_send(m3, "{'execute': 'human-monitor-command',"
                " 'arguments': {'command-line': 'info balloon'},"
                " 'id': 'm3'}");
    trace_wait(&b, "balloon_stats_waiter_start", 3);
    assert_none_returned(&b, ABSENT_MS);

    /* HMP waits 1000 ms only: start it last */
    g_assert_cmpint(write(h1, "info balloon\n", 13), ==, 13);
    trace_wait(&b, "balloon_stats_waiter_start", 4);
    assert_none_returned(&b, 0);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_ask", NULL),
                    ==, 1);

    t0 = wall_ms();
    post_stats(&b, b.buf, second, ARRAY_SIZE(second));

    rsp = qtest_qmp_receive(b.qts);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "m1");
    info = reply_return(rsp);
    assert_fresh(info, t0);
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);

    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "m2");
    info = reply_return(rsp);
    assert_fresh(info, t0);
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);

    rsp = qmp_reply(m3);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "m3");
    g_assert_false(qdict_haskey(rsp, "error"));
    text = qdict_get_try_str(rsp, "return");
    g_assert_nonnull(text);
    line = hmp_balloon_line(text);
    g_assert_cmpstr(line, ==, "balloon: actual=256 free-memory=4000 "
                    "total-memory=2000");
    /* captured HMP output ends its lines as upstream's does */
    g_assert_true(g_str_has_suffix(text, "total-memory=2000\r\n"));
    qobject_unref(rsp);
    g_free(line);

    hmp_text = hmp_read_prompt(h1);
    line = hmp_balloon_line(hmp_text);
    g_assert_cmpstr(line, ==, "balloon: actual=256 free-memory=4000 "
                    "total-memory=2000");

    /* one round trip for all four */
    assert_none_returned(&b, ABSENT_MS);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_ask", NULL),
                    ==, 1);
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete",
                                "fresh 1"), ==, 4);
    /* one answer made for all four (the balloon's size asked once) */
    g_assert_cmpint(trace_count(&b, "balloon_stats_answer", "fresh 1"), ==, 1);
    /* the two QMP replies, each traced once, when sent */
    g_assert_cmpint(trace_count(&b, "balloon_stats_qmp_reply", "fresh 1"),
                    ==, 2);
    g_assert_cmpint(trace_count(&b, "balloon_stats_qmp_reply", NULL), ==, 2);
    /*
     * and no reply of the deferred command traced as a return that was
     * never sent (the generated marshallers' exit traces are on: the
     * monitors' qmp_capabilities shows them)
     */
    g_assert_cmpint(trace_count(&b, "qmp_exit_qmp_capabilities", NULL), >=, 2);
    g_assert_cmpint(trace_count(&b, "qmp_exit_query_balloon", NULL), ==, 0);

    balloon_end(&b);
}

/*
 * An out-of-band capable monitor queues its requests instead of being
 * suspended: the one after a waiting request is still answered after it.
 */
static void test_oob_monitor(void)
{
    static const Stat first[] = { { 4, 1000 } };
    Balloon b;
    QDict *rsp, *info;
    int m2;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));

    m2 = mon_connect(&b, "m2.sock");
    rsp = qmp_fd_receive(m2);
    qobject_unref(rsp);
    qmp_fd_send(m2, "{'execute': 'qmp_capabilities',"
                " 'arguments': {'enable': ['oob']}}");
    qobject_unref(reply_return(qmp_reply(m2)));

    qmp_fd_send(m2, "{'execute': 'query-balloon', 'arguments':"
                " {'refresh': 'sync', 'timeout': %d}, 'id': 'balloon'}",
                OOB_TIMEOUT_MS);
    qmp_fd_send(m2, "{'execute': 'query-status', 'id': 'status'}");
    assert_returned(&b, b.head);

    /* the balloon request waits, times out (stale-reason timeout), replies */
    assert_readable(m2, WAIT_MS);
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "balloon");
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_start", NULL),
                    ==, 1);
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete",
                                "fresh 0 stale-reason timeout"), ==, 1);
    info = reply_return(rsp);
    assert_stale(info, "timeout");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    /* ... and only then the request queued after it */
    assert_readable(m2, WAIT_MS);
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "status");
    qobject_unref(reply_return(rsp));

    balloon_end(&b);
}

/*
 * A client disconnects while its request waits: its monitor is served
 * again on reconnection while that request still waits, and the late
 * answer goes nowhere.
 */
static void test_disconnect(void)
{
    static const Stat first[] = { { 4, 1000 } };
    static const Stat second[] = { { 4, 2000 } };
    Balloon b;
    QDict *rsp, *info;
    int m2;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));

    m2 = qmp_connect(&b, "m2.sock");
    qmp_fd_send(m2, "{'execute': 'query-balloon',"
                " 'arguments': {'refresh': 'sync'}, 'id': 'gone'}");
    assert_returned(&b, b.head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);
    mon_close(&b, m2);
    trace_wait(&b, "monitor_deferred_orphan", 1);

    /* the new client of the same monitor is served before the orphan ends */
    m2 = mon_connect(&b, "m2.sock");
    assert_readable(m2, WAIT_MS);
    rsp = qmp_fd_receive(m2);
    g_assert_true(qdict_haskey(rsp, "QMP"));
    qobject_unref(rsp);
    qmp_fd_send(m2, "{'execute': 'qmp_capabilities', 'id': 'caps'}");
    assert_readable(m2, WAIT_MS);
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "caps");
    qobject_unref(reply_return(rsp));
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete", NULL),
                    ==, 0);

    /* the answer completes the orphan, whose reply goes nowhere */
    post_stats(&b, b.buf, second, ARRAY_SIZE(second));
    trace_wait(&b, "balloon_stats_waiter_complete", 1);
    qmp_fd_send(m2, "{'execute': 'query-balloon', 'id': 'new'}");
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "new");
    info = reply_return(rsp);
    assert_stale(info, "not-requested");
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);

    balloon_end(&b);
}

/* Wait until every waiter that started has been orphaned */
static void wait_all_orphaned(Balloon *b)
{
    int64_t end = now_ms() + WAIT_MS;

    while (trace_count(b, "monitor_deferred_orphan", NULL) <
           trace_count(b, "balloon_stats_waiter_start", NULL)) {
        g_assert_cmpint(now_ms(), <, end);
        g_usleep(2000);
    }
}

/* Another client keeps the QMP dispatcher busy until told to stop */
typedef struct Hammer {
    int fd;
    bool stop;
    int replies;
} Hammer;

static gpointer hammer_run(gpointer opaque)
{
    Hammer *h = opaque;

    while (!qatomic_read(&h->stop)) {
        qmp_fd_send(h->fd, "{'execute': 'query-status', 'id': 'h'}");
        qobject_unref(reply_return(qmp_reply(h->fd)));
        h->replies++;
    }
    return NULL;
}

/*
 * Hundreds of QMP clients of one monitor each ask for a sync refresh the
 * guest never answers and hang up at once, while another monitor keeps
 * the dispatcher busy (so a request is often taken off the queue before
 * its client's disconnect is seen, and dispatched after).  Every new
 * client gets its greeting and its own replies without waiting, and
 * never a reply of an earlier client; when the guest finally answers,
 * nothing reaches anyone.
 */
static void test_reconnect_qmp(void)
{
    static const Stat first[] = { { 4, 1000 } };
    static const Stat second[] = { { 4, 2000 } };
    Balloon b;
    QDict *rsp, *info;
    int i, fd, waiters;
    Hammer hammer = { 0 };
    GThread *thread;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));
    hammer.fd = qmp_connect(&b, "m3.sock");
    thread = g_thread_new("hammer", hammer_run, &hammer);

    for (i = 0; i < RECONNECT_CYCLES; i++) {
        g_autofree char *caps = g_strdup_printf("caps-%d", i);
        g_autofree char *ask = g_strdup_printf("ask-%d", i);

        fd = mon_connect(&b, "m2.sock");
        assert_readable(fd, WAIT_MS);
        rsp = qmp_fd_receive(fd);
        g_assert_true(qdict_haskey(rsp, "QMP"));
        qobject_unref(rsp);
        qmp_fd_send(fd, "{'execute': 'qmp_capabilities', 'id': %s}", caps);
        assert_readable(fd, WAIT_MS);
        rsp = qmp_reply(fd);
        g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, caps);
        qobject_unref(reply_return(rsp));
        qmp_fd_send(fd, "{'execute': 'query-balloon', 'arguments':"
                    " {'refresh': 'sync', 'timeout': 60000}, 'id': %s}", ask);
        if (i == 0) {
            /* the first one is surely dispatched: the device asks */
            assert_returned(&b, b.head);
        }
        mon_close(&b, fd);
    }
    qatomic_set(&hammer.stop, true);
    g_thread_join(thread);
    g_assert_cmpint(hammer.replies, >, 0);
    wait_all_orphaned(&b);
    waiters = trace_count(&b, "balloon_stats_waiter_start", NULL);
    g_assert_cmpint(waiters, >, 0);

    /* the guest answers: every orphan completes, and no reply goes out */
    fd = qmp_connect(&b, "m2.sock");
    post_stats(&b, b.buf, second, ARRAY_SIZE(second));
    trace_wait(&b, "balloon_stats_waiter_complete", waiters);
    qmp_fd_send(fd, "{'execute': 'query-balloon', 'id': 'last'}");
    rsp = qmp_reply(fd);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "last");
    info = reply_return(rsp);
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);
    balloon_end(&b);
}

/*
 * The same on an HMP monitor: clients that hang up while info balloon
 * waits leave nothing for the next client, who is served at once.
 */
static void test_reconnect_hmp(void)
{
    static const Stat first[] = { { 4, 1000 } };
    Balloon b;
    int i, fd;
    char *text;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));

    for (i = 0; i < RECONNECT_CYCLES; i++) {
        fd = mon_connect(&b, "h1.sock");
        text = hmp_read_prompt(fd);
        g_assert_null(strstr(text, "balloon:"));
        g_free(text);
        g_assert_cmpint(write(fd, "info balloon\n", 13), ==, 13);
        trace_wait(&b, "balloon_stats_waiter_start", i + 1);
        mon_close(&b, fd);
    }
    wait_all_orphaned(&b);

    /* their waiters time out while the next client is connected */
    fd = mon_connect(&b, "h1.sock");
    text = hmp_read_prompt(fd);
    g_assert_null(strstr(text, "balloon:"));
    g_free(text);
    trace_wait(&b, "balloon_stats_waiter_complete",
               trace_count(&b, "balloon_stats_waiter_start", NULL));
    g_assert_cmpint(write(fd, "info status\n", 12), ==, 12);
    text = hmp_read_prompt(fd);
    g_assert_nonnull(strstr(text, "VM status: running"));
    g_assert_null(strstr(text, "balloon:"));
    g_free(text);
    balloon_end(&b);
}

/* QEMU quits while requests wait: they complete, and QEMU exits cleanly */
static void test_quit(void)
{
    static const Stat first[] = { { 4, 1000 } };
    Balloon b;
    QDict *rsp, *info;
    int m2, h1;
    g_autofree char *greeting = NULL;
    GString *out = g_string_new(NULL);
    char c;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));
    m2 = qmp_connect(&b, "m2.sock");
    h1 = mon_connect(&b, "h1.sock");
    greeting = hmp_read_prompt(h1);

    qmp_fd_send(m2, "{'execute': 'query-balloon',"
                " 'arguments': {'refresh': 'sync'}, 'id': 'w'}");
    assert_returned(&b, b.head);
    g_assert_cmpint(write(h1, "info balloon\n", 13), ==, 13);
    trace_wait(&b, "balloon_stats_waiter_start", 2);

    qtest_qmp_assert_success(b.qts, "{'execute': 'quit'}");

    /*
     * The VM stops before the monitors go away: the waiters complete with
     * the latest statistics, marked stale for that reason
     */
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "w");
    info = reply_return(rsp);
    assert_stale(info, "stopped");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    /* HMP prints the stale line, then QEMU closes the connection */
    for (;;) {
        assert_readable(h1, WAIT_MS);
        if (read(h1, &c, 1) != 1) {
            break;
        }
        g_string_append_c(out, c);
    }
    g_assert_nonnull(strstr(out->str, "balloon: actual="));
    g_assert_nonnull(strstr(out->str, " age="));
    g_string_free(out, true);

    balloon_end(&b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/oc-balloon-monitors/concurrent", test_concurrent);
    qtest_add_func("/oc-balloon-monitors/oob-monitor", test_oob_monitor);
    qtest_add_func("/oc-balloon-monitors/disconnect", test_disconnect);
    qtest_add_func("/oc-balloon-monitors/reconnect-qmp", test_reconnect_qmp);
    qtest_add_func("/oc-balloon-monitors/reconnect-hmp", test_reconnect_hmp);
    qtest_add_func("/oc-balloon-monitors/quit", test_quit);

    return g_test_run();
}
