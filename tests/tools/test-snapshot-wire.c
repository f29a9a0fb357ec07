/*
 * qemu-oc host tools: test of a snapshot's wire form (the collector's
 * reader protocol)
 *
 * A snapshot built from QMP answers as a worker builds it (two balloon
 * reports, two runstates answers) goes through vm_snapshot_to_wire() and
 * vm_snapshot_from_wire(): what vmtop shows of it (vm_snapshot_to_json,
 * shares and rates included) is the same before and after.  Then wire
 * forms with one member wrong each: the VM is refused with an error that
 * names the member.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>
#include <glib.h>

#include "vm-snapshot-wire.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

static json_object *runstates(unsigned k)
{
    g_autofree char *text = g_strdup_printf(
        "{\"elapsed-ns\": %u, \"method\": \"tcg\", \"source\": \"exact\","
        " \"kvm-pv\": {\"pv-unhalt\": true, \"steal-time\": false},"
        " \"vm\": {\"state\": \"partial-run\", \"full-run-ns\": %u,"
        " \"full-contention-ns\": %u, \"concurrency-hazard-ns\": 0,"
        " \"blocked-ns\": %u, \"partial-run-ns\": %u,"
        " \"partial-contention-ns\": 7, \"missed-changes\": 2},"
        " \"vcpus\": [{\"cpu-index\": 0, \"thread-id\": 41, \"state\":"
        " \"runnable\", \"running-ns\": %u, \"runnable-ns\": %u,"
        " \"blocked-ns\": 5, \"offline-ns\": 0, \"transitions\": %u},"
        " {\"cpu-index\": 1, \"thread-id\": 42, \"state\": \"blocked\","
        " \"running-ns\": %u, \"runnable-ns\": 3, \"blocked-ns\": %u,"
        " \"offline-ns\": 0}]}",
        1000 * k, 300 * k, 100 * k, 200 * k, 400 * k, 600 * k, 150 * k,
        10 * k, 100 * k, 700 * k);

    return json_tokener_parse(text);
}

static json_object *balloon(unsigned k)
{
    g_autofree char *text = g_strdup_printf(
        "{\"actual\": 1073741824, \"last-update\": %u, \"stats\":"
        " {\"free-memory\": %u, \"available-memory\": %u,"
        " \"major-faults\": %u, \"total-memory\": 1000000000}}",
        1700000000 + 1000 * k, 500000000 - k, 600000000 - k, 40 * k);

    return json_tokener_parse(text);
}

static VmSnapshot *worker_snapshot(void)
{
    VmSnapshot *s = vm_snapshot_new("web-1", "/run/qemu-oc/qmp/web-1");
    unsigned k;

    s->taken_us = 123456789;
    s->responsive = true;
    s->pid = 4242;
    s->balloon_fpr = 1;
    s->max_memory = 2LL << 30;
    for (k = 1; k <= 2; k++) {
        g_autoptr(json_object) b = balloon(k);
        g_autoptr(json_object) r = runstates(k);

        g_assert_true(vm_snapshot_set_balloon(s, b));
        g_assert_true(vm_snapshot_set_runstates(s, r, 1000000 * k));
    }
    return s;
}

static char *shown(const VmSnapshot *s)
{
    g_autoptr(json_object) o = vm_snapshot_to_json(s, 1700000005000);

    return g_strdup(json_object_to_json_string_ext(o,
                                                   JSON_C_TO_STRING_PRETTY));
}

static VmSnapshot *round_trip(const VmSnapshot *s)
{
    g_autoptr(json_object) wire = vm_snapshot_to_wire(s);
    /* through text, as on the socket */
    g_autoptr(json_object) back = json_tokener_parse(
        json_object_to_json_string(wire));
    g_autoptr(GError) err = NULL;
    VmSnapshot *r = vm_snapshot_from_wire(back, &err);

    g_assert_no_error(err);
    g_assert_nonnull(r);
    return r;
}

static void test_round_trip(void)
{
    VmSnapshot *s = worker_snapshot();
    VmSnapshot *r = round_trip(s);
    g_autofree char *before = shown(s), *after = shown(r);
    double a, b;

    g_assert_cmpstr(before, ==, after);
    g_assert_true(strstr(before, "\"shares\""));     /* not vacuous */
    g_assert_cmpint(r->pid, ==, 4242);
    g_assert_cmpint(r->taken_us, ==, 123456789);
    g_assert_cmpint(r->balloon_deflate, ==, -1);
    g_assert_cmpint(r->cur.missed_changes, ==, 2);
    g_assert_true(r->cur.has_kvm_pv);
    g_assert_cmphex(r->cur.kvm_pv, ==, 1u << VM_KVM_PV_UNHALT);
    g_assert_true(vm_snapshot_stat_rate(s, STAT_MAJOR_FAULTS, &a));
    g_assert_true(vm_snapshot_stat_rate(r, STAT_MAJOR_FAULTS, &b));
    g_assert_cmpfloat(a, ==, b);
    g_assert_cmpfloat(a, ==, 40.0);
    vm_snapshot_unref(r);

    /* an unresponsive VM without data yet */
    vm_snapshot_unref(s);
    s = vm_snapshot_new("new", "qemu:///system");
    s->unresponsive_since_us = 99;
    s->error = g_strdup("connect: refused");
    r = round_trip(s);
    g_free(before);
    g_free(after);
    before = shown(s);
    after = shown(r);
    g_assert_cmpstr(before, ==, after);
    g_assert_false(r->has_stats || r->has_runstates || r->has_balloon);
    vm_snapshot_unref(r);
    vm_snapshot_unref(s);
}

/* One member of a good wire form replaced: refused, the member named */
static void check_bad(const char *path, const char *value, const char *word)
{
    VmSnapshot *s = worker_snapshot();
    g_autoptr(json_object) wire = vm_snapshot_to_wire(s);
    g_auto(GStrv) keys = g_strsplit(path, "/", -1);
    json_object *o = wire;
    g_autoptr(GError) err = NULL;
    unsigned i;

    for (i = 0; keys[i + 1]; i++) {
        g_assert_true(json_object_object_get_ex(o, keys[i], &o));
        if (json_object_is_type(o, json_type_array)) {
            o = json_object_array_get_idx(o, 0);
        }
    }
    if (value) {
        json_object_object_add(o, keys[i], json_tokener_parse(value));
    } else {
        json_object_object_del(o, keys[i]);
    }
    g_assert_null(vm_snapshot_from_wire(wire, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, word)) {
        g_error("%s: '%s' does not say '%s'", path, err->message, word);
    }
    vm_snapshot_unref(s);
}

static void test_bad(void)
{
    check_bad("name", "5", "'name' has the wrong type");
    check_bad("where", NULL, "'where' is missing");
    check_bad("responsive", "\"yes\"", "'responsive'");
    check_bad("taken-us", "-1", "'taken-us' is out of range");
    check_bad("stats/values/free-memory", "-5", "out of range");
    check_bad("stats/update-ms", "0", "'update-ms' is out of range");
    check_bad("stats/values", "[]", "'values' has the wrong type");
    check_bad("runstates/cur/state", "\"dancing\"", "unknown name");
    check_bad("runstates/cur/vm-ns", "[]", "'vm-ns' has the wrong type");
    check_bad("runstates/cur/vcpus", NULL, "'vcpus' is missing");
    check_bad("runstates/cur/vcpus/cpu-index", "\"0\"", "'cpu-index'");
    check_bad("runstates/prev/vcpus/ns/running", "1.5", "'running'");
    check_bad("runstates/cur/source", "{}", "'source'");
    check_bad("error", "[1]", "'error'");
    check_bad("runstates/cur/kvm-pv", "\"pv-unhalt warp-drive\"", "'kvm-pv'");
    check_bad("balloon-target", "5", "'balloon-target-ms'");
}

static void test_ready(void)
{
    VmSnapshot *s = worker_snapshot();
    double share = -1;

    g_assert_cmpint(vm_ready_band(0.0499), ==, VM_READY_FINE);
    g_assert_cmpint(vm_ready_band(0.05), ==, VM_READY_SIGNIFICANT);
    g_assert_cmpint(vm_ready_band(0.0999), ==, VM_READY_SIGNIFICANT);
    g_assert_cmpint(vm_ready_band(0.10), ==, VM_READY_HURTING);
    g_assert_cmpint(vm_ready_band(0.1999), ==, VM_READY_HURTING);
    g_assert_cmpint(vm_ready_band(0.20), ==, VM_READY_CRITICAL);
    /* vCPU 0: 150 of 750 runnable; vCPU 1: none of 800 */
    g_assert_true(vm_snapshot_ready(s, &share));
    g_assert_cmpfloat_with_epsilon(share, 0.1, 0.000000001);
    vm_snapshot_unref(s);
    s = vm_snapshot_new("new", "x");
    g_assert_false(vm_snapshot_ready(s, &share));   /* no interval yet */
    vm_snapshot_unref(s);
}

static void test_not_object(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(json_object) n = json_object_new_int(7);

    g_assert_null(vm_snapshot_from_wire(n, &err));
    g_assert_nonnull(strstr(err->message, "not an object"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tools/snapshot-wire/round-trip", test_round_trip);
    g_test_add_func("/tools/snapshot-wire/bad", test_bad);
    g_test_add_func("/tools/snapshot-wire/not-object", test_not_object);
    g_test_add_func("/tools/snapshot/ready", test_ready);
    return g_test_run();
}
