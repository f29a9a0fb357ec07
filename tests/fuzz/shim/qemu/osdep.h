/*
 * Stand-in for QEMU's qemu/osdep.h when the fuzzer compiles our pure
 * files (balloon/stats-buffer.c, balloon/stats-requests.c) outside the
 * QEMU build: the standard headers and GLib they use (the one generated
 * QAPI header they need, scripts/fuzz.sh generates).
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef FUZZ_SHIM_QEMU_OSDEP_H
#define FUZZ_SHIM_QEMU_OSDEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <glib.h>
#include "qemu/typedefs.h"

#endif
