/*
 * qemu-oc host tools: the VMs of a host (or of several), one worker each
 *
 * See fleet.h.  The lock guards the table of workers only: discovery
 * adds and removes under it, readers take each worker's latest snapshot
 * under it (which never waits for a worker's I/O).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "fleet.h"

struct Fleet {
    GMutex lock;
    GHashTable *workers;        /* name -> VmWorker */
    Discovery *discovery;
    VmWorkerConfig cfg;
    VmWorkerNotifyFn *notify;
    void *opaque;
};

static void fleet_add(void *opaque, const char *name, const char *where,
                      VmLink *link)
{
    Fleet *f = opaque;
    VmWorker *old, *w;

    gpointer key = NULL, found = NULL;

    w = vm_worker_start(name, where, link, &f->cfg, f->notify, f->opaque);
    g_mutex_lock(&f->lock);
    if (g_hash_table_steal_extended(f->workers, name, &key, &found)) {
        g_free(key);
    }
    old = found;
    g_hash_table_insert(f->workers, g_strdup(name), w);
    g_mutex_unlock(&f->lock);
    if (old) {
        /* a VM of the same name came back: its old worker goes */
        vm_worker_stop(old);
    }
}

static void fleet_remove(void *opaque, const char *name)
{
    Fleet *f = opaque;
    gpointer key = NULL, w = NULL;

    g_mutex_lock(&f->lock);
    if (g_hash_table_steal_extended(f->workers, name, &key, &w)) {
        g_free(key);
    }
    g_mutex_unlock(&f->lock);
    if (w) {
        vm_worker_stop(w);
    }
}

Fleet *fleet_new(const VmWorkerConfig *cfg, const QmpLimits *lim,
                 VmWorkerNotifyFn *notify, void *opaque)
{
    Fleet *f = g_new0(Fleet, 1);

    g_mutex_init(&f->lock);
    f->workers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    f->cfg = cfg ? *cfg : vm_worker_default_config;
    f->notify = notify;
    f->opaque = opaque;
    f->discovery = discovery_new(fleet_add, fleet_remove, f, lim);
    return f;
}

Discovery *fleet_discovery(Fleet *f)
{
    return f->discovery;
}

void fleet_start(Fleet *f)
{
    discovery_start(f->discovery);
}

static gint by_name(gconstpointer a, gconstpointer b)
{
    const VmSnapshot *x = *(VmSnapshot *const *)a;
    const VmSnapshot *y = *(VmSnapshot *const *)b;

    return g_strcmp0(x->name, y->name);
}

GPtrArray *fleet_snapshots(Fleet *f)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)vm_snapshot_unref);
    GHashTableIter it;
    gpointer w;

    g_mutex_lock(&f->lock);
    g_hash_table_iter_init(&it, f->workers);
    while (g_hash_table_iter_next(&it, NULL, &w)) {
        g_ptr_array_add(out, vm_worker_snapshot(w));
    }
    g_mutex_unlock(&f->lock);
    g_ptr_array_sort(out, by_name);
    return out;
}

bool fleet_set_balloon(Fleet *f, const char *name, uint64_t bytes,
                       VmWorkerBalloonFn *done, void *opaque)
{
    VmWorker *w;

    g_mutex_lock(&f->lock);
    w = g_hash_table_lookup(f->workers, name);
    if (w) {
        vm_worker_set_balloon(w, bytes, done, opaque);
    }
    g_mutex_unlock(&f->lock);
    return w != NULL;
}

bool fleet_set_running(Fleet *f, const char *name, bool running,
                       VmWorkerRunFn *done, void *opaque)
{
    VmWorker *w;

    g_mutex_lock(&f->lock);
    w = g_hash_table_lookup(f->workers, name);
    if (w) {
        vm_worker_set_running(w, running, done, opaque);
    }
    g_mutex_unlock(&f->lock);
    return w != NULL;
}

bool fleet_kick(Fleet *f, const char *name)
{
    VmWorker *w;

    g_mutex_lock(&f->lock);
    w = g_hash_table_lookup(f->workers, name);
    if (w) {
        vm_worker_kick(w);
    }
    g_mutex_unlock(&f->lock);
    return w != NULL;
}

void fleet_kick_all(Fleet *f)
{
    GHashTableIter it;
    gpointer w;

    g_mutex_lock(&f->lock);
    g_hash_table_iter_init(&it, f->workers);
    while (g_hash_table_iter_next(&it, NULL, &w)) {
        vm_worker_kick(w);
    }
    g_mutex_unlock(&f->lock);
}

void fleet_free(Fleet *f)
{
    GHashTableIter it;
    gpointer w;

    /* no more adds or removes, then every worker stops on its own */
    discovery_free(f->discovery);
    g_mutex_lock(&f->lock);
    g_hash_table_iter_init(&it, f->workers);
    while (g_hash_table_iter_next(&it, NULL, &w)) {
        vm_worker_stop(w);
    }
    g_mutex_unlock(&f->lock);
    g_hash_table_destroy(f->workers);
    g_mutex_clear(&f->lock);
    g_free(f);
}
