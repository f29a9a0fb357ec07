/*
 * qemu-oc host tools: event-loop threads, each for up to 64 VMs
 *
 * Many VMs share few threads: each loop thread runs a GMainLoop on its
 * own GMainContext for the life of the process, and a VM's worker lives
 * on one of them.  GLib's loop polls every descriptor and checks every
 * source of its context at each wake-up, so a wake-up costs in
 * proportion to the VMs of its loop: a loop takes at most
 * LOOP_POOL_VMS_PER_LOOP workers, and a new thread starts when every
 * loop is full, up to LOOP_POOL_MAX and if a descriptor is left for the
 * new loop's wake-up; otherwise the least busy loop is shared.
 * 1,000 VMs: 16 threads.  Nothing on a loop may block: a call that can
 * block runs on a thread of its own (vm-worker-jobs.c).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_LOOP_POOL_H
#define TOOLS_LOOP_POOL_H

#include <glib.h>

#define LOOP_POOL_VMS_PER_LOOP 64
#define LOOP_POOL_MAX 256

typedef struct LoopPoolLoop LoopPoolLoop;

/* A loop for one more worker: the least busy, or a new one (any thread) */
LoopPoolLoop *loop_pool_take(void);

/* Its context (a borrowed reference, valid for the process's life) */
GMainContext *loop_pool_context(LoopPoolLoop *l);

/* The worker left @l (any thread) */
void loop_pool_release(LoopPoolLoop *l);

/*
 * Wake @l's thread (any thread): a source that checks a flag in its
 * prepare() sees it set before the wake.  Many wakes before the loop
 * looks again cost one write: a plan that asks 1,000 VMs for something
 * wakes each loop thread once, not once per VM.
 */
void loop_pool_wake(LoopPoolLoop *l);

/* Loop threads started so far */
unsigned loop_pool_threads(void);

#endif
