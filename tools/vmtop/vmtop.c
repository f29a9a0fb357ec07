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

#include "fd-limit.h"
#include "collector-client.h"
#include "fleet.h"
#include "view.h"

#define DEFAULT_QMP_DIR DISCOVERY_DEFAULT_QMP_DIR
#define EXIT_USAGE 2
#define READY_POLL_US (50 * 1000)

typedef struct Options {
    char **qmp_dirs;
    char **uris;
    char *collector;
    gboolean direct;
    double interval;
    gboolean batch;
    int iterations;             /* -1: not given */
    gboolean once;
    gboolean json;
    int timeout_ms;
    char *sort;
    gboolean reverse;
    gboolean expand;
    gboolean csv;
    char *columns;
    char *filter;
    char *config;
    int interval_ms;            /* from interval */
    ViewLayout layout;          /* config file, then options */
    char *config_message;       /* what was wrong with the config file */
} Options;

static const char summary[] =
"Shows, per VM, where its vCPUs' time goes over the last interval (the\n"
"VM runstate shares of query-vcpu-runstates, the vCPUs' mean running\n"
"and runnable shares) and how much memory its guest really uses (the\n"
"balloon statistics of query-balloon), without ever waiting for a slow\n"
"VM: one that misses a request's deadline shows as UNRESP, for how long.\n"
"\n"
"Where the data comes from: the host's collector (qemu-oc-balloond\n"
"--serve) when it runs, at " COLLECTOR_DEFAULT_SOCKET "\n"
"or --collector SOCKET: vmtop then opens no connection of its own to any\n"
"VM, however many vmtops run.  Otherwise, or with --direct, its own\n"
"connections to its sources (repeatable, mixable): --qmp-dir DIR (every\n"
"QMP socket in DIR is a VM named by its file; default " DEFAULT_QMP_DIR "\n"
"if no source is given), --connect URI (the running domains of a libvirt\n"
"connection).  The header says which (via direct, via collector ...).";

static const char description_tail[] =
"Shares are over the last interval; \"-\": no data (yet: shares need two\n"
"samples).  Numeric sorts put the largest first (AVAIL: the least);\n"
"VMs without the value come last.  With several hosts (--connect), VMs\n"
"are grouped by host.\n"
"\n"
"Keys (live view): h or ? help; q quit; Up/Down, PgUp/PgDn, Home/End\n"
"select a VM; Enter or e show/hide its vCPUs; < > sort by the next\n"
"column left/right, or a column's key (upper case: N S F C H B M A U Y);\n"
"r reverses; / filters by name; f shows/hides columns, o orders them\n"
"(as esxtop), W saves both and the sort to the config file\n"
"($XDG_CONFIG_HOME/qemu-oc/vmtop.conf, or --config); Left/Right bring\n"
"in columns a narrow terminal leaves out.\n"
"\n"
"Batch (-b): prints frames as text (JSON with --json, CSV with --csv),\n"
"--interval apart, the first once the workers have two samples; -n N\n"
"stops after N frames.  --once is -b -n 1.  Exit status: 0, 1 if no\n"
"source works, 2 for bad options.\n"
"\n";

static const char examples[] =
"Examples:\n"
"  vmtop                                 live view of " DEFAULT_QMP_DIR "\n"
"  vmtop --qmp-dir /srv/vms/qmp --interval 0.5\n"
"  vmtop --connect qemu:///system --connect qemu+ssh://h2/system\n"
"  vmtop --once --sort ctn               one frame, most contended first\n"
"  vmtop -b -n 3 --expand                three frames with every vCPU\n"
"  vmtop --once --json | jq '.vms[].name'\n"
"  vmtop --once --csv --columns state,rdy,cstp,avail --filter 'web*'";

/* The columns, from their table, then the rest of --help */
static char *columns_description(void)
{
    GString *g = g_string_new("Columns (--columns and --sort take the "
                              "name, or the key; * not shown by\n"
                              "default):\n");
    int c;

    for (c = 0; c < VIEW_COLUMNS_NR; c++) {
        const ViewColumn *col = &view_columns[c];

        g_auto(GStrv) words = g_strsplit(col->help, " ", -1);
        size_t at = g->len;
        int i;

        g_string_append_printf(g, "  %-8s %c %-7s%c", col->title,
                               col->key ? col->key : ' ', col->name,
                               col->shown ? ' ' : '*');
        for (i = 0; words[i]; i++) {
            if (g->len - at + 1 + strlen(words[i]) > 78) {
                g_string_append(g, "\n                     ");
                at = g->len - 21;
            }
            g_string_append_printf(g, " %s", words[i]);
        }
        g_string_append_c(g, '\n');
    }
    g_string_append_c(g, '\n');
    g_string_append(g, description_tail);
    g_string_append(g, examples);
    return g_string_free(g, false);
}

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
        { "collector", 0, 0, G_OPTION_ARG_FILENAME, &o->collector,
          "Attach to the collector on this socket (default: "
          COLLECTOR_DEFAULT_SOCKET " if it runs)", "SOCKET" },
        { "direct", 0, 0, G_OPTION_ARG_NONE, &o->direct,
          "Connect to the VMs directly, even if a collector runs", NULL },
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
          "Sort by this column (a name or key; default name)", "COLUMN" },
        { "reverse", 'r', 0, G_OPTION_ARG_NONE, &o->reverse,
          "Reverse the sort order", NULL },
        { "expand", 'e', 0, G_OPTION_ARG_NONE, &o->expand,
          "With --once or -b: print every VM's vCPUs", NULL },
        { "csv", 0, 0, G_OPTION_ARG_NONE, &o->csv,
          "With --once or -b: CSV rows (a title row first)", NULL },
        { "columns", 'o', 0, G_OPTION_ARG_STRING, &o->columns,
          "The columns after NAME, in order: state,rdy,...", "LIST" },
        { "filter", 0, 0, G_OPTION_ARG_STRING, &o->filter,
          "Only VMs whose name has this part (or matches a glob)",
          "PATTERN" },
        { "config", 0, 0, G_OPTION_ARG_FILENAME, &o->config,
          "Columns and sort saved here (default "
          "$XDG_CONFIG_HOME/qemu-oc/vmtop.conf)", "FILE" },
        { NULL },
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- a top for the VMs of a host");
    g_autoptr(GError) err = NULL;
    char *description = columns_description();
    bool found;
    double ms;
    int c;

    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, summary);
    g_option_context_set_description(ctx, description);
    g_free(description);
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
    if (o->collector && (o->direct || o->qmp_dirs || o->uris)) {
        return usage_error("%s", "--collector: the collector finds the "
                           "VMs (no --direct, --qmp-dir, --connect)");
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
    if (o->csv && (!o->batch || o->json || o->expand)) {
        return usage_error("%s", "--csv needs --once or --batch (and no "
                           "--json, --expand)");
    }
    if (!o->config) {
        o->config = view_layout_default_path();
    }
    view_layout_init(&o->layout);
    if (!view_layout_load(&o->layout, o->config, &found, &err)) {
        /* said, and left as it is: the defaults serve this run */
        o->config_message = g_strdup_printf("%s (the defaults serve; the "
                                            "file is left as it is)",
                                            err->message);
        g_clear_error(&err);
        if (o->batch) {
            fprintf(stderr, "vmtop: %s\n", o->config_message);
        }
    }
    if (o->columns && !view_layout_set_columns(&o->layout, o->columns,
                                               &err)) {
        return usage_error("--columns: %s (vmtop --help lists them)",
                           err->message);
    }
    if (o->sort) {
        c = view_column_lookup(o->sort);
        if (c < 0) {
            return usage_error("--sort: unknown column '%s' (vmtop --help "
                               "lists them)", o->sort);
        }
        o->layout.sort = c;
    }
    if (o->reverse) {
        o->layout.reverse = true;
    }
    return true;
}

/* Add the sources; false if none works */
static int64_t now_wall_ms(void)
{
    return g_get_real_time() / 1000;
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
static void wait_first_frame(VmtopSource *src, int64_t start_us,
                             int interval_ms, int64_t margin_us)
{
    int64_t t = start_us + (int64_t)interval_ms * 1000;
    int64_t end = t + margin_us;

    if (vmtop_source_is_collector(src)) {
        return;         /* its frame is there at once */
    }
    sleep_until(t);
    while (g_get_monotonic_time() < end && !vmtop_source_settled(src)) {
        g_usleep(MIN(READY_POLL_US, MAX(end - g_get_monotonic_time(), 1)));
    }
}

static void print_frame(VmtopSource *src, const Options *o, bool first)
{
    ViewFrame *f = view_frame_from(src, now_wall_ms());

    view_frame_filter(f, o->filter);
    view_frame_sort(f, &o->layout);
    if (o->csv) {
        view_frame_print_csv(f, stdout, &o->layout, first);
    } else if (o->json) {
        json_object *j = view_frame_to_json(f);

        printf("%s\n", json_object_to_json_string_ext(j,
                                                      JSON_C_TO_STRING_PLAIN));
        json_object_put(j);
    } else {
        view_frame_print(f, stdout, &o->layout, o->expand);
    }
    fflush(stdout);
    view_frame_free(f);
}

static int run_batch(VmtopSource *src, const Options *o)
{
    int64_t start = g_get_monotonic_time();
    int64_t margin = (int64_t)o->timeout_ms * 1000 + 200 * 1000;
    int64_t first;
    int i;

    wait_first_frame(src, start, o->interval_ms, margin);
    first = g_get_monotonic_time();
    for (i = 0; o->iterations < 0 || i < o->iterations; i++) {
        if (i) {
            sleep_until(first + (int64_t)i * o->interval_ms * 1000);
            if (!o->json && !o->csv) {
                printf("\n");
            }
        }
        print_frame(src, o, i == 0);
    }
    return 0;
}

/*
 * The collector if one runs (or --collector names one), else vmtop's own
 * workers; NULL if neither works (said on stderr)
 */
static VmtopSource *open_source(const Options *o)
{
    VmWorkerConfig cfg = vm_worker_default_config;
    Fleet *fleet;

    if (!o->direct && !o->qmp_dirs && !o->uris) {
        const char *path = o->collector ? o->collector
                                        : COLLECTOR_DEFAULT_SOCKET;
        g_autoptr(GError) err = NULL;
        CollectorClient *c = collector_client_new(path, o->timeout_ms,
                                                  &err);

        if (c) {
            return vmtop_source_collector(c, path);
        }
        if (o->collector) {
            fprintf(stderr, "vmtop: --collector: %s\n", err->message);
            return NULL;
        }
    }
    cfg.interval_ms = o->interval_ms;
    cfg.timeout_ms = o->timeout_ms;
    fleet = fleet_new(&cfg, &qmp_default_limits, NULL, NULL);
    if (!discovery_add_sources(fleet_discovery(fleet), o->qmp_dirs, o->uris,
                               "vmtop")) {
        fleet_free(fleet);
        return NULL;
    }
    fleet_start(fleet);
    return vmtop_source_direct(fleet);
}

static void options_clear(Options *o)
{
    g_free(o->collector);
    g_strfreev(o->qmp_dirs);
    g_strfreev(o->uris);
    g_free(o->sort);
    g_free(o->columns);
    g_free(o->filter);
    g_free(o->config);
    g_free(o->config_message);
}

int main(int argc, char **argv)
{
    Options o = {
        .interval = 2,
        .iterations = -1,
        .timeout_ms = 1000,
    };
    VmtopSource *src;
    int ret;

    setlocale(LC_CTYPE, "");        /* for ncursesw; numbers stay "C" */
    fd_limit_raise();               /* a socket per VM, direct */
    if (!parse_options(argc, argv, &o)) {
        options_clear(&o);
        return EXIT_USAGE;
    }
    if (!o.batch && !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "vmtop: standard output is not a terminal: "
                "use --batch or --once\n");
        options_clear(&o);
        return 1;
    }

    src = open_source(&o);
    if (!src) {
        options_clear(&o);
        return 1;
    }
    if (o.batch) {
        ret = run_batch(src, &o);
    } else {
        ViewCursesConfig vc = {
            .interval_ms = o.interval_ms,
            .layout = o.layout,
            .filter = o.filter,
            .config_path = o.config,
            .message = o.config_message,
        };
        ret = view_curses_run(src, &vc);
    }

    vmtop_source_free(src);
    /* (connections closed cleanly, unless a VM is stuck) */
    vm_worker_wait_all(o.timeout_ms);
    options_clear(&o);
    return ret;
}
