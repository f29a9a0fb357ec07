/*
 * qemu-oc-balloond: many requests for one piece of work, made once
 *
 * See coalesce.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "coalesce.h"

static gboolean coalesce_run(gpointer opaque)
{
    Coalesce *c = opaque;
    int64_t now = g_get_monotonic_time();

    if (now < c->next_us) {
        g_timeout_add((c->next_us - now + 999) / 1000, coalesce_run, c);
        return G_SOURCE_REMOVE;
    }
    /* (a request from now on schedules the next run) */
    g_atomic_int_set(&c->scheduled, 0);
    if (g_atomic_int_exchange(&c->wanted, 0)) {
        c->work();
        c->next_us = g_get_monotonic_time() +
                     MAX(c->min_gap_us,
                         c->cost_factor * (g_get_monotonic_time() - now));
    }
    return G_SOURCE_REMOVE;
}

void coalesce_request(Coalesce *c)
{
    g_atomic_int_set(&c->wanted, 1);
    if (g_atomic_int_compare_and_exchange(&c->scheduled, 0, 1)) {
        /* (always through the main loop, whichever thread asks) */
        GSource *idle = g_idle_source_new();

        g_source_set_priority(idle, G_PRIORITY_HIGH_IDLE);
        g_source_set_callback(idle, coalesce_run, c, NULL);
        g_source_attach(idle, NULL);
        g_source_unref(idle);
    }
}
