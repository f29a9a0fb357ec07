/*
 * qemu-oc host tools: the VMs of a host (or of several), one worker each
 *
 * Discovery adds and removes VMs; the fleet starts and stops their
 * workers.  A reader lists the latest snapshots without waiting for any
 * worker.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_FLEET_H
#define TOOLS_FLEET_H

#include "discovery.h"
#include "vm-worker.h"

typedef struct Fleet Fleet;

Fleet *fleet_new(const VmWorkerConfig *cfg, const QmpLimits *lim,
                 VmWorkerNotifyFn *notify, void *opaque);
/* The discovery that feeds the fleet: add sources, then fleet_start() */
Discovery *fleet_discovery(Fleet *f);
void fleet_start(Fleet *f);

/* The latest snapshot of every VM, sorted by name (unref each, free) */
GPtrArray *fleet_snapshots(Fleet *f);

/*
 * VM @name's worker sets its balloon (vm_worker_set_balloon); false if
 * there is no such VM
 */
bool fleet_set_balloon(Fleet *f, const char *name, uint64_t bytes,
                       VmWorkerBalloonFn *done, void *opaque);

/*
 * VM @name's worker pauses or resumes its vCPUs (vm_worker_set_running);
 * false if there is no such VM
 */
bool fleet_set_running(Fleet *f, const char *name, bool running,
                       VmWorkerRunFn *done, void *opaque);

/* VM @name's worker queries now; false if there is no such VM */
bool fleet_kick(Fleet *f, const char *name);

/* Every worker queries now (e.g. the host came under pressure) */
void fleet_kick_all(Fleet *f);

void fleet_free(Fleet *f);

#endif
