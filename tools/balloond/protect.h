/*
 * qemu-oc-balloond: the daemon's own process, kept out of the squeeze
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_PROTECT_H
#define BALLOOND_PROTECT_H

/*
 * Lock the daemon's pages in memory and make the OOM killer pick a VM
 * before it; a warning for what cannot be done
 */
void balloond_protect_self(void);

#endif
