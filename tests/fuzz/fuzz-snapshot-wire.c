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

#include "fuzz-tools.h"
#include "vm-snapshot-wire.h"

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
    fuzz_check_figures(back);
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
    fuzz_check_figures(s);
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
    fuzz_check_figures(s);
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
