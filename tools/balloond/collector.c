/*
 * qemu-oc-balloond: the host's collector, serving its frames to readers
 *
 * See collector.h.  GIO's GSocketService accepts in the main context;
 * each reader's socket is non-blocking, written when it can take more
 * (a GSocket source for G_IO_OUT while frames wait) and read only to
 * notice that it closed (what a reader sends is discarded).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>

#include "collector.h"
#include "vm-snapshot-wire.h"

typedef struct Reader {
    Collector *c;
    unsigned id;
    GSocketConnection *conn;
    GSocket *sock;
    GQueue frames;              /* GBytes, the head possibly half sent */
    gsize sent;                 /* bytes of the head already sent */
    uint64_t skipped;           /* to tell before the next frame */
    bool behind;                /* has had frames skipped (said once) */
    GBytes *notice;             /* being sent before the head, or NULL */
    int64_t progress_us;        /* last write, or when it had nothing */
    GSource *out;               /* waiting for room, or NULL */
    GSource *in;                /* watching for close */
} Reader;

struct Collector {
    CollectorConfig cfg;
    char *path;
    GSocketService *service;
    CollectorVmsFn *vms_fn;
    void *opaque;
    GBytes *hello;
    GList *readers;
    unsigned next_id;
    uint64_t seq;
    GBytes *last;               /* the latest frame, or NULL */
    guint tick;

    GMutex lock;                /* the counters, for other threads */
    CollectorCounters n;
};

GQuark collector_error_quark(void)
{
    return g_quark_from_static_string("collector-error");
}

/* A message (taken) */
static GBytes *text_bytes(char *text)
{
    return g_bytes_new_take(text, strlen(text));
}

static void reader_drop(Reader *r, const char *why)
{
    Collector *c = r->c;

    g_message("reader %u %s", r->id, why);
    c->readers = g_list_remove(c->readers, r);
    if (r->out) {
        g_source_destroy(r->out);
        g_source_unref(r->out);
    }
    g_source_destroy(r->in);
    g_source_unref(r->in);
    g_io_stream_close(G_IO_STREAM(r->conn), NULL, NULL);
    g_object_unref(r->conn);
    g_queue_clear_full(&r->frames, (GDestroyNotify)g_bytes_unref);
    g_clear_pointer(&r->notice, g_bytes_unref);
    g_mutex_lock(&c->lock);
    c->n.readers--;
    if (strcmp(why, "left")) {
        c->n.dropped++;
    }
    g_mutex_unlock(&c->lock);
    g_free(r);
}

static gboolean on_writable(GSocket *sock, GIOCondition cond,
                            gpointer opaque);

/*
 * Send what the socket takes now; false if the reader was dropped.
 * Before a frame whose predecessors were skipped goes a notice.
 */
static bool reader_flush(Reader *r)
{
    while (r->notice || !g_queue_is_empty(&r->frames)) {
        g_autoptr(GError) err = NULL;
        GBytes *b;
        gsize len;
        const char *data;
        gssize n;

        if (!r->notice && r->sent == 0 && r->skipped) {
            r->notice = text_bytes(g_strdup_printf(
                "{\"skipped\": {\"frames\": %" G_GUINT64_FORMAT "}}\n",
                r->skipped));
            r->skipped = 0;     /* (skips from now on: the next notice) */
        }
        b = r->notice ? r->notice : g_queue_peek_head(&r->frames);
        data = g_bytes_get_data(b, &len);
        n = g_socket_send(r->sock, data + r->sent, len - r->sent, NULL,
                          &err);
        if (n < 0 && g_error_matches(err, G_IO_ERROR,
                                     G_IO_ERROR_WOULD_BLOCK)) {
            if (!r->out) {
                r->out = g_socket_create_source(r->sock, G_IO_OUT, NULL);
                g_source_set_callback(r->out, G_SOURCE_FUNC(on_writable), r,
                                      NULL);
                g_source_attach(r->out, NULL);
            }
            return true;
        }
        if (n < 0) {
            g_autofree char *why = g_strdup_printf("dropped: %s",
                                                   err->message);

            reader_drop(r, why);
            return false;
        }
        r->progress_us = g_get_monotonic_time();
        r->sent += n;
        if (r->sent < len) {
            continue;
        }
        r->sent = 0;
        if (r->notice) {
            g_clear_pointer(&r->notice, g_bytes_unref);
        } else {
            g_bytes_unref(g_queue_pop_head(&r->frames));
        }
    }
    if (r->out) {
        g_source_destroy(r->out);
        g_clear_pointer(&r->out, g_source_unref);
    }
    return true;
}

static gboolean on_writable(GSocket *sock G_GNUC_UNUSED,
                            GIOCondition cond G_GNUC_UNUSED, gpointer opaque)
{
    Reader *r = opaque;

    /* (reader_flush removes this source when everything is sent) */
    reader_flush(r);
    return G_SOURCE_CONTINUE;
}

/* What a reader sends is not read: only its end (or an error) counts */
static gboolean on_readable(GSocket *sock, GIOCondition cond,
                            gpointer opaque)
{
    Reader *r = opaque;
    char buf[4096];
    gssize n = -1;

    if (cond & G_IO_IN) {
        n = g_socket_receive(sock, buf, sizeof(buf), NULL, NULL);
    }
    if (n <= 0) {
        reader_drop(r, n == 0 ? "left" : "dropped: connection error");
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

/* Queue @b for @r, skipping its oldest unsent frame if the queue is full */
static bool reader_push(Reader *r, GBytes *b)
{
    Collector *c = r->c;

    if (g_queue_get_length(&r->frames) >= c->cfg.queue_frames) {
        /*
         * the head may be half sent, or announced by a notice on its
         * way: then the one after it goes
         */
        guint victim = r->sent || r->notice ? 1 : 0;

        if (victim < g_queue_get_length(&r->frames)) {
            g_bytes_unref(g_queue_pop_nth(&r->frames, victim));
            if (!r->behind) {
                g_message("reader %u is behind: frames are skipped for it",
                          r->id);
                r->behind = true;
            }
            r->skipped++;
            g_mutex_lock(&c->lock);
            c->n.skipped++;
            g_mutex_unlock(&c->lock);
        }
    }
    if (g_queue_is_empty(&r->frames) && !r->notice) {
        r->progress_us = g_get_monotonic_time();
    }
    g_queue_push_tail(&r->frames, g_bytes_ref(b));
    return reader_flush(r);
}

/* A frame of every VM now */
static GBytes *build_frame(Collector *c)
{
    g_autoptr(GString) vms = c->vms_fn(c->opaque);
    GString *s = g_string_sized_new(vms->len + 128);

    c->seq++;
    g_string_append_printf(s, "{\"frame\": {\"seq\": %" G_GUINT64_FORMAT
                           ", \"time-ms\": %" G_GINT64_FORMAT ", \"vms\": ",
                           c->seq, g_get_real_time() / 1000);
    g_string_append_len(s, vms->str, vms->len);
    g_string_append(s, "}}\n");
    g_clear_pointer(&c->last, g_bytes_unref);
    c->last = g_string_free_to_bytes(s);
    g_mutex_lock(&c->lock);
    c->n.frames++;
    g_mutex_unlock(&c->lock);
    return c->last;
}

static gboolean on_tick(gpointer opaque)
{
    Collector *c = opaque;
    int64_t now = g_get_monotonic_time();
    GList *l, *next;
    GBytes *frame;

    if (!c->readers) {
        g_clear_pointer(&c->last, g_bytes_unref);
        return G_SOURCE_CONTINUE;       /* nobody reads: nothing to build */
    }
    frame = build_frame(c);
    for (l = c->readers; l; l = next) {
        Reader *r = l->data;

        next = l->next;
        if ((r->notice || !g_queue_is_empty(&r->frames)) &&
            now - r->progress_us > COLLECTOR_STALL_S * G_USEC_PER_SEC) {
            reader_drop(r, "dropped: it read nothing for "
                        G_STRINGIFY(COLLECTOR_STALL_S) " s");
            continue;
        }
        reader_push(r, frame);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_incoming(GSocketService *service G_GNUC_UNUSED,
                            GSocketConnection *conn,
                            GObject *source G_GNUC_UNUSED, gpointer opaque)
{
    Collector *c = opaque;
    GSocket *sock = g_socket_connection_get_socket(conn);
    g_autoptr(GCredentials) cred = g_socket_get_credentials(sock, NULL);
    int64_t now = g_get_monotonic_time();
    Reader *r;

    g_socket_set_blocking(sock, false);
    if (g_list_length(c->readers) >= c->cfg.max_readers) {
        static const char busy[] = "{\"error\": {\"desc\": \"too many "
                                   "readers\"}}\n";

        g_socket_send(sock, busy, sizeof(busy) - 1, NULL, NULL);
        g_message("a reader was turned away: %u readers already",
                  c->cfg.max_readers);
        return true;    /* (the connection is closed when unreferenced) */
    }
    r = g_new0(Reader, 1);
    r->c = c;
    r->id = ++c->next_id;
    r->conn = g_object_ref(conn);
    r->sock = sock;
    r->progress_us = now;
    g_queue_init(&r->frames);
    r->in = g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR,
                                   NULL);
    g_source_set_callback(r->in, G_SOURCE_FUNC(on_readable), r, NULL);
    g_source_attach(r->in, NULL);
    c->readers = g_list_prepend(c->readers, r);
    g_mutex_lock(&c->lock);
    c->n.readers++;
    g_mutex_unlock(&c->lock);
    g_message("reader %u attached (uid %d)", r->id,
              cred ? (int)g_credentials_get_unix_user(cred, NULL) : -1);
    /*
     * the current state at once: the latest frame (kept while anyone
     * reads, so at most an interval old); a new one only if nobody read
     * (a frame built here for one reader would be a gap in the others')
     */
    if (!c->last) {
        build_frame(c);
    }
    if (reader_push(r, c->hello)) {
        /* the hello went out or is queued: the frame follows it */
        g_queue_push_tail(&r->frames, g_bytes_ref(c->last));
        reader_flush(r);
    }
    return true;
}

/* Remove a socket file left by a collector that died; never a live one */
static bool clear_stale(const char *path, GError **err)
{
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GSocket) probe = NULL;
    g_autoptr(GError) e = NULL;
    struct stat st;

    if (lstat(path, &st) < 0) {
        return true;
    }
    if (!S_ISSOCK(st.st_mode)) {
        g_set_error(err, COLLECTOR_ERROR, COLLECTOR_ERROR_SOCKET,
                    "%s exists and is not a socket", path);
        return false;
    }
    probe = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, NULL);
    if (probe && g_socket_connect(probe, addr, NULL, &e)) {
        g_set_error(err, COLLECTOR_ERROR, COLLECTOR_ERROR_BUSY,
                    "another collector serves %s", path);
        return false;
    }
    return unlink(path) == 0 || errno == ENOENT;
}

/* Bind and listen with the socket's final mode from the start */
static bool listen_on(Collector *c, const char *group, GError **err)
{
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(c->path);
    gid_t gid = 0;
    mode_t old;
    bool ok;

    if (group) {
        struct group *gr = getgrnam(group);

        if (!gr) {
            g_set_error(err, COLLECTOR_ERROR, COLLECTOR_ERROR_PERMISSION,
                        "no such group '%s'", group);
            return false;
        }
        gid = gr->gr_gid;
    }
    if (!clear_stale(c->path, err)) {
        return false;
    }
    c->service = g_socket_service_new();
    old = umask(group ? 0117 : 0177);
    ok = g_socket_listener_add_address(G_SOCKET_LISTENER(c->service), addr,
                                       G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_DEFAULT, NULL,
                                       NULL, err);
    umask(old);
    if (ok && group && chown(c->path, -1, gid) < 0) {
        g_set_error(err, COLLECTOR_ERROR, COLLECTOR_ERROR_PERMISSION,
                    "%s: chown: %s", c->path, g_strerror(errno));
        ok = false;
    }
    return ok;
}

Collector *collector_start(const CollectorConfig *cfg, CollectorVmsFn *vms,
                           void *opaque, GError **err)
{
    Collector *c = g_new0(Collector, 1);

    c->cfg = *cfg;
    c->cfg.max_readers = cfg->max_readers ?: COLLECTOR_DEFAULT_MAX_READERS;
    c->cfg.queue_frames = MAX(cfg->queue_frames ?:
                              COLLECTOR_DEFAULT_QUEUE_FRAMES, 2);
    c->path = g_strdup(cfg->path);
    c->cfg.path = c->path;
    c->cfg.group = NULL;        /* (only needed at the start) */
    c->vms_fn = vms;
    c->opaque = opaque;
    g_mutex_init(&c->lock);
    if (!listen_on(c, cfg->group, err)) {
        g_prefix_error(err, "%s: ", c->path);
        collector_stop(c);
        return NULL;
    }
    c->hello = text_bytes(g_strdup_printf(
        "{\"collector\": {\"version\": %d, \"program\": "
        "\"qemu-oc-balloond\", \"interval-ms\": %d, \"policy\": \"%s\"}}\n",
        VM_SNAPSHOT_WIRE_VERSION, cfg->interval_ms,
        cfg->policy ? cfg->policy : "on"));
    g_signal_connect(c->service, "incoming", G_CALLBACK(on_incoming), c);
    g_socket_service_start(c->service);
    c->tick = g_timeout_add(cfg->interval_ms, on_tick, c);
    return c;
}

void collector_counters(Collector *c, CollectorCounters *out)
{
    g_mutex_lock(&c->lock);
    *out = c->n;
    g_mutex_unlock(&c->lock);
}

void collector_stop(Collector *c)
{
    if (!c) {
        return;
    }
    if (c->tick) {
        g_source_remove(c->tick);
    }
    while (c->readers) {
        reader_drop(c->readers->data, "left");
    }
    if (c->service) {
        g_socket_service_stop(c->service);
        g_socket_listener_close(G_SOCKET_LISTENER(c->service));
        g_object_unref(c->service);
        unlink(c->path);
    }
    g_clear_pointer(&c->hello, g_bytes_unref);
    g_clear_pointer(&c->last, g_bytes_unref);
    g_mutex_clear(&c->lock);
    g_free(c->path);
    g_free(c);
}
