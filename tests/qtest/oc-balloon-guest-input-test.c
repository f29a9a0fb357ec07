/*
 * QTest: virtio-balloon statistics, hostile or odd guest input (qemu-oc)
 *
 * The test plays a virtio-balloon driver that does what a driver should
 * not, or what a real one rarely does: statistics buffers posted through
 * indirect descriptor tables (well-formed and malformed), descriptor
 * lengths far above any sane size, buffers posted before the driver has
 * finished its initialization, the same buffer posted over and over and
 * kicks with nothing new, buffers in MMIO or unassigned guest memory or
 * crossing the end of RAM, a device error while a request waits, and
 * device resets while requests wait on several monitors.  Each case
 * checks what the device does with the buffers (read from the virtqueue,
 * as the guest sees them), that QEMU keeps answering, and that a driver
 * reset brings fresh statistics back where the device ended broken
 * (NEEDS_RESET).
 *
 * Upstream's virtqueue code (hw/virtio/virtio.c) checks the descriptors
 * before the balloon sees them; it marks the device broken when it cannot
 * map one.  Mapping guest memory that is not RAM goes through QEMU's
 * single bounce buffer (one page): a small buffer there is mapped, read
 * and handled like any other; a second one while the first is held, or a
 * larger one, cannot be mapped.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqmp.h"
#include "oc-balloon-qtest.h"
#include "oc-balloon-vring.h"
#include "qemu/host-utils.h"
#include "hw/pci/pci_regs.h"
#include "standard-headers/linux/virtio_balloon.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"

#define F_STATS         (1ull << VIRTIO_BALLOON_F_STATS_VQ)
#define F_INDIRECT      (1ull << VIRTIO_RING_F_INDIRECT_DESC)
#define RAM_END         ((uint64_t)RAM_MB << 20)
/* Guest physical addresses that are not RAM on -M pc -m 256 */
#define APIC_ADDR       0xfee00000ull
#define HPET_ADDR       0xfed00000ull
#define UNASSIGNED_ADDR 0x20000000ull   /* PCI hole, nothing mapped */
#define PAGE            0x1000
/* Reposts and kicks in the storms */
#define KICKS           500
#define REPOSTS         1000
#define DRAIN_EVERY     50      /* well below the queue size (128) */
#define RESET_CYCLES    100

/*
 * Statistics posted through an indirect descriptor table are read like
 * direct ones, also with an entry split across two descriptors; the
 * device returns the table's head when it asks.  Malformed tables: a
 * device-writable descriptor is returned unused; a zero-size table, a
 * size that is not a whole number of descriptors, a table that loops or
 * lies beyond RAM's reach, leave the device broken until the driver
 * resets it; a nested indirect descriptor is taken as plain data
 * (upstream ignores the flag inside a table), so the bytes it points at
 * are read as statistics, checked as any others.
 */
static void test_indirect(void)
{
    static const Stat first[] = { { 4, 1000 }, { 5, 2000 }, { 6, 1500 } };
    static const Stat second[] = { { 4, 900 }, { 5, 2000 }, { 6, 1400 } };
    static const Stat inner[] = { { 7, 77 }, { 2, 22 } };
    static const Stat after[] = { { 4, 4242 } };
    const char *bad_event = "virtio_balloon_stats_bad_buffer";
    QVirtioDevice *vdev;
    QVRingIndirectDesc *ind;
    Balloon b;
    QDict *info;
    uint64_t buf, table, table2;
    uint32_t head, ihead;
    int64_t t0;
    int seen;

    balloon_boot(&b, true);
    driver_init_features(&b, F_STATS | F_INDIRECT);
    vdev = &b.dev->vdev;
    g_assert_true(b.vq->indirect);
    buf = guest_alloc(&b.alloc, ARRAY_SIZE(first) * STAT_SIZE);
    table = guest_alloc(&b.alloc, 4 * DESC_SIZE);
    table2 = guest_alloc(&b.alloc, 4 * DESC_SIZE);

    /* 30 bytes in two descriptors of 14 and 16: entry 2 straddles them */
    buf_fill(&b, buf, first, ARRAY_SIZE(first));
    ind = qvring_indirect_desc_setup(b.qts, vdev, &b.alloc, 2);
    qvring_indirect_desc_add(vdev, b.qts, ind, buf, 14, false);
    qvring_indirect_desc_add(vdev, b.qts, ind, buf + 14, 16, false);
    seen = trace_count(&b, "virtio_balloon_stats_received", NULL);
    ihead = qvirtqueue_add_indirect(b.qts, b.vq, ind);
    repost(&b, ihead);
    trace_wait(&b, "virtio_balloon_stats_received", seen + 1);
    assert_none_returned(&b, ABSENT_MS);
    info = query(&b, NULL);
    assert_stale(info, "not-requested");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    /* a refresh returns the table's head; the driver refills and reposts */
    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}}");
    assert_returned(&b, ihead);
    t0 = wall_ms();
    buf_fill(&b, buf, second, ARRAY_SIZE(second));
    repost(&b, ihead);
    info = reply_return(qtest_qmp_receive(b.qts));
    assert_fresh(info, t0);
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);
    assert_none_returned(&b, ABSENT_MS);
    guest_free(&b.alloc, ind->desc);
    g_free(ind);

    /*
     * A table with a device-writable descriptor: returned unused at once,
     * while the device keeps the buffer it holds
     */
    desc_write(&b, table, 0, buf, STAT_SIZE, VRING_DESC_F_NEXT, 1);
    desc_write(&b, table, 1, buf + STAT_SIZE, STAT_SIZE,
               VRING_DESC_F_WRITE, 0);
    head = post_desc(&b, table, 2 * DESC_SIZE, VRING_DESC_F_INDIRECT);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, bad_event, "writable descriptors"),
                    ==, 1);

    /*
     * A nested indirect descriptor: the one-descriptor table it points at
     * (16 bytes) is read as a statistics buffer, not a whole number of
     * entries: returned unused
     */
    desc_write(&b, table2, 0, buf, STAT_SIZE, 0, 0);
    desc_write(&b, table, 0, table2, DESC_SIZE, VRING_DESC_F_INDIRECT, 0);
    head = post_desc(&b, table, DESC_SIZE, VRING_DESC_F_INDIRECT);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, bad_event, "length 16"), ==, 1);
    /*
     * ... and 20 bytes there are two entries, taken as statistics: the
     * device keeps this buffer and returns the one it held
     */
    buf_fill(&b, table2, inner, ARRAY_SIZE(inner));
    desc_write(&b, table, 0, table2, 2 * STAT_SIZE, VRING_DESC_F_INDIRECT, 0);
    seen = trace_count(&b, "virtio_balloon_stats_received", NULL);
    post_desc(&b, table, DESC_SIZE, VRING_DESC_F_INDIRECT);
    trace_wait(&b, "virtio_balloon_stats_received", seen + 1);
    assert_returned(&b, ihead);
    assert_none_returned(&b, ABSENT_MS);
    info = query(&b, NULL);
    assert_stats(info, inner, ARRAY_SIZE(inner));
    qobject_unref(info);
    assert_alive(&b);

    /* a zero-size table: the device is broken until the driver resets it */
    post_desc(&b, table, 0, VRING_DESC_F_INDIRECT);
    assert_none_returned(&b, ABSENT_MS);
    assert_broken(&b, inner, ARRAY_SIZE(inner));
    recover(&b, F_STATS | F_INDIRECT, buf, after, ARRAY_SIZE(after));

    /* 24 bytes: not a whole number of descriptors */
    post_desc(&b, table, 24, VRING_DESC_F_INDIRECT);
    assert_broken(&b, after, ARRAY_SIZE(after));
    recover(&b, F_STATS | F_INDIRECT, buf, after, ARRAY_SIZE(after));

    /* a table whose descriptor chains to itself */
    desc_write(&b, table, 0, buf, STAT_SIZE, VRING_DESC_F_NEXT, 0);
    post_desc(&b, table, DESC_SIZE, VRING_DESC_F_INDIRECT);
    assert_broken(&b, after, ARRAY_SIZE(after));
    recover(&b, F_STATS | F_INDIRECT, buf, after, ARRAY_SIZE(after));

    /* a table that would run from RAM far beyond its end */
    post_desc(&b, table, 0xfffffff0, VRING_DESC_F_INDIRECT);
    assert_broken(&b, after, ARRAY_SIZE(after));
    recover(&b, F_STATS | F_INDIRECT, buf, after, ARRAY_SIZE(after));

    balloon_end(&b);
}

/*
 * Descriptor lengths far above the limit: a length upstream can map
 * (RAM, mapped in place) is refused by the balloon by its size, unread
 * (oversized); one that runs past the end of RAM cannot be mapped (past
 * RAM, upstream maps one page at most, through the bounce buffer) and
 * leaves the device broken.  QEMU keeps answering, and a driver reset
 * recovers.
 */
static void test_huge_length(void)
{
    static const Stat st[] = { { 4, 1000 } };
    static const uint32_t huge[] = { 0x7fffffff, 0x80000000, 0xffffffff };
    Balloon b;
    uint64_t buf;
    uint32_t head;
    int i;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);

    /* 16 MiB of RAM: mapped, but refused at once as oversized */
    head = post_raw(&b, 0x1000000, (16 << 20) / STAT_SIZE * STAT_SIZE, false);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_bad_buffer",
                                "oversized"), ==, 1);
    assert_alive(&b);
    head = post_stats(&b, buf, st, ARRAY_SIZE(st));
    head = sync_answered(&b, head, buf, st, ARRAY_SIZE(st));

    for (i = 0; i < ARRAY_SIZE(huge); i++) {
        /* readable, then device-writable: the mapping fails first */
        post_raw(&b, buf, huge[i], false);
        assert_none_returned(&b, ABSENT_MS);
        assert_broken(&b, st, ARRAY_SIZE(st));
        recover(&b, F_STATS, buf, st, ARRAY_SIZE(st));
        post_raw(&b, buf, huge[i], true);
        assert_none_returned(&b, ABSENT_MS);
        assert_broken(&b, st, ARRAY_SIZE(st));
        recover(&b, F_STATS, buf, st, ARRAY_SIZE(st));
    }
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_bad_buffer", NULL),
                    ==, 1);
    balloon_end(&b);
}

/*
 * The driver starts: reset, ACKNOWLEDGE, DRIVER; writes @features unless
 * 0, without FEATURES_OK unless @features_ok; sets up the stats queue
 */
static void driver_begin(Balloon *b, uint64_t features, bool features_ok)
{
    QVirtioDevice *vdev = &b->dev->vdev;

    if (b->vq) {
        qvirtqueue_cleanup(vdev->bus, b->vq, &b->alloc);
        b->vq = NULL;
    }
    qvirtio_start_device(vdev);
    if (features_ok) {
        qvirtio_set_features(vdev, features);
    } else {
        if (features) {
            vdev->bus->set_features(vdev, features);
        }
        /* libqos sets queues up after FEATURES_OK only: let it */
        vdev->features = features;
        vdev->features_negotiated = true;
    }
    b->vq = qvirtqueue_setup(vdev, &b->alloc, STATS_VQ);
}

/* Requests while the driver is not running answer at once: not-ready */
static void assert_not_ready(Balloon *b, const Stat *st, size_t n)
{
    int starts = trace_count(b, "balloon_stats_waiter_start", NULL);
    g_autofree char *hmp = NULL;
    g_autofree char *line = NULL;
    QDict *info;

    info = query_prompt(b, "{'refresh': 'sync', 'timeout': 60000}");
    assert_stale(info, "not-ready");
    if (st) {
        assert_stats(info, st, n);
    } else {
        assert_no_stats(info);
    }
    qobject_unref(info);
    info = query_prompt(b, "{'refresh': 'async'}");
    assert_stale(info, "not-ready");
    qobject_unref(info);
    hmp = qtest_hmp(b->qts, "info balloon");
    line = hmp_balloon_line(hmp);
    g_assert_true(g_str_has_prefix(line, "balloon: actual=256"));
    g_assert_cmpint(trace_count(b, "balloon_stats_waiter_start", NULL),
                    ==, starts);
}

/*
 * Buffers posted before the driver finished its initialization.  Linux
 * posts its statistics buffer before DRIVER_OK: the device takes it in
 * as the first report (not asked for), requests answer not-ready at
 * once until DRIVER_OK, and the first refresh after it is fresh.  Before
 * FEATURES_OK the same holds once the driver wrote its features (the
 * device sees them as they are written); before it wrote any, the
 * stats feature is not negotiated: the buffer is returned unused.
 */
static void test_early_buffer(void)
{
    static const Stat first[] = { { 4, 1000 }, { 5, 2000 } };
    static const Stat second[] = { { 4, 1100 }, { 5, 2000 } };
    uint64_t features = (1ull << VIRTIO_F_VERSION_1) | F_STATS;
    QVirtioDevice *vdev;
    Balloon b;
    QDict *info;
    uint64_t buf;
    uint32_t head;
    int round;

    balloon_boot(&b, true);
    vdev = &b.dev->vdev;
    buf = guest_alloc(&b.alloc, ARRAY_SIZE(first) * STAT_SIZE);

    for (round = 0; round < 2; round++) {
        /* round 0: after FEATURES_OK (as Linux); round 1: before it */
        driver_begin(&b, features, round == 0);
        if (round == 0) {
            assert_not_ready(&b, NULL, 0);
        }
        head = post_stats(&b, buf, first, ARRAY_SIZE(first));
        assert_none_returned(&b, ABSENT_MS);
        info = query(&b, NULL);
        assert_stale(info, "not-requested");
        assert_stats(info, first, ARRAY_SIZE(first));
        qobject_unref(info);
        assert_not_ready(&b, first, ARRAY_SIZE(first));
        if (round == 1) {
            vdev->bus->set_status(vdev, dev_status(&b) |
                                  VIRTIO_CONFIG_S_FEATURES_OK);
            g_assert_cmphex(dev_status(&b) & VIRTIO_CONFIG_S_FEATURES_OK,
                            ==, VIRTIO_CONFIG_S_FEATURES_OK);
            assert_not_ready(&b, first, ARRAY_SIZE(first));
        }
        assert_none_returned(&b, ABSENT_MS);
        qvirtio_set_driver_ok(vdev);
        sync_answered(&b, head, buf, second, ARRAY_SIZE(second));
        assert_none_returned(&b, ABSENT_MS);
    }

    /* before any feature is written: not negotiated, returned unused */
    driver_begin(&b, 0, false);
    buf_fill(&b, buf, second, ARRAY_SIZE(second));
    head = post_raw(&b, buf, ARRAY_SIZE(second) * STAT_SIZE, false);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_bad_buffer",
                                "not negotiated"), ==, 1);
    qvirtio_set_features(vdev, features);
    qvirtio_set_driver_ok(vdev);
    /* the driver has nothing posted: not-ready, with the latest known */
    info = query_prompt(&b, "{'refresh': 'sync', 'timeout': 60000}");
    assert_stale(info, "not-ready");
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));
    sync_answered(&b, head, buf, second, ARRAY_SIZE(second));

    balloon_end(&b);
}

/*
 * Kick storms and repost storms.  Kicks with nothing new change nothing,
 * also while a request waits.  The same buffer posted again and again
 * without waiting: each posting is a buffer of its own to the device,
 * which keeps the latest and returns the one it held, so every posting
 * comes back exactly once (the last one when asked).  Two buffers made
 * available at once: the device takes one per notification, keeps the
 * newer and returns the older.  The used ring never holds more than was
 * posted.
 */
static void test_storms(void)
{
    static const Stat first[] = { { 4, 1000 } };
    static const Stat second[] = { { 4, 2000 } };
    static const Stat third[] = { { 4, 3000 } };
    const char *recv_event = "virtio_balloon_stats_received";
    Balloon b;
    QDict *rsp, *info;
    uint64_t buf, buf2;
    uint32_t head, head2, got, len;
    int64_t t0;
    int i, m2, n, received;

    balloon_boot(&b, true);
    driver_init(&b, true);
    m2 = qmp_connect(&b, "m2.sock");
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    buf2 = guest_alloc(&b.alloc, STAT_SIZE);
    head = post_stats(&b, buf, first, ARRAY_SIZE(first));

    /* kicks with nothing new, while the device holds the buffer */
    for (i = 0; i < KICKS; i++) {
        notify(&b);
    }
    assert_alive(&b);
    assert_none_returned(&b, ABSENT_MS);
    g_assert_cmpint(trace_count(&b, recv_event, NULL), ==, 1);

    /* ... and while a request waits for the driver's answer */
    qmp_fd_send(m2, "{'execute': 'query-balloon', 'id': 'w',"
                " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
    assert_returned(&b, head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);
    for (i = 0; i < KICKS; i++) {
        notify(&b);
    }
    assert_alive(&b);
    assert_none_returned(&b, ABSENT_MS);
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete", NULL),
                    ==, 0);
    t0 = wall_ms();
    buf_fill(&b, buf, second, ARRAY_SIZE(second));
    repost(&b, head);
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "w");
    info = reply_return(rsp);
    assert_fresh(info, t0);
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);
    g_assert_cmpint(trace_count(&b, recv_event, NULL), ==, 2);

    /*
     * The buffer the device holds is posted again, REPOSTS times without
     * waiting for it (the driver reads the used ring now and then)
     */
    for (i = 0, n = 0; i < REPOSTS; i++) {
        repost(&b, head);
        if (i % DRAIN_EVERY == DRAIN_EVERY - 1) {
            n += drain_returned(&b, head);
        }
    }
    n += drain_returned(&b, head);
    g_assert_cmpint(n, ==, REPOSTS);
    trace_wait(&b, recv_event, 2 + REPOSTS);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_second_buffer",
                                NULL), ==, REPOSTS);
    assert_alive(&b);

    /* it still holds one, returned once on request */
    head = sync_answered(&b, head, buf, third, ARRAY_SIZE(third));
    assert_none_returned(&b, ABSENT_MS);
    received = trace_count(&b, recv_event, NULL);

    /*
     * Two buffers made available with one notification, while the device
     * holds none: it takes the first; the next notification (nothing new)
     * takes the second, and the first comes back
     */
    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}}");
    assert_returned(&b, head);
    buf_fill(&b, buf, first, ARRAY_SIZE(first));
    buf_fill(&b, buf2, second, ARRAY_SIZE(second));
    head2 = qvirtqueue_add(b.qts, b.vq, buf2, STAT_SIZE, false, false);
    avail_push(&b, head);
    avail_push(&b, head2);
    notify(&b);
    info = reply_return(qtest_qmp_receive(b.qts));
    g_assert_true(qdict_get_bool(info, "fresh"));
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);
    g_assert_cmpint(trace_count(&b, recv_event, NULL), ==, received + 1);
    assert_none_returned(&b, ABSENT_MS);
    notify(&b);
    trace_wait(&b, recv_event, received + 2);
    g_assert_true(used_get(&b, &got, &len, WAIT_MS));
    g_assert_cmpuint(got, ==, head);
    assert_none_returned(&b, ABSENT_MS);
    info = query(&b, NULL);
    assert_stats(info, second, ARRAY_SIZE(second));
    qobject_unref(info);

    /* the second serves the next refresh, and nothing else comes back */
    sync_answered(&b, head2, buf2, third, ARRAY_SIZE(third));
    assert_none_returned(&b, ABSENT_MS);
    assert_used_drained(&b);
    assert_alive(&b);

    balloon_end(&b);
}

/* The address of the balloon's virtio BAR, where libqos mapped it */
static uint64_t own_bar(Balloon *b)
{
    return qpci_config_readl(b->dev->pdev, PCI_BASE_ADDRESS_0 +
                             4 * b->dev->bar_idx) & ~0xfull;
}

/*
 * Buffers in guest memory that is not RAM: the local APIC's MSI window,
 * the HPET, unassigned space in the PCI hole, the balloon's own virtio
 * registers, and a buffer crossing the end of RAM.  A buffer there of up
 * to a page is mapped through the bounce buffer and read like any other
 * (what reads there return is no concern of ours) and comes back once
 * when asked.  More than a page, or a second such buffer while the
 * device holds one, cannot be mapped: the device is broken until the
 * driver resets it (which also frees the bounce buffer it held).
 */
static void test_mmio(void)
{
    static const Stat st[] = { { 4, 1000 } };
    static const Stat st2[] = { { 4, 2000 } };
    static const Stat zero[] = { { 0, 0 } };
    static const Stat edge[] = { { 4, 1234 }, { 0, 0 } };
    const char *recv_event = "virtio_balloon_stats_received";
    uint64_t addrs[] = { APIC_ADDR, HPET_ADDR, UNASSIGNED_ADDR, 0 };
    Balloon b;
    QDict *info;
    uint64_t buf;
    uint32_t head, held;
    int i, seen;

    balloon_boot(&b, true);
    driver_init(&b, true);
    buf = guest_alloc(&b.alloc, STAT_SIZE);
    addrs[3] = own_bar(&b);
    g_assert_cmphex(addrs[3], >=, RAM_END);

    held = post_stats(&b, buf, st, ARRAY_SIZE(st));
    for (i = 0; i < ARRAY_SIZE(addrs); i++) {
        /* taken in: the device returns the buffer it held */
        seen = trace_count(&b, recv_event, NULL);
        head = post_raw(&b, addrs[i], 2 * STAT_SIZE, false);
        trace_wait(&b, recv_event, seen + 1);
        assert_returned(&b, held);
        assert_none_returned(&b, ABSENT_MS);
        assert_alive(&b);
        if (addrs[i] == UNASSIGNED_ADDR) {
            /* unassigned memory reads as zeros: tag 0, twice */
            info = query(&b, NULL);
            assert_stats(info, zero, ARRAY_SIZE(zero));
            qobject_unref(info);
        }
        /* asked, the device returns it; the driver answers from RAM */
        held = sync_answered(&b, head, buf, st2, ARRAY_SIZE(st2));
        assert_none_returned(&b, ABSENT_MS);
        g_assert_cmphex(dev_status(&b) & VIRTIO_CONFIG_S_NEEDS_RESET, ==, 0);
    }

    /* crossing the end of RAM: 10 bytes of RAM, 10 unassigned */
    buf_fill(&b, RAM_END - STAT_SIZE, edge, 1);
    seen = trace_count(&b, recv_event, NULL);
    head = post_raw(&b, RAM_END - STAT_SIZE, 2 * STAT_SIZE, false);
    trace_wait(&b, recv_event, seen + 1);
    assert_returned(&b, held);
    info = query(&b, NULL);
    assert_stats(info, edge, ARRAY_SIZE(edge));
    qobject_unref(info);
    held = sync_answered(&b, head, buf, st, ARRAY_SIZE(st));
    assert_none_returned(&b, ABSENT_MS);

    /* two pages from the end of RAM on: cannot be mapped */
    post_raw(&b, RAM_END - STAT_SIZE, 2 * PAGE, false);
    assert_none_returned(&b, ABSENT_MS);
    assert_broken(&b, st, ARRAY_SIZE(st));
    held = recover(&b, F_STATS, buf, st, ARRAY_SIZE(st));

    /* two pages of unassigned space */
    post_raw(&b, UNASSIGNED_ADDR, 2 * PAGE, false);
    assert_none_returned(&b, ABSENT_MS);
    assert_broken(&b, st, ARRAY_SIZE(st));
    held = recover(&b, F_STATS, buf, st, ARRAY_SIZE(st));

    /*
     * A second buffer outside RAM while the device holds one there (and
     * with it the bounce buffer): cannot be mapped
     */
    seen = trace_count(&b, recv_event, NULL);
    post_raw(&b, UNASSIGNED_ADDR, STAT_SIZE, false);
    trace_wait(&b, recv_event, seen + 1);
    assert_returned(&b, held);
    post_raw(&b, HPET_ADDR, STAT_SIZE, false);
    assert_none_returned(&b, ABSENT_MS);
    assert_broken(&b, zero, ARRAY_SIZE(zero));
    /* the reset takes the held buffer back, and frees the bounce buffer */
    held = recover(&b, F_STATS, buf, st, ARRAY_SIZE(st));
    seen = trace_count(&b, recv_event, NULL);
    head = post_raw(&b, HPET_ADDR, STAT_SIZE, false);
    trace_wait(&b, recv_event, seen + 1);
    assert_returned(&b, held);
    sync_answered(&b, head, buf, st, ARRAY_SIZE(st));
    assert_alive(&b);

    balloon_end(&b);
}

/*
 * The device breaks while a request waits for the driver's answer, by a
 * device error (upstream's virtqueue code refuses a buffer and calls
 * virtio_error(), which sets NEEDS_RESET itself) rather than by the
 * driver setting NEEDS_RESET (the broken case of oc-balloon-lifecycle-test):
 * the driver answers with a buffer that cannot be mapped, or posts a
 * zero-length descriptor on the inflate queue.  Nothing can answer any
 * more: the request completes at once, stale-reason broken, not at its
 * timeout.
 */
static void test_error_while_waiting(void)
{
    static const Stat st[] = { { 4, 1000 } };
    QVirtioDevice *vdev;
    QVirtQueue *ivq = NULL;
    Balloon b;
    QDict *rsp, *info;
    uint64_t buf;
    uint32_t head;
    int m2, round, starts;

    balloon_boot(&b, true);
    vdev = &b.dev->vdev;
    m2 = qmp_connect(&b, "m2.sock");
    buf = guest_alloc(&b.alloc, STAT_SIZE);

    for (round = 0; round < 2; round++) {
        /* the driver sets up the inflate queue (0) too */
        driver_begin(&b, (1ull << VIRTIO_F_VERSION_1) | F_STATS, true);
        if (ivq) {
            qvirtqueue_cleanup(vdev->bus, ivq, &b.alloc);
        }
        ivq = qvirtqueue_setup(vdev, &b.alloc, 0);
        qvirtio_set_driver_ok(vdev);
        head = post_stats(&b, buf, st, ARRAY_SIZE(st));

        starts = trace_count(&b, "balloon_stats_waiter_start", NULL);
        /* a timeout far beyond the test's own bounds: it must be broken */
        qmp_fd_send(m2, "{'execute': 'query-balloon', 'id': 'w',"
                    " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
        assert_returned(&b, head);
        trace_wait(&b, "balloon_stats_waiter_start", starts + 1);
        if (round == 0) {
            post_raw(&b, UNASSIGNED_ADDR, 2 * PAGE, false);
        } else {
            head = qvirtqueue_add(b.qts, ivq, buf, 0, false, false);
            qvirtqueue_kick(b.qts, vdev, ivq, head);
        }
        g_assert_cmphex(dev_status(&b) & VIRTIO_CONFIG_S_NEEDS_RESET, ==,
                        VIRTIO_CONFIG_S_NEEDS_RESET);
        rsp = qmp_reply(m2);
        g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "w");
        info = reply_return(rsp);
        /* virtio_error() tells the device (patch 0013): at once */
        assert_stale(info, "broken");
        assert_stats(info, st, ARRAY_SIZE(st));
        qobject_unref(info);
        assert_broken(&b, st, ARRAY_SIZE(st));
    }
    qvirtqueue_cleanup(vdev->bus, ivq, &b.alloc);
    recover(&b, F_STATS, buf, st, ARRAY_SIZE(st));

    balloon_end(&b);
}

/* What one request of a reset-storm cycle may get back */
typedef enum Outcome {
    FRESH = 1,
    RESET = 2,
    NOT_READY = 4,
    PENDING = 8,
    BROKEN = 16,
} Outcome;

static Outcome outcome_of(QDict *info)
{
    const char *why = qdict_get_try_str(info, "stale-reason");

    assert_actual(info);
    if (qdict_get_bool(info, "fresh")) {
        g_assert_null(why);
        return FRESH;
    }
    g_assert_nonnull(why);
    if (!strcmp(why, "reset")) {
        return RESET;
    } else if (!strcmp(why, "not-ready")) {
        return NOT_READY;
    } else if (!strcmp(why, "pending")) {
        return PENDING;
    } else if (!strcmp(why, "broken")) {
        return BROKEN;
    }
    g_assert_not_reached();
}

/* How many replies had each outcome (index: bit number) */
static int outcomes[5];

/* @rsp is the reply @id, a query-balloon return with one of @allowed */
static void expect_outcome(QDict *rsp, const char *id, unsigned allowed)
{
    QDict *info;
    Outcome o;

    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, id);
    info = reply_return(rsp);
    o = outcome_of(info);
    g_assert_cmpint(o & allowed, !=, 0);
    outcomes[ctz32(o)]++;
    qobject_unref(info);
}

/* An HMP balloon line: fresh statistics @val, or stale ones (age=) */
static void expect_hmp_line(const char *text, uint64_t val, bool fresh)
{
    g_autofree char *line = hmp_balloon_line(text);
    g_autofree char *want = g_strdup_printf("balloon: actual=256 "
                                            "free-memory=%" PRIu64 "%s",
                                            val, fresh ? "" : " age=");

    if (fresh) {
        g_assert_cmpstr(line, ==, want);
    } else {
        g_assert_true(g_str_has_prefix(line, want));
    }
}

/*
 * Reset storms: in each cycle the driver (re)starts and posts its buffer,
 * then sync requests (qtest monitor, twice on m2), an async one and an
 * HMP one through human-monitor-command (m3) and an HMP info balloon (h1)
 * are sent, and the device is reset (or fails) at various points: once
 * they all wait, right away (some are not even dispatched yet), once
 * the first of them waits, after the guest answered, or the driver sets
 * FAILED.  Every request gets exactly one reply, with an outcome its
 * timing allows (reset, not-ready, fresh, pending, broken); nothing is
 * left waiting, and nothing extra reaches any monitor.  A driver reset
 * at the end still brings fresh statistics.
 */
static void test_reset_storm(void)
{
    Balloon b;
    QDict *rsp;
    uint64_t buf;
    uint32_t head;
    int64_t t0;
    int i, m2, m3, h1, starts;
    char *text;

    balloon_boot(&b, true);
    m2 = qmp_connect(&b, "m2.sock");
    m3 = qmp_connect(&b, "m3.sock");
    h1 = mon_connect(&b, "h1.sock");
    g_free(hmp_read_prompt(h1));
    buf = guest_alloc(&b.alloc, STAT_SIZE);

    for (i = 0; i < RESET_CYCLES; i++) {
        Stat st = { 4, 1000 + i };
        Stat ans = { 4, 5000 + i };
        int kind = i % 5;
        unsigned sync_ok, sync2_ok, async_ok;
        g_autofree char *qid = g_strdup_printf("q%d", i);
        g_autofree char *s1 = g_strdup_printf("s1-%d", i);
        g_autofree char *s2 = g_strdup_printf("s2-%d", i);
        g_autofree char *as = g_strdup_printf("a%d", i);
        g_autofree char *hm = g_strdup_printf("h%d", i);

        driver_init(&b, true);
        if (i % 8 == 1) {
            QDict *info = query_prompt(&b, "{'refresh': 'sync'}");

            g_assert_cmpint(outcome_of(info), ==, NOT_READY);
            qobject_unref(info);
        }
        head = post_stats(&b, buf, &st, 1);
        starts = trace_count(&b, "balloon_stats_waiter_start", NULL);

        qtest_qmp_send(b.qts, "{'execute': 'query-balloon', 'id': %s,"
                       " 'arguments': {'refresh': 'sync',"
                       " 'timeout': 60000}}", qid);
        qmp_fd_send(m2, "{'execute': 'query-balloon', 'id': %s,"
                    " 'arguments': {'refresh': 'sync', 'timeout': 60000}}",
                    s1);
        qmp_fd_send(m2, "{'execute': 'query-balloon', 'id': %s,"
                    " 'arguments': {'refresh': 'sync', 'timeout': 60000}}",
                    s2);
        qmp_fd_send(m3, "{'execute': 'query-balloon', 'id': %s,"
                    " 'arguments': {'refresh': 'async'}}", as);
        qmp_fd_send(m3, "{'execute': 'human-monitor-command', 'id': %s,"
                    " 'arguments': {'command-line': 'info balloon'}}", hm);
        g_assert_cmpint(write(h1, "info balloon\n", 13), ==, 13);

        switch (kind) {
        case 0:     /* the device asked; all four wait; reset */
            assert_returned(&b, head);
            trace_wait(&b, "balloon_stats_waiter_start", starts + 4);
            qvirtio_reset(&b.dev->vdev);
            sync_ok = RESET;
            async_ok = PENDING;
            break;
        case 1:     /* reset right away */
            qvirtio_reset(&b.dev->vdev);
            sync_ok = RESET | NOT_READY;
            async_ok = PENDING | NOT_READY;
            break;
        case 2:     /* reset once one waits (others may not have started) */
            t0 = now_ms();
            while (trace_count(&b, "balloon_stats_waiter_start", NULL) ==
                   starts) {
                g_assert_cmpint(now_ms() - t0, <, WAIT_MS);
                g_usleep(1000);
            }
            qvirtio_reset(&b.dev->vdev);
            sync_ok = RESET | NOT_READY;
            async_ok = PENDING | NOT_READY;
            break;
        case 3:     /* the guest answers, then a reset */
            assert_returned(&b, head);
            trace_wait(&b, "balloon_stats_waiter_start", starts + 4);
            post_stats(&b, buf, &ans, 1);
            qvirtio_reset(&b.dev->vdev);
            sync_ok = FRESH;
            async_ok = PENDING;
            break;
        default:    /* the driver gives up on the device */
            assert_returned(&b, head);
            trace_wait(&b, "balloon_stats_waiter_start", starts + 4);
            b.dev->vdev.bus->set_status(&b.dev->vdev, dev_status(&b) |
                                        VIRTIO_CONFIG_S_FAILED);
            sync_ok = BROKEN;
            async_ok = PENDING;
            break;
        }
        /*
         * The second request of m2 runs after the first completed: the
         * device is reset or failed by then (after an answer, it may
         * have asked again before the reset)
         */
        sync2_ok = kind == 4 ? BROKEN : kind == 3 ? RESET | NOT_READY
                                                  : NOT_READY;

        expect_outcome(qtest_qmp_receive(b.qts), qid, sync_ok);
        expect_outcome(qmp_reply(m2), s1, sync_ok);
        expect_outcome(qmp_reply(m2), s2, sync2_ok);
        expect_outcome(qmp_reply(m3), as, async_ok);
        rsp = qmp_reply(m3);
        g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, hm);
        g_assert_false(qdict_haskey(rsp, "error"));
        expect_hmp_line(qdict_get_str(rsp, "return"),
                        kind == 3 ? ans.val : st.val, kind == 3);
        qobject_unref(rsp);
        text = hmp_read_prompt(h1);
        expect_hmp_line(text, kind == 3 ? ans.val : st.val, kind == 3);
        g_free(text);
        /* nothing waits any more */
        g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete",
                                    NULL), ==,
                        trace_count(&b, "balloon_stats_waiter_start", NULL));
    }

    g_test_message("replies: %d fresh, %d reset, %d not-ready, %d pending, "
                   "%d broken", outcomes[0], outcomes[1], outcomes[2],
                   outcomes[3], outcomes[4]);
    g_assert_cmpint(outcomes[0] + outcomes[1] + outcomes[2] + outcomes[3] +
                    outcomes[4], ==, 4 * RESET_CYCLES);

    /* no monitor has anything more to say */
    qtest_qmp_send(b.qts, "{'execute': 'query-status', 'id': 'end'}");
    rsp = qtest_qmp_receive(b.qts);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "end");
    qobject_unref(rsp);
    qmp_fd_send(m2, "{'execute': 'query-status', 'id': 'end'}");
    rsp = qmp_reply(m2);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "end");
    qobject_unref(rsp);
    qmp_fd_send(m3, "{'execute': 'query-status', 'id': 'end'}");
    rsp = qmp_reply(m3);
    g_assert_cmpstr(qdict_get_try_str(rsp, "id"), ==, "end");
    qobject_unref(rsp);
    g_assert_cmpint(write(h1, "info status\n", 12), ==, 12);
    text = hmp_read_prompt(h1);
    g_assert_null(strstr(text, "balloon:"));
    g_assert_nonnull(strstr(text, "VM status: running"));
    g_free(text);

    /* and the driver still gets fresh statistics */
    {
        static const Stat last[] = { { 4, 9999 } };

        recover(&b, F_STATS, buf, last, ARRAY_SIZE(last));
    }
    balloon_end(&b);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/oc-balloon-guest-input/indirect", test_indirect);
    qtest_add_func("/oc-balloon-guest-input/huge-length", test_huge_length);
    qtest_add_func("/oc-balloon-guest-input/early-buffer", test_early_buffer);
    qtest_add_func("/oc-balloon-guest-input/storms", test_storms);
    qtest_add_func("/oc-balloon-guest-input/mmio", test_mmio);
    qtest_add_func("/oc-balloon-guest-input/error-while-waiting",
                   test_error_while_waiting);
    qtest_add_func("/oc-balloon-guest-input/reset-storm", test_reset_storm);

    return g_test_run();
}
