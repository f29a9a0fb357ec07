/*
 * qemu-oc host tools: a VmLink over a libvirt domain
 *
 * Which domains get monitor commands: only those that run qemu-oc, told
 * from the domain's emulator once per link (vm-link-libvirt-stats.c),
 * because libvirt taints a domain that is sent one ("custom-monitor").
 * A domain of stock QEMU is read through libvirt's own statistics
 * (virDomainListGetStats) in the same QMP shapes, and gets no monitor
 * event callback.
 *
 * execute: the QMP command is built with json-c and sent with
 * virDomainQemuMonitorCommand(); its reply is parsed within the limits
 * (QmpLimits): {"return": ...} is the result, {"error": ...} a
 * QMP_CLIENT_ERROR_COMMAND, anything else a _PROTOCOL error.  A libvirt
 * failure is _CLOSED when the connection is dead or the domain no longer
 * runs, _TIMEOUT when libvirt gave up waiting for the domain's job lock,
 * _CONNECT otherwise, with libvirt's message.
 *
 * Note: libvirt calls have no timeout of their own, so the timeout_ms
 * arguments are not used here.  While QEMU or libvirtd does not answer,
 * virDomainQemuMonitorCommand() blocks the calling thread (libvirt's
 * other calls on that domain wait behind it for its job lock and give up
 * after 30 s); open() asks libvirtd whether the domain runs.  The worker
 * makes every call a job on a pool thread (vm-worker-jobs.c), and the
 * deadline is the worker's: a call that has not returned timeout_ms
 * (+ 250 ms) after it began makes the VM's snapshot unresponsive ("no
 * answer within N ms (the call still waits)") for every reader, while
 * its thread waits on; no other VM waits, and vm_worker_stop() never
 * waits for it.  A dead
 * remote peer is detected by libvirt's keepalive (discovery.c turns it
 * on), which fails the pending call.
 *
 * Events: open() registers a BALLOON_STATS callback for the domain; it
 * runs in libvirt's event-loop thread (vm_link_libvirt_init()) and pushes
 * a copy into the link's queue (bounded: beyond LV_QUEUE_MAX pending
 * events, new ones are dropped) and makes the link's fd (an eventfd)
 * readable; wait_events() pops them with its timeout and hands them to
 * l->event_fn in the calling thread.  wait_events(0) never blocks and
 * may run beside a call in flight on another thread: it touches only
 * the queue and virConnectIsAlive(), which asks libvirtd nothing.
 *
 * pid: on a local qemu:///system or qemu:///session connection, the
 * domain's QEMU process from libvirt's pid file, checked against the
 * process's -name (libvirt's public API does not give it).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "vm-link-libvirt.h"
#include "vm-link-libvirt-stats.h"
#include "qmp-wire.h"

/* Pending events per link; beyond that the worker is not keeping up */
#define LV_QUEUE_MAX 4096
/* wait_events() checks the connection at least this often */
#define LV_ALIVE_CHECK_US (500 * 1000)

/* What the event callback shares with the link (reference counted) */
typedef struct LvSink {
    GAsyncQueue *queue;     /* LvEvent */
    int efd;                /* an eventfd, readable while events may wait */
} LvSink;

typedef struct LvEvent {
    char *event;
    char *details;          /* JSON of the event's data; may be NULL */
    int64_t timestamp_us;
} LvEvent;

typedef struct VmLinkLibvirt {
    VmLink link;
    virConnectPtr conn;
    virDomainPtr dom;
    QmpLimits lim;
    LvSink *sink;
    int event_id;           /* monitor event callback, -1 if none */
    int qemu_oc;            /* runs qemu-oc: 1, 0 (stock), -1 unknown */
} VmLinkLibvirt;

static bool lv_init_ok;
static char *lv_init_error;

static void lv_quiet_error(void *opaque, virErrorPtr error)
{
    (void)opaque;
    (void)error;
}

static gpointer lv_event_loop(gpointer opaque)
{
    (void)opaque;
    for (;;) {
        if (virEventRunDefaultImpl() < 0) {
            g_usleep(100 * 1000);
        }
    }
    return NULL;
}

static void lv_init_once(void)
{
    if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
        virErrorPtr e = virGetLastError();

        lv_init_error = g_strdup(e && e->message ? e->message :
                                 "cannot initialize libvirt");
        return;
    }
    virSetErrorFunc(NULL, lv_quiet_error);
    g_thread_unref(g_thread_new("libvirt-events", lv_event_loop, NULL));
    lv_init_ok = true;
}

bool vm_link_libvirt_init(GError **err)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        lv_init_once();
        g_once_init_leave(&done, 1);
    }
    if (!lv_init_ok) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "libvirt: %s", lv_init_error);
    }
    return lv_init_ok;
}

static VmLinkLibvirt *lv_of(VmLink *l)
{
    return (VmLinkLibvirt *)l;      /* link is the first member */
}

static void lv_event_free(gpointer p)
{
    LvEvent *e = p;

    g_free(e->event);
    g_free(e->details);
    g_free(e);
}

static void lv_sink_clear(gpointer p)
{
    LvSink *s = p;

    g_async_queue_unref(s->queue);
    close(s->efd);
}

/* Say that events wait (any thread) */
static void lv_sink_signal(LvSink *s)
{
    if (eventfd_write(s->efd, 1) < 0) {
        /* the counter is saturated: readable anyway */
    }
}

static void lv_sink_release(void *opaque)
{
    g_atomic_rc_box_release_full(opaque, lv_sink_clear);
}

static void lv_flush(LvSink *s)
{
    LvEvent *e;

    while ((e = g_async_queue_try_pop(s->queue))) {
        lv_event_free(e);
    }
}

/* In libvirt's event-loop thread */
static void lv_on_event(virConnectPtr conn, virDomainPtr dom,
                        const char *event, long long seconds,
                        unsigned int micros, const char *details,
                        void *opaque)
{
    LvSink *s = opaque;
    LvEvent *e;

    (void)conn;
    (void)dom;
    if (g_async_queue_length(s->queue) >= LV_QUEUE_MAX) {
        return;
    }
    e = g_new0(LvEvent, 1);
    e->event = g_strdup(event);
    e->details = g_strdup(details);
    e->timestamp_us = seconds < 0 ? g_get_real_time() :
                      seconds * G_USEC_PER_SEC + micros;
    g_async_queue_push(s->queue, e);
    lv_sink_signal(s);
}

/*
 * Set @err from libvirt's last error, after a failed call about @what.
 * The code says whether the domain (or the connection) is gone.
 */
static void lv_set_error(VmLinkLibvirt *v, GError **err, const char *what)
{
    virErrorPtr e = virGetLastError();
    g_autofree char *msg = g_strdup(e && e->message ? e->message :
                                    "unknown libvirt error");
    int vcode = e ? e->code : VIR_ERR_OK;
    int code = QMP_CLIENT_ERROR_CONNECT;

    if (vcode == VIR_ERR_OPERATION_TIMEOUT) {
        code = QMP_CLIENT_ERROR_TIMEOUT;
    } else if (virConnectIsAlive(v->conn) != 1 ||
               virDomainIsActive(v->dom) != 1) {
        code = QMP_CLIENT_ERROR_CLOSED;
    }
    g_set_error(err, QMP_CLIENT_ERROR, code, "%s: %s", what, msg);
}

/*
 * Text from libvirt (a reply, an event's data), parsed as the QMP client
 * parses a socket's messages (qmp-wire.h), within the limits; @what
 * prefixes the error
 */
static json_object *lv_parse(VmLinkLibvirt *v, const char *what,
                             const char *text, GError **err)
{
    size_t len = strlen(text);
    g_autoptr(GError) e = NULL;
    json_tokener *tok;
    json_object *obj;

    while (len && g_ascii_isspace(text[len - 1])) {
        len--;
    }
    if (len > v->lim.max_line) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "%s: longer than %zu bytes", what, v->lim.max_line);
        return NULL;
    }
    tok = json_tokener_new_ex(v->lim.max_depth);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                                JSON_TOKENER_VALIDATE_UTF8);
    obj = qmp_wire_parse(tok, text, len, v->lim.max_depth, &e);
    json_tokener_free(tok);
    if (!obj) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "%s: %s", what, e->message);
    }
    return obj;
}

static json_object *lv_reply(VmLinkLibvirt *v, const char *command,
                             const char *text, GError **err)
{
    json_object *msg = lv_parse(v, command, text, err), *ret;
    QmpMsgKind kind;
    const char *why;

    if (!msg) {
        return NULL;
    }
    why = qmp_wire_check(msg, &kind);
    if (why) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "%s: %s", command, why);
        json_object_put(msg);
        return NULL;
    }
    ret = qmp_wire_reply_value(command, msg, kind, err);
    json_object_put(msg);
    return ret;
}

static json_object *lv_execute(VmLink *l, const char *command,
                               json_object *args, int timeout_ms,
                               GError **err)
{
    VmLinkLibvirt *v = lv_of(l);
    json_object *msg = json_object_new_object();
    char *reply = NULL;
    json_object *ret;
    const char *text;

    (void)timeout_ms;       /* libvirt has none: see the top comment */
    if (!v->qemu_oc) {
        json_object_put(msg);
        json_object_put(args);
        return lv_stats_execute(v->dom, command, err);
    }
    json_object_object_add(msg, "execute", json_object_new_string(command));
    if (args) {
        json_object_object_add(msg, "arguments", args);
    }
    text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
    if (virDomainQemuMonitorCommand(v->dom, text, &reply, 0) < 0) {
        lv_set_error(v, err, command);
        json_object_put(msg);
        return NULL;
    }
    json_object_put(msg);
    ret = lv_reply(v, command, reply, err);
    free(reply);
    return ret;
}

/* libvirt's own way, so that libvirt knows the domain's new size */
static bool lv_set_balloon(VmLink *l, uint64_t bytes, int timeout_ms,
                           GError **err)
{
    VmLinkLibvirt *v = lv_of(l);

    (void)timeout_ms;
    if (virDomainSetMemory(v->dom, bytes / 1024) < 0) {
        lv_set_error(v, err, "virDomainSetMemory");
        return false;
    }
    return true;
}

/* libvirt's own way, so that libvirt knows the domain is paused */
static bool lv_set_running(VmLink *l, bool running, int timeout_ms,
                           GError **err)
{
    VmLinkLibvirt *v = lv_of(l);

    (void)timeout_ms;
    if ((running ? virDomainResume(v->dom) : virDomainSuspend(v->dom)) < 0) {
        lv_set_error(v, err, running ? "virDomainResume" : "virDomainSuspend");
        return false;
    }
    return true;
}

static void lv_close(VmLink *l)
{
    VmLinkLibvirt *v = lv_of(l);

    if (v->event_id >= 0) {
        /* May fail on a dead connection: the callback is gone anyway */
        virConnectDomainQemuMonitorEventDeregister(v->conn, v->event_id);
        v->event_id = -1;
    }
    lv_flush(v->sink);
}

static bool lv_open(VmLink *l, int timeout_ms, GError **err)
{
    VmLinkLibvirt *v = lv_of(l);
    int active;

    (void)timeout_ms;
    lv_close(l);
    active = virDomainIsActive(v->dom);
    if (active < 0) {
        lv_set_error(v, err, virDomainGetName(v->dom));
        return false;
    }
    if (!active) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "domain %s is not running", virDomainGetName(v->dom));
        return false;
    }
    if (v->qemu_oc < 0) {
        v->qemu_oc = lv_domain_runs_qemu_oc(v->conn, v->dom, NULL, err);
        if (v->qemu_oc < 0) {
            return false;
        }
    }
    if (!v->qemu_oc) {
        return true;        /* libvirt's statistics: no monitor events */
    }
    v->event_id = virConnectDomainQemuMonitorEventRegister(
        v->conn, v->dom, "BALLOON_STATS", lv_on_event,
        g_atomic_rc_box_acquire(v->sink), lv_sink_release, 0);
    if (v->event_id < 0) {
        lv_set_error(v, err, "BALLOON_STATS");
        /* libvirt did not take the reference on failure */
        lv_sink_release(v->sink);
        return false;
    }
    return true;
}

static bool lv_dispatch(VmLinkLibvirt *v, LvEvent *e, GError **err)
{
    json_object *data = NULL;

    if (e->details) {
        data = lv_parse(v, e->event, e->details, err);
        if (!data) {
            return false;
        }
        if (!json_object_is_type(data, json_type_object)) {
            g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                        "%s: event data is not an object", e->event);
            json_object_put(data);
            return false;
        }
    }
    if (v->link.event_fn) {
        v->link.event_fn(v->link.event_opaque, e->event, data,
                         e->timestamp_us);
    }
    json_object_put(data);
    return true;
}

static bool lv_wait_events(VmLink *l, int timeout_ms, GError **err)
{
    VmLinkLibvirt *v = lv_of(l);
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    unsigned n = 0;
    eventfd_t count;

    /* (reset before taking: an event pushed after sets it again) */
    if (eventfd_read(v->sink->efd, &count) < 0) {
        /* not set: nothing said since the last time */
    }
    for (;;) {
        gint64 left = deadline - g_get_monotonic_time();
        LvEvent *e;
        bool ok;

        if (virConnectIsAlive(v->conn) != 1) {
            g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CLOSED,
                        "libvirt connection closed");
            return false;
        }
        if (left <= 0) {
            e = g_async_queue_try_pop(v->sink->queue);
        } else {
            e = g_async_queue_timeout_pop(v->sink->queue,
                                          MIN(left, LV_ALIVE_CHECK_US));
        }
        if (!e) {
            if (left <= 0) {
                return true;
            }
            continue;
        }
        ok = lv_dispatch(v, e, err);
        lv_event_free(e);
        if (!ok) {
            return false;
        }
        if (++n >= v->lim.max_events) {
            if (g_async_queue_length(v->sink->queue) > 0) {
                lv_sink_signal(v->sink);    /* the rest, next time */
            }
            return true;
        }
        /* then only what has already arrived: the caller acts on it now */
        deadline = g_get_monotonic_time();
    }
}

/* Whether NUL-separated @cmdline names the domain: -name guest=@name */
static bool lv_cmdline_names(const char *cmdline, size_t len,
                             const char *name)
{
    g_autofree char *want = g_strdup_printf("guest=%s", name);
    const char *p = cmdline, *end = cmdline + len, *prev = NULL;

    for (; p < end; p += strlen(p) + 1) {
        if (prev && !strcmp(prev, "-name") &&
            (!strcmp(p, name) || (g_str_has_prefix(p, want) &&
                                  (p[strlen(want)] == ',' ||
                                   !p[strlen(want)])))) {
            return true;
        }
        prev = p;
    }
    return false;
}

/*
 * The domain's QEMU process on a local qemu:///system or qemu:///session
 * connection: libvirt's pid file for it, checked against the process's
 * command line (-name guest=NAME); 0 if unknown (a remote connection, no
 * pid file, a process that is not this domain's QEMU)
 */
static int lv_pid(VmLink *l)
{
    VmLinkLibvirt *v = lv_of(l);
    const char *name = virDomainGetName(v->dom);
    g_autofree char *uri = virConnectGetURI(v->conn);
    g_autofree char *path = NULL, *text = NULL, *proc = NULL;
    g_autofree char *cmdline = NULL;
    gsize len;
    gint64 pid;

    if (!uri || !name) {
        return 0;
    }
    if (!strcmp(uri, "qemu:///system")) {
        path = g_strdup_printf("/run/libvirt/qemu/%s.pid", name);
    } else if (!strcmp(uri, "qemu:///session")) {
        path = g_strdup_printf("%s/libvirt/qemu/run/%s.pid",
                               g_get_user_runtime_dir(), name);
    } else {
        return 0;
    }
    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return 0;
    }
    pid = g_ascii_strtoll(g_strstrip(text), NULL, 10);
    if (pid <= 0 || pid > G_MAXINT) {
        return 0;
    }
    proc = g_strdup_printf("/proc/%d/cmdline", (int)pid);
    if (!g_file_get_contents(proc, &cmdline, &len, NULL) ||
        !lv_cmdline_names(cmdline, len, name)) {
        return 0;
    }
    return (int)pid;
}

static void lv_free(VmLink *l)
{
    VmLinkLibvirt *v = lv_of(l);

    lv_close(l);
    lv_sink_release(v->sink);
    virDomainFree(v->dom);
    virConnectClose(v->conn);
    g_free(v);
}

static int lv_fd(VmLink *l)
{
    return lv_of(l)->sink->efd;
}

static const VmLinkOps lv_ops = {
    .open = lv_open,
    .execute = lv_execute,
    .wait_events = lv_wait_events,
    .set_balloon = lv_set_balloon,
    .set_running = lv_set_running,
    .pid = lv_pid,
    .fd = lv_fd,
    .close = lv_close,
    .free = lv_free,
};

VmLink *vm_link_libvirt_new(virConnectPtr conn, virDomainPtr dom,
                            const QmpLimits *lim)
{
    VmLinkLibvirt *v = g_new0(VmLinkLibvirt, 1);

    v->link.ops = &lv_ops;
    v->conn = conn;
    virConnectRef(conn);
    v->dom = dom;
    virDomainRef(dom);
    v->lim = lim ? *lim : qmp_default_limits;
    v->sink = g_atomic_rc_box_new0(LvSink);
    v->sink->queue = g_async_queue_new_full(lv_event_free);
    v->sink->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    v->event_id = -1;
    v->qemu_oc = -1;
    return &v->link;
}
