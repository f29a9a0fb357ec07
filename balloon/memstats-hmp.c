/*
 * Guest memory statistics on demand: HMP info balloon
 *
 * Waits (at most MEMSTATS_HMP_TIMEOUT) for fresh statistics unless -n;
 * stale statistics are followed by their age.
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
#include "balloon/memstats.h"

/* The line info balloon prints, or the error */
static char *hmp_text(BalloonInfo *info, Error *err)
{
    GString *s = g_string_new(NULL);
    const uint64_t *val;
    bool *has;
    unsigned int i;

    if (!info) {
        g_string_printf(s, "Error: %s\n", error_get_pretty(err));
        error_free(err);
        return g_string_free(s, false);
    }
    g_string_append_printf(s, "balloon: actual=%" PRId64, info->actual >> 20);
    for (i = 0; info->has_stats && i < MEMSTATS_NR; i++) {
        val = memstats_guest_stat(info->stats, i, &has);
        if (*has) {
            g_string_append_printf(s, " %s=%" PRIu64, memstats_names[i], *val);
        }
    }
    if (info->has_stats && !info->fresh) {
        g_string_append_printf(s, " age=%" PRId64, info->age);
    }
    g_string_append_c(s, '\n');
    qapi_free_BalloonInfo(info);
    return g_string_free(s, false);
}

/* The wait ended: the text, built now */
static void hmp_reply(MonitorDeferred *d, bool fresh, BalloonStatsStale why)
{
    Error *err = NULL;
    BalloonInfo *info = memstats_balloon_info(fresh, why, &err);
    g_autofree char *text = hmp_text(info, err);

    monitor_deferred_complete_hmp(d, text);
}

void hmp_info_balloon(Monitor *mon, const QDict *qdict)
{
    bool nowait = qdict_get_try_bool(qdict, "nowait", false);
    BalloonStatsStale why = BALLOON_STATS_STALE_NOT_REQUESTED;
    g_autofree char *text = NULL;
    Error *err = NULL;
    BalloonInfo *info;
    MonitorDeferred *d;

    if (!nowait && memstats_ask(&why)) {
        d = monitor_defer();
        if (d) {
            memstats_wait(d, MEMSTATS_HMP_TIMEOUT, hmp_reply);
            return;
        }
        why = BALLOON_STATS_STALE_PENDING;
    }
    info = memstats_balloon_info(false, why, &err);
    text = hmp_text(info, err);
    monitor_puts(mon, text);
}
