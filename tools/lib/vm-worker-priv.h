/*
 * qemu-oc host tools: a VM worker's inside
 *
 * Shared by vm-worker.c (the worker's state and what readers and the
 * policy call, from any thread), vm-worker-rounds.c (its life on a loop
 * thread: connect, read once, then rounds of queries) and its two
 * transports: vm-worker-qmp.c (a QMP socket on the loop itself) and
 * vm-worker-jobs.c (a link whose calls block: each call a job on a
 * thread of a pool, its answer brought back to the loop).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_VM_WORKER_PRIV_H
#define TOOLS_VM_WORKER_PRIV_H

#include "loop-pool.h"
#include "vm-worker.h"

typedef struct QmpAsync QmpAsync;

/* What a request is for, in the worker's life */
typedef enum VmReqKind {
    VM_REQ_MEMORY,          /* query-memory-size-summary, at connect */
    VM_REQ_PERIPHERALS,     /* qom-list of the machine's peripherals */
    VM_REQ_BALLOON_PROP,    /* qom-get of a balloon property */
    VM_REQ_BALLOON_STATS,   /* query-balloon, each round */
    VM_REQ_RUNSTATES,       /* query-vcpu-runstates, each round */
    VM_REQ_SET_BALLOON,     /* the policy's balloon target */
    VM_REQ_SET_RUNNING,     /* the policy's pause or resume */
} VmReqKind;

/* A request sent, until its answer is handled (loop thread) */
typedef struct VmReq {
    VmWorker *w;
    unsigned gen;           /* the connection it went on */
    VmReqKind kind;
    char *command;          /* as said in messages */
    json_object *args;      /* until a transport takes them */
    int index;              /* which peripherals, which property */
    uint64_t bytes;         /* VM_REQ_SET_BALLOON */
    bool running;           /* VM_REQ_SET_RUNNING */
    VmWorkerBalloonFn *balloon_done;
    VmWorkerRunFn *run_done;
    void *done_opaque;
    bool answering;         /* in vm_worker_answer() */
} VmReq;

/* How a worker reaches its VM; every call in the worker's loop thread */
typedef struct VmTransportOps {
    /* Connect: vm_worker_connected() or vm_worker_link_failed() follows */
    void (*open)(VmWorker *w);
    /*
     * Send @r; vm_worker_answer() follows exactly once, unless the
     * transport is freed first
     */
    void (*send)(VmWorker *w, VmReq *r);
    /*
     * Drop the connection (the worker is DOWN already): a request on it
     * that will never be answered is answered now, with an error
     */
    void (*close)(VmWorker *w);
    /* Whether free() may run now (no call in flight on another thread) */
    bool (*idle)(VmWorker *w);
    /*
     * Hold the requests sent from now on, then send them at once
     * (@hold false) (optional)
     */
    void (*hold)(VmWorker *w, bool hold);
    /* @w->tick woke for the link's events: take them */
    void (*events)(VmWorker *w);
    /* Free the transport's part; vm_worker_freed() once it is gone */
    void (*free)(VmWorker *w);
} VmTransportOps;

extern const VmTransportOps vm_transport_qmp, vm_transport_jobs;

typedef enum VmWorkerState {
    VM_W_DOWN,              /* not connected; retry at retry_us */
    VM_W_CONNECTING,
    VM_W_SETUP,             /* reading what is read once */
    VM_W_READY,             /* between rounds; the next at next_round_us */
    VM_W_ROUND,             /* a round's answers awaited */
} VmWorkerState;

struct VmWorker {
    char *name, *where;
    VmWorkerConfig cfg;
    VmWorkerNotifyFn *notify;
    void *opaque;
    LoopPoolLoop *loop;     /* the loop thread it lives on */
    GMainContext *ctx;      /* the loop's */
    GSource *tick;          /* wakes the worker: poked, due, link events */
    gint poked;             /* another thread asked for something */

    GMutex lock;
    VmSnapshot *published;  /* under lock */
    bool stop, kick;        /* under lock */
    /* a balloon request not yet made (under lock) */
    bool balloon_pending;
    uint64_t balloon_bytes;
    VmWorkerBalloonFn *balloon_done;
    void *balloon_opaque;
    /* a pause or resume request not yet made (under lock) */
    bool run_pending, run_running;
    VmWorkerRunFn *run_done;
    void *run_opaque;
    /*
     * a blocking call in flight (under lock): since when (monotonic, 0:
     * none) and what; past its deadline, readers get @overdue, the
     * published snapshot marked unresponsive
     */
    int64_t call_since_us;
    const char *call_what;
    VmSnapshot *overdue;

    /* the loop thread's own */
    VmSnapshot *work;
    VmWorkerState state;
    unsigned gen;           /* connections made */
    GQueue reqs;            /* VmReq sent, not answered */
    int64_t retry_us, next_round_us, round_us;
    int backoff_ms;
    unsigned setup_left, round_left;
    bool props_asked;       /* the balloon's properties, in SETUP */
    char *balloon_path[2];  /* per peripherals directory */
    char *failure;          /* the last failure logged, or NULL */
    unsigned repeats;       /* times it came again, not logged */
    unsigned failures;      /* since the VM last answered */

    /* the transport's */
    const VmTransportOps *tr;
    VmLink *link;           /* jobs: the blocking link */
    gpointer link_tag;      /* jobs: the link's event fd on @tick */
    QmpAsync *qmp;          /* qmp: the connection */
    char *qmp_path;
    QmpLimits qmp_lim;
    GQueue jobs;            /* jobs: waiting to run, in order */
    bool job_running;       /* jobs: one on a pool thread */
};

/* vm-worker.c */
void vm_worker_publish(VmWorker *w);
void vm_worker_mark_unresponsive(VmWorker *w, const char *what,
                                 const GError *err);
void vm_worker_mark_responsive(VmWorker *w);
/* Around a blocking call on a pool thread: see call_since_us */
void vm_worker_call_begin(VmWorker *w, const char *what);
void vm_worker_call_end(VmWorker *w);
/* The worker is gone: its thread count for vm_worker_wait_all() */
void vm_worker_freed(void);

/* vm-worker-rounds.c: attach the tick (any thread), then loop thread */
void vm_worker_attach(VmWorker *w);
/* Set the tick's next wake-up from the state */
void vm_worker_arm(VmWorker *w);
void vm_worker_connected(VmWorker *w, int pid);
void vm_worker_link_failed(VmWorker *w, const char *what, const GError *err);
void vm_worker_answer(VmReq *r, json_object *ret, const GError *err);
void vm_worker_event(void *opaque, const char *event, json_object *data,
                     int64_t timestamp_us);

#endif
