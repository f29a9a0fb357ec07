/*
 * KVM PV spinlocks and PV yield on by default for SMP guests (qemu-oc)
 *
 * A guest kernel uses PV qspinlocks (halt and kick instead of spinning on
 * a preempted lock holder) when it sees KVM_FEATURE_PV_UNHALT, and
 * directed yield to preempted vCPUs when it sees KVM_FEATURE_PV_SCHED_YIELD
 * together with KVM_FEATURE_STEAL_TIME.  Upstream leaves the first two
 * off for named CPU models.  Machine property "kvm-pv":
 *   auto (default): on machine types that opt in (the qemu-oc ones, which
 *         "pc" and "q35" name), guests with more than one possible vCPU
 *         get the three features if the host KVM has them, unless the
 *         dedicated-CPU hint (kvm-hint-dedicated) is set; older machine
 *         types keep upstream's CPUID.
 *   on:   every vCPU gets them, on any machine type; a host (or TCG) that
 *         cannot provide one stops the VM from starting, naming it.
 *   off:  the guest sees none of them.
 * Per-feature CPU properties the user sets explicitly always win.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-common.h"
#include "qapi/visitor.h"
#include "cpu.h"
#include "hw/boards.h"
#include "hw/i386/x86.h"
#include "sysemu/kvm.h"
#include "vcpu-runstates/vcpu-runstates.h"
#include "qemu/module.h"
#include "standard-headers/asm-x86/kvm_para.h"
#include "kvm-pv-default.h"

static const struct {
    uint32_t bit;
    const char *prop;
} pv_features[] = {
    { KVM_FEATURE_PV_UNHALT, "kvm-pv-unhalt" },
    { KVM_FEATURE_PV_SCHED_YIELD, "kvm-pv-sched-yield" },
    { KVM_FEATURE_STEAL_TIME, "kvm-steal-time" },
};

static void kvm_pv_get(Object *obj, Visitor *v, const char *name,
                       void *opaque, Error **errp)
{
    OnOffAuto mode = X86_MACHINE(obj)->kvm_pv;

    visit_type_OnOffAuto(v, name, &mode, errp);
}

static void kvm_pv_set(Object *obj, Visitor *v, const char *name,
                       void *opaque, Error **errp)
{
    OnOffAuto mode;

    if (visit_type_OnOffAuto(v, name, &mode, errp)) {
        X86_MACHINE(obj)->kvm_pv = mode;
    }
}

void x86_machine_kvm_pv_class_init(ObjectClass *oc)
{
    object_class_property_add(oc, "kvm-pv", "OnOffAuto",
                              kvm_pv_get, kvm_pv_set, NULL, NULL);
    object_class_property_set_description(oc, "kvm-pv",
        "KVM PV spinlocks, PV sched yield and steal time for the guest: "
        "on, off, or auto (on for SMP guests when the host has them, "
        "on qemu-oc machine types)");
}

/* The machine's kvm-pv, as its type makes "auto" mean: on or off */
static OnOffAuto machine_kvm_pv(bool *type_opts_in)
{
    Object *m = object_dynamic_cast(OBJECT(current_machine),
                                    TYPE_X86_MACHINE);

    *type_opts_in = m && X86_MACHINE_GET_CLASS(m)->kvm_pv_default;
    return m ? X86_MACHINE(m)->kvm_pv : ON_OFF_AUTO_AUTO;
}

static uint32_t host_kvm_features(void)
{
    if (!kvm_enabled()) {
        return 0;
    }
    return kvm_arch_get_supported_cpuid(kvm_state, KVM_CPUID_FEATURES, 0,
                                        R_EAX);
}

bool x86_cpu_kvm_pv_defaults(X86CPU *cpu, Error **errp)
{
    CPUX86State *env = &cpu->env;
    bool dedicated = env->features[FEAT_KVM_HINTS] &
                     (1U << KVM_HINTS_REALTIME);
    uint32_t host = host_kvm_features();
    bool opts_in;
    OnOffAuto kvm_pv_mode = machine_kvm_pv(&opts_in);
    int i;

    if (kvm_pv_mode == ON_OFF_AUTO_AUTO &&
        (!opts_in || !kvm_enabled() || dedicated ||
         current_machine->smp.max_cpus < 2)) {
        return true;    /* upstream's CPUID */
    }
    for (i = 0; i < ARRAY_SIZE(pv_features); i++) {
        uint32_t mask = 1U << pv_features[i].bit;

        /*
         * Explicit per-feature properties win.  Steal time is an exception
         * under kvm-pv=off: named models set it through a default property,
         * which looks the same as the user's.
         */
        if (env->user_features[FEAT_KVM] & mask &&
            !(kvm_pv_mode == ON_OFF_AUTO_OFF &&
              pv_features[i].bit == KVM_FEATURE_STEAL_TIME)) {
            continue;
        }
        switch (kvm_pv_mode) {
        case ON_OFF_AUTO_OFF:
            env->features[FEAT_KVM] &= ~mask;
            break;
        case ON_OFF_AUTO_ON:
            if (!kvm_enabled()) {
                error_setg(errp, "kvm-pv=on: %s needs the KVM accelerator",
                           pv_features[i].prop);
                return false;
            }
            if (!(host & mask)) {
                error_setg(errp, "kvm-pv=on: the host KVM does not support "
                           "%s", pv_features[i].prop);
                return false;
            }
            env->features[FEAT_KVM] |= mask;
            break;
        default:
            if (host & mask) {
                env->features[FEAT_KVM] |= mask;
            }
        }
    }
    return true;
}

/* For query-vcpu-runstates: what the first vCPU's guest sees */
static void read_kvm_pv(KvmPvFeatures *pv)
{
    CPUState *cs = first_cpu;
    uint32_t eax, hints;

    if (!cs) {
        return;
    }
    eax = X86_CPU(cs)->env.features[FEAT_KVM];
    hints = X86_CPU(cs)->env.features[FEAT_KVM_HINTS];
    pv->pv_unhalt = eax & (1U << KVM_FEATURE_PV_UNHALT);
    pv->pv_sched_yield = eax & (1U << KVM_FEATURE_PV_SCHED_YIELD);
    pv->steal_time = eax & (1U << KVM_FEATURE_STEAL_TIME);
    pv->dedicated_hint = hints & (1U << KVM_HINTS_REALTIME);
}

static void kvm_pv_default_init(void)
{
    vcpu_runstates_set_kvm_pv_reader(read_kvm_pv);
}

type_init(kvm_pv_default_init)
