/*
 * qemu-oc-balloond: the daemon's own process, kept out of the squeeze
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <glib.h>

#include "protect.h"

/* Under the OOM killer's -1000 (never) but well below any VM */
#define OOM_SCORE_ADJ "-900"

/*
 * The daemon must outlive the squeeze it relieves: its pages stay in
 * memory (locked as they are touched, so idle thread stacks cost
 * nothing) and the OOM killer picks a VM before it (docs/balloond.md)
 */
void balloond_protect_self(void)
{
    FILE *f;

    if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0) {
        g_warning("mlockall: %s: the daemon's memory may be reclaimed "
                  "under pressure", g_strerror(errno));
    }
    /* (written in place: a file of /proc cannot be replaced) */
    f = fopen("/proc/self/oom_score_adj", "w");
    if (!f || fputs(OOM_SCORE_ADJ, f) < 0 || fclose(f) != 0) {
        g_warning("oom_score_adj: %s: the OOM killer may pick the daemon",
                  g_strerror(errno));
    }
}
