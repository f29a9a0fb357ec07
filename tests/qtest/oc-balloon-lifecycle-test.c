/*
 * QTest: virtio-balloon statistics on demand, the device's life (qemu-oc)
 *
 * The test plays the guest's virtio-balloon driver through libqos (see
 * oc-balloon-stats-test) while requests wait or arrive around what
 * happens to the device and the VM: a driver reset, hot unplug, the VM
 * stopped and continued, the device marked broken (NEEDS_RESET) by the
 * driver or by QEMU's virtqueue code, a driver without statistics, and
 * invalid arguments or no balloon at all.  A waiting request completes
 * as soon as such an event happens (checked in QEMU's trace log, -D,
 * before the test does anything else), and later requests answer
 * without waiting, with the stale-reason that says why.  The helpers are
 * in oc-balloon-qtest.c.
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
#include "standard-headers/linux/virtio_config.h"

/* PIIX4 ACPI PCI hotplug eject register (hw/acpi/pcihp.c) */
#define PIIX_PCIHP_EJECT 0xae08

/* The one waiter that started has completed, not fresh */
static void assert_waiter_completed(Balloon *b)
{
    g_assert_cmpint(trace_count(b, "balloon_stats_waiter_start", NULL),
                    ==, 1);
    g_assert_cmpint(trace_count(b, "balloon_stats_waiter_complete",
                                "fresh 0"), ==, 1);
}

/* A driver reset completes a waiting request at once */
static void test_reset(void)
{
    static const Stat first[] = { { 7, 70 }, { 4, 1000 } };
    static const Stat second[] = { { 7, 71 } };
    Balloon b;
    QDict *info;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}}");
    assert_returned(&b, b.head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);
    qvirtio_reset(&b.dev->vdev);
    /* the reset itself completed it */
    assert_waiter_completed(&b);
    info = reply_return(qtest_qmp_receive(b.qts));
    assert_stale(info, "reset");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    /* the latest statistics stay known; the reset driver cannot be asked */
    query_check(&b, NULL, "not-requested", first, ARRAY_SIZE(first));
    query_check(&b, "{'refresh': 'sync'}", "not-ready",
                first, ARRAY_SIZE(first));

    /* the driver starts again */
    driver_init(&b, true);
    query_check(&b, "{'refresh': 'sync'}", "not-ready",
                first, ARRAY_SIZE(first));
    b.head = post_stats(&b, b.buf, second, ARRAY_SIZE(second));
    sync_answered(&b, b.head, b.buf, second, ARRAY_SIZE(second));

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
    int m2;

    balloon_start(&b, ARRAY_SIZE(st), st, ARRAY_SIZE(st));
    m2 = qmp_connect(&b, "m2.sock");

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
    assert_returned(&b, b.head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);

    /* the asking monitor waits: unplug through another one */
    qmp_fd_send(m2, "{'execute': 'device_del', 'arguments': {'id': 'b0'}}");
    qobject_unref(reply_return(qmp_reply(m2)));
    qtest_outl(b.qts, PIIX_PCIHP_EJECT, 1 << 4);
    /* the eject itself completed it, long before its timeout */
    assert_waiter_completed(&b);
    info = reply_return(qtest_qmp_receive(b.qts));
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
    uint32_t head;
    int m2;

    balloon_start(&b, ARRAY_SIZE(st), st, ARRAY_SIZE(st));

    qtest_qmp_assert_success(b.qts, "{'execute': 'stop'}");
    query_check(&b, "{'refresh': 'sync'}", "stopped", st, ARRAY_SIZE(st));
    assert_none_returned(&b, ABSENT_MS);

    qtest_qmp_assert_success(b.qts, "{'execute': 'cont'}");
    head = sync_answered(&b, b.head, b.buf, st2, ARRAY_SIZE(st2));

    /* a waiter pending when the VM stops completes at once */
    m2 = qmp_connect(&b, "m2.sock");
    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
    assert_returned(&b, head);
    trace_wait(&b, "balloon_stats_waiter_start", 2);
    qmp_fd_send(m2, "{'execute': 'stop'}");
    qobject_unref(reply_return(qmp_reply(m2)));
    /* stopping completed it, before the reply to stop */
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_complete",
                                "fresh 0"), ==, 1);
    info = reply_return(qtest_qmp_receive(b.qts));
    assert_stale(info, "stopped");
    assert_stats(info, st2, ARRAY_SIZE(st2));
    qobject_unref(info);

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
    char *text;
    int h1;

    balloon_start(&b, ARRAY_SIZE(first), first, ARRAY_SIZE(first));
    vdev = &b.dev->vdev;

    qtest_qmp_send(b.qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync', 'timeout': 60000}}");
    assert_returned(&b, b.head);
    trace_wait(&b, "balloon_stats_waiter_start", 1);
    vdev->bus->set_status(vdev, vdev->bus->get_status(vdev) |
                          VIRTIO_CONFIG_S_NEEDS_RESET);
    info = reply_return(qtest_qmp_receive(b.qts));
    assert_stale(info, "broken");
    assert_stats(info, first, ARRAY_SIZE(first));
    qobject_unref(info);

    query_check(&b, "{'refresh': 'sync', 'timeout': 60000}", "broken",
                first, ARRAY_SIZE(first));
    query_check(&b, "{'refresh': 'async'}", "broken",
                first, ARRAY_SIZE(first));
    h1 = mon_connect(&b, "h1.sock");
    g_free(hmp_read_prompt(h1));
    g_assert_cmpint(write(h1, "info balloon\n", 13), ==, 13);
    text = hmp_read_prompt(h1);
    g_assert_nonnull(strstr(text, "balloon: actual=256 free-memory=1000 age="));
    g_free(text);
    /* none of them waited */
    g_assert_cmpint(trace_count(&b, "balloon_stats_waiter_start", NULL),
                    ==, 1);

    driver_init(&b, true);
    b.head = post_stats(&b, b.buf, second, ARRAY_SIZE(second));
    sync_answered(&b, b.head, b.buf, second, ARRAY_SIZE(second));
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
    QDict *rsp;
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
    query_check(&b, NULL, "not-requested", NULL, 0);
    query_check(&b, "{'refresh': 'sync', 'timeout': 60000}", "broken",
                NULL, 0);

    driver_init(&b, true);
    head = post_stats(&b, buf, st, ARRAY_SIZE(st));
    sync_answered(&b, head, buf, st, ARRAY_SIZE(st));

    balloon_end(&b);
}

/* A driver without VIRTIO_BALLOON_F_STATS_VQ: never asked, never heard */
static void test_unsupported(void)
{
    static const Stat st[] = { { 4, 1000 } };
    Balloon b;
    uint64_t buf;
    uint32_t head;
    g_autofree char *hmp = NULL;
    g_autofree char *line = NULL;

    balloon_boot(&b, true);
    driver_init(&b, false);

    query_check(&b, "{'refresh': 'sync'}", "unsupported", NULL, 0);
    query_check(&b, "{'refresh': 'async'}", "unsupported", NULL, 0);

    buf = guest_alloc(&b.alloc, STAT_SIZE);
    buf_fill(&b, buf, st, ARRAY_SIZE(st));
    head = post_raw(&b, buf, STAT_SIZE, false);
    assert_returned(&b, head);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_bad_buffer",
                                "not negotiated"), ==, 1);
    g_assert_cmpint(trace_count(&b, "virtio_balloon_stats_received", NULL),
                    ==, 0);

    query_check(&b, NULL, "not-requested", NULL, 0);
    query_check(&b, "{'refresh': 'sync', 'timeout': 60000}", "unsupported",
                NULL, 0);

    hmp = qtest_hmp(b.qts, "info balloon");
    line = hmp_balloon_line(hmp);
    g_assert_cmpstr(line, ==, "balloon: actual=256");
    assert_none_returned(&b, ABSENT_MS);

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
    QDict *rsp;
    int i;
    g_autofree char *hmp = NULL;

    balloon_boot(&b, true);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_generic_error(&b, bad[i]);
    }
    /* the bounds are valid (no driver yet: answered without waiting) */
    query_check(&b, "{'refresh': 'sync', 'timeout': 1}", "not-ready",
                NULL, 0);
    query_check(&b, "{'refresh': 'sync', 'timeout': 60000}", "not-ready",
                NULL, 0);
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

    qtest_add_func("/oc-balloon-lifecycle/reset", test_reset);
    qtest_add_func("/oc-balloon-lifecycle/unplug", test_unplug);
    qtest_add_func("/oc-balloon-lifecycle/stopped", test_stopped);
    qtest_add_func("/oc-balloon-lifecycle/broken", test_broken);
    qtest_add_func("/oc-balloon-lifecycle/zero-length", test_zero_length);
    qtest_add_func("/oc-balloon-lifecycle/unsupported", test_unsupported);
    qtest_add_func("/oc-balloon-lifecycle/bad-input", test_bad_input);

    return g_test_run();
}
