/*
 * KVM PV spinlocks and PV yield on by default for SMP guests (qemu-oc)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TARGET_I386_KVM_PV_DEFAULT_H
#define TARGET_I386_KVM_PV_DEFAULT_H

/* Machine property "kvm-pv" (on, off, auto): x86_machine_class_init */
void x86_machine_kvm_pv_class_init(ObjectClass *oc);

/*
 * Apply the policy to a vCPU's KVM CPUID leaf (x86_cpu_expand_features).
 * False, with @errp set, if kvm-pv=on cannot be honoured.
 */
bool x86_cpu_kvm_pv_defaults(X86CPU *cpu, Error **errp);

#endif
