/*
 * libFuzzer target: the QMP connection the host tools' workers use, on
 * an event loop, and what a worker makes of the answers
 *
 * The input is everything a QMP peer sends, byte for byte, on a stream
 * socket that is then closed: a QmpAsync (tools/lib/qmp-async.c) on a
 * context of its own reads the greeting, negotiates, and once ready
 * sends what a worker sends in its first round, held and written at
 * once (query-balloon, query-vcpu-runstates twice,
 * query-memory-size-summary); the loop runs until the connection fails
 * (it must: the input ends).  Answers and BALLOON_STATS events go into
 * a snapshot as the worker puts them.  Replies are numbered from 1
 * (qmp_capabilities), so the seeds of fuzz-qmp-client (the same input)
 * serve here too.  Invariants (abort() on failure):
 *   - every request is answered exactly once, in the order sent, and
 *     all before the failure callback, which comes exactly once, last;
 *   - every failure is a QMP_CLIENT_ERROR with a message; after one
 *     that is not a QMP error reply, the socket is closed;
 *   - an event has a name; at most max_events are handled per dispatch;
 *   - shares computed from the answers are within [0, 1];
 *   - freed from its own failure callback, nothing is called after.
 * ASan, UBSan and LeakSanitizer check the rest.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz-tools.h"
#include "qmp-async.h"

#define MAX_EVENTS 8

static const char *const commands[] = {
    "query-balloon", "query-vcpu-runstates", "query-vcpu-runstates",
    "query-memory-size-summary",
};

static const QmpLimits limits = {
    .max_line = 4096,
    .max_depth = 12,
    .greeting_ms = 1000,
    .max_events = MAX_EVENTS,
};

typedef struct Harness {
    QmpAsync *q;
    VmSnapshot *s;
    bool ready, failed, freed;
    unsigned sent, answered;
    unsigned events;            /* in the current iteration */
} Harness;

static Harness h;

static void on_reply(void *opaque, json_object *ret, const GError *err)
{
    unsigned i = GPOINTER_TO_UINT(opaque);

    CHECK(!h.freed && !h.failed);
    CHECK(i == h.answered);                 /* in order, once */
    h.answered++;
    CHECK(!ret != !err);
    if (err) {
        CHECK(err->domain == QMP_CLIENT_ERROR && err->message[0]);
        if (err->code != QMP_CLIENT_ERROR_COMMAND) {
            CHECK(qmp_async_fd(h.q) < 0);
        }
        return;
    }
    if (i == 0) {
        vm_snapshot_set_balloon(h.s, ret);
    } else if (i < 3) {
        vm_snapshot_set_runstates(h.s, ret, 1000 * i);
    }
    fuzz_check_figures(h.s);
}

static void on_ready(void *opaque G_GNUC_UNUSED)
{
    unsigned i;

    CHECK(!h.freed && !h.failed && !h.ready);
    h.ready = true;
    qmp_async_hold(h.q);
    for (i = 0; i < G_N_ELEMENTS(commands); i++) {
        qmp_async_execute(h.q, commands[i], NULL, 1000, on_reply,
                          GUINT_TO_POINTER(h.sent++));
    }
    qmp_async_release(h.q);
    CHECK(qmp_async_pending(h.q) <= h.sent);
}

static void on_event(void *opaque G_GNUC_UNUSED, const char *event,
                     json_object *data, int64_t timestamp_us G_GNUC_UNUSED)
{
    CHECK(!h.freed && !h.failed);
    CHECK(event && *event);
    CHECK(++h.events <= MAX_EVENTS);
    if (!strcmp(event, "BALLOON_STATS")) {
        vm_snapshot_set_balloon(h.s, data);
    }
}

static void on_fail(void *opaque G_GNUC_UNUSED, const GError *err)
{
    CHECK(!h.freed && !h.failed);
    CHECK(err && err->domain == QMP_CLIENT_ERROR && err->message[0]);
    CHECK(h.answered == h.sent);            /* every answer came first */
    CHECK(qmp_async_pending(h.q) == 0 && qmp_async_fd(h.q) < 0);
    h.failed = true;
    qmp_async_free(h.q);                    /* (from its own callback) */
    h.freed = true;
}

static const QmpAsyncCallbacks callbacks = {
    .ready = on_ready,
    .event = on_event,
    .fail = on_fail,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GMainContext *ctx = g_main_context_new();
    int sv[2];

    fuzz_peer_said(data, size, sv);
    memset(&h, 0, sizeof(h));
    h.s = vm_snapshot_new("fuzz", "/run/fuzz");
    h.s->responsive = true;
    h.q = qmp_async_new_fd(ctx, sv[0], &limits, &callbacks, NULL);
    while (!h.failed) {             /* the input ends: it fails */
        h.events = 0;
        g_main_context_iteration(ctx, true);
    }
    /* the freed connection goes with the iteration that freed it */
    while (g_main_context_iteration(ctx, false)) {
        /* nothing of it may run */
    }
    fuzz_check_figures(h.s);
    vm_snapshot_unref(h.s);
    close(sv[1]);
    g_main_context_unref(ctx);
    return 0;
}
