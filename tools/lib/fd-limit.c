/*
 * qemu-oc host tools: room for a descriptor per VM
 *
 * See fd-limit.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <sys/resource.h>

#include <glib.h>

#include "fd-limit.h"

uint64_t fd_limit_raise(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) < 0) {
        return 0;
    }
    if (r.rlim_cur < r.rlim_max) {
        rlim_t was = r.rlim_cur;

        r.rlim_cur = r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r) < 0) {
            g_message("open files: cannot raise the limit from %llu to "
                      "%llu (%s): at most about that many VMs",
                      (unsigned long long)was,
                      (unsigned long long)r.rlim_max, g_strerror(errno));
            r.rlim_cur = was;
        }
    }
    return r.rlim_cur;
}
