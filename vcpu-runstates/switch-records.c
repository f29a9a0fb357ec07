/*
 * vCPU and VM runstates: a thread's context switches from Linux
 *
 * See include/vcpu-runstates/switch-records.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include "vcpu-runstates/switch-records.h"

#ifndef PERF_RECORD_MISC_SWITCH_OUT_PREEMPT
#define PERF_RECORD_MISC_SWITCH_OUT_PREEMPT (1 << 14)   /* Linux 4.17 */
#endif

/*
 * PERF_RECORD_SWITCH with sample_id_all, sample_type TIME: 16 bytes (the
 * event follows one thread, so no TID is needed)
 */
typedef struct RsSwitchRecord {
    struct perf_event_header hdr;
    uint64_t time;
} RsSwitchRecord;

/* PERF_RECORD_LOST, same sample_id */
typedef struct RsLostRecord {
    struct perf_event_header hdr;
    uint64_t id;
    uint64_t lost;
    uint64_t time;
} RsLostRecord;

static int open_event(size_t data_size)
{
    struct perf_event_attr attr = {
        .size = sizeof(attr),
        .type = PERF_TYPE_SOFTWARE,
        .config = PERF_COUNT_SW_DUMMY,
        .disabled = 1,              /* enabled once the ring is mapped */
        .exclude_kernel = 1,        /* required unprivileged */
        .context_switch = 1,
        .sample_id_all = 1,
        .sample_type = PERF_SAMPLE_TIME,
        .use_clockid = 1,
        .clockid = CLOCK_MONOTONIC,
        /* poll() says POLLIN when the ring is half full */
        .watermark = 1,
        .wakeup_watermark = data_size / 2,
    };

    /* this thread (0), on any CPU (-1) */
    return syscall(SYS_perf_event_open, &attr, 0, -1, -1,
                   PERF_FLAG_FD_CLOEXEC);
}

int rs_switch_open(RsSwitchRing *r, unsigned data_pages, unsigned min_pages,
                   const char **why)
{
    size_t page = qemu_real_host_page_size();
    unsigned pages;
    int err;

    memset(r, 0, sizeof(*r));
    err = EINVAL;
    for (pages = data_pages; pages >= MAX(min_pages, 1); pages /= 2) {
        /* the watermark is the ring's: each size has its own event */
        r->fd = open_event(pages * page);
        if (r->fd < 0) {
            *why = "perf_event_open";
            return -errno;
        }
        r->map_size = (pages + 1) * page;
        r->map = mmap(NULL, r->map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                      r->fd, 0);
        if (r->map != MAP_FAILED) {
            break;
        }
        err = errno;        /* EPERM: over the locked-memory budget */
        r->map = NULL;
        close(r->fd);
        r->fd = -1;
    }
    if (!r->map) {
        *why = "mmap of the switch record ring";
        return -err;
    }
    r->data = (uint8_t *)r->map + page;
    r->data_size = r->map_size - page;
    if (ioctl(r->fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
        err = errno;
        *why = "enabling the switch records";
        rs_switch_close(r);
        return -err;
    }
    return 0;
}

void rs_switch_close(RsSwitchRing *r)
{
    if (r->map) {
        munmap(r->map, r->map_size);
        r->map = NULL;
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    r->fd = -1;
}

/* The record at @tail, copied out if it wraps around the ring's end */
static const struct perf_event_header *record_at(RsSwitchRing *r,
                                                 uint64_t tail, size_t len,
                                                 uint8_t *buf, size_t buflen)
{
    size_t off = tail & (r->data_size - 1);
    size_t first;

    if (off + len <= r->data_size) {
        return (const struct perf_event_header *)(r->data + off);
    }
    len = MIN(len, buflen);     /* only the start of our records matters */
    first = r->data_size - off;
    memcpy(buf, r->data + off, first);
    memcpy(buf + first, r->data, len - first);
    return (const struct perf_event_header *)buf;
}

uint64_t rs_switch_drain(RsSwitchRing *r, RsSwitchFn *fn, void *opaque,
                         bool *corrupt)
{
    struct perf_event_mmap_page *meta = r->map;
    /* pairs with the kernel's barrier before it publishes data_head */
    uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = meta->data_tail;    /* only we write it */
    uint64_t lost = 0;
    uint64_t buf[8];

    *corrupt = false;
    while (tail < head) {
        /* records are 8-byte aligned: a header never wraps */
        const struct perf_event_header *hdr =
            (const void *)(r->data + (tail & (r->data_size - 1)));
        size_t len = hdr->size;

        if (len < sizeof(*hdr) || len % 8 || len > head - tail) {
            *corrupt = true;
            lost++;
            tail = head;
            break;
        }
        hdr = record_at(r, tail, len, (uint8_t *)buf, sizeof(buf));
        if (hdr->type == PERF_RECORD_SWITCH && len >= sizeof(RsSwitchRecord)) {
            const RsSwitchRecord *sw = (const void *)hdr;
            RsSchedView view = RS_SCHED_ONCPU;

            if (hdr->misc & PERF_RECORD_MISC_SWITCH_OUT) {
                view = hdr->misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT ?
                       RS_SCHED_PREEMPTED : RS_SCHED_SLEEPING;
            }
            fn(opaque, sw->time, view);
        } else if (hdr->type == PERF_RECORD_LOST &&
                   len >= sizeof(RsLostRecord)) {
            lost += ((const RsLostRecord *)hdr)->lost;
        }
        tail += len;
    }
    /* our reads of the records happen before the kernel reuses them */
    __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
    return lost;
}
