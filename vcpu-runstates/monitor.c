/*
 * vCPU and VM runstates: QMP query-vcpu-runstates and
 * set-vcpu-runstates-period (qemu-oc)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vcpu-runstates.h"
#include "vcpu-runstates/vcpu-runstates.h"

VcpuRunstates *qmp_query_vcpu_runstates(Error **errp)
{
    return vcpu_runstates_snapshot();
}

void qmp_set_vcpu_runstates_period(int64_t period_ms, Error **errp)
{
    if (period_ms < VCPU_RUNSTATE_PERIOD_MIN_MS ||
        period_ms > VCPU_RUNSTATE_PERIOD_MAX_MS) {
        error_setg(errp, "'period-ms' must be between %d and %d",
                   VCPU_RUNSTATE_PERIOD_MIN_MS, VCPU_RUNSTATE_PERIOD_MAX_MS);
        return;
    }
    vcpu_runstates_set_period(period_ms);
}
