/*
 * qemu-oc host tools: finding VMs
 *
 * One discovery thread runs a GMainLoop on its own context; every add
 * and remove callback is made from it.
 *
 * QMP directories: one inotify descriptor watches them all.  At start
 * every socket in a directory is a VM named by its file name; a socket
 * created or moved in is added, one deleted or moved out is removed;
 * other files are ignored.  A directory that is deleted or moved away
 * loses its VMs and is not watched again.  A directory that does not
 * exist is an error of discovery_add_qmp_dir() (it is not created: a
 * mistyped --qmp-dir should be reported, not watched forever).  When
 * inotify's queue overflows, the directories are scanned again.
 *
 * libvirt: a read-write connection (the QEMU monitor passthrough needs
 * one) with keepalive; its running domains at start, then its domain
 * lifecycle events: started or resumed adds the domain if it is new,
 * stopped removes it, shut down or crashed removes it unless it still
 * runs (on_poweroff/on_crash "preserve" keeps QEMU, which still
 * answers).  A domain is named by its name, prefixed by the URI's host
 * when there is one ("host1:vm3").  libvirt calls its callbacks in its
 * event-loop thread (vm_link_libvirt_init()); they only post messages
 * to the discovery thread's context, in order.  When the connection
 * closes, its VMs are removed and it is opened again, with exponential
 * backoff (1 s to 60 s), from the discovery thread (a slow
 * virConnectOpen() of a remote URI holds up the other sources meanwhile).
 *
 * A name is owned by the first source that reports it: the same name
 * from another source is ignored while the first has it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <libvirt/virterror.h>

#include "discovery.h"
#include "vm-link-libvirt.h"

#define QMP_DIR_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_TO | \
                        IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | \
                        IN_ONLYDIR)
#define LV_BACKOFF_MIN_MS 1000
#define LV_BACKOFF_MAX_MS 60000
#define LV_KEEPALIVE_S 5
#define LV_KEEPALIVE_COUNT 3

typedef struct QmpDir {
    char *path;
    int wd;                     /* -1 once the directory is gone */
} QmpDir;

typedef struct LibvirtSource LibvirtSource;

/* What libvirt's callbacks hold (reference counted, any thread) */
typedef struct LvPost {
    GMainContext *ctx;
    LibvirtSource *src;         /* used in the discovery thread only */
} LvPost;

struct LibvirtSource {
    Discovery *d;
    char *uri;
    char *host;                 /* name prefix, or NULL */
    virConnectPtr conn;         /* NULL while reconnecting */
    int lifecycle_id;           /* -1 if not registered */
    bool close_registered;
    LvPost *post;
    unsigned backoff_ms;
    GSource *retry;             /* pending reconnection */
};

/* A message from libvirt's event loop to the discovery thread */
typedef struct LvMsg {
    LvPost *post;
    virConnectPtr conn;         /* referenced */
    virDomainPtr dom;           /* referenced; NULL: connection closed */
    int event;
    int detail;
} LvMsg;

struct Discovery {
    DiscoveryAddFn *add;
    DiscoveryRemoveFn *remove;
    void *opaque;
    QmpLimits lim;
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;
    int inotify_fd;
    GSource *inotify_source;
    GPtrArray *dirs;            /* QmpDir */
    GPtrArray *libvirts;        /* LibvirtSource */
    GHashTable *owners;         /* VM name -> its source (not owned) */
};

/* Known VMs */

static void vm_add(Discovery *d, const char *name, const char *where,
                   void *owner, VmLink *link)
{
    if (g_hash_table_contains(d->owners, name)) {
        vm_link_free(link);
        return;
    }
    g_hash_table_insert(d->owners, g_strdup(name), owner);
    d->add(d->opaque, name, where, link);
}

static bool vm_known(Discovery *d, const char *name)
{
    return g_hash_table_contains(d->owners, name);
}

static void vm_remove(Discovery *d, const char *name, void *owner)
{
    if (g_hash_table_lookup(d->owners, name) != owner) {
        return;
    }
    d->remove(d->opaque, name);
    g_hash_table_remove(d->owners, name);
}

static void vm_remove_all(Discovery *d, void *owner)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key, value;

    g_hash_table_iter_init(&it, d->owners);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        if (value == owner) {
            g_ptr_array_add(names, g_strdup(key));
        }
    }
    for (guint i = 0; i < names->len; i++) {
        vm_remove(d, g_ptr_array_index(names, i), owner);
    }
}

/* QMP directories */

static bool is_socket(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void qmp_dir_consider(Discovery *d, QmpDir *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir->path, name, NULL);

    if (vm_known(d, name) || !is_socket(path)) {
        return;
    }
    vm_add(d, name, path, dir, vm_link_qmp_new(path, &d->lim));
}

static void qmp_dir_forget(Discovery *d, QmpDir *dir, const char *name)
{
    vm_remove(d, name, dir);
}

/* Add the sockets of @dir not known yet, remove its VMs whose socket left */
static void qmp_dir_scan(Discovery *d, QmpDir *dir)
{
    g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key, value;
    struct dirent *de;
    DIR *dp;

    if (dir->wd < 0) {
        return;
    }
    g_hash_table_iter_init(&it, d->owners);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        g_autofree char *path = g_build_filename(dir->path, key, NULL);

        if (value == dir && !is_socket(path)) {
            g_ptr_array_add(gone, g_strdup(key));
        }
    }
    for (guint i = 0; i < gone->len; i++) {
        qmp_dir_forget(d, dir, g_ptr_array_index(gone, i));
    }
    dp = opendir(dir->path);
    if (!dp) {
        return;
    }
    while ((de = readdir(dp))) {
        if (de->d_type == DT_SOCK || de->d_type == DT_UNKNOWN ||
            de->d_type == DT_LNK) {
            qmp_dir_consider(d, dir, de->d_name);
        }
    }
    closedir(dp);
}

static void qmp_dir_gone(Discovery *d, QmpDir *dir)
{
    vm_remove_all(d, dir);
    dir->wd = -1;
}

static QmpDir *qmp_dir_by_wd(Discovery *d, int wd)
{
    for (guint i = 0; i < d->dirs->len; i++) {
        QmpDir *dir = g_ptr_array_index(d->dirs, i);

        if (dir->wd == wd) {
            return dir;
        }
    }
    return NULL;
}

static void qmp_dir_event(Discovery *d, const struct inotify_event *ev)
{
    QmpDir *dir;

    if (ev->mask & IN_Q_OVERFLOW) {
        for (guint i = 0; i < d->dirs->len; i++) {
            qmp_dir_scan(d, g_ptr_array_index(d->dirs, i));
        }
        return;
    }
    dir = qmp_dir_by_wd(d, ev->wd);
    if (!dir) {
        return;
    }
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
        if (!(ev->mask & IN_IGNORED)) {
            inotify_rm_watch(d->inotify_fd, ev->wd);
        }
        qmp_dir_gone(d, dir);
    } else if (ev->len && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        qmp_dir_consider(d, dir, ev->name);
    } else if (ev->len && (ev->mask & (IN_DELETE | IN_MOVED_FROM))) {
        qmp_dir_forget(d, dir, ev->name);
    }
}

static gboolean inotify_ready(gint fd, GIOCondition cond, gpointer opaque)
{
    Discovery *d = opaque;
    char buf[16384]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t n;

    (void)cond;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const void *)p;

            qmp_dir_event(d, ev);
            p += sizeof(*ev) + ev->len;
        }
    }
    return G_SOURCE_CONTINUE;
}

bool discovery_add_qmp_dir(Discovery *d, const char *dir, GError **err)
{
    struct stat st;
    QmpDir *qd;
    int wd;

    g_return_val_if_fail(!d->thread, false);
    if (stat(dir, &st) < 0) {
        int e = errno;

        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
                    "QMP socket directory %s: %s", dir, g_strerror(e));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOTDIR,
                    "QMP socket directory %s: not a directory", dir);
        return false;
    }
    if (d->inotify_fd < 0) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot watch QMP socket directory %s: no inotify",
                    dir);
        return false;
    }
    wd = inotify_add_watch(d->inotify_fd, dir, QMP_DIR_EVENTS);
    if (wd < 0) {
        int e = errno;

        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
                    "cannot watch QMP socket directory %s: %s", dir,
                    g_strerror(e));
        return false;
    }
    if (qmp_dir_by_wd(d, wd)) {
        return true;            /* the same directory again */
    }
    qd = g_new0(QmpDir, 1);
    qd->path = g_strdup(dir);
    qd->wd = wd;
    g_ptr_array_add(d->dirs, qd);
    return true;
}

static void qmp_dir_free(gpointer p)
{
    QmpDir *dir = p;

    g_free(dir->path);
    g_free(dir);
}

/* libvirt */

static void lv_post_clear(gpointer p)
{
    LvPost *post = p;

    g_main_context_unref(post->ctx);
}

static void lv_post_release(void *opaque)
{
    g_atomic_rc_box_release_full(opaque, lv_post_clear);
}

static void lv_msg_free(gpointer p)
{
    LvMsg *m = p;

    if (m->dom) {
        virDomainFree(m->dom);
    }
    virConnectClose(m->conn);
    lv_post_release(m->post);
    g_free(m);
}

static gboolean lv_msg_run(gpointer p);

/* Any thread: queue @dom's event (or, @dom NULL, a close) for the loop */
static void lv_post(LvPost *post, virConnectPtr conn, virDomainPtr dom,
                    int event, int detail)
{
    LvMsg *m = g_new0(LvMsg, 1);
    GSource *s = g_idle_source_new();

    m->post = g_atomic_rc_box_acquire(post);
    m->conn = conn;
    virConnectRef(conn);
    if (dom) {
        m->dom = dom;
        virDomainRef(dom);
    }
    m->event = event;
    m->detail = detail;
    /* Idle sources of one priority run in the order they were attached */
    g_source_set_priority(s, G_PRIORITY_DEFAULT);
    g_source_set_callback(s, lv_msg_run, m, lv_msg_free);
    g_source_attach(s, post->ctx);
    g_source_unref(s);
}

static int lv_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event,
                           int detail, void *opaque)
{
    lv_post(opaque, conn, dom, event, detail);
    return 0;
}

static void lv_on_close(virConnectPtr conn, int reason, void *opaque)
{
    lv_post(opaque, conn, NULL, reason, 0);
}

static char *lv_vm_name(LibvirtSource *src, virDomainPtr dom)
{
    const char *name = virDomainGetName(dom);

    return src->host ? g_strdup_printf("%s:%s", src->host, name)
                     : g_strdup(name);
}

static void lv_add_domain(LibvirtSource *src, virDomainPtr dom)
{
    g_autofree char *name = lv_vm_name(src, dom);

    if (vm_known(src->d, name)) {
        return;
    }
    vm_add(src->d, name, src->uri, src,
           vm_link_libvirt_new(src->conn, dom, &src->d->lim));
}

static void lv_list(LibvirtSource *src)
{
    virDomainPtr *doms = NULL;
    int n;

    if (!src->conn) {
        return;
    }
    /* On failure the connection is dead: its close callback follows */
    n = virConnectListAllDomains(src->conn, &doms,
                                 VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    for (int i = 0; i < n; i++) {
        lv_add_domain(src, doms[i]);
        virDomainFree(doms[i]);
    }
    free(doms);
}

static void lv_lifecycle(LibvirtSource *src, virDomainPtr dom, int event)
{
    g_autofree char *name = lv_vm_name(src, dom);

    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
    case VIR_DOMAIN_EVENT_RESUMED:
        lv_add_domain(src, dom);
        break;
    case VIR_DOMAIN_EVENT_SHUTDOWN:
    case VIR_DOMAIN_EVENT_CRASHED:
        if (virDomainIsActive(dom) == 1) {
            break;
        }
        /* fall through */
    case VIR_DOMAIN_EVENT_STOPPED:
        vm_remove(src->d, name, src);
        break;
    default:
        break;
    }
}

static void lv_disconnect(LibvirtSource *src)
{
    if (!src->conn) {
        return;
    }
    /* Either may fail on a dead connection: nothing more to undo then */
    if (src->lifecycle_id >= 0) {
        virConnectDomainEventDeregisterAny(src->conn, src->lifecycle_id);
        src->lifecycle_id = -1;
    }
    if (src->close_registered) {
        virConnectUnregisterCloseCallback(src->conn, lv_on_close);
        src->close_registered = false;
    }
    virConnectClose(src->conn);
    src->conn = NULL;
}

static void lv_set_error(GError **err, const char *uri, const char *what)
{
    virErrorPtr e = virGetLastError();

    g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_CONNECT,
                "libvirt %s: %s: %s", uri, what,
                e && e->message ? e->message : "failed");
}

/* Open and follow the connection (read-write) */
static bool lv_connect(LibvirtSource *src, GError **err)
{
    src->conn = virConnectOpen(src->uri);
    if (!src->conn) {
        lv_set_error(err, src->uri, "cannot connect");
        return false;
    }
    /* Not every driver has keepalive (test:///, embedded): optional */
    virConnectSetKeepAlive(src->conn, LV_KEEPALIVE_S, LV_KEEPALIVE_COUNT);
    if (virConnectRegisterCloseCallback(src->conn, lv_on_close,
                                        g_atomic_rc_box_acquire(src->post),
                                        lv_post_release) < 0) {
        lv_post_release(src->post);
    } else {
        src->close_registered = true;
    }
    src->lifecycle_id = virConnectDomainEventRegisterAny(
        src->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(lv_on_lifecycle),
        g_atomic_rc_box_acquire(src->post), lv_post_release);
    if (src->lifecycle_id < 0) {
        lv_post_release(src->post);
        lv_set_error(err, src->uri, "cannot follow domain events");
        lv_disconnect(src);
        return false;
    }
    return true;
}

static gboolean lv_retry(gpointer p);

static void lv_schedule_retry(LibvirtSource *src)
{
    src->retry = g_timeout_source_new(src->backoff_ms);
    g_source_set_callback(src->retry, lv_retry, src, NULL);
    g_source_attach(src->retry, src->d->ctx);
    src->backoff_ms = MIN(src->backoff_ms * 2, LV_BACKOFF_MAX_MS);
}

static gboolean lv_retry(gpointer p)
{
    LibvirtSource *src = p;
    g_autoptr(GError) err = NULL;

    g_source_unref(src->retry);
    src->retry = NULL;
    if (!lv_connect(src, &err)) {
        g_debug("%s", err->message);
        lv_schedule_retry(src);
        return G_SOURCE_REMOVE;
    }
    src->backoff_ms = LV_BACKOFF_MIN_MS;
    lv_list(src);
    return G_SOURCE_REMOVE;
}

static void lv_lost(LibvirtSource *src)
{
    vm_remove_all(src->d, src);
    lv_disconnect(src);
    if (!src->retry) {
        lv_schedule_retry(src);
    }
}

/* In the discovery thread */
static gboolean lv_msg_run(gpointer p)
{
    LvMsg *m = p;
    LibvirtSource *src = m->post->src;

    if (m->conn != src->conn) {
        return G_SOURCE_REMOVE;     /* from a connection since closed */
    }
    if (!m->dom) {
        lv_lost(src);
    } else {
        lv_lifecycle(src, m->dom, m->event);
    }
    return G_SOURCE_REMOVE;
}

static void lv_source_free(gpointer p)
{
    LibvirtSource *src = p;

    if (src->retry) {
        g_source_destroy(src->retry);
        g_source_unref(src->retry);
    }
    lv_disconnect(src);
    lv_post_release(src->post);
    g_free(src->uri);
    g_free(src->host);
    g_free(src);
}

static char *uri_host(const char *uri)
{
    g_autoptr(GUri) u = g_uri_parse(uri, G_URI_FLAGS_NONE, NULL);
    const char *host = u ? g_uri_get_host(u) : NULL;

    return host && *host ? g_strdup(host) : NULL;
}

bool discovery_add_libvirt(Discovery *d, const char *uri, GError **err)
{
    LibvirtSource *src;

    g_return_val_if_fail(!d->thread, false);
    if (!vm_link_libvirt_init(err)) {
        return false;
    }
    src = g_new0(LibvirtSource, 1);
    src->d = d;
    src->uri = g_strdup(uri);
    src->host = uri_host(uri);
    src->lifecycle_id = -1;
    src->backoff_ms = LV_BACKOFF_MIN_MS;
    src->post = g_atomic_rc_box_new0(LvPost);
    src->post->ctx = g_main_context_ref(d->ctx);
    src->post->src = src;
    if (!lv_connect(src, err)) {
        lv_source_free(src);
        return false;
    }
    g_ptr_array_add(d->libvirts, src);
    return true;
}

/* The thread */

static gpointer discovery_thread(gpointer opaque)
{
    Discovery *d = opaque;

    g_main_context_push_thread_default(d->ctx);
    for (guint i = 0; i < d->dirs->len; i++) {
        qmp_dir_scan(d, g_ptr_array_index(d->dirs, i));
    }
    for (guint i = 0; i < d->libvirts->len; i++) {
        lv_list(g_ptr_array_index(d->libvirts, i));
    }
    g_main_loop_run(d->loop);
    g_main_context_pop_thread_default(d->ctx);
    return NULL;
}

Discovery *discovery_new(DiscoveryAddFn *add, DiscoveryRemoveFn *remove,
                         void *opaque, const QmpLimits *lim)
{
    Discovery *d = g_new0(Discovery, 1);

    d->add = add;
    d->remove = remove;
    d->opaque = opaque;
    d->lim = lim ? *lim : qmp_default_limits;
    d->ctx = g_main_context_new();
    d->loop = g_main_loop_new(d->ctx, false);
    d->dirs = g_ptr_array_new_with_free_func(qmp_dir_free);
    d->libvirts = g_ptr_array_new_with_free_func(lv_source_free);
    d->owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inotify_fd >= 0) {
        d->inotify_source = g_unix_fd_source_new(d->inotify_fd, G_IO_IN);
        g_source_set_callback(d->inotify_source,
                              G_SOURCE_FUNC(inotify_ready), d, NULL);
        g_source_attach(d->inotify_source, d->ctx);
    }
    return d;
}

bool discovery_add_sources(Discovery *d, char **qmp_dirs, char **uris,
                           const char *prog)
{
    static char *default_dirs[] = {
        (char *)DISCOVERY_DEFAULT_QMP_DIR, NULL
    };
    char **dirs = qmp_dirs || uris ? qmp_dirs : default_dirs;
    unsigned ok = 0, tried = 0, i;

    for (i = 0; dirs && dirs[i]; i++, tried++) {
        g_autoptr(GError) err = NULL;

        if (discovery_add_qmp_dir(d, dirs[i], &err)) {
            ok++;
        } else {
            g_printerr("%s: --qmp-dir %s: %s\n", prog, dirs[i],
                       err ? err->message : "failed");
        }
    }
    for (i = 0; uris && uris[i]; i++, tried++) {
        g_autoptr(GError) err = NULL;

        if (discovery_add_libvirt(d, uris[i], &err)) {
            ok++;
        } else {
            g_printerr("%s: --connect %s: %s\n", prog, uris[i],
                       err ? err->message : "failed");
        }
    }
    if (!ok) {
        g_printerr("%s: no source of VMs works (%u tried)\n", prog, tried);
    }
    return ok > 0;
}

void discovery_start(Discovery *d)
{
    g_return_if_fail(!d->thread);
    d->thread = g_thread_new("discovery", discovery_thread, d);
}

static gboolean quit_loop(gpointer opaque)
{
    g_main_loop_quit(opaque);
    return G_SOURCE_REMOVE;
}

/*
 * Stop the thread and drop the sources.  No remove callback is made for
 * the VMs still known: the caller owns their links and stops them.
 */
void discovery_free(Discovery *d)
{
    if (!d) {
        return;
    }
    if (d->thread) {
        /* A source, not g_main_loop_quit(): the loop may not run yet */
        GSource *s = g_idle_source_new();

        g_source_set_callback(s, quit_loop, d->loop, NULL);
        g_source_attach(s, d->ctx);
        g_source_unref(s);
        g_thread_join(d->thread);
    }
    g_ptr_array_free(d->libvirts, true);
    g_ptr_array_free(d->dirs, true);
    if (d->inotify_source) {
        g_source_destroy(d->inotify_source);
        g_source_unref(d->inotify_source);
    }
    if (d->inotify_fd >= 0) {
        close(d->inotify_fd);
    }
    g_hash_table_destroy(d->owners);
    g_main_loop_unref(d->loop);
    g_main_context_unref(d->ctx);
    g_free(d);
}
