/*
 * qemu-oc: the machine properties of vCPU runstate accounting
 *
 * vcpu-runstates-exact (default on: follow each vCPU thread's context
 * switches; off: sample the host scheduler's counters) and, for tests,
 * x-vcpu-runstates-ring-pages (the pages of each vCPU's context switch
 * record ring, a power of 2 from 1 to 1024; default 32).  Set on the
 * command line, kept in MachineState (vcpu_runstates_exact,
 * vcpu_runstates_ring_pages), read when the first vCPU starts.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VCPU_RUNSTATES_MACHINE_H
#define VCPU_RUNSTATES_MACHINE_H

/* The current machine's values */
bool vcpu_runstates_machine_exact(void);
uint32_t vcpu_runstates_machine_ring_pages(void);

#endif
