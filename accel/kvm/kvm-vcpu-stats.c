/*
 * A vCPU's KVM binary statistics, read without the vCPU (qemu-oc)
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "qemu/units.h"
#include "hw/core/cpu.h"
#include "sysemu/kvm-vcpu-stats.h"

static const char *const stat_names[KVM_VCPU_STAT__MAX] = {
    [KVM_VCPU_STAT_HALT_WAIT_NS] = "halt_wait_ns",
    [KVM_VCPU_STAT_BLOCKING] = "blocking",
    [KVM_VCPU_STAT_HALT_EXITS] = "halt_exits",
    [KVM_VCPU_STAT_HALT_WAKEUP] = "halt_wakeup",
    [KVM_VCPU_STAT_YIELD_ATTEMPTED] = "directed_yield_attempted",
    [KVM_VCPU_STAT_YIELD_SUCCESSFUL] = "directed_yield_successful",
    [KVM_VCPU_STAT_PREEMPTION_REPORTED] = "preemption_reported",
    [KVM_VCPU_STAT_PREEMPTION_OTHER] = "preemption_other",
};

bool kvm_vcpu_stats_open(CPUState *cpu, KvmVcpuStats *stats)
{
    struct kvm_stats_header hdr;
    g_autofree char *descs = NULL;
    size_t desc_size;
    int fd, i, j;

    for (i = 0; i < KVM_VCPU_STAT__MAX; i++) {
        stats->offset[i] = -1;
    }
    stats->fd = -1;
    fd = ioctl(cpu->kvm_fd, KVM_GET_STATS_FD, NULL);
    if (fd < 0) {
        return false;
    }
    if (pread(fd, &hdr, sizeof(hdr), 0) != sizeof(hdr) ||
        hdr.name_size == 0 || hdr.name_size > 1024 || hdr.num_desc > 4096) {
        close(fd);
        return false;
    }
    desc_size = sizeof(struct kvm_stats_desc) + hdr.name_size;
    stats->data_offset = hdr.data_offset;
    stats->data_size = 0;
    descs = g_malloc0(desc_size * hdr.num_desc);
    if (pread(fd, descs, desc_size * hdr.num_desc, hdr.desc_offset) !=
        desc_size * hdr.num_desc) {
        close(fd);
        return false;
    }
    for (j = 0; j < hdr.num_desc; j++) {
        struct kvm_stats_desc *d = (void *)(descs + j * desc_size);

        d->name[hdr.name_size - 1] = 0;
        stats->data_size = MAX(stats->data_size,
                               d->offset + d->size * sizeof(uint64_t));
        for (i = 0; i < KVM_VCPU_STAT__MAX; i++) {
            if (d->size >= 1 && !strcmp(d->name, stat_names[i])) {
                stats->offset[i] = d->offset;
            }
        }
    }
    if (stats->data_size > 64 * KiB) {
        close(fd);
        return false;
    }
    stats->fd = fd;
    return true;
}

bool kvm_vcpu_stats_read(const KvmVcpuStats *stats,
                         uint64_t vals[KVM_VCPU_STAT__MAX])
{
    g_autofree uint8_t *data = NULL;
    int i;

    if (stats->fd < 0) {
        return false;
    }
    data = g_malloc(stats->data_size);
    if (pread(stats->fd, data, stats->data_size, stats->data_offset) !=
        stats->data_size) {
        return false;
    }
    for (i = 0; i < KVM_VCPU_STAT__MAX; i++) {
        vals[i] = 0;
        if (stats->offset[i] >= 0) {
            memcpy(&vals[i], data + stats->offset[i], sizeof(uint64_t));
        }
    }
    return true;
}
