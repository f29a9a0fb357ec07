/*
 * vCPU and VM runstates (qemu-oc): the accounting
 *
 * Two sources.  The exact one (vcpu-runstates/timeline.c) follows every
 * transition: QEMU's own halt and stop changes, queued by the vCPU
 * thread, and the vCPU thread's context switches from Linux
 * (vcpu-runstates/switch-records.c), both drained by the sampler thread
 * and merged in time order: at each period, and in between when a
 * switch record ring is half full or a vCPU's queue is (the sampler
 * polls the rings, and a vCPU thread kicks it).  Where Linux refuses the
 * switch records (perf_event_paranoid 3, seccomp, locked-memory limits)
 * or the machine property vcpu-runstates-exact is off, the sampled
 * source below serves, and the reason is reported.  The sampled part is
 * kept up to date in both cases, so that a fallback in mid-run
 * continues the counters.
 *
 * Per vCPU, two parts with one writer each:
 *  - the exact part, written only by the vCPU thread (hooks in
 *    qemu_wait_io_event): when it blocks (halted) or goes offline
 *    (stopped), and when it wakes.  Readers use its seqlock; the vCPU
 *    never waits for anybody.
 *  - the sampled part, written only by the sampler thread: once per
 *    period it reads the exact part, the host scheduler's run time of
 *    the vCPU thread (/proc/self/task/TID/schedstat, an fd kept open),
 *    and under KVM the vCPU's halt_wait_ns, and splits the period into
 *    running, runnable, blocked and offline; it accumulates the VM's
 *    states over the period from the vCPUs' shares.
 * Readers (QMP, HMP) copy the sampled part under rs_lock, which only the
 * sampler and readers take.  Nothing here touches a CPUState outside its
 * own vCPU thread, so an unplugged vCPU leaves no stale pointer: its
 * thread's schedstat stops reading and it counts as offline from then.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <math.h>
#include <poll.h>
#include "qemu/atomic.h"
#include "qemu/event_notifier.h"
#include "qemu/seqlock.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "sysemu/cpus.h"
#include "sysemu/kvm.h"
#include "sysemu/tcg.h"
#include "sysemu/kvm-vcpu-stats.h"
#include "vcpu-runstates/kvm-counters.h"
#include "vcpu-runstates/machine.h"
#include "vcpu-runstates/math.h"
#include "vcpu-runstates/switch-records.h"
#include "vcpu-runstates/timeline.h"
#include "vcpu-runstates/vcpu-runstates.h"
#include "trace.h"

/* Switch record ring per vCPU, in pages: tried first, and the least */
#define RS_RING_PAGES_MIN 4
/* QEMU's view changes queued by a vCPU thread between two drains */
#define RS_QUEUE_LEN 4096

/* the arithmetic's numbering is QAPI's */
QEMU_BUILD_BUG_ON((int)RS_VCPU__MAX != (int)VCPU_RUNSTATE__MAX);
QEMU_BUILD_BUG_ON((int)RS_VM__MAX != (int)VM_RUNSTATE__MAX);
QEMU_BUILD_BUG_ON((int)RS_VCPU_RUNNING != (int)VCPU_RUNSTATE_RUNNING ||
                  (int)RS_VCPU_RUNNABLE != (int)VCPU_RUNSTATE_RUNNABLE ||
                  (int)RS_VCPU_BLOCKED != (int)VCPU_RUNSTATE_BLOCKED ||
                  (int)RS_VCPU_OFFLINE != (int)VCPU_RUNSTATE_OFFLINE);
QEMU_BUILD_BUG_ON((int)RS_VM_FULL_RUN != (int)VM_RUNSTATE_FULL_RUN ||
                  (int)RS_VM_FULL_CONTENTION !=
                  (int)VM_RUNSTATE_FULL_CONTENTION ||
                  (int)RS_VM_CONCURRENCY_HAZARD !=
                  (int)VM_RUNSTATE_CONCURRENCY_HAZARD ||
                  (int)RS_VM_BLOCKED != (int)VM_RUNSTATE_BLOCKED ||
                  (int)RS_VM_PARTIAL_RUN != (int)VM_RUNSTATE_PARTIAL_RUN ||
                  (int)RS_VM_PARTIAL_CONTENTION !=
                  (int)VM_RUNSTATE_PARTIAL_CONTENTION);

/* The exact part: written by the vCPU thread only */
typedef struct VcpuExact {
    QemuSeqLock seq;
    int state;              /* RS_VCPU_RUNNING (= awake), _BLOCKED, _OFFLINE */
    int64_t since;          /* get_clock() when @state began */
    uint64_t closed[RS_VCPU__MAX];  /* ended blocked and offline spans */
    uint64_t transitions;
} VcpuExact;

/* A change of QEMU's view, queued by the vCPU thread for the sampler */
typedef struct RsQueued {
    int64_t t;
    int state;              /* RS_VCPU_RUNNING (= awake), _BLOCKED, _OFFLINE */
} RsQueued;

/* The exact source's inputs from one vCPU thread */
typedef struct RsExactInput {
    RsSwitchRing ring;      /* opened by the thread, drained by the sampler */
    int64_t opened;         /* the thread was on a CPU then */
    RsQueued queue[RS_QUEUE_LEN];   /* single producer, single consumer */
    uint32_t head;          /* written by the vCPU thread */
    uint32_t tail;          /* written by the sampler */
    uint64_t dropped;       /* the queue was full: written by the vCPU */
    uint32_t kicked_at;     /* vCPU only: head when it last kicked */
    uint64_t dropped_seen;  /* sampler only */
    bool hup;               /* sampler only: the thread exited */
} RsExactInput;

typedef struct VcpuRs {
    VcpuExact ex;
    /* exact source: the current thread's inputs, published by it */
    RsExactInput *in;
    int64_t tid;            /* the vCPU thread's; a re-plugged vCPU sets it */
    int64_t created;
    KvmVcpuStats kvm;
    bool has_kvm;

    /* the sampled part: written by the sampler thread only */
    int schedstat_fd;
    int64_t fd_tid;         /* the thread schedstat_fd belongs to */
    bool gone;              /* its thread exited: unplugged */
    int64_t last_t;
    uint64_t last_oncpu, last_blocked, last_offline, last_halt;
    bool last_blocking;     /* KVM: halted at the previous sample */
    /*
     * KVM: blocked time credited to the ongoing halt, before halt_wait_ns
     * counts it
     */
    uint64_t precredited;
    uint64_t acc[RS_VCPU__MAX];
    int cur;
    uint64_t transitions;
    uint64_t ex_seen;       /* exact transitions already counted */
    uint64_t kvm_vals[KVM_VCPU_STAT__MAX];  /* latest KVM statistics */
    bool kvm_valid;

    /* the exact source, sampler only */
    RsExactInput *in_used;  /* the inputs the timeline follows */
    uint64_t tl_seen[RS_VCPU__MAX];     /* timeline totals published */
    uint64_t tl_trans_seen;
} VcpuRs;

static VcpuRs **rs_vcpus;       /* [rs_max], entries published once */
static unsigned rs_max;
static int rs_method = RUNSTATE_METHOD_NONE;
static int rs_period_ms = VCPU_RUNSTATE_PERIOD_DEFAULT_MS;

/* The VM part, and the copy readers see: under rs_lock */
static QemuMutex rs_lock;
static uint64_t rs_vm[RS_VM__MAX];
static int rs_vm_cur = RS_VM_BLOCKED;
static int64_t rs_vm_entered;
static uint64_t rs_samples, rs_missed, rs_elapsed;
static int64_t rs_start, rs_last;
static QemuThread rs_thread;
static VcpuRunstatesKvmPvFn *rs_kvm_pv_reader;

/* Which source is in use: exact until it cannot be (then for good) */
static int rs_source = RUNSTATE_SOURCE_EXACT;
static char *rs_source_reason;  /* why not exact; set once, then read */

/* The exact source's state, sampler only */
static RsTimeline rs_tl;
static uint64_t rs_tl_vm_seen[RS_VM__MAX];
static uint64_t rs_exact_missed;    /* lost records and dropped changes */

/*
 * The sampler sleeps in poll(): on rs_kick (a new period takes effect
 * now; a vCPU's queue is half full; a vCPU thread started) and on the
 * switch record rings (half full)
 */
static EventNotifier rs_kick;
static bool rs_period_changed;

/* -- the vCPU side ------------------------------------------------------ */

static void *rs_sampler(void *opaque);

static bool rs_exact(void)
{
    return qatomic_load_acquire(&rs_source) == RUNSTATE_SOURCE_EXACT;
}

/*
 * The exact source cannot serve: the sampled one takes over, for good.
 * Under the BQL (rs_init, a vCPU thread starting).
 */
static void rs_fall_back(char *reason)
{
    if (!rs_exact()) {
        g_free(reason);
        return;
    }
    rs_source_reason = reason;
    qatomic_store_release(&rs_source, RUNSTATE_SOURCE_SAMPLED);
    trace_vcpu_runstates_fall_back(reason);
}

/* Why Linux refused the switch records of vCPU @index */
static char *rs_refusal(int index, const char *what, int err)
{
    g_autofree char *paranoid = NULL;

    if ((err == EACCES || err == EPERM) &&
        g_file_get_contents("/proc/sys/kernel/perf_event_paranoid",
                            &paranoid, NULL, NULL)) {
        g_strstrip(paranoid);
        return g_strdup_printf("vCPU %d: %s: %s (kernel.perf_event_paranoid "
                               "is %s)", index, what, strerror(err),
                               paranoid);
    }
    return g_strdup_printf("vCPU %d: %s: %s", index, what, strerror(err));
}

/* In the vCPU thread: trace its context switches for the exact source */
static void rs_exact_open(VcpuRs *e, int index)
{
    RsExactInput *in;
    const char *what;
    uint32_t pages;
    int err;

    if (!rs_exact()) {
        return;
    }
    in = g_new0(RsExactInput, 1);
    pages = vcpu_runstates_machine_ring_pages();
    err = rs_switch_open(&in->ring, pages, MIN(pages, RS_RING_PAGES_MIN),
                         &what);
    if (err) {
        rs_fall_back(rs_refusal(index, what, -err));
        g_free(in);
        return;
    }
    in->opened = get_clock();   /* this thread is on a CPU */
    qatomic_store_release(&e->in, in);
    if (rs_vcpus) {
        event_notifier_set(&rs_kick);   /* poll this ring from now */
    }
}

/* In the vCPU thread: queue QEMU's view for the exact source */
static void rs_exact_queue(VcpuRs *e, int64_t t, int state)
{
    RsExactInput *in = e->in;   /* this thread published it */
    uint32_t head;

    if (!in) {
        return;
    }
    head = in->head;
    if (head - qatomic_load_acquire(&in->tail) >= RS_QUEUE_LEN) {
        /* the sampler is late: the next change resynchronises */
        qatomic_set(&in->dropped, in->dropped + 1);
        return;
    }
    in->queue[head % RS_QUEUE_LEN] = (RsQueued) { .t = t, .state = state };
    qatomic_store_release(&in->head, head + 1);
    if (head + 1 - in->kicked_at >= RS_QUEUE_LEN / 2) {
        /* half full: have it drained before the period ends */
        in->kicked_at = head + 1;
        event_notifier_set(&rs_kick);
    }
}

/* First call, from the first vCPU thread, under the BQL */
static void rs_init(void)
{
    rs_max = current_machine->smp.max_cpus;
    qemu_mutex_init(&rs_lock);
    event_notifier_init(&rs_kick, false);
    rs_start = rs_last = get_clock();
    rs_vm_entered = g_get_real_time() / 1000;
    if (tcg_enabled()) {
        rs_method = RUNSTATE_METHOD_TCG;
    } else if (kvm_enabled()) {
        rs_method = RUNSTATE_METHOD_KVM;
    }
    if (rs_method == RUNSTATE_METHOD_NONE) {
        rs_fall_back(g_strdup("no guest code runs (qtest accelerator)"));
    } else if (!vcpu_runstates_machine_exact()) {
        rs_fall_back(g_strdup("the machine property vcpu-runstates-exact "
                              "is off"));
    }
    rs_timeline_init(&rs_tl, rs_max, rs_method == RUNSTATE_METHOD_KVM,
                     rs_start);
    qatomic_store_release(&rs_vcpus, g_new0(VcpuRs *, rs_max));
    if (rs_method != RUNSTATE_METHOD_NONE) {
        qemu_thread_create(&rs_thread, "vcpu-runstates", rs_sampler, NULL,
                           QEMU_THREAD_DETACHED);
    }
}

static VcpuRs *rs_get(CPUState *cpu)
{
    VcpuRs *e;

    if (!rs_vcpus) {
        rs_init();
    }
    if (cpu->cpu_index < 0 || cpu->cpu_index >= rs_max) {
        return NULL;
    }
    e = rs_vcpus[cpu->cpu_index];
    if (!e) {
        /* in the vCPU thread, under the BQL (qemu_wait_io_event) */
        e = g_new0(VcpuRs, 1);
        seqlock_init(&e->ex.seq);
        e->ex.state = RS_VCPU_OFFLINE;
        e->ex.since = e->created = e->last_t = get_clock();
        e->tid = e->fd_tid = qemu_get_thread_id();
        e->schedstat_fd = -1;
        e->cur = RS_VCPU_OFFLINE;
        if (rs_method == RUNSTATE_METHOD_KVM) {
            e->has_kvm = kvm_vcpu_stats_open(cpu, &e->kvm);
        }
        rs_exact_open(e, cpu->cpu_index);
        qatomic_store_release(&rs_vcpus[cpu->cpu_index], e);
    } else if (e->tid != cpu->thread_id) {
        /*
         * A vCPU hot-plugged in the slot of an unplugged one: the slot's
         * counters go on, and the sampler follows the new thread.
         */
        trace_vcpu_runstates_replug(cpu->cpu_index, cpu->thread_id);
        qatomic_set(&e->tid, cpu->thread_id);
        rs_exact_open(e, cpu->cpu_index);
    }
    return e;
}

static void rs_set(VcpuRs *e, int state)
{
    int64_t now;

    if (e->ex.state == state) {
        return;
    }
    now = get_clock();
    seqlock_write_begin(&e->ex.seq);
    e->ex.closed[e->ex.state] += now - e->ex.since;
    e->ex.state = state;
    e->ex.since = now;
    e->ex.transitions++;
    seqlock_write_end(&e->ex.seq);
    rs_exact_queue(e, now, state);
}

void vcpu_runstates_idle(CPUState *cpu)
{
    VcpuRs *e = rs_get(cpu);

    if (e) {
        rs_set(e, cpu_is_stopped(cpu) ? RS_VCPU_OFFLINE : RS_VCPU_BLOCKED);
    }
}

void vcpu_runstates_wake(CPUState *cpu)
{
    VcpuRs *e = rs_get(cpu);

    if (e) {
        rs_set(e, RS_VCPU_RUNNING);
    }
}

/* -- the sampler -------------------------------------------------------- */

/* Cumulative blocked and offline time of @e up to @now, and its state */
static int rs_read_exact(VcpuRs *e, int64_t now, uint64_t *blocked,
                         uint64_t *offline, uint64_t *transitions)
{
    unsigned start;
    int state;
    int64_t since;

    do {
        start = seqlock_read_begin(&e->ex.seq);
        state = e->ex.state;
        since = e->ex.since;
        *blocked = e->ex.closed[RS_VCPU_BLOCKED];
        *offline = e->ex.closed[RS_VCPU_OFFLINE];
        *transitions = e->ex.transitions;
    } while (seqlock_read_retry(&e->ex.seq, start));
    if (state == RS_VCPU_BLOCKED) {
        *blocked += MAX(0, now - since);
    } else if (state == RS_VCPU_OFFLINE) {
        *offline += MAX(0, now - since);
    }
    return state;
}

/* The vCPU thread's time on a host CPU, ns; false once the thread is gone */
static bool rs_read_oncpu(VcpuRs *e, uint64_t *oncpu)
{
    char buf[128];
    ssize_t n;

    if (e->schedstat_fd < 0) {
        g_autofree char *path =
            g_strdup_printf("/proc/self/task/%" PRId64 "/schedstat",
                            e->fd_tid);

        e->schedstat_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (e->schedstat_fd < 0) {
            return false;
        }
    }
    n = pread(e->schedstat_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) {
        return false;
    }
    buf[n] = 0;
    return sscanf(buf, "%" SCNu64, oncpu) == 1;
}

/*
 * Blocked time of a KVM vCPU over an interval of @wall ns.  An in-kernel
 * HLT never reaches QEMU; KVM adds a halt's length to halt_wait_ns when
 * the halt ends, and says whether the vCPU is halted now (blocking).
 * An ongoing halt is credited from the flag (the whole interval if it was
 * already halted at the previous sample, else half of it), and that
 * credit is taken off halt_wait_ns once the halt ends.
 */
static uint64_t rs_kvm_blocked(VcpuRs *e, const uint64_t *kvm, int64_t wall)
{
    uint64_t halt = kvm[KVM_VCPU_STAT_HALT_WAIT_NS];
    uint64_t d_halt = halt - MIN(halt, e->last_halt);
    uint64_t taken = MIN(d_halt, e->precredited);
    uint64_t blocked = d_halt - taken;
    bool blocking = kvm[KVM_VCPU_STAT_BLOCKING];

    e->precredited -= taken;
    if (blocking) {
        uint64_t est = e->last_blocking ? wall : wall / 2;

        blocked += est;
        e->precredited += est;
    } else {
        e->precredited = 0;
    }
    e->last_halt = halt;
    e->last_blocking = blocking;
    return blocked;
}

/*
 * Measure @e's last interval into @parts; returns its state now and sets
 * @d_transitions.  Touches only the sampler's own fields of @e: the ones
 * readers see are updated by the caller, under rs_lock.
 */
static int rs_sample_vcpu(VcpuRs *e, int64_t now, uint64_t parts[RS_VCPU__MAX],
                          uint64_t *d_transitions,
                          uint64_t kvm[KVM_VCPU_STAT__MAX], bool *kvm_ok)
{
    uint64_t blocked, offline, oncpu, transitions;
    int64_t wall = now - e->last_t;
    int64_t tid = qatomic_read(&e->tid);
    int state;

    if (tid != e->fd_tid) {
        /* re-plugged: measure the new thread from its start */
        if (e->schedstat_fd >= 0) {
            close(e->schedstat_fd);
            e->schedstat_fd = -1;
        }
        e->fd_tid = tid;
        e->gone = false;
        e->last_oncpu = 0;
    }
    oncpu = e->last_oncpu;
    state = rs_read_exact(e, now, &blocked, &offline, &transitions);
    if (!e->gone && !rs_read_oncpu(e, &oncpu)) {
        e->gone = true;
    }
    if (e->gone) {
        memset(parts, 0, sizeof(uint64_t) * RS_VCPU__MAX);
        parts[RS_VCPU_OFFLINE] = wall;
        state = RS_VCPU_OFFLINE;
    } else {
        uint64_t d_blocked = blocked - e->last_blocked;

        *kvm_ok = e->has_kvm && kvm_vcpu_stats_read(&e->kvm, kvm);
        if (*kvm_ok) {
            d_blocked += rs_kvm_blocked(e, kvm, wall);
            if (state == RS_VCPU_RUNNING && kvm[KVM_VCPU_STAT_BLOCKING]) {
                state = RS_VCPU_BLOCKED;
            }
        }
        rs_vcpu_split(wall, offline - e->last_offline, d_blocked,
                      oncpu - MIN(oncpu, e->last_oncpu), parts);
        if (state == RS_VCPU_RUNNING &&
            parts[RS_VCPU_RUNNABLE] > parts[RS_VCPU_RUNNING]) {
            state = RS_VCPU_RUNNABLE;
        }
    }
    *d_transitions = transitions - MIN(transitions, e->ex_seen);
    if (state != e->cur && (state == RS_VCPU_RUNNING ||
                            state == RS_VCPU_RUNNABLE) &&
        (e->cur == RS_VCPU_RUNNING || e->cur == RS_VCPU_RUNNABLE)) {
        (*d_transitions)++;     /* seen only by sampling */
    }
    e->ex_seen = transitions;
    e->last_t = now;
    e->last_blocked = blocked;
    e->last_offline = offline;
    e->last_oncpu = oncpu;
    return state;
}

/* -- the exact source (sampler thread) ---------------------------------- */

static void rs_exact_switch(void *opaque, int64_t t, RsSchedView view)
{
    rs_timeline_push(&rs_tl, GPOINTER_TO_UINT(opaque), RS_SOURCE_SCHED, t,
                     view);
}

static RsQemuView rs_qemu_view(int state)
{
    switch (state) {
    case RS_VCPU_BLOCKED:
        return RS_QEMU_BLOCKED;
    case RS_VCPU_OFFLINE:
        return RS_QEMU_OFFLINE;
    default:
        return RS_QEMU_AWAKE;
    }
}

/* Queue for the timeline what vCPU @i's thread gave since the last drain */
static void rs_exact_take(RsExactInput *in, unsigned i)
{
    uint32_t head = qatomic_load_acquire(&in->head);
    uint32_t tail = in->tail;
    uint64_t dropped, lost;
    bool corrupt;

    for (; tail != head; tail++) {
        RsQueued *q = &in->queue[tail % RS_QUEUE_LEN];

        rs_timeline_push(&rs_tl, i, RS_SOURCE_QEMU, q->t,
                         rs_qemu_view(q->state));
    }
    qatomic_store_release(&in->tail, tail);
    lost = rs_switch_drain(&in->ring, rs_exact_switch, GUINT_TO_POINTER(i),
                           &corrupt);
    if (lost) {
        trace_vcpu_runstates_records_lost(i, lost, corrupt);
    }
    dropped = qatomic_read(&in->dropped);
    if (dropped != in->dropped_seen) {
        trace_vcpu_runstates_queue_full(i, dropped - in->dropped_seen);
    }
    rs_exact_missed += lost + dropped - in->dropped_seen;
    in->dropped_seen = dropped;
}

/* Feed the timeline from every vCPU and move it to @now */
static void rs_exact_drain(int64_t now)
{
    unsigned i;

    for (i = 0; i < rs_max; i++) {
        VcpuRs *e = qatomic_load_acquire(&rs_vcpus[i]);
        RsExactInput *in = e ? qatomic_load_acquire(&e->in) : NULL;

        if (!e) {
            continue;
        }
        if (e->in_used && e->in_used != in) {
            /* a new thread took the slot: the last of the old one */
            rs_exact_take(e->in_used, i);
            rs_switch_close(&e->in_used->ring);
            g_free(e->in_used);
            e->in_used = NULL;
        }
        if (in && !e->in_used) {
            e->in_used = in;
            rs_timeline_vcpu_start(&rs_tl, i, in->opened, RS_QEMU_OFFLINE,
                                   RS_SCHED_ONCPU);
        }
        if (e->in_used) {
            rs_exact_take(e->in_used, i);
        }
    }
    rs_timeline_advance(&rs_tl, now);
}

/*
 * Publish the timeline's counters (under rs_lock).  Each publication
 * adds what the timeline accumulated since the previous one, so a
 * fallback to sampling in mid-run continues the counters.
 */
static void rs_exact_publish(int64_t now)
{
    unsigned i, j;

    for (i = 0; i < rs_max; i++) {
        VcpuRs *e = rs_vcpus[i];
        RsTimelineVcpu *v = &rs_tl.vcpu[i];

        if (!e) {
            continue;
        }
        for (j = 0; j < RS_VCPU__MAX; j++) {
            e->acc[j] += v->acc[j] - e->tl_seen[j];
            e->tl_seen[j] = v->acc[j];
        }
        e->transitions += v->transitions - e->tl_trans_seen;
        e->tl_trans_seen = v->transitions;
        e->cur = v->state;
    }
    for (j = 0; j < RS_VM__MAX; j++) {
        rs_vm[j] += rs_tl.vm_acc[j] - rs_tl_vm_seen[j];
        rs_tl_vm_seen[j] = rs_tl.vm_acc[j];
    }
    if (rs_tl.vm_state != rs_vm_cur) {
        rs_vm_cur = rs_tl.vm_state;
    }
    rs_vm_entered = g_get_real_time() / 1000 -
                    (now - MIN(now, rs_tl.vm_entered)) / SCALE_MS;
    rs_missed += rs_exact_missed;
    rs_exact_missed = 0;
}

/* One vCPU's measurement of the last interval */
typedef struct RsMeasure {
    uint64_t parts[RS_VCPU__MAX];
    uint64_t d_transitions;
    uint64_t kvm[KVM_VCPU_STAT__MAX];
    bool kvm_ok;
    int state;
    bool valid;
} RsMeasure;

/* Every vCPU's /proc and KVM reads, without the readers' lock */
static void rs_measure(int64_t now, bool exact, RsMeasure *m)
{
    unsigned i;

    for (i = 0; i < rs_max; i++) {
        VcpuRs *e = qatomic_load_acquire(&rs_vcpus[i]);

        if (!e) {
            continue;
        }
        m[i].valid = true;
        m[i].state = rs_sample_vcpu(e, now, m[i].parts, &m[i].d_transitions,
                                    m[i].kvm, &m[i].kvm_ok);
        if (exact && e->gone && rs_tl.vcpu[i].present) {
            rs_timeline_vcpu_gone(&rs_tl, i, now);
        }
    }
}

/* Publish the KVM statistics of @m (either source; under rs_lock) */
static void rs_publish_kvm(const RsMeasure *m)
{
    unsigned i;

    for (i = 0; i < rs_max; i++) {
        if (m[i].valid && m[i].kvm_ok) {
            memcpy(rs_vcpus[i]->kvm_vals, m[i].kvm,
                   sizeof(rs_vcpus[i]->kvm_vals));
            rs_vcpus[i]->kvm_valid = true;
        }
    }
}

/*
 * The sampled source: each vCPU's interval as @m measured it, the VM's
 * shares of it from the vCPUs still plugged, and the VM's state now
 * (under rs_lock)
 */
static void rs_publish_sampled(const RsMeasure *m, int64_t wall,
                               int64_t period)
{
    g_autofree uint64_t (*parts)[RS_VCPU__MAX] =
        g_malloc0(sizeof(*parts) * rs_max);
    unsigned counts[RS_VCPU__MAX] = { 0 };
    double shares[RS_VM__MAX];
    unsigned n = 0, i, j;
    int vm;

    for (i = 0; i < rs_max; i++) {
        VcpuRs *e = rs_vcpus[i];

        if (!m[i].valid) {
            continue;
        }
        for (j = 0; j < RS_VCPU__MAX; j++) {
            e->acc[j] += m[i].parts[j];
        }
        e->cur = m[i].state;
        e->transitions += m[i].d_transitions;
        if (!e->gone) {
            memcpy(parts[n++], m[i].parts, sizeof(parts[0]));
            counts[m[i].state]++;
        }
    }
    rs_vm_shares((const uint64_t (*)[RS_VCPU__MAX])parts, n, shares);
    for (i = 0; i < RS_VM__MAX; i++) {
        rs_vm[i] += llround(shares[i] * wall);
    }
    vm = rs_vm_state(counts[RS_VCPU_RUNNING], counts[RS_VCPU_RUNNABLE],
                     counts[RS_VCPU_BLOCKED] + counts[RS_VCPU_OFFLINE]);
    if (vm != rs_vm_cur) {
        rs_vm_cur = vm;
        rs_vm_entered = g_get_real_time() / 1000;
    }
    if (rs_samples && wall > 2 * period) {
        rs_missed++;
    }
}

/* Close the interval since the last sample; the sampler slept @period */
static void rs_sample(int64_t period)
{
    int64_t now = get_clock();
    int64_t wall = now - rs_last;
    g_autofree RsMeasure *m = g_new0(RsMeasure, rs_max);
    bool exact = rs_exact();

    if (exact) {
        rs_exact_drain(now);
    }
    rs_measure(now, exact, m);

    qemu_mutex_lock(&rs_lock);
    rs_publish_kvm(m);
    if (exact) {
        rs_exact_publish(now);
    } else {
        rs_publish_sampled(m, wall, period);
    }
    rs_samples++;
    rs_elapsed += wall;
    rs_last = now;
    qemu_mutex_unlock(&rs_lock);
}

/*
 * Sleep at most @ns, until kicked or until a switch record ring is half
 * full.  Returns true if the period changed.
 */
static bool rs_wait(int64_t ns)
{
    g_autofree struct pollfd *fds = g_new(struct pollfd, rs_max + 1);
    g_autofree RsExactInput **ins = g_new(RsExactInput *, rs_max + 1);
    unsigned n = 0, i;

    fds[n++] = (struct pollfd) {
        .fd = event_notifier_get_fd(&rs_kick), .events = POLLIN
    };
    for (i = 0; rs_exact() && i < rs_max; i++) {
        VcpuRs *e = qatomic_load_acquire(&rs_vcpus[i]);

        if (e && e->in_used && !e->in_used->hup) {
            ins[n] = e->in_used;
            fds[n++] = (struct pollfd) {
                .fd = e->in_used->ring.fd, .events = POLLIN
            };
        }
    }
    if (poll(fds, n, DIV_ROUND_UP(ns, SCALE_MS)) > 0) {
        for (i = 1; i < n; i++) {
            /* an exited thread's ring stays readable, never to fill */
            ins[i]->hup |= !!(fds[i].revents & (POLLHUP | POLLERR));
        }
        if (fds[0].revents) {
            event_notifier_test_and_clear(&rs_kick);
        }
    }
    return qatomic_xchg(&rs_period_changed, false);
}

/*
 * Sample every period.  A new period ends the current sleep: the
 * interval so far is closed at once (it is shorter than the period it
 * was slept for, so it is never a missed change), and the next sleep
 * uses the new period.  In between, the exact source drains what is
 * half full.
 */
static void *rs_sampler(void *opaque)
{
    for (;;) {
        int64_t period = (int64_t)qatomic_read(&rs_period_ms) * SCALE_MS;
        int64_t deadline = get_clock() + period;
        int64_t left;

        while ((left = deadline - get_clock()) > 0) {
            if (rs_wait(left)) {
                break;
            }
            if (rs_exact() && deadline > get_clock()) {
                rs_exact_drain(get_clock());
            }
        }
        rs_sample(period);
    }
    return NULL;
}

/* -- readers ------------------------------------------------------------ */

VcpuRunstates *vcpu_runstates_snapshot(void)
{
    VcpuRunstates *rs = g_new0(VcpuRunstates, 1);
    VcpuRunstateInfoList **tail = &rs->vcpus;
    VmRunstateInfo *vm = g_new0(VmRunstateInfo, 1);
    VcpuRs **vcpus = qatomic_load_acquire(&rs_vcpus);
    unsigned i, max = vcpus ? rs_max : current_machine->smp.max_cpus;

    rs->vm = vm;
    rs->method = rs_method;
    rs->period_ms = qatomic_read(&rs_period_ms);
    rs->source = vcpus ? qatomic_load_acquire(&rs_source) :
                 RUNSTATE_SOURCE_SAMPLED;
    if (rs->source != RUNSTATE_SOURCE_EXACT) {
        rs->has_source_reason = true;
        rs->source_reason = g_strdup(vcpus ? rs_source_reason :
                                     "no vCPU has started");
    }
    vm->state = VM_RUNSTATE_BLOCKED;
    if (vcpus) {
        qemu_mutex_lock(&rs_lock);
    }
    for (i = 0; i < max; i++) {
        VcpuRunstateInfo *v = g_new0(VcpuRunstateInfo, 1);
        VcpuRs *e = vcpus ? qatomic_load_acquire(&vcpus[i]) : NULL;

        v->cpu_index = i;
        v->state = VCPU_RUNSTATE_OFFLINE;
        if (e && rs_method != RUNSTATE_METHOD_NONE) {
            v->thread_id = qatomic_read(&e->tid);
            v->state = e->cur;
            v->running_ns = e->acc[RS_VCPU_RUNNING];
            v->runnable_ns = e->acc[RS_VCPU_RUNNABLE];
            v->blocked_ns = e->acc[RS_VCPU_BLOCKED];
            v->offline_ns = e->acc[RS_VCPU_OFFLINE];
            v->transitions = e->transitions;
            if (e->kvm_valid) {
                v->has_kvm = true;
                v->kvm = vcpu_runstates_kvm_counters(&e->kvm, e->kvm_vals);
            }
        } else if (e) {
            v->thread_id = qatomic_read(&e->tid);
        }
        QAPI_LIST_APPEND(tail, v);
    }
    if (vcpus) {
        vm->state = rs_vm_cur;
        vm->entered = rs_vm_entered;
        vm->full_run_ns = rs_vm[RS_VM_FULL_RUN];
        vm->full_contention_ns = rs_vm[RS_VM_FULL_CONTENTION];
        vm->concurrency_hazard_ns = rs_vm[RS_VM_CONCURRENCY_HAZARD];
        vm->blocked_ns = rs_vm[RS_VM_BLOCKED];
        vm->partial_run_ns = rs_vm[RS_VM_PARTIAL_RUN];
        vm->partial_contention_ns = rs_vm[RS_VM_PARTIAL_CONTENTION];
        vm->missed_changes = rs_missed;
        rs->samples = rs_samples;
        rs->elapsed_ns = rs_elapsed;
        qemu_mutex_unlock(&rs_lock);
    }
    if (rs_method == RUNSTATE_METHOD_KVM && rs_kvm_pv_reader) {
        rs->has_kvm_pv = true;
        rs->kvm_pv = g_new0(KvmPvFeatures, 1);
        rs_kvm_pv_reader(rs->kvm_pv);
    }
    return rs;
}

void vcpu_runstates_set_kvm_pv_reader(VcpuRunstatesKvmPvFn *fn)
{
    rs_kvm_pv_reader = fn;
}

void vcpu_runstates_set_period(int64_t period_ms)
{
    trace_vcpu_runstates_period(period_ms);
    qatomic_set(&rs_period_ms, period_ms);
    /* under the BQL, as rs_init(): rs_kick exists once rs_vcpus does */
    if (qatomic_read(&rs_vcpus)) {
        qatomic_set(&rs_period_changed, true);
        event_notifier_set(&rs_kick);
    }
}
