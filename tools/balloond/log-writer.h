/*
 * qemu-oc-balloond: log lines written by a thread of their own
 *
 * A plan at 1,000 VMs may log a decision for each of them; formatted
 * and written on the deciding thread (a stderr line and a flushed JSON
 * line each) that took longer than the plan itself, and every report
 * waiting for the next plan waited for it.  The deciding thread queues
 * a call instead; the writer thread makes it, in order, and flushes the
 * JSON log once the queue is empty.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_LOG_WRITER_H
#define BALLOOND_LOG_WRITER_H

#include <stdio.h>
#include <glib.h>

typedef struct LogWriter LogWriter;

/* @json (may be NULL) is written under @json_lock, which others share */
LogWriter *log_writer_start(FILE *json, GMutex *json_lock);

/*
 * @fn(@data) runs on the writer thread, then @free(@data); @fn may
 * write to the JSON log with log_writer_json() (no flush needed)
 */
void log_writer_call(LogWriter *l, GFunc fn, gpointer data,
                     GDestroyNotify free);

/* A JSON line (written from a call made by the writer thread) */
void log_writer_json(LogWriter *l, const char *line);

/* Make every call queued so far, flush, and stop the thread */
void log_writer_stop(LogWriter *l);

#endif
