/*
 * virtio-balloon: statistics on demand (qemu-oc)
 *
 * Hooks called by hw/virtio/virtio-balloon.c; the device-independent
 * part is include/balloon/stats.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_VIRTIO_BALLOON_BALLOON_STATS_H
#define HW_VIRTIO_BALLOON_BALLOON_STATS_H

#include "balloon/stats.h"

typedef struct VirtIOBalloon VirtIOBalloon;

/* Per-device state, a member of VirtIOBalloon */
typedef struct VirtIOBalloonStats {
    BalloonStats latest;            /* last_update_ms 0: none yet */
    bool posted;                /* the driver has given us a buffer */
    /* post-migration: the held buffer is popped again, old statistics */
    bool replay;
    /* property x-oc-stats-migration: send the subsection (off: stock's) */
    bool migrate;
    /* waiters learn of a virtio_error() in the main thread */
    QEMUBH *broken_bh;
} VirtIOBalloonStats;

/* Check a buffer popped from the stats queue; false: it was returned */
bool virtio_balloon_stats_accept(VirtIOBalloon *s, VirtQueueElement *elem);
/*
 * The driver's stats buffer (s->stats_vq_elem) was accepted: parse it.
 * Returns the length of its entries.
 */
size_t virtio_balloon_stats_received(VirtIOBalloon *s);
void virtio_balloon_stats_realize(VirtIOBalloon *s);
void virtio_balloon_stats_unrealize(VirtIOBalloon *s);
/* The device is reset */
void virtio_balloon_stats_device_reset(VirtIOBalloon *s);
/* The driver or the device sets @status (before it takes effect) */
void virtio_balloon_stats_set_status(VirtIOBalloon *s, uint8_t status);
/* virtio_error() marked the device broken (any thread) */
void virtio_balloon_stats_device_broken(VirtIODevice *vdev);

extern const VMStateDescription vmstate_virtio_balloon_stats;

#endif
