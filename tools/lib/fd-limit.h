/*
 * qemu-oc host tools: room for a descriptor per VM
 *
 * A collector holds a socket per VM, and a service starts with a soft
 * limit of 1,024 open files (systemd's default, kept for programs that
 * still use select()): a host of 1,000 VMs would run out.  The tools
 * poll() (GLib), so the soft limit is raised to the hard one at start,
 * as systemd advises such programs to do.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_FD_LIMIT_H
#define TOOLS_FD_LIMIT_H

#include <stdint.h>

/* Raise the soft RLIMIT_NOFILE to the hard one; the soft limit now */
uint64_t fd_limit_raise(void);

#endif
