/*
 * qemu-oc-balloond: the brake, applied (see brake.h)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include "brake.h"

typedef struct BrakeVm {
    int64_t braked_ms;          /* wall clock; 0: running */
    int64_t released_ms;        /* last released after the time limit */
    uint64_t count;
} BrakeVm;

struct Brakes {
    Fleet *fleet;
    char *state_path;
    bool dry_run;
    FILE *log_json;
    GMutex *log_lock;

    GMutex lock;
    GCond done;                 /* a resume request ended */
    GHashTable *vms;            /* name -> BrakeVm */
    GHashTable *leftover;       /* names a previous daemon left braked */
    unsigned n_braked;
    unsigned resuming;          /* resume requests not ended yet */
};

static BrakeVm *brake_vm(Brakes *b, const char *name)
{
    BrakeVm *v = g_hash_table_lookup(b->vms, name);

    if (!v) {
        v = g_new0(BrakeVm, 1);
        g_hash_table_insert(b->vms, g_strdup(name), v);
    }
    return v;
}

static bool load_state(Brakes *b, GError **err)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    GError *e = NULL;
    unsigned i;

    if (!g_file_get_contents(b->state_path, &text, NULL, &e)) {
        if (g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_error_free(e);
            return true;
        }
        g_propagate_prefixed_error(err, e, "--state-file: ");
        return false;
    }
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        if (*lines[i]) {
            g_hash_table_add(b->leftover, g_strdup(lines[i]));
        }
    }
    if (g_hash_table_size(b->leftover)) {
        g_message("%u VM(s) were left braked by a daemon that stopped "
                  "without resuming them: each is resumed as it appears",
                  g_hash_table_size(b->leftover));
    }
    return true;
}

/* Write the names of the VMs braked now (one plan or exit at a time) */
static void save_state(Brakes *b)
{
    g_autoptr(GString) text = g_string_new(NULL);
    g_autoptr(GError) err = NULL;
    GHashTableIter it;
    gpointer name, v;

    if (!b->state_path) {
        return;
    }
    g_mutex_lock(&b->lock);
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, &name, &v)) {
        if (((BrakeVm *)v)->braked_ms) {
            g_string_append_printf(text, "%s\n", (char *)name);
        }
    }
    g_hash_table_iter_init(&it, b->leftover);
    while (g_hash_table_iter_next(&it, &name, NULL)) {
        g_string_append_printf(text, "%s\n", (char *)name);
    }
    g_mutex_unlock(&b->lock);
    if (!g_file_set_contents(b->state_path, text->str, text->len, &err)) {
        g_warning("--state-file: %s: a braked VM would stay paused if the "
                  "daemon died now", err->message);
    }
}

Brakes *brakes_new(Fleet *fleet, const char *state_path, bool dry_run,
                   FILE *log_json, GMutex *log_lock, GError **err)
{
    Brakes *b = g_new0(Brakes, 1);

    b->fleet = fleet;
    b->state_path = g_strdup(state_path);
    b->dry_run = dry_run;
    b->log_json = log_json;
    b->log_lock = log_lock;
    g_mutex_init(&b->lock);
    g_cond_init(&b->done);
    b->vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    b->leftover = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        NULL);
    if (state_path && !load_state(b, err)) {
        return NULL;        /* (the daemon exits) */
    }
    return b;
}

void brakes_input(Brakes *b, const char *name, PolicyVm *in)
{
    BrakeVm *v;

    g_mutex_lock(&b->lock);
    v = brake_vm(b, name);
    in->braked_ms = v->braked_ms;
    in->released_ms = v->released_ms;
    g_mutex_unlock(&b->lock);
}

static void log_json(Brakes *b, const char *name, const char *what,
                     int64_t braked_for_ms, int64_t now_ms)
{
    json_object *o;

    if (!b->log_json) {
        return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "time-ms", json_object_new_int64(now_ms));
    json_object_object_add(o, "vm", json_object_new_string(name));
    json_object_object_add(o, "brake", json_object_new_string(what));
    if (braked_for_ms >= 0) {
        json_object_object_add(o, "braked-ms",
                               json_object_new_int64(braked_for_ms));
    }
    g_mutex_lock(b->log_lock);
    fprintf(b->log_json, "%s\n",
            json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    fflush(b->log_json);
    g_mutex_unlock(b->log_lock);
    json_object_put(o);
}

/* A pause or resume request ended (on the VM's worker loop thread) */
static void run_done(void *opaque, VmWorker *w, bool running,
                     const GError *err)
{
    Brakes *b = opaque;
    const char *name = vm_worker_name(w);

    if (err) {
        g_message("%s: %s failed: %s", name,
                  running ? "resuming" : "pausing", err->message);
    }
    g_mutex_lock(&b->lock);
    if (!running && err) {
        BrakeVm *v = brake_vm(b, name);

        /* not paused: not braked */
        v->braked_ms = 0;
        b->n_braked--;
    }
    if (running && b->resuming) {
        b->resuming--;
        g_cond_broadcast(&b->done);
    }
    g_mutex_unlock(&b->lock);
}

/* Log line of one change; false if @d is no change */
static bool change(Brakes *b, const char *name,
                   const PolicyBrakeDecision *d, int64_t now_ms,
                   int64_t *braked_for)
{
    BrakeVm *v = brake_vm(b, name);

    if (d->brake == (v->braked_ms != 0)) {
        return false;
    }
    *braked_for = d->brake ? -1 : now_ms - v->braked_ms;
    /* (a dry run remembers what it would have done: one line per change) */
    if (d->brake) {
        v->braked_ms = now_ms;
        v->count++;
        b->n_braked++;
    } else {
        v->braked_ms = 0;
        v->released_ms = d->reason == POLICY_BRAKE_TIME ? now_ms : 0;
        b->n_braked--;
    }
    return true;
}

/*
 * A braked VM the plan no longer has (its QEMU went away): nothing to
 * resume, and nothing to remember (under b->lock)
 */
static bool forget_gone(Brakes *b, const char *const *names, unsigned n)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter it;
    gpointer name, p;
    bool any = false;
    unsigned i;

    for (i = 0; i < n; i++) {
        g_hash_table_add(seen, (gpointer)names[i]);
    }
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, &name, &p)) {
        if (((BrakeVm *)p)->braked_ms && !g_hash_table_contains(seen, name)) {
            g_message("%s: brake released: the VM is gone", (char *)name);
            b->n_braked--;
            g_hash_table_iter_remove(&it);
            any = true;
        }
    }
    return any;
}

void brakes_apply(Brakes *b, const char *const *names, const PolicyVm *in,
                  const PolicyBrakeDecision *d, unsigned n, int64_t now_ms)
{
    g_autofree int64_t *braked_for = g_new0(int64_t, n);
    g_autofree bool *changed = g_new0(bool, n);
    bool any;
    unsigned i;

    g_mutex_lock(&b->lock);
    any = b->n_braked && forget_gone(b, names, n);
    for (i = 0; i < n; i++) {
        changed[i] = change(b, names[i], &d[i], now_ms, &braked_for[i]);
        any |= changed[i];
    }
    g_mutex_unlock(&b->lock);
    if (!any) {
        return;
    }
    if (!b->dry_run) {
        save_state(b);      /* before the pause: a crash never leaves one */
    }
    for (i = 0; i < n; i++) {
        const char *what = policy_brake_reason_names[d[i].reason];

        if (!changed[i]) {
            continue;
        }
        if (!b->dry_run &&
            !fleet_set_running(b->fleet, names[i], !d[i].brake, run_done, b)) {
            g_message("%s: gone before its brake changed", names[i]);
        }
        if (d[i].brake) {
            g_message("%s: brake %s%s: vCPUs paused (its QEMU grows %.0f "
                      "MiB/s in a memory domain nearly out; the others' "
                      "balloons are on their way)", names[i], what,
                      b->dry_run ? " (dry run)" : "", in[i].qemu_rss_mib_s);
        } else {
            g_message("%s: brake released (%s)%s after %" G_GINT64_FORMAT
                      " ms: vCPUs resumed", names[i], what,
                      b->dry_run ? " (dry run)" : "", braked_for[i]);
        }
        log_json(b, names[i], what, braked_for[i], now_ms);
    }
}

void brakes_seen(Brakes *b, const char *name)
{
    bool left;

    g_mutex_lock(&b->lock);
    left = g_hash_table_remove(b->leftover, name);
    g_mutex_unlock(&b->lock);
    if (!left) {
        return;
    }
    g_message("%s: resumed: a daemon that stopped left it braked", name);
    if (!b->dry_run) {
        fleet_set_running(b->fleet, name, true, NULL, NULL);
    }
    save_state(b);
}

bool brakes_any(Brakes *b)
{
    bool any;

    g_mutex_lock(&b->lock);
    any = b->n_braked > 0;
    g_mutex_unlock(&b->lock);
    return any;
}

void brakes_get(Brakes *b, const char *name, bool *braked, uint64_t *count)
{
    BrakeVm *v;

    g_mutex_lock(&b->lock);
    v = g_hash_table_lookup(b->vms, name);
    *braked = v && v->braked_ms;
    *count = v ? v->count : 0;
    g_mutex_unlock(&b->lock);
}

void brakes_release_all(Brakes *b, int timeout_ms)
{
    int64_t end = g_get_monotonic_time() + timeout_ms * (int64_t)1000;
    GHashTableIter it;
    gpointer name, p;

    g_mutex_lock(&b->lock);
    g_hash_table_iter_init(&it, b->vms);
    while (g_hash_table_iter_next(&it, &name, &p)) {
        BrakeVm *v = p;

        if (!v->braked_ms) {
            continue;
        }
        g_message("%s: brake released (the daemon stops)%s: vCPUs resumed",
                  (char *)name, b->dry_run ? " (dry run)" : "");
        v->braked_ms = 0;
        b->n_braked--;
        if (!b->dry_run &&
            fleet_set_running(b->fleet, name, true, run_done, b)) {
            b->resuming++;
        }
    }
    while (b->resuming && g_cond_wait_until(&b->done, &b->lock, end)) {
        /* until each has answered, or the time is up */
    }
    if (b->resuming) {
        g_warning("%u VM(s) did not answer their resume in time: the next "
                  "daemon resumes them (--state-file)", b->resuming);
    }
    g_mutex_unlock(&b->lock);
    if (!b->resuming) {
        save_state(b);
    }
}

void brakes_free(Brakes *b)
{
    bool pending;

    if (!b) {
        return;
    }
    g_mutex_lock(&b->lock);
    pending = b->resuming > 0;
    g_mutex_unlock(&b->lock);
    if (pending) {
        return;     /* a stuck VM's resume may still end: it is told here */
    }
    g_hash_table_destroy(b->vms);
    g_hash_table_destroy(b->leftover);
    g_mutex_clear(&b->lock);
    g_cond_clear(&b->done);
    g_free(b->state_path);
    g_free(b);
}
