/*
 * QTest: virtio-balloon statistics on demand (qemu-oc)
 *
 * The test plays the guest's virtio-balloon driver through libqos: it
 * negotiates VIRTIO_BALLOON_F_STATS_VQ (or not), posts statistics buffers
 * on the stats virtqueue, sees the device return them when it wants fresh
 * statistics, and re-posts them refilled.  Meanwhile it asks through
 * query-balloon (refresh none, async and sync), HMP info balloon and
 * human-monitor-command, on up to three QMP monitors and one HMP monitor,
 * and checks what each gets and when.
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
#include "qapi/error.h"
#include "qapi/qmp/qjson.h"
#include "qemu/atomic.h"
#include "standard-headers/linux/virtio_config.h"

/* PIIX4 ACPI PCI hotplug eject register (hw/acpi/pcihp.c) */
#define PIIX_PCIHP_EJECT 0xae08
/* Clients that ask and hang up at once, on one monitor */
#define RECONNECT_CYCLES 300

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
    QDict *info;
    uint64_t buf;
    uint32_t head;
    int64_t t0;
    g_autofree char *hmp = NULL;
    g_autofree char *line = NULL;

    balloon_boot(&b, true);
    driver_init(&b, true);

    /* before the driver gave its buffer, there is nothing to ask */
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_no_stats(info);
    qobject_unref(info);
    info = query_prompt(&b, "{'refresh': 'sync'}");
    assert_stale(info, "not-ready");
    assert_no_stats(info);
    qobject_unref(info);

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

    {
        QDict *rsp = qtest_qmp_receive(b.qts);

        g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "sync");
        info = reply_return(rsp);
    }
    assert_fresh(info, t0);
    assert_stats(info, second_known, ARRAY_SIZE(second_known));
    qobject_unref(info);

    /* refresh none afterwards: the same statistics, not requested */
    info = query(&b, "{'refresh': 'none'}");
    assert_stale(info, "not-requested");
    assert_stats(info, second_known, ARRAY_SIZE(second_known));
    qobject_unref(info);
    assert_none_returned(&b, ABSENT_MS);

    balloon_end(&b);
}

/*
 * The guest never answers: the sync request times out with the old
 * statistics, while another monitor is served at once throughout, and
 * the waiting monitor's next request is answered after it, in order.
 */
static void test_never_answers(void)
{
    static const Stat first[] = { { 4, 1000 }, { 5, 2000 } };
    static const Stat late[] = { { 4, 1111 }, { 5, 2000 } };
    Balloon b;
    QDict *rsp, *info;
    uint64_t buf;
    uint32_t head;
    int64_t t0, t;
    int m2, i;

    balloon_boot(&b, true);
    driver_init(&b, true);
    m2 = qmp_connect(&b, "m2.sock");
    buf = guest_alloc(&b.alloc, ARRAY_SIZE(first) * STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    t0 = now_ms();
    qtest_qmp_send(b.qts, "{'execute': 'query-balloon', 'arguments':"
                   " {'refresh': 'sync', 'timeout': 1500}, 'id': 'balloon'}");
    qtest_qmp_send(b.qts, "{'execute': 'query-status', 'id': 'status'}");
    assert_returned(&b, head);

    for (i = 0; i < 5; i++) {
        t = now_ms();
        qmp_fd_send(m2, "{'execute': 'query-status'}");
        info = reply_return(qmp_reply(m2));
        g_assert_cmpint(now_ms() - t, <, 500);
        g_assert_cmpstr(qdict_get_try_str(info, "status"), ==, "running");
        qobject_unref(info);
        g_usleep(50 * 1000);
    }
    /* ... all of them while monitor 1 waited */
    g_assert_cmpint(now_ms() - t0, <, 1500);

    rsp = qtest_qmp_receive(b.qts);
    g_assert_cmpint(now_ms() - t0, >=, 1500 - 50);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "balloon");
    info = reply_return(rsp);
    assert_stale(info, "timeout");
    assert_stats(info, first, ARRAY_SIZE(first));
    g_assert_cmpint(qdict_get_int(info, "age"), >=, 1500 - 50);
    qobject_unref(info);

    rsp = qtest_qmp_receive(b.qts);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "status");
    qobject_unref(reply_return(rsp));

    /* a late answer is still taken in */
    post_stats(&b, buf, late, ARRAY_SIZE(late));
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_stats(info, late, ARRAY_SIZE(late));
    qobject_unref(info);

    /* monitor 2 still works normally */
    qmp_fd_send(m2, "{'execute': 'query-balloon'}");
    info = reply_return(qmp_reply(m2));
    assert_stats(info, late, ARRAY_SIZE(late));
    qobject_unref(info);

    close(m2);
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
    QDict *info;
    uint64_t buf, buf2, wbuf;
    uint32_t head, head1, head2;
    int64_t t0;
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
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_no_stats(info);
    qobject_unref(info);
    info = query_prompt(&b, "{'refresh': 'sync'}");
    assert_stale(info, "not-ready");
    assert_no_stats(info);
    qobject_unref(info);
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
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_stats(info, big_known, NR_TAGS);
    qobject_unref(info);

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
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_stats(info, good2, ARRAY_SIZE(good2));
    qobject_unref(info);

    /* and the second one serves a refresh */
    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}}");
    assert_returned(&b, head2);
    t0 = wall_ms();
    post_stats(&b, buf2, fresh, ARRAY_SIZE(fresh));
    info = reply_return(qtest_qmp_receive(b.qts));
    assert_fresh(info, t0);
    assert_stats(info, fresh, ARRAY_SIZE(fresh));
    qobject_unref(info);

    g_assert_cmpint(trace_count(&b, bad_event, NULL), ==, 6);
    balloon_end(&b);
}

/*
 * A zero-length descriptor is refused by QEMU's virtqueue code before the
 * balloon sees it: the device is marked broken (NEEDS_RESET).  QEMU keeps
 * working, and a driver reset brings the statistics back.
 */
static void test_zero_length(void)
{
    static const Stat st[] = { { 6, 600 } };
    Balloon b;
    QDict *info, *rsp;
    uint64_t buf;
    uint32_t head;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);

    post_raw(&b, buf, 0, false);
    assert_none_returned(&b, ABSENT_MS);
    g_assert_cmphex(b.dev->vdev.bus->get_status(&b.dev->vdev) &
                    VIRTIO_CONFIG_S_NEEDS_RESET, ==,
                    VIRTIO_CONFIG_S_NEEDS_RESET);

    rsp = qtest_qmp(b.qts, "{'execute': 'query-status'}");
    qobject_unref(reply_return(rsp));
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_no_stats(info);
    qobject_unref(info);
    info = query(&b, "{'refresh': 'sync', 'timeout': 60000}");
    assert_stale(info, "broken");
    qobject_unref(info);

    driver_init(&b, true);
    head = post_stats(&b, buf, st, ARRAY_SIZE(st));
    sync_answered(&b, head, buf, st, ARRAY_SIZE(st));

    balloon_end(&b);
}

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
    uint64_t buf;
    uint32_t head;
    int64_t t0;
    int m2, m3, h1;
    g_autofree char *greeting = NULL;
    g_autofree char *hmp_text = NULL;
    g_autofree char *line = NULL;
    const char *text;

    balloon_boot(&b, true);
    driver_init(&b, true);
    m2 = qmp_connect(&b, "m2.sock");
    m3 = qmp_connect(&b, "m3.sock");
    h1 = mon_connect(&b, "h1.sock");
    greeting = hmp_read_prompt(h1);
    buf = guest_alloc(&b.alloc, ARRAY_SIZE(first) * STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}, 'id': 'm1'}");
    assert_returned(&b, head);
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
    post_stats(&b, buf, second, ARRAY_SIZE(second));

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

    close(h1);
    close(m3);
    close(m2);
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
    uint64_t buf;
    uint32_t head;
    int64_t t0;
    int m2;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    m2 = mon_connect(&b, "m2.sock");
    rsp = qmp_fd_receive(m2);
    qobject_unref(rsp);
    qmp_fd_send(m2, "{'execute': 'qmp_capabilities',"
                " 'arguments': {'enable': ['oob']}}");
    qobject_unref(reply_return(qmp_reply(m2)));

    t0 = now_ms();
    qmp_fd_send(m2, "{'execute': 'query-balloon', 'arguments':"
                " {'refresh': 'sync', 'timeout': 300}, 'id': 'balloon'}");
    qmp_fd_send(m2, "{'execute': 'query-status', 'id': 'status'}");
    assert_returned(&b, head);

    assert_readable(m2, PROMPT_MS);
    rsp = qmp_reply(m2);
    g_assert_cmpint(now_ms() - t0, >=, 300 - 50);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "balloon");
    info = reply_return(rsp);
    assert_stale(info, "timeout");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    assert_readable(m2, PROMPT_MS);
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "status");
    qobject_unref(reply_return(rsp));

    close(m2);
    balloon_end(&b);
}

/*
 * A client disconnects while its request waits: its monitor is served
 * again at once on reconnection, and the late answer goes nowhere.
 */
static void test_disconnect(void)
{
    static const Stat first[] = { { 4, 1000 } };
    static const Stat second[] = { { 4, 2000 } };
    Balloon b;
    QDict *rsp, *info;
    uint64_t buf;
    uint32_t head;
    int m2;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    m2 = qmp_connect(&b, "m2.sock");
    qmp_fd_send(m2, "{'execute': 'query-balloon',"
                " 'arguments': {'refresh': 'sync'}, 'id': 'gone'}");
    assert_returned(&b, head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);
    close(m2);
    trace_wait(&b, "monitor_deferred_orphan", 1);

    /* the new client of the same monitor is served at once */
    m2 = mon_connect(&b, "m2.sock");
    assert_readable(m2, PROMPT_MS);
    rsp = qmp_fd_receive(m2);
    g_assert_true(qdict_haskey(rsp, "QMP"));
    qobject_unref(rsp);
    qmp_fd_send(m2, "{'execute': 'qmp_capabilities', 'id': 'caps'}");
    assert_readable(m2, PROMPT_MS);
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "caps");
    qobject_unref(reply_return(rsp));

    /* the answer completes the orphan, whose reply goes nowhere */
    post_stats(&b, buf, second, ARRAY_SIZE(second));
    trace_wait(&b, "balloon_stats_waiter_complete", 1);
    qmp_fd_send(m2, "{'execute': 'query-balloon', 'id': 'new'}");
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "new");
    info = reply_return(rsp);
    assert_stale(info, "not-requested");
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);

    close(m2);
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
    uint64_t buf;
    uint32_t head;
    int i, fd, waiters;
    Hammer hammer = { 0 };
    GThread *thread;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));
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
            assert_returned(&b, head);
        }
        close(fd);
    }
    qatomic_set(&hammer.stop, true);
    g_thread_join(thread);
    g_assert_cmpint(hammer.replies, >, 0);
    close(hammer.fd);
    wait_all_orphaned(&b);
    waiters = trace_count(&b, "balloon_stats_waiter_start", NULL);
    g_assert_cmpint(waiters, >, 0);

    /* the guest answers: every orphan completes, and no reply goes out */
    fd = qmp_connect(&b, "m2.sock");
    post_stats(&b, buf, second, ARRAY_SIZE(second));
    trace_wait(&b, "balloon_stats_waiter_complete", waiters);
    qmp_fd_send(fd, "{'execute': 'query-balloon', 'id': 'last'}");
    rsp = qmp_reply(fd);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "last");
    info = reply_return(rsp);
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);
    close(fd);
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
    uint64_t buf;
    int i, fd;
    char *text;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    post_stats(&b, buf, first, ARRAY_SIZE(first));

    for (i = 0; i < RECONNECT_CYCLES; i++) {
        fd = mon_connect(&b, "h1.sock");
        text = hmp_read_prompt(fd);
        g_assert_null(strstr(text, "balloon:"));
        g_free(text);
        g_assert_cmpint(write(fd, "info balloon\n", 13), ==, 13);
        trace_wait(&b, "balloon_stats_waiter_start", i + 1);
        close(fd);
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
    close(fd);
    balloon_end(&b);
}

/*
 * The driver marks the device as needing a reset while it holds the
 * statistics buffer: the waiting request completes at once, and later
 * ones, sync, async or HMP, answer at once, all with stale-reason broken
 * and the latest statistics.  A driver reset brings fresh ones back.
 */
static void test_broken(void)
{
    static const Stat first[] = { { 4, 1000 } };
    static const Stat second[] = { { 4, 2000 } };
    QVirtioDevice *vdev;
    Balloon b;
    QDict *info;
    uint64_t buf;
    uint32_t head;
    char *text;
    int h1;

    balloon_boot(&b, true);
    driver_init(&b, true);
    vdev = &b.dev->vdev;
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
    assert_returned(&b, head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);
    vdev->bus->set_status(vdev, vdev->bus->get_status(vdev) |
                          VIRTIO_CONFIG_S_NEEDS_RESET);
    info = reply_return(qtest_qmp_receive(b.qts));
    assert_stale(info, "broken");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    info = query(&b, "{'refresh': 'sync', 'timeout': 60000}");
    assert_stale(info, "broken");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);
    info = query(&b, "{'refresh': 'async'}");
    assert_stale(info, "broken");
    qobject_unref(info);
    h1 = mon_connect(&b, "h1.sock");
    g_free(hmp_read_prompt(h1));
    g_assert_cmpint(write(h1, "info balloon\n", 13), ==, 13);
    text = hmp_read_prompt(h1);
    g_assert_nonnull(strstr(text, "balloon: actual=256 free-memory=1000 age="));
    g_free(text);
    close(h1);
    /* none of them waited */
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_start", NULL),
                    ==, 1);

    driver_init(&b, true);
    head = post_stats(&b, buf, second, ARRAY_SIZE(second));
    sync_answered(&b, head, buf, second, ARRAY_SIZE(second));
    balloon_end(&b);
}

/* QEMU quits while requests wait: they complete, and QEMU exits cleanly */
static void test_quit(void)
{
    static const Stat first[] = { { 4, 1000 } };
    Balloon b;
    QDict *rsp, *info;
    uint64_t buf;
    uint32_t head;
    int m2, h1;
    g_autofree char *greeting = NULL;
    GString *out = g_string_new(NULL);
    char c;

    balloon_boot(&b, true);
    driver_init(&b, true);
    m2 = qmp_connect(&b, "m2.sock");
    h1 = mon_connect(&b, "h1.sock");
    greeting = hmp_read_prompt(h1);
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    qmp_fd_send(m2, "{'execute': 'query-balloon',"
                " 'arguments': {'refresh': 'sync'}, 'id': 'w'}");
    assert_returned(&b, head);
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

    close(h1);
    close(m2);
    balloon_end(&b);
}

/* A driver reset completes a waiting request at once */
static void test_reset(void)
{
    static const Stat first[] = { { 7, 70 }, { 4, 1000 } };
    static const Stat second[] = { { 7, 71 } };
    Balloon b;
    QDict *info;
    uint64_t buf;
    uint32_t head;
    int64_t t0;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, ARRAY_SIZE(first) * STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}}");
    assert_returned(&b, head);
    t0 = now_ms();
    qvirtio_reset(&b.dev->vdev);
    info = reply_return(qtest_qmp_receive(b.qts));
    g_assert_cmpint(now_ms() - t0, <, PROMPT_MS);
    assert_stale(info, "reset");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    /* the latest statistics stay known; the reset driver cannot be asked */
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);
    info = query_prompt(&b, "{'refresh': 'sync'}");
    assert_stale(info, "not-ready");
    qobject_unref(info);

    /* the driver starts again */
    driver_init(&b, true);
    info = query_prompt(&b, "{'refresh': 'sync'}");
    assert_stale(info, "not-ready");
    qobject_unref(info);
    head = post_stats(&b, buf, second, ARRAY_SIZE(second));
    sync_answered(&b, head, buf, second, ARRAY_SIZE(second));

    balloon_end(&b);
}

/* A driver without VIRTIO_BALLOON_F_STATS_VQ: never asked, never heard */
static void test_unsupported(void)
{
    static const Stat st[] = { { 4, 1000 } };
    Balloon b;
    QDict *info;
    uint64_t buf;
    uint32_t head;
    g_autofree char *hmp = NULL;
    g_autofree char *line = NULL;

    balloon_boot(&b, true);
    driver_init(&b, false);

    info = query_prompt(&b, "{'refresh': 'sync'}");
    assert_stale(info, "unsupported");
    assert_no_stats(info);
    qobject_unref(info);
    info = query_prompt(&b, "{'refresh': 'async'}");
    assert_stale(info, "unsupported");
    qobject_unref(info);

    buf = guest_alloc(&b.alloc, STAT_SIZE);
    buf_fill(&b, buf, st, ARRAY_SIZE(st));
    head = post_raw(&b, buf, STAT_SIZE, false);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_bad_buffer",
                                "not negotiated"), ==, 1);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_received", NULL),
                    ==, 0);

    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_no_stats(info);
    qobject_unref(info);
    info = query_prompt(&b, "{'refresh': 'sync', 'timeout': 60000}");
    assert_stale(info, "unsupported");
    assert_no_stats(info);
    qobject_unref(info);

    hmp = qtest_hmp(b.qts, "info balloon");
    line = hmp_balloon_line(hmp);
    g_assert_cmpstr(line, ==, "balloon: actual=256");
    assert_none_returned(&b, ABSENT_MS);

    balloon_end(&b);
}

/*
 * Unplugging the device completes a waiting request at once; afterwards
 * query-balloon reports that there is no balloon
 */
static void test_unplug(void)
{
    static const Stat st[] = { { 4, 4444 }, { 5, 8888 } };
    Balloon b;
    QDict *rsp, *info;
    uint64_t buf;
    uint32_t head;
    int64_t t0;
    int m2;

    balloon_boot(&b, true);
    driver_init(&b, true);
    m2 = qmp_connect(&b, "m2.sock");
    buf = guest_alloc(&b.alloc, STAT_SIZE * ARRAY_SIZE(st));
    head = post_stats(&b, buf, st, ARRAY_SIZE(st));

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
    assert_returned(&b, head);

    /* the asking monitor waits: unplug through another one */
    t0 = now_ms();
    qmp_fd_send(m2, "{'execute': 'device_del', 'arguments': {'id': 'b0'}}");
    qobject_unref(reply_return(qmp_reply(m2)));
    qtest_outl(b.qts, PIIX_PCIHP_EJECT, 1 << 4);
    info = reply_return(qtest_qmp_receive(b.qts));
    g_assert_cmpint(now_ms() - t0, <, PROMPT_MS);
    assert_stale(info, "reset");
    assert_stats(info, st, ARRAY_SIZE(st));
    qobject_unref(info);
    qtest_qmp_eventwait(b.qts, "DEVICE_DELETED");

    rsp = qtest_qmp(b.qts, "{'execute': 'query-balloon',"
                    " 'arguments': {'refresh': 'sync'}}");
    g_assert_cmpstr(qdict_get_try_str(qdict_get_qdict(rsp, "error"), "class"),
                    ==, "DeviceNotActive");
    qobject_unref(rsp);

    /* the device is gone: free the driver's side without touching it */
    g_free(b.vq);
    b.vq = NULL;
    g_free(b.dev->pdev);
    g_free(b.dev);
    b.dev = NULL;
    qpci_free_pc(b.bus);
    alloc_destroy(&b.alloc);
    close(m2);
    balloon_end(&b);
}

/*
 * A stopped VM is not asked; once it runs again, it is; a waiter
 * pending when the VM stops completes at once
 */
static void test_stopped(void)
{
    static const Stat st[] = { { 6, 66 } };
    static const Stat st2[] = { { 6, 67 } };
    Balloon b;
    QDict *info;
    uint64_t buf;
    uint32_t head;
    int64_t t0;
    int m2;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    head = post_stats(&b, buf, st, ARRAY_SIZE(st));

    qtest_qmp_assert_success(b.qts, "{'execute': 'stop'}");
    info = query_prompt(&b, "{'refresh': 'sync'}");
    assert_stale(info, "stopped");
    assert_stats(info, st, ARRAY_SIZE(st));
    qobject_unref(info);
    assert_none_returned(&b, ABSENT_MS);

    qtest_qmp_assert_success(b.qts, "{'execute': 'cont'}");
    head = sync_answered(&b, head, buf, st2, ARRAY_SIZE(st2));

    /* a waiter pending when the VM stops completes at once */
    m2 = qmp_connect(&b, "m2.sock");
    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
    assert_returned(&b, head);
    t0 = now_ms();
    qmp_fd_send(m2, "{'execute': 'stop'}");
    qobject_unref(reply_return(qmp_reply(m2)));
    info = reply_return(qtest_qmp_receive(b.qts));
    g_assert_cmpint(now_ms() - t0, <, PROMPT_MS);
    assert_stale(info, "stopped");
    assert_stats(info, st2, ARRAY_SIZE(st2));
    qobject_unref(info);
    close(m2);

    balloon_end(&b);
}

/* refresh async replies at once; BALLOON_STATS carries the answer */
static void test_async(void)
{
    static const Stat first[] = { { 4, 1000 }, { 6, 1500 } };
    static const Stat second[] = { { 4, 900 }, { 6, 1400 }, { 10, 1 } };
    Balloon b;
    QDict *info, *ev, *data, *ev2;
    uint64_t buf;
    uint32_t head;
    int64_t t0;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, ARRAY_SIZE(second) * STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    info = query_prompt(&b, "{'refresh': 'async'}");
    assert_stale(info, "pending");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);
    assert_returned(&b, head);

    /* a second async request shares the round trip */
    info = query_prompt(&b, "{'refresh': 'async'}");
    assert_stale(info, "pending");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);
    assert_none_returned(&b, ABSENT_MS);
    g_assert_null(qtest_qmp_event_ref(b.qts, "BALLOON_STATS"));

    /*
     * The event goes out when the answer is taken in, so before the reply
     * to any later command
     */
    t0 = wall_ms();
    post_stats(&b, buf, second, ARRAY_SIZE(second));
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
    post_stats(&b, buf, second, ARRAY_SIZE(second));
    info = query(&b, NULL);
    qobject_unref(info);
    g_assert_null(qtest_qmp_event_ref(b.qts, "BALLOON_STATS"));

    balloon_end(&b);
}

static void assert_generic_error(Balloon *b, const char *args)
{
    QDict *rsp = qtest_qmp(b->qts, "{'execute': 'query-balloon',"
                           " 'arguments': %p}",
                           qobject_from_json(args, &error_abort));
    QDict *err = qdict_get_qdict(rsp, "error");

    g_assert_nonnull(err);
    g_assert_cmpstr(qdict_get_try_str(err, "class"), ==, "GenericError");
    qobject_unref(rsp);
}

/* Invalid arguments; no balloon device */
static void test_bad_input(void)
{
    static const char *const bad[] = {
        "{'refresh': 'sync', 'timeout': 0}",
        "{'refresh': 'sync', 'timeout': -1}",
        "{'refresh': 'sync', 'timeout': 60001}",
        "{'refresh': 'none', 'timeout': 1000}",
        "{'refresh': 'async', 'timeout': 1000}",
        "{'timeout': 1000}",
        "{'refresh': 'bogus'}",
        "{'refresh': 'sync', 'timeout': '1000'}",
        "{'refresh': 'sync', 'bogus': 1}",
    };
    Balloon b;
    QDict *info, *rsp;
    int i;
    g_autofree char *hmp = NULL;

    balloon_boot(&b, true);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_generic_error(&b, bad[i]);
    }
    /* the bounds are valid (no driver yet: answered at once) */
    info = query_prompt(&b, "{'refresh': 'sync', 'timeout': 1}");
    assert_stale(info, "not-ready");
    qobject_unref(info);
    info = query_prompt(&b, "{'refresh': 'sync', 'timeout': 60000}");
    assert_stale(info, "not-ready");
    qobject_unref(info);
    balloon_end(&b);

    balloon_boot(&b, false);
    rsp = qtest_qmp(b.qts, "{'execute': 'query-balloon'}");
    qmp_expect_error_and_unref(rsp, "DeviceNotActive");
    rsp = qtest_qmp(b.qts, "{'execute': 'query-balloon',"
                    " 'arguments': {'refresh': 'sync'}}");
    qmp_expect_error_and_unref(rsp, "DeviceNotActive");
    hmp = qtest_hmp(b.qts, "info balloon");
    g_assert_nonnull(strstr(hmp, "No balloon device"));
    balloon_end(&b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/oc-balloon-stats/answers", test_answers);
    qtest_add_func("/oc-balloon-stats/never-answers", test_never_answers);
    qtest_add_func("/oc-balloon-stats/malformed", test_malformed);
    qtest_add_func("/oc-balloon-stats/zero-length", test_zero_length);
    qtest_add_func("/oc-balloon-stats/concurrent", test_concurrent);
    qtest_add_func("/oc-balloon-stats/oob-monitor", test_oob_monitor);
    qtest_add_func("/oc-balloon-stats/disconnect", test_disconnect);
    qtest_add_func("/oc-balloon-stats/reconnect-qmp", test_reconnect_qmp);
    qtest_add_func("/oc-balloon-stats/reconnect-hmp", test_reconnect_hmp);
    qtest_add_func("/oc-balloon-stats/broken", test_broken);
    qtest_add_func("/oc-balloon-stats/quit", test_quit);
    qtest_add_func("/oc-balloon-stats/reset", test_reset);
    qtest_add_func("/oc-balloon-stats/unsupported", test_unsupported);
    qtest_add_func("/oc-balloon-stats/unplug", test_unplug);
    qtest_add_func("/oc-balloon-stats/stopped", test_stopped);
    qtest_add_func("/oc-balloon-stats/async", test_async);
    qtest_add_func("/oc-balloon-stats/bad-input", test_bad_input);

    return g_test_run();
}
