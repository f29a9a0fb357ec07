/*
 * libFuzzer target: the reader of the collector's protocol
 *
 * The input is a stream as a collector sends it (docs/collector.md:
 * hello, frames, skip notices, errors).  It is given to the reader's
 * parser (tools/lib/collector-client.c, collector_client_feed()) twice:
 * at once, and in pieces whose sizes the first byte chooses, as reads
 * from a socket would cut it.  Invariants (abort() on failure):
 *   - the cut makes no difference (messages are lines, each parsed whole:
 *     json-c's incremental parser would find "12-" bad or not depending
 *     on where a read cut it): both readers fail or not alike, and
 *     end with the same status (attached, frame number and count,
 *     skipped, VMs left out, program, policy, interval) and the same
 *     VMs, shown the same (vm_snapshot_to_json());
 *   - a failure leaves the reader detached, with an error to show;
 *   - a reader's VMs are sorted by name; a frame counts only after a
 *     hello of our version.
 * ASan, UBSan and LeakSanitizer check the rest.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector-client.h"
#include "fuzz-tools.h"
#include "vm-snapshot-wire.h"

/* Feed @data in pieces of @piece bytes (0: at once); false if it failed */
static bool feed_all(CollectorClient *c, const uint8_t *data, size_t size,
                     size_t piece)
{
    GError *err = NULL;
    size_t off = 0, n;
    CollectorStatus st;
    bool ok = true;

    while (ok && off < size) {
        n = piece ? MIN(piece, size - off) : size - off;
        ok = collector_client_feed(c, (const char *)data + off, n, &err);
        off += n;
    }
    /* then a line's end: the last message too is read */
    if (ok) {
        ok = collector_client_feed(c, "\n", 1, &err);
    }
    collector_client_status(c, &st);
    if (!ok) {
        CHECK(err && err->message[0]);
        CHECK(!st.attached && st.error);
        g_error_free(err);
    }
    if (ok && st.frames) {
        CHECK(st.attached);     /* (only a failure detaches) */
    }
    collector_status_clear(&st);
    return ok;
}

static char *shown(CollectorClient *c)
{
    GPtrArray *vms = collector_client_snapshots(c);
    GString *g = g_string_new(NULL);
    guint i;

    for (i = 0; i < vms->len; i++) {
        const VmSnapshot *s = g_ptr_array_index(vms, i);
        json_object *j = vm_snapshot_to_json(s, 1700000000000);

        if (i) {
            const VmSnapshot *p = g_ptr_array_index(vms, i - 1);

            CHECK(strcmp(p->name, s->name) <= 0);
        }
        g_string_append(g, json_object_to_json_string(j));
        g_string_append_c(g, '\n');
        json_object_put(j);
    }
    g_ptr_array_unref(vms);
    return g_string_free(g, false);
}

static void check_same(CollectorClient *a, CollectorClient *b)
{
    CollectorStatus x, y;
    char *sa = shown(a), *sb = shown(b);

    collector_client_status(a, &x);
    collector_client_status(b, &y);
    if (getenv("FUZZ_TRACE")) {
        fprintf(stderr, "at once: attached %d seq %" G_GUINT64_FORMAT
                " frames %" G_GUINT64_FORMAT " error %s\n"
                "in pieces: attached %d seq %" G_GUINT64_FORMAT
                " frames %" G_GUINT64_FORMAT " error %s\n",
                x.attached, x.seq, x.frames, x.error, y.attached, y.seq,
                y.frames, y.error);
    }
    CHECK(x.attached == y.attached);
    CHECK(x.seq == y.seq && x.frames == y.frames);
    CHECK(x.skipped == y.skipped && x.bad_vms == y.bad_vms);
    CHECK(x.interval_ms == y.interval_ms);
    CHECK(!g_strcmp0(x.program, y.program));
    CHECK(!g_strcmp0(x.policy, y.policy));
    CHECK(!strcmp(sa, sb));
    collector_status_clear(&x);
    collector_status_clear(&y);
    g_free(sa);
    g_free(sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CollectorClient *a = collector_client_new_unattached();
    CollectorClient *b = collector_client_new_unattached();
    size_t piece = size ? 1 + data[0] % 97 : 1;
    bool ok_a, ok_b;

    ok_a = feed_all(a, data, size, 0);
    ok_b = feed_all(b, data, size, piece);
    CHECK(ok_a == ok_b);
    check_same(a, b);
    collector_client_free(a);
    collector_client_free(b);
    return 0;
}
