/*
 * qemu-oc host tools: a QMP client on json-c
 *
 * A blocking client with deadlines: the socket is non-blocking and every
 * wait is a poll() bounded by the deadline of the call.  Bytes from the
 * peer go into one buffer that never holds more than max_line plus one
 * read chunk; each complete line is parsed with a depth-limited strict
 * tokener and checked for the shape of a QMP greeting, event or reply
 * before anything looks inside it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "qmp-client.h"
#include "qmp-wire.h"

#define READ_CHUNK 65536
#define BUF_INITIAL 4096
/* Limits beyond these are taken as these (json-c lengths are ints) */
#define MAX_LINE_CAP (1024 * 1024 * 1024)
#define MAX_DEPTH_CAP 4096

const QmpLimits qmp_default_limits = {
    .max_line = 1024 * 1024,
    .max_depth = 32,
    .greeting_ms = 2000,
    .max_events = 1000,
};

struct QmpClient {
    int fd;
    QmpLimits lim;
    QmpEventFn *event_fn;
    void *opaque;
    json_tokener *tok;
    int64_t next_id;
    /* received bytes not parsed yet: buf[start, end); scanned: no '\n' */
    char *buf;
    size_t cap, start, end, scanned;
};

/* read_message() results */
enum {
    READ_FAILED = -1,
    READ_TIMEOUT = 0,
    READ_MESSAGE = 1,
};

GQuark qmp_client_error_quark(void)
{
    return g_quark_from_static_string("qmp-client-error-quark");
}

/* Timing */

static int64_t deadline_after(int timeout_ms)
{
    return g_get_monotonic_time() + (int64_t)MAX(timeout_ms, 0) * 1000;
}

/* Milliseconds left until @deadline, rounded up; 0 once it passed */
static int ms_left(int64_t deadline)
{
    int64_t us = deadline - g_get_monotonic_time();

    if (us <= 0) {
        return 0;
    }
    return (int)MIN((us + 999) / 1000, G_MAXINT);
}

/*
 * Wait for @events on @fd until @deadline.  1 ready, 0 timeout, -1 error
 * (errno set).
 */
static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int r;

    do {
        r = poll(&pfd, 1, ms_left(deadline));
    } while (r < 0 && errno == EINTR);
    return r;
}

/* Connection state */

static void client_close_fd(QmpClient *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->start = c->end = c->scanned = 0;
}

/* Fail the connection: after this, every call reports it closed */
static void G_GNUC_PRINTF(4, 5)
client_fail(QmpClient *c, GError **err, QmpClientError code,
            const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    client_close_fd(c);
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(err, QMP_CLIENT_ERROR, code, msg);
}

static bool client_usable(QmpClient *c, GError **err)
{
    if (c->fd < 0) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CLOSED,
                    "connection closed after an earlier error");
        return false;
    }
    return true;
}

/* Connecting */

static int open_socket(const char *path, int64_t deadline, GError **err)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd, r, soerr = 0;
    socklen_t len = sizeof(soerr);

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "socket path too long: %s", path);
        return -1;
    }
    strcpy(addr.sun_path, path);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "socket: %s", g_strerror(errno));
        return -1;
    }

    /* A full listen backlog makes a unix socket connect fail with EAGAIN */
    while ((r = connect(fd, (struct sockaddr *)&addr, sizeof(addr))) < 0 &&
           (errno == EAGAIN || errno == EINTR) && ms_left(deadline) > 0) {
        g_usleep(MIN(10, ms_left(deadline)) * 1000);
    }
    if (r < 0 && errno == EINPROGRESS) {
        r = wait_fd(fd, POLLOUT, deadline);
        if (r == 0) {
            g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_TIMEOUT,
                        "connect to %s: timed out", path);
            close(fd);
            return -1;
        }
        if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0) {
            errno = soerr;
            r = soerr ? -1 : 0;
        }
    }
    if (r < 0) {
        g_set_error(err, QMP_CLIENT_ERROR,
                    errno == EAGAIN ? QMP_CLIENT_ERROR_TIMEOUT
                                    : QMP_CLIENT_ERROR_CONNECT,
                    "connect to %s: %s", path, g_strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Reading */

/* Parse one line (without its '\n'): a new object, or NULL with @err */
static json_object *parse_line(QmpClient *c, const char *line, size_t len,
                               GError **err)
{
    json_object *obj = qmp_wire_parse(c->tok, line, len, c->lim.max_depth,
                                       err);

    if (!obj) {
        client_close_fd(c);     /* a protocol error ends the connection */
    }
    return obj;
}

static bool line_is_blank(const char *line, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (!g_ascii_isspace(line[i])) {
            return false;
        }
    }
    return true;
}

/*
 * Take the next complete line out of the buffer.  1 with *@msg set, 0 if
 * there is none yet, -1 on error.  Blank lines are skipped.
 */
static int take_line(QmpClient *c, json_object **msg, GError **err)
{
    char *line, *nl;
    size_t len;

    for (;;) {
        line = c->buf + c->start;
        nl = memchr(c->buf + c->scanned, '\n', c->end - c->scanned);
        len = (nl ? (size_t)(nl - line) : c->end - c->start);
        if (len > c->lim.max_line) {
            client_fail(c, err, QMP_CLIENT_ERROR_PROTOCOL,
                        "message longer than %zu bytes", c->lim.max_line);
            return -1;
        }
        if (!nl) {
            c->scanned = c->end;
            return 0;
        }
        c->start = c->scanned = nl + 1 - c->buf;
        while (len > 0 && (line[len - 1] == '\r')) {
            len--;
        }
        if (!line_is_blank(line, len)) {
            *msg = parse_line(c, line, len, err);
            return *msg ? 1 : -1;
        }
    }
}

/* Make room for one read chunk; the buffer stays under max_line + chunk */
static void make_room(QmpClient *c)
{
    size_t used;

    if (c->start > 0) {
        used = c->end - c->start;
        memmove(c->buf, c->buf + c->start, used);
        c->end = used;
        c->scanned -= c->start;
        c->start = 0;
    }
    if (c->cap - c->end < READ_CHUNK) {
        c->cap = MAX(c->cap * 2, c->end + READ_CHUNK);
        c->cap = MIN(c->cap, c->lim.max_line + READ_CHUNK);
        c->buf = g_realloc(c->buf, c->cap);
    }
}

/* One read() of what is available, waiting until @deadline; as take_line */
static int fill_buffer(QmpClient *c, int64_t deadline, GError **err)
{
    ssize_t n;
    int r;

    make_room(c);
    r = wait_fd(c->fd, POLLIN, deadline);
    if (r == 0) {
        return 0;
    }
    if (r < 0) {
        client_fail(c, err, QMP_CLIENT_ERROR_CLOSED, "poll: %s",
                    g_strerror(errno));
        return -1;
    }
    do {
        n = recv(c->fd, c->buf + c->end, c->cap - c->end, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return 0;
    }
    if (n < 0) {
        /* (a reset: the peer closed with our request unread) */
        client_fail(c, err, QMP_CLIENT_ERROR_CLOSED,
                    errno == ECONNRESET ? "connection closed by peer (%s)"
                    : "connection failed: %s", g_strerror(errno));
        return -1;
    }
    if (n == 0) {
        client_fail(c, err, QMP_CLIENT_ERROR_CLOSED,
                    c->end > c->start
                    ? "connection closed by peer in the middle of a message"
                    : "connection closed by peer");
        return -1;
    }
    c->end += n;
    return 1;
}

/*
 * The next message, checked for shape, waiting for it until @deadline.
 * READ_MESSAGE with *@msg and *@kind set, READ_TIMEOUT or READ_FAILED.
 */
static int read_message(QmpClient *c, int64_t deadline, json_object **msg,
                        QmpMsgKind *kind, GError **err)
{
    const char *bad;
    bool tried = false;
    int r;

    /* Read at least once, so that a zero timeout still polls */
    while ((r = take_line(c, msg, err)) == 0) {
        if (tried && g_get_monotonic_time() >= deadline) {
            return READ_TIMEOUT;
        }
        if (fill_buffer(c, deadline, err) < 0) {
            return READ_FAILED;
        }
        tried = true;
    }
    if (r < 0) {
        return READ_FAILED;
    }
    bad = qmp_wire_check(*msg, kind);
    if (bad) {
        json_object_put(*msg);
        *msg = NULL;
        client_fail(c, err, QMP_CLIENT_ERROR_PROTOCOL, "%s", bad);
        return READ_FAILED;
    }
    return READ_MESSAGE;
}

static void dispatch_event(QmpClient *c, json_object *msg)
{
    json_object *data;
    int64_t ts;
    const char *name;

    if (!c->event_fn) {
        return;
    }
    name = qmp_wire_event(msg, &data, &ts);
    c->event_fn(c->opaque, name, data, ts);
}

/* Writing */

static bool send_all(QmpClient *c, const char *data, size_t len,
                     int64_t deadline, GError **err)
{
    ssize_t n;
    int r;

    while (len > 0) {
        n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            client_fail(c, err, QMP_CLIENT_ERROR_CLOSED,
                        "connection failed: %s", g_strerror(errno));
            return false;
        }
        r = wait_fd(c->fd, POLLOUT, deadline);
        if (r == 0) {
            client_fail(c, err, QMP_CLIENT_ERROR_TIMEOUT,
                        "could not send a request within its deadline");
            return false;
        }
        if (r < 0) {
            client_fail(c, err, QMP_CLIENT_ERROR_CLOSED, "poll: %s",
                        g_strerror(errno));
            return false;
        }
    }
    return true;
}

/* Send @command (@args taken) with a new id; returns the id, or -1 */
static int64_t send_request(QmpClient *c, const char *command,
                            json_object *args, int64_t deadline,
                            GError **err)
{
    json_object *req = json_object_new_object();
    int64_t id = c->next_id++;
    g_autofree char *line = NULL;
    bool ok;

    json_object_object_add(req, "execute", json_object_new_string(command));
    if (args) {
        json_object_object_add(req, "arguments", args);
    }
    json_object_object_add(req, "id", json_object_new_int64(id));
    line = g_strconcat(json_object_to_json_string_ext(req,
                           JSON_C_TO_STRING_PLAIN |
                           JSON_C_TO_STRING_NOSLASHESCAPE), "\n", NULL);
    json_object_put(req);
    ok = send_all(c, line, strlen(line), deadline, err);
    return ok ? id : -1;
}

/* Is @msg the reply to request @id? */
static bool reply_matches(json_object *msg, int64_t id)
{
    int64_t got;

    return qmp_wire_id(msg, &got) && got == id;
}

/*
 * Wait until @deadline for the reply to request @id of @command,
 * dispatching events (an event flood cannot make it miss the deadline)
 */
static json_object *wait_reply(QmpClient *c, const char *command, int64_t id,
                               int64_t deadline, int timeout_ms,
                               GError **err)
{
    json_object *msg, *ret;
    QmpMsgKind kind;
    int r;

    for (;;) {
        r = read_message(c, deadline, &msg, &kind, err);
        if (r == READ_FAILED) {
            return NULL;
        }
        if (r == READ_TIMEOUT) {
            client_fail(c, err, QMP_CLIENT_ERROR_TIMEOUT,
                        "no reply to %s within %d ms", command, timeout_ms);
            return NULL;
        }
        if (kind == QMP_MSG_EVENT) {
            dispatch_event(c, msg);
            json_object_put(msg);
            if (g_get_monotonic_time() >= deadline) {
                client_fail(c, err, QMP_CLIENT_ERROR_TIMEOUT,
                            "no reply to %s within %d ms (events only)",
                            command, timeout_ms);
                return NULL;
            }
            continue;
        }
        if (kind == QMP_MSG_GREETING || !reply_matches(msg, id)) {
            json_object_put(msg);
            client_fail(c, err, QMP_CLIENT_ERROR_PROTOCOL,
                        kind == QMP_MSG_GREETING
                        ? "unexpected QMP greeting while waiting for %s"
                        : "reply to an unknown request while waiting for %s",
                        command);
            return NULL;
        }
        ret = qmp_wire_reply_value(command, msg, kind, err);
        json_object_put(msg);
        return ret;
    }
}

static json_object *execute_until(QmpClient *c, const char *command,
                                  json_object *args, int64_t deadline,
                                  int timeout_ms, GError **err)
{
    int64_t id = send_request(c, command, args, deadline, err);

    if (id < 0) {
        return NULL;
    }
    return wait_reply(c, command, id, deadline, timeout_ms, err);
}

/* Read the greeting until @deadline */
static bool read_greeting(QmpClient *c, int64_t deadline, GError **err)
{
    json_object *msg;
    QmpMsgKind kind;
    int r;

    r = read_message(c, deadline, &msg, &kind, err);
    if (r == READ_FAILED) {
        return false;
    }
    if (r == READ_TIMEOUT) {
        client_fail(c, err, QMP_CLIENT_ERROR_TIMEOUT,
                    "no QMP greeting within %d ms", c->lim.greeting_ms);
        return false;
    }
    json_object_put(msg);
    if (kind != QMP_MSG_GREETING) {
        client_fail(c, err, QMP_CLIENT_ERROR_PROTOCOL,
                    "expected a QMP greeting, got another message");
        return false;
    }
    return true;
}

/* API */

/* Greeting and capabilities on @fd (taken) until @deadline */
static QmpClient *client_start(int fd, int64_t deadline, const QmpLimits *lim,
                               QmpEventFn *event_fn, void *opaque,
                               GError **err)
{
    QmpClient *c;
    json_object *ret;

    c = g_new0(QmpClient, 1);
    c->lim = *lim;
    c->lim.max_line = CLAMP(c->lim.max_line, 1, MAX_LINE_CAP);
    c->lim.max_depth = CLAMP(c->lim.max_depth, 1, MAX_DEPTH_CAP);
    c->lim.max_events = MAX(c->lim.max_events, 1);
    c->event_fn = event_fn;
    c->opaque = opaque;
    c->next_id = 1;
    c->cap = MIN(BUF_INITIAL, c->lim.max_line + READ_CHUNK);
    c->buf = g_malloc(c->cap);
    c->tok = json_tokener_new_ex(c->lim.max_depth);
    json_tokener_set_flags(c->tok, JSON_TOKENER_STRICT |
                                   JSON_TOKENER_VALIDATE_UTF8);

    c->fd = fd;
    if (!read_greeting(c, deadline, err)) {
        qmp_client_free(c);
        return NULL;
    }
    ret = execute_until(c, "qmp_capabilities", NULL, deadline,
                        c->lim.greeting_ms, err);
    if (!ret) {
        qmp_client_free(c);
        return NULL;
    }
    json_object_put(ret);
    return c;
}

QmpClient *qmp_client_connect(const char *path, const QmpLimits *lim,
                              QmpEventFn *event_fn, void *opaque,
                              GError **err)
{
    int64_t deadline;
    int fd;

    lim = lim ? lim : &qmp_default_limits;
    deadline = deadline_after(lim->greeting_ms);
    fd = open_socket(path, deadline, err);
    if (fd < 0) {
        return NULL;
    }
    return client_start(fd, deadline, lim, event_fn, opaque, err);
}

QmpClient *qmp_client_connect_fd(int fd, const QmpLimits *lim,
                                 QmpEventFn *event_fn, void *opaque,
                                 GError **err)
{
    lim = lim ? lim : &qmp_default_limits;
    if (!g_unix_set_fd_nonblocking(fd, true, NULL)) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                    "fd %d: %s", fd, g_strerror(errno));
        close(fd);
        return NULL;
    }
    return client_start(fd, deadline_after(lim->greeting_ms), lim, event_fn,
                        opaque, err);
}

json_object *qmp_client_execute(QmpClient *c, const char *command,
                                json_object *args, int timeout_ms,
                                GError **err)
{
    if (!client_usable(c, err)) {
        json_object_put(args);
        return NULL;
    }
    return execute_until(c, command, args, deadline_after(timeout_ms),
                         timeout_ms, err);
}

bool qmp_client_wait_events(QmpClient *c, int timeout_ms, GError **err)
{
    int64_t deadline = deadline_after(timeout_ms);
    json_object *msg;
    QmpMsgKind kind;
    unsigned n = 0;
    int r;

    if (!client_usable(c, err)) {
        return false;
    }
    while (n < c->lim.max_events) {
        r = read_message(c, deadline, &msg, &kind, err);
        if (r == READ_FAILED) {
            return false;
        }
        if (r == READ_TIMEOUT) {
            return true;
        }
        if (kind != QMP_MSG_EVENT) {
            json_object_put(msg);
            client_fail(c, err, QMP_CLIENT_ERROR_PROTOCOL,
                        "unexpected %s while no request is pending",
                        kind == QMP_MSG_GREETING ? "QMP greeting" : "reply");
            return false;
        }
        dispatch_event(c, msg);
        json_object_put(msg);
        n++;
        if (g_get_monotonic_time() >= deadline) {
            break;      /* the deadline holds even in an event flood */
        }
        /* then only what has already arrived: the caller acts on it now */
        deadline = g_get_monotonic_time();
    }
    return true;
}

int qmp_client_fd(QmpClient *c)
{
    return c->fd;
}

void qmp_client_free(QmpClient *c)
{
    if (!c) {
        return;
    }
    client_close_fd(c);
    json_tokener_free(c->tok);
    g_free(c->buf);
    g_free(c);
}
