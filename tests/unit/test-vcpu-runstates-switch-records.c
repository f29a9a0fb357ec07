/*
 * Unit tests of the context-switch record reader
 * (vcpu-runstates/switch-records.c) on a ring built in memory: records
 * that wrap around the ring's end, lost records, unknown types, and a
 * ring holding garbage.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <linux/perf_event.h>
#include "vcpu-runstates/switch-records.h"

#define DATA 256

typedef struct Ring {
    RsSwitchRing r;
    struct perf_event_mmap_page *meta;
    uint8_t *data;
    uint64_t head;
} Ring;

static void ring_init(Ring *t)
{
    t->meta = g_malloc0(4096 + DATA);
    t->data = (uint8_t *)t->meta + 4096;
    t->r.map = t->meta;
    t->r.data = t->data;
    t->r.data_size = DATA;
    t->r.fd = -1;
    t->head = 0;
}

/* Write @len bytes at the head, wrapping, as the kernel does */
static void put(Ring *t, const void *rec, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        t->data[(t->head + i) % DATA] = ((const uint8_t *)rec)[i];
    }
    t->head += len;
    t->meta->data_head = t->head;
}

static void put_switch(Ring *t, uint16_t misc, uint64_t time)
{
    struct {
        struct perf_event_header hdr;
        uint64_t time;
    } rec = { { PERF_RECORD_SWITCH, misc, sizeof(rec) }, time };

    put(t, &rec, sizeof(rec));
}

typedef struct Seen {
    int64_t t[64];
    int view[64];
    unsigned n;
} Seen;

static void seen(void *opaque, int64_t t, RsSchedView view)
{
    Seen *s = opaque;

    g_assert_cmpuint(s->n, <, 64);
    s->t[s->n] = t;
    s->view[s->n++] = view;
}

static void test_switches_and_wrap(void)
{
    Ring t;
    Seen s = { .n = 0 };
    bool corrupt;
    unsigned i;

    ring_init(&t);
    /* 40 records of 16 bytes go around the 256-byte ring 2.5 times */
    for (i = 0; i < 40; i++) {
        uint16_t misc = i % 3 == 0 ? 0 : i % 3 == 1 ?
            PERF_RECORD_MISC_SWITCH_OUT :
            PERF_RECORD_MISC_SWITCH_OUT | (1 << 14);

        put_switch(&t, misc, 1000 + i);
        if (i % 8 == 7) {
            g_assert_cmpuint(rs_switch_drain(&t.r, seen, &s, &corrupt), ==, 0);
            g_assert_false(corrupt);
            g_assert_cmpuint(t.meta->data_tail, ==, t.head);
        }
    }
    g_assert_cmpuint(s.n, ==, 40);
    for (i = 0; i < 40; i++) {
        g_assert_cmpint(s.t[i], ==, 1000 + i);
        g_assert_cmpint(s.view[i], ==, i % 3 == 0 ? RS_SCHED_ONCPU :
                        i % 3 == 1 ? RS_SCHED_SLEEPING : RS_SCHED_PREEMPTED);
    }
    g_free(t.meta);
}

static void test_lost_and_unknown(void)
{
    Ring t;
    Seen s = { .n = 0 };
    bool corrupt;
    struct {
        struct perf_event_header hdr;
        uint64_t id, lost, time;
    } lost = { { PERF_RECORD_LOST, 0, sizeof(lost) }, 7, 12345, 99 };
    struct {
        struct perf_event_header hdr;
        uint64_t x[3];
    } other = { { PERF_RECORD_COMM, 0, sizeof(other) }, { 1, 2, 3 } };

    ring_init(&t);
    put_switch(&t, 0, 1);
    put(&t, &lost, sizeof(lost));
    put(&t, &other, sizeof(other));
    put_switch(&t, PERF_RECORD_MISC_SWITCH_OUT, 2);
    g_assert_cmpuint(rs_switch_drain(&t.r, seen, &s, &corrupt), ==, 12345);
    g_assert_false(corrupt);
    g_assert_cmpuint(s.n, ==, 2);
    g_free(t.meta);
}

static void test_garbage(void)
{
    Ring t;
    Seen s = { .n = 0 };
    bool corrupt;
    struct perf_event_header bad = { PERF_RECORD_SWITCH, 0, 4 };   /* < 8 */

    ring_init(&t);
    put_switch(&t, 0, 1);
    put(&t, &bad, sizeof(bad));
    put_switch(&t, 0, 2);
    g_assert_cmpuint(rs_switch_drain(&t.r, seen, &s, &corrupt), ==, 1);
    g_assert_true(corrupt);
    g_assert_cmpuint(s.n, ==, 1);               /* nothing after it */
    g_assert_cmpuint(t.meta->data_tail, ==, t.head);    /* all dropped */
    /* the next drain starts clean */
    put_switch(&t, 0, 3);
    g_assert_cmpuint(rs_switch_drain(&t.r, seen, &s, &corrupt), ==, 0);
    g_assert_false(corrupt);
    g_assert_cmpuint(s.n, ==, 2);
    g_free(t.meta);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vcpu-runstates-switch-records/switches-and-wrap",
                    test_switches_and_wrap);
    g_test_add_func("/vcpu-runstates-switch-records/lost-and-unknown",
                    test_lost_and_unknown);
    g_test_add_func("/vcpu-runstates-switch-records/garbage", test_garbage);
    return g_test_run();
}
