/*
 * qemu-oc host tools: a QMP connection driven by a GMainContext
 *
 * Where qmp-client.c blocks a thread per connection, this one lives on
 * an event loop: many connections share one thread, each a GSource
 * that wakes for its socket or for its next deadline.  Requests may be
 * pipelined (sent before the previous reply came); QMP answers them in
 * order.  Messages are read as the QMP client reads them (qmp-wire.h),
 * within the same limits.  Every callback runs in the context's thread,
 * and every call is made there (or before the context runs).
 *
 * A connection fails once: a deadline missed (the greeting, any
 * request), the peer closing, or a message that breaks QMP.  Then the
 * pending requests are answered with the error, the fail callback runs,
 * and nothing more is called; the owner frees it (not from inside a
 * callback: qmp_async_free() there only marks it, and the connection
 * goes when its callback returns).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_QMP_ASYNC_H
#define TOOLS_QMP_ASYNC_H

#include "qmp-client.h"

typedef struct QmpAsync QmpAsync;

/* Greeted, capabilities negotiated: requests may go */
typedef void QmpAsyncReadyFn(void *opaque);
/* The connection failed (@err: QMP_CLIENT_ERROR); the last callback */
typedef void QmpAsyncFailFn(void *opaque, const GError *err);
/*
 * A request's answer: @ret (borrowed) or @err (_COMMAND: the peer said
 * no, the connection stays; anything else: it failed)
 */
typedef void QmpAsyncReplyFn(void *opaque, json_object *ret,
                             const GError *err);

typedef struct QmpAsyncCallbacks {
    QmpAsyncReadyFn *ready;
    QmpEventFn *event;          /* may be NULL */
    QmpAsyncFailFn *fail;
} QmpAsyncCallbacks;

/*
 * Connect to the QMP socket @path, on @ctx; the greeting and the
 * negotiation follow within lim->greeting_ms.  NULL with @err if the
 * socket cannot be connected to at all.
 */
QmpAsync *qmp_async_connect(GMainContext *ctx, const char *path,
                            const QmpLimits *lim,
                            const QmpAsyncCallbacks *cb, void *opaque,
                            GError **err);

/*
 * The same on a connected stream socket @fd (taken; made non-blocking):
 * the greeting is read from it
 */
QmpAsync *qmp_async_new_fd(GMainContext *ctx, int fd, const QmpLimits *lim,
                           const QmpAsyncCallbacks *cb, void *opaque);

/*
 * Send @command with @args (taken; may be NULL); @reply is called once,
 * with the answer, or with the failure if the reply does not come
 * within @timeout_ms (which fails the connection) or it fails first
 */
void qmp_async_execute(QmpAsync *q, const char *command, json_object *args,
                       int timeout_ms, QmpAsyncReplyFn *reply, void *opaque);

/* Requests sent and not answered yet */
unsigned qmp_async_pending(QmpAsync *q);

/* The socket (e.g. to ask who the peer is), or -1 once it failed */
int qmp_async_fd(QmpAsync *q);

/*
 * Hold the requests made from now on, then write them at once (one
 * system call for a round of several); their deadlines run meanwhile
 */
void qmp_async_hold(QmpAsync *q);
void qmp_async_release(QmpAsync *q);

/* Close; no callback runs after it (inside one: once that returns) */
void qmp_async_free(QmpAsync *q);

#endif
