/*
 * QTest helpers shared by the virtio-balloon statistics qtests (qemu-oc):
 * the test plays the guest's virtio-balloon driver through libqos and
 * asks through QMP and HMP.  See oc-balloon-qtest.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "oc-balloon-qtest.h"
#include "libqmp.h"
#include "libqos/virtio-pci.h"
#include "qapi/error.h"
#include "qapi/qmp/qjson.h"
#include "qapi/qmp/qnum.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "standard-headers/linux/virtio_balloon.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ids.h"

static const char *const tag_names[NR_TAGS] = {
    "swap-in", "swap-out", "major-faults", "minor-faults",
    "free-memory", "total-memory", "available-memory", "disk-caches",
    "hugetlb-allocations", "hugetlb-failures", "oom-kills", "alloc-stalls",
    "async-scans", "direct-scans", "async-reclaims", "direct-reclaims",
};

static const char *const socket_names[] = { "m2.sock", "m3.sock", "h1.sock" };

int64_t now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

int64_t wall_ms(void)
{
    return g_get_real_time() / 1000;
}

/*
 * Start QEMU, with a virtio-balloon-pci device if @device, two more QMP
 * monitors (m2.sock, m3.sock) and an HMP monitor (h1.sock).
 */
void balloon_boot(Balloon *b, bool device)
{
    GError *err = NULL;
    g_autofree char *dev_opt = NULL;

    memset(b, 0, sizeof(*b));
    b->fds = g_array_new(false, false, sizeof(int));
    b->dir = g_dir_make_tmp("oc-balloon-XXXXXX", &err);
    g_assert_no_error(err);
    b->trace_log = g_build_filename(b->dir, "trace.log", NULL);
    dev_opt = device ? g_strdup("-device virtio-balloon-pci,id=b0,addr=04.0")
                     : g_strdup("");
    b->qts = qtest_initf("-M pc -m %d %s "
                         "-chardev socket,id=m2,path=%s/m2.sock,"
                         "server=on,wait=off "
                         "-mon chardev=m2,mode=control "
                         "-chardev socket,id=m3,path=%s/m3.sock,"
                         "server=on,wait=off "
                         "-mon chardev=m3,mode=control "
                         "-chardev socket,id=h1,path=%s/h1.sock,"
                         "server=on,wait=off "
                         "-mon chardev=h1,mode=readline "
                         "-trace 'enable=balloon_stats_*' "
                         "-trace 'enable=virtio_balloon_stats_*' "
                         "-trace 'enable=monitor_deferred_*' "
                         "-trace 'enable=qmp_exit_*' -D %s",
                         RAM_MB, dev_opt, b->dir, b->dir, b->dir,
                         b->trace_log);
    if (!device) {
        return;
    }
    b->bus = qpci_new_pc(b->qts, NULL);
    pc_alloc_init(&b->alloc, b->qts, 0);
    b->dev = virtio_pci_new(b->bus,
                            &(QPCIAddress) { .devfn = QPCI_DEVFN(4, 0) });
    g_assert_nonnull(b->dev);
    g_assert_cmpint(b->dev->vdev.device_type, ==, VIRTIO_ID_BALLOON);
    qvirtio_pci_device_enable(b->dev);
}

void balloon_end(Balloon *b)
{
    int i;

    for (i = 0; i < b->fds->len; i++) {
        close(g_array_index(b->fds, int, i));
    }
    g_array_free(b->fds, true);
    if (b->dev) {
        if (b->vq) {
            qvirtqueue_cleanup(b->dev->vdev.bus, b->vq, &b->alloc);
        }
        qvirtio_pci_device_disable(b->dev);
        g_free(b->dev->pdev);
        g_free(b->dev);
        qpci_free_pc(b->bus);
        alloc_destroy(&b->alloc);
    }
    qtest_quit(b->qts);
    for (i = 0; i < ARRAY_SIZE(socket_names); i++) {
        g_autofree char *path = g_build_filename(b->dir, socket_names[i],
                                                 NULL);
        unlink(path);
    }
    unlink(b->trace_log);
    rmdir(b->dir);
    g_free(b->trace_log);
    g_free(b->dir);
}

/*
 * The driver (re)initializes the device: reset, negotiate
 * VIRTIO_F_VERSION_1 plus @extra (features the device must offer), set
 * up the stats queue, DRIVER_OK.
 */
void driver_init_features(Balloon *b, uint64_t extra)
{
    QVirtioDevice *vdev = &b->dev->vdev;
    uint64_t features;

    if (b->vq) {
        qvirtqueue_cleanup(vdev->bus, b->vq, &b->alloc);
        b->vq = NULL;
    }
    qvirtio_start_device(vdev);
    features = qvirtio_get_features(vdev);
    g_assert_true(features & (1ull << VIRTIO_F_VERSION_1));
    g_assert_true(features & (1ull << VIRTIO_BALLOON_F_STATS_VQ));
    g_assert_cmphex(features & extra, ==, extra);
    qvirtio_set_features(vdev, (1ull << VIRTIO_F_VERSION_1) | extra);
    b->vq = qvirtqueue_setup(vdev, &b->alloc, STATS_VQ);
    qvirtio_set_driver_ok(vdev);
}

/*
 * The same with VIRTIO_BALLOON_F_STATS_VQ if @stats (the device always
 * offers it), and nothing else
 */
void driver_init(Balloon *b, bool stats)
{
    driver_init_features(b, stats ? 1ull << VIRTIO_BALLOON_F_STATS_VQ : 0);
}

/*
 * The opening most tests share: boot with the device, the driver
 * initializes it with statistics, allocates a buffer for @room entries
 * and posts @first in it
 */
void balloon_start(Balloon *b, size_t room, const Stat *first, size_t n)
{
    g_assert_cmpuint(n, <=, room);
    balloon_boot(b, true);
    driver_init(b, true);
    b->buf = guest_alloc(&b->alloc, room * STAT_SIZE);
    b->head = post_stats(b, b->buf, first, n);
}

/* How many lines of the trace log are @event (with @detail, if given) */
int trace_count(Balloon *b, const char *event, const char *detail)
{
    g_autofree char *log = NULL;
    g_autofree char *start = g_strdup_printf("%s ", event);
    g_autofree char *mid = g_strdup_printf(":%s ", event);
    g_auto(GStrv) lines = NULL;
    int i, n = 0;

    if (!g_file_get_contents(b->trace_log, &log, NULL, NULL)) {
        return 0;
    }
    lines = g_strsplit(log, "\n", -1);
    for (i = 0; lines[i]; i++) {
        if ((g_str_has_prefix(lines[i], start) || strstr(lines[i], mid)) &&
            (!detail || strstr(lines[i], detail))) {
            n++;
        }
    }
    return n;
}

/* Wait until the trace log has @n lines of @event */
void trace_wait(Balloon *b, const char *event, int n)
{
    int64_t end = now_ms() + WAIT_MS;

    while (trace_count(b, event, NULL) < n) {
        g_assert_cmpint(now_ms(), <, end);
        g_usleep(2000);
    }
    g_assert_cmpint(trace_count(b, event, NULL), ==, n);
}

/* Write @n statistics entries to guest memory at @addr */
void buf_fill(Balloon *b, uint64_t addr, const Stat *st, size_t n)
{
    g_autofree uint8_t *raw = g_malloc0(n * STAT_SIZE);
    size_t i;

    for (i = 0; i < n; i++) {
        stw_le_p(raw + i * STAT_SIZE, st[i].tag);
        stq_le_p(raw + i * STAT_SIZE + 2, st[i].val);
    }
    qtest_memwrite(b->qts, addr, raw, n * STAT_SIZE);
}

/* Make one descriptor available on the stats queue and notify */
uint32_t post_raw(Balloon *b, uint64_t addr, uint32_t len, bool write)
{
    uint32_t head = qvirtqueue_add(b->qts, b->vq, addr, len, write, false);

    qvirtqueue_kick(b->qts, &b->dev->vdev, b->vq, head);
    return head;
}

/*
 * Fill the buffer at @addr with @n entries and post it; wait until the
 * device has taken them in.
 */
uint32_t post_stats(Balloon *b, uint64_t addr, const Stat *st, size_t n)
{
    int seen = trace_count(b, "virtio_balloon_stats_received", NULL);
    uint32_t head;

    buf_fill(b, addr, st, n);
    head = post_raw(b, addr, n * STAT_SIZE, false);
    trace_wait(b, "virtio_balloon_stats_received", seen + 1);
    return head;
}

/* The next buffer the device returned, waiting up to @ms */
bool used_get(Balloon *b, uint32_t *head, uint32_t *len, int ms)
{
    int64_t end = now_ms() + ms;

    for (;;) {
        if (qvirtqueue_get_buf(b->qts, b->vq, head, len)) {
            return true;
        }
        if (now_ms() >= end) {
            return false;
        }
        g_usleep(1000);
    }
}

/* The device returns the buffer @head, unused (length 0) */
void assert_returned(Balloon *b, uint32_t head)
{
    uint32_t got, len;

    g_assert_true(used_get(b, &got, &len, WAIT_MS));
    g_assert_cmpuint(got, ==, head);
    g_assert_cmpuint(len, ==, 0);
}

/* The device returns no buffer */
void assert_none_returned(Balloon *b, int ms)
{
    g_assert_false(used_get(b, NULL, NULL, ms));
}

/* The return value of a successful QMP reply; frees @rsp */
QDict *reply_return(QDict *rsp)
{
    QDict *ret;

    g_assert_nonnull(rsp);
    g_assert_false(qdict_haskey(rsp, "error"));
    ret = qdict_get_qdict(rsp, "return");
    g_assert_nonnull(ret);
    qobject_ref(ret);
    qobject_unref(rsp);
    return ret;
}

/* query-balloon on the qtest monitor, @args a JSON object or NULL */
QDict *query(Balloon *b, const char *args)
{
    return reply_return(qtest_qmp(b->qts, "{'execute': 'query-balloon',"
                                  " 'arguments': %p}",
                                  qobject_from_json(args ? args : "{}",
                                                    &error_abort)));
}

/*
 * As query(), answered without waiting: no request started waiting for
 * the guest while it was served
 */
QDict *query_prompt(Balloon *b, const char *args)
{
    int starts = trace_count(b, "balloon_stats_waiter_start", NULL);
    QDict *info = query(b, args);

    g_assert_cmpint(trace_count(b, "balloon_stats_waiter_start", NULL), ==,
                    starts);
    return info;
}

/*
 * query_prompt(), and the reply is stale for @reason with exactly the
 * statistics @exp (none if @exp is NULL)
 */
void query_check(Balloon *b, const char *args, const char *reason,
                 const Stat *exp, size_t n)
{
    QDict *info = query_prompt(b, args);

    assert_stale(info, reason);
    if (exp) {
        assert_stats(info, exp, n);
    } else {
        assert_no_stats(info);
    }
    qobject_unref(info);
}

void assert_actual(QDict *info)
{
    g_assert_cmpint(qdict_get_int(info, "actual"), ==,
                    (int64_t)RAM_MB << 20);
}

/* @stats (BalloonGuestStats) is exactly @exp (distinct tags < 16) */
void assert_guest_stats(QDict *stats, const Stat *exp, size_t n)
{
    size_t i;

    g_assert_nonnull(stats);
    g_assert_cmpint(qdict_size(stats), ==, n);
    for (i = 0; i < n; i++) {
        QNum *q = qobject_to(QNum, qdict_get(stats, tag_names[exp[i].tag]));

        g_assert_nonnull(q);
        g_assert_cmpuint(qnum_get_uint(q), ==, exp[i].val);
    }
}

/* @info holds exactly the statistics @exp, with their time */
void assert_stats(QDict *info, const Stat *exp, size_t n)
{
    assert_guest_stats(qdict_get_qdict(info, "stats"), exp, n);
    g_assert_true(qdict_haskey(info, "last-update"));
    g_assert_cmpint(qdict_get_int(info, "age"), >=, 0);
}

/* @info holds no statistics */
void assert_no_stats(QDict *info)
{
    g_assert_false(qdict_haskey(info, "stats"));
    g_assert_false(qdict_haskey(info, "last-update"));
    g_assert_false(qdict_haskey(info, "age"));
}

void assert_stale(QDict *info, const char *reason)
{
    assert_actual(info);
    g_assert_false(qdict_get_bool(info, "fresh"));
    g_assert_cmpstr(qdict_get_try_str(info, "stale-reason"), ==, reason);
}

/*
 * Fresh statistics, reported at or after @since_ms (wall clock), and
 * their age no more than the time since they were reported
 */
void assert_fresh(QDict *info, int64_t since_ms)
{
    int64_t now = wall_ms();
    int64_t last_update = qdict_get_int(info, "last-update");

    assert_actual(info);
    g_assert_true(qdict_get_bool(info, "fresh"));
    g_assert_false(qdict_haskey(info, "stale-reason"));
    g_assert_cmpint(last_update, >=, since_ms);
    g_assert_cmpint(last_update, <=, now);
    g_assert_cmpint(qdict_get_int(info, "age"), >=, 0);
    g_assert_cmpint(qdict_get_int(info, "age"), <=, now - last_update);
}

/*
 * A sync refresh the driver answers: the device returns buffer @head,
 * the driver refills it with @st and posts it again; the reply is fresh
 * and carries @st.  Returns the head of the re-posted buffer.
 */
uint32_t sync_answered(Balloon *b, uint32_t head, uint64_t buf,
                       const Stat *st, size_t n)
{
    QDict *info;
    int64_t t0;

    qtest_qmp_send(b->qts, "{'execute': 'query-balloon',"
                   " 'arguments': {'refresh': 'sync'}}");
    assert_returned(b, head);
    t0 = wall_ms();
    head = post_stats(b, buf, st, n);
    info = reply_return(qtest_qmp_receive(b->qts));
    assert_fresh(info, t0);
    assert_stats(info, st, n);
    qobject_unref(info);
    return head;
}

/* Connect to one of the extra monitors' sockets */
int mon_connect(Balloon *b, const char *name)
{
    g_autofree char *path = g_build_filename(b->dir, name, NULL);
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd;

    g_assert_cmpuint(strlen(path), <, sizeof(addr.sun_path));
    pstrcpy(addr.sun_path, sizeof(addr.sun_path), path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, 0);
    g_array_append_val(b->fds, fd);
    return fd;
}

/* Hang up a connection mon_connect() opened, before the end */
void mon_close(Balloon *b, int fd)
{
    int i;

    for (i = 0; i < b->fds->len; i++) {
        if (g_array_index(b->fds, int, i) == fd) {
            g_array_remove_index_fast(b->fds, i);
            close(fd);
            return;
        }
    }
    g_assert_not_reached();
}

/* The next reply on QMP socket @fd, skipping events */
QDict *qmp_reply(int fd)
{
    for (;;) {
        QDict *rsp = qmp_fd_receive(fd);

        if (!qdict_haskey(rsp, "event")) {
            return rsp;
        }
        qobject_unref(rsp);
    }
}

/* Wait until @fd has something to read, up to @ms (liveness bound) */
void assert_readable(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    g_assert_cmpint(poll(&pfd, 1, ms), ==, 1);
}

/* Connect to QMP monitor @name and negotiate capabilities */
int qmp_connect(Balloon *b, const char *name)
{
    int fd = mon_connect(b, name);
    QDict *rsp = qmp_fd_receive(fd);

    g_assert_true(qdict_haskey(rsp, "QMP"));
    qobject_unref(rsp);
    qmp_fd_send(fd, "{'execute': 'qmp_capabilities'}");
    qobject_unref(reply_return(qmp_reply(fd)));
    return fd;
}

/* Read HMP socket @fd up to and including its next prompt */
char *hmp_read_prompt(int fd)
{
    GString *s = g_string_new(NULL);
    char c;

    while (!g_str_has_suffix(s->str, "(qemu) ")) {
        assert_readable(fd, WAIT_MS);
        g_assert_cmpint(read(fd, &c, 1), ==, 1);
        g_string_append_c(s, c);
    }
    return g_string_free(s, false);
}

/* The "balloon: ..." line of HMP output @text, without its end of line */
char *hmp_balloon_line(const char *text)
{
    const char *p = strstr(text, "balloon: actual=");

    g_assert_nonnull(p);
    return g_strndup(p, strcspn(p, "\r\n"));
}
