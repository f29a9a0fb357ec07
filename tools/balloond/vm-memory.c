/*
 * qemu-oc-balloond: what the daemon knows of each VM's QEMU memory
 *
 * See vm-memory.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "qemu-memory.h"
#include "vm-memory.h"

/* A QEMU's growth is measured over this long */
#define RSS_WINDOW_MS 1000
/*
 * A plan reads a VM's resident memory again if it is older than this
 * (where memory is short); elsewhere a publication does, after
 * RSS_CALM_US
 */
#define RSS_FRESH_US (100 * 1000)
#define RSS_CALM_US (1000 * 1000)
/*
 * Read QEMU's own part again this often where memory is short (a tight
 * domain, host pressure), and at least this often elsewhere: smaps is
 * long, and read for every VM it would cost a host of 1,000 VMs a few
 * per cent of a core
 */
#define OWN_REFRESH_US (10 * G_USEC_PER_SEC)
#define OWN_REFRESH_CALM_US (300 * G_USEC_PER_SEC)
/*
 * Under host pressure alone a plan reads at most this many (the oldest
 * readings); each VM's publications read it every RSS_FRESH_US meanwhile.
 * A host of up to this many VMs reads every one at every plan; one of
 * 1,000 would spend 5 ms of every plan on them (a plan's cost delays
 * every decision: see coalesce.h)
 */
#define RSS_PLAN_BUDGET 64
/* The open files of VMs gone from the fleet are closed this often */
#define PRUNE_US G_USEC_PER_SEC

BdVm *daemon_vm(const char *name)
{
    BdVm *v = g_hash_table_lookup(bd.vms, name);

    if (!v) {
        v = g_new0(BdVm, 1);
        v->last_reason = POLICY_REASON__MAX;
        v->own_mib = -1;
        v->rss_mib = -1;
        g_hash_table_insert(bd.vms, g_strdup(name), v);
    }
    return v;
}

void daemon_vm_free(gpointer p)
{
    BdVm *v = p;

    qemu_statm_unref(v->statm);
    g_free(v);
}

void vm_memory_new_process(BdVm *v)
{
    v->own_mib = -1;
    v->own_us = 0;
    g_clear_pointer(&v->statm, qemu_statm_unref);
}

/* The resident memory just read (under bd.lock) */
static void note_rss(BdVm *v, int64_t rss_mib, int64_t now_ms)
{
    v->rss_mib = rss_mib;
    v->rss_us = g_get_monotonic_time();
    if (rss_mib >= 0) {
        trend_add(&v->rss, now_ms, rss_mib, RSS_WINDOW_MS);
    }
}

/* A reference to VM @name's statm for process @pid, opened if need be */
static QemuStatm *statm_get(const char *name, int pid)
{
    QemuStatm *m = NULL;
    BdVm *v;

    g_mutex_lock(&bd.lock);
    v = daemon_vm(name);
    if (v->statm && qemu_statm_pid(v->statm) == pid) {
        m = qemu_statm_ref(v->statm);
    }
    g_mutex_unlock(&bd.lock);
    if (m || pid <= 0) {
        return m;
    }
    m = qemu_statm_open(pid);          /* (a file opened: under no lock) */
    if (m) {
        g_mutex_lock(&bd.lock);
        v = daemon_vm(name);
        if (v->pid == pid && !v->statm) {
            v->statm = qemu_statm_ref(m);
        }
        g_mutex_unlock(&bd.lock);
    }
    return m;
}

/* Read @m for VM @name and note it, if still its process (no lock held) */
static void read_rss(const char *name, QemuStatm *m, int64_t now_ms)
{
    int64_t rss = m ? qemu_statm_rss_mib(m) : -1;
    BdVm *v;

    g_mutex_lock(&bd.lock);
    v = daemon_vm(name);
    if (m && v->pid == qemu_statm_pid(m)) {
        note_rss(v, rss, now_ms);
        if (rss < 0 && v->statm == m) {
            /* (its process is gone: a new one is opened afresh) */
            g_clear_pointer(&v->statm, qemu_statm_unref);
        }
    }
    g_mutex_unlock(&bd.lock);
}

/* Read QEMU's own memory again, if due */
static void refresh_own(const VmSnapshot *s)
{
    int64_t now_us = g_get_monotonic_time(), own = -1;
    g_autoptr(GError) err = NULL;
    bool due, first;
    BdVm *v;

    g_mutex_lock(&bd.lock);
    v = daemon_vm(s->name);
    due = s->pid > 0 &&
          (!v->own_us ||
           now_us - v->own_us >= ((v->domains & bd.tight) || bd.host_pressure
                                  ? OWN_REFRESH_US : OWN_REFRESH_CALM_US));
    first = !v->own_us;
    if (due) {
        v->own_us = now_us;
    }
    g_mutex_unlock(&bd.lock);
    if (!due) {
        return;
    }
    if (!qemu_memory_own_mib(s->pid, &own, &err) && first) {
        /* (said once per process: its balloon's size counts instead) */
        g_message("%s: QEMU process %d: %s", s->name, s->pid, err->message);
    }
    g_mutex_lock(&bd.lock);
    v = daemon_vm(s->name);
    if (v->pid == s->pid) {
        v->own_mib = own;
    }
    g_mutex_unlock(&bd.lock);
}

void vm_memory_refresh(const VmSnapshot *s)
{
    int64_t now_us = g_get_monotonic_time();
    g_autoptr(QemuStatm) m = NULL;
    bool due;
    BdVm *v;

    refresh_own(s);
    g_mutex_lock(&bd.lock);
    v = daemon_vm(s->name);
    due = s->pid > 0 &&
          now_us - v->rss_us >= ((v->domains & bd.tight) || bd.host_pressure
                                 ? RSS_FRESH_US : RSS_CALM_US);
    g_mutex_unlock(&bd.lock);
    if (due) {
        m = statm_get(s->name, s->pid);
        read_rss(s->name, m, g_get_real_time() / 1000);
    }
}

/* A VM a plan may read, and when it was last read */
typedef struct Older {
    unsigned i;
    int64_t rss_us;
} Older;

static int by_age(const void *a, const void *b)
{
    const Older *x = a, *y = b;

    return x->rss_us < y->rss_us ? -1 : x->rss_us > y->rss_us;
}

void vm_memory_read(GPtrArray *snaps, const VmRssWant *want, int64_t now_ms)
{
    int64_t now_us = g_get_monotonic_time();
    g_autofree QemuStatm **m = g_new0(QemuStatm *, snaps->len);
    g_autofree bool *due = g_new0(bool, snaps->len);
    g_autofree Older *older = g_new(Older, snaps->len);
    unsigned i, n_older = 0;

    g_mutex_lock(&bd.lock);
    for (i = 0; i < snaps->len; i++) {
        VmSnapshot *s = g_ptr_array_index(snaps, i);
        BdVm *v = daemon_vm(s->name);

        if (want[i] == VM_RSS_NO || s->pid <= 0 || v->pid != s->pid ||
            now_us - v->rss_us < RSS_FRESH_US) {
            continue;
        }
        if (want[i] == VM_RSS_TIGHT) {
            due[i] = true;
        } else {
            older[n_older++] = (Older){ .i = i, .rss_us = v->rss_us };
        }
    }
    if (n_older > RSS_PLAN_BUDGET) {
        qsort(older, n_older, sizeof(*older), by_age);
        n_older = RSS_PLAN_BUDGET;
    }
    for (i = 0; i < n_older; i++) {
        due[older[i].i] = true;
    }
    for (i = 0; i < snaps->len; i++) {
        BdVm *v = due[i] ? daemon_vm(((VmSnapshot *)
                                      g_ptr_array_index(snaps, i))->name)
                         : NULL;

        if (v && v->statm && qemu_statm_pid(v->statm) == v->pid) {
            m[i] = qemu_statm_ref(v->statm);
        }
    }
    g_mutex_unlock(&bd.lock);
    for (i = 0; i < snaps->len; i++) {
        VmSnapshot *s = g_ptr_array_index(snaps, i);

        if (due[i]) {
            if (!m[i]) {
                m[i] = statm_get(s->name, s->pid);
            }
            read_rss(s->name, m[i], now_ms);
            qemu_statm_unref(m[i]);
        }
    }
}

static int by_name(const void *key, const void *elem)
{
    const VmSnapshot *s = *(VmSnapshot *const *)elem;

    return strcmp(key, s->name);
}

void vm_memory_prune(GPtrArray *snaps)
{
    static int64_t pruned_us;
    int64_t now_us = g_get_monotonic_time();
    GHashTableIter it;
    gpointer name, p;

    if (now_us - pruned_us < PRUNE_US) {
        return;
    }
    pruned_us = now_us;
    g_mutex_lock(&bd.lock);
    g_hash_table_iter_init(&it, bd.vms);
    while (g_hash_table_iter_next(&it, &name, &p)) {
        BdVm *v = p;

        if (v->statm && !bsearch(name, snaps->pdata, snaps->len,
                                 sizeof(gpointer), by_name)) {
            g_clear_pointer(&v->statm, qemu_statm_unref);
        }
    }
    g_mutex_unlock(&bd.lock);
}

double vm_memory_growth(const BdVm *v)
{
    return v->rss_mib < 0 ? 0 : trend_rise_per_s(&v->rss, 50);
}

/*
 * Its resident memory now less QEMU's own part, as last read from smaps
 * (it changes slowly; smaps costs more than statm)
 */
uint64_t vm_memory_guest_held_mib(const BdVm *v)
{
    if (v->rss_mib <= 0 || v->own_mib < 0) {
        return 0;
    }
    return MAX(v->rss_mib - v->own_mib, 1);
}
