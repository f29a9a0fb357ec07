/*
 * Deferred completion of monitor commands: hooks for the QMP dispatcher
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MONITOR_DEFERRED_INTERNAL_H
#define MONITOR_DEFERRED_INTERNAL_H

#include "monitor-internal.h"

/* Around the dispatch of one request (no-ops out of coroutine: OOB) */
void monitor_deferred_dispatch_begin(MonitorQMP *mon, QObject *req);
/* True if the handler deferred: drop its reply, keep @mon suspended */
bool monitor_deferred_dispatch_end(MonitorQMP *mon);

/* True while @mon has a deferred QMP request outstanding */
bool monitor_deferred_pending(Monitor *mon);

/*
 * @mon's client went away: its deferred replies are dropped.  Any thread
 * (the monitor I/O thread calls it); takes effect in the main loop.
 */
void monitor_deferred_cancel(Monitor *mon);

/* Before monitors are destroyed: fail every deferred request */
void monitor_deferred_shutdown(void);

#endif
