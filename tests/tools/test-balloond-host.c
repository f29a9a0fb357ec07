/*
 * qemu-oc host tools: test of qemu-oc-balloond's host watcher and metrics
 *
 * The meminfo and PSI parsers on good text and on garbage; the watcher
 * on temporary meminfo and PSI files, rewritten in place and renamed
 * over (with a poll period of a minute, so inotify is what must notice),
 * every expected callback within a bounded wait; the watcher on the
 * real /proc sources; the metrics page from hand-made snapshots, checked
 * by promtool (the Debian package prometheus: its absence is a failure);
 * the HTTP server from a plain socket client.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "host-pressure.h"
#include "metrics.h"

/* for comparing doubles */
#define EPSILON (1.0 / 1000000000)

#define WAIT_US (5 * G_USEC_PER_SEC)
#define PROMTOOL "/usr/bin/promtool"
#define GIB (1024 * 1024 * 1024ULL)
#define MIB (1024 * 1024ULL)

/* ---- parsers ---- */

static const char meminfo_text[] =
    "MemTotal:       16318412 kB\n"
    "MemFree:         1234567 kB\n"
    "MemAvailable:    8159206 kB\n"
    "Buffers:          123456 kB\n"
    "HugePages_Total:       0\n";

static void test_parse_meminfo(void)
{
    g_autofree char *proc = NULL;
    uint64_t total = 0, avail = 0;

    g_assert_true(host_pressure_parse_meminfo(meminfo_text, &total, &avail));
    g_assert_cmpuint(total, ==, 16318412);
    g_assert_cmpuint(avail, ==, 8159206);
    /* the order does not matter, nor a last newline */
    g_assert_true(host_pressure_parse_meminfo(
        "MemAvailable: 5 kB\nMemTotal:\t7 kB", &total, &avail));
    g_assert_cmpuint(total, ==, 7);
    g_assert_cmpuint(avail, ==, 5);
    g_assert_true(g_file_get_contents("/proc/meminfo", &proc, NULL, NULL));
    g_assert_true(host_pressure_parse_meminfo(proc, &total, &avail));
    g_assert_cmpuint(total, >, 0);
}

static void test_parse_meminfo_garbage(void)
{
    static const char *const bad[] = {
        "",
        "\n\n\n",
        "MemTotal:       16318412 kB\n",                      /* no avail */
        "MemAvailable:    8159206 kB\n",                      /* no total */
        "MemTotal:       16318412 kB\nMemAvailable:",         /* truncated */
        "MemTotal:       16318412 kB\nMemAvailable:   81",
        "MemTotal:       16318412 kB\nMemAvailable:   81 k",
        "MemTotal:       16318412 kB\nMemAvailable:   81 kBx\n",
        "MemTotal: 99999999999999999999999 kB\nMemAvailable: 1 kB\n",
        "MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n",
        "MemTotal: 18014398509481984 kB\nMemAvailable: 1 kB\n",
        "MemTotal: -5 kB\nMemAvailable: 1 kB\n",
        "MemTotal: +5 kB\nMemAvailable: 1 kB\n",
        "MemTotal: 0 kB\nMemAvailable: 0 kB\n",
        "MemTotal: 12abc kB\nMemAvailable: 1 kB\n",
        "MemTotal: 12 kB junk\nMemAvailable: 1 kB\n",
        "MemTotal: 0x10 kB\nMemAvailable: 1 kB\n",
        "MemTotal:\n5 kB\nMemAvailable: 1 kB\n",
        " MemTotal: 5 kB\nMemAvailable: 1 kB\n",
        "XMemTotal: 5 kB\nXMemAvailable: 1 kB\n",
        "some avg10=1.00 avg60=0.00 avg300=0.00 total=0\n",
    };
    uint64_t total = 42, avail = 42;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("meminfo garbage %u", i);
        g_assert_false(host_pressure_parse_meminfo(bad[i], &total, &avail));
    }
    g_assert_false(host_pressure_parse_meminfo(NULL, &total, &avail));
    g_assert_cmpuint(total, ==, 42);
    g_assert_cmpuint(avail, ==, 42);
}

static const char psi_text[] =
    "some avg10=12.34 avg60=5.00 avg300=1.00 total=123456\n"
    "full avg10=3.00 avg60=1.00 avg300=0.50 total=23456\n";

static void test_parse_psi(void)
{
    g_autofree char *proc = NULL;
    double v = -1;

    g_assert_true(host_pressure_parse_psi(psi_text, &v));
    g_assert_cmpfloat_with_epsilon(v, 12.34, EPSILON);
    /* "full" first, "some" last without a newline */
    g_assert_true(host_pressure_parse_psi(
        "full avg10=3.00 avg60=1.00\nsome avg10=100.00", &v));
    g_assert_cmpfloat_with_epsilon(v, 100, EPSILON);
    g_assert_true(host_pressure_parse_psi("some avg10=7", &v));
    g_assert_cmpfloat_with_epsilon(v, 7, EPSILON);
    g_assert_true(host_pressure_parse_psi(
        "some avg60=9.00 avg10=0.50 total=1\n", &v));
    g_assert_cmpfloat_with_epsilon(v, 0.5, EPSILON);
    if (g_file_get_contents("/proc/pressure/memory", &proc, NULL, NULL)) {
        g_assert_true(host_pressure_parse_psi(proc, &v));
        g_assert_cmpfloat(v, >=, 0);
    }
}

static void test_parse_psi_garbage(void)
{
    static const char *const bad[] = {
        "",
        "\n",
        "full avg10=3.00 avg60=1.00 avg300=0.50 total=23456\n",
        "some",
        "some ",
        "some avg10=",
        "some avg10=\n5.00\n",
        "some avg10=abc avg60=0.00\n",
        "some avg10=1e5 avg60=0.00\n",
        "some avg10=nan\n",
        "some avg10=inf\n",
        "some avg10=-1.00\n",
        "some avg10=+1.00\n",
        "some avg10=100.01\n",
        "some avg10=99999999999999999999999999999999999999999\n",
        "some avg10=1.2.3\n",
        "some avg10=.5\n",
        "some avg10=0x10\n",
        "some avg10=1.00x\n",
        "some avg60=1.00 avg300=0.00 total=0\n",
        "some total=0\nsome avg10=1.00\n",
        "somex avg10=1.00\n",
        " some avg10=1.00\n",
        "MemTotal: 5 kB\n",
    };
    double v = 42;
    unsigned i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_test_message("psi garbage %u", i);
        g_assert_false(host_pressure_parse_psi(bad[i], &v));
    }
    g_assert_false(host_pressure_parse_psi(NULL, &v));
    g_assert_cmpfloat(v, ==, 42);
}

/* Random bytes, and good text cut anywhere: never a crash */
static void test_parse_binary(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(20260101);
    char buf[512];
    uint64_t total, avail;
    double v;
    unsigned i, j, n;

    for (i = 0; i < 2000; i++) {
        n = g_rand_int_range(rand, 0, sizeof(buf));
        for (j = 0; j < n; j++) {
            buf[j] = g_rand_int_range(rand, 1, 256);
        }
        buf[n] = '\0';
        host_pressure_parse_meminfo(buf, &total, &avail);
        host_pressure_parse_psi(buf, &v);
    }
    for (i = 0; i < sizeof(meminfo_text); i++) {
        g_autofree char *cut = g_strndup(meminfo_text, i);

        if (host_pressure_parse_meminfo(cut, &total, &avail)) {
            g_assert_cmpuint(total, ==, 16318412);
        }
    }
    for (i = 0; i < sizeof(psi_text); i++) {
        g_autofree char *cut = g_strndup(psi_text, i);

        if (host_pressure_parse_psi(cut, &v)) {
            g_assert_cmpfloat(v, <=, 12.34);
        }
    }
}

/* ---- the watcher ---- */

typedef struct Seen {
    GMutex lock;
    GCond cond;
    unsigned calls;
    HostMemory last;
    bool other_thread;
    GThread *thread;
} Seen;

static void seen_init(Seen *s)
{
    memset(s, 0, sizeof(*s));
    g_mutex_init(&s->lock);
    g_cond_init(&s->cond);
}

static void seen_clear(Seen *s)
{
    g_mutex_clear(&s->lock);
    g_cond_clear(&s->cond);
}

static void on_host(void *opaque, const HostMemory *host)
{
    Seen *s = opaque;

    g_mutex_lock(&s->lock);
    if (!s->thread) {
        s->thread = g_thread_self();
    } else if (s->thread != g_thread_self()) {
        s->other_thread = true;
    }
    s->calls++;
    s->last = *host;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

/* The verdict on @m with the default thresholds (10 % and avg10 10) */
static bool judged(HostMemory m)
{
    return policy_host_pressure(&policy_default_config, &m);
}

/*
 * Wait until the last callback says @avail_kib and @avg10, and the
 * policy's verdict on it is @pressure (the watcher has none of its own)
 */
static void wait_state(Seen *s, uint64_t avail_kib, double avg10,
                       bool pressure)
{
    int64_t end = g_get_monotonic_time() + WAIT_US;
    bool ok;

    g_mutex_lock(&s->lock);
    for (;;) {
        ok = s->calls && s->last.available_kib == avail_kib &&
             s->last.psi_some_avg10 == avg10 && !s->last.pressure &&
             judged(s->last) == pressure;
        if (ok || !g_cond_wait_until(&s->cond, &s->lock, end)) {
            break;
        }
    }
    if (!ok) {
        g_test_message("want avail %" G_GUINT64_FORMAT " avg10 %g "
                       "pressure %d; last avail %" G_GUINT64_FORMAT
                       " avg10 %g pressure %d after %u calls", avail_kib,
                       avg10, pressure, s->last.available_kib,
                       s->last.psi_some_avg10, judged(s->last), s->calls);
    }
    g_assert_true(ok);
    g_assert_false(s->other_thread);
    g_assert_true(s->thread != g_thread_self());
    g_mutex_unlock(&s->lock);
}

static void write_meminfo(const char *path, uint64_t avail, bool rename)
{
    g_autofree char *text = g_strdup_printf(
        "MemTotal:        1000000 kB\nMemFree:   1000 kB\n"
        "MemAvailable:    %" G_GUINT64_FORMAT " kB\n", avail);

    if (rename) {
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
    } else {
        FILE *f = fopen(path, "w");

        g_assert_nonnull(f);
        g_assert_cmpint(fputs(text, f), >=, 0);
        g_assert_cmpint(fclose(f), ==, 0);
    }
}

static void write_psi(const char *path, const char *avg10, bool rename)
{
    g_autofree char *text = g_strdup_printf(
        "some avg10=%s avg60=0.00 avg300=0.00 total=100\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=10\n", avg10);

    if (rename) {
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
    } else {
        FILE *f = fopen(path, "w");

        g_assert_nonnull(f);
        g_assert_cmpint(fputs(text, f), >=, 0);
        g_assert_cmpint(fclose(f), ==, 0);
    }
}

static void test_watch_files(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-balloond-XXXXXX", NULL);
    g_autofree char *meminfo = g_build_filename(dir, "meminfo", NULL);
    g_autofree char *psi = g_build_filename(dir, "psi", NULL);
    g_autofree char *other = g_build_filename(dir, "other", NULL);
    HostPressureConfig cfg = {
        .meminfo_path = meminfo, .psi_path = psi,
        .poll_ms = 60000,       /* inotify must notice, not polling */
    };
    g_autoptr(GError) err = NULL;
    HostPressure *hp;
    HostMemory now;
    Seen s;

    seen_init(&s);
    write_meminfo(meminfo, 500000, true);
    write_psi(psi, "0.00", true);
    hp = host_pressure_start(&cfg, on_host, &s, &err);
    g_assert_no_error(err);
    g_assert_nonnull(hp);
    host_pressure_get(hp, &now);
    g_assert_cmpuint(now.total_kib, ==, 1000000);
    g_assert_cmpuint(now.available_kib, ==, 500000);
    g_assert_false(judged(now));
    wait_state(&s, 500000, 0, false);       /* the initial state */

    write_meminfo(meminfo, 50000, true);     /* 5 %: pressure */
    wait_state(&s, 50000, 0, true);
    write_meminfo(meminfo, 600000, false);   /* in place: no pressure */
    wait_state(&s, 600000, 0, false);
    write_meminfo(meminfo, 90000, false);    /* in place: pressure */
    wait_state(&s, 90000, 0, true);
    write_meminfo(meminfo, 700000, true);
    wait_state(&s, 700000, 0, false);

    write_psi(psi, "25.50", true);           /* renamed over: pressure */
    wait_state(&s, 700000, 25.5, true);
    write_psi(psi, "1.00", false);           /* in place: no pressure */
    wait_state(&s, 700000, 1, false);
    write_psi(psi, "10.01", false);
    wait_state(&s, 700000, 10.01, true);
    write_psi(psi, "10.00", true);           /* not above: none */
    wait_state(&s, 700000, 10, false);

    /* a garbage rewrite keeps the last numbers */
    g_assert_true(g_file_set_contents(meminfo, "garbage\n", -1, NULL));
    g_assert_true(g_file_set_contents(other, "x", -1, NULL));
    write_psi(psi, "50.00", true);
    wait_state(&s, 700000, 50, true);
    host_pressure_get(hp, &now);
    g_assert_cmpuint(now.available_kib, ==, 700000);
    g_assert_cmpfloat(now.psi_some_avg10, ==, 50);
    g_assert_true(judged(now));
    host_pressure_stop(hp);

    seen_clear(&s);
    g_assert_cmpint(g_unlink(meminfo), ==, 0);
    g_assert_cmpint(g_unlink(psi), ==, 0);
    g_assert_cmpint(g_unlink(other), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/*
 * The real /proc/meminfo and PSI: a trigger, or avg10 polled when the
 * kernel refuses it (a window of 1 s needs CAP_SYS_RESOURCE; 2 s does not)
 */
static void watch_proc(uint64_t window_us)
{
    HostPressureConfig cfg = {
        .psi_stall_us = 150000, .psi_window_us = window_us,
        .poll_ms = 100,
    };
    g_autoptr(GError) err = NULL;
    HostPressure *hp;
    HostMemory now;
    Seen s;
    int64_t end = g_get_monotonic_time() + WAIT_US;

    seen_init(&s);
    hp = host_pressure_start(&cfg, on_host, &s, &err);
    g_assert_no_error(err);
    host_pressure_get(hp, &now);
    g_assert_cmpuint(now.total_kib, >, 0);
    g_assert_cmpuint(now.available_kib, <=, now.total_kib);
    g_mutex_lock(&s.lock);
    while (!s.calls) {
        if (!g_cond_wait_until(&s.cond, &s.lock, end)) {
            break;
        }
    }
    g_assert_cmpuint(s.calls, >=, 1);
    g_assert_cmpuint(s.last.total_kib, ==, now.total_kib);
    g_mutex_unlock(&s.lock);
    host_pressure_stop(hp);
    seen_clear(&s);
}

static void test_watch_proc(void)
{
    watch_proc(1000000);
    watch_proc(2000000);
}

static void test_watch_bad_paths(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-balloond-XXXXXX", NULL);
    g_autofree char *good = g_build_filename(dir, "meminfo", NULL);
    g_autofree char *junk = g_build_filename(dir, "junk", NULL);
    const char *const bad[][2] = {
        { "/nonexistent/meminfo", NULL },
        { junk, NULL },
        { dir, NULL },
        { good, "/nonexistent/psi" },
        { good, junk },
        { good, good },
        { junk, good },
    };
    unsigned i;

    write_meminfo(good, 1000, true);
    g_assert_true(g_file_set_contents(junk, "\x01\x02garbage", -1, NULL));
    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        HostPressureConfig cfg = {
            .meminfo_path = bad[i][0], .psi_path = bad[i][1],
            .poll_ms = 1000,
        };
        g_autoptr(GError) err = NULL;

        g_assert_null(host_pressure_start(&cfg, on_host, NULL, &err));
        g_assert_nonnull(err);
        g_test_message("%s", err->message);
    }
    g_assert_cmpint(g_unlink(good), ==, 0);
    g_assert_cmpint(g_unlink(junk), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* ---- metrics ---- */

static const char weird_name[] = "we\"ird\\vm\nx";

static VmSnapshot *snap_full(const char *name, int64_t now_ms)
{
    VmSnapshot *s = vm_snapshot_new(name, "/run/qemu-oc/qmp/x");
    unsigned i, j;

    s->responsive = true;
    s->has_balloon = true;
    s->actual = 2 * GIB;
    s->balloon_fpr = 1;
    s->balloon_deflate = 0;
    s->has_stats = true;
    for (i = 0; i < VM_STATS_NR; i++) {
        s->stats[i] = 1000 + i;
    }
    s->stats[6] = GIB;
    s->stats_mask = (1u << 0) | (1u << 2) | (1u << 5) | (1u << 6) |
                    (1u << 11);
    s->stats_update_ms = now_ms - 1500;
    s->has_runstates = true;
    s->cur.vm_state = 0;
    for (j = 0; j < VM_STATES_NR; j++) {
        s->cur.vm_ns[j] = 1500000000ULL * (j + 1);
    }
    s->cur.n_vcpus = 2;
    s->cur.vcpu = g_new0(typeof(*s->cur.vcpu), 2);
    for (i = 0; i < 2; i++) {
        s->cur.vcpu[i].index = i;
        for (j = 0; j < VCPU_STATES_NR; j++) {
            s->cur.vcpu[i].ns[j] = 250000000ULL * (i + j);
        }
    }
    return s;
}

static VmSnapshot *snap_unresponsive(const char *name)
{
    VmSnapshot *s = vm_snapshot_new(name, "qemu:///system");

    s->responsive = false;
    s->unresponsive_since_us = 1767225600500000LL;
    s->error = g_strdup("timeout");
    return s;
}

static MetricsVm *metrics_vm(VmSnapshot *snap, uint64_t target_mib)
{
    MetricsVm *v = g_new0(MetricsVm, 1);
    unsigned r;

    v->snap = snap;
    v->target_mib = target_mib;
    for (r = 0; r < POLICY_REASON__MAX; r++) {
        v->decisions[r] = r * 3;
    }
    return v;
}

static void metrics_vm_free(gpointer p)
{
    MetricsVm *v = p;

    vm_snapshot_unref((VmSnapshot *)v->snap);
    g_free(v);
}

static GPtrArray *make_vms(int64_t now_ms)
{
    GPtrArray *vms = g_ptr_array_new_with_free_func(metrics_vm_free);

    g_ptr_array_add(vms, metrics_vm(snap_full("good", now_ms), 1536));
    g_ptr_array_add(vms, metrics_vm(snap_unresponsive(weird_name), 0));
    g_ptr_array_add(vms, metrics_vm(vm_snapshot_new("empty", "x"), 0));
    return vms;
}

static void assert_has(const char *text, const char *line)
{
    if (!strstr(text, line)) {
        g_test_message("missing: %s", line);
        g_test_message("the page: %s", text);
        g_assert_not_reached();
    }
}

/* Every "# TYPE" and "# HELP" once per family, before its samples */
static void assert_families(const char *text)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autoptr(GHashTable) typed = g_hash_table_new_full(g_str_hash,
                                                        g_str_equal,
                                                        g_free, NULL);
    unsigned i;

    for (i = 0; lines[i]; i++) {
        g_auto(GStrv) w = g_strsplit(lines[i], " ", 4);

        if (g_str_has_prefix(lines[i], "# TYPE ")) {
            g_assert_nonnull(w[2]);
            g_assert_true(g_hash_table_add(typed, g_strdup(w[2])));
            g_assert_true(i > 0 && g_str_has_prefix(lines[i - 1],
                                                    "# HELP "));
        } else if (lines[i][0] && lines[i][0] != '#') {
            g_autofree char *name = g_strndup(lines[i],
                                              strcspn(lines[i], "{ "));

            g_assert_true(g_str_has_prefix(name, "qemu_oc_"));
            g_assert_true(g_hash_table_contains(typed, name));
        }
    }
}

/* promtool check metrics < @text: exit status 0 */
static void assert_promtool(const char *text)
{
    g_autofree char *path = NULL;
    g_autofree char *out = NULL, *errout = NULL;
    g_autoptr(GError) err = NULL;
    const char *argv[] = {
        "/bin/sh", "-c", PROMTOOL " check metrics < \"$1\"", "sh", NULL,
        NULL,
    };
    int fd, status;

    if (!g_file_test(PROMTOOL, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_message(PROMTOOL " is missing: install the Debian package "
                       "prometheus to check the metrics page");
        g_test_fail();
        return;
    }
    fd = g_file_open_tmp("test-balloond-XXXXXX.prom", &path, &err);
    g_assert_no_error(err);
    close(fd);
    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    argv[4] = path;
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL,
                               &out, &errout, &status, &err));
    g_assert_no_error(err);
    g_test_message("promtool check metrics: status %d %s%s", status, out,
                   errout);
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_test_message("the page: %s", text);
    }
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    g_assert_cmpint(g_unlink(path), ==, 0);
}

static void test_render(void)
{
    int64_t now_ms = g_get_real_time() / 1000;
    g_autoptr(GPtrArray) vms = make_vms(now_ms);
    HostMemory host = {
        .total_kib = 16318412, .available_kib = 8159206,
        .psi_some_avg10 = 12.34, .pressure = true,
    };
    g_autoptr(GPtrArray) domains = g_ptr_array_new_with_free_func(
        metrics_domain_free);
    MetricsDomain *d = g_new0(MetricsDomain, 1);
    g_autofree char *text = NULL;

    /* a cgroup over its limit, and one without a limit */
    d->dir = g_strdup("/sys/fs/cgroup/machine.slice");
    d->st = (MemDomainState) {
        .limit = 1600 * MIB, .usage = 1700 * MIB, .reclaimable = 20 * MIB,
        .headroom = -80 * (int64_t)MIB, .oom_kills = 2,
    };
    d->reserve_mib = 256;
    g_ptr_array_add(domains, d);
    d = g_new0(MetricsDomain, 1);
    d->dir = g_strdup("/sys/fs/cgroup/other");
    d->st = (MemDomainState) { .limit = UINT64_MAX, .headroom = INT64_MAX };
    g_ptr_array_add(domains, d);
    text = metrics_render(vms, &host, domains, now_ms);

    assert_families(text);
    assert_has(text, "qemu_oc_balloon_free_page_reporting{vm=\"good\"} 1\n");
    assert_has(text, "qemu_oc_balloon_deflate_on_oom{vm=\"good\"} 0\n");
    assert_has(text, "qemu_oc_domain_memory_bytes{domain=\"/sys/fs/cgroup/"
               "machine.slice\",kind=\"limit\"} 1677721600\n");
    assert_has(text, "qemu_oc_domain_memory_bytes{domain=\"/sys/fs/cgroup/"
               "machine.slice\",kind=\"reserve\"} 268435456\n");
    assert_has(text, "qemu_oc_domain_headroom_bytes{domain=\"/sys/fs/cgroup/"
               "machine.slice\"} -83886080\n");
    assert_has(text, "qemu_oc_domain_oom_kills_total{domain=\"/sys/fs/"
               "cgroup/machine.slice\"} 2\n");
    /* no limit, no limit sample */
    g_assert_null(strstr(text, "other\",kind=\"limit\""));
    assert_has(text, "qemu_oc_vm_responsive{vm=\"good\"} 1\n");
    assert_has(text, "qemu_oc_vm_responsive{vm=\"we\\\"ird\\\\vm\\nx\"} 0\n");
    assert_has(text, "qemu_oc_vm_responsive{vm=\"empty\"} 0\n");
    assert_has(text, "qemu_oc_vm_unresponsive_since_seconds"
               "{vm=\"we\\\"ird\\\\vm\\nx\"} 1767225600.5\n");
    assert_has(text, "# TYPE qemu_oc_vm_state_seconds_total counter\n");
    assert_has(text, "qemu_oc_vm_state_seconds_total"
               "{vm=\"good\",state=\"full-run\"} 1.5\n");
    assert_has(text, "qemu_oc_vcpu_state_seconds_total"
               "{vm=\"good\",vcpu=\"1\",state=\"blocked\"} 0.75\n");
    assert_has(text, "qemu_oc_balloon_actual_bytes{vm=\"good\"} "
               "2147483648\n");
    assert_has(text, "qemu_oc_balloon_target_bytes{vm=\"good\"} "
               "1610612736\n");
    assert_has(text, "qemu_oc_guest_memory_bytes"
               "{vm=\"good\",stat=\"available\"} 1073741824\n");
    assert_has(text, "qemu_oc_guest_memory_bytes"
               "{vm=\"good\",stat=\"total\"} 1005\n");
    assert_has(text, "qemu_oc_guest_events_total"
               "{vm=\"good\",stat=\"alloc_stalls\"} 1011\n");
    assert_has(text, "qemu_oc_guest_events_total"
               "{vm=\"good\",stat=\"swap_in\"} 1000\n");
    assert_has(text, "qemu_oc_guest_stats_age_seconds{vm=\"good\"} 1.5\n");
    assert_has(text, "qemu_oc_decisions_total{vm=\"empty\",reason=\"");
    assert_has(text, "qemu_oc_host_memory_bytes{kind=\"total\"} "
               "16710053888\n");
    assert_has(text, "qemu_oc_host_memory_pressure 1\n");
    assert_has(text, "qemu_oc_host_psi_some_avg10 12.34\n");
    /* only reported statistics; no data, no sample */
    g_assert_null(strstr(text, "stat=\"free\""));
    g_assert_null(strstr(text, "stat=\"swap_out\""));
    g_assert_null(strstr(text, "_bytes{vm=\"empty\""));
    g_assert_null(strstr(text, "_seconds_total{vm=\"empty\""));
    g_assert_null(strstr(text, "since_seconds{vm=\"good\""));
    g_assert_null(strstr(text, "target_bytes{vm=\"we"));
    assert_promtool(text);
}

static void test_render_empty(void)
{
    g_autoptr(GPtrArray) vms = g_ptr_array_new();
    HostMemory host = { 0 };
    g_autofree char *none = metrics_render(NULL, NULL, NULL, 0);
    g_autofree char *text = metrics_render(vms, &host, NULL, 0);

    g_assert_cmpstr(none, ==, "");
    g_assert_null(strstr(text, "qemu_oc_host_memory_bytes"));
    assert_has(text, "qemu_oc_host_memory_pressure 0\n");
    assert_families(text);
    assert_promtool(text);
}

/* ---- HTTP ---- */

typedef struct Collected {
    VmSnapshot *snap;
    gint scrapes;
} Collected;

static void collect(void *opaque, GPtrArray *vms, HostMemory *host,
                    GPtrArray *domains G_GNUC_UNUSED)
{
    Collected *c = opaque;

    g_ptr_array_add(vms, metrics_vm(vm_snapshot_ref(c->snap), 2048));
    host->total_kib = 1024;
    host->available_kib = 512;
    g_atomic_int_inc(&c->scrapes);
}

/* A port nobody listens on now */
static unsigned free_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A request over HTTP/1.0; the whole answer, its status in *@status */
static char *http(unsigned port, const char *method, const char *path,
                  int *status)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct timeval tv = { .tv_sec = 5 };
    g_autofree char *req = g_strdup_printf(
        "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    GString *resp = g_string_new(NULL);
    char buf[4096];
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    g_assert_cmpint(fd, >=, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(write(fd, req, strlen(req)), ==, strlen(req));
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(resp, buf, n);
    }
    g_assert_cmpint(n, ==, 0);
    close(fd);
    *status = -1;
    if (g_str_has_prefix(resp->str, "HTTP/1.")) {
        *status = atoi(resp->str + 9);
    }
    return g_string_free(resp, false);
}

static void test_http(void)
{
    Collected c = { .snap = snap_full("http", g_get_real_time() / 1000) };
    unsigned port = free_port();
    g_autofree char *addr = g_strdup_printf("127.0.0.1:%u", port);
    g_autoptr(GError) err = NULL;
    Metrics *m = metrics_start(addr, collect, &c, &err);
    char *resp;
    int status;

    g_assert_no_error(err);
    g_assert_nonnull(m);
    resp = http(port, "GET", "/metrics", &status);
    g_assert_cmpint(status, ==, 200);
    assert_has(resp, "Content-Type: text/plain; version=0.0.4");
    assert_has(resp, "\r\n\r\n# HELP qemu_oc_vm_responsive ");
    assert_has(resp, "qemu_oc_vm_responsive{vm=\"http\"} 1\n");
    assert_has(resp, "qemu_oc_balloon_target_bytes{vm=\"http\"} "
               "2147483648\n");
    assert_has(resp, "qemu_oc_host_memory_bytes{kind=\"available\"} "
               "524288\n");
    assert_promtool(strstr(resp, "\r\n\r\n") + 4);
    g_free(resp);
    resp = http(port, "GET", "/metrics?x=1", &status);
    g_assert_cmpint(status, ==, 200);
    g_free(resp);
    resp = http(port, "GET", "/other", &status);
    g_assert_cmpint(status, ==, 404);
    g_free(resp);
    resp = http(port, "GET", "/", &status);
    g_assert_cmpint(status, ==, 404);
    g_free(resp);
    resp = http(port, "POST", "/metrics", &status);
    g_assert_cmpint(status, ==, 405);
    g_free(resp);
    g_assert_cmpint(g_atomic_int_get(&c.scrapes), ==, 2);
    metrics_stop(m);
    /* every reference taken by collect was given back */
    g_assert_cmpint(g_atomic_int_get(&c.snap->ref), ==, 1);
    vm_snapshot_unref(c.snap);
}

/* ":PORT" listens on every address */
static void test_http_any(void)
{
    Collected c = { .snap = vm_snapshot_new("any", "x") };
    unsigned port = free_port();
    g_autofree char *addr = g_strdup_printf(":%u", port);
    g_autoptr(GError) err = NULL;
    Metrics *m = metrics_start(addr, collect, &c, &err);
    g_autofree char *resp = NULL;
    int status;

    g_assert_no_error(err);
    resp = http(port, "GET", "/metrics", &status);
    g_assert_cmpint(status, ==, 200);
    assert_has(resp, "qemu_oc_vm_responsive{vm=\"any\"} 0\n");
    metrics_stop(m);
    vm_snapshot_unref(c.snap);
}

static void test_http_bad(void)
{
    static const char *const bad[] = {
        "", ":", "9101", "abc:9101", "localhost:9101", "1.2.3.4:",
        "1.2.3.4:0", ":0", ":65536", ":12x", ":-1", ": 80",
        "1.2.3.4:99999999999999999999", "1.2.3:9101", "::1:9101",
        "1.2.3.4:9101:", "[::1]", "[1.2.3.4]:9101",
    };
    struct sockaddr_in sa = { .sin_family = AF_INET };
    g_autofree char *addr = NULL;
    g_autoptr(GError) err = NULL;
    unsigned i;
    int fd;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_null(metrics_start(bad[i], collect, NULL, &err));
        g_assert_nonnull(err);
        g_test_message("%s", err->message);
        g_clear_error(&err);
    }
    g_assert_null(metrics_start(NULL, collect, NULL, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);

    /* a port another socket listens on */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(free_port());
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    addr = g_strdup_printf("127.0.0.1:%u", ntohs(sa.sin_port));
    g_assert_null(metrics_start(addr, collect, NULL, &err));
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    close(fd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/balloond/parse/meminfo", test_parse_meminfo);
    g_test_add_func("/balloond/parse/meminfo-garbage",
                    test_parse_meminfo_garbage);
    g_test_add_func("/balloond/parse/psi", test_parse_psi);
    g_test_add_func("/balloond/parse/psi-garbage", test_parse_psi_garbage);
    g_test_add_func("/balloond/parse/binary", test_parse_binary);
    g_test_add_func("/balloond/host/files", test_watch_files);
    g_test_add_func("/balloond/host/proc", test_watch_proc);
    g_test_add_func("/balloond/host/bad-paths", test_watch_bad_paths);
    g_test_add_func("/balloond/metrics/render", test_render);
    g_test_add_func("/balloond/metrics/render-empty", test_render_empty);
    g_test_add_func("/balloond/metrics/http", test_http);
    g_test_add_func("/balloond/metrics/http-any", test_http_any);
    g_test_add_func("/balloond/metrics/http-bad", test_http_bad);
    return g_test_run();
}
