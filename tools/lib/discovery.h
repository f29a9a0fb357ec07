/*
 * qemu-oc host tools: finding VMs
 *
 * --qmp-dir DIR: every QMP socket in DIR is a VM named by its file name;
 * inotify reports sockets that appear (the VM is added) and go (it is
 * removed).  --connect URI: the running domains of a libvirt connection
 * (qemu:///system, qemu+ssh://host/system, ...), followed through
 * libvirt's domain lifecycle events; each is reached through libvirt
 * (vm-link-libvirt.c).  Sources can repeat and mix.  The callbacks run
 * in the discovery thread.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_DISCOVERY_H
#define TOOLS_DISCOVERY_H

#include "vm-link.h"

/* A VM appeared: @link is new and taken */
typedef void DiscoveryAddFn(void *opaque, const char *name, const char *where,
                            VmLink *link);
/* VM @name is gone */
typedef void DiscoveryRemoveFn(void *opaque, const char *name);

typedef struct Discovery Discovery;

Discovery *discovery_new(DiscoveryAddFn *add, DiscoveryRemoveFn *remove,
                         void *opaque, const QmpLimits *lim);
/* Watch a directory of QMP sockets; false with @err if it cannot */
bool discovery_add_qmp_dir(Discovery *d, const char *dir, GError **err);
/* Follow a libvirt connection; false with @err if it cannot connect */
bool discovery_add_libvirt(Discovery *d, const char *uri, GError **err);
/* Where QMP sockets are looked for when no source is given */
#define DISCOVERY_DEFAULT_QMP_DIR "/run/qemu-oc/qmp"

/*
 * Add a tool's --qmp-dir and --connect sources (NULL-terminated; both
 * NULL: DISCOVERY_DEFAULT_QMP_DIR).  Each source that fails is reported
 * on stderr, prefixed with @prog.  Returns true if at least one works.
 */
bool discovery_add_sources(Discovery *d, char **qmp_dirs, char **uris,
                           const char *prog);

/* Start the discovery thread (after the sources are added) */
void discovery_start(Discovery *d);
void discovery_free(Discovery *d);

#endif
