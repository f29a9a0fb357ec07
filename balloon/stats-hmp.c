/*
 * Guest memory statistics on demand: HMP info balloon
 *
 * Waits (at most BALLOON_STATS_HMP_TIMEOUT) for fresh statistics unless -n;
 * stale statistics are followed by their age.  The line is printed from
 * the answer's statistics as the device parsed them.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qmp/qdict.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "balloon/stats.h"

/* The line info balloon prints for @a, or its error */
static char *hmp_text(const BalloonStatsAnswer *a)
{
    GString *s = g_string_new(NULL);
    unsigned int i;

    if (a->err) {
        g_string_printf(s, "Error: %s\n", error_get_pretty(a->err));
        return g_string_free(s, false);
    }
    g_string_append_printf(s, "balloon: actual=%" PRId64, a->actual >> 20);
    for (i = 0; a->stats && i < BALLOON_STATS_NR; i++) {
        if (a->stats->reported & (1u << i)) {
            g_string_append_printf(s, " %s=%" PRIu64, balloon_stats_names[i],
                                   a->stats->val[i]);
        }
    }
    if (a->stats && !a->fresh) {
        g_string_append_printf(s, " age=%" PRId64, a->age_ms);
    }
    g_string_append_c(s, '\n');
    return g_string_free(s, false);
}

/* The wait ended: the text */
static void hmp_reply(MonitorDeferred *d, const BalloonStatsAnswer *a)
{
    g_autofree char *text = hmp_text(a);

    monitor_deferred_complete_hmp(d, text);
}

void hmp_info_balloon(Monitor *mon, const QDict *qdict)
{
    bool nowait = qdict_get_try_bool(qdict, "nowait", false);
    BalloonStatsStale why = BALLOON_STATS_STALE_NOT_REQUESTED;
    g_autofree char *text = NULL;
    BalloonStatsAnswer a = {};
    MonitorDeferred *d;

    if (!nowait && balloon_stats_ask(&why)) {
        d = monitor_defer();
        if (d) {
            balloon_stats_wait(d, BALLOON_STATS_HMP_TIMEOUT, hmp_reply);
            return;
        }
        why = BALLOON_STATS_STALE_PENDING;
    }
    balloon_stats_answer_now(&a, why);
    text = hmp_text(&a);
    balloon_stats_answer_clear(&a);
    monitor_puts(mon, text);
}
