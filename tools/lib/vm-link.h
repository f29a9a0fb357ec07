/*
 * qemu-oc host tools: how a worker reaches its VM
 *
 * Two kinds: a QMP socket (vm-link-qmp.c, on qmp-client.c) and a libvirt
 * domain (vm-link-libvirt.c: virDomainQemuMonitorCommand for commands,
 * virConnectDomainQemuMonitorEventRegister for events), so that a fleet
 * is reached through libvirt's own transport.  A link's calls are made
 * one at a time (a worker's jobs, vm-worker-jobs.c), but for
 * wait_events(0) on a link with an fd, which may run beside another
 * call.  A QMP socket link says its path (socket_path): the worker then
 * reaches the socket on its own loop (vm-worker-qmp.c).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_VM_LINK_H
#define TOOLS_VM_LINK_H

#include "qmp-client.h"

typedef struct VmLink VmLink;

typedef struct VmLinkOps {
    /* (Re)connect, within @timeout_ms; false with @err set */
    bool (*open)(VmLink *l, int timeout_ms, GError **err);
    /* As qmp_client_execute(); @args taken */
    json_object *(*execute)(VmLink *l, const char *command,
                            json_object *args, int timeout_ms, GError **err);
    /* Dispatch events to l->event_fn for at most @timeout_ms */
    bool (*wait_events)(VmLink *l, int timeout_ms, GError **err);
    /*
     * Set the balloon target to @bytes (optional: NULL means QMP
     * "balloon"; libvirt uses virDomainSetMemory)
     */
    bool (*set_balloon)(VmLink *l, uint64_t bytes, int timeout_ms,
                        GError **err);
    /*
     * Pause (@running false) or resume the VM's vCPUs (optional: NULL
     * means QMP "stop" and "cont"; libvirt uses virDomainSuspend and
     * virDomainResume)
     */
    bool (*set_running)(VmLink *l, bool running, int timeout_ms,
                        GError **err);
    /*
     * A file descriptor that is readable when events may be waiting
     * (optional: without it, wait_events is called in slices)
     */
    int (*fd)(VmLink *l);
    /*
     * The VM's QEMU process, or 0 if unknown (optional): its memory
     * cgroups are the VM's memory domains
     */
    int (*pid)(VmLink *l);
    /*
     * A QMP server socket the worker may reach on its own event loop
     * instead of through this link's blocking calls (optional): its
     * path, and the limits in @lim
     */
    const char *(*socket_path)(VmLink *l, QmpLimits *lim);
    /* Drop the connection (open may follow) */
    void (*close)(VmLink *l);
    void (*free)(VmLink *l);
} VmLinkOps;

struct VmLink {
    const VmLinkOps *ops;
    QmpEventFn *event_fn;       /* set by the worker before open */
    void *event_opaque;
};

/* A QMP server socket */
VmLink *vm_link_qmp_new(const char *path, const QmpLimits *lim);

static inline bool vm_link_open(VmLink *l, int timeout_ms, GError **err)
{
    return l->ops->open(l, timeout_ms, err);
}

static inline json_object *vm_link_execute(VmLink *l, const char *command,
                                           json_object *args, int timeout_ms,
                                           GError **err)
{
    return l->ops->execute(l, command, args, timeout_ms, err);
}

static inline bool vm_link_wait_events(VmLink *l, int timeout_ms,
                                       GError **err)
{
    return l->ops->wait_events(l, timeout_ms, err);
}

static inline bool vm_link_set_balloon(VmLink *l, uint64_t bytes,
                                       int timeout_ms, GError **err)
{
    json_object *args, *r;

    if (l->ops->set_balloon) {
        return l->ops->set_balloon(l, bytes, timeout_ms, err);
    }
    args = json_object_new_object();
    json_object_object_add(args, "value", json_object_new_int64(bytes));
    r = l->ops->execute(l, "balloon", args, timeout_ms, err);
    json_object_put(r);
    return r != NULL;
}

static inline bool vm_link_set_running(VmLink *l, bool running,
                                       int timeout_ms, GError **err)
{
    json_object *r;

    if (l->ops->set_running) {
        return l->ops->set_running(l, running, timeout_ms, err);
    }
    r = l->ops->execute(l, running ? "cont" : "stop", NULL, timeout_ms, err);
    json_object_put(r);
    return r != NULL;
}

static inline int vm_link_fd(VmLink *l)
{
    return l->ops->fd ? l->ops->fd(l) : -1;
}

static inline int vm_link_pid(VmLink *l)
{
    return l->ops->pid ? l->ops->pid(l) : 0;
}

static inline const char *vm_link_socket_path(VmLink *l, QmpLimits *lim)
{
    return l->ops->socket_path ? l->ops->socket_path(l, lim) : NULL;
}

static inline void vm_link_close(VmLink *l)
{
    l->ops->close(l);
}

static inline void vm_link_free(VmLink *l)
{
    if (l) {
        l->ops->free(l);
    }
}

#endif
