/*
 * qemu-oc-balloond: the memory domains the VMs live in, watched
 *
 * See domains.h.  One thread with its own GMainContext reads every
 * domain on a timer and when a kernel notification arrives; the table
 * is under a lock that readers hold only to copy it.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <glib-unix.h>
#include "domains.h"

/* The headroom's recent past, for how fast it falls */
#define FALL_WINDOW_MS 1000

typedef struct Domain {
    Domains *ds;
    MemDomain *md;
    char *dir;
    MemDomainState st;
    PolicyDomain pd;
    bool read_once;
    bool was_short;
    int64_t reported_headroom;      /* as of the last callback */
    int notify_fd;                  /* eventfd or inotify fd; -1: none */
    uint64_t threshold;             /* v1: the usage armed for */
    GSource *notify;
    Trend fall;                     /* -headroom, the last FALL_WINDOW_MS */
} Domain;

struct Domains {
    DomainsConfig cfg;
    DomainsChangedFn *fn;
    void *opaque;
    GMainContext *ctx;
    GMainLoop *loop;
    GThread *thread;

    GMutex lock;
    Domain *dom[POLICY_MAX_DOMAINS];
    unsigned n;
};

static int64_t now_ms(void)
{
    return g_get_real_time() / 1000;
}

static gboolean on_notify(int fd, GIOCondition cond, gpointer opaque);

/* (Re-)arm the kernel's notification of @d (watcher thread) */
static void arm(Domain *d)
{
    g_autoptr(GError) err = NULL;
    uint64_t reserve = policy_domain_reserve_mib(d->ds->cfg.policy, &d->pd);
    uint64_t threshold;

    if (memdomain_kind(d->md) == MEMDOMAIN_V2) {
        if (d->notify_fd < 0) {
            d->notify_fd = memdomain_events_watch_fd(d->md, &err);
        }
    } else {
        /* usage crossing (limit - reserve) wakes us, either direction */
        reserve <<= 20;
        threshold = d->st.limit > reserve ? d->st.limit - reserve : 0;
        if (d->notify_fd >= 0 && threshold == d->threshold) {
            return;
        }
        if (d->notify) {
            g_source_destroy(d->notify);
            g_source_unref(d->notify);
            d->notify = NULL;
        }
        if (d->notify_fd >= 0) {
            close(d->notify_fd);
        }
        d->threshold = threshold;
        d->notify_fd = memdomain_usage_threshold_fd(d->md, threshold, &err);
    }
    if (d->notify_fd < 0) {
        g_debug("%s: no kernel notification (%s): polling only", d->dir,
                err ? err->message : "?");
        return;
    }
    if (!d->notify) {
        d->notify = g_unix_fd_source_new(d->notify_fd, G_IO_IN);
        g_source_set_callback(d->notify, G_SOURCE_FUNC(on_notify), d, NULL);
        g_source_attach(d->notify, d->ds->ctx);
    }
}

/*
 * Read @d; true if the policy should look again: the domain became
 * short or recovered, lost more than the hysteresis while short, or
 * counted a new OOM kill
 */
static bool read_domain(Domain *d)
{
    const PolicyConfig *pc = d->ds->cfg.policy;
    g_autoptr(GError) err = NULL;
    MemDomainState st;
    bool changed = false, now_short;
    int64_t reserve, t = now_ms();

    if (!memdomain_read(d->md, &st, &err)) {
        g_warning("%s: %s", d->dir, err->message);
        return false;
    }
    g_mutex_lock(&d->ds->lock);
    if (d->read_once && st.oom_kills > d->st.oom_kills) {
        g_message("%s: %" G_GUINT64_FORMAT " OOM kill(s) in this cgroup",
                  d->dir, st.oom_kills - d->st.oom_kills);
        d->pd.oom_ms = t;
        changed = true;
    }
    d->st = st;
    d->pd.headroom_mib = st.headroom / (1 << 20);
    trend_add(&d->fall, t, -d->pd.headroom_mib, FALL_WINDOW_MS);
    d->pd.falling_mib_s = trend_rise_per_s(&d->fall, 50);
    d->pd.limit_mib = st.limit >> 20;
    reserve = policy_domain_reserve_mib(pc, &d->pd);
    now_short = d->pd.headroom_mib < reserve;
    if (now_short) {
        d->pd.short_ms = t;
    }
    if (now_short != d->was_short ||
        (now_short && d->reported_headroom - d->pd.headroom_mib >=
                      (int64_t)pc->hysteresis_mib) || !d->read_once) {
        changed = true;
    }
    if (changed) {
        d->reported_headroom = d->pd.headroom_mib;
    }
    d->was_short = now_short;
    d->read_once = true;
    g_mutex_unlock(&d->ds->lock);
    return changed;
}

static void read_all(Domains *ds)
{
    bool changed = false;
    unsigned i, n;

    g_mutex_lock(&ds->lock);
    n = ds->n;
    g_mutex_unlock(&ds->lock);
    for (i = 0; i < n; i++) {
        changed |= read_domain(ds->dom[i]);
        arm(ds->dom[i]);
    }
    if (changed) {
        ds->fn(ds->opaque);
    }
}

static gboolean on_notify(int fd, GIOCondition cond G_GNUC_UNUSED,
                          gpointer opaque)
{
    Domain *d = opaque;
    char buf[4096];

    /* an eventfd's counter, or inotify events: what matters is "now" */
    if (read(fd, buf, sizeof(buf)) < 0 && errno != EAGAIN &&
        errno != EINTR) {
        g_warning("%s: notification: %s", d->dir, g_strerror(errno));
    }
    read_all(d->ds);
    return G_SOURCE_CONTINUE;
}

static gboolean on_tick(gpointer opaque)
{
    read_all(opaque);
    return G_SOURCE_CONTINUE;
}

static gpointer watcher(gpointer opaque)
{
    Domains *ds = opaque;

    g_main_context_push_thread_default(ds->ctx);
    g_main_loop_run(ds->loop);
    g_main_context_pop_thread_default(ds->ctx);
    return NULL;
}

Domains *domains_start(const DomainsConfig *cfg, DomainsChangedFn *fn,
                       void *opaque)
{
    Domains *ds = g_new0(Domains, 1);
    GSource *tick;

    ds->cfg = *cfg;
    ds->fn = fn;
    ds->opaque = opaque;
    g_mutex_init(&ds->lock);
    ds->ctx = g_main_context_new();
    ds->loop = g_main_loop_new(ds->ctx, FALSE);
    tick = g_timeout_source_new(MAX(cfg->poll_ms, 10));
    g_source_set_callback(tick, on_tick, ds, NULL);
    g_source_attach(tick, ds->ctx);
    g_source_unref(tick);
    ds->thread = g_thread_new("domains", watcher, ds);
    return ds;
}

static gboolean first_read(gpointer opaque)
{
    read_all(opaque);
    return G_SOURCE_REMOVE;
}

int domains_add(Domains *ds, const char *dir, GError **err)
{
    g_autofree char *canon = g_canonicalize_filename(dir, "/");
    MemDomain *md;
    Domain *d;
    unsigned i;

    g_mutex_lock(&ds->lock);
    for (i = 0; i < ds->n; i++) {
        if (!strcmp(ds->dom[i]->dir, canon)) {
            g_mutex_unlock(&ds->lock);
            return i;
        }
    }
    g_mutex_unlock(&ds->lock);
    md = memdomain_open(canon, NULL, err);
    if (!md) {
        return -1;
    }
    d = g_new0(Domain, 1);
    d->ds = ds;
    d->md = md;
    d->dir = g_steal_pointer(&canon);
    d->notify_fd = -1;
    if (ds->cfg.policy->domains) {
        d->pd.own = g_hash_table_lookup(ds->cfg.policy->domains, d->dir);
    }
    /*
     * a first read here: a plan made before the watcher reads it must not
     * take a domain never read (headroom 0) for a short one
     */
    if (!memdomain_read(md, &d->st, err)) {
        memdomain_free(md);
        g_free(d->dir);
        g_free(d);
        return -1;
    }
    d->pd.headroom_mib = d->st.headroom / (1 << 20);
    d->pd.limit_mib = d->st.limit >> 20;
    /*
     * the daemon cannot know when the domain was last short (it may have
     * been restarted in the middle of a squeeze, with balloons still on
     * their way to an earlier daemon's targets): its cool-down starts now
     */
    d->pd.short_ms = g_get_real_time() / 1000;
    g_mutex_lock(&ds->lock);
    for (i = 0; i < ds->n && strcmp(ds->dom[i]->dir, d->dir); i++) {
        /* another thread may have added it meanwhile */
    }
    if (i == ds->n && ds->n == POLICY_MAX_DOMAINS) {
        g_mutex_unlock(&ds->lock);
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOSPC,
                    "%s: more than %d memory domains", d->dir,
                    POLICY_MAX_DOMAINS);
        memdomain_free(d->md);
        g_free(d->dir);
        g_free(d);
        return -1;
    }
    if (i < ds->n) {
        g_mutex_unlock(&ds->lock);
        memdomain_free(d->md);
        g_free(d->dir);
        g_free(d);
        return i;
    }
    ds->dom[ds->n++] = d;
    g_mutex_unlock(&ds->lock);
    g_message("watching memory domain %s (cgroup %s)", d->dir,
              memdomain_kind(md) == MEMDOMAIN_V2 ? "v2" : "v1");
    /* read (and arm) it in the watcher thread, now */
    g_main_context_invoke(ds->ctx, first_read, ds);
    return i;
}

uint64_t domains_of_pid(Domains *ds, int pid, GError **err)
{
    const DomainsConfig *c = &ds->cfg;
    g_autoptr(GPtrArray) dirs = NULL;
    uint64_t set = 0;
    unsigned i;
    int k;

    dirs = memdomain_find(pid, c->proc_root ? c->proc_root : "/proc",
                          c->v1_root ? c->v1_root : "/sys/fs/cgroup/memory",
                          c->v2_root ? c->v2_root : "/sys/fs/cgroup", NULL,
                          NULL, err);
    if (!dirs) {
        return 0;
    }
    for (i = 0; i < dirs->len; i++) {
        k = domains_add(ds, g_ptr_array_index(dirs, i), err);
        if (k < 0) {
            return 0;
        }
        set |= 1ull << k;
    }
    return set;
}

unsigned domains_get(Domains *ds, PolicyDomain *out, MemDomainState *st)
{
    unsigned i, n;

    g_mutex_lock(&ds->lock);
    n = ds->n;
    for (i = 0; i < n; i++) {
        out[i] = ds->dom[i]->pd;
        if (st) {
            st[i] = ds->dom[i]->st;
        }
    }
    g_mutex_unlock(&ds->lock);
    return n;
}

char *domains_dir(Domains *ds, unsigned i)
{
    char *dir;

    g_mutex_lock(&ds->lock);
    dir = i < ds->n ? g_strdup(ds->dom[i]->dir) : NULL;
    g_mutex_unlock(&ds->lock);
    return dir;
}

void domains_stop(Domains *ds)
{
    unsigned i;

    g_main_loop_quit(ds->loop);
    g_thread_join(ds->thread);
    for (i = 0; i < ds->n; i++) {
        Domain *d = ds->dom[i];

        if (d->notify) {
            g_source_destroy(d->notify);
            g_source_unref(d->notify);
        }
        if (d->notify_fd >= 0) {
            close(d->notify_fd);
        }
        memdomain_free(d->md);
        g_free(d->dir);
        g_free(d);
    }
    g_main_loop_unref(ds->loop);
    g_main_context_unref(ds->ctx);
    g_mutex_clear(&ds->lock);
    g_free(ds);
}
