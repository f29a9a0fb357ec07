/*
 * qemu-oc host tools: a QMP client on json-c
 *
 * One client per connection, used by one thread (a VM's worker).  Every
 * read from the peer is bounded: a line (QMP messages are one JSON
 * object per line) longer than max_line, an object nested deeper than
 * max_depth, invalid JSON or a message of the wrong shape is a protocol
 * error; the greeting and every request have a deadline.  Events that
 * arrive while a request waits, or while qmp_client_wait_events() runs,
 * go to the event callback, in order.  After any error but a QMP error
 * reply, the connection is unusable: free it and connect again.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_QMP_CLIENT_H
#define TOOLS_QMP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>
#include <json-c/json.h>

typedef struct QmpLimits {
    size_t max_line;        /* bytes of one message */
    int max_depth;          /* JSON nesting */
    int greeting_ms;        /* connect + greeting + qmp_capabilities */
    unsigned max_events;    /* events dispatched per call before returning */
} QmpLimits;

/* Defaults: 1 MiB lines, depth 32, 2 s greeting, 1000 events per call */
extern const QmpLimits qmp_default_limits;

#define QMP_CLIENT_ERROR qmp_client_error_quark()
GQuark qmp_client_error_quark(void);

typedef enum QmpClientError {
    QMP_CLIENT_ERROR_CONNECT,   /* socket, connect */
    QMP_CLIENT_ERROR_TIMEOUT,   /* deadline passed */
    QMP_CLIENT_ERROR_CLOSED,    /* the peer closed the connection */
    QMP_CLIENT_ERROR_PROTOCOL,  /* oversized, too deep, invalid, wrong shape */
    QMP_CLIENT_ERROR_COMMAND,   /* the peer answered with a QMP error */
} QmpClientError;

/* An event: its name, data (borrowed; may be NULL), time in µs */
typedef void QmpEventFn(void *opaque, const char *event, json_object *data,
                        int64_t timestamp_us);

typedef struct QmpClient QmpClient;

/*
 * Connect to the QMP server socket @path, read the greeting and
 * negotiate capabilities, within lim->greeting_ms.  NULL with @err set
 * on failure.
 */
QmpClient *qmp_client_connect(const char *path, const QmpLimits *lim,
                              QmpEventFn *event_fn, void *opaque,
                              GError **err);

/* The same on a connected stream socket @fd (taken, even on failure) */
QmpClient *qmp_client_connect_fd(int fd, const QmpLimits *lim,
                                 QmpEventFn *event_fn, void *opaque,
                                 GError **err);

/*
 * Run @command with @args (taken; may be NULL) and wait at most
 * @timeout_ms for its reply.  Returns the "return" value (a new
 * reference; an empty object for {}), or NULL with @err set.
 */
json_object *qmp_client_execute(QmpClient *c, const char *command,
                                json_object *args, int timeout_ms,
                                GError **err);

/*
 * Wait at most @timeout_ms for events and dispatch them; returns early
 * once events were dispatched and no more have arrived, or after
 * lim->max_events.  Returns false with @err set if the connection
 * failed.
 */
bool qmp_client_wait_events(QmpClient *c, int timeout_ms, GError **err);

/* The socket, e.g. to poll() it; -1 if closed */
int qmp_client_fd(QmpClient *c);

void qmp_client_free(QmpClient *c);

#endif
