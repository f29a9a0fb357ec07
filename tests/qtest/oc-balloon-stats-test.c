/*
 * QTest: virtio-balloon statistics on demand, the answers (qemu-oc)
 *
 * The test plays the guest's virtio-balloon driver through libqos: it
 * negotiates VIRTIO_BALLOON_F_STATS_VQ, posts statistics buffers on the
 * stats virtqueue, sees the device return them when it wants fresh
 * statistics, and re-posts them refilled.  Meanwhile it asks through
 * query-balloon (refresh none, async and sync) and HMP info balloon, and
 * checks what it gets and in which order: what the guest reported, what a
 * guest that never answers leaves, malformed buffers, the BALLOON_STATS
 * event.  Several monitors: oc-balloon-monitors-test; resets, unplug,
 * stopped or broken devices and bad arguments: oc-balloon-lifecycle-test.
 *
 * QEMU's trace log (-D) is read to know when a request is waiting in QEMU
 * and how often the device asked the guest; what the guest sees is read
 * from the virtqueue itself.  The helpers are in oc-balloon-qtest.c.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqmp.h"
#include "oc-balloon-qtest.h"

/* The timeout of the request the guest never answers, in ms */
#define NEVER_TIMEOUT_MS 1500

/*
 * The guest answers: query-balloon shows what the first buffer reported,
 * marked not-requested; a sync refresh gets the device to return the
 * buffer and its reply waits until the driver re-posts it, refilled.
 */
static void test_answers(void)
{
    static const Stat first[] = {
        { 4, 1000 }, { 5, 2000 }, { 99, 12345 }, { 15, 7 },
    };
    static const Stat first_known[] = { { 4, 1000 }, { 5, 2000 }, { 15, 7 } };
    static const Stat second[] = {
        { 4, 1500 }, { 5, 2000 }, { 15, 9 }, { 0, 3 }, { 100, 1 },
    };
    static const Stat second_known[] = {
        { 4, 1500 }, { 5, 2000 }, { 15, 9 }, { 0, 3 },
    };
    Balloon b;
    QDict *info, *rsp;
    uint64_t buf;
    uint32_t head;
    int64_t t0;
    g_autofree char *hmp = NULL;
    g_autofree char *line = NULL;

    balloon_boot(&b, true);
    driver_init(&b, true);

    /* before the driver gave its buffer, there is nothing to ask */
    query_check(&b, NULL, "not-requested", NULL, 0);
    query_check(&b, "{'refresh': 'sync'}", "not-ready", NULL, 0);

    t0 = wall_ms();
    buf = guest_alloc(&b.alloc, ARRAY_SIZE(second) * STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));
    assert_none_returned(&b, ABSENT_MS);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_unknown_tag",
                                "tag 99"), ==, 1);

    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_stats(info, first_known, ARRAY_SIZE(first_known));
    g_assert_cmpint(qdict_get_int(info, "last-update"), >=, t0);
    qobject_unref(info);

    hmp = qtest_hmp(b.qts, "info balloon -n");
    line = hmp_balloon_line(hmp);
    g_assert_true(g_str_has_prefix(line, "balloon: actual=256 "
                                   "free-memory=1000 total-memory=2000 "
                                   "direct-reclaims=7 age="));

    /* the request is out; the device returns the buffer to be refilled */
    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}, 'id': 'sync'}");
    assert_returned(&b, head);
    assert_none_returned(&b, ABSENT_MS);
    t0 = wall_ms();
    post_stats(&b, buf, second, ARRAY_SIZE(second));

    rsp = qtest_qmp_receive(b.qts);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "sync");
    info = reply_return(rsp);
    assert_fresh(info, t0);
    assert_stats(info, second_known, ARRAY_SIZE(second_known));
    qobject_unref(info);

    /* refresh none afterwards: the same statistics, not requested */
    query_check(&b, "{'refresh': 'none'}", "not-requested",
                second_known, ARRAY_SIZE(second_known));
    assert_none_returned(&b, ABSENT_MS);

    balloon_end(&b);
}

/*
 * The guest never answers: the sync request times out with the old
 * statistics, while another monitor is served throughout, and the
 * waiting monitor's next request is answered after it, in order.
 */
static void test_never_answers(void)
{
    static const Stat first[] = { { 4, 1000 }, { 5, 2000 } };
    static const Stat late[] = { { 4, 1111 }, { 5, 2000 } };
    g_autofree char *timeout_detail =
        g_strdup_printf("timeout %d ms", NEVER_TIMEOUT_MS);
    Balloon b;
    QDict *rsp, *info;
    int m2, i;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));
    m2 = qmp_connect(&b, "m2.sock");

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon', 'arguments':"
                   " {'refresh': 'sync', 'timeout': %d}, 'id': 'balloon'}",
                   NEVER_TIMEOUT_MS);
    qtest_qmp_send(b.qts, "{'execute': 'query-status', 'id': 'status'}");
    assert_returned(&b, b.head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_start",
                                timeout_detail), ==, 1);

    /* monitor 2 is served while monitor 1 waits */
    for (i = 0; i < 5; i++) {
        qmp_fd_send(m2, "{'execute': 'query-status'}");
        info = reply_return(qmp_reply(m2));
        g_assert_cmpstr(qdict_get_try_str(info, "status"), ==, "running");
        qobject_unref(info);
        g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete",
                                    NULL), ==, 0);
        g_usleep(20 * 1000);
    }

    /* the request times out (stale-reason timeout), unanswered */
    rsp = qtest_qmp_receive(b.qts);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "balloon");
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete",
                                "fresh 0 stale-reason timeout"), ==, 1);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_received", NULL),
                    ==, 1);
    info = reply_return(rsp);
    assert_stale(info, "timeout");
    assert_stats(info, first, ARRAY_SIZE(first));
    /* the statistics were reported before the request started */
    g_assert_cmpint(qdict_get_int(info, "age"), >=, NEVER_TIMEOUT_MS - 50);
    qobject_unref(info);

    rsp = qtest_qmp_receive(b.qts);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "status");
    qobject_unref(reply_return(rsp));

    /* a late answer is still taken in */
    post_stats(&b, b.buf, late, ARRAY_SIZE(late));
    query_check(&b, NULL, "not-requested", late, ARRAY_SIZE(late));

    /* monitor 2 still works normally */
    qmp_fd_send(m2, "{'execute': 'query-balloon'}");
    info = reply_return(qmp_reply(m2));
    assert_stats(info, late, ARRAY_SIZE(late));
    qobject_unref(info);

    balloon_end(&b);
}

/*
 * Malformed buffers are returned unused at once and ignored; good
 * buffers posted afterwards are taken in.
 */
static void test_malformed(void)
{
    static const Stat good2[] = { { 1, 11 }, { 2, 22 }, { 3, 33 } };
    static const Stat fresh[] = { { 1, 111 }, { 2, 222 }, { 3, 333 } };
    const char *bad_event = "virtio_balloon_stats_bad_buffer";
    g_autofree Stat *big = g_new0(Stat, 300);
    Stat big_known[NR_TAGS];
    Balloon b;
    uint64_t buf, buf2, wbuf;
    uint32_t head, head1, head2;
    int i;

    balloon_boot(&b, true);
    driver_init(&b, true);
    for (i = 0; i < 300; i++) {
        big[i].tag = i % 20;
        big[i].val = i;
    }
    buf = guest_alloc(&b.alloc, 300 * STAT_SIZE);
    buf2 = guest_alloc(&b.alloc, ARRAY_SIZE(good2) * STAT_SIZE);
    wbuf = guest_alloc(&b.alloc, 64);

    /* a readable descriptor chained to a device-writable one */
    buf_fill(&b, buf, big, 2);
    head = qvirtqueue_add(b.qts, b.vq, buf, 2 * STAT_SIZE, false, true);
    qvirtqueue_add(b.qts, b.vq, wbuf, STAT_SIZE, true, false);
    qvirtqueue_kick(b.qts, &b.dev->vdev, b.vq, head);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, bad_event, "writable desc"), ==, 1);

    /* a single device-writable descriptor */
    head = post_raw(&b, wbuf, 2 * STAT_SIZE, true);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, bad_event, "writable desc"), ==, 2);

    /* 15 bytes: not a whole number of entries */
    head = post_raw(&b, buf, 15, false);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, bad_event, "length 15"), ==, 1);

    /* 300 entries: oversized */
    buf_fill(&b, buf, big, 300);
    head = post_raw(&b, buf, 300 * STAT_SIZE, false);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, bad_event, "oversized"), ==, 1);

    /* 257 entries: one too many */
    head = post_raw(&b, buf, (MAX_ENTRIES + 1) * STAT_SIZE, false);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, bad_event, "oversized"), ==, 2);

    /* none of them counted as a report */
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_received", NULL),
                    ==, 0);
    query_check(&b, NULL, "not-requested", NULL, 0);
    query_check(&b, "{'refresh': 'sync'}", "not-ready", NULL, 0);
    assert_none_returned(&b, ABSENT_MS);

    /*
     * 256 entries, the most allowed: tags 0..19 cycling, the last value
     * of each tag wins (240 + tag), tags 16..19 are skipped
     */
    head1 = post_stats(&b, buf, big, MAX_ENTRIES);
    assert_none_returned(&b, ABSENT_MS);
    for (i = 0; i < NR_TAGS; i++) {
        big_known[i].tag = i;
        big_known[i].val = 240 + i;
    }
    query_check(&b, NULL, "not-requested", big_known, NR_TAGS);

    /* a malformed buffer while a good one is held: only it comes back */
    head = post_raw(&b, buf2, 7, false);
    assert_returned(&b, head);
    assert_none_returned(&b, ABSENT_MS);

    /* a second good buffer while one is held: the first comes back */
    head2 = post_stats(&b, buf2, good2, ARRAY_SIZE(good2));
    assert_returned(&b, head1);
    assert_none_returned(&b, ABSENT_MS);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_second_buffer",
                                NULL), ==, 1);
    query_check(&b, NULL, "not-requested", good2, ARRAY_SIZE(good2));

    /* and the second one serves a refresh */
    sync_answered(&b, head2, buf2, fresh, ARRAY_SIZE(fresh));

    g_assert_cmpint(trace_count(&b, bad_event, NULL), ==, 6);
    balloon_end(&b);
}

/* refresh async replies at once; BALLOON_STATS carries the answer */
static void test_async(void)
{
    static const Stat first[] = { { 4, 1000 }, { 6, 1500 } };
    static const Stat second[] = { { 4, 900 }, { 6, 1400 }, { 10, 1 } };
    Balloon b;
    QDict *info, *ev, *data, *ev2;
    int64_t t0;

    balloon_start(&b, ARRAY_SIZE(second), first, ARRAY_SIZE(first));

    query_check(&b, "{'refresh': 'async'}", "pending",
                first, ARRAY_SIZE(first));
    assert_returned(&b, b.head);

    /* a second async request shares the round trip */
    query_check(&b, "{'refresh': 'async'}", "pending",
                first, ARRAY_SIZE(first));
    assert_none_returned(&b, ABSENT_MS);
    g_assert_null(qtest_qmp_event_ref(b.qts, "BALLOON_STATS"));

    /*
     * The event goes out when the answer is taken in, so before the reply
     * to any later command
     */
    t0 = wall_ms();
    post_stats(&b, b.buf, second, ARRAY_SIZE(second));
    qtest_qmp_assert_success(b.qts, "{'execute': 'query-status'}");
    ev = qtest_qmp_event_ref(b.qts, "BALLOON_STATS");
    g_assert_nonnull(ev);
    data = qdict_get_qdict(ev, "data");
    g_assert_nonnull(data);
    g_assert_cmpint(qdict_get_int(data, "actual"), ==,
                    (int64_t)RAM_MB << 20);
    g_assert_cmpint(qdict_get_int(data, "last-update"), >=, t0);
    g_assert_cmpint(qdict_get_int(data, "last-update"), <=, wall_ms());
    assert_guest_stats(qdict_get_qdict(data, "stats"),
                       second, ARRAY_SIZE(second));

    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_stats(info, second, ARRAY_SIZE(second));
    g_assert_cmpint(qdict_get_int(info, "last-update"), ==,
                    qdict_get_int(data, "last-update"));
    qobject_unref(info);
    qobject_unref(ev);

    /* one event for both requests */
    ev2 = qtest_qmp_event_ref(b.qts, "BALLOON_STATS");
    g_assert_null(ev2);

    /* no request pending: a guest report sends no event */
    post_stats(&b, b.buf, second, ARRAY_SIZE(second));
    info = query(&b, NULL);
    qobject_unref(info);
    g_assert_null(qtest_qmp_event_ref(b.qts, "BALLOON_STATS"));

    balloon_end(&b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/oc-balloon-stats/answers", test_answers);
    qtest_add_func("/oc-balloon-stats/never-answers", test_never_answers);
    qtest_add_func("/oc-balloon-stats/malformed", test_malformed);
    qtest_add_func("/oc-balloon-stats/async", test_async);

    return g_test_run();
}
