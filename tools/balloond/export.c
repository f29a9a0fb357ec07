/*
 * qemu-oc-balloond: what the daemon gives its readers
 *
 * The metrics endpoint (metrics.c) and the collector's frames
 * (collector.c) call these from their own threads; they take the
 * published snapshots and, under the daemon's lock, what the policy
 * decided for each VM (its target, its decisions, its brake).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "daemon.h"
#include "vm-snapshot-wire.h"

void daemon_collect(void *opaque G_GNUC_UNUSED, GPtrArray *vms,
                    HostMemory *host, GPtrArray *domains)
{
    g_autoptr(GPtrArray) snaps = fleet_snapshots(bd.fleet);
    PolicyDomain pd[POLICY_MAX_DOMAINS];
    MemDomainState st[POLICY_MAX_DOMAINS];
    unsigned i, n;

    n = domains_get(bd.domains, pd, st);
    for (i = 0; i < n; i++) {
        MetricsDomain *m = g_new0(MetricsDomain, 1);

        m->dir = domains_dir(bd.domains, i);
        m->st = st[i];
        m->reserve_mib = policy_domain_reserve_mib(&bd.policy, &pd[i]);
        g_ptr_array_add(domains, m);
    }

    host_pressure_get(bd.host, host);
    policy_host_pressure(&bd.policy, host);
    g_mutex_lock(&bd.lock);
    for (i = 0; i < snaps->len; i++) {
        VmSnapshot *s = g_ptr_array_index(snaps, i);
        MetricsVm *m = g_new0(MetricsVm, 1);
        BdVm *v = g_hash_table_lookup(bd.vms, s->name);

        m->snap = vm_snapshot_ref(s);
        brakes_get(bd.brakes, s->name, &m->braked, &m->brakes);
        if (v) {
            m->target_mib = v->target_mib;
            memcpy(m->decisions, v->decisions, sizeof(m->decisions));
        }
        g_ptr_array_add(vms, m);
    }
    g_mutex_unlock(&bd.lock);
}

GString *daemon_frame_vms(void *opaque G_GNUC_UNUSED)
{
    g_autoptr(GPtrArray) snaps = fleet_snapshots(bd.fleet);
    GString *out = g_string_sized_new(snaps->len * 2048 + 2);
    guint i;

    g_string_append_c(out, '[');
    for (i = 0; i < snaps->len; i++) {
        const VmSnapshot *s = g_ptr_array_index(snaps, i);
        json_object *o = vm_snapshot_to_wire(s);
        const char *txt;
        BdVm *v;
        size_t len;

        /* the policy's target: readers flag a balloon not following it */
        g_mutex_lock(&bd.lock);
        v = g_hash_table_lookup(bd.vms, s->name);
        if (v && v->target_mib) {
            vm_snapshot_add_target(o, (int64_t)v->target_mib << 20,
                                   v->target_ms);
        }
        g_mutex_unlock(&bd.lock);
        txt = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN,
                                                &len);

        if (i) {
            g_string_append_c(out, ',');
        }
        g_string_append_len(out, txt, len);
        json_object_put(o);
    }
    g_string_append_c(out, ']');
    return out;
}
