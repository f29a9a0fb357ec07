/*
 * oc-load: the qemu-oc test guest's load generator.
 *
 *   oc-load spin N SECONDS   run N busy threads for SECONDS (0: until killed),
 *                            thread i pinned to CPU i (modulo the CPUs);
 *                            OC-SPINNING PID on the console once all spin
 *   oc-load hold MIB         allocate and touch MIB MiB, then wait until killed
 *   oc-load work N SECONDS SLEEP_US ITERS
 *                            N threads (thread i on CPU i) doing units of
 *                            work (ITERS turns of a busy loop), each unit
 *                            followed by a SLEEP_US sleep, for SECONDS;
 *                            then OC-WORK UNITS on the console (the units
 *                            done by all threads: the guest's throughput)
 *   oc-load starve SECONDS   spin one SCHED_FIFO thread per CPU with RT
 *                            throttling off: kernel workers (such as the
 *                            balloon driver's statistics work) cannot run.
 *                            OC-STARVING on the console once every CPU
 *                            spins, OC-STARVED once they all stopped
 *
 * Built statically on the host and put in the test initramfs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* volatile: keeps the compiler from deleting the busy loop */
static volatile unsigned long sink;
/* the threads started to spin, how many have, and whether they starve */
static int spinners;
static int spinning;
static bool starving;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A marker line on the console (the tests wait for it) */
static void marker(const char *line)
{
    int fd = open("/dev/console", O_WRONLY | O_NOCTTY);

    if (fd >= 0) {
        if (write(fd, line, strlen(line)) < 0) {
            perror("oc-load: /dev/console");
        }
        close(fd);
    }
}

static void *spin(void *arg)
{
    double end = *(double *)arg;
    unsigned long i = 0;

    /*
     * the last to start says so: when starving, every other CPU already
     * runs a starver, and this one's CPU does once the line is written
     */
    if (__atomic_add_fetch(&spinning, 1, __ATOMIC_SEQ_CST) == spinners) {
        char line[64];

        snprintf(line, sizeof(line), "%s %d\n",
                 starving ? "OC-STARVING" : "OC-SPINNING", (int)getpid());
        marker(line);
    }

    while (end == 0 || now() < end) {
        for (int j = 0; j < 100000; j++) {
            sink += i++;
        }
    }
    return NULL;
}

/*
 * Start thread @i running @fn(@arg), on CPU i (modulo the CPUs); with
 * @realtime, SCHED_FIFO at the highest priority
 */
static bool start_pinned(pthread_t *t, int i, bool realtime,
                         void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    cpu_set_t cpus;
    int err;

    pthread_attr_init(&attr);
    CPU_ZERO(&cpus);
    CPU_SET(i % sysconf(_SC_NPROCESSORS_ONLN), &cpus);
    pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
    if (realtime) {
        struct sched_param sp = { .sched_priority = 99 };

        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
    }
    err = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (err) {
        fprintf(stderr, "oc-load: pthread_create: %s\n", strerror(err));
        return false;
    }
    return true;
}

static int do_spin(int n, double seconds, bool realtime)
{
    pthread_t t[256];
    double end = seconds > 0 ? now() + seconds : 0;

    if (n < 1 || n > 256) {
        fprintf(stderr, "oc-load: spin takes 1..256 threads\n");
        return 2;
    }
    spinners = n;
    starving = realtime;
    for (int i = 0; i < n; i++) {
        if (!start_pinned(&t[i], i, realtime, spin, &end)) {
            return 1;
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
    return 0;
}

/* work: the parameters, and the units done */
static double work_end;
static long work_sleep_us, work_iters;
static unsigned long work_units;

static void *work(void *arg)
{
    struct timespec nap = { 0, work_sleep_us * 1000 };
    unsigned long units = 0;

    (void)arg;
    while (now() < work_end) {
        for (long j = 0; j < work_iters; j++) {
            sink += j;
        }
        units++;
        if (work_sleep_us > 0) {
            nanosleep(&nap, NULL);
        }
    }
    __atomic_add_fetch(&work_units, units, __ATOMIC_SEQ_CST);
    return NULL;
}

static int do_work(int n, double seconds, long sleep_us, long iters)
{
    pthread_t t[256];
    char line[64];

    if (n < 1 || n > 256 || seconds <= 0 || sleep_us < 0 ||
        sleep_us >= 1000000 || iters < 1) {
        fprintf(stderr, "oc-load: work takes 1..256 threads, SECONDS > 0, "
                "SLEEP_US 0..999999, ITERS >= 1\n");
        return 2;
    }
    work_end = now() + seconds;
    work_sleep_us = sleep_us;
    work_iters = iters;
    for (int i = 0; i < n; i++) {
        if (!start_pinned(&t[i], i, false, work, NULL)) {
            return 1;
        }
    }
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
    }
    snprintf(line, sizeof(line), "OC-WORK %lu\n", work_units);
    marker(line);
    return 0;
}

static int do_hold(long mib)
{
    const size_t page = 4096;  /* x86 guest: touch every page */
    size_t len = (size_t)mib << 20;
    char *p;

    if (mib < 1) {
        fprintf(stderr, "oc-load: hold takes a size in MiB >= 1\n");
        return 2;
    }
    p = malloc(len);
    if (!p) {
        perror("oc-load: malloc");
        return 1;
    }
    for (size_t off = 0; off < len; off += page) {
        p[off] = (char)off | 1;
    }
    printf("oc-load: holding %ld MiB\n", mib);
    fflush(stdout);
    for (;;) {
        pause();
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "spin")) {
        return do_spin(atoi(argv[2]), atof(argv[3]), false);
    }
    if (argc == 3 && !strcmp(argv[1], "starve")) {
        FILE *f = fopen("/proc/sys/kernel/sched_rt_runtime_us", "w");
        int rc;

        if (!f || fprintf(f, "-1\n") < 0 || fclose(f)) {
            perror("oc-load: cannot turn RT throttling off");
            return 1;
        }
        rc = do_spin(sysconf(_SC_NPROCESSORS_ONLN), atof(argv[2]), true);
        marker("OC-STARVED\n");
        return rc;
    }
    if (argc == 3 && !strcmp(argv[1], "hold")) {
        return do_hold(atol(argv[2]));
    }
    if (argc == 6 && !strcmp(argv[1], "work")) {
        return do_work(atoi(argv[2]), atof(argv[3]), atol(argv[4]),
                       atol(argv[5]));
    }
    fprintf(stderr, "usage: oc-load spin N SECONDS | hold MIB | "
            "starve SECONDS | work N SECONDS SLEEP_US ITERS\n");
    return 2;
}
