/*
 * qemu-oc host tools: a QMP connection driven by a GMainContext
 *
 * See qmp-async.h.  The connection is its own GSource: the socket is
 * one of its fds (in, and out while bytes wait to be written), and its
 * prepare() wakes it at the earliest deadline (the greeting's, or the
 * oldest unanswered request's).  The deadline is a field the loop
 * thread sets freely: g_source_set_ready_time() would wake the loop
 * with a write to its eventfd at every request and answer (and so does
 * changing the socket's watch: made only when the G_IO_OUT need
 * changes).  One dispatch reads what has arrived, handles
 * every complete line (events at most max_events at a time: a flood
 * gives the loop back and carries on at the next iteration) and checks
 * the deadlines.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "qmp-async.h"
#include "qmp-wire.h"

#define READ_CHUNK 65536
#define READS_PER_DISPATCH 16

typedef enum QaState {
    QA_GREETING,                /* waiting for the greeting */
    QA_NEGOTIATING,             /* qmp_capabilities sent */
    QA_READY,
    QA_FAILED,
} QaState;

typedef struct Pending {
    int64_t id;
    char *command;
    int64_t deadline;           /* monotonic µs */
    int timeout_ms;
    QmpAsyncReplyFn *reply;
    void *opaque;
} Pending;

struct QmpAsync {
    GSource source;             /* first: the connection is a GSource */
    gpointer tag;               /* the socket's, NULL once closed */
    int64_t wake_us;            /* dispatch at (monotonic µs), -1: never */
    bool watch_out;             /* the socket's watch has G_IO_OUT */
    int fd;
    QmpLimits lim;
    QmpAsyncCallbacks cb;
    void *opaque;
    json_tokener *tok;
    QaState state;
    int64_t greeting_deadline;
    GQueue pending;             /* of Pending, in the order sent */
    int64_t next_id;
    GString *out;               /* bytes not written yet */
    int write_errno;            /* a write failed: fail at the dispatch */
    bool held;                  /* requests wait for qmp_async_release() */
    GError *error;              /* why it failed */
    /* received, not parsed yet: buf[start, end) */
    char *buf;
    size_t cap, start, end;
};

static void pending_free(Pending *p)
{
    g_free(p->command);
    g_free(p);
}

static bool gone(QmpAsync *q)
{
    return g_source_is_destroyed(&q->source);
}

static void close_fd(QmpAsync *q)
{
    if (q->tag) {
        g_source_remove_unix_fd(&q->source, q->tag);
        q->tag = NULL;
    }
    if (q->fd >= 0) {
        close(q->fd);
        q->fd = -1;
    }
}

/* Answer the pending requests with the failure (not after a free) */
static void answer_pending(QmpAsync *q)
{
    Pending *p;

    while ((p = g_queue_pop_head(&q->pending))) {
        if (!gone(q)) {
            p->reply(p->opaque, NULL, q->error);
        }
        pending_free(p);
    }
}

/* The connection fails: once, with its reason; then only answers */
static void G_GNUC_PRINTF(3, 4)
fail(QmpAsync *q, QmpClientError code, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    if (q->state == QA_FAILED) {
        return;
    }
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    q->state = QA_FAILED;
    q->error = g_error_new_literal(QMP_CLIENT_ERROR, code, msg);
    close_fd(q);
    q->wake_us = -1;
    answer_pending(q);
    if (!gone(q)) {
        q->cb.fail(q->opaque, q->error);
    }
}

/* Write what waits; watch for room while some still does */
static void flush_out(QmpAsync *q)
{
    ssize_t n;

    while (q->out->len && q->fd >= 0) {
        n = send(q->fd, q->out->str, q->out->len, MSG_NOSIGNAL);
        if (n > 0) {
            g_string_erase(q->out, 0, n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else {
            q->write_errno = n < 0 ? errno : EPIPE;
            q->wake_us = 0;                 /* fail there */
            return;
        }
    }
    /* (a change wakes the loop: made only when needed) */
    if (q->tag && q->watch_out != (q->out->len > 0)) {
        q->watch_out = q->out->len > 0;
        g_source_modify_unix_fd(&q->source, q->tag,
                                G_IO_IN | G_IO_HUP | G_IO_ERR |
                                (q->watch_out ? G_IO_OUT : 0));
    }
}

/* The next deadline as the time to wake */
static void arm(QmpAsync *q)
{
    int64_t t = -1;
    GList *l;

    if (q->state == QA_FAILED) {
        t = q->pending.length ? 0 : -1;     /* answers still owed */
    } else if (q->write_errno) {
        t = 0;
    } else {
        if (q->state != QA_READY) {
            t = q->greeting_deadline;
        }
        for (l = q->pending.head; l; l = l->next) {
            Pending *p = l->data;

            if (t < 0 || p->deadline < t) {
                t = p->deadline;
            }
        }
    }
    q->wake_us = t;
}

static void send_request(QmpAsync *q, const char *command, json_object *args,
                         int timeout_ms, QmpAsyncReplyFn *reply,
                         void *opaque)
{
    json_object *req = json_object_new_object();
    Pending *p = g_new0(Pending, 1);

    p->id = q->next_id++;
    p->command = g_strdup(command);
    p->timeout_ms = timeout_ms;
    p->deadline = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    p->reply = reply;
    p->opaque = opaque;
    g_queue_push_tail(&q->pending, p);
    if (q->state == QA_FAILED) {
        json_object_put(args);
        json_object_put(req);
        arm(q);                 /* answered at the next dispatch */
        return;
    }
    json_object_object_add(req, "execute", json_object_new_string(command));
    if (args) {
        json_object_object_add(req, "arguments", args);
    }
    json_object_object_add(req, "id", json_object_new_int64(p->id));
    g_string_append(q->out, json_object_to_json_string_ext(
                        req, JSON_C_TO_STRING_PLAIN |
                        JSON_C_TO_STRING_NOSLASHESCAPE));
    g_string_append_c(q->out, '\n');
    json_object_put(req);
    if (!q->held) {
        flush_out(q);
    }
    arm(q);
}

static void on_capabilities(void *opaque, json_object *ret,
                            const GError *err)
{
    QmpAsync *q = opaque;

    (void)ret;
    if (err) {
        fail(q, err->code, "%s", err->message);
        return;
    }
    q->state = QA_READY;
    arm(q);
    q->cb.ready(q->opaque);
}

/* One message; false once the connection failed */
static bool handle_message(QmpAsync *q, json_object *msg)
{
    g_autoptr(GError) err = NULL;
    QmpMsgKind kind;
    const char *why = qmp_wire_check(msg, &kind);
    json_object *data, *ret;
    int64_t id, ts;
    const char *name;
    Pending *p;

    if (why) {
        fail(q, QMP_CLIENT_ERROR_PROTOCOL, "%s", why);
        return false;
    }
    if (q->state == QA_GREETING) {
        if (kind != QMP_MSG_GREETING) {
            fail(q, QMP_CLIENT_ERROR_PROTOCOL,
                 "expected a QMP greeting, got another message");
            return false;
        }
        q->state = QA_NEGOTIATING;
        send_request(q, "qmp_capabilities", NULL, q->lim.greeting_ms,
                     on_capabilities, q);
        return true;
    }
    switch (kind) {
    case QMP_MSG_GREETING:
        fail(q, QMP_CLIENT_ERROR_PROTOCOL, "unexpected QMP greeting");
        return false;
    case QMP_MSG_EVENT:
        name = qmp_wire_event(msg, &data, &ts);
        if (q->cb.event) {
            q->cb.event(q->opaque, name, data, ts);
        }
        return !gone(q);
    default:
        p = g_queue_peek_head(&q->pending);
        if (!p || !qmp_wire_id(msg, &id) || id != p->id) {
            fail(q, QMP_CLIENT_ERROR_PROTOCOL, "reply to an unknown "
                 "request%s%s", p ? " while waiting for " : "",
                 p ? p->command : "");
            return false;
        }
        g_queue_pop_head(&q->pending);
        ret = qmp_wire_reply_value(p->command, msg, kind, &err);
        p->reply(p->opaque, ret, err);
        json_object_put(ret);
        pending_free(p);
        return q->state != QA_FAILED && !gone(q);
    }
}

/* Every complete line; false once failed (or to come back: *@more) */
static bool handle_lines(QmpAsync *q, bool *more)
{
    unsigned events = 0;
    char *nl;

    *more = false;
    while (q->end > q->start &&
           (nl = memchr(q->buf + q->start, '\n', q->end - q->start))) {
        size_t len = nl - (q->buf + q->start);
        const char *line = q->buf + q->start;
        g_autoptr(GError) err = NULL;
        json_object *msg;
        bool ok;

        q->start += len + 1;
        while (len && g_ascii_isspace(line[len - 1])) {
            len--;
        }
        if (!len) {
            continue;
        }
        if (len > q->lim.max_line) {
            fail(q, QMP_CLIENT_ERROR_PROTOCOL, "message longer than %zu "
                 "bytes", q->lim.max_line);
            return false;
        }
        msg = qmp_wire_parse(q->tok, line, len, q->lim.max_depth, &err);
        if (!msg) {
            fail(q, QMP_CLIENT_ERROR_PROTOCOL, "%s", err->message);
            return false;
        }
        ok = handle_message(q, msg);
        json_object_put(msg);
        if (!ok) {
            return false;
        }
        if (++events >= q->lim.max_events) {
            *more = true;       /* a flood: let the loop breathe */
            return true;
        }
    }
    if (q->end - q->start > q->lim.max_line) {
        fail(q, QMP_CLIENT_ERROR_PROTOCOL, "message longer than %zu bytes",
             q->lim.max_line);
        return false;
    }
    return true;
}

/* Room for a read at buf[end] */
static void make_room(QmpAsync *q)
{
    if (q->start == q->end) {
        q->start = q->end = 0;
    } else if (q->start > q->cap / 2) {
        memmove(q->buf, q->buf + q->start, q->end - q->start);
        q->end -= q->start;
        q->start = 0;
    }
    if (q->cap - q->end < READ_CHUNK) {
        q->cap = MAX(q->cap * 2, q->end + READ_CHUNK);
        q->buf = g_realloc(q->buf, q->cap);
    }
}

/* Fail for a socket error: a peer's close or reset says so in words */
static void fail_errno(QmpAsync *q, int err)
{
    bool closed = err == EPIPE || err == ECONNRESET;

    fail(q, QMP_CLIENT_ERROR_CLOSED, "%s%s%s",
         closed ? "connection closed by peer (" : "", g_strerror(err),
         closed ? ")" : "");
}

/* Read what has arrived and handle it; false once failed */
static bool read_in(QmpAsync *q, bool *more)
{
    unsigned i;
    ssize_t n;
    size_t room;

    for (i = 0; i < READS_PER_DISPATCH; i++) {
        make_room(q);
        room = q->cap - q->end;
        n = read(q->fd, q->buf + q->end, room);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return true;
        }
        if (n < 0) {
            /* (a reset: the peer closed with our request unread) */
            fail_errno(q, errno);
            return false;
        }
        if (n == 0) {
            fail(q, QMP_CLIENT_ERROR_CLOSED, "connection closed by peer");
            return false;
        }
        q->end += n;
        if (!handle_lines(q, more) || *more) {
            return q->state != QA_FAILED;
        }
        if ((size_t)n < room) {
            /* all there was: the next bytes wake the loop (no EAGAIN read) */
            return true;
        }
    }
    *more = true;               /* more may wait: the next iteration */
    return true;
}

/* The earliest deadline passed? Fail with what it was for */
static bool check_deadlines(QmpAsync *q)
{
    int64_t now = g_get_monotonic_time();
    GList *l;

    if (q->state != QA_READY && now >= q->greeting_deadline) {
        fail(q, QMP_CLIENT_ERROR_TIMEOUT, q->state == QA_GREETING
             ? "no QMP greeting within %d ms"
             : "no reply to qmp_capabilities within %d ms",
             q->lim.greeting_ms);
        return false;
    }
    for (l = q->pending.head; l; l = l->next) {
        Pending *p = l->data;

        if (now >= p->deadline) {
            fail(q, QMP_CLIENT_ERROR_TIMEOUT, "no reply to %s within %d ms",
                 p->command, p->timeout_ms);
            return false;
        }
    }
    return true;
}

static gboolean qa_dispatch(GSource *source, GSourceFunc callback,
                            gpointer user_data)
{
    QmpAsync *q = (QmpAsync *)source;
    GIOCondition revents = q->tag ? g_source_query_unix_fd(source, q->tag)
                                  : 0;
    bool more = false;

    (void)callback;
    (void)user_data;
    if (q->state == QA_FAILED) {
        answer_pending(q);      /* requests made after the failure */
        arm(q);
        return G_SOURCE_CONTINUE;
    }
    if (q->write_errno) {
        /* (what a read would have said, had it come first) */
        fail_errno(q, q->write_errno);
        return G_SOURCE_CONTINUE;
    }
    if (revents & G_IO_OUT) {
        flush_out(q);
    }
    /* (lines left by a flood first, then what has arrived) */
    if (!handle_lines(q, &more) ||
        (!more && (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) &&
         !read_in(q, &more)) ||
        gone(q) || !check_deadlines(q)) {
        return G_SOURCE_CONTINUE;
    }
    if (more) {
        q->wake_us = 0;
    } else {
        arm(q);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean qa_prepare(GSource *source, gint *timeout)
{
    QmpAsync *q = (QmpAsync *)source;
    int64_t now;

    if (q->wake_us < 0) {
        *timeout = -1;
        return false;
    }
    now = g_source_get_time(source);
    if (now >= q->wake_us) {
        *timeout = 0;
        return true;
    }
    *timeout = MIN((q->wake_us - now + 999) / 1000, G_MAXINT);
    return false;
}

static gboolean qa_check(GSource *source)
{
    QmpAsync *q = (QmpAsync *)source;

    return q->wake_us >= 0 && g_source_get_time(source) >= q->wake_us;
}

static void qa_finalize(GSource *source)
{
    QmpAsync *q = (QmpAsync *)source;
    Pending *p;

    if (q->fd >= 0) {
        close(q->fd);
    }
    while ((p = g_queue_pop_head(&q->pending))) {
        pending_free(p);
    }
    json_tokener_free(q->tok);
    g_string_free(q->out, true);
    g_clear_error(&q->error);
    g_free(q->buf);
}

static GSourceFuncs qa_funcs = {
    .prepare = qa_prepare,
    .check = qa_check,
    .dispatch = qa_dispatch,
    .finalize = qa_finalize,
};

QmpAsync *qmp_async_connect(GMainContext *ctx, const char *path,
                            const QmpLimits *lim,
                            const QmpAsyncCallbacks *cb, void *opaque,
                            GError **err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "socket path too long: %s", path);
        return NULL;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "connect to %s: %s", path, g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    return qmp_async_new_fd(ctx, fd, lim, cb, opaque);
}

QmpAsync *qmp_async_new_fd(GMainContext *ctx, int fd, const QmpLimits *lim,
                           const QmpAsyncCallbacks *cb, void *opaque)
{
    QmpAsync *q;

    g_unix_set_fd_nonblocking(fd, true, NULL);
    lim = lim ? lim : &qmp_default_limits;
    q = (QmpAsync *)g_source_new(&qa_funcs, sizeof(QmpAsync));
    g_source_set_name(&q->source, "qmp-async");
    /*
     * GLib blocks a source that cannot recurse while it dispatches,
     * taking its fds out of the poll set and back, and each change wakes
     * the loop with a write to its eventfd: two system calls and a loop
     * iteration for nothing at every dispatch.  Nothing here runs the
     * context from a callback, so no dispatch can recurse anyway.
     */
    g_source_set_can_recurse(&q->source, true);
    q->fd = fd;
    q->lim = *lim;
    q->lim.max_line = MAX(q->lim.max_line, 1);
    q->lim.max_depth = CLAMP(q->lim.max_depth, 1, 4096);
    q->lim.max_events = MAX(q->lim.max_events, 1);
    q->cb = *cb;
    q->opaque = opaque;
    q->tok = json_tokener_new_ex(q->lim.max_depth);
    json_tokener_set_flags(q->tok, JSON_TOKENER_STRICT |
                                   JSON_TOKENER_VALIDATE_UTF8);
    q->next_id = 1;
    q->out = g_string_new(NULL);
    q->greeting_deadline = g_get_monotonic_time() +
                           (int64_t)q->lim.greeting_ms * 1000;
    q->tag = g_source_add_unix_fd(&q->source, fd,
                                  G_IO_IN | G_IO_HUP | G_IO_ERR);
    arm(q);
    g_source_attach(&q->source, ctx);
    return q;
}

void qmp_async_execute(QmpAsync *q, const char *command, json_object *args,
                       int timeout_ms, QmpAsyncReplyFn *reply, void *opaque)
{
    send_request(q, command, args, timeout_ms, reply, opaque);
}

unsigned qmp_async_pending(QmpAsync *q)
{
    return q->pending.length;
}

int qmp_async_fd(QmpAsync *q)
{
    return q->fd;
}

void qmp_async_hold(QmpAsync *q)
{
    q->held = true;
}

void qmp_async_release(QmpAsync *q)
{
    q->held = false;
    if (q->state != QA_FAILED) {
        flush_out(q);
        arm(q);
    }
}

void qmp_async_free(QmpAsync *q)
{
    if (q) {
        g_source_destroy(&q->source);
        g_source_unref(&q->source);
    }
}
