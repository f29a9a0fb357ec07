/*
 * Guest memory statistics: the stats buffer, checked and parsed once
 *
 * The driver's statistics buffer is a sequence of 10-byte entries
 * { le16 tag; le64 val } (big-endian for a legacy device on a
 * big-endian target).  It comes from the guest: its shape is checked
 * before it is parsed, and the parse reads nothing past it.
 *
 * Pure code (standard C and GLib only): the device
 * (hw/virtio/virtio-balloon-stats.c) and the fuzzer
 * (tests/fuzz/fuzz-balloon-stats.c) share it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOON_BALLOON_STATS_BUFFER_H
#define BALLOON_BALLOON_STATS_BUFFER_H

#include <sys/uio.h>

/* Linux virtio_balloon.h stat tags 0..15 */
#define BALLOON_STATS_NR 16

/* One entry: le16 tag, le64 value, packed */
#define BALLOON_STATS_ENTRY_SIZE 10

/* The driver sends one entry per tag it knows: allow for growth */
#define BALLOON_STATS_MAX_ENTRIES 256

/* The statistics of one guest report: the one shape they are kept in */
typedef struct BalloonStats {
    uint64_t val[BALLOON_STATS_NR];
    uint32_t reported;          /* bit n set: tag n was reported */
    int64_t last_update_ms;     /* host wall clock; 0: never reported */
} BalloonStats;

/* Total length of @iov */
size_t balloon_stats_buffer_len(const struct iovec *iov, unsigned int iov_cnt);

/*
 * Check the shape of a buffer popped from the stats queue: @len bytes
 * the driver wrote (balloon_stats_buffer_len), @in_num device-writable
 * descriptors, @negotiated: the driver acked the stats feature.
 * Returns NULL if the buffer can be parsed, else why not.
 */
const char *balloon_stats_buffer_check(bool negotiated, size_t len,
                                       unsigned int in_num);

/* Called for each entry whose tag is BALLOON_STATS_NR or more */
typedef void BalloonStatsUnknownTagFn(void *opaque, unsigned int tag);

/*
 * Parse the entries of a buffer into @snap: for each tag below
 * BALLOON_STATS_NR, its value (the last entry wins) and its bit in
 * reported; other values are 0, last_update_ms is 0 (the caller
 * stamps it).  Entries may straddle the elements of @iov; a trailing
 * partial entry is ignored.  @unknown (if not NULL) sees every other
 * tag.  @big_endian: how the device reads the guest's fields.
 * Returns the number of entries.
 */
unsigned int balloon_stats_buffer_parse(const struct iovec *iov,
                                        unsigned int iov_cnt,
                                        bool big_endian,
                                        BalloonStats *snap,
                                        BalloonStatsUnknownTagFn *unknown,
                                        void *opaque);

#endif
