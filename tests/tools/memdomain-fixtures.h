/*
 * qemu-oc host tools: helpers of the memory domain tests
 * (test-balloond-memdomain.c, test-balloond-memdomain-cgroup.c)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_TOOLS_MEMDOMAIN_FIXTURES_H
#define TESTS_TOOLS_MEMDOMAIN_FIXTURES_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "memdomain.h"

#define MIB (1024 * 1024ULL)
/* the kernel's v1 "no limit": 2^63 rounded down to a 4 KiB page */
#define V1_NONE "9223372036854771712\n"

/* Write @text to the cgroup file @path (in place: no temporary file) */
static inline bool write_cgroup_file(const char *path, const char *text,
                              GError **err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : write(fd, text, strlen(text));
    int e = errno;

    if (fd >= 0) {
        close(fd);
    }
    if (n != (ssize_t)strlen(text)) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
                    "%s: cannot write \"%s\": %s", path, text,
                    g_strerror(e));
        return false;
    }
    return true;
}

static inline MemDomain *open_ok(const char *dir, const char *psi,
                          MemDomainKind kind)
{
    g_autoptr(GError) err = NULL;
    MemDomain *d = memdomain_open(dir, psi, &err);

    g_assert_no_error(err);
    g_assert_nonnull(d);
    g_assert_cmpstr(memdomain_dir(d), ==, dir);
    g_assert_cmpint(memdomain_kind(d), ==, kind);
    return d;
}

static inline void read_ok(MemDomain *d, MemDomainState *st)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(memdomain_read(d, st, &err));
    g_assert_no_error(err);
}

/* Wait for POLLIN on @fd; false after @ms */
static inline bool wait_readable(int fd, int ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int64_t end = g_get_monotonic_time() + ms * 1000LL;
    int r;

    do {
        int64_t left = end - g_get_monotonic_time();

        r = poll(&pfd, 1, left > 0 ? (int)((left + 999) / 1000) : 0);
    } while (r < 0 && errno == EINTR);
    return r == 1 && (pfd.revents & POLLIN);
}

#endif
