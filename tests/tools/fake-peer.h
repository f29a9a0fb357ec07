/*
 * qemu-oc host tools tests: a fake QMP peer (tests/tools/fake_qmp.py)
 * in a process of its own, on a socket in a new temporary directory
 *
 * The fake server is found at $FAKE_QMP if set, else at FAKE_QMP_PATH
 * if defined at compile time (-DFAKE_QMP_PATH='"/path/fake_qmp.py"'),
 * else next to the including source file as named by __FILE__.  It
 * runs with /usr/bin/python3; starting it waits (at most 10 s, for
 * liveness only) until its socket is there.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_TOOLS_FAKE_PEER_H
#define TESTS_TOOLS_FAKE_PEER_H

#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

#define PYTHON "/usr/bin/python3"

typedef struct Fake {
    char *dir;
    char *sock;
    GPid pid;
} Fake;

static inline char *fake_script(void)
{
    g_autofree char *dir = NULL;
    const char *env = g_getenv("FAKE_QMP");

    if (env) {
        return g_strdup(env);
    }
#ifdef FAKE_QMP_PATH
    return g_strdup(FAKE_QMP_PATH);
#else
    dir = g_path_get_dirname(__FILE__);
    return g_build_filename(dir, "fake_qmp.py", NULL);
#endif
}

/* Start fake_qmp.py @behaviour (NULL-terminated extra arguments follow) */
static inline Fake *G_GNUC_NULL_TERMINATED
fake_start(const char *behaviour, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) err = NULL;
    Fake *f = g_new0(Fake, 1);
    int64_t deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    const char *arg;
    va_list ap;

    f->dir = g_dir_make_tmp("test-qmp-XXXXXX", &err);
    g_assert_no_error(err);
    f->sock = g_build_filename(f->dir, "qmp.sock", NULL);

    g_ptr_array_add(argv, g_strdup(PYTHON));
    g_ptr_array_add(argv, fake_script());
    g_ptr_array_add(argv, g_strdup(f->sock));
    g_ptr_array_add(argv, g_strdup(behaviour));
    va_start(ap, behaviour);
    while ((arg = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, g_strdup(arg));
    }
    va_end(ap);
    g_ptr_array_add(argv, NULL);

    g_spawn_async(NULL, (char **)argv->pdata, NULL,
                  G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &f->pid, &err);
    g_assert_no_error(err);

    /* The server renames its socket into place once it listens */
    while (!g_file_test(f->sock, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(waitpid(f->pid, NULL, WNOHANG), ==, 0);
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10 * 1000);
    }
    return f;
}

/*
 * Start fake_fleet.py serving @n VMs in @dir (NULL-terminated extra
 * arguments follow); returns once it said it is ready
 */
static inline GPid G_GNUC_NULL_TERMINATED
fake_fleet_start(const char *dir, unsigned n, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *script = fake_script();
    g_autofree char *here = g_path_get_dirname(script);
    g_autoptr(GError) err = NULL;
    char buf[64] = "";
    const char *arg;
    size_t len;
    ssize_t got;
    va_list ap;
    GPid pid;
    int out;

    g_ptr_array_add(argv, g_strdup(PYTHON));
    g_ptr_array_add(argv, g_build_filename(here, "fake_fleet.py", NULL));
    g_ptr_array_add(argv, g_strdup(dir));
    g_ptr_array_add(argv, g_strdup_printf("%u", n));
    va_start(ap, n);
    while ((arg = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, g_strdup(arg));
    }
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    g_spawn_async_with_pipes(NULL, (char **)argv->pdata, NULL,
                             G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid,
                             NULL, &out, NULL, &err);
    g_assert_no_error(err);
    /*
     * "ready N\n", to its end: an unbuffered Python (PYTHONUNBUFFERED)
     * writes the newline apart, and would die of a broken pipe if it
     * were closed between the two
     */
    for (len = 0; !memchr(buf, '\n', len); len += got) {
        g_assert_cmpuint(len, <, sizeof(buf) - 1);
        got = read(out, buf + len, sizeof(buf) - 1 - len);
        g_assert_cmpint(got, >, 0);
    }
    g_assert_true(g_str_has_prefix(buf, "ready"));
    close(out);
    return pid;
}

static inline void fake_stop(Fake *f)
{
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    g_spawn_close_pid(f->pid);
    unlink(f->sock);
    rmdir(f->dir);
    g_free(f->sock);
    g_free(f->dir);
    g_free(f);
}

#endif
