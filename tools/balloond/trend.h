/*
 * qemu-oc-balloond: the recent past of one number, and how it rose
 *
 * A few dozen timestamped values, the last window_ms of them: a guest's
 * used memory (its demand), a QEMU process's resident memory (a guest
 * allocating, seen from the host), a domain's headroom (negated: how
 * fast it falls).  Pure and small: no allocation, no clock.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef BALLOOND_TREND_H
#define BALLOOND_TREND_H

#include <stdint.h>

#define TREND_SAMPLES 64

typedef struct Trend {
    struct {
        int64_t ms;
        int64_t v;
    } s[TREND_SAMPLES];
    unsigned n;
} Trend;

/*
 * Add @v at @ms (not before the last one added) and forget what is
 * @window_ms older, or beyond TREND_SAMPLES
 */
void trend_add(Trend *t, int64_t ms, int64_t v, int64_t window_ms);

/* How far the latest value is above the lowest one kept (>= 0) */
int64_t trend_rise(const Trend *t);

/*
 * How fast it rose from the lowest value kept to the latest, per
 * second (>= 0; 0 if the lowest is under @min_ms old)
 */
double trend_rise_per_s(const Trend *t, int64_t min_ms);

#endif
