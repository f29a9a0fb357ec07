/*
 * qemu-oc-balloond: its command line, parsed with GOption
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <math.h>
#include <string.h>

#include "balloond-options.h"

bool balloond_parse_options(int argc, char **argv, BalloondOptions *o)
{
    GOptionEntry entries[] = {
        { "qmp-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->qmp_dirs,
          "every QMP socket in DIR is a VM (repeatable)", "DIR" },
        { "connect", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->uris,
          "the domains of a libvirt connection (repeatable)", "URI" },
        { "cgroup", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &o->cgroups,
          "watch this memory cgroup as a memory domain (repeatable; the "
          "VMs' own are found from their QEMU processes)", "PATH" },
        { "domain-poll-ms", 0, 0, G_OPTION_ARG_INT, &o->domain_poll_ms,
          "read every memory domain at least this often (default 100)",
          "MS" },
        { "no-protect", 0, 0, G_OPTION_ARG_NONE, &o->no_protect,
          "do not lock the daemon's memory nor shield it from the OOM "
          "killer", NULL },
        { "config", 0, 0, G_OPTION_ARG_FILENAME, &o->config,
          "policy configuration (INI: [policy], [vm NAME])", "FILE" },
        { "dry-run", 0, 0, G_OPTION_ARG_NONE, &o->dry_run,
          "log what would be done, change nothing", NULL },
        { "host-meminfo", 0, 0, G_OPTION_ARG_FILENAME, &o->meminfo,
          "host memory from FILE (/proc/meminfo format)", "FILE" },
        { "host-psi", 0, 0, G_OPTION_ARG_FILENAME, &o->psi,
          "host memory pressure from FILE (/proc/pressure/memory format)",
          "FILE" },
        { "metrics", 0, 0, G_OPTION_ARG_STRING, &o->metrics,
          "serve Prometheus metrics on ADDR:PORT, [IPV6]:PORT or :PORT "
          "(all)", "ADDR:PORT" },
        { "log-json", 0, 0, G_OPTION_ARG_FILENAME, &o->log_json,
          "also log decisions as JSON lines to FILE", "FILE" },
        { "state-file", 0, 0, G_OPTION_ARG_FILENAME, &o->state_file,
          "the VMs the brake holds paused, for the next daemon to resume "
          "if this one dies", "FILE" },
        { "serve", 0, 0, G_OPTION_ARG_FILENAME, &o->serve,
          "be the host's collector: serve every VM's snapshot to readers "
          "(vmtop) on this unix socket", "SOCKET" },
        { "serve-group", 0, 0, G_OPTION_ARG_STRING, &o->serve_group,
          "readers in this group may attach too (default: root only)",
          "GROUP" },
        { "policy", 0, 0, G_OPTION_ARG_STRING, &o->policy,
          "on (default), or off: change no VM, only collect, serve and "
          "export", "on|off" },
        { "interval", 0, 0, G_OPTION_ARG_DOUBLE, &o->interval,
          "ask each VM for fresh statistics every S seconds (default 2)",
          "S" },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &o->timeout_ms,
          "per request, ms (default 1000)", "MS" },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- event-driven balloon policy for many VMs");
    g_autoptr(GError) err = NULL;

    o->interval = 2;
    o->timeout_ms = 1000;
    o->domain_poll_ms = 100;
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(ctx,
        "Decisions are made when a VM's fresh statistics arrive and when the "
        "host's memory pressure\nchanges; see docs/balloond.md.\n");
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        g_printerr("qemu-oc-balloond: %s\n", err->message);
        return false;
    }
    if (argc > 1 || !isfinite(o->interval) || o->interval <= 0 ||
        o->interval > 3600 || o->timeout_ms <= 0 ||
        o->domain_poll_ms < 10 || o->domain_poll_ms > 60000 ||
        (o->policy && strcmp(o->policy, "on") && strcmp(o->policy, "off")) ||
        (o->serve_group && !o->serve)) {
        g_printerr("qemu-oc-balloond: bad arguments (see --help)\n");
        return false;
    }
    return true;
}

void balloond_options_clear(BalloondOptions *o)
{
    g_strfreev(o->qmp_dirs);
    g_strfreev(o->uris);
    g_strfreev(o->cgroups);
    g_free(o->config);
    g_free(o->meminfo);
    g_free(o->psi);
    g_free(o->metrics);
    g_free(o->log_json);
    g_free(o->state_file);
    g_free(o->serve);
    g_free(o->serve_group);
    g_free(o->policy);
    memset(o, 0, sizeof(*o));
}
