/*
 * qemu-oc-balloond: many requests for one piece of work, made once
 *
 * Any thread may ask for the work; it is done in the thread of the
 * default GMainContext (the daemon's main loop), once for every request
 * made meanwhile, at least min_gap_us after the last time and at least
 * cost_factor times the last run's duration after it ended: so the work
 * takes at most 1/cost_factor of a core however often it is asked for,
 * and whoever asks never waits for it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_COALESCE_H
#define BALLOOND_COALESCE_H

#include <stdint.h>
#include <glib.h>

typedef struct Coalesce {
    void (*work)(void);
    int64_t min_gap_us;
    int64_t cost_factor;
    /* state (zero at start) */
    gint wanted;                /* asked for since a run began */
    gint scheduled;             /* a run is on its way */
    int64_t next_us;            /* the next run not before (main loop) */
} Coalesce;

/* Ask for the work (any thread) */
void coalesce_request(Coalesce *c);

#endif
