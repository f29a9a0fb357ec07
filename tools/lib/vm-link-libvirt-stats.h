/*
 * qemu-oc host tools: a libvirt domain read through libvirt's own APIs
 *
 * A monitor passthrough (virDomainQemuMonitorCommand) taints the domain
 * ("custom-monitor"), so the libvirt link sends monitor commands only to
 * domains whose emulator is qemu-oc, and reads every other domain (stock
 * QEMU) with virDomainListGetStats(): the worker's commands are answered
 * in their QMP shape from libvirt's balloon and vCPU statistics.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_VM_LINK_LIBVIRT_STATS_H
#define TOOLS_VM_LINK_LIBVIRT_STATS_H

#include <libvirt/libvirt.h>

#include "vm-link.h"

/*
 * Does domain @dom run qemu-oc?  Told from its emulator, without a
 * monitor command: the emulator's file name starts with "qemu-oc" (the
 * packages' /usr/bin/qemu-oc-system-x86_64); Debian's own
 * /usr/bin/qemu-system-* are stock; any other is qemu-oc if libvirt's
 * capabilities of the emulator (virConnectGetDomainCapabilities, from
 * libvirt's cache of its probe; asked once per connection and emulator)
 * accept qemu-oc's own machine type, pc-i440fx-7.2-oc.
 * -1 with @err if libvirt cannot say; @emulator (may be NULL) gets the
 * emulator's path.
 */
int lv_domain_runs_qemu_oc(virConnectPtr conn, virDomainPtr dom,
                           char **emulator, GError **err);

/*
 * Answer @command for a stock domain from libvirt's statistics, in QMP's
 * shape (a new reference), or NULL with @err: QMP_CLIENT_ERROR_COMMAND
 * for a command that has no such answer
 */
json_object *lv_stats_execute(virDomainPtr dom, const char *command,
                              GError **err);

#endif
