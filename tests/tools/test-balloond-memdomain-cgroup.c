/*
 * qemu-oc host tools: test of qemu-oc-balloond's memory domains on the
 * real cgroup v1 hierarchy of this machine
 *
 * A child cgroup of our own memory cgroup with a 256 MiB limit, a child
 * process in it, found, read, and a usage threshold that fires when the
 * child touches 64 MiB.  The test runs in a test subprocess, so the
 * cgroup is removed by the parent whatever happens in it.  (The parsers
 * and fake trees: test-balloond-memdomain.c.)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "memdomain.h"
#include "memdomain-fixtures.h"

#define REAL_WAIT_MS 30000
#define V1_ROOT "/sys/fs/cgroup/memory"
#define V2_ROOT "/sys/fs/cgroup"
#define UNIFIED_ROOT "/sys/fs/cgroup/unified"
#define CGROUP_ENV "QEMU_OC_TEST_MEMDOMAIN_CGROUP"

/* Our own v1 memory cgroup's directory, or NULL (and why, in *@why) */
static char *own_v1_cgroup(const char **why)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autofree char *limit = g_build_filename(V1_ROOT,
                                              "memory.limit_in_bytes", NULL);
    unsigned i;

    if (!g_file_test(limit, G_FILE_TEST_IS_REGULAR)) {
        *why = "no cgroup v1 memory hierarchy at " V1_ROOT;
        return NULL;
    }
    if (geteuid() != 0) {
        *why = "making a cgroup needs root";
        return NULL;
    }
    g_assert_true(g_file_get_contents("/proc/self/cgroup", &text, NULL,
                                      NULL));
    lines = g_strsplit(text, "\n", -1);
    for (i = 0; lines[i]; i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], ":", 3);

        if (g_strv_length(f) == 3 && strcmp(f[0], "0") &&
            g_str_has_prefix(f[1], "memory")) {
            return g_build_filename(V1_ROOT, f[2], NULL);
        }
    }
    *why = "this process is in no cgroup v1 memory cgroup";
    return NULL;
}

/* Kill what is left in cgroup @dir (processes we started), remove it */
static void cgroup_remove(const char *dir)
{
    g_autofree char *procs = g_build_filename(dir, "cgroup.procs", NULL);
    g_autofree char *text = NULL;
    g_auto(GStrv) pids = NULL;
    unsigned i;

    if (g_file_get_contents(procs, &text, NULL, NULL)) {
        pids = g_strsplit(text, "\n", -1);
    }
    for (i = 0; pids && pids[i]; i++) {
        int pid = atoi(pids[i]);
        int fd = pid > 0 ? pidfd_open(pid, 0) : -1;

        if (fd >= 0) {
            g_test_message("killing %d, left in %s", pid, dir);
            kill(pid, SIGKILL);
            if (!wait_readable(fd, REAL_WAIT_MS)) {
                g_test_message("%d did not die", pid);
            }
            close(fd);
        }
    }
    if (g_rmdir(dir) < 0) {
        g_test_message("rmdir %s: %s", dir, g_strerror(errno));
    }
}

/*
 * The child in the test cgroup: for each byte N read from @cmd, touch N
 * MiB more (charged to the cgroup as it is touched, never freed), then
 * answer a byte on @ack.  It exits at end of file: when the test
 * process is gone.
 */
static void G_GNUC_NORETURN toucher(int cmd, int ack)
{
    unsigned char mib;
    size_t i;

    while (read(cmd, &mib, 1) == 1) {
        /* volatile: every store is made, so every page is touched */
        volatile char *p = malloc(mib * MIB);

        if (!p) {
            _exit(1);
        }
        for (i = 0; i < mib * MIB; i += 4096) {
            p[i] = 1;
        }
        if (write(ack, "x", 1) != 1) {
            _exit(1);
        }
    }
    _exit(0);
}

/* Have the child touch @mib MiB; wait for it if @wait */
static void touch(int cmd, int ack, unsigned char mib, bool wait)
{
    char c;

    g_assert_cmpint(write(cmd, &mib, 1), ==, 1);
    if (wait) {
        g_assert_true(wait_readable(ack, REAL_WAIT_MS));
        g_assert_cmpint(read(ack, &c, 1), ==, 1);
    }
}

/* In the test subprocess: the test itself, in cgroup @dir */
static void real_v1_body(const char *dir)
{
    g_autofree char *procs = g_build_filename(dir, "cgroup.procs", NULL);
    g_autofree char *pid_text = NULL;
    g_autofree char *psi = NULL;
    g_autoptr(GPtrArray) dirs = NULL;
    g_autoptr(MemDomain) d = NULL;
    g_autoptr(GError) err = NULL;
    MemDomainState st;
    uint64_t threshold, count;
    int cmd[2], ack[2], efd, status;
    pid_t pid;

    g_assert_nonnull(dir);
    g_assert_cmpint(pipe(cmd), ==, 0);
    g_assert_cmpint(pipe(ack), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        close(cmd[1]);
        close(ack[0]);
        toucher(cmd[0], ack[1]);
    }
    close(cmd[0]);
    close(ack[1]);
    pid_text = g_strdup_printf("%d\n", pid);
    write_cgroup_file(procs, pid_text, &err);
    g_assert_no_error(err);
    touch(cmd[1], ack[0], 1, true);     /* charged here, after the move */

    dirs = memdomain_find(pid, "/proc", V1_ROOT, V2_ROOT, UNIFIED_ROOT,
                          &psi, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(dirs->len, >=, 1);
    g_assert_cmpstr(g_ptr_array_index(dirs, 0), ==, dir);
    g_test_message("domains of %d: %u, nearest %s; PSI %s", pid, dirs->len,
                   dir, psi ? psi : "none");
    if (g_file_test(UNIFIED_ROOT "/memory.pressure", G_FILE_TEST_EXISTS)) {
        g_assert_nonnull(psi);
    }

    d = open_ok(dir, psi, MEMDOMAIN_V1);
    read_ok(d, &st);
    g_test_message("limit %" PRIu64 " usage %" PRIu64 " reclaimable %"
                   PRIu64 " headroom %" PRId64 " oom_kills %" PRIu64
                   " psi %.2f", st.limit, st.usage, st.reclaimable,
                   st.headroom, st.oom_kills, st.psi_some_avg10);
    g_assert_cmpuint(st.limit, ==, 256 * MIB);
    g_assert_cmpuint(st.hard_limit, ==, 256 * MIB);
    g_assert_cmpuint(st.usage, >=, MIB);
    g_assert_cmpint(st.headroom, ==,
                    memdomain_headroom(st.limit, st.usage, st.reclaimable));
    g_assert_cmpuint(st.oom_kills, ==, 0);
    if (psi) {
        g_assert_cmpfloat(st.psi_some_avg10, >=, 0);
    }

    /* 64 MiB more crosses usage + 16 MiB: the eventfd fires */
    threshold = st.usage + 16 * MIB;
    efd = memdomain_usage_threshold_fd(d, threshold, &err);
    g_assert_no_error(err);
    g_assert_cmpint(efd, >=, 0);
    g_assert_false(wait_readable(efd, 0));
    touch(cmd[1], ack[0], 64, false);
    g_assert_true(wait_readable(efd, REAL_WAIT_MS));
    g_assert_cmpint(read(efd, &count, sizeof(count)), ==, sizeof(count));
    g_assert_cmpuint(count, >=, 1);
    touch(cmd[1], ack[0], 0, true);     /* the 64 MiB are all touched */
    read_ok(d, &st);
    g_assert_cmpuint(st.usage, >=, threshold);
    close(efd);

    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFSIGNALED(status));
    close(cmd[1]);
    close(ack[0]);
}

static void test_real_v1(void)
{
    g_autofree char *own = NULL;
    g_autofree char *name = NULL;
    g_autofree char *dir = NULL;
    const char *why = NULL;

    if (g_test_subprocess()) {
        real_v1_body(g_getenv(CGROUP_ENV));
        return;
    }
    own = own_v1_cgroup(&why);
    if (!own) {
        g_test_skip(why);
        return;
    }
    name = g_strdup_printf("test-memdomain-%d", (int)getpid());
    dir = g_build_filename(own, name, NULL);
    g_assert_cmpint(g_mkdir(dir, 0755), ==, 0);
    {
        g_autofree char *limit = g_build_filename(dir,
                                                  "memory.limit_in_bytes",
                                                  NULL);
        g_autoptr(GError) err = NULL;

        if (!write_cgroup_file(limit, "268435456", &err)) {
            cgroup_remove(dir);
            g_assert_no_error(err);
        }
    }
    g_setenv(CGROUP_ENV, dir, TRUE);
    /* its output is shown if it fails */
    g_test_trap_subprocess(NULL, 120 * G_USEC_PER_SEC, 0);
    /* whatever happened in it */
    cgroup_remove(dir);
    g_test_trap_assert_passed();
    g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloond/memdomain/real-v1", test_real_v1);
    return g_test_run();
}
