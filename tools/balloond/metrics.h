/*
 * qemu-oc-balloond: Prometheus metrics over HTTP (libmicrohttpd)
 *
 * GET /metrics answers the text exposition format (version 0.0.4) built
 * from the latest snapshots and the daemon's counters; anything else is
 * 404.  The HTTP server has its own thread; building a page takes
 * references to immutable snapshots and never waits for a VM's worker.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_METRICS_H
#define BALLOOND_METRICS_H

#include "memdomain.h"
#include "policy.h"

/* What the daemon adds to the VMs' snapshots, per VM */
typedef struct MetricsVm {
    const VmSnapshot *snap;
    uint64_t target_mib;        /* 0: none set */
    uint64_t decisions[POLICY_REASON__MAX];
    bool braked;                /* paused by the brake now */
    uint64_t brakes;            /* how often it was braked */
} MetricsVm;

/* A memory domain, as last read */
typedef struct MetricsDomain {
    char *dir;                  /* the cgroup: the label "domain" */
    MemDomainState st;
    uint64_t reserve_mib;
} MetricsDomain;

void metrics_domain_free(gpointer p);

/* Fill the page's data: called in the HTTP thread for each scrape */
typedef void MetricsCollectFn(void *opaque, GPtrArray *vms /* MetricsVm* */,
                              HostMemory *host,
                              GPtrArray *domains /* MetricsDomain* */);

typedef struct Metrics Metrics;

/* Listen on @addr_port ("127.0.0.1:9101", ":9101"); NULL with @err */
Metrics *metrics_start(const char *addr_port, MetricsCollectFn *collect,
                       void *opaque, GError **err);
void metrics_stop(Metrics *m);

/* The exposition text (also for tests), given the collected data */
char *metrics_render(GPtrArray *vms, const HostMemory *host,
                     GPtrArray *domains, int64_t now_ms);

/* Errors of metrics_start() */
#define METRICS_ERROR metrics_error_quark()
GQuark metrics_error_quark(void);

typedef enum MetricsError {
    METRICS_ERROR_ADDRESS,      /* not an address and port to listen on */
    METRICS_ERROR_LISTEN,       /* cannot listen there */
} MetricsError;

#endif
