/*
 * vmtop: a top for the VMs of an overcommitted host
 *
 * Finds the VMs (a directory of QMP sockets, libvirt connections), runs
 * one worker per VM through the fleet library, and shows per VM where
 * its vCPUs' time goes (runstates) and how much memory its guest really
 * uses (balloon statistics): live with curses, or as text or JSON
 * frames for scripts.  A frame never waits for a VM: a slow one shows
 * as unresponsive.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "view.h"

#define DEFAULT_QMP_DIR DISCOVERY_DEFAULT_QMP_DIR
#define EXIT_USAGE 2
#define READY_POLL_US (50 * 1000)

typedef struct Options {
    char **qmp_dirs;
    char **uris;
    double interval;
    gboolean batch;
    int iterations;             /* -1: not given */
    gboolean once;
    gboolean json;
    int timeout_ms;
    char *sort;
    gboolean reverse;
    gboolean expand;
    int interval_ms;            /* from interval */
} Options;

static const char summary[] =
"Shows, per VM, where its vCPUs' time goes over the last interval (the\n"
"VM runstate shares of query-vcpu-runstates, the vCPUs' mean running\n"
"and runnable shares) and how much memory its guest really uses (the\n"
"balloon statistics of query-balloon), without ever waiting for a slow\n"
"VM: one that misses a request's deadline shows as UNRESP, for how long.\n"
"\n"
"Sources (repeatable, mixable): --qmp-dir DIR (every QMP socket in DIR\n"
"is a VM named by its file; default " DEFAULT_QMP_DIR " if no source is\n"
"given), --connect URI (the running domains of a libvirt connection).";

static const char description[] =
"Columns: STATE is the VM's runstate (full-run, full-cont, hazard,\n"
"blocked, part-run, part-cont), UNRESP <time> or ERROR.  FULL% CONT%\n"
"HAZ% BLK% PRUN% PCON%: the shares of the VM states over the last\n"
"interval.  VCPU: vCPUs; RUN% RDY%: their mean running and runnable\n"
"(waiting for a host CPU) shares.  ACTUAL: balloon size, MiB; TOTAL\n"
"AVAIL FREE: the guest's memory, MiB.  MAJF/s SWAPIN/s: major faults\n"
"and swapped-in bytes per second.  AGE: age of the guest's statistics,\n"
"s.  PV: KVM PV features (U pv-unhalt, Y pv-sched-yield, S steal-time,\n"
"D dedicated-hint).  SRC: runstates source (exact, sampled).  \"-\": no\n"
"data (yet: shares need two samples).\n"
"\n"
"Keys (live view): q quit; Up/Down, PgUp/PgDn, Home/End select a VM;\n"
"Enter or e show/hide its vCPUs; Left/Right scroll; sort by n name,\n"
"s state, f full-run, c contention (CONT%+PCON%), h hazard, b blocked,\n"
"m available memory (least first), a stats age, u unresponsive first;\n"
"r reverses.  Numeric sorts put the largest first; VMs without the\n"
"value come last.\n"
"\n"
"Batch (-b): prints frames as text (or JSON with --json), --interval\n"
"apart, the first once the workers have two samples; -n N stops after N\n"
"frames.  --once is -b -n 1.  Exit status: 0, 1 if no source works, 2\n"
"for bad options.\n"
"\n"
"Examples:\n"
"  vmtop                                 live view of " DEFAULT_QMP_DIR "\n"
"  vmtop --qmp-dir /srv/vms/qmp --interval 0.5\n"
"  vmtop --connect qemu:///system --connect qemu+ssh://h2/system\n"
"  vmtop --once --sort c                 one frame, most contended first\n"
"  vmtop -b -n 3 --expand                three frames with every vCPU\n"
"  vmtop --once --json | jq '.vms[].name'";

static bool usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "vmtop: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'vmtop --help' for more information.\n");
    return false;
}

static bool parse_options(int argc, char **argv, Options *o)
{
    GOptionEntry entries[] = {
        { "qmp-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->qmp_dirs,
          "Watch a directory of QMP sockets (repeatable)", "DIR" },
        { "connect", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->uris,
          "Follow a libvirt connection (repeatable)", "URI" },
        { "interval", 'd', 0, G_OPTION_ARG_DOUBLE, &o->interval,
          "Seconds between samples and frames (default 2)", "S" },
        { "batch", 'b', 0, G_OPTION_ARG_NONE, &o->batch,
          "Print frames as plain text instead of the live view", NULL },
        { "iterations", 'n', 0, G_OPTION_ARG_INT, &o->iterations,
          "With -b: stop after N frames", "N" },
        { "once", 0, 0, G_OPTION_ARG_NONE, &o->once,
          "Print one frame (after two samples) and exit", NULL },
        { "json", 0, 0, G_OPTION_ARG_NONE, &o->json,
          "With --once or -b: one JSON document per frame", NULL },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &o->timeout_ms,
          "Deadline of each request, ms (default 1000)", "MS" },
        { "sort", 's', 0, G_OPTION_ARG_STRING, &o->sort,
          "Sort key: n s f c h b m a u (default n)", "KEY" },
        { "reverse", 'r', 0, G_OPTION_ARG_NONE, &o->reverse,
          "Reverse the sort order", NULL },
        { "expand", 'e', 0, G_OPTION_ARG_NONE, &o->expand,
          "With --once or -b: print every VM's vCPUs", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- a top for the VMs of a host");
    g_autoptr(GError) err = NULL;
    double ms;

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, summary);
    g_option_context_set_description(ctx, description);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        return usage_error("%s", err->message);
    }
    if (argc > 1) {
        return usage_error("unexpected argument '%s'", argv[1]);
    }
    if (!isfinite(o->interval) || o->interval <= 0 ||
        o->interval > 86400) {
        return usage_error("%s", "--interval must be more than 0 seconds "
                           "(at most 86400)");
    }
    ms = o->interval * 1000 + 0.5;
    o->interval_ms = ms < 1 ? 1 : (int)ms;
    if (o->timeout_ms <= 0) {
        return usage_error("%s", "--timeout must be more than 0 ms");
    }
    if (o->iterations != -1 && o->iterations < 1) {
        return usage_error("%s", "--iterations must be at least 1");
    }
    if (o->once) {
        if (o->iterations != -1 && o->iterations != 1) {
            return usage_error("%s", "--once prints one frame: "
                               "--iterations must be 1 or absent");
        }
        o->batch = true;
        o->iterations = 1;
    }
    if (o->iterations != -1 && !o->batch) {
        return usage_error("%s", "--iterations needs --batch");
    }
    if (o->json && !o->batch) {
        return usage_error("%s", "--json needs --once or --batch");
    }
    if (o->expand && !o->batch) {
        return usage_error("%s", "--expand needs --once or --batch "
                           "(the live view expands with Enter)");
    }
    if (o->sort && (strlen(o->sort) != 1 ||
                    !view_sort_key_valid(o->sort[0]))) {
        return usage_error("--sort: unknown key '%s' (one of n s f c h b "
                           "m a u)", o->sort);
    }
    return true;
}

/* Add the sources; false if none works */
static int64_t now_wall_ms(void)
{
    return g_get_real_time() / 1000;
}

/* Has the VM's worker had its two samples, or given up for now? */
static bool snapshot_settled(const VmSnapshot *s)
{
    return s->has_prev || !s->responsive ||
           (s->error && !s->has_runstates);
}

static bool fleet_settled(Fleet *fleet)
{
    GPtrArray *snaps = fleet_snapshots(fleet);
    bool all = true;
    guint i;

    for (i = 0; i < snaps->len && all; i++) {
        all = snapshot_settled(g_ptr_array_index(snaps, i));
    }
    for (i = 0; i < snaps->len; i++) {
        vm_snapshot_unref(g_ptr_array_index(snaps, i));
    }
    g_ptr_array_set_free_func(snaps, NULL);
    g_ptr_array_free(snaps, true);
    return all;
}

static void sleep_until(int64_t deadline_us)
{
    int64_t now = g_get_monotonic_time();

    if (deadline_us > now) {
        g_usleep(deadline_us - now);
    }
}

/*
 * Wait one interval from @start_us, then (at most @margin_us more) until
 * every worker has two samples or has failed
 */
static void wait_first_frame(Fleet *fleet, int64_t start_us,
                             int interval_ms, int64_t margin_us)
{
    int64_t t = start_us + (int64_t)interval_ms * 1000;
    int64_t end = t + margin_us;

    sleep_until(t);
    while (g_get_monotonic_time() < end && !fleet_settled(fleet)) {
        g_usleep(MIN(READY_POLL_US, MAX(end - g_get_monotonic_time(), 1)));
    }
}

static void print_frame(Fleet *fleet, const Options *o, char sort)
{
    ViewFrame *f = view_frame_new(fleet_snapshots(fleet), now_wall_ms());

    view_frame_sort(f, sort, o->reverse);
    if (o->json) {
        json_object *j = view_frame_to_json(f);

        printf("%s\n", json_object_to_json_string_ext(j,
                                                      JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        view_frame_print(f, stdout, sort, o->reverse, o->expand);
    }
    fflush(stdout);
    view_frame_free(f);
}

static int run_batch(Fleet *fleet, const Options *o, char sort)
{
    int64_t start = g_get_monotonic_time();
    int64_t margin = (int64_t)o->timeout_ms * 1000 + 200 * 1000;
    int64_t first;
    int i;

    wait_first_frame(fleet, start, o->interval_ms, margin);
    first = g_get_monotonic_time();
    for (i = 0; o->iterations < 0 || i < o->iterations; i++) {
        if (i) {
            sleep_until(first + (int64_t)i * o->interval_ms * 1000);
            if (!o->json) {
                printf("\n");
            }
        }
        print_frame(fleet, o, sort);
    }
    return 0;
}

int main(int argc, char **argv)
{
    Options o = {
        .interval = 2,
        .iterations = -1,
        .timeout_ms = 1000,
    };
    VmWorkerConfig cfg = vm_worker_default_config;
    char sort;
    Fleet *fleet;
    int ret;

    setlocale(LC_CTYPE, "");        /* for ncursesw; numbers stay "C" */
    if (!parse_options(argc, argv, &o)) {
        return EXIT_USAGE;
    }
    sort = o.sort ? o.sort[0] : 'n';
    if (!o.batch && !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "vmtop: standard output is not a terminal: "
                "use --batch or --once\n");
        return 1;
    }

    cfg.interval_ms = o.interval_ms;
    cfg.timeout_ms = o.timeout_ms;
    fleet = fleet_new(&cfg, &qmp_default_limits, NULL, NULL);
    if (!discovery_add_sources(fleet_discovery(fleet), o.qmp_dirs, o.uris,
                               "vmtop")) {
        fleet_free(fleet);
        return 1;
    }
    fleet_start(fleet);

    if (o.batch) {
        ret = run_batch(fleet, &o, sort);
    } else {
        ViewCursesConfig vc = {
            .interval_ms = o.interval_ms,
            .sort = sort,
            .reverse = o.reverse,
        };
        ret = view_curses_run(fleet, &vc);
    }

    fleet_free(fleet);
    g_strfreev(o.qmp_dirs);
    g_strfreev(o.uris);
    g_free(o.sort);
    return ret;
}
