/*
 * qemu-oc-balloond: the memory the host holds for a QEMU process
 *
 * See qemu-memory.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host-pressure.h"
#include "qemu-memory.h"

/* A guest RAM mapping is larger than this (and writable, not executable) */
#define GUEST_RAM_MIN_BYTES (64ull << 20)

int64_t qemu_memory_rss_mib(int pid)
{
    char path[32], text[128];
    unsigned long size, resident;
    ssize_t n;
    int fd;

    /* (three system calls: read for every VM, often) */
    g_snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        return -1;
    }
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0) {
        return -1;
    }
    text[n] = '\0';
    if (sscanf(text, "%lu %lu", &size, &resident) != 2) {
        return -1;
    }
    return (int64_t)resident * sysconf(_SC_PAGE_SIZE) >> 20;
}

/* A mapping's header: "START-END PERMS ..."; whether it is guest RAM */
static bool parse_header(const char *line, bool *guest)
{
    unsigned long long start, end;
    char perms[5];

    if (sscanf(line, "%llx-%llx %4s", &start, &end, perms) != 3 ||
        end < start) {
        return false;
    }
    *guest = end - start > GUEST_RAM_MIN_BYTES && perms[0] == 'r' &&
             perms[1] == 'w' && perms[2] != 'x';
    return true;
}

bool qemu_memory_parse_smaps(const char *text, uint64_t *rss_kib,
                             uint64_t *guest_kib)
{
    g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
    bool guest = false, any = false;
    unsigned i;

    *rss_kib = *guest_kib = 0;
    for (i = 0; lines[i]; i++) {
        const char *p = lines[i];
        uint64_t kib;

        if (g_str_has_prefix(p, "Rss:")) {
            p += strlen("Rss:");
            p += strspn(p, " \t");
            if (!host_pressure_parse_digits(&p, &kib) ||
                kib > G_MAXUINT64 / 2 - *rss_kib) {
                return false;
            }
            *rss_kib += kib;
            *guest_kib += guest ? kib : 0;
            any = true;
        } else if (g_ascii_isxdigit(*p)) {
            bool g;

            if (parse_header(p, &g)) {
                guest = g;
            }
        }
    }
    return any;
}

bool qemu_memory_own_mib(int pid, int64_t *own_mib, GError **err)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/smaps", pid);
    g_autofree char *text = NULL;
    uint64_t rss, guest;

    if (!g_file_get_contents(path, &text, NULL, err)) {
        return false;
    }
    if (!qemu_memory_parse_smaps(text, &rss, &guest) || !guest) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: no guest RAM mapping (writable, not executable, "
                    "over 64 MiB) found", path);
        return false;
    }
    *own_mib = (int64_t)((rss - guest) >> 10);
    return true;
}
