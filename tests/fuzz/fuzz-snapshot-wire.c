/*
 * libFuzzer target: the host tools' checks of what peers send
 *
 * The input is a stream of JSON objects (parsed as the collector's
 * reader does: one json_tokener, nesting at most 16).  Each object is
 *   1. a QMP answer: given to vm_snapshot_set_balloon() and, twice (so
 *      that shares have an interval), to vm_snapshot_set_runstates(), as
 *      a VM's worker does (tools/lib/vm-snapshot.c);
 *   2. a VM of a collector's frame: given to vm_snapshot_from_wire()
 *      (tools/lib/vm-snapshot-wire.c), and so is every element of a
 *      "frame"'s "vms".
 * Invariants (abort() on failure):
 *   - whatever a worker built from a QMP answer goes through the wire
 *     and back: the reader decodes it, and vmtop shows the same
 *     (vm_snapshot_to_json() of both is the same text);
 *   - whatever the reader decoded does the same again;
 *   - shares are within [0, 1] and the ready share too.
 * ASan, UBSan and LeakSanitizer check the rest.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm-snapshot-wire.h"

#define CHECK(cond) \
    do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
                    __LINE__, #cond); \
            abort(); \
        } \
    } while (0)

static bool in_unit(double x)
{
    return x >= 0 && x <= 1.000000001;     /* (rounding) */
}

static void check_figures(const VmSnapshot *s)
{
    double vm[VM_STATES_NR], v[VCPU_STATES_NR], r;
    unsigned i, j;

    if (vm_snapshot_vm_shares(s, vm)) {
        for (j = 0; j < VM_STATES_NR; j++) {
            CHECK(in_unit(vm[j]));
        }
    }
    for (i = 0; s->has_runstates && i < s->cur.n_vcpus; i++) {
        if (vm_snapshot_vcpu_shares(s, i, v)) {
            for (j = 0; j < VCPU_STATES_NR; j++) {
                CHECK(in_unit(v[j]));
            }
        }
    }
    if (vm_snapshot_ready(s, &r)) {
        CHECK(in_unit(r));
    }
}

/* @s goes through the wire and back: decoded, and shown the same */
static void check_round_trip(const VmSnapshot *s)
{
    json_object *wire = vm_snapshot_to_wire(s);
    json_object *text = json_tokener_parse(json_object_to_json_string(wire));
    GError *err = NULL;
    VmSnapshot *back = vm_snapshot_from_wire(text, &err);
    json_object *a, *b;

    if (!back && getenv("FUZZ_TRACE")) {
        fprintf(stderr, "refused: %s\n%s\n", err->message,
                json_object_to_json_string(wire));
    }
    CHECK(back != NULL);
    a = vm_snapshot_to_json(s, 1700000000000);
    b = vm_snapshot_to_json(back, 1700000000000);
    CHECK(!strcmp(json_object_to_json_string(a),
                  json_object_to_json_string(b)));
    check_figures(back);
    json_object_put(a);
    json_object_put(b);
    json_object_put(wire);
    json_object_put(text);
    vm_snapshot_unref(back);
}

static void as_qmp_answer(json_object *o)
{
    VmSnapshot *s = vm_snapshot_new("fuzz", "/run/fuzz");

    s->responsive = true;
    vm_snapshot_set_balloon(s, o);
    vm_snapshot_set_runstates(s, o, 1000);
    vm_snapshot_set_runstates(s, o, 2000);
    check_figures(s);
    check_round_trip(s);
    vm_snapshot_unref(s);
}

static void as_wire_vm(json_object *o)
{
    GError *err = NULL;
    VmSnapshot *s = vm_snapshot_from_wire(o, &err);

    if (!s) {
        CHECK(err != NULL);
        g_error_free(err);
        return;
    }
    check_figures(s);
    check_round_trip(s);
    vm_snapshot_unref(s);
}

static void one_message(json_object *o)
{
    json_object *frame, *vms;
    size_t i;

    as_qmp_answer(o);
    as_wire_vm(o);
    if (json_object_object_get_ex(o, "frame", &frame) &&
        json_object_object_get_ex(frame, "vms", &vms) &&
        json_object_is_type(vms, json_type_array)) {
        for (i = 0; i < json_object_array_length(vms) && i < 64; i++) {
            as_wire_vm(json_object_array_get_idx(vms, i));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_tokener *tok = json_tokener_new_ex(16);
    const char *buf = (const char *)data;
    size_t off = 0;

    while (off < size) {
        json_object *o = json_tokener_parse_ex(tok, buf + off, size - off);

        if (json_tokener_get_error(tok) != json_tokener_success) {
            break;      /* incomplete or invalid: the reader drops it */
        }
        off += json_tokener_get_parse_end(tok);
        json_tokener_reset(tok);
        if (json_object_is_type(o, json_type_object)) {
            one_message(o);
        }
        json_object_put(o);
    }
    json_tokener_free(tok);
    return 0;
}
