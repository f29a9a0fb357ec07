/*
 * qemu-oc host tools: event-loop threads, each for up to 64 VMs
 *
 * See loop-pool.h.  The pool's lock guards the list of loops and their
 * counts; a loop thread, once started, runs until the process exits.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdbool.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop-pool.h"

struct LoopPoolLoop {
    GMainContext *ctx;
    unsigned workers;           /* under pool_lock */
    gint woken;                 /* woken since the loop last looked */
};

/* A source that lets the next wake through (prepared first: see wake) */
typedef struct Rearm {
    GSource source;
    LoopPoolLoop *l;
} Rearm;

static gboolean rearm_prepare(GSource *source, gint *timeout)
{
    g_atomic_int_set(&((Rearm *)source)->l->woken, 0);
    *timeout = -1;
    return false;
}

static gboolean rearm_dispatch(GSource *source G_GNUC_UNUSED,
                               GSourceFunc callback G_GNUC_UNUSED,
                               gpointer user_data G_GNUC_UNUSED)
{
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs rearm_funcs = {
    .prepare = rearm_prepare,
    .dispatch = rearm_dispatch,
};

static GMutex pool_lock;
static LoopPoolLoop *loops[LOOP_POOL_MAX];
static unsigned n_loops;        /* under pool_lock */

static gpointer loop_thread(gpointer opaque)
{
    LoopPoolLoop *l = opaque;
    GMainLoop *loop = g_main_loop_new(l->ctx, false);
    GSource *rearm = g_source_new(&rearm_funcs, sizeof(Rearm));

    /*
     * before every other source's prepare(): a wake that finds woken set
     * came before this, so the sources prepared after it see its flag
     */
    ((Rearm *)rearm)->l = l;
    g_source_set_priority(rearm, G_MININT);
    g_source_attach(rearm, l->ctx);
    g_source_unref(rearm);
    g_main_context_push_thread_default(l->ctx);
    g_main_loop_run(loop);      /* for the life of the process */
    g_main_context_pop_thread_default(l->ctx);
    g_main_loop_unref(loop);
    return NULL;
}

/*
 * Whether a new loop's context can get its wake-up descriptor: GLib
 * aborts the process when it cannot (EMFILE: a host of many VMs under a
 * low RLIMIT_NOFILE), so a new loop is made only if one can be opened
 * now; otherwise the least busy loop takes one more VM
 */
static bool wakeup_fd_available(void)
{
    int fd = eventfd(0, EFD_CLOEXEC);

    if (fd < 0) {
        return false;
    }
    close(fd);
    return true;
}

LoopPoolLoop *loop_pool_take(void)
{
    LoopPoolLoop *best = NULL;
    unsigned i;

    g_mutex_lock(&pool_lock);
    for (i = 0; i < n_loops; i++) {
        if (!best || loops[i]->workers < best->workers) {
            best = loops[i];
        }
    }
    if ((!best || best->workers >= LOOP_POOL_VMS_PER_LOOP) &&
        n_loops < LOOP_POOL_MAX && (!best || wakeup_fd_available())) {
        g_autofree char *name = g_strdup_printf("loop:%u", n_loops);

        best = g_new0(LoopPoolLoop, 1);
        best->ctx = g_main_context_new();
        loops[n_loops++] = best;
        g_thread_unref(g_thread_new(name, loop_thread, best));
    }
    best->workers++;
    g_mutex_unlock(&pool_lock);
    return best;
}

GMainContext *loop_pool_context(LoopPoolLoop *l)
{
    return l->ctx;
}

void loop_pool_release(LoopPoolLoop *l)
{
    g_mutex_lock(&pool_lock);
    l->workers--;
    g_mutex_unlock(&pool_lock);
}

void loop_pool_wake(LoopPoolLoop *l)
{
    if (!g_atomic_int_exchange(&l->woken, 1)) {
        g_main_context_wakeup(l->ctx);
    }
}

unsigned loop_pool_threads(void)
{
    unsigned n;

    g_mutex_lock(&pool_lock);
    n = n_loops;
    g_mutex_unlock(&pool_lock);
    return n;
}
