/*
 * qemu-oc host tools: a reader of the host's collector
 *
 * See collector-client.h.  The stream is a sequence of JSON objects, one
 * per line, parsed as it arrives with one json_tokener (bounded depth);
 * a message longer than COLLECTOR_MAX_MESSAGE, invalid JSON or a hello
 * of another protocol version ends the connection.  Unknown message
 * kinds are ignored (a later version may add some).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "collector-client.h"
#include "vm-snapshot-wire.h"

/* A frame of 1,000 VMs is about 3 MiB */
#define COLLECTOR_MAX_MESSAGE (256u << 20)
#define COLLECTOR_MAX_DEPTH 16
#define COLLECTOR_READ_CHUNK (64 * 1024)
#define COLLECTOR_RETRY_MS 1000

struct CollectorClient {
    char *path;
    int timeout_ms;
    int fd;                     /* -1 while detached */
    int wake[2];                /* a pipe: written to stop the thread */
    json_tokener *tok;
    GByteArray *line;           /* the message being read */
    GThread *thread;

    GMutex lock;                /* for what follows */
    GCond cond;                 /* a frame arrived */
    GPtrArray *vms;             /* the latest frame's, sorted by name */
    CollectorStatus st;
};

GQuark collector_client_error_quark(void)
{
    return g_quark_from_static_string("collector-client-error");
}

static void G_GNUC_PRINTF(3, 4) reader_fail(GError **err,
                                            CollectorClientError code,
                                            const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(err, COLLECTOR_CLIENT_ERROR, code, msg);
}

static int by_name(gconstpointer a, gconstpointer b)
{
    const VmSnapshot *x = *(VmSnapshot *const *)a;
    const VmSnapshot *y = *(VmSnapshot *const *)b;

    return strcmp(x->name, y->name);
}

static void set_error(CollectorClient *c, const GError *e)
{
    g_mutex_lock(&c->lock);
    c->st.attached = false;
    g_free(c->st.error);
    c->st.error = g_strdup(e->message);
    g_mutex_unlock(&c->lock);
}

static bool on_hello(CollectorClient *c, json_object *h, GError **err)
{
    json_object *v;
    int64_t version = 0;

    if (json_object_object_get_ex(h, "version", &v) &&
        json_object_is_type(v, json_type_int)) {
        version = json_object_get_int64(v);
    }
    if (version != VM_SNAPSHOT_WIRE_VERSION) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_VERSION, "the collector speaks "
                    "protocol version %" G_GINT64_FORMAT "; this reader "
                    "speaks %d", version, VM_SNAPSHOT_WIRE_VERSION);
        return false;
    }
    g_mutex_lock(&c->lock);
    c->st.attached = true;
    g_clear_pointer(&c->st.error, g_free);
    g_free(c->st.program);
    c->st.program = NULL;
    if (json_object_object_get_ex(h, "program", &v) &&
        json_object_is_type(v, json_type_string)) {
        c->st.program = g_strndup(json_object_get_string(v), 64);
    }
    g_free(c->st.policy);
    c->st.policy = NULL;
    if (json_object_object_get_ex(h, "policy", &v) &&
        json_object_is_type(v, json_type_string)) {
        c->st.policy = g_strndup(json_object_get_string(v), 16);
    }
    if (json_object_object_get_ex(h, "interval-ms", &v) &&
        json_object_is_type(v, json_type_int)) {
        c->st.interval_ms = CLAMP(json_object_get_int64(v), 0, G_MAXINT);
    }
    g_mutex_unlock(&c->lock);
    return true;
}

static bool on_frame(CollectorClient *c, json_object *f, GError **err)
{
    json_object *vms, *v;
    GPtrArray *out;
    uint64_t bad = 0, seq = 0;
    int64_t time_ms = 0;
    size_t i, n;

    if (!json_object_object_get_ex(f, "vms", &vms) ||
        !json_object_is_type(vms, json_type_array)) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_PROTOCOL,
                    "a frame without VMs");
        return false;
    }
    if (json_object_object_get_ex(f, "seq", &v)) {
        seq = json_object_get_uint64(v);
    }
    if (json_object_object_get_ex(f, "time-ms", &v)) {
        time_ms = json_object_get_int64(v);
    }
    n = json_object_array_length(vms);
    out = g_ptr_array_new_full(n, (GDestroyNotify)vm_snapshot_unref);
    for (i = 0; i < n; i++) {
        g_autoptr(GError) e = NULL;
        VmSnapshot *s = vm_snapshot_from_wire(
            json_object_array_get_idx(vms, i), &e);

        if (s) {
            g_ptr_array_add(out, s);
        } else {
            bad++;
        }
    }
    g_ptr_array_sort(out, by_name);
    g_mutex_lock(&c->lock);
    g_clear_pointer(&c->vms, g_ptr_array_unref);
    c->vms = out;
    c->st.seq = seq;
    c->st.frame_ms = time_ms;
    c->st.frames++;
    c->st.bad_vms += bad;
    g_cond_broadcast(&c->cond);
    g_mutex_unlock(&c->lock);
    return true;
}

static bool on_message(CollectorClient *c, json_object *msg, GError **err)
{
    json_object *v;

    if (!json_object_is_type(msg, json_type_object)) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_PROTOCOL, "a message is not an "
                    "object");
        return false;
    }
    if (json_object_object_get_ex(msg, "collector", &v)) {
        return on_hello(c, v, err);
    }
    if (json_object_object_get_ex(msg, "error", &v)) {
        json_object *d = NULL;

        json_object_object_get_ex(v, "desc", &d);
        reader_fail(err, COLLECTOR_CLIENT_ERROR_COLLECTOR,
                    "the collector: %.200s",
                    d ? json_object_get_string(d) : "error");
        return false;
    }
    if (!c->st.attached) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_PROTOCOL, "no hello from the "
                    "collector");
        return false;
    }
    if (json_object_object_get_ex(msg, "frame", &v)) {
        return on_frame(c, v, err);
    }
    if (json_object_object_get_ex(msg, "skipped", &v) &&
        json_object_object_get_ex(v, "frames", &v)) {
        g_mutex_lock(&c->lock);
        c->st.skipped += json_object_get_uint64(v);
        g_mutex_unlock(&c->lock);
    }
    return true;
}

/* One message, a line without its '\n' */
static bool on_line(CollectorClient *c, const char *line, size_t len,
                    GError **err)
{
    enum json_tokener_error jerr;
    json_object *msg;
    size_t end;
    bool ok;

    while (len && g_ascii_isspace(line[len - 1])) {
        len--;
    }
    if (!len) {
        return true;                /* (a blank line) */
    }
    json_tokener_reset(c->tok);
    msg = json_tokener_parse_ex(c->tok, line, len);
    jerr = json_tokener_get_error(c->tok);
    if (jerr != json_tokener_success) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_PROTOCOL, "invalid JSON: %s",
                    jerr == json_tokener_continue
                    ? "a message ends early"
                    : json_tokener_error_desc(jerr));
        json_object_put(msg);
        return false;
    }
    end = json_tokener_get_parse_end(c->tok);
    if (end < len) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_PROTOCOL, "invalid JSON: more "
                    "than one message on a line");
        json_object_put(msg);
        return false;
    }
    ok = on_message(c, msg, err);
    json_object_put(msg);
    return ok;
}

/*
 * Take @len bytes of the stream: messages are lines, each parsed whole
 * once its '\n' came (so how reads cut the stream makes no difference);
 * false with @err if it is broken
 */
static bool feed(CollectorClient *c, const char *buf, size_t len,
                 GError **err)
{
    const char *nl;
    size_t n;
    bool ok;

    while (len) {
        nl = memchr(buf, '\n', len);
        n = nl ? (size_t)(nl - buf) + 1 : len;
        if (c->line->len + n > COLLECTOR_MAX_MESSAGE) {
            reader_fail(err, COLLECTOR_CLIENT_ERROR_PROTOCOL,
                        "a message longer than %u bytes",
                        COLLECTOR_MAX_MESSAGE);
            return false;
        }
        g_byte_array_append(c->line, (const guint8 *)buf, n);
        buf += n;
        len -= n;
        if (nl) {
            ok = on_line(c, (const char *)c->line->data, c->line->len - 1,
                         err);
            g_byte_array_set_size(c->line, 0);
            if (!ok) {
                return false;
            }
        }
    }
    return true;
}

static void detach(CollectorClient *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    g_byte_array_set_size(c->line, 0);
    g_mutex_lock(&c->lock);
    c->st.attached = false;
    g_mutex_unlock(&c->lock);
}

static bool attach(CollectorClient *c, GError **err)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };

    if (strlen(c->path) >= sizeof(sa.sun_path)) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_CONNECT, "%s: path too long",
                    c->path);
        return false;
    }
    strcpy(sa.sun_path, c->path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 ||
        connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_CONNECT, "%s: %s", c->path,
                    g_strerror(errno));
        detach(c);
        return false;
    }
    return true;
}

/*
 * Read what is there (waiting at most @timeout_ms, -1: until the wake
 * pipe); 0 on timeout, 1 if data was read, -1 if stopped or broken
 */
static int read_some(CollectorClient *c, int timeout_ms, GError **err)
{
    struct pollfd p[2] = {
        { .fd = c->fd, .events = POLLIN },
        { .fd = c->wake[0], .events = POLLIN },
    };
    g_autofree char *buf = NULL;
    ssize_t n;
    int r;

    do {
        r = poll(p, 2, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return 0;
    }
    if (p[1].revents) {
        return -1;
    }
    buf = g_malloc(COLLECTOR_READ_CHUNK);
    n = read(c->fd, buf, COLLECTOR_READ_CHUNK);
    if (n <= 0) {
        reader_fail(err, COLLECTOR_CLIENT_ERROR_CLOSED, "the collector %s",
                    n ? g_strerror(errno) : "closed the connection");
        return -1;
    }
    return feed(c, buf, n, err) ? 1 : -1;
}

static bool stopped(CollectorClient *c, int timeout_ms)
{
    struct pollfd p = { .fd = c->wake[0], .events = POLLIN };

    return poll(&p, 1, timeout_ms) > 0;
}

static gpointer reader_thread(gpointer opaque)
{
    CollectorClient *c = opaque;

    for (;;) {
        g_autoptr(GError) err = NULL;

        while (c->fd >= 0 && read_some(c, -1, &err) >= 0) {
            /* (messages are handled as they are parsed) */
        }
        if (err) {
            set_error(c, err);
        }
        detach(c);
        for (;;) {
            if (stopped(c, COLLECTOR_RETRY_MS)) {
                return NULL;
            }
            g_clear_error(&err);
            if (attach(c, &err)) {
                break;
            }
            set_error(c, err);
        }
    }
}

static CollectorClient *client_alloc(const char *path, int timeout_ms)
{
    CollectorClient *c = g_new0(CollectorClient, 1);

    c->path = g_strdup(path);
    c->timeout_ms = timeout_ms;
    c->fd = -1;
    c->wake[0] = c->wake[1] = -1;
    c->tok = json_tokener_new_ex(COLLECTOR_MAX_DEPTH);
    c->line = g_byte_array_new();
    /* strict, as the collector writes */
    json_tokener_set_flags(c->tok, JSON_TOKENER_STRICT |
                                   JSON_TOKENER_VALIDATE_UTF8);
    g_mutex_init(&c->lock);
    g_cond_init(&c->cond);
    return c;
}

CollectorClient *collector_client_new_unattached(void)
{
    return client_alloc("-", 0);
}

bool collector_client_feed(CollectorClient *c, const char *buf, size_t len,
                           GError **err)
{
    g_autoptr(GError) e = NULL;

    if (!feed(c, buf, len, &e)) {
        set_error(c, e);
        detach(c);              /* as the reader thread does */
        g_propagate_error(err, g_steal_pointer(&e));
        return false;
    }
    return true;
}

CollectorClient *collector_client_new(const char *path, int timeout_ms,
                                      GError **err)
{
    CollectorClient *c = client_alloc(path, timeout_ms);
    int64_t deadline = g_get_monotonic_time() + timeout_ms * (int64_t)1000;

    if (!g_unix_open_pipe(c->wake, FD_CLOEXEC, NULL)) {
        c->wake[0] = c->wake[1] = -1;
    }
    if (c->wake[0] < 0 || !attach(c, err)) {
        collector_client_free(c);
        return NULL;
    }
    /* the hello and the current frame come at once */
    while (c->st.frames == 0) {
        int left = (deadline - g_get_monotonic_time()) / 1000;
        int r = left > 0 ? read_some(c, left, err) : 0;

        if (r <= 0) {
            if (r == 0) {
                reader_fail(err, COLLECTOR_CLIENT_ERROR_TIMEOUT,
                            "%s: no frame within %d ms", path, timeout_ms);
            }
            collector_client_free(c);
            return NULL;
        }
    }
    c->thread = g_thread_new("collector", reader_thread, c);
    return c;
}

GPtrArray *collector_client_snapshots(CollectorClient *c)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vm_snapshot_unref);
    guint i;

    g_mutex_lock(&c->lock);
    for (i = 0; c->vms && i < c->vms->len; i++) {
        g_ptr_array_add(out, vm_snapshot_ref(g_ptr_array_index(c->vms, i)));
    }
    g_mutex_unlock(&c->lock);
    return out;
}

uint64_t collector_client_wait(CollectorClient *c, uint64_t seq,
                               int timeout_ms)
{
    int64_t end = g_get_monotonic_time() + timeout_ms * (int64_t)1000;
    uint64_t now;

    g_mutex_lock(&c->lock);
    while (c->st.seq == seq && g_cond_wait_until(&c->cond, &c->lock, end)) {
        /* woken: look again */
    }
    now = c->st.seq;
    g_mutex_unlock(&c->lock);
    return now;
}

void collector_client_status(CollectorClient *c, CollectorStatus *st)
{
    g_mutex_lock(&c->lock);
    *st = c->st;
    st->program = g_strdup(c->st.program);
    st->policy = g_strdup(c->st.policy);
    st->error = g_strdup(c->st.error);
    g_mutex_unlock(&c->lock);
}

void collector_status_clear(CollectorStatus *st)
{
    g_free(st->program);
    g_free(st->policy);
    g_free(st->error);
    memset(st, 0, sizeof(*st));
}

void collector_client_free(CollectorClient *c)
{
    if (!c) {
        return;
    }
    if (c->thread) {
        if (write(c->wake[1], "x", 1) < 0) {
            /* (a full pipe wakes the thread as well) */
        }
        g_thread_join(c->thread);
    }
    detach(c);
    if (c->wake[0] >= 0) {
        close(c->wake[0]);
        close(c->wake[1]);
    }
    json_tokener_free(c->tok);
    g_byte_array_unref(c->line);
    g_clear_pointer(&c->vms, g_ptr_array_unref);
    collector_status_clear(&c->st);
    g_mutex_clear(&c->lock);
    g_cond_clear(&c->cond);
    g_free(c->path);
    g_free(c);
}
