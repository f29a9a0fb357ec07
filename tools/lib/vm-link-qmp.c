/*
 * qemu-oc host tools: a VM link over a QMP server socket
 *
 * A thin VmLink on qmp-client.c.  The link owns at most one client; a
 * failure other than a QMP error reply makes the connection unusable,
 * so the link drops it at once and later calls say "not connected"
 * until open() connects again.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE     /* struct ucred */
#include <sys/socket.h>

#include "vm-link.h"

typedef struct VmLinkQmp {
    VmLink link;
    char *path;
    QmpLimits lim;
    QmpClient *client;
} VmLinkQmp;

static VmLinkQmp *to_qmp(VmLink *l)
{
    return (VmLinkQmp *)l;
}

static void link_qmp_event(void *opaque, const char *event, json_object *data,
                           int64_t timestamp_us)
{
    VmLink *l = opaque;

    if (l->event_fn) {
        l->event_fn(l->event_opaque, event, data, timestamp_us);
    }
}

static void link_qmp_close(VmLink *l)
{
    VmLinkQmp *q = to_qmp(l);

    qmp_client_free(q->client);
    q->client = NULL;
}

/*
 * Drop the connection after an error that left it unusable (the client
 * closes its socket on every error but a QMP error reply)
 */
static void link_qmp_check(VmLink *l)
{
    if (qmp_client_fd(to_qmp(l)->client) < 0) {
        link_qmp_close(l);
    }
}

static bool link_qmp_connected(VmLink *l, GError **err)
{
    VmLinkQmp *q = to_qmp(l);

    if (!q->client) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CLOSED,
                    "%s: not connected", q->path);
        return false;
    }
    return true;
}

/* @timeout_ms bounds connect + greeting + negotiation; <= 0: the limits' */
static bool link_qmp_open(VmLink *l, int timeout_ms, GError **err)
{
    VmLinkQmp *q = to_qmp(l);
    QmpLimits lim = q->lim;

    link_qmp_close(l);
    if (timeout_ms > 0) {
        lim.greeting_ms = timeout_ms;
    }
    q->client = qmp_client_connect(q->path, &lim, link_qmp_event, l, err);
    return q->client != NULL;
}

static json_object *link_qmp_execute(VmLink *l, const char *command,
                                     json_object *args, int timeout_ms,
                                     GError **err)
{
    json_object *ret;

    if (!link_qmp_connected(l, err)) {
        json_object_put(args);
        return NULL;
    }
    ret = qmp_client_execute(to_qmp(l)->client, command, args, timeout_ms,
                             err);
    if (!ret) {
        link_qmp_check(l);
    }
    return ret;
}

static bool link_qmp_wait_events(VmLink *l, int timeout_ms, GError **err)
{
    if (!link_qmp_connected(l, err)) {
        return false;
    }
    if (!qmp_client_wait_events(to_qmp(l)->client, timeout_ms, err)) {
        link_qmp_check(l);
        return false;
    }
    return true;
}

static int link_qmp_fd(VmLink *l)
{
    VmLinkQmp *q = to_qmp(l);

    return q->client ? qmp_client_fd(q->client) : -1;
}

/* The peer of a unix socket is the QEMU process itself */
static int link_qmp_pid(VmLink *l)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd = link_qmp_fd(l);

    if (fd < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        return 0;
    }
    return cred.pid;
}

static const char *link_qmp_socket_path(VmLink *l, QmpLimits *lim)
{
    VmLinkQmp *q = to_qmp(l);

    *lim = q->lim;
    return q->path;
}

static void link_qmp_free(VmLink *l)
{
    VmLinkQmp *q = to_qmp(l);

    link_qmp_close(l);
    g_free(q->path);
    g_free(q);
}

static const VmLinkOps link_qmp_ops = {
    .open = link_qmp_open,
    .execute = link_qmp_execute,
    .wait_events = link_qmp_wait_events,
    .fd = link_qmp_fd,
    .pid = link_qmp_pid,
    .socket_path = link_qmp_socket_path,
    .close = link_qmp_close,
    .free = link_qmp_free,
};

VmLink *vm_link_qmp_new(const char *path, const QmpLimits *lim)
{
    VmLinkQmp *q = g_new0(VmLinkQmp, 1);

    q->link.ops = &link_qmp_ops;
    q->path = g_strdup(path);
    q->lim = lim ? *lim : qmp_default_limits;
    return &q->link;
}
