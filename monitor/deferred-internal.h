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

/* The number of @mon's current client session (any thread) */
uint32_t monitor_deferred_session(MonitorQMP *mon);

/*
 * Around the dispatch of one in-band request, received in @session
 * (no-ops out of coroutine: OOB).  @req is NULL for a request that
 * failed to parse.
 */
void monitor_deferred_dispatch_begin(MonitorQMP *mon, QObject *req,
                                     uint32_t session);
/*
 * True if the reply must be dropped: the handler deferred it (then @mon
 * stays suspended while the deferral is pending), or its client is gone.
 */
bool monitor_deferred_dispatch_end(MonitorQMP *mon);

/* True while @mon has a deferred QMP request outstanding */
bool monitor_deferred_pending(Monitor *mon);

/*
 * @mon's client went away: its deferred replies are dropped, and its
 * requests still to be dispatched get no reply.  Called from the
 * monitor's CHR_EVENT_CLOSED handler, in the thread that reads it.
 */
void monitor_deferred_client_gone(Monitor *mon);

/* Before monitors are destroyed: fail every deferred request */
void monitor_deferred_shutdown(void);

#endif
