/*
 * virtio-balloon: statistics on demand (qemu-oc)
 *
 * The driver keeps one statistics buffer on the stats virtqueue; the
 * device holds it (s->stats_vq_elem) until it wants fresh statistics,
 * then returns it, and the driver refills and re-posts it.  Upstream's
 * polling timer and this on-demand path share that single buffer: it is
 * returned only while held, so never twice, and an answer to either
 * serves both.
 *
 * Buffers come from the guest and are checked before use: a malformed
 * one is returned at once, empty, and traced; the device keeps working.
 * A good one is parsed once, here (balloon/stats-buffer.c), into the
 * device's one BalloonStats; upstream's s->stats[] and stats_last_update,
 * which its guest-stats property shows, are copied from it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "hw/virtio/virtio.h"
#include "hw/virtio/virtio-access.h"
#include "hw/virtio/virtio-balloon.h"
#include "hw/virtio/virtio-balloon-stats.h"
#include "migration/vmstate.h"
#include "sysemu/runstate.h"
#include "trace.h"

QEMU_BUILD_BUG_ON(sizeof(VirtIOBalloonStat) != BALLOON_STATS_ENTRY_SIZE);

static VirtIOBalloonStats *balloon_stats_of(VirtIOBalloon *s)
{
    return &s->balloon_stats;
}

static void stats_return(VirtIOBalloon *s, VirtQueueElement *elem)
{
    virtqueue_push(s->svq, elem, 0);
    virtio_notify(VIRTIO_DEVICE(s), s->svq);
    g_free(elem);
}

bool virtio_balloon_stats_accept(VirtIOBalloon *s, VirtQueueElement *elem)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    size_t len = balloon_stats_buffer_len(elem->out_sg, elem->out_num);
    const char *bad;

    bad = balloon_stats_buffer_check(
        virtio_vdev_has_feature(vdev, VIRTIO_BALLOON_F_STATS_VQ),
        len, elem->in_num);
    if (bad) {
        trace_virtio_balloon_stats_bad_buffer(s, bad, len, elem->in_num);
        stats_return(s, elem);
        return false;
    }
    if (s->stats_vq_elem) {
        /* upstream returns the held one and keeps this one */
        trace_virtio_balloon_stats_second_buffer(s);
    }
    return true;
}

static void stats_unknown_tag(void *opaque, unsigned int tag)
{
    trace_virtio_balloon_stats_unknown_tag(opaque, tag);
}

/* Upstream's copy, read by its guest-stats property (libvirt uses it) */
static void legacy_view(VirtIOBalloon *s)
{
    const BalloonStats *ms = &balloon_stats_of(s)->latest;
    int i;

    for (i = 0; i < VIRTIO_BALLOON_S_NR; i++) {
        s->stats[i] = ms->reported & (1u << i) ? ms->val[i] : -1;
    }
    s->stats_last_update = ms->last_update_ms / 1000;
}

size_t virtio_balloon_stats_received(VirtIOBalloon *s)
{
    VirtIODevice *vdev = VIRTIO_DEVICE(s);
    VirtQueueElement *elem = s->stats_vq_elem;
    VirtIOBalloonStats *ms = balloon_stats_of(s);
    BalloonStats report;
    unsigned int n;

    n = balloon_stats_buffer_parse(elem->out_sg, elem->out_num,
                                   virtio_access_is_big_endian(vdev), &report,
                                   stats_unknown_tag, s);
    ms->posted = true;
    if (ms->replay) {
        /* the buffer held before migration: not a new answer */
        ms->replay = false;
        legacy_view(s);
        return n * BALLOON_STATS_ENTRY_SIZE;
    }
    report.last_update_ms = g_get_real_time() / 1000;
    ms->latest = report;
    legacy_view(s);
    trace_virtio_balloon_stats_received(s, report.reported);
    balloon_stats_answered(s);       /* (the waiters get ms->latest) */
    return n * BALLOON_STATS_ENTRY_SIZE;
}

/* A device in this state cannot answer until the driver resets it */
static bool stats_broken(VirtIODevice *vdev, uint8_t status)
{
    return vdev->broken ||
           (status & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED));
}

static bool stats_ask(void *opaque, BalloonStatsStale *why)
{
    VirtIOBalloon *s = opaque;
    VirtIODevice *vdev = VIRTIO_DEVICE(s);

    if (stats_broken(vdev, vdev->status)) {
        *why = BALLOON_STATS_STALE_BROKEN;
        return false;
    }
    if (!(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK)) {
        *why = BALLOON_STATS_STALE_NOT_READY;
        return false;
    }
    if (!virtio_vdev_has_feature(vdev, VIRTIO_BALLOON_F_STATS_VQ)) {
        *why = BALLOON_STATS_STALE_UNSUPPORTED;
        return false;
    }
    if (!runstate_is_running()) {
        /* a stopped VM's memory and queues must not change */
        *why = BALLOON_STATS_STALE_STOPPED;
        return false;
    }
    if (s->stats_vq_elem) {
        VirtQueueElement *elem = s->stats_vq_elem;

        s->stats_vq_elem = NULL;
        trace_virtio_balloon_stats_ask(s);
        stats_return(s, elem);
        return true;
    }
    if (balloon_stats_of(s)->posted) {
        return true;    /* returned already: its answer will come */
    }
    *why = BALLOON_STATS_STALE_NOT_READY;
    return false;
}

/* The device broke (virtio_error): what waits completes now */
static void stats_broken_bh(void *opaque)
{
    VirtIOBalloon *s = opaque;

    virtio_balloon_stats_set_status(s, VIRTIO_DEVICE(s)->status);
}

void virtio_balloon_stats_device_broken(VirtIODevice *vdev)
{
    /* the error may be found outside the main thread */
    qemu_bh_schedule(balloon_stats_of(VIRTIO_BALLOON(vdev))->broken_bh);
}

void virtio_balloon_stats_realize(VirtIOBalloon *s)
{
    balloon_stats_of(s)->broken_bh = qemu_bh_new(stats_broken_bh, s);
    balloon_stats_device_register(s, stats_ask, &balloon_stats_of(s)->latest);
}

void virtio_balloon_stats_unrealize(VirtIOBalloon *s)
{
    balloon_stats_device_unregister(s);
    qemu_bh_delete(balloon_stats_of(s)->broken_bh);
    balloon_stats_of(s)->broken_bh = NULL;
}

void virtio_balloon_stats_set_status(VirtIOBalloon *s, uint8_t status)
{
    if (stats_broken(VIRTIO_DEVICE(s), status)) {
        trace_virtio_balloon_stats_broken(s, status);
        balloon_stats_lost(s, BALLOON_STATS_STALE_BROKEN);
    }
}

void virtio_balloon_stats_device_reset(VirtIOBalloon *s)
{
    balloon_stats_of(s)->posted = false;
    balloon_stats_of(s)->replay = false;
    balloon_stats_lost(s, BALLOON_STATS_STALE_RESET);
}

/*
 * Migration: the latest statistics, and whether the driver has posted
 * its buffer (held by the device or being answered).  Stock QEMU sends
 * no such subsection; then the destination starts with none.  Upstream
 * machine types (pc-i440fx-7.2, pc-q35-7.2 and older) turn the property
 * x-oc-stats-migration off, so that their stream stays stock's and
 * stock QEMU 7.2 can load it: see docs/balloon-stats.md for what a
 * destination does without the subsection.
 */
static bool stats_needed(void *opaque)
{
    VirtIOBalloonStats *ms = balloon_stats_of(opaque);

    return ms->migrate && (ms->posted || ms->latest.last_update_ms);
}

static int stats_pre_save(void *opaque)
{
    VirtIOBalloon *s = opaque;

    balloon_stats_of(s)->replay = s->stats_vq_elem != NULL;
    return 0;
}

static int stats_post_save(void *opaque)
{
    balloon_stats_of(opaque)->replay = false;
    return 0;
}

const VMStateDescription vmstate_virtio_balloon_stats = {
    .name = "virtio-balloon-device/qemu-oc-stats",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = stats_needed,
    .pre_save = stats_pre_save,
    .post_save = stats_post_save,
    .fields = (VMStateField[]) {
        VMSTATE_UINT64_ARRAY(balloon_stats.latest.val, VirtIOBalloon,
                             BALLOON_STATS_NR),
        VMSTATE_UINT32(balloon_stats.latest.reported, VirtIOBalloon),
        VMSTATE_INT64(balloon_stats.latest.last_update_ms, VirtIOBalloon),
        VMSTATE_BOOL(balloon_stats.posted, VirtIOBalloon),
        VMSTATE_BOOL(balloon_stats.replay, VirtIOBalloon),
        VMSTATE_END_OF_LIST()
    }
};
