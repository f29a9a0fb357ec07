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

struct QemuStatm {
    gint ref;
    int pid;
    int fd;
};

static int statm_open_fd(int pid)
{
    char path[32];

    if (pid <= 0) {
        return -1;
    }
    g_snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* "SIZE RESIDENT ..." in pages, read from @fd at offset 0 */
static int64_t statm_read_mib(int fd)
{
    char text[128];
    unsigned long size, resident;
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

    if (n <= 0) {
        return -1;
    }
    text[n] = '\0';
    if (sscanf(text, "%lu %lu", &size, &resident) != 2) {
        return -1;
    }
    return (int64_t)resident * sysconf(_SC_PAGE_SIZE) >> 20;
}

int64_t qemu_memory_rss_mib(int pid)
{
    int fd = statm_open_fd(pid);
    int64_t mib;

    if (fd < 0) {
        return -1;
    }
    mib = statm_read_mib(fd);
    close(fd);
    return mib;
}

QemuStatm *qemu_statm_open(int pid)
{
    int fd = statm_open_fd(pid);
    QemuStatm *m;

    if (fd < 0) {
        return NULL;
    }
    m = g_new0(QemuStatm, 1);
    m->ref = 1;
    m->pid = pid;
    m->fd = fd;
    return m;
}

QemuStatm *qemu_statm_ref(QemuStatm *m)
{
    g_atomic_int_inc(&m->ref);
    return m;
}

void qemu_statm_unref(QemuStatm *m)
{
    if (m && g_atomic_int_dec_and_test(&m->ref)) {
        close(m->fd);
        g_free(m);
    }
}

int qemu_statm_pid(const QemuStatm *m)
{
    return m->pid;
}

int64_t qemu_statm_rss_mib(QemuStatm *m)
{
    return statm_read_mib(m->fd);
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
