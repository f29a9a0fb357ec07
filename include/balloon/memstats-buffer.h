/*
 * Guest memory statistics: the stats buffer, checked and parsed once
 *
 * The driver's statistics buffer is a sequence of 10-byte entries
 * { le16 tag; le64 val } (big-endian for a legacy device on a
 * big-endian target).  It comes from the guest: its shape is checked
 * before it is parsed, and the parse reads nothing past it.
 *
 * Pure code (standard C and GLib only): the device
 * (hw/virtio/virtio-balloon-memstats.c) and the fuzzer
 * (tests/fuzz/fuzz-balloon-memstats.c) share it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOON_MEMSTATS_BUFFER_H
#define BALLOON_MEMSTATS_BUFFER_H

#include <sys/uio.h>

/* Linux virtio_balloon.h stat tags 0..15 */
#define MEMSTATS_NR 16

/* One entry: le16 tag, le64 value, packed */
#define MEMSTATS_ENTRY_SIZE 10

/* The driver sends one entry per tag it knows: allow for growth */
#define MEMSTATS_MAX_ENTRIES 256

/* The statistics of one guest report: the one shape they are kept in */
typedef struct MemStats {
    uint64_t val[MEMSTATS_NR];
    uint32_t reported;          /* bit n set: tag n was reported */
    int64_t last_update_ms;     /* host wall clock; 0: never reported */
} MemStats;

/* Total length of @iov */
size_t memstats_buffer_len(const struct iovec *iov, unsigned int iov_cnt);

/*
 * Check the shape of a buffer popped from the stats queue: @len bytes
 * the driver wrote (memstats_buffer_len), @in_num device-writable
 * descriptors, @negotiated: the driver acked the stats feature.
 * Returns NULL if the buffer can be parsed, else why not.
 */
const char *memstats_buffer_check(bool negotiated, size_t len,
                                       unsigned int in_num);

/* Called for each entry whose tag is MEMSTATS_NR or more */
typedef void MemStatsUnknownTagFn(void *opaque, unsigned int tag);

/*
 * Parse the entries of a buffer into @snap: for each tag below
 * MEMSTATS_NR, its value (the last entry wins) and its bit in
 * reported; other values are 0, last_update_ms is 0 (the caller
 * stamps it).  Entries may straddle the elements of @iov; a trailing
 * partial entry is ignored.  @unknown (if not NULL) sees every other
 * tag.  @big_endian: how the device reads the guest's fields.
 * Returns the number of entries.
 */
unsigned int memstats_buffer_parse(const struct iovec *iov,
                                        unsigned int iov_cnt,
                                        bool big_endian,
                                        MemStats *snap,
                                        MemStatsUnknownTagFn *unknown,
                                        void *opaque);

#endif
