/*
 * libFuzzer target: the host tools' QMP client and what a worker makes
 * of the answers
 *
 * The input is everything a QMP peer sends, byte for byte, on a stream
 * socket that is then closed: the client (tools/lib/qmp-client.c) reads
 * the greeting, negotiates, and runs what a VM's worker runs
 * (query-balloon, query-vcpu-runstates twice, query-memory-size-summary),
 * then waits for events.  Answers and BALLOON_STATS events go into a
 * snapshot as the worker puts them (tools/lib/vm-snapshot.c).  The
 * client's replies are numbered from 1 (qmp_capabilities), so seeds
 * carry "id": 1 to 5.
 * Invariants (abort() on failure):
 *   - every failure is a QMP_CLIENT_ERROR with a message;
 *   - after a failure other than a QMP error reply the connection is
 *     closed, and every later call fails at once;
 *   - an event has a name; at most max_events are dispatched per wait;
 *   - shares computed from the answers are within [0, 1].
 * ASan, UBSan and LeakSanitizer check the rest.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz-tools.h"
#include "qmp-client.h"

#define MAX_EVENTS 8

static const QmpLimits limits = {
    .max_line = 4096,
    .max_depth = 12,
    .greeting_ms = 1000,
    .max_events = MAX_EVENTS,
};

typedef struct Harness {
    VmSnapshot *s;
    unsigned events;            /* dispatched in the current call */
} Harness;

static void on_event(void *opaque, const char *event, json_object *data,
                     int64_t timestamp_us)
{
    Harness *h = opaque;

    (void)timestamp_us;
    CHECK(event && *event);
    h->events++;
    if (!strcmp(event, "BALLOON_STATS")) {
        vm_snapshot_set_balloon(h->s, data);
    }
}

/* A failure: said properly; true if the connection is gone */
static bool check_failure(QmpClient *c, GError *err)
{
    bool gone;

    CHECK(err && err->domain == QMP_CLIENT_ERROR && err->message[0]);
    gone = err->code != QMP_CLIENT_ERROR_COMMAND;
    if (gone) {
        CHECK(qmp_client_fd(c) < 0);
    }
    g_error_free(err);
    return gone;
}

/* Once gone, every call fails at once */
static void check_gone(QmpClient *c)
{
    GError *err = NULL;

    CHECK(!qmp_client_execute(c, "query-balloon", NULL, 1000, &err));
    CHECK(err && err->domain == QMP_CLIENT_ERROR);
    g_clear_error(&err);
    CHECK(!qmp_client_wait_events(c, 1000, &err));
    CHECK(err && err->domain == QMP_CLIENT_ERROR);
    g_clear_error(&err);
}

static void session(QmpClient *c, Harness *h)
{
    static const char *const commands[] = {
        "query-balloon", "query-vcpu-runstates", "query-vcpu-runstates",
        "query-memory-size-summary",
    };
    GError *err = NULL;
    json_object *ret;
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(commands); i++) {
        ret = qmp_client_execute(c, commands[i], NULL, 1000, &err);
        if (!ret) {
            if (check_failure(c, err)) {
                check_gone(c);
                return;
            }
            err = NULL;
            continue;
        }
        if (i == 0) {
            vm_snapshot_set_balloon(h->s, ret);
        } else if (i < 3) {
            vm_snapshot_set_runstates(h->s, ret, 1000 * i);
        }
        json_object_put(ret);
        fuzz_check_figures(h->s);
    }
    h->events = 0;
    if (!qmp_client_wait_events(c, 0, &err)) {
        CHECK(check_failure(c, err));
        check_gone(c);
        return;
    }
    CHECK(h->events <= MAX_EVENTS);
    fuzz_check_figures(h->s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Harness h = { 0 };
    GError *err = NULL;
    QmpClient *c;
    int sv[2];

    fuzz_peer_said(data, size, sv);
    h.s = vm_snapshot_new("fuzz", "/run/fuzz");
    h.s->responsive = true;
    c = qmp_client_connect_fd(sv[0], &limits, on_event, &h, &err);
    if (c) {
        session(c, &h);
        qmp_client_free(c);
    } else {
        CHECK(err && err->domain == QMP_CLIENT_ERROR && err->message[0]);
        g_error_free(err);
    }
    fuzz_check_figures(h.s);
    vm_snapshot_unref(h.s);
    close(sv[1]);
    return 0;
}
