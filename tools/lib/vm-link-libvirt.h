/*
 * qemu-oc host tools: a VmLink over a libvirt domain
 *
 * Commands go through virDomainQemuMonitorCommand(), events through
 * virConnectDomainQemuMonitorEventRegister(), both on a connection the
 * caller opened (discovery.c) after vm_link_libvirt_init().
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_VM_LINK_LIBVIRT_H
#define TOOLS_VM_LINK_LIBVIRT_H

#include <libvirt/libvirt.h>

#include "vm-link.h"

/*
 * Once per process, before the first virConnectOpen(): initialize
 * libvirt, silence its default error printer (errors come back as
 * GErrors) and run its default event loop in a thread of its own.
 * Later calls return the first call's result.
 */
bool vm_link_libvirt_init(GError **err);

/*
 * A link to domain @dom of @conn (both referenced, not taken).  @lim
 * bounds replies and events (NULL: qmp_default_limits).
 */
VmLink *vm_link_libvirt_new(virConnectPtr conn, virDomainPtr dom,
                            const QmpLimits *lim);

#endif
