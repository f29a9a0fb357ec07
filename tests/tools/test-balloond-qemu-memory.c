/*
 * qemu-oc host tools: test of qemu-oc-balloond's reading of what the
 * host holds for a QEMU process
 *
 * smaps text by hand: the guest RAM mapping (writable, not executable,
 * over 64 MiB) apart from TCG's executable buffer, glibc's 64 MiB
 * arenas and small mappings; text that is not smaps.  Then the real
 * /proc/self/smaps with a 128 MiB anonymous mapping of which 8 MiB is
 * touched, standing in for a guest's RAM.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#include "qemu-memory.h"

#define SMAPS_QEMU \
    "55d0c0000000-55d0c0100000 r-xp 00000000 fe:00 123   /usr/bin/qemu\n" \
    "Size:               1024 kB\n" \
    "Rss:                 900 kB\n" \
    "Anonymous:             0 kB\n" \
    "VmFlags: rd ex mr mw me\n" \
    "7f9be4000000-7f9be8000000 rw-p 00000000 00:00 0\n" \
    "Size:              65536 kB\n" \
    "Rss:                5000 kB\n" \
    "AnonHugePages:         0 kB\n" \
    "7f9bf3e00000-7f9c33e00000 rw-p 00000000 00:00 0\n" \
    "Size:            1048576 kB\n" \
    "Rss:              409600 kB\n" \
    "Anonymous:        409600 kB\n" \
    "7f9c34000000-7f9c73fff000 rwxp 00000000 00:00 0\n" \
    "Size:            1048572 kB\n" \
    "Rss:               30000 kB\n" \
    "7fa000000000-7fa010000000 rw-s 00000000 00:01 99 /memfd:ram (deleted)\n" \
    "Size:             262144 kB\n" \
    "Rss:                1000 kB\n"

static void test_parse(void)
{
    uint64_t rss, guest;

    g_assert_true(qemu_memory_parse_smaps(SMAPS_QEMU, &rss, &guest));
    g_assert_cmpuint(rss, ==, 900 + 5000 + 409600 + 30000 + 1000);
    g_assert_cmpuint(guest, ==, 409600 + 1000);

    /* no mapping over 64 MiB: no guest RAM, the whole still counted */
    g_assert_true(qemu_memory_parse_smaps(
        "00400000-00500000 rw-p 0 0:0 0\nRss: 12 kB\n", &rss, &guest));
    g_assert_cmpuint(rss, ==, 12);
    g_assert_cmpuint(guest, ==, 0);
}

static void test_parse_bad(void)
{
    const char *const bad[] = {
        "", "garbage\n", "MemTotal: 100 kB\n",
        "00400000-00500000 rw-p 0 0:0 0\nRss: lots kB\n",
        "00400000-00500000 rw-p 0 0:0 0\nRss: 99999999999999999999999 kB\n",
    };
    uint64_t rss, guest;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_false(qemu_memory_parse_smaps(bad[i], &rss, &guest));
    }
    g_assert_false(qemu_memory_parse_smaps(NULL, &rss, &guest));
}

/* This process, with 8 MiB touched of a 128 MiB mapping */
static void test_real(void)
{
    size_t size = 128 << 20, touched = 8 << 20;
    g_autoptr(GError) err = NULL;
    int64_t own_before = -1, own, rss;
    char *ram;

    /* nothing here looks like guest RAM yet (glib's arenas are smaller) */
    if (!qemu_memory_own_mib(getpid(), &own_before, &err)) {
        g_assert_nonnull(strstr(err->message, "no guest RAM mapping"));
        g_clear_error(&err);
    }
    ram = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    g_assert_true(ram != MAP_FAILED);
    memset(ram, 1, touched);
    g_assert_true(qemu_memory_own_mib(getpid(), &own, &err));
    g_assert_no_error(err);
    rss = qemu_memory_rss_mib(getpid());
    g_assert_cmpint(rss, >=, 8);
    /* the touched 8 MiB are the guest's, the rest the process's own */
    g_assert_cmpint(own, <=, rss - 8 + 1);
    g_assert_cmpint(own, >=, 0);
    g_assert_cmpint(munmap(ram, size), ==, 0);

    g_assert_cmpint(qemu_memory_rss_mib(-1), ==, -1);
    g_assert_false(qemu_memory_own_mib(-1, &own, &err));
    g_assert_nonnull(err);
}

/*
 * A statm kept open reads what a fresh one reads, and fails once its
 * process is gone (reaped): it never reads another process's memory
 */
static void test_statm(void)
{
    g_autoptr(QemuStatm) self = qemu_statm_open(getpid());
    QemuStatm *gone;
    int64_t kept, fresh;
    int status;
    pid_t pid;

    g_assert_nonnull(self);
    g_assert_cmpint(qemu_statm_pid(self), ==, getpid());
    kept = qemu_statm_rss_mib(self);
    fresh = qemu_memory_rss_mib(getpid());
    g_assert_cmpint(kept, >, 0);
    /* (the same figure, read twice: at most a MiB apart) */
    g_assert_cmpint(kept, <=, fresh + 1);
    g_assert_cmpint(fresh, <=, kept + 1);
    g_assert_cmpint(qemu_statm_rss_mib(self), >, 0);     /* again: pread */

    g_assert_null(qemu_statm_open(-1));
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    gone = qemu_statm_open(pid);
    g_assert_nonnull(gone);
    g_assert_cmpint(qemu_statm_rss_mib(gone), >=, 0);
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_cmpint(qemu_statm_rss_mib(gone), ==, -1);
    qemu_statm_ref(gone);
    qemu_statm_unref(gone);
    g_assert_cmpint(qemu_statm_rss_mib(gone), ==, -1);
    qemu_statm_unref(gone);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloond/qemu-memory/parse", test_parse);
    g_test_add_func("/balloond/qemu-memory/parse-bad", test_parse_bad);
    g_test_add_func("/balloond/qemu-memory/real", test_real);
    g_test_add_func("/balloond/qemu-memory/statm", test_statm);
    return g_test_run();
}
