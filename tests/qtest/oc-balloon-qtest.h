/*
 * QTest helpers shared by the virtio-balloon statistics qtests (qemu-oc)
 *
 * The test plays the guest's virtio-balloon driver through libqos: it
 * negotiates features, posts statistics buffers on the stats virtqueue
 * and sees the device return them.  Meanwhile it asks through
 * query-balloon on the qtest monitor, two more QMP monitors (m2.sock,
 * m3.sock) and an HMP monitor (h1.sock).  QEMU's trace log (-D) tells
 * when a request waits in QEMU and how often the device asked the guest.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef OC_BALLOON_QTEST_H
#define OC_BALLOON_QTEST_H

#include "libqtest.h"
#include "libqos/libqos-malloc.h"
#include "libqos/malloc-pc.h"
#include "libqos/pci-pc.h"
#include "libqos/virtio.h"
#include "libqos/virtio-pci.h"
#include "qapi/qmp/qdict.h"

#define STATS_VQ        2       /* index of the stats virtqueue */
#define STAT_SIZE       10      /* packed { le16 tag; le64 val; } */
#define NR_TAGS         16      /* tags the device knows */
#define MAX_ENTRIES     256     /* entries a buffer may hold */
#define RAM_MB          256

/*
 * How long to wait for what must happen (a bound for liveness only: what
 * is checked is the order of events), and for what must not
 */
#define WAIT_MS         5000
#define ABSENT_MS       200

typedef struct Stat {
    uint16_t tag;
    uint64_t val;
} Stat;

typedef struct Balloon {
    QTestState *qts;
    QGuestAllocator alloc;
    QPCIBus *bus;
    QVirtioPCIDevice *dev;
    QVirtQueue *vq;             /* the stats queue, once set up */
    char *dir;                  /* monitor sockets and the trace log */
    char *trace_log;
    GArray *fds;                /* monitor connections, closed at the end */
    uint64_t buf;               /* balloon_start()'s statistics buffer */
    uint32_t head;              /* ... its head, as first posted */
} Balloon;

/* Monotonic and wall clock, in ms */
int64_t now_ms(void);
int64_t wall_ms(void);

/*
 * Start QEMU (-M pc, RAM_MB), with a virtio-balloon-pci device (id b0,
 * slot 4) if @device, and the extra monitors; stop it
 */
void balloon_boot(Balloon *b, bool device);
/* Close the monitor connections still open; stop QEMU */
void balloon_end(Balloon *b);
/*
 * The driver (re)initializes the device: reset, negotiate
 * VIRTIO_F_VERSION_1 plus @extra, set up the stats queue, DRIVER_OK
 */
void driver_init_features(Balloon *b, uint64_t extra);
/* The same, plus VIRTIO_BALLOON_F_STATS_VQ if @stats */
void driver_init(Balloon *b, bool stats);
/*
 * The opening most tests share: balloon_boot() with the device,
 * driver_init() with statistics, a buffer for @room entries (b->buf) and
 * the @n entries @first posted in it (b->head)
 */
void balloon_start(Balloon *b, size_t room, const Stat *first, size_t n);

/* Lines of the trace log that are @event (with @detail, if given) */
int trace_count(Balloon *b, const char *event, const char *detail);
/* Wait until the trace log has exactly @n lines of @event */
void trace_wait(Balloon *b, const char *event, int n);

/* Write @n statistics entries to guest memory at @addr */
void buf_fill(Balloon *b, uint64_t addr, const Stat *st, size_t n);
/* Make one descriptor available on the stats queue and notify */
uint32_t post_raw(Balloon *b, uint64_t addr, uint32_t len, bool write);
/* Fill and post a buffer; wait until the device has taken it in */
uint32_t post_stats(Balloon *b, uint64_t addr, const Stat *st, size_t n);
/* The next buffer the device returned (used ring), waiting up to @ms */
bool used_get(Balloon *b, uint32_t *head, uint32_t *len, int ms);
/* The device returns buffer @head, unused (length 0) */
void assert_returned(Balloon *b, uint32_t head);
/* The device returns no buffer within @ms */
void assert_none_returned(Balloon *b, int ms);

/* The return value of a successful QMP reply; frees @rsp */
QDict *reply_return(QDict *rsp);
/* query-balloon on the qtest monitor, @args a JSON object or NULL */
QDict *query(Balloon *b, const char *args);
/* As query(), answered without waiting (no request started waiting) */
QDict *query_prompt(Balloon *b, const char *args);
/*
 * query_prompt(), and the reply is stale for @reason with exactly the
 * statistics @exp (none if @exp is NULL)
 */
void query_check(Balloon *b, const char *args, const char *reason,
                 const Stat *exp, size_t n);
void assert_actual(QDict *info);
/* @stats (BalloonGuestStats) is exactly @exp (distinct tags < 16) */
void assert_guest_stats(QDict *stats, const Stat *exp, size_t n);
/* @info holds exactly the statistics @exp, with their time */
void assert_stats(QDict *info, const Stat *exp, size_t n);
/* @info holds no statistics */
void assert_no_stats(QDict *info);
void assert_stale(QDict *info, const char *reason);
/*
 * Fresh statistics, reported at or after @since_ms (wall clock), and
 * their age no more than the time since then
 */
void assert_fresh(QDict *info, int64_t since_ms);
/*
 * A sync refresh the driver answers: the device returns buffer @head,
 * the driver refills it with @st and posts it again; the reply is fresh.
 * Returns the head of the re-posted buffer.
 */
uint32_t sync_answered(Balloon *b, uint32_t head, uint64_t buf,
                       const Stat *st, size_t n);

/*
 * Connect to one of the extra monitors' sockets; the connection is @b's:
 * balloon_end() closes it unless mon_close() did
 */
int mon_connect(Balloon *b, const char *name);
/* Connect to QMP monitor @name and negotiate capabilities */
int qmp_connect(Balloon *b, const char *name);
/* Hang up a connection mon_connect() opened, before the end */
void mon_close(Balloon *b, int fd);
/* The next reply on QMP socket @fd, skipping events */
QDict *qmp_reply(int fd);
/* Wait until @fd has something to read, up to @ms (liveness bound) */
void assert_readable(int fd, int ms);
/* Read HMP socket @fd up to and including its next prompt */
char *hmp_read_prompt(int fd);
/* The "balloon: ..." line of HMP output @text, without its end of line */
char *hmp_balloon_line(const char *text);

#endif
