/*
 * qemu-oc-balloond: the host's collector, serving its frames to readers
 *
 * The daemon holds one connection per VM; readers (vmtop, scripts)
 * attach to a unix socket and receive frames of every VM's snapshot
 * (docs/collector.md): the hello and the current frame at once, then a
 * frame per interval.  A frame is built once (only while someone reads)
 * and its bytes are shared by every reader.  A reader that does not keep
 * up never slows the collector or another reader: each has a queue of a
 * few frames; when it is full the oldest unsent frame is skipped (the
 * reader is told how many before its next frame), and a reader that
 * reads nothing for COLLECTOR_STALL_S is dropped.  Runs in the thread of
 * the default GMainContext (the daemon's main loop).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_COLLECTOR_H
#define BALLOOND_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

/* A reader that reads nothing for this long, with frames waiting, goes */
#define COLLECTOR_STALL_S 10

typedef struct CollectorConfig {
    const char *path;           /* the socket to create */
    const char *group;          /* may read besides root; NULL: root only */
    int interval_ms;            /* between two frames */
    const char *policy;         /* told in the hello: "on" or "off" */
    unsigned max_readers;       /* more are turned away */
    unsigned queue_frames;      /* per reader */
} CollectorConfig;

#define COLLECTOR_DEFAULT_MAX_READERS 64
#define COLLECTOR_DEFAULT_QUEUE_FRAMES 4

/* The "vms" array of a frame (a new json array, as text) */
typedef GString *CollectorVmsFn(void *opaque);

typedef struct Collector Collector;

/* Counters, for the metrics (any thread) */
typedef struct CollectorCounters {
    unsigned readers;           /* attached now */
    uint64_t frames;            /* published */
    uint64_t skipped;           /* frames skipped for slow readers */
    uint64_t dropped;           /* readers dropped: stalled or broken */
} CollectorCounters;

/* Listen on cfg->path; NULL with @err (e.g. another collector is there) */
Collector *collector_start(const CollectorConfig *cfg, CollectorVmsFn *vms,
                           void *opaque, GError **err);
void collector_counters(Collector *c, CollectorCounters *out);
/* Close every reader and remove the socket */
void collector_stop(Collector *c);

/* Errors of collector_start() */
#define COLLECTOR_ERROR collector_error_quark()
GQuark collector_error_quark(void);

typedef enum CollectorError {
    COLLECTOR_ERROR_SOCKET,     /* the path is not ours to take */
    COLLECTOR_ERROR_BUSY,       /* another collector serves it */
    COLLECTOR_ERROR_PERMISSION, /* its group: unknown, or cannot be set */
} CollectorError;

#endif
