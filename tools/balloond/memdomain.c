/*
 * qemu-oc-balloond: memory domains (memory cgroups with a limit)
 *
 * See memdomain.h.  Every file is read whole with one bounded read loop
 * (read_small()): cgroup files are generated on each read, a few hundred
 * bytes, and a file larger than MEMDOMAIN_READ_MAX is refused rather
 * than cut, so a key at its end (v1's total_* lines) is never lost.
 * Discovery walks the cgroup path of the process upwards, string-wise,
 * and reads each level's limit files.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "host-pressure.h"
#include "memdomain.h"

struct MemDomain {
    char *dir;
    char *psi_path;             /* NULL: no PSI */
    MemDomainKind kind;
};

/* The files of each kind (v1 names first, then v2) */
#define V1_LIMIT "memory.limit_in_bytes"
#define V1_USAGE "memory.usage_in_bytes"
#define V1_OOM "memory.oom_control"
#define V1_EVENT_CONTROL "cgroup.event_control"
#define V2_MAX "memory.max"
#define V2_HIGH "memory.high"
#define V2_CURRENT "memory.current"
#define V2_EVENTS "memory.events"
#define V2_PRESSURE "memory.pressure"
#define V2_CONTROLLERS "cgroup.controllers"
#define STAT "memory.stat"

bool memdomain_parse_u64_or_max(const char *text, uint64_t *out)
{
    const char *p = text;
    uint64_t v;

    if (!text) {
        return false;
    }
    if (g_str_has_prefix(p, "max")) {
        v = UINT64_MAX;
        p += 3;
    } else if (!host_pressure_parse_digits(&p, &v)) {
        return false;
    }
    if (*p == '\n') {
        p++;
    }
    if (*p != '\0') {
        return false;
    }
    *out = v;
    return true;
}

bool memdomain_parse_keyed(const char *text, const char *key, uint64_t *out)
{
    size_t len = key ? strlen(key) : 0;
    const char *line, *p;
    uint64_t v;

    if (!text || !len) {
        return false;
    }
    for (line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n') {
            line++;
        }
        if (strncmp(line, key, len) || (line[len] != ' ' &&
                                         line[len] != '\t')) {
            continue;
        }
        for (p = line + len; *p == ' ' || *p == '\t'; p++) {
            continue;
        }
        if (!host_pressure_parse_digits(&p, &v) || (*p && *p != '\n')) {
            return false;
        }
        *out = v;
        return true;
    }
    return false;
}

int64_t memdomain_headroom(uint64_t limit, uint64_t usage,
                           uint64_t reclaimable)
{
    uint64_t room, over;

    if (limit == UINT64_MAX) {
        return INT64_MAX;
    }
    if (limit >= usage) {
        room = limit - usage;
        room = reclaimable > UINT64_MAX - room ? UINT64_MAX
                                                : room + reclaimable;
        return room > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)room;
    }
    over = usage - limit;
    if (reclaimable >= over) {
        room = reclaimable - over;
        return room > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)room;
    }
    over -= reclaimable;
    return over > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)over;
}

static void close_fd(int fd)
{
    if (fd >= 0) {
        close(fd);
    }
}

/* @path's text, at most MEMDOMAIN_READ_MAX bytes; NULL with @err */
static char *read_small(const char *path, GError **err)
{
    g_autofree char *buf = g_malloc(MEMDOMAIN_READ_MAX + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC), e;
    size_t len = 0;
    ssize_t n = -1;

    while (fd >= 0 && len <= MEMDOMAIN_READ_MAX) {
        n = read(fd, buf + len, MEMDOMAIN_READ_MAX + 1 - len);
        if (n > 0) {
            len += n;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    e = errno;
    close_fd(fd);
    if (n < 0) {
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
                    "%s: %s", path, g_strerror(e));
        return NULL;
    }
    if (len > MEMDOMAIN_READ_MAX) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: larger than %d bytes", path, MEMDOMAIN_READ_MAX);
        return NULL;
    }
    buf[len] = '\0';
    return g_steal_pointer(&buf);
}

/* @dir/@name, a number or "max" */
static bool read_u64(const char *dir, const char *name, uint64_t *out,
                     GError **err)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *text = read_small(path, err);

    if (text && !memdomain_parse_u64_or_max(text, out)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: not a number nor \"max\"", path);
        return false;
    }
    return text != NULL;
}

/* The keys @k1 (and @k2, if not NULL: the sum) of @dir/@name */
static bool read_keyed(const char *dir, const char *name, const char *k1,
                       const char *k2, uint64_t *out, GError **err)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *text = read_small(path, err);
    const char *bad = NULL;
    uint64_t v1, v2 = 0;

    if (!text) {
        return false;
    }
    if (!memdomain_parse_keyed(text, k1, &v1)) {
        bad = k1;
    } else if (k2 && !memdomain_parse_keyed(text, k2, &v2)) {
        bad = k2;
    }
    if (bad) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: no valid \"%s N\" line", path, bad);
        return false;
    }
    *out = v1 > UINT64_MAX - v2 ? UINT64_MAX : v1 + v2;
    return true;
}

static bool has_file(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    return g_file_test(path, G_FILE_TEST_IS_REGULAR);
}

MemDomain *memdomain_open(const char *dir, const char *psi_path,
                          GError **err)
{
    g_autofree char *v2_psi = NULL;
    MemDomain *d;
    MemDomainKind kind;

    if (has_file(dir, V1_LIMIT)) {
        kind = MEMDOMAIN_V1;
    } else if (has_file(dir, V2_MAX)) {
        kind = MEMDOMAIN_V2;
        v2_psi = g_build_filename(dir, V2_PRESSURE, NULL);
        if (!psi_path && g_file_test(v2_psi, G_FILE_TEST_IS_REGULAR)) {
            psi_path = v2_psi;
        }
    } else {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                    "%s: not a memory cgroup (neither %s nor %s)", dir,
                    V1_LIMIT, V2_MAX);
        return NULL;
    }
    d = g_new0(MemDomain, 1);
    d->dir = g_strdup(dir);
    d->psi_path = g_strdup(psi_path);
    d->kind = kind;
    return d;
}

const char *memdomain_dir(const MemDomain *d)
{
    return d->dir;
}

MemDomainKind memdomain_kind(const MemDomain *d)
{
    return d->kind;
}

const char *memdomain_psi_path(const MemDomain *d)
{
    return d->psi_path;
}

/* A v1 limit of 2^62 or more is the kernel's "none" */
static uint64_t v1_limit(uint64_t limit)
{
    return limit >= MEMDOMAIN_V1_NO_LIMIT ? UINT64_MAX : limit;
}

static bool read_v1(const MemDomain *d, MemDomainState *s, GError **err)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;

    if (!read_u64(d->dir, V1_LIMIT, &s->limit, err) ||
        !read_u64(d->dir, V1_USAGE, &s->usage, err) ||
        !read_keyed(d->dir, STAT, "total_inactive_file",
                    "total_active_file", &s->reclaimable, err)) {
        return false;
    }
    s->limit = s->hard_limit = v1_limit(s->limit);
    /* "oom_kill N" came in Linux 4.13: 0 before */
    path = g_build_filename(d->dir, V1_OOM, NULL);
    text = read_small(path, err);
    if (!text) {
        return false;
    }
    s->oom_kills = 0;
    memdomain_parse_keyed(text, "oom_kill", &s->oom_kills);
    return true;
}

static bool read_v2(const MemDomain *d, MemDomainState *s, GError **err)
{
    uint64_t high;

    if (!read_u64(d->dir, V2_MAX, &s->hard_limit, err) ||
        !read_u64(d->dir, V2_HIGH, &high, err) ||
        !read_u64(d->dir, V2_CURRENT, &s->usage, err) ||
        !read_keyed(d->dir, STAT, "inactive_file", "active_file",
                    &s->reclaimable, err) ||
        !read_keyed(d->dir, V2_EVENTS, "oom_kill", NULL, &s->oom_kills,
                    err)) {
        return false;
    }
    s->limit = MIN(s->hard_limit, high);
    return true;
}

bool memdomain_read(MemDomain *d, MemDomainState *out, GError **err)
{
    MemDomainState s = { .psi_some_avg10 = -1 };

    if (!(d->kind == MEMDOMAIN_V1 ? read_v1(d, &s, err)
                                  : read_v2(d, &s, err))) {
        return false;
    }
    if (d->psi_path &&
        !host_pressure_read_psi(d->psi_path, &s.psi_some_avg10, err)) {
        return false;
    }
    s.headroom = memdomain_headroom(s.limit, s.usage, s.reclaimable);
    *out = s;
    return true;
}

void memdomain_free(MemDomain *d)
{
    if (d) {
        g_free(d->dir);
        g_free(d->psi_path);
        g_free(d);
    }
}

/* ---- discovery ---- */

/* The path of a /proc/PID/cgroup line: "/..." without ".." in it */
static bool cgroup_path_ok(const char *path)
{
    return path[0] == '/' && !strstr(path, "/../") &&
           !g_str_has_suffix(path, "/..");
}

/* Whether the comma- or space-separated @list has @word */
static bool list_has(const char *list, const char *seps, const char *word)
{
    g_auto(GStrv) words = g_strsplit_set(list, seps, -1);

    return g_strv_contains((const char *const *)words, word);
}

/*
 * The cgroup paths of /proc/PID/cgroup @text: the v1 memory hierarchy's
 * in *@v1, the v2 hierarchy's ("0::") in *@v2; each NULL if absent
 */
static void parse_proc_cgroup(const char *text, char **v1, char **v2)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    unsigned i;

    *v1 = *v2 = NULL;
    for (i = 0; lines[i]; i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], ":", 3);

        if (g_strv_length(f) != 3) {
            continue;
        }
        if (!strcmp(f[0], "0") && !f[1][0] && !*v2) {
            *v2 = g_strdup(f[2]);
        } else if (strcmp(f[0], "0") && list_has(f[1], ",", "memory") &&
                   !*v1) {
            *v1 = g_strdup(f[2]);
        }
    }
}

/* Whether the v2 hierarchy at @root has the memory controller */
static bool v2_has_memory(const char *root)
{
    g_autofree char *path = g_build_filename(root, V2_CONTROLLERS, NULL);
    g_autofree char *text = read_small(path, NULL);

    return text && list_has(text, " \t\n", "memory");
}

/* Whether the cgroup @dir has a memory limit; false with @err too */
static bool dir_limited(const char *dir, MemDomainKind kind, bool *limited,
                        GError **err)
{
    g_autoptr(GError) local = NULL;
    uint64_t max, high;

    if (kind == MEMDOMAIN_V1) {
        if (!read_u64(dir, V1_LIMIT, &max, err)) {
            return false;
        }
        *limited = v1_limit(max) != UINT64_MAX;
        return true;
    }
    if (!read_u64(dir, V2_MAX, &max, &local)) {
        /* without memory.max, the parent does not enable the controller */
        if (!g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_propagate_error(err, g_steal_pointer(&local));
            return false;
        }
        *limited = false;
        return true;
    }
    if (!read_u64(dir, V2_HIGH, &high, err)) {
        return false;
    }
    *limited = max != UINT64_MAX || high != UINT64_MAX;
    return true;
}

/* The limited cgroups from @path (under @root) up, the root excluded */
static GPtrArray *limited_ancestors(const char *root, const char *path,
                                    MemDomainKind kind, GError **err)
{
    g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *cur = g_strdup(path);
    g_autofree char *first = g_build_filename(root, path, NULL);

    if (!g_file_test(first, G_FILE_TEST_IS_DIR)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                    "%s: no such cgroup directory", first);
        return NULL;
    }
    while (strcmp(cur, "/")) {
        g_autofree char *dir = g_build_filename(root, cur, NULL);
        char *up = g_path_get_dirname(cur);
        bool limited;

        g_free(cur);
        cur = up;
        if (!dir_limited(dir, kind, &limited, err)) {
            return NULL;
        }
        if (limited) {
            g_ptr_array_add(dirs, g_steal_pointer(&dir));
        }
    }
    return g_steal_pointer(&dirs);
}

/* The process's memory.pressure under @unified_root, or NULL */
static char *find_psi(const char *unified_root, const char *v2_path)
{
    g_autofree char *path = NULL;

    if (!unified_root || !v2_path || !cgroup_path_ok(v2_path)) {
        return NULL;
    }
    path = g_build_filename(unified_root, v2_path, V2_PRESSURE, NULL);
    return g_file_test(path, G_FILE_TEST_IS_REGULAR) ?
           g_steal_pointer(&path) : NULL;
}

GPtrArray *memdomain_find(pid_t pid, const char *proc_root,
                          const char *v1_root, const char *v2_root,
                          const char *unified_root, char **psi_path,
                          GError **err)
{
    g_autofree char *file = g_strdup_printf("%s/%ld/cgroup", proc_root,
                                            (long)pid);
    g_autofree char *text = NULL;
    g_autofree char *v1 = NULL;
    g_autofree char *v2 = NULL;
    GPtrArray *dirs;
    g_autoptr(GError) local = NULL;

    if (psi_path) {
        *psi_path = NULL;
    }
    text = read_small(file, &local);
    if (!text) {
        g_set_error(err, G_FILE_ERROR, local->code, "%s %ld (%s)",
                    local->code == G_FILE_ERROR_NOENT ? "no process"
                    : "cannot read the cgroups of process", (long)pid,
                    local->message);
        return NULL;
    }
    parse_proc_cgroup(text, &v1, &v2);
    if (v1 || (v2 && v2_has_memory(v2_root))) {
        const char *path = v1 ? v1 : v2;

        if (!cgroup_path_ok(path)) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "%s: cgroup path \"%s\" is not under the "
                        "hierarchy's root (another cgroup namespace?)",
                        file, path);
            return NULL;
        }
        dirs = limited_ancestors(v1 ? v1_root : v2_root, path,
                                 v1 ? MEMDOMAIN_V1 : MEMDOMAIN_V2, err);
    } else {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT,
                    "%s: no memory cgroup (no v1 memory line, and no "
                    "\"0::\" line with %s/%s listing memory)", file,
                    v2_root, V2_CONTROLLERS);
        return NULL;
    }
    if (dirs && psi_path) {
        *psi_path = find_psi(unified_root, v2);
    }
    return dirs;
}

/* ---- notification ---- */

int memdomain_usage_threshold_fd(MemDomain *d, uint64_t threshold,
                                 GError **err)
{
    g_autofree char *usage = g_build_filename(d->dir, V1_USAGE, NULL);
    g_autofree char *control = g_build_filename(d->dir, V1_EVENT_CONTROL,
                                                NULL);
    g_autofree char *line = NULL;
    const char *failed = "eventfd";
    int efd, ufd = -1, cfd = -1, e;
    bool ok = false;

    if (d->kind != MEMDOMAIN_V1) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOSYS,
                    "%s: cgroup v2 has no usage thresholds (watch %s)",
                    d->dir, V2_EVENTS);
        return -1;
    }
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd >= 0) {
        failed = usage;
        ufd = open(usage, O_RDONLY | O_CLOEXEC);
    }
    if (ufd >= 0) {
        failed = control;
        cfd = open(control, O_WRONLY | O_CLOEXEC);
    }
    if (cfd >= 0) {
        line = g_strdup_printf("%d %d %" PRIu64, efd, ufd, threshold);
        ok = write(cfd, line, strlen(line)) >= 0;
    }
    e = errno;
    /* registered, the kernel holds the eventfd; the others can go */
    close_fd(ufd);
    close_fd(cfd);
    if (!ok) {
        close_fd(efd);
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
                    "%s: cannot arm a usage threshold of %" PRIu64
                    " bytes: %s", failed, threshold, g_strerror(e));
        return -1;
    }
    return efd;
}

int memdomain_events_watch_fd(MemDomain *d, GError **err)
{
    g_autofree char *events = g_build_filename(d->dir, V2_EVENTS, NULL);
    int fd, e;

    if (d->kind != MEMDOMAIN_V2) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_NOSYS,
                    "%s: cgroup v1 has no %s (use a usage threshold)",
                    d->dir, V2_EVENTS);
        return -1;
    }
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, events, IN_MODIFY) < 0) {
        e = errno;
        close_fd(fd);
        g_set_error(err, G_FILE_ERROR, g_file_error_from_errno(e),
                    "%s: cannot watch: %s", events, g_strerror(e));
        return -1;
    }
    return fd;
}
