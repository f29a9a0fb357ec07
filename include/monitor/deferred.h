/*
 * Deferred completion of in-band monitor commands
 *
 * A command handler that has to wait for something (a guest, a device)
 * calls monitor_defer(), starts the work and returns at once.  The asking
 * monitor stays suspended: its later requests wait, so its replies keep
 * the order of its requests.  Every other QMP and HMP monitor, and the
 * main loop, keep being served.  When the work is done, the owner of the
 * MonitorDeferred completes it, and the reply goes out then.
 *
 * Works for QMP in-band commands, for HMP commands on an HMP monitor,
 * and for HMP commands run through QMP human-monitor-command (the
 * QMP request is deferred and gets the HMP text as its return value).
 *
 * The owner must complete every MonitorDeferred exactly once, and must
 * bound its wait (a timer): nothing here times out on its own.  If the
 * asking client disconnects, or QEMU shuts down, the deferral becomes
 * orphaned: completing it is still required and merely frees it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MONITOR_DEFERRED_H
#define MONITOR_DEFERRED_H

#include "qapi/qmp/qobject.h"

typedef struct MonitorDeferred MonitorDeferred;

/*
 * Take over the reply of the command being handled.
 * Call only from a monitor command handler.  Returns NULL when the
 * current request cannot be deferred (out-of-band, or no monitor asked):
 * the handler must then answer at once as usual.  Otherwise the handler
 * returns normally (with any value: it is discarded) and the reply is
 * whatever is passed to a completion function later.
 */
MonitorDeferred *monitor_defer(void);

/*
 * Complete a QMP deferral: reply @ret (reference taken) or, if @err is
 * set, the error (taken).  Frees @d.
 */
void monitor_deferred_complete_qmp(MonitorDeferred *d, QObject *ret,
                                   Error *err);

/* Complete an HMP deferral with the text the command prints.  Frees @d. */
void monitor_deferred_complete_hmp(MonitorDeferred *d, const char *text);

#endif
