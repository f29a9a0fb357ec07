/*
 * qemu-oc host tools: test of discovery's QMP socket directories
 *
 * A temporary directory with unix sockets bound in it: sockets there at
 * start and sockets created later are added by their file name, deleted
 * ones removed, other files ignored, and a directory that disappears
 * loses its VMs.  Every expected callback must come within a bounded
 * wait, from the discovery thread.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "discovery.h"

#define WAIT_US (5 * G_USEC_PER_SEC)
#define QUIET_US (300 * 1000)

typedef struct Seen {
    GMutex lock;
    GCond cond;
    GPtrArray *log;             /* "+name where" and "-name" */
    GThread *thread;            /* the thread of the first callback */
    bool other_thread;          /* a callback from another thread */
} Seen;

static void seen_note(Seen *s, char *line)
{
    g_mutex_lock(&s->lock);
    if (!s->thread) {
        s->thread = g_thread_self();
    } else if (s->thread != g_thread_self()) {
        s->other_thread = true;
    }
    g_ptr_array_add(s->log, line);
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

static void on_add(void *opaque, const char *name, const char *where,
                   VmLink *link)
{
    g_assert_nonnull(link);
    vm_link_free(link);
    seen_note(opaque, g_strdup_printf("+%s %s", name, where));
}

static void on_remove(void *opaque, const char *name)
{
    seen_note(opaque, g_strdup_printf("-%s", name));
}

/* Wait for the next logged line (NULL after @us) and take it */
static char *seen_next(Seen *s, gint64 us)
{
    gint64 end = g_get_monotonic_time() + us;
    char *line = NULL;

    g_mutex_lock(&s->lock);
    while (!s->log->len && g_cond_wait_until(&s->cond, &s->lock, end)) {
        /* woken: check again */
    }
    if (s->log->len) {
        line = g_ptr_array_steal_index(s->log, 0);
    }
    g_mutex_unlock(&s->lock);
    return line;
}

static void expect(Seen *s, const char *want)
{
    g_autofree char *line = seen_next(s, WAIT_US);

    g_assert_cmpstr(line, ==, want);
}

static void expect_nothing(Seen *s)
{
    g_autofree char *line = seen_next(s, QUIET_US);

    g_assert_cmpstr(line, ==, NULL);
}

/* A bound (not listening) unix socket at @path; returns its fd */
static int bind_socket(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpuint(strlen(path), <, sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    return fd;
}

static void seen_init(Seen *s)
{
    memset(s, 0, sizeof(*s));
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
    s->log = g_ptr_array_new_with_free_func(g_free);
}

static void seen_clear(Seen *s)
{
    g_ptr_array_free(s->log, true);
    g_cond_clear(&s->cond);
    g_mutex_clear(&s->lock);
}

static void test_qmp_dir(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-discovery-XXXXXX", NULL);
    g_autofree char *a = g_build_filename(dir, "vm-a", NULL);
    g_autofree char *b = g_build_filename(dir, "vm-b", NULL);
    g_autofree char *file = g_build_filename(dir, "not-a-socket", NULL);
    g_autofree char *moved = g_strconcat(dir, ".moved", NULL);
    g_autofree char *moved_b = g_build_filename(moved, "vm-b", NULL);
    g_autofree char *want = NULL;
    g_autoptr(GError) err = NULL;
    Discovery *d;
    Seen s;
    int fa, fb;

    g_assert_nonnull(dir);
    seen_init(&s);
    fa = bind_socket(a);
    g_assert_true(g_file_set_contents(file, "x", 1, NULL));

    d = discovery_new(on_add, on_remove, &s, NULL);
    g_assert_true(discovery_add_qmp_dir(d, dir, &err));
    g_assert_no_error(err);
    discovery_start(d);

    /* There at start */
    want = g_strdup_printf("+vm-a %s", a);
    expect(&s, want);
    expect_nothing(&s);

    /* Created later; a new regular file is ignored */
    fb = bind_socket(b);
    g_free(want);
    want = g_strdup_printf("+vm-b %s", b);
    expect(&s, want);
    g_assert_true(g_file_set_contents(file, "y", 1, NULL));
    expect_nothing(&s);

    /* Deleted */
    g_assert_cmpint(unlink(a), ==, 0);
    expect(&s, "-vm-a");
    g_assert_cmpint(unlink(file), ==, 0);
    expect_nothing(&s);

    /* The directory moves away (IN_MOVE_SELF): its VMs go with it */
    g_assert_cmpint(rename(dir, moved), ==, 0);
    expect(&s, "-vm-b");
    g_assert_cmpint(unlink(moved_b), ==, 0);
    g_assert_cmpint(g_rmdir(moved), ==, 0);
    expect_nothing(&s);

    g_assert_false(s.other_thread);
    g_assert_true(s.thread != g_thread_self());
    discovery_free(d);
    close(fa);
    close(fb);
    seen_clear(&s);
}

static void test_qmp_dir_rmdir(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-discovery-XXXXXX", NULL);
    g_autofree char *a = g_build_filename(dir, "vm-a", NULL);
    g_autofree char *want = NULL;
    Discovery *d;
    Seen s;
    int fa;

    seen_init(&s);
    d = discovery_new(on_add, on_remove, &s, NULL);
    g_assert_true(discovery_add_qmp_dir(d, dir, NULL));
    discovery_start(d);
    fa = bind_socket(a);
    want = g_strdup_printf("+vm-a %s", a);
    expect(&s, want);
    g_assert_cmpint(unlink(a), ==, 0);
    expect(&s, "-vm-a");
    close(fa);
    /* Removed (IN_DELETE_SELF), then made again: no longer watched */
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
    fa = bind_socket(a);
    expect_nothing(&s);
    discovery_free(d);
    close(fa);
    g_assert_cmpint(unlink(a), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    seen_clear(&s);
}

static void test_missing_dir(void)
{
    g_autoptr(GError) err = NULL;
    Discovery *d = discovery_new(on_add, on_remove, NULL, NULL);

    g_assert_false(discovery_add_qmp_dir(d, "/nonexistent/qmp-dir", &err));
    g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_assert_nonnull(strstr(err->message, "/nonexistent/qmp-dir"));
    g_clear_error(&err);
    g_assert_false(discovery_add_qmp_dir(d, "/etc/hostname", &err));
    g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_NOTDIR);
    discovery_free(d);
}

/* discovery_free() right after discovery_start() does not hang */
static void test_start_free(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-discovery-XXXXXX", NULL);
    Discovery *d = discovery_new(on_add, on_remove, NULL, NULL);

    g_assert_true(discovery_add_qmp_dir(d, dir, NULL));
    discovery_start(d);
    discovery_free(d);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/discovery/qmp-dir", test_qmp_dir);
    g_test_add_func("/discovery/qmp-dir-rmdir", test_qmp_dir_rmdir);
    g_test_add_func("/discovery/missing-dir", test_missing_dir);
    g_test_add_func("/discovery/start-free", test_start_free);
    return g_test_run();
}
