/*
 * qemu-oc host tools: a reader of the host's collector
 *
 * qemu-oc-balloond --serve SOCKET is the host's one collector: one
 * connection per VM, however many readers.  A reader (vmtop) attaches to
 * its unix socket and receives the collector's frames (docs/collector.md):
 * the current one at once, then each one as it is published.  A thread
 * reads them; every read is bounded (message size, JSON nesting) and a
 * VM that does not decode is left out of the frame, never trusted.  When
 * the collector goes away the reader keeps its last frame, says so, and
 * attaches again (once a second).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_COLLECTOR_CLIENT_H
#define TOOLS_COLLECTOR_CLIENT_H

#include "vm-snapshot.h"

/* Errors of the reader */
#define COLLECTOR_CLIENT_ERROR collector_client_error_quark()
GQuark collector_client_error_quark(void);

typedef enum CollectorClientError {
    COLLECTOR_CLIENT_ERROR_CONNECT,     /* nothing to attach to */
    COLLECTOR_CLIENT_ERROR_CLOSED,      /* the collector went away */
    COLLECTOR_CLIENT_ERROR_TIMEOUT,     /* no frame in time */
    COLLECTOR_CLIENT_ERROR_VERSION,     /* another protocol version */
    COLLECTOR_CLIENT_ERROR_PROTOCOL,    /* a message that breaks it */
    COLLECTOR_CLIENT_ERROR_COLLECTOR,   /* the collector says: an error */
} CollectorClientError;

/* Where readers look when not told (the service's socket) */
#define COLLECTOR_DEFAULT_SOCKET "/run/qemu-oc-balloond/collector.sock"

typedef struct CollectorClient CollectorClient;

/* What the reader knows of the collector and its stream */
typedef struct CollectorStatus {
    bool attached;              /* connected and speaking our version */
    char *program;              /* the collector's, from its hello */
    int interval_ms;            /* its publication interval */
    char *policy;               /* "on" or "off" */
    uint64_t seq;               /* the latest frame's number, 0: none */
    int64_t frame_ms;           /* its wall-clock time */
    uint64_t frames;            /* frames received */
    uint64_t skipped;           /* frames the collector skipped for us */
    uint64_t bad_vms;           /* VMs left out: they did not decode */
    char *error;                /* why not attached, or NULL */
} CollectorStatus;

/*
 * Attach to the collector at @path: connect now (false with @err if
 * nothing listens there or it does not greet within @timeout_ms), then
 * read in a thread
 */
CollectorClient *collector_client_new(const char *path, int timeout_ms,
                                      GError **err);

/* The latest frame's VMs, sorted by name (unref each, free) */
GPtrArray *collector_client_snapshots(CollectorClient *c);

/* Wait at most @timeout_ms for a frame after number @seq; its number */
uint64_t collector_client_wait(CollectorClient *c, uint64_t seq,
                               int timeout_ms);

/* A copy (free with collector_status_clear()) */
void collector_client_status(CollectorClient *c, CollectorStatus *st);
void collector_status_clear(CollectorStatus *st);

void collector_client_free(CollectorClient *c);

/*
 * The protocol alone (the fuzz target, tests): a client without socket
 * or thread, and the reader's parsing of @len bytes of a stream; after
 * a failure (@err) it is detached, as the reader is, and starts afresh
 */
CollectorClient *collector_client_new_unattached(void);
bool collector_client_feed(CollectorClient *c, const char *buf, size_t len,
                           GError **err);

#endif
