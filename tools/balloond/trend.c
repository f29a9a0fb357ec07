/*
 * qemu-oc-balloond: the recent past of one number, and how it rose
 *
 * See trend.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "trend.h"

void trend_add(Trend *t, int64_t ms, int64_t v, int64_t window_ms)
{
    unsigned i, keep = 0;

    for (i = 0; i < t->n; i++) {
        if (ms - t->s[i].ms < window_ms && t->n - i < TREND_SAMPLES) {
            t->s[keep++] = t->s[i];
        }
    }
    t->s[keep].ms = ms;
    t->s[keep].v = v;
    t->n = keep + 1;
}

/* The oldest of the lowest values kept */
static unsigned lowest(const Trend *t)
{
    unsigned i, low = 0;

    for (i = 1; i < t->n; i++) {
        if (t->s[i].v < t->s[low].v) {
            low = i;
        }
    }
    return low;
}

int64_t trend_rise(const Trend *t)
{
    return t->n ? t->s[t->n - 1].v - t->s[lowest(t)].v : 0;
}

double trend_rise_per_s(const Trend *t, int64_t min_ms)
{
    unsigned low;
    int64_t dt;

    if (!t->n) {
        return 0;
    }
    low = lowest(t);
    dt = t->s[t->n - 1].ms - t->s[low].ms;
    if (dt < min_ms || dt <= 0) {
        return 0;
    }
    return (t->s[t->n - 1].v - t->s[low].v) * 1000.0 / dt;
}
