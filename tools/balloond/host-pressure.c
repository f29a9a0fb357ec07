/*
 * qemu-oc-balloond: the host's memory state and pressure
 *
 * See host-pressure.h.  One watcher thread runs a GMainLoop on its own
 * context, with:
 *  - one inotify descriptor watching the directories of --host-meminfo
 *    and --host-psi (IN_CLOSE_WRITE and IN_MOVED_TO, matched by name): a
 *    file rewritten in place or renamed over is read again;
 *  - the real PSI trigger (/proc/pressure/memory opened read-write, a
 *    "some STALL WINDOW" trigger written to it): G_IO_PRI starts a stall
 *    (HostMemory.psi_stall), which ends once no event came for a window.
 *    When the kernel refuses the trigger (unprivileged, or a window it
 *    does not accept), avg10 alone is read every poll_ms; a kernel
 *    without PSI leaves only meminfo (both said once).
 * Every poll_ms (a timeout source) the sources are read again anyway
 * (meminfo changes without inotify events; a missed event costs at most
 * one period).  Stopping quits the loop from its own thread.
 * Nothing here decides pressure: policy_host_pressure() does.
 *
 * The callback runs in the watcher thread, without any lock held: once
 * at start with the initial state, then whenever the state differs from
 * the last one reported.  A file that cannot be read or parsed later
 * (caught mid-write) keeps the previous numbers, and says so once.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <glib-unix.h>

#include "host-pressure.h"

#define PROC_MEMINFO "/proc/meminfo"
#define PROC_PSI_MEMORY "/proc/pressure/memory"
#define DEFAULT_STALL_US 150000
#define DEFAULT_WINDOW_US 1000000
#define DEFAULT_POLL_MS 1000
#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR)
#define PSI_MAX_AVG10 100.0

typedef enum PsiMode {
    PSI_NONE,                   /* the kernel has no PSI */
    PSI_TRIGGER,                /* a trigger on /proc/pressure/memory */
    PSI_AVG10,                  /* avg10 of /proc/pressure/memory polled */
    PSI_FILE,                   /* --host-psi FILE */
} PsiMode;

/* A file given on the command line, watched through its directory */
typedef struct WatchedFile {
    char *path;
    char *dir, *base;
    int wd;                     /* -1: not watched, polled only */
    bool failing;               /* the last read failed (said once) */
} WatchedFile;

struct HostPressure {
    HostPressureFn *fn;
    void *opaque;
    uint64_t stall_us, window_us;
    int poll_ms;

    WatchedFile meminfo;        /* path /proc/meminfo: not watched */
    WatchedFile psi;            /* PSI_FILE only */
    PsiMode psi_mode;
    int psi_fd;                 /* PSI_TRIGGER: the trigger, else -1 */
    int64_t psi_event_us;       /* monotonic, the trigger's last event */
    bool psi_stall;             /* an event within the last window */

    int inotify_fd;             /* -1 if no file is watched */
    GMainContext *ctx;          /* the watcher thread's */
    GMainLoop *loop;
    GThread *thread;

    GMutex lock;                /* protects cur */
    HostMemory cur;             /* the latest state */
    HostMemory reported;        /* the state last given to fn (thread) */
};

bool host_pressure_parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (!g_ascii_isdigit(*s)) {
        return false;
    }
    for (; g_ascii_isdigit(*s); s++) {
        unsigned d = *s - '0';

        if (v > (G_MAXUINT64 - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

/* The value of meminfo line @key ("MemTotal:"), at a line's start */
static bool meminfo_value(const char *text, const char *key, uint64_t *kib)
{
    size_t len = strlen(key);
    const char *line;

    for (line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n') {
            line++;
        }
        if (strncmp(line, key, len)) {
            continue;
        }
        line += len;
        while (*line == ' ' || *line == '\t') {
            line++;
        }
        if (!host_pressure_parse_digits(&line, kib)) {
            return false;
        }
        while (*line == ' ' || *line == '\t') {
            line++;
        }
        /* "kB" (so a number cut short is not taken), and bytes fit too */
        return g_str_has_prefix(line, "kB") &&
               (line[2] == '\n' || line[2] == '\0') &&
               *kib <= G_MAXUINT64 / 1024;
    }
    return false;
}

bool host_pressure_parse_meminfo(const char *text, uint64_t *total_kib,
                                 uint64_t *available_kib)
{
    uint64_t total, avail;

    if (!text || !meminfo_value(text, "MemTotal:", &total) ||
        !meminfo_value(text, "MemAvailable:", &avail) || total == 0) {
        return false;
    }
    *total_kib = total;
    *available_kib = avail;
    return true;
}

/* A PSI percentage: digits, at most one dot, then a space or line end */
static bool parse_avg(const char *s, double *out)
{
    char buf[32];
    size_t n = 0;
    bool dot = false;
    double v;

    for (; g_ascii_isdigit(s[n]) || (s[n] == '.' && !dot); n++) {
        dot |= s[n] == '.';
        if (n + 1 >= sizeof(buf)) {
            return false;
        }
        buf[n] = s[n];
    }
    if (n == 0 || !g_ascii_isdigit(buf[0]) ||
        (s[n] != ' ' && s[n] != '\n' && s[n] != '\0')) {
        return false;
    }
    buf[n] = '\0';
    v = g_ascii_strtod(buf, NULL);
    if (!isfinite(v) || v < 0 || v > PSI_MAX_AVG10) {
        return false;
    }
    *out = v;
    return true;
}

bool host_pressure_parse_psi(const char *text, double *some_avg10)
{
    const char *line, *p;

    for (line = text; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n') {
            line++;
        }
        if (!g_str_has_prefix(line, "some ")) {
            continue;
        }
        for (p = line + 4; *p == ' '; ) {
            p++;
            if (g_str_has_prefix(p, "avg10=")) {
                return parse_avg(p + 6, some_avg10);
            }
            while (*p && *p != ' ' && *p != '\n') {
                p++;
            }
        }
        return false;
    }
    return false;
}

/* Read @path whole, into a string of its own */
static char *read_text(const char *path, GError **err)
{
    char *text;

    if (!g_file_get_contents(path, &text, NULL, err)) {
        return NULL;
    }
    return text;
}

static bool read_meminfo(const char *path, HostMemory *m, GError **err)
{
    g_autofree char *text = read_text(path, err);

    if (text && !host_pressure_parse_meminfo(text, &m->total_kib,
                                             &m->available_kib)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: no valid MemTotal and MemAvailable", path);
        return false;
    }
    return text != NULL;
}

bool host_pressure_read_psi(const char *path, double *avg10, GError **err)
{
    g_autofree char *text = read_text(path, err);

    if (text && !host_pressure_parse_psi(text, avg10)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "%s: no valid \"some avg10=\"", path);
        return false;
    }
    return text != NULL;
}

static void watched_init(WatchedFile *w, const char *path)
{
    w->path = g_strdup(path);
    w->dir = g_path_get_dirname(path);
    w->base = g_path_get_basename(path);
    w->wd = -1;
}

static void watched_clear(WatchedFile *w)
{
    g_free(w->path);
    g_free(w->dir);
    g_free(w->base);
}

/* Log a runtime read failure once per run of failures */
static void watched_note(WatchedFile *w, bool ok, GError *err)
{
    if (!ok && !w->failing) {
        g_message("host memory: %s; keeping the last values",
                  err->message);
    } else if (ok && w->failing) {
        g_message("host memory: %s is readable again", w->path);
    }
    w->failing = !ok;
}

static void watch_file(HostPressure *hp, WatchedFile *w)
{
    if (hp->inotify_fd < 0) {
        hp->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    }
    if (hp->inotify_fd >= 0) {
        w->wd = inotify_add_watch(hp->inotify_fd, w->dir, WATCH_EVENTS);
    }
    if (w->wd < 0) {
        g_message("host memory: cannot watch %s (%s): polling every %d ms",
                  w->dir, g_strerror(errno), hp->poll_ms);
    }
}

/* Arm the kernel's trigger; false (errno set) if it is refused */
static bool psi_trigger_open(HostPressure *hp)
{
    g_autofree char *trig = g_strdup_printf("some %" PRIu64 " %" PRIu64,
                                            hp->stall_us, hp->window_us);
    int fd = open(PROC_PSI_MEMORY, O_RDWR | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        return false;
    }
    if (write(fd, trig, strlen(trig) + 1) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return false;
    }
    hp->psi_fd = fd;
    return true;
}

/* The real PSI: a trigger if we may, else avg10, else nothing */
static void psi_real_setup(HostPressure *hp)
{
    g_autoptr(GError) err = NULL;
    int e;

    if (psi_trigger_open(hp)) {
        hp->psi_mode = PSI_TRIGGER;
        host_pressure_read_psi(PROC_PSI_MEMORY, &hp->cur.psi_some_avg10,
                               NULL);
        return;
    }
    e = errno;
    if (host_pressure_read_psi(PROC_PSI_MEMORY, &hp->cur.psi_some_avg10,
                               &err)) {
        g_message("host memory: no PSI trigger on %s (%s%s): reading "
                  "avg10 every %d ms instead", PROC_PSI_MEMORY,
                  g_strerror(e), hp->window_us % 2000000 ?
                  "; without CAP_SYS_RESOURCE the window must be a "
                  "multiple of 2 s" : "", hp->poll_ms);
        hp->psi_mode = PSI_AVG10;
    } else {
        g_message("host memory: no PSI (%s): MemAvailable only",
                  err->message);
        hp->psi_mode = PSI_NONE;
    }
}

/* Read every source again; the result in *@m */
static void refresh(HostPressure *hp, HostMemory *m)
{
    g_autoptr(GError) err = NULL;
    bool ok;

    ok = read_meminfo(hp->meminfo.path, m, &err);
    watched_note(&hp->meminfo, ok, err);
    g_clear_error(&err);
    switch (hp->psi_mode) {
    case PSI_FILE:
        ok = host_pressure_read_psi(hp->psi.path, &m->psi_some_avg10, &err);
        watched_note(&hp->psi, ok, err);
        break;
    case PSI_AVG10:
        host_pressure_read_psi(PROC_PSI_MEMORY, &m->psi_some_avg10, NULL);
        break;
    case PSI_TRIGGER:
        host_pressure_read_psi(PROC_PSI_MEMORY, &m->psi_some_avg10, NULL);
        if (hp->psi_stall && g_get_monotonic_time() - hp->psi_event_us >=
            (int64_t)hp->window_us) {
            hp->psi_stall = false;
        }
        break;
    case PSI_NONE:
        break;
    }
    m->psi_stall = hp->psi_stall;
}

static bool host_memory_equal(const HostMemory *a, const HostMemory *b)
{
    return a->total_kib == b->total_kib &&
           a->available_kib == b->available_kib &&
           a->psi_some_avg10 == b->psi_some_avg10 &&
           a->psi_stall == b->psi_stall;
}

/* Publish @m; call back if it differs from what was last reported */
static void publish(HostPressure *hp, const HostMemory *m, bool force)
{
    g_mutex_lock(&hp->lock);
    hp->cur = *m;
    g_mutex_unlock(&hp->lock);
    if (force || !host_memory_equal(m, &hp->reported)) {
        hp->reported = *m;
        hp->fn(hp->opaque, m);
    }
}

/* Drain inotify: true if one of our files changed */
static bool inotify_changed(HostPressure *hp)
{
    char buf[4096]
        __attribute__((aligned(__alignof__(struct inotify_event))));
    bool changed = false;
    ssize_t len;

    while ((len = read(hp->inotify_fd, buf, sizeof(buf))) > 0) {
        char *p;

        for (p = buf; p < buf + len; ) {
            const struct inotify_event *ev = (const void *)p;

            if (ev->mask & IN_Q_OVERFLOW) {
                changed = true;
            } else if (ev->len &&
                       ((ev->wd == hp->meminfo.wd &&
                         !strcmp(ev->name, hp->meminfo.base)) ||
                        (ev->wd == hp->psi.wd &&
                         !strcmp(ev->name, hp->psi.base)))) {
                changed = true;
            }
            p += sizeof(*ev) + ev->len;
        }
    }
    return changed;
}

/* Read the sources again and report what changed (watcher thread) */
static void reread(HostPressure *hp)
{
    HostMemory m;

    /* (what a source cannot give now keeps its last value) */
    g_mutex_lock(&hp->lock);
    m = hp->cur;
    g_mutex_unlock(&hp->lock);
    refresh(hp, &m);
    publish(hp, &m, false);
}

static gboolean on_inotify(gint fd G_GNUC_UNUSED,
                           GIOCondition cond G_GNUC_UNUSED, gpointer opaque)
{
    HostPressure *hp = opaque;

    if (inotify_changed(hp)) {
        reread(hp);
    }
    return G_SOURCE_CONTINUE;
}

/* The trigger fired, or broke (G_IO_ERR: fall back to avg10) */
static gboolean on_psi_trigger(gint fd G_GNUC_UNUSED, GIOCondition cond,
                               gpointer opaque)
{
    HostPressure *hp = opaque;

    if (cond & (G_IO_ERR | G_IO_NVAL)) {
        g_message("host memory: the PSI trigger failed: reading avg10 "
                  "every %d ms instead", hp->poll_ms);
        close(hp->psi_fd);
        hp->psi_fd = -1;
        hp->psi_mode = PSI_AVG10;
        reread(hp);
        return G_SOURCE_REMOVE;
    }
    hp->psi_stall = true;
    hp->psi_event_us = g_get_monotonic_time();
    reread(hp);
    return G_SOURCE_CONTINUE;
}

static gboolean on_period(gpointer opaque)
{
    reread(opaque);
    return G_SOURCE_CONTINUE;
}

static void add_source(HostPressure *hp, GSource *s, GSourceFunc fn)
{
    g_source_set_callback(s, fn, hp, NULL);
    g_source_attach(s, hp->ctx);
    g_source_unref(s);
}

static gpointer watcher_thread(gpointer opaque)
{
    HostPressure *hp = opaque;
    HostMemory m;

    g_main_context_push_thread_default(hp->ctx);
    g_mutex_lock(&hp->lock);
    m = hp->cur;
    g_mutex_unlock(&hp->lock);
    publish(hp, &m, true);
    if (hp->inotify_fd >= 0) {
        add_source(hp, g_unix_fd_source_new(hp->inotify_fd, G_IO_IN),
                   G_SOURCE_FUNC(on_inotify));
    }
    if (hp->psi_fd >= 0) {
        add_source(hp, g_unix_fd_source_new(hp->psi_fd, G_IO_PRI | G_IO_ERR),
                   G_SOURCE_FUNC(on_psi_trigger));
    }
    add_source(hp, g_timeout_source_new(hp->poll_ms), on_period);
    g_main_loop_run(hp->loop);
    g_main_context_pop_thread_default(hp->ctx);
    return NULL;
}

static void host_pressure_free(HostPressure *hp)
{
    if (hp->psi_fd >= 0) {
        close(hp->psi_fd);
    }
    if (hp->inotify_fd >= 0) {
        close(hp->inotify_fd);
    }
    if (hp->loop) {
        g_main_loop_unref(hp->loop);
        g_main_context_unref(hp->ctx);
    }
    watched_clear(&hp->meminfo);
    watched_clear(&hp->psi);
    g_mutex_clear(&hp->lock);
    g_free(hp);
}

static void config_init(HostPressure *hp, const HostPressureConfig *cfg)
{
    hp->stall_us = cfg->psi_stall_us ? cfg->psi_stall_us : DEFAULT_STALL_US;
    hp->window_us = cfg->psi_window_us ? cfg->psi_window_us
                                       : DEFAULT_WINDOW_US;
    hp->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : DEFAULT_POLL_MS;
    watched_init(&hp->meminfo, cfg->meminfo_path ? cfg->meminfo_path
                                                 : PROC_MEMINFO);
    watched_init(&hp->psi, cfg->psi_path ? cfg->psi_path : PROC_PSI_MEMORY);
}

/* Read the sources once, set PSI up and the watches */
static bool sources_init(HostPressure *hp, const HostPressureConfig *cfg,
                         GError **err)
{
    if (!read_meminfo(hp->meminfo.path, &hp->cur, err)) {
        return false;
    }
    if (cfg->meminfo_path) {
        watch_file(hp, &hp->meminfo);
    }
    if (cfg->psi_path) {
        if (!host_pressure_read_psi(hp->psi.path, &hp->cur.psi_some_avg10,
                                    err)) {
            return false;
        }
        hp->psi_mode = PSI_FILE;
        watch_file(hp, &hp->psi);
    } else {
        psi_real_setup(hp);
    }
    return true;
}

HostPressure *host_pressure_start(const HostPressureConfig *cfg,
                                  HostPressureFn *fn, void *opaque,
                                  GError **err)
{
    HostPressure *hp = g_new0(HostPressure, 1);

    hp->fn = fn;
    hp->opaque = opaque;
    hp->psi_fd = hp->inotify_fd = -1;
    g_mutex_init(&hp->lock);
    config_init(hp, cfg);
    hp->ctx = g_main_context_new();
    hp->loop = g_main_loop_new(hp->ctx, false);
    if (!sources_init(hp, cfg, err)) {
        host_pressure_free(hp);
        return NULL;
    }
    hp->thread = g_thread_new("host-pressure", watcher_thread, hp);
    return hp;
}

void host_pressure_get(HostPressure *hp, HostMemory *out)
{
    g_mutex_lock(&hp->lock);
    *out = hp->cur;
    g_mutex_unlock(&hp->lock);
}

/* In the watcher thread: whether or not the loop runs yet, it ends */
static gboolean quit_loop(gpointer opaque)
{
    HostPressure *hp = opaque;

    g_main_loop_quit(hp->loop);
    return G_SOURCE_REMOVE;
}

void host_pressure_stop(HostPressure *hp)
{
    if (!hp) {
        return;
    }
    /*
     * (an idle source: g_main_context_invoke() would run it here if the
     * watcher had not taken its context yet)
     */
    add_source(hp, g_idle_source_new(), quit_loop);
    g_thread_join(hp->thread);
    host_pressure_free(hp);
}
