/*
 * Balloon statistics: the guest's stats buffer, checked and parsed
 *
 * See include/balloon/stats-buffer.h.  No QEMU dependency beyond
 * qemu/osdep.h's standard headers and GLib: the fuzzer compiles this
 * file on its own.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "balloon/stats-buffer.h"

G_STATIC_ASSERT(BALLOON_STATS_NR <= 32);    /* the reported bitmap */

size_t balloon_stats_buffer_len(const struct iovec *iov, unsigned int iov_cnt)
{
    size_t len = 0;
    unsigned int i;

    for (i = 0; i < iov_cnt; i++) {
        len += iov[i].iov_len;
    }
    return len;
}

const char *balloon_stats_buffer_check(bool negotiated, size_t len,
                                       unsigned int in_num)
{
    if (!negotiated) {
        return "stats feature not negotiated";
    }
    if (in_num) {
        return "device-writable descriptors";
    }
    if (len == 0 || len % BALLOON_STATS_ENTRY_SIZE) {
        return "length not a multiple of the entry size";
    }
    if (len > BALLOON_STATS_MAX_ENTRIES * BALLOON_STATS_ENTRY_SIZE) {
        return "oversized";
    }
    return NULL;
}

/*
 * Copy the next @size bytes of @iov, from element *@idx at *@off, to
 * @dst and advance.  Returns false (nothing copied past the end) if
 * fewer than @size bytes are left.
 */
static bool iov_take(const struct iovec *iov, unsigned int iov_cnt,
                     unsigned int *idx, size_t *off,
                     uint8_t *dst, size_t size)
{
    size_t done = 0;

    while (done < size) {
        size_t n;

        if (*idx >= iov_cnt) {
            return false;
        }
        n = MIN(iov[*idx].iov_len - *off, size - done);
        if (n) {
            memcpy(dst + done, (const uint8_t *)iov[*idx].iov_base + *off, n);
            done += n;
            *off += n;
        }
        if (*off == iov[*idx].iov_len) {
            (*idx)++;
            *off = 0;
        }
    }
    return true;
}

static uint64_t get_uint(const uint8_t *p, unsigned int size, bool big_endian)
{
    uint64_t v = 0;
    unsigned int i;

    for (i = 0; i < size; i++) {
        v |= (uint64_t)p[big_endian ? size - 1 - i : i] << (8 * i);
    }
    return v;
}

unsigned int balloon_stats_buffer_parse(const struct iovec *iov,
                                        unsigned int iov_cnt,
                                        bool big_endian,
                                        BalloonStats *snap,
                                        BalloonStatsUnknownTagFn *unknown,
                                        void *opaque)
{
    uint8_t entry[BALLOON_STATS_ENTRY_SIZE];
    unsigned int idx = 0, n = 0;
    size_t off = 0;

    memset(snap, 0, sizeof(*snap));
    while (iov_take(iov, iov_cnt, &idx, &off, entry, sizeof(entry))) {
        unsigned int tag = get_uint(entry, 2, big_endian);

        n++;
        if (tag >= BALLOON_STATS_NR) {
            if (unknown) {
                unknown(opaque, tag);
            }
            continue;
        }
        snap->val[tag] = get_uint(entry + 2, 8, big_endian);
        snap->reported |= 1u << tag;
    }
    return n;
}
