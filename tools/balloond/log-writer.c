/*
 * qemu-oc-balloond: log lines written by a thread of their own
 *
 * See log-writer.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>

#include "log-writer.h"

typedef struct LogCall {
    GFunc fn;
    gpointer data;
    GDestroyNotify free;
} LogCall;

struct LogWriter {
    GAsyncQueue *queue;
    GThread *thread;
    FILE *json;
    GMutex *json_lock;
    bool unflushed;             /* writer thread only */
};

/* The call that stops the writer */
static void stop_call(gpointer data G_GNUC_UNUSED,
                      gpointer user_data G_GNUC_UNUSED)
{
}

static gpointer writer_thread(gpointer opaque)
{
    LogWriter *l = opaque;

    for (;;) {
        LogCall *c = g_async_queue_try_pop(l->queue);

        if (!c) {
            if (l->unflushed) {
                g_mutex_lock(l->json_lock);
                fflush(l->json);
                g_mutex_unlock(l->json_lock);
                l->unflushed = false;
            }
            c = g_async_queue_pop(l->queue);
        }
        if (c->fn == stop_call) {
            g_free(c);
            break;
        }
        c->fn(c->data, l);
        if (c->free) {
            c->free(c->data);
        }
        g_free(c);
    }
    if (l->unflushed) {
        g_mutex_lock(l->json_lock);
        fflush(l->json);
        g_mutex_unlock(l->json_lock);
    }
    return NULL;
}

LogWriter *log_writer_start(FILE *json, GMutex *json_lock)
{
    LogWriter *l = g_new0(LogWriter, 1);

    l->queue = g_async_queue_new();
    l->json = json;
    l->json_lock = json_lock;
    l->thread = g_thread_new("log", writer_thread, l);
    return l;
}

void log_writer_call(LogWriter *l, GFunc fn, gpointer data,
                     GDestroyNotify free)
{
    LogCall *c = g_new(LogCall, 1);

    c->fn = fn;
    c->data = data;
    c->free = free;
    g_async_queue_push(l->queue, c);
}

void log_writer_json(LogWriter *l, const char *line)
{
    if (l->json) {
        g_mutex_lock(l->json_lock);
        fputs(line, l->json);
        fputc('\n', l->json);
        g_mutex_unlock(l->json_lock);
        l->unflushed = true;
    }
}

void log_writer_stop(LogWriter *l)
{
    if (!l) {
        return;
    }
    log_writer_call(l, stop_call, NULL, NULL);
    g_thread_join(l->thread);
    g_async_queue_unref(l->queue);
    g_free(l);
}
