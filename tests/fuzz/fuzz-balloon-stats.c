/*
 * libFuzzer target: balloon statistics buffers and requests
 *
 * Drives the pure code behind balloon statistics on demand,
 * balloon/stats-buffer.c (check and parse of the guest's stats buffer)
 * and balloon/stats-requests.c (the device's owner and the request
 * bookkeeping), with a model
 * of the virtio-balloon device and of the guest around them.  The input
 * is a sequence of operations (tests/fuzz/README.md): the guest posts a
 * buffer, a monitor asks (sync with a timeout, or async), time passes
 * and waiters' timers fire, the driver resets, the device breaks, is
 * unplugged and plugged, the VM stops and runs; a completion may start
 * the next operation from inside the callback.  Invariants are checked
 * with abort():
 *
 *  - every waiter completes exactly once, through the callback, inside
 *    one of the bookkeeping's calls, with the reason of that call, in
 *    the order the waiters started;
 *  - fresh only from an answer of the device it asked, that came after
 *    it started; an answer of a device not registered completes none;
 *  - each completion carries the statistics of the device it asked
 *    (the BalloonStats that device registered), or none without a device;
 *  - after unplug, no waiter of the device is left (none completes
 *    later), and between operations none waits on a device that is not
 *    registered;
 *  - the device is asked only while registered; the answer is wanted
 *    as an event exactly as the async requests asked before it;
 *  - the check accepts exactly the well-formed buffers; the parse
 *    reads nothing past the buffer (each iovec element is its own
 *    allocation, for ASan), agrees with a plain reference parse, and
 *    reports only tags below BALLOON_STATS_NR;
 *  - no leak (LeakSanitizer), no undefined behaviour (UBSan).
 *
 * Built outside QEMU by scripts/fuzz.sh, which also replays the seeds
 * (tests/fuzz/corpus) and the inputs of past findings
 * (tests/fuzz/regressions) in make check.  FUZZ_TRACE=1 prints the
 * operations an input makes.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "balloon/stats-buffer.h"
#include "balloon/stats-requests.h"

#define MAX_TOKENS      64
#define MAX_SEGMENTS    4
#define MAX_LEN \
    (BALLOON_STATS_MAX_ENTRIES * BALLOON_STATS_ENTRY_SIZE + 64)
#define MAX_DEPTH       4
#define NDEV            4

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", \
                    __FILE__, __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

enum {
    OP_POST,            /* the guest posts a stats buffer */
    OP_ASK_SYNC,        /* query-balloon refresh sync / HMP info balloon */
    OP_ASK_ASYNC,       /* query-balloon refresh async */
    OP_ADVANCE,         /* time passes: expired waiters' timers fire */
    OP_TIMEOUT,         /* a waiter's timer fires (also a stale one) */
    OP_RESET,           /* device reset: the driver starts over */
    OP_DRIVER_OK,       /* the driver is ready (feature negotiated or not) */
    OP_BROKEN,          /* the device needs a reset */
    OP_UNPLUG,
    OP_PLUG,
    OP_STOP,            /* the VM stops */
    OP_CONT,            /* the VM runs */
    OP_POLL,            /* upstream's polling timer returns the buffer */
    OP_STRAY_ANSWER,    /* an answer from a device that is not registered */
    OP_LOST,            /* the device loses the request, with any reason */
    OP_NEST,            /* the next completion runs the next 1..4 ops */
    OP_ENDIAN,          /* the device reads the guest big-endian or not */
    OP__MAX,
};

/* What the bookkeeping call in progress may complete a waiter with */
enum {
    CTX_ANSWER,         /* fresh, for waiters started before the answer */
    CTX_TIMEOUT,        /* one token, stale timeout */
    CTX_STALE,          /* stale, for @why */
    CTX_WAIT,           /* the token just started, stale unsupported */
    CTX_NONE,           /* none may complete */
};

typedef struct Device Device;

typedef struct Context {
    int kind;
    BalloonStatsStale why;
    uint64_t answer;    /* CTX_ANSWER: the answer's number */
    Device *device;     /* CTX_ANSWER, CTX_STALE: whose waiters (NULL: any) */
    void *token;        /* CTX_TIMEOUT, CTX_WAIT */
    int last;           /* the token completed last in this call */
} Context;

typedef enum { TOKEN_FREE, TOKEN_WAITING, TOKEN_DONE } TokenState;

typedef struct Token {
    TokenState state;
    uint64_t started;   /* answers before it started waiting */
    uint64_t deadline;  /* ms, virtual */
    Device *device;     /* the device asked */
} Token;

struct Device {
    bool feature;       /* the driver negotiated the stats feature */
    bool driver_ok;
    bool broken;
    bool held;          /* the device holds the driver's buffer */
    bool posted;        /* the driver has posted a buffer */
    bool big_endian;
    bool pinned;        /* being (un)registered: its slot is not reused */
    BalloonStats latest;
};

static struct {
    const uint8_t *data;
    size_t size, pos;

    BalloonStatsRequests r;
    Device dev[NDEV];   /* one registered at a time, others stale */
    Device *registered;
    Device *plugged;    /* the device the guest talks to */
    bool running;
    uint64_t now;
    uint64_t answers;   /* answers of the registered device */
    bool event_wanted;  /* model of the async requests' wish */

    Token tokens[MAX_TOKENS];
    unsigned int ntokens;
    unsigned int waiting;

    Context ctx[MAX_DEPTH * 4 + 4];
    int depth;
    unsigned int nest;  /* the next completion runs this many operations */
    int nesting;

    bool asked;         /* dev_ask was called by the bookkeeping */
    BalloonStatsStale ask_why;
} H;

static void run_op(void);

static const char *const op_names[OP__MAX] = {
    "post", "ask-sync", "ask-async", "advance", "timeout", "reset",
    "driver-ok", "broken", "unplug", "plug", "stop", "cont", "poll",
    "stray-answer", "lost", "nest", "endian",
};

/* FUZZ_TRACE=1: print the operations (to read a finding) */
static int trace = -1;

#define TRACE(...) \
    do { \
        if (trace) { \
            fprintf(stderr, "%*s", H.nesting * 2, ""); \
            fprintf(stderr, __VA_ARGS__); \
        } \
    } while (0)

static uint8_t get8(void)
{
    return H.pos < H.size ? H.data[H.pos++] : 0;
}

static uint16_t get16(void)
{
    uint16_t lo = get8();

    return lo | (uint16_t)get8() << 8;
}

static void push(int kind, BalloonStatsStale why, Device *device, void *token)
{
    CHECK(H.depth < (int)G_N_ELEMENTS(H.ctx));
    H.ctx[H.depth++] = (Context) {
        .kind = kind, .why = why, .answer = H.answers,
        .device = device, .token = token, .last = -1,
    };
}

static void pop(void)
{
    H.depth--;
}

/* Nothing waits on @d any more */
static void check_gone(Device *d)
{
    unsigned int i;

    for (i = 0; i < H.ntokens; i++) {
        CHECK(H.tokens[i].state != TOKEN_WAITING || H.tokens[i].device != d);
    }
}

/* Between operations, nothing waits on a device that is not registered */
static void check_waiters(void)
{
    unsigned int i;

    CHECK(balloon_stats_requests_waiting(&H.r) == H.waiting);
    for (i = 0; i < H.ntokens; i++) {
        CHECK(H.tokens[i].state != TOKEN_WAITING ||
              (H.registered && H.tokens[i].device == H.registered));
    }
}

/* The completion callback: balloon/stats.c replies to a monitor here */
static void done(void *opaque, void *token, const BalloonStats *stats,
                 bool fresh, BalloonStatsStale why)
{
    Token *t = token;
    Context *c;

    TRACE("done token %d fresh %d why %d\n", (int)(t - H.tokens), fresh,
          why);
    CHECK(opaque == &H);
    CHECK(t >= H.tokens && t < H.tokens + H.ntokens);
    CHECK(t->state == TOKEN_WAITING);               /* exactly once */
    CHECK(H.depth > 0);                             /* inside a call */
    c = &H.ctx[H.depth - 1];
    CHECK(t - H.tokens > c->last);                  /* in start order */
    c->last = t - H.tokens;
    /* the reply shows the statistics of the device it asked, as parsed */
    CHECK(c->kind == CTX_WAIT ? !stats : stats == &t->device->latest);
    switch (c->kind) {
    case CTX_ANSWER:
        CHECK(fresh);
        CHECK(t->started < c->answer);  /* answered after it started */
        CHECK(t->device == c->device);  /* by the device it asked */
        break;
    case CTX_TIMEOUT:
        CHECK(!fresh && why == BALLOON_STATS_STALE_TIMEOUT);
        CHECK(token == c->token);
        break;
    case CTX_STALE:
        CHECK(!fresh && why == c->why);
        CHECK(!c->device || t->device == c->device);
        break;
    case CTX_WAIT:
        CHECK(!fresh && why == BALLOON_STATS_STALE_UNSUPPORTED);
        CHECK(token == c->token);
        break;
    default:
        CHECK(0);
    }
    t->state = TOKEN_DONE;
    H.waiting--;

    /* a completion may call back in: run the next operation from here */
    if (H.nest && H.nesting < MAX_DEPTH) {
        unsigned int n = H.nest;

        H.nest = 0;
        H.nesting++;
        while (n--) {
            run_op();
        }
        H.nesting--;
    }
}

/* The device's ask, as hw/virtio/virtio-balloon-stats.c stats_ask() */
static bool dev_ask(void *device, BalloonStatsStale *why)
{
    Device *d = device;

    CHECK(d == H.registered);
    H.asked = true;
    if (d->broken) {
        *why = BALLOON_STATS_STALE_BROKEN;
    } else if (!d->driver_ok) {
        *why = BALLOON_STATS_STALE_NOT_READY;
    } else if (!d->feature) {
        *why = BALLOON_STATS_STALE_UNSUPPORTED;
    } else if (!H.running) {
        *why = BALLOON_STATS_STALE_STOPPED;
    } else if (d->held) {
        d->held = false;        /* handed back: the guest answers */
        return true;
    } else if (d->posted) {
        return true;            /* handed back already */
    } else {
        *why = BALLOON_STATS_STALE_NOT_READY;
    }
    H.ask_why = *why;
    return false;
}

/* The unknown tags of a buffer, in order */
typedef struct Unknown {
    unsigned int count;
    uint16_t tag[MAX_LEN / BALLOON_STATS_ENTRY_SIZE];
} Unknown;

/* Plain reference parse of a flat buffer */
static void reference_parse(const uint8_t *buf, size_t len, bool big_endian,
                            BalloonStats *snap, unsigned int *n,
                            Unknown *unknown)
{
    size_t off;
    int i;

    memset(snap, 0, sizeof(*snap));
    *n = unknown->count = 0;
    for (off = 0; off + BALLOON_STATS_ENTRY_SIZE <= len;
         off += BALLOON_STATS_ENTRY_SIZE) {
        unsigned int tag;
        uint64_t val = 0;

        tag = big_endian ? (buf[off] << 8 | buf[off + 1])
                         : (buf[off] | buf[off + 1] << 8);
        for (i = 0; i < 8; i++) {
            val |= (uint64_t)buf[off + 2 + (big_endian ? i : 7 - i)]
                   << (8 * (7 - i));
        }
        (*n)++;
        if (tag < BALLOON_STATS_NR) {
            snap->val[tag] = val;
            snap->reported |= 1u << tag;
        } else {
            unknown->tag[unknown->count++] = tag;
        }
    }
}

static void check_unknown(void *opaque, unsigned int tag)
{
    Unknown *u = opaque;

    CHECK(u->count < G_N_ELEMENTS(u->tag));
    CHECK(tag == u->tag[u->count]);
    u->count++;
}

/*
 * Check and parse a buffer of @len bytes laid out as the guest's
 * descriptors (@nseg iovec elements, each its own allocation); returns
 * whether the device accepts it, with the parse in @snap.
 */
static bool post_buffer(uint8_t *flat, size_t len, unsigned int nseg,
                        const size_t *seg_len, unsigned int in_num,
                        bool negotiated, bool big_endian,
                        BalloonStats *snap)
{
    static Unknown unknown;
    struct iovec iov[MAX_SEGMENTS];
    BalloonStats ref;
    unsigned int i, n, ref_n, ref_unknown;
    const char *bad;
    size_t off = 0;
    bool well_formed;

    for (i = 0; i < nseg; i++) {
        iov[i].iov_len = seg_len[i];
        iov[i].iov_base = seg_len[i] ? g_memdup2(flat + off, seg_len[i])
                                     : NULL;
        off += seg_len[i];
    }
    CHECK(off == len);
    CHECK(balloon_stats_buffer_len(iov, nseg) == len);

    bad = balloon_stats_buffer_check(negotiated, len, in_num);
    well_formed = negotiated && !in_num && len &&
                  len % BALLOON_STATS_ENTRY_SIZE == 0 &&
                  len / BALLOON_STATS_ENTRY_SIZE <= BALLOON_STATS_MAX_ENTRIES;
    CHECK(well_formed == !bad);

    /* parse any shape: it must stay inside the buffer all the same */
    reference_parse(flat, len, big_endian, &ref, &ref_n, &unknown);
    ref_unknown = unknown.count;
    unknown.count = 0;
    n = balloon_stats_buffer_parse(iov, nseg, big_endian, snap,
                                   check_unknown, &unknown);
    CHECK(n == ref_n && unknown.count == ref_unknown);
    CHECK(n == len / BALLOON_STATS_ENTRY_SIZE);
    CHECK(snap->reported == ref.reported);
    CHECK(!(snap->reported >> BALLOON_STATS_NR));
    CHECK(memcmp(snap->val, ref.val, sizeof(ref.val)) == 0);
    CHECK(snap->last_update_ms == 0);

    for (i = 0; i < nseg; i++) {
        g_free(iov[i].iov_base);
    }
    return !bad;
}

/* The device's answer path, as virtio_balloon_receive_stats() */
static void answered(Device *d)
{
    bool registered = d == H.registered;
    bool want = H.event_wanted;
    bool event;

    if (registered) {
        H.answers++;
        H.event_wanted = false;
    }
    push(registered ? CTX_ANSWER : CTX_NONE, 0, d, NULL);
    event = balloon_stats_requests_answered(&H.r, d);
    pop();
    if (!registered) {
        CHECK(!event);      /* and completed none (CTX_NONE) */
    } else {
        CHECK(event == want);
    }
}

static void op_post(void)
{
    static uint8_t flat[MAX_LEN];
    Device *d = H.plugged;
    BalloonStats snap;
    size_t seg_len[MAX_SEGMENTS];
    uint8_t flags = get8();
    unsigned int nseg = 1 + (flags & 3);
    unsigned int in_num = (flags >> 2) & 1;
    size_t len, left, i;

    /* 0..255 whole entries, or any length */
    if (flags & 0x80) {
        len = get16() % (MAX_LEN + 1);
    } else {
        len = get8() * BALLOON_STATS_ENTRY_SIZE;
    }
    for (i = 0; i < len; i++) {
        flat[i] = get8();
    }
    left = len;
    for (i = 0; i + 1 < nseg; i++) {
        seg_len[i] = get16() % (left + 1);
        left -= seg_len[i];
    }
    seg_len[nseg - 1] = left;

    if (!post_buffer(flat, len, nseg, seg_len, in_num, d->feature,
                     d->big_endian, &snap)) {
        TRACE("  %zu bytes in %u descriptors: returned unused\n", len, nseg);
        return;
    }
    TRACE("  %zu bytes in %u descriptors: tags 0x%x\n", len, nseg,
          snap.reported);
    /* a second buffer: upstream hands back the held one, keeps this */
    d->held = true;
    d->posted = true;
    d->latest = snap;
    answered(d);
}

static Token *new_token(uint64_t timeout)
{
    Token *t;

    if (H.ntokens == MAX_TOKENS) {
        return NULL;
    }
    t = &H.tokens[H.ntokens++];
    t->state = TOKEN_WAITING;
    t->started = H.answers;
    t->deadline = H.now + timeout;
    t->device = H.registered;
    H.waiting++;
    TRACE("  token %d waits on device %d\n", (int)(t - H.tokens),
          H.registered ? (int)(H.registered - H.dev) : -1);
    return t;
}

static void op_ask(bool sync)
{
    uint16_t timeout = get16() % 60000 + 1;
    bool can_defer = sync && !(get8() & 0x80);
    BalloonStatsStale why = BALLOON_STATS_STALE__MAX;
    Token *t;

    H.asked = false;
    if (!balloon_stats_requests_ask(&H.r, &why)) {
        /* the reply now says why: no device, or the device's reason */
        if (!H.registered) {
            CHECK(!H.asked && why == BALLOON_STATS_STALE_UNSUPPORTED);
            /* waiting anyway: completes at once */
            t = can_defer && (timeout & 1) ? new_token(timeout) : NULL;
            if (t) {
                push(CTX_WAIT, 0, NULL, t);
                balloon_stats_requests_wait(&H.r, t);
                pop();
                CHECK(t->state == TOKEN_DONE);
            }
        } else {
            CHECK(H.asked && why == H.ask_why);
        }
        return;
    }
    CHECK(H.registered && H.asked);
    t = can_defer ? new_token(timeout) : NULL;
    if (t) {
        push(CTX_WAIT, 0, NULL, t);
        balloon_stats_requests_wait(&H.r, t);
        pop();
    } else {
        /* async, or a monitor that cannot wait: the event follows */
        H.event_wanted = true;
        balloon_stats_requests_want_event(&H.r);
    }
}

static void fire(Token *t)
{
    bool was_waiting = t->state == TOKEN_WAITING;

    push(CTX_TIMEOUT, 0, NULL, t);
    CHECK(balloon_stats_requests_timeout(&H.r, t) == was_waiting);
    pop();
    CHECK(t->state != TOKEN_WAITING);
}

static void op_advance(void)
{
    uint64_t until = H.now + get16();

    /* expired timers fire in deadline order */
    for (;;) {
        Token *first = NULL;
        unsigned int i;

        for (i = 0; i < H.ntokens; i++) {
            Token *t = &H.tokens[i];

            if (t->state == TOKEN_WAITING && t->deadline <= until &&
                (!first || t->deadline < first->deadline)) {
                first = t;
            }
        }
        if (!first) {
            break;
        }
        H.now = MAX(H.now, first->deadline);
        fire(first);
    }
    H.now = until;
}

static void lost(Device *d, BalloonStatsStale why)
{
    bool registered = d == H.registered;

    if (registered) {
        H.event_wanted = false;
    }
    push(registered ? CTX_STALE : CTX_NONE, why, d, NULL);
    balloon_stats_requests_lost(&H.r, d, why);
    pop();
}

static void unplug(void)
{
    Device *d = H.registered;

    if (!d) {
        /* nothing registered: unregistering any device does nothing */
        CHECK(!balloon_stats_requests_unregister(&H.r, &H.dev[0]));
        return;
    }
    H.registered = NULL;        /* a done callback sees it gone */
    H.event_wanted = false;
    d->pinned = true;
    push(CTX_STALE, BALLOON_STATS_STALE_RESET, d, NULL);
    CHECK(balloon_stats_requests_unregister(&H.r, d));
    pop();
    d->pinned = false;
    /* nothing waits on it any more: nothing will complete later */
    check_gone(d);
    CHECK(!balloon_stats_requests_unregister(&H.r, d));
}

/* A new device, in a slot no device in use has */
static Device *new_device(void)
{
    unsigned int i;

    for (i = 0; i < NDEV; i++) {
        Device *d = &H.dev[i];

        if (d != H.plugged && d != H.registered && !d->pinned) {
            memset(d, 0, sizeof(*d));
            return d;
        }
    }
    return NULL;
}

/*
 * Registering switches at once: the waiters of the device registered
 * before complete (stale, reset) while the new one already answers, and
 * a device registered from one of those completions replaces it in turn.
 */
static void plug(bool replace)
{
    Device *d, *old;

    if (!replace) {
        unplug();
    }
    old = H.registered;
    d = new_device();
    if (!d) {
        return;
    }
    TRACE("  device %d replaces %d\n", (int)(d - H.dev),
          old ? (int)(old - H.dev) : -1);
    H.plugged = d;
    H.registered = d;
    if (old) {
        H.event_wanted = false;
        old->pinned = true;     /* its waiters still complete */
    }
    push(old ? CTX_STALE : CTX_NONE, BALLOON_STATS_STALE_RESET, old, NULL);
    balloon_stats_requests_register(&H.r, d, dev_ask, &d->latest);
    pop();
    if (old) {
        old->pinned = false;
        check_gone(old);
    }
}

/* A device that is not the one registered */
static Device *other_device(uint8_t b)
{
    Device *d = &H.dev[b % NDEV];

    return d == H.registered ? &H.dev[(b + 1) % NDEV] : d;
}

static void run_op(void)
{
    Device *d = H.plugged;
    uint8_t op = get8() % OP__MAX;
    unsigned int i;

    TRACE("%s (device %d%s)\n", op_names[op], (int)(d - H.dev),
          d == H.registered ? "" : ", not registered");

    switch (op) {
    case OP_POST:
        op_post();
        break;
    case OP_ASK_SYNC:
        op_ask(true);
        break;
    case OP_ASK_ASYNC:
        op_ask(false);
        break;
    case OP_ADVANCE:
        op_advance();
        break;
    case OP_TIMEOUT: {
        unsigned int k = get8();

        if (H.ntokens) {
            fire(&H.tokens[k % H.ntokens]);
        }
        break;
    }
    case OP_RESET:
        d->held = d->posted = d->broken = d->driver_ok = false;
        lost(d, BALLOON_STATS_STALE_RESET);
        break;
    case OP_DRIVER_OK:
        d->driver_ok = true;
        d->feature = !(get8() & 0x80);
        break;
    case OP_BROKEN:
        d->broken = true;
        lost(d, BALLOON_STATS_STALE_BROKEN);
        break;
    case OP_UNPLUG:
        unplug();
        break;
    case OP_PLUG:
        plug(get8() & 1);
        break;
    case OP_STOP: {
        unsigned int n = H.ntokens;

        H.running = false;
        push(CTX_STALE, BALLOON_STATS_STALE_STOPPED, NULL, NULL);
        balloon_stats_requests_stopped(&H.r);
        pop();
        /* (from a completion, others may still be completing) */
        for (i = 0; i < n && !H.nesting; i++) {
            CHECK(H.tokens[i].state != TOKEN_WAITING);
        }
        break;
    }
    case OP_CONT:
        H.running = true;
        break;
    case OP_POLL:
        d->held = false;
        break;
    case OP_STRAY_ANSWER:
        answered(other_device(get8()));
        break;
    case OP_LOST: {
        uint8_t b = get8();

        lost(b & 0x80 ? other_device(b) : d, b % BALLOON_STATS_STALE__MAX);
        break;
    }
    case OP_NEST:
        H.nest = 1 + get8() % 4;
        break;
    case OP_ENDIAN:
        d->big_endian = !d->big_endian;
        break;
    }
    if (!H.nesting) {
        check_waiters();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned int i;

    if (trace < 0) {
        trace = getenv("FUZZ_TRACE") != NULL;
    }
    memset(&H, 0, sizeof(H));
    H.data = data;
    H.size = size;
    H.running = true;
    balloon_stats_requests_init(&H.r, done, &H);
    plug(false);

    while (H.pos < H.size) {
        run_op();
    }

    /* the end: unplug completes whatever still waits */
    H.nest = 0;
    unplug();
    CHECK(H.depth == 0 && !H.registered && H.waiting == 0);
    for (i = 0; i < H.ntokens; i++) {
        CHECK(H.tokens[i].state == TOKEN_DONE);
    }
    return 0;
}
