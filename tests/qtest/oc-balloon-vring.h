/*
 * QTest: the virtio-balloon statistics queue as a driver that misbehaves
 * writes it (oc-balloon-guest-input-test.c): descriptors written by hand,
 * heads made available without a notification and notifications with
 * nothing new, the device's returned buffers, its NEEDS_RESET state
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef OC_BALLOON_VRING_H
#define OC_BALLOON_VRING_H

#include "oc-balloon-qtest.h"
#include "standard-headers/linux/virtio_config.h"

#define DESC_SIZE       16      /* struct vring_desc */

/* QEMU answers on the qtest monitor, and the VM runs */
static inline void assert_alive(Balloon *b)
{
    QDict *ret = reply_return(qtest_qmp(b->qts,
                                        "{'execute': 'query-status'}"));

    g_assert_cmpstr(qdict_get_try_str(ret, "status"), ==, "running");
    qobject_unref(ret);
    ret = query(b, NULL);
    assert_stale(ret, "not-requested");
    qobject_unref(ret);
}

static inline uint8_t dev_status(Balloon *b)
{
    return b->dev->vdev.bus->get_status(&b->dev->vdev);
}

/*
 * The device needs a reset: every kind of request answers at once with
 * stale-reason broken (and the latest statistics, @st if given)
 */
static inline void assert_broken(Balloon *b, const Stat *st, size_t n)
{
    int starts = trace_count(b, "balloon_stats_waiter_start", NULL);
    QDict *info;

    g_assert_cmphex(dev_status(b) & VIRTIO_CONFIG_S_NEEDS_RESET, ==,
                    VIRTIO_CONFIG_S_NEEDS_RESET);
    assert_alive(b);
    info = query_prompt(b, "{'refresh': 'sync', 'timeout': 60000}");
    assert_stale(info, "broken");
    if (st) {
        assert_stats(info, st, n);
    }
    qobject_unref(info);
    info = query_prompt(b, "{'refresh': 'async'}");
    assert_stale(info, "broken");
    qobject_unref(info);
    g_assert_cmpint(trace_count(b, "balloon_stats_waiter_start", NULL),
                    ==, starts);
}

/*
 * A driver reset (with @features) recovers: the driver posts @st in
 * @buf, and a sync refresh is answered fresh
 */
static inline uint32_t recover(Balloon *b, uint64_t features, uint64_t buf,
                               const Stat *st, size_t n)
{
    uint32_t head;

    driver_init_features(b, features);
    g_assert_cmphex(dev_status(b) & VIRTIO_CONFIG_S_NEEDS_RESET, ==, 0);
    head = post_stats(b, buf, st, n);
    return sync_answered(b, head, buf, st, n);
}

/* Write descriptor @idx of the table at @table */
static inline void desc_write(Balloon *b, uint64_t table, uint16_t idx,
                              uint64_t addr, uint32_t len, uint16_t flags,
                              uint16_t next)
{
    uint64_t d = table + DESC_SIZE * idx;

    qtest_writeq(b->qts, d, addr);
    qtest_writel(b->qts, d + 8, len);
    qtest_writew(b->qts, d + 12, flags);
    qtest_writew(b->qts, d + 14, next);
}

/* Make head @head available on the stats queue, without notifying */
static inline void avail_push(Balloon *b, uint32_t head)
{
    QVirtQueue *vq = b->vq;
    uint16_t idx = qtest_readw(b->qts, vq->avail + 2);

    qtest_writew(b->qts, vq->avail + 4 + 2 * (idx % vq->size), head);
    qtest_writew(b->qts, vq->avail + 2, idx + 1);
}

/* Notify the stats queue, with nothing new made available */
static inline void notify(Balloon *b)
{
    b->dev->vdev.bus->virtqueue_kick(&b->dev->vdev, b->vq);
}

/* Post (again) the descriptor chain at @head, and notify */
static inline void repost(Balloon *b, uint32_t head)
{
    qvirtqueue_kick(b->qts, &b->dev->vdev, b->vq, head);
}

/* Post one ring descriptor with any @flags, and notify */
static inline uint32_t post_desc(Balloon *b, uint64_t addr, uint32_t len,
                                 uint16_t flags)
{
    uint32_t head = b->vq->free_head++;

    g_assert_cmpuint(head, <, b->vq->size);
    b->vq->num_free--;
    desc_write(b, b->vq->desc, head, addr, len, flags, 0);
    repost(b, head);
    return head;
}

/* The used ring holds nothing the driver has not seen */
static inline void assert_used_drained(Balloon *b)
{
    uint16_t used_idx = qtest_readw(b->qts, b->vq->used + 2);

    g_assert_cmpuint(used_idx, ==, b->vq->last_used_idx);
}

/* Count the buffers the device returned since the last drain: all @head */
static inline int drain_returned(Balloon *b, uint32_t head)
{
    uint32_t got, len;
    int n = 0;

    while (qvirtqueue_get_buf(b->qts, b->vq, &got, &len)) {
        g_assert_cmpuint(got, ==, head);
        g_assert_cmpuint(len, ==, 0);
        n++;
    }
    assert_used_drained(b);
    return n;
}

#endif
