/*
 * vmtop: where the frames come from
 *
 * See source.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "source.h"

struct VmtopSource {
    Fleet *fleet;               /* direct, or NULL */
    CollectorClient *client;    /* attached, or NULL */
    char *path;                 /* the collector's socket */
};

VmtopSource *vmtop_source_direct(Fleet *fleet)
{
    VmtopSource *src = g_new0(VmtopSource, 1);

    src->fleet = fleet;
    return src;
}

VmtopSource *vmtop_source_collector(CollectorClient *c, const char *path)
{
    VmtopSource *src = g_new0(VmtopSource, 1);

    src->client = c;
    src->path = g_strdup(path);
    return src;
}

GPtrArray *vmtop_source_snapshots(VmtopSource *src)
{
    return src->fleet ? fleet_snapshots(src->fleet)
                      : collector_client_snapshots(src->client);
}

bool vmtop_source_is_collector(VmtopSource *src)
{
    return src->client != NULL;
}

bool vmtop_source_settled(VmtopSource *src)
{
    g_autoptr(GPtrArray) snaps = NULL;
    guint i;

    if (src->client) {
        return true;    /* the collector's frame is as settled as it gets */
    }
    snaps = fleet_snapshots(src->fleet);
    for (i = 0; i < snaps->len; i++) {
        const VmSnapshot *s = g_ptr_array_index(snaps, i);

        if (!s->has_prev && s->responsive &&
            !(s->error && !s->has_runstates)) {
            return false;
        }
    }
    return true;
}

char *vmtop_source_status(VmtopSource *src)
{
    CollectorStatus st;
    char *out;

    if (src->fleet) {
        return g_strdup("direct");
    }
    collector_client_status(src->client, &st);
    if (st.attached) {
        out = g_strdup_printf("collector %s (frame %" G_GUINT64_FORMAT
                              "%s%s)", src->path, st.seq,
                              st.policy && !g_strcmp0(st.policy, "off")
                                  ? ", policy off" : "",
                              st.skipped ? ", frames skipped" : "");
    } else {
        out = g_strdup_printf("collector %s LOST: %s (frame %"
                              G_GUINT64_FORMAT " of %" G_GINT64_FORMAT
                              " s ago)", src->path,
                              st.error ? st.error : "?", st.seq,
                              (g_get_real_time() / 1000 - st.frame_ms) /
                              1000);
    }
    collector_status_clear(&st);
    return out;
}

json_object *vmtop_source_to_json(VmtopSource *src)
{
    json_object *o = json_object_new_object();
    CollectorStatus st;

    if (src->fleet) {
        json_object_object_add(o, "mode", json_object_new_string("direct"));
        return o;
    }
    collector_client_status(src->client, &st);
    json_object_object_add(o, "mode", json_object_new_string("collector"));
    json_object_object_add(o, "socket", json_object_new_string(src->path));
    json_object_object_add(o, "attached",
                           json_object_new_boolean(st.attached));
    json_object_object_add(o, "seq", json_object_new_uint64(st.seq));
    json_object_object_add(o, "frame-time",
                           json_object_new_int64(st.frame_ms));
    json_object_object_add(o, "skipped", json_object_new_uint64(st.skipped));
    if (st.policy) {
        json_object_object_add(o, "policy",
                               json_object_new_string(st.policy));
    }
    if (st.error) {
        json_object_object_add(o, "error", json_object_new_string(st.error));
    }
    collector_status_clear(&st);
    return o;
}

void vmtop_source_free(VmtopSource *src)
{
    if (src) {
        if (src->fleet) {
            fleet_free(src->fleet);
        }
        collector_client_free(src->client);
        g_free(src->path);
        g_free(src);
    }
}
