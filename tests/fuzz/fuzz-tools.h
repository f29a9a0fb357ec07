/*
 * What the host tools' fuzz targets share: the invariant check and the
 * figures every snapshot must keep
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef FUZZ_TOOLS_H
#define FUZZ_TOOLS_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vm-snapshot.h"

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
                    __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

/*
 * A peer that said @data and closed its side: sv[0] to read from (the
 * caller's), sv[1] its end (close it after); the socket buffer holds the
 * targets' -max_len, so it is written at once
 */
static inline void fuzz_peer_said(const uint8_t *data, size_t size,
                                  int sv[2])
{
    size_t off = 0;
    ssize_t n;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    while (off < size) {
        n = write(sv[1], data + off, size - off);
        CHECK(n > 0);
        off += n;
    }
    shutdown(sv[1], SHUT_WR);
}

static inline bool fuzz_in_unit(double x)
{
    return x >= 0 && x <= 1.000000001;     /* (rounding) */
}

/* Every share of @s (VM states, vCPU states, ready) is within [0, 1] */
static inline void fuzz_check_figures(const VmSnapshot *s)
{
    double vm[VM_STATES_NR], v[VCPU_STATES_NR], r;
    unsigned i, j;

    if (vm_snapshot_vm_shares(s, vm)) {
        for (j = 0; j < VM_STATES_NR; j++) {
            CHECK(fuzz_in_unit(vm[j]));
        }
    }
    for (i = 0; s->has_runstates && i < s->cur.n_vcpus; i++) {
        if (vm_snapshot_vcpu_shares(s, i, v)) {
            for (j = 0; j < VCPU_STATES_NR; j++) {
                CHECK(fuzz_in_unit(v[j]));
            }
        }
    }
    if (vm_snapshot_ready(s, &r)) {
        CHECK(fuzz_in_unit(r));
    }
}

#endif
