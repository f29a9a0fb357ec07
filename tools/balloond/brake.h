/*
 * qemu-oc-balloond: the brake, applied
 *
 * policy_brake() decides which VMs to pause; this pauses and resumes
 * them through their workers, logs each change, and keeps the names of
 * the VMs it holds paused in a state file (--state-file), so that a
 * daemon that died with a VM braked is undone by the next one: a VM
 * named there is resumed when it first appears.  A daemon that stops
 * resumes every VM it holds first.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_BRAKE_H
#define BALLOOND_BRAKE_H

#include <stdio.h>
#include "fleet.h"
#include "policy.h"

typedef struct Brakes Brakes;

/*
 * @state_path may be NULL (no state file); @log_json and @log_lock: the
 * daemon's JSON log and the lock of its log lines.  NULL with @err if the
 * state file cannot be read.
 */
Brakes *brakes_new(Fleet *fleet, const char *state_path, bool dry_run,
                   FILE *log_json, GMutex *log_lock, GError **err);

/* The brake's inputs of VM @name for the plan (braked_ms, released_ms) */
void brakes_input(Brakes *b, const char *name, PolicyVm *in);

/*
 * Pause and resume as decided (@names, @in and @d: @n VMs), then log the
 * changes (one plan at a time)
 */
void brakes_apply(Brakes *b, const char *const *names, const PolicyVm *in,
                  const PolicyBrakeDecision *d, unsigned n, int64_t now_ms);

/* VM @name is there: resumed if the state file says it was left braked */
void brakes_seen(Brakes *b, const char *name);

/* Whether a VM is braked now (the plan must be made again soon) */
bool brakes_any(Brakes *b);

/* For the metrics: whether @name is braked, and how often it was */
void brakes_get(Brakes *b, const char *name, bool *braked,
                uint64_t *count);

/* Resume every braked VM, waiting for them at most @timeout_ms */
void brakes_release_all(Brakes *b, int timeout_ms);

/* After brakes_release_all(), with no resume request pending */
void brakes_free(Brakes *b);

#endif
