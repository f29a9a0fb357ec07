/*
 * qemu-oc host tools: one worker per VM, on a shared event loop
 *
 * The worker owns its VM's connection: every interval it asks
 * query-balloon {refresh: async} (the fresh statistics arrive later as
 * BALLOON_STATS, never waited for) and query-vcpu-runstates, and
 * publishes a new immutable VmSnapshot.  A request that misses its
 * deadline marks the VM unresponsive (since when) and drops the
 * connection; the worker reconnects with exponential backoff (capped)
 * and keeps trying, and a VM that answers again is responsive again.
 * A reader takes the latest snapshot without ever waiting for the
 * worker: the pointer is swapped under a mutex held for nanoseconds.
 *
 * Workers are not threads: up to 64 share a loop thread (loop-pool.h),
 * a QMP socket is read on the loop itself, a link whose calls block
 * (libvirt) makes each call on a pool thread (vm-worker-priv.h says
 * how).  Callbacks (notify, done) run on the worker's loop thread.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_VM_WORKER_H
#define TOOLS_VM_WORKER_H

#include "vm-link.h"
#include "vm-snapshot.h"

typedef struct VmWorkerConfig {
    int interval_ms;        /* between two rounds of queries */
    int timeout_ms;         /* per request, and to connect */
    int backoff_max_ms;     /* reconnect delay cap */
} VmWorkerConfig;

extern const VmWorkerConfig vm_worker_default_config;

typedef struct VmWorker VmWorker;

/* Called on the worker's loop thread after each publication (or NULL) */
typedef void VmWorkerNotifyFn(void *opaque, VmWorker *w);

/* Start a worker for VM @name over @link (taken) */
VmWorker *vm_worker_start(const char *name, const char *where, VmLink *link,
                          const VmWorkerConfig *cfg,
                          VmWorkerNotifyFn *notify, void *opaque);

/* The latest snapshot (a reference; never NULL) */
VmSnapshot *vm_worker_snapshot(VmWorker *w);

const char *vm_worker_name(VmWorker *w);

/* Ask the worker to query now instead of at the end of its interval */
void vm_worker_kick(VmWorker *w);

/* A balloon request ended (on the loop thread): ok, or @err */
typedef void VmWorkerBalloonFn(void *opaque, VmWorker *w, uint64_t bytes,
                               const GError *err);

/*
 * Set the VM's balloon target to @bytes: the worker does it on its
 * loop at its next wake-up (a later request replaces one not yet made),
 * then calls @done.  Never waits.
 */
void vm_worker_set_balloon(VmWorker *w, uint64_t bytes,
                           VmWorkerBalloonFn *done, void *opaque);

/* A pause or resume request ended (on the loop thread): ok, or @err */
typedef void VmWorkerRunFn(void *opaque, VmWorker *w, bool running,
                           const GError *err);

/*
 * Pause (@running false) or resume the VM's vCPUs: as
 * vm_worker_set_balloon(), made before a balloon request waiting with it
 */
void vm_worker_set_running(VmWorker *w, bool running, VmWorkerRunFn *done,
                           void *opaque);

/*
 * Stop the worker: it leaves its loop at the next deadline at the
 * latest; the thread is joined and freed in the background, so this
 * never waits for a stuck VM.
 */
void vm_worker_stop(VmWorker *w);

/*
 * At exit: wait at most @timeout_ms for every stopped worker to end (so
 * that their connections close cleanly: libvirt's, for one, is closed
 * with a goodbye only once the last link lets it go); false if some did
 * not (a VM stuck in a call).
 */
bool vm_worker_wait_all(int timeout_ms);

#endif
