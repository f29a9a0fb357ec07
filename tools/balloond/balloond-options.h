/*
 * qemu-oc-balloond: its command line
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_OPTIONS_H
#define BALLOOND_OPTIONS_H

#include <stdbool.h>
#include <glib.h>

typedef struct BalloondOptions {
    char **qmp_dirs, **uris, **cgroups;
    int domain_poll_ms;
    gboolean no_protect;
    char *config, *meminfo, *psi, *metrics, *log_json, *state_file;
    char *serve, *serve_group, *policy;
    gboolean dry_run;
    double interval;
    int timeout_ms;
} BalloondOptions;

/* Parse @argv into @o (defaults first); false after saying why */
bool balloond_parse_options(int argc, char **argv, BalloondOptions *o);
/* Free what parsing took */
void balloond_options_clear(BalloondOptions *o);

#endif
