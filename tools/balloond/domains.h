/*
 * qemu-oc-balloond: the memory domains the VMs live in, watched
 *
 * A memory domain is a cgroup with a memory limit that holds VMs' QEMU
 * processes (memdomain.c reads one).  The watcher finds each VM's
 * domains from its QEMU process (domains_of_pid: its memory cgroup and
 * the ancestors with a limit), takes more with --cgroup, and reads them
 * all in its own thread: at once when the kernel notifies (a v1 usage
 * threshold at the reserve, a v2 memory.events change), and every
 * poll_ms besides.  It calls back when a domain becomes short, stays
 * short and loses more headroom, recovers, or counts a new OOM kill,
 * and keeps what the policy needs of each (PolicyDomain: headroom, last
 * shortfall, last OOM kill).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_DOMAINS_H
#define BALLOOND_DOMAINS_H

#include "memdomain.h"
#include "policy.h"
#include "trend.h"

typedef struct Domains Domains;

/* Something changed in a domain (in the watcher thread) */
typedef void DomainsChangedFn(void *opaque);

typedef struct DomainsConfig {
    const PolicyConfig *policy;     /* reserve, hysteresis */
    int poll_ms;                    /* read every domain this often */
    const char *proc_root;          /* NULL: /proc */
    const char *v1_root;            /* NULL: /sys/fs/cgroup/memory */
    const char *v2_root;            /* NULL: /sys/fs/cgroup */
    const char *unified_root;       /* NULL: /sys/fs/cgroup/unified */
} DomainsConfig;

Domains *domains_start(const DomainsConfig *cfg, DomainsChangedFn *fn,
                       void *opaque);

/* Watch the cgroup at @dir; its index, or -1 with @err */
int domains_add(Domains *ds, const char *dir, GError **err);

/*
 * The domains of the process @pid (added if new), as a bit set of
 * indices; 0 with @err if they cannot be found
 */
uint64_t domains_of_pid(Domains *ds, int pid, GError **err);

/*
 * The domains as last read (@out and @st: room for POLICY_MAX_DOMAINS);
 * returns how many.  @st may be NULL.
 */
unsigned domains_get(Domains *ds, PolicyDomain *out, MemDomainState *st);

/* The cgroup directory of domain @i (a copy) */
char *domains_dir(Domains *ds, unsigned i);

void domains_stop(Domains *ds);

#endif
