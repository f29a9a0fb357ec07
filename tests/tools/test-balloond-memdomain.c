/*
 * qemu-oc host tools: test of qemu-oc-balloond's memory domains
 *
 * The parsers on good text and on garbage; the headroom arithmetic at
 * its edges; fake v1 and v2 cgroup trees and fake /proc/PID/cgroup files
 * in a temporary directory: discovery (the limited ancestors, nearest
 * first, the unlimited ones and the root skipped, the PSI file), reading
 * a domain, and every missing or broken file, named in the error; the
 * v2 memory.events watch.  The real cgroup v1 hierarchy of this machine:
 * test-balloond-memdomain-cgroup.c.
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

#define GIB (1024 * MIB)
#define WAIT_MS 5000

/* ---- helpers ---- */

static void put(const char *dir, const char *name, const char *text)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

/* @root/@sub (made) */
static char *mkdirs(const char *root, const char *sub)
{
    char *dir = g_build_filename(root, sub, NULL);

    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    return dir;
}

static void rm_rf(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *sub = g_build_filename(path, name, NULL);

        if (g_file_test(sub, G_FILE_TEST_IS_DIR)) {
            rm_rf(sub);
        } else {
            g_assert_cmpint(g_unlink(sub), ==, 0);
        }
    }
    if (dir) {
        g_dir_close(dir);
    }
    g_assert_cmpint(g_rmdir(path), ==, 0);
}

/* A fake /proc/@pid/cgroup under @tmp/proc */
static void fake_proc(const char *tmp, int pid, const char *text)
{
    g_autofree char *sub = g_strdup_printf("proc/%d", pid);
    g_autofree char *dir = mkdirs(tmp, sub);

    put(dir, "cgroup", text);
}

/* Expect an error naming @what (and @what2, if not NULL) */
static void assert_error_names(GError *err, const char *what,
                               const char *what2)
{
    g_assert_nonnull(err);
    g_test_message("expected error: %s", err->message);
    g_assert_nonnull(strstr(err->message, what));
    g_assert_true(!what2 || strstr(err->message, what2));
}

/* ---- parsers ---- */

static void test_parse_u64_or_max(void)
{
    static const struct {
        const char *text;
        uint64_t v;
    } good[] = {
        { "123\n", 123 },
        { "0\n", 0 },
        { "123", 123 },
        { "max\n", UINT64_MAX },
        { "max", UINT64_MAX },
        { "9223372036854771712\n", 9223372036854771712ULL },
        { "18446744073709551615\n", UINT64_MAX },
        { "00042\n", 42 },
    };
    static const char *const bad[] = {
        "", "\n", "\n1", "18446744073709551616\n",
        "99999999999999999999999999\n", "-1\n", "-0\n", "+1\n", " 1\n",
        "1 ", "1\t\n", "1\n\n", "1\n2\n", "maxx\n", "Max\n", "MAX\n",
        "max 1\n", "ma", "0x10\n", "1.5\n", "12abc\n", "1e9\n", "1,000\n",
    };
    uint64_t v;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(good); i++) {
        v = 7;
        g_assert_true(memdomain_parse_u64_or_max(good[i].text, &v));
        g_assert_cmpuint(v, ==, good[i].v);
    }
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("u64 garbage %u", i);
        v = 7;
        g_assert_false(memdomain_parse_u64_or_max(bad[i], &v));
        g_assert_cmpuint(v, ==, 7);
    }
    g_assert_false(memdomain_parse_u64_or_max(NULL, &v));
}

static const char v1_oom_text[] =
    "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
static const char v2_events_text[] =
    "low 0\nhigh 12\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";

static void test_parse_keyed(void)
{
    static const struct {
        const char *text, *key;
        uint64_t v;
    } good[] = {
        { v1_oom_text, "oom_kill", 3 },
        { v1_oom_text, "oom_kill_disable", 0 },
        { v1_oom_text, "under_oom", 0 },
        { v2_events_text, "oom_kill", 1 },
        { v2_events_text, "oom", 2 },
        { v2_events_text, "high", 12 },
        { "inactive_file 5\ntotal_inactive_file 7\n", "inactive_file", 5 },
        { "inactive_file 5\ntotal_inactive_file 7\n",
          "total_inactive_file", 7 },
        { "a 1\noom_kill 18446744073709551615", "oom_kill", UINT64_MAX },
        { "oom_kill\t9\n", "oom_kill", 9 },
        { "oom_kill   9\n", "oom_kill", 9 },
        { "\n\noom_kill 4\n\n", "oom_kill", 4 },
    };
    static const struct {
        const char *text, *key;
    } bad[] = {
        { "", "oom_kill" },
        { "\n", "oom_kill" },
        { "oom_kill_disable 0\nunder_oom 0\n", "oom_kill" },  /* absent */
        { v2_events_text, "oom_kil" },
        { v2_events_text, "kill" },
        { "oom_kill\n", "oom_kill" },
        { "oom_kill", "oom_kill" },
        { "oom_kill ", "oom_kill" },
        { "oom_kill\t\n", "oom_kill" },
        { "oom_kill\n1\n", "oom_kill" },
        { "oom_kill -1\n", "oom_kill" },
        { "oom_kill +1\n", "oom_kill" },
        { "oom_kill 1x\n", "oom_kill" },
        { "oom_kill 1 2\n", "oom_kill" },
        { "oom_kill 1.5\n", "oom_kill" },
        { "oom_kill 18446744073709551616\n", "oom_kill" },
        { "oom_kill 99999999999999999999999\n", "oom_kill" },
        { " oom_kill 1\n", "oom_kill" },
        { "xoom_kill 1\n", "oom_kill" },
        { "oom_kill=1\n", "oom_kill" },
        { "OOM_KILL 1\n", "oom_kill" },
        { "oom_kill x\noom_kill 1\n", "oom_kill" },   /* first one counts */
        { "oom_kill 1\n", "" },
    };
    uint64_t v;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(good); i++) {
        v = 7;
        g_assert_true(memdomain_parse_keyed(good[i].text, good[i].key, &v));
        g_assert_cmpuint(v, ==, good[i].v);
    }
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("keyed garbage %u", i);
        v = 7;
        g_assert_false(memdomain_parse_keyed(bad[i].text, bad[i].key, &v));
        g_assert_cmpuint(v, ==, 7);
    }
    g_assert_false(memdomain_parse_keyed(NULL, "oom_kill", &v));
    g_assert_false(memdomain_parse_keyed(v1_oom_text, NULL, &v));
}

/* Random bytes, and good text cut anywhere: never a crash */
static void test_parse_binary(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(20260102);
    char buf[256];
    uint64_t v;
    unsigned i, j, n;

    for (i = 0; i < 5000; i++) {
        n = g_rand_int_range(rand, 0, sizeof(buf));
        for (j = 0; j < n; j++) {
            buf[j] = g_rand_int_range(rand, 1, 256);
        }
        buf[n] = '\0';
        memdomain_parse_u64_or_max(buf, &v);
        memdomain_parse_keyed(buf, "oom_kill", &v);
    }
    for (i = 0; i < sizeof(v2_events_text); i++) {
        g_autofree char *cut = g_strndup(v2_events_text, i);

        if (memdomain_parse_keyed(cut, "oom_kill", &v)) {
            g_assert_cmpuint(v, ==, 1);
        }
    }
}

static void test_headroom(void)
{
    const uint64_t big = (uint64_t)INT64_MAX;

    g_assert_cmpint(memdomain_headroom(100, 50, 10), ==, 60);
    g_assert_cmpint(memdomain_headroom(100, 100, 0), ==, 0);
    g_assert_cmpint(memdomain_headroom(100, 150, 10), ==, -40);
    g_assert_cmpint(memdomain_headroom(100, 150, 50), ==, 0);
    g_assert_cmpint(memdomain_headroom(100, 150, 60), ==, 10);
    g_assert_cmpint(memdomain_headroom(UINT64_MAX, 5, 0), ==, INT64_MAX);
    g_assert_cmpint(memdomain_headroom(UINT64_MAX - 1, 0, UINT64_MAX), ==,
                    INT64_MAX);
    g_assert_cmpint(memdomain_headroom(big + 10, 0, 0), ==, INT64_MAX);
    g_assert_cmpint(memdomain_headroom(0, big, 0), ==, -INT64_MAX);
    g_assert_cmpint(memdomain_headroom(0, big + 1, 0), ==, INT64_MIN);
    g_assert_cmpint(memdomain_headroom(0, UINT64_MAX, 0), ==, INT64_MIN);
    g_assert_cmpint(memdomain_headroom(0, UINT64_MAX, UINT64_MAX), ==, 0);
    g_assert_cmpint(memdomain_headroom(1, UINT64_MAX, big + 10), ==,
                    -(int64_t)(UINT64_MAX - 1 - big - 10));
}

/* ---- fake trees ---- */

/*
 * @tmp/v2, a cgroup2 hierarchy like systemd's for a libvirt VM:
 *   machine.slice           memory.max 8 GiB (limited)
 *     machine-qemu\x2d1\x2dvm.scope   max, max (not limited)
 *       libvirt             memory.high 2 GiB: the VM's domain
 *   nomem/sub               no memory files (controller not enabled)
 * The root has a memory.max too, to show it is never a domain.
 */
#define V2_SCOPE "machine.slice/machine-qemu\\x2d1\\x2dvm.scope"
#define V2_VM V2_SCOPE "/libvirt"

static void fake_v2_domain(const char *dir)
{
    put(dir, "memory.max", "max\n");
    put(dir, "memory.high", "2147483648\n");
    put(dir, "memory.current", "1610612736\n");
    put(dir, "memory.stat",
        "anon 1200000000\nfile 400000000\nkernel 10000\n"
        "inactive_anon 5\nactive_anon 6\n"
        "inactive_file 100000000\nactive_file 200000000\n"
        "unevictable 0\nslab 1000\n");
    put(dir, "memory.events", v2_events_text);
    put(dir, "memory.pressure",
        "some avg10=2.50 avg60=1.00 avg300=0.10 total=12345\n"
        "full avg10=1.00 avg60=0.50 avg300=0.00 total=678\n");
}

static char *fake_v2(const char *tmp)
{
    char *root = mkdirs(tmp, "v2");
    g_autofree char *slice = mkdirs(root, "machine.slice");
    g_autofree char *scope = mkdirs(root, V2_SCOPE);
    g_autofree char *vm = mkdirs(root, V2_VM);
    g_autofree char *nomem = mkdirs(root, "nomem/sub");

    put(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids\n");
    put(root, "memory.max", "1000\n");
    put(slice, "memory.max", "8589934592\n");
    put(slice, "memory.high", "max\n");
    put(scope, "memory.max", "max\n");
    put(scope, "memory.high", "max\n");
    fake_v2_domain(vm);
    return root;
}

/*
 * @tmp/v1, a cgroup v1 memory hierarchy:
 *   machine.slice           2^62 - 4 KiB: limited
 *     vm.scope              2^62: "no limit"
 *       emulator            1 GiB: the VM's domain
 * with the kernel's "no limit" at the root; and @tmp/unified, a cgroup2
 * mount for PSI alone (no controllers), with memory.pressure files.
 */
static void fake_v1_domain(const char *dir)
{
    put(dir, "memory.limit_in_bytes", "1073741824\n");
    put(dir, "memory.usage_in_bytes", "943718400\n");
    put(dir, "memory.stat",
        "cache 1\nrss 2\ninactive_file 11\nactive_file 22\n"
        "hierarchical_memory_limit 1073741824\n"
        "total_cache 3\ntotal_rss 4\n"
        "total_inactive_file 100000000\ntotal_active_file 50000000\n"
        "total_unevictable 0\n");
    put(dir, "memory.oom_control", v1_oom_text);
    put(dir, "cgroup.event_control", "");
}

static char *fake_v1(const char *tmp)
{
    char *root = mkdirs(tmp, "v1");
    g_autofree char *slice = mkdirs(root, "machine.slice");
    g_autofree char *scope = mkdirs(root, "machine.slice/vm.scope");
    g_autofree char *emu = mkdirs(root, "machine.slice/vm.scope/emulator");
    g_autofree char *uni = mkdirs(tmp, "unified");
    g_autofree char *uscope = mkdirs(uni, "machine.slice/vm.scope");

    put(root, "memory.limit_in_bytes", V1_NONE);
    put(slice, "memory.limit_in_bytes", "4611686018427383808\n");
    put(scope, "memory.limit_in_bytes", "4611686018427387904\n");
    fake_v1_domain(emu);
    put(uni, "cgroup.controllers", "");
    put(uni, "memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 "
        "total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    put(uscope, "memory.pressure", "some avg10=0.75 avg60=0.00 "
        "avg300=0.00 total=9\nfull avg10=0.00 avg60=0.00 avg300=0.00 "
        "total=1\n");
    return root;
}

/* What memdomain_find() must overwrite */
static char not_set[] = "not set";

/*
 * Find @pid's domains under the fake trees in @tmp, PSI from @tmp/@uni;
 * expect the directories @want (under @tmp) and the PSI file @want_psi
 */
static void expect_find(const char *tmp, int pid, const char *uni,
                        const char *const *want, const char *want_psi)
{
    g_autofree char *proc = g_build_filename(tmp, "proc", NULL);
    g_autofree char *v1 = g_build_filename(tmp, "v1", NULL);
    g_autofree char *v2 = g_build_filename(tmp, "v2", NULL);
    g_autofree char *unified = g_build_filename(tmp, uni, NULL);
    char *psi = not_set;
    g_autoptr(GPtrArray) dirs = NULL;
    g_autoptr(GError) err = NULL;
    unsigned i;

    dirs = memdomain_find(pid, proc, v1, v2, unified, &psi, &err);
    g_assert_no_error(err);
    g_assert_nonnull(dirs);
    for (i = 0; want[i]; i++) {
        g_autofree char *dir = g_build_filename(tmp, want[i], NULL);

        g_assert_cmpuint(i, <, dirs->len);
        g_assert_cmpstr(g_ptr_array_index(dirs, i), ==, dir);
    }
    g_assert_cmpuint(dirs->len, ==, i);
    if (want_psi) {
        g_autofree char *path = g_build_filename(tmp, want_psi, NULL);

        g_assert_cmpstr(psi, ==, path);
        g_free(psi);
    } else {
        g_assert_null(psi);
    }
}

static void expect_find_error(const char *tmp, int pid, const char *what)
{
    g_autofree char *proc = g_build_filename(tmp, "proc", NULL);
    g_autofree char *v1 = g_build_filename(tmp, "v1", NULL);
    g_autofree char *v2 = g_build_filename(tmp, "v2", NULL);
    char *psi = not_set;
    g_autoptr(GError) err = NULL;

    g_assert_null(memdomain_find(pid, proc, v1, v2, v2, &psi, &err));
    assert_error_names(err, what, NULL);
    g_assert_null(psi);
}

static void test_find(void)
{
    g_autofree char *tmp = g_dir_make_tmp("test-memdomain-XXXXXX", NULL);
    g_autofree char *v1 = fake_v1(tmp);
    g_autofree char *v2 = fake_v2(tmp);
    g_autofree char *proc = g_build_filename(tmp, "proc", NULL);
    g_autofree char *slice = g_build_filename(v2, "machine.slice", NULL);
    char *psi = not_set;
    g_autoptr(GPtrArray) dirs = NULL;
    g_autoptr(GError) err = NULL;
    const char *v2_want[] = { "v2/" V2_VM, "v2/machine.slice", NULL };
    const char *v1_want[] = { "v1/machine.slice/vm.scope/emulator",
                              "v1/machine.slice", NULL };
    const char *slice_want[] = { "v1/machine.slice", NULL };
    const char *none[] = { NULL };

    /* v2: the limited ancestors, nearest first; the root is not one */
    fake_proc(tmp, 100, "0::/" V2_VM "\n");
    expect_find(tmp, 100, "v2", v2_want, "v2/" V2_VM "/memory.pressure");
    fake_proc(tmp, 101, "0::/nomem/sub\n");
    expect_find(tmp, 101, "v2", none, NULL);
    fake_proc(tmp, 102, "0::/\n");
    expect_find(tmp, 102, "v2", none, NULL);

    /* v1 (in a shared hierarchy too), PSI from the unified mount */
    fake_proc(tmp, 200, "12:pids:/machine.slice\n"
              "11:cpu,cpuacct:/machine.slice\n"
              "4:freezer,memory:/machine.slice/vm.scope/emulator\n"
              "1:name=systemd:/machine.slice/vm.scope\n"
              "0::/machine.slice/vm.scope\n");
    expect_find(tmp, 200, "unified", v1_want,
                "unified/machine.slice/vm.scope/memory.pressure");
    fake_proc(tmp, 201, "4:memory:/\n0::/\n");
    expect_find(tmp, 201, "unified", none, "unified/memory.pressure");
    /* garbage lines, no last newline, no 0:: line */
    fake_proc(tmp, 202, "garbage\n\n::\n4:memory:/machine.slice");
    expect_find(tmp, 202, "unified", slice_want, NULL);
    /* v1 wins wherever the 0:: line is; no memory.pressure there */
    fake_proc(tmp, 203, "0::/" V2_VM "\n4:memory:/machine.slice\n");
    expect_find(tmp, 203, "unified", slice_want, NULL);

    /* psi_path may be NULL; no unified root, no PSI */
    dirs = memdomain_find(100, proc, v1, v2, NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(dirs->len, ==, 2);
    g_clear_pointer(&dirs, g_ptr_array_unref);
    dirs = memdomain_find(200, proc, v1, v2, NULL, &psi, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(dirs->len, ==, 2);
    g_assert_null(psi);

    /* errors */
    expect_find_error(tmp, 999, "no process 999");
    fake_proc(tmp, 300, "4:memory:/gone\n");
    expect_find_error(tmp, 300, "v1/gone");
    fake_proc(tmp, 301, "4:memory:/../etc\n");
    expect_find_error(tmp, 301, "/../etc");
    fake_proc(tmp, 302, "4:memoryx:/machine.slice\n4:cpu:/x\n");
    expect_find_error(tmp, 302, "no memory cgroup");
    fake_proc(tmp, 303, "");
    expect_find_error(tmp, 303, "no memory cgroup");
    fake_proc(tmp, 304, "0::/machine.slice\n");
    put(slice, "memory.high", "12abc\n");
    expect_find_error(tmp, 304, "machine.slice/memory.high");
    /* a v2 hierarchy without the memory controller */
    put(v2, "cgroup.controllers", "cpu io pids\n");
    expect_find_error(tmp, 100, "no memory cgroup");
    rm_rf(tmp);
}

/* With @name renamed away, or holding @text, reading fails naming it */
static void expect_read_error(MemDomain *d, const char *name,
                              const char *text, const char *what)
{
    g_autofree char *path = g_build_filename(memdomain_dir(d), name, NULL);
    g_autofree char *aside = g_strconcat(path, ".aside", NULL);
    g_autoptr(GError) err = NULL;
    MemDomainState st;

    g_assert_cmpint(g_rename(path, aside), ==, 0);
    if (text) {
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
    }
    g_assert_false(memdomain_read(d, &st, &err));
    assert_error_names(err, path, what);
    if (text) {
        g_assert_cmpint(g_unlink(path), ==, 0);
    }
    g_assert_cmpint(g_rename(aside, path), ==, 0);
}

static void test_read_v2(void)
{
    g_autofree char *tmp = g_dir_make_tmp("test-memdomain-XXXXXX", NULL);
    g_autofree char *v2 = fake_v2(tmp);
    g_autofree char *vm = g_build_filename(v2, V2_VM, NULL);
    g_autofree char *psi = g_build_filename(vm, "memory.pressure", NULL);
    g_autofree char *big = g_strnfill(MEMDOMAIN_READ_MAX + 1, 'x');
    g_autoptr(MemDomain) d = open_ok(vm, NULL, MEMDOMAIN_V2);
    MemDomainState st;

    /* its own memory.pressure, found by itself */
    g_assert_cmpstr(memdomain_psi_path(d), ==, psi);
    read_ok(d, &st);
    g_assert_cmpuint(st.limit, ==, 2 * GIB);            /* memory.high */
    g_assert_cmpuint(st.hard_limit, ==, UINT64_MAX);    /* max */
    g_assert_cmpuint(st.usage, ==, 1536 * MIB);
    g_assert_cmpuint(st.reclaimable, ==, 300000000);
    g_assert_cmpint(st.headroom, ==, 512 * MIB + 300000000);
    g_assert_cmpuint(st.oom_kills, ==, 1);
    g_assert_cmpfloat(st.psi_some_avg10, ==, 2.5);

    /* memory.max below memory.high: the limit; over it: negative */
    put(vm, "memory.max", "1073741824\n");
    put(vm, "memory.current", "1610612736\n");
    read_ok(d, &st);
    g_assert_cmpuint(st.limit, ==, GIB);
    g_assert_cmpuint(st.hard_limit, ==, GIB);
    g_assert_cmpint(st.headroom, ==, (int64_t)GIB - 1536 * MIB + 300000000);
    g_assert_cmpint(st.headroom, <, 0);
    /* no limit at all */
    put(vm, "memory.max", "max\n");
    put(vm, "memory.high", "max\n");
    read_ok(d, &st);
    g_assert_cmpuint(st.limit, ==, UINT64_MAX);
    g_assert_cmpint(st.headroom, ==, INT64_MAX);
    put(vm, "memory.high", "2147483648\n");

    /* every file, missing or broken, is named */
    expect_read_error(d, "memory.max", NULL, NULL);
    expect_read_error(d, "memory.max", "", "not a number");
    expect_read_error(d, "memory.high", NULL, NULL);
    expect_read_error(d, "memory.high", "-1\n", "not a number");
    expect_read_error(d, "memory.current", NULL, NULL);
    expect_read_error(d, "memory.current", "12 kB\n", "not a number");
    expect_read_error(d, "memory.stat", NULL, NULL);
    expect_read_error(d, "memory.stat", "inactive_file 1\n", "active_file");
    expect_read_error(d, "memory.stat", big, "larger than");
    expect_read_error(d, "memory.events", NULL, NULL);
    expect_read_error(d, "memory.events", "oom 1\n", "oom_kill");
    expect_read_error(d, "memory.pressure", NULL, NULL);
    expect_read_error(d, "memory.pressure", "full avg10=1.00\n", "avg10");
    read_ok(d, &st);

    /* without a memory.pressure: no PSI */
    g_assert_cmpint(g_unlink(psi), ==, 0);
    g_clear_pointer(&d, memdomain_free);
    d = open_ok(vm, NULL, MEMDOMAIN_V2);
    g_assert_null(memdomain_psi_path(d));
    read_ok(d, &st);
    g_assert_cmpfloat(st.psi_some_avg10, ==, -1);
    g_clear_pointer(&d, memdomain_free);
    rm_rf(tmp);
}

static void test_read_v1(void)
{
    g_autofree char *tmp = g_dir_make_tmp("test-memdomain-XXXXXX", NULL);
    g_autofree char *v1 = fake_v1(tmp);
    g_autofree char *emu = g_build_filename(v1, "machine.slice/vm.scope/"
                                            "emulator", NULL);
    g_autofree char *psi = g_build_filename(tmp, "unified/machine.slice/"
                                            "vm.scope/memory.pressure",
                                            NULL);
    g_autoptr(MemDomain) d = open_ok(emu, NULL, MEMDOMAIN_V1);
    MemDomainState st;

    g_assert_null(memdomain_psi_path(d));
    read_ok(d, &st);
    g_assert_cmpuint(st.limit, ==, GIB);
    g_assert_cmpuint(st.hard_limit, ==, GIB);
    g_assert_cmpuint(st.usage, ==, 900 * MIB);
    /* total_*: the subtree's page cache, not the cgroup's own */
    g_assert_cmpuint(st.reclaimable, ==, 150000000);
    g_assert_cmpint(st.headroom, ==, 124 * MIB + 150000000);
    g_assert_cmpuint(st.oom_kills, ==, 3);
    g_assert_cmpfloat(st.psi_some_avg10, ==, -1);
    g_clear_pointer(&d, memdomain_free);

    /* PSI from the process's cgroup in the unified mount */
    d = open_ok(emu, psi, MEMDOMAIN_V1);
    g_assert_cmpstr(memdomain_psi_path(d), ==, psi);
    read_ok(d, &st);
    g_assert_cmpfloat(st.psi_some_avg10, ==, 0.75);

    /* a kernel before 4.13: no oom_kill line */
    put(emu, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
    read_ok(d, &st);
    g_assert_cmpuint(st.oom_kills, ==, 0);
    /* over the limit, beyond what page cache can give back */
    put(emu, "memory.usage_in_bytes", "1273741824\n");
    read_ok(d, &st);
    g_assert_cmpint(st.headroom, ==, -50000000);
    /* the kernel's "no limit", and 2^62 */
    put(emu, "memory.limit_in_bytes", V1_NONE);
    read_ok(d, &st);
    g_assert_cmpuint(st.limit, ==, UINT64_MAX);
    g_assert_cmpuint(st.hard_limit, ==, UINT64_MAX);
    g_assert_cmpint(st.headroom, ==, INT64_MAX);
    put(emu, "memory.limit_in_bytes", "4611686018427387904\n");
    read_ok(d, &st);
    g_assert_cmpuint(st.limit, ==, UINT64_MAX);
    put(emu, "memory.limit_in_bytes", "4611686018427383808\n");
    read_ok(d, &st);
    g_assert_cmpuint(st.limit, ==, 4611686018427383808ULL);

    expect_read_error(d, "memory.limit_in_bytes", "max1\n", "not a number");
    expect_read_error(d, "memory.usage_in_bytes", NULL, NULL);
    expect_read_error(d, "memory.usage_in_bytes", "\n", "not a number");
    expect_read_error(d, "memory.stat", NULL, NULL);
    expect_read_error(d, "memory.stat", "inactive_file 1\nactive_file 2\n",
                      "total_inactive_file");
    expect_read_error(d, "memory.stat", "total_inactive_file 1\n",
                      "total_active_file");
    expect_read_error(d, "memory.oom_control", NULL, NULL);
    g_clear_pointer(&d, memdomain_free);

    /* a PSI file that is not there */
    d = open_ok(emu, "/nonexistent/memory.pressure", MEMDOMAIN_V1);
    {
        g_autoptr(GError) err = NULL;

        g_assert_false(memdomain_read(d, &st, &err));
        assert_error_names(err, "/nonexistent/memory.pressure", NULL);
    }
    g_clear_pointer(&d, memdomain_free);
    rm_rf(tmp);
}

static void test_open_errors(void)
{
    g_autofree char *tmp = g_dir_make_tmp("test-memdomain-XXXXXX", NULL);
    g_autofree char *missing = g_build_filename(tmp, "missing", NULL);
    g_autoptr(GError) err = NULL;

    g_assert_null(memdomain_open(missing, NULL, &err));
    assert_error_names(err, missing, NULL);
    g_clear_error(&err);
    g_assert_null(memdomain_open(tmp, NULL, &err));
    assert_error_names(err, tmp, "not a memory cgroup");
    rm_rf(tmp);
}

static void test_notify_fds(void)
{
    g_autofree char *tmp = g_dir_make_tmp("test-memdomain-XXXXXX", NULL);
    g_autofree char *v1 = fake_v1(tmp);
    g_autofree char *v2 = fake_v2(tmp);
    g_autofree char *emu = g_build_filename(v1, "machine.slice/vm.scope/"
                                            "emulator", NULL);
    g_autofree char *vm = g_build_filename(v2, V2_VM, NULL);
    g_autofree char *events = g_build_filename(vm, "memory.events", NULL);
    g_autoptr(MemDomain) d1 = open_ok(emu, NULL, MEMDOMAIN_V1);
    g_autoptr(MemDomain) d2 = open_ok(vm, NULL, MEMDOMAIN_V2);
    g_autoptr(GError) err = NULL;
    char buf[4096]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    const struct inotify_event *ev = (const void *)buf;
    FILE *f;
    int fd;

    /* each kind refuses the other's */
    g_assert_cmpint(memdomain_usage_threshold_fd(d2, GIB, &err), ==, -1);
    assert_error_names(err, vm, NULL);
    g_clear_error(&err);
    g_assert_cmpint(memdomain_events_watch_fd(d1, &err), ==, -1);
    assert_error_names(err, emu, NULL);
    g_clear_error(&err);

    /* v1 without cgroup.event_control */
    {
        g_autofree char *ec = g_build_filename(emu, "cgroup.event_control",
                                               NULL);

        g_assert_cmpint(g_unlink(ec), ==, 0);
        g_assert_cmpint(memdomain_usage_threshold_fd(d1, GIB, &err), ==, -1);
        assert_error_names(err, ec, NULL);
        g_clear_error(&err);
    }

    /* v2: memory.events modified in place (as the kernel does it) */
    fd = memdomain_events_watch_fd(d2, &err);
    g_assert_no_error(err);
    g_assert_cmpint(fd, >=, 0);
    g_assert_false(wait_readable(fd, 0));
    f = fopen(events, "w");
    g_assert_nonnull(f);
    g_assert_cmpint(fputs("low 0\nhigh 13\nmax 3\noom 2\noom_kill 2\n", f),
                    >=, 0);
    g_assert_cmpint(fclose(f), ==, 0);
    g_assert_true(wait_readable(fd, WAIT_MS));
    g_assert_cmpint(read(fd, buf, sizeof(buf)), >=, (ssize_t)sizeof(*ev));
    g_assert_true(ev->mask & IN_MODIFY);
    close(fd);
    {
        MemDomainState st;

        read_ok(d2, &st);
        g_assert_cmpuint(st.oom_kills, ==, 2);
    }
    /* a missing memory.events cannot be watched */
    g_assert_cmpint(g_unlink(events), ==, 0);
    g_assert_cmpint(memdomain_events_watch_fd(d2, &err), ==, -1);
    assert_error_names(err, events, NULL);
    g_clear_pointer(&d1, memdomain_free);
    g_clear_pointer(&d2, memdomain_free);
    rm_rf(tmp);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloond/memdomain/parse/u64-or-max",
                    test_parse_u64_or_max);
    g_test_add_func("/balloond/memdomain/parse/keyed", test_parse_keyed);
    g_test_add_func("/balloond/memdomain/parse/binary", test_parse_binary);
    g_test_add_func("/balloond/memdomain/headroom", test_headroom);
    g_test_add_func("/balloond/memdomain/find", test_find);
    g_test_add_func("/balloond/memdomain/read-v2", test_read_v2);
    g_test_add_func("/balloond/memdomain/read-v1", test_read_v1);
    g_test_add_func("/balloond/memdomain/open-errors", test_open_errors);
    g_test_add_func("/balloond/memdomain/notify-fds", test_notify_fds);
    return g_test_run();
}
