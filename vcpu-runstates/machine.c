/*
 * qemu-oc: the machine properties of vCPU runstate accounting
 *
 * See include/vcpu-runstates/machine.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/host-utils.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qom/object.h"
#include "hw/boards.h"
#include "vcpu-runstates/machine.h"
#include "vcpu-runstates/vcpu-runstates.h"

#define RING_PAGES_DEFAULT 32
#define RING_PAGES_MAX 1024

bool vcpu_runstates_machine_exact(void)
{
    return current_machine->vcpu_runstates_exact;
}

uint32_t vcpu_runstates_machine_ring_pages(void)
{
    return current_machine->vcpu_runstates_ring_pages;
}

static bool prop_get_exact(Object *obj, Error **errp)
{
    return MACHINE(obj)->vcpu_runstates_exact;
}

static void prop_set_exact(Object *obj, bool value, Error **errp)
{
    MACHINE(obj)->vcpu_runstates_exact = value;
}

static void prop_get_ring(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    uint32_t pages = MACHINE(obj)->vcpu_runstates_ring_pages;

    visit_type_uint32(v, name, &pages, errp);
}

static void prop_set_ring(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    uint32_t pages;

    if (!visit_type_uint32(v, name, &pages, errp)) {
        return;
    }
    if (!pages || pages > RING_PAGES_MAX || !is_power_of_2(pages)) {
        error_setg(errp, "'%s' must be a power of 2 from 1 to %d", name,
                   RING_PAGES_MAX);
        return;
    }
    MACHINE(obj)->vcpu_runstates_ring_pages = pages;
}

void vcpu_runstates_machine_class_init(ObjectClass *oc)
{
    ObjectProperty *op;

    /* (a default is set on each new machine by its setter) */
    op = object_class_property_add_bool(oc, "vcpu-runstates-exact",
                                        prop_get_exact, prop_set_exact);
    object_property_set_default_bool(op, true);
    object_class_property_set_description(oc, "vcpu-runstates-exact",
        "Follow each vCPU thread's context switches for exact runstates "
        "(off: sample the host scheduler's counters)");
    op = object_class_property_add(oc, "x-vcpu-runstates-ring-pages",
                                   "uint32", prop_get_ring, prop_set_ring,
                                   NULL, NULL);
    object_property_set_default_uint(op, RING_PAGES_DEFAULT);
    object_class_property_set_description(oc, "x-vcpu-runstates-ring-pages",
        "Pages of each vCPU's context switch record ring (for tests)");
}
