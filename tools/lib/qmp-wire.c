/*
 * qemu-oc host tools: QMP messages, whatever carries them
 *
 * See qmp-wire.h.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <string.h>

#include "qmp-client.h"
#include "qmp-wire.h"

/* Event timestamps whose µs fit an int64_t */
#define MAX_SECONDS (G_MAXINT64 / G_USEC_PER_SEC - 1)

json_object *qmp_wire_parse(json_tokener *tok, const char *text, size_t len,
                            int max_depth, GError **err)
{
    enum json_tokener_error jerr;
    json_object *obj;

    if (memchr(text, '\0', len)) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "invalid JSON: NUL byte in message");
        return NULL;
    }
    json_tokener_reset(tok);
    obj = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_success &&
        json_tokener_get_parse_end(tok) == len) {
        return obj;
    }
    json_object_put(obj);
    if (jerr == json_tokener_error_depth) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "JSON nested deeper than %d", max_depth);
    } else if (jerr == json_tokener_continue) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "invalid JSON: message ends in the middle of a value");
    } else if (jerr == json_tokener_success) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "invalid JSON: data after the end of the message");
    } else {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "invalid JSON: %s", json_tokener_error_desc(jerr));
    }
    return NULL;
}

static bool get_string(json_object *obj, const char *key, const char **out)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string)) {
        return false;
    }
    *out = json_object_get_string(v);
    return true;
}

static bool get_int(json_object *obj, const char *key, int64_t *out)
{
    json_object *v;

    if (!json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_int)) {
        return false;
    }
    *out = json_object_get_int64(v);
    return true;
}

static const char *check_event(json_object *msg)
{
    json_object *ts, *data;
    const char *name;
    int64_t s, us;

    if (!get_string(msg, "event", &name)) {
        return "\"event\" is not a string";
    }
    if (!*name) {
        return "event without a name";     /* (QEMU's all have one) */
    }
    if (!json_object_object_get_ex(msg, "timestamp", &ts) ||
        !json_object_is_type(ts, json_type_object) ||
        !get_int(ts, "seconds", &s) || !get_int(ts, "microseconds", &us)) {
        return "event without a {seconds, microseconds} timestamp";
    }
    if (s < -MAX_SECONDS || s > MAX_SECONDS || us < -1 ||
        us >= G_USEC_PER_SEC) {
        return "event timestamp out of range";
    }
    if (json_object_object_get_ex(msg, "data", &data) &&
        !json_object_is_type(data, json_type_object)) {
        return "event data is not an object";
    }
    return NULL;
}

static const char *check_error(json_object *msg)
{
    json_object *e;
    const char *s;

    json_object_object_get_ex(msg, "error", &e);
    if (!json_object_is_type(e, json_type_object) ||
        !get_string(e, "class", &s) || !get_string(e, "desc", &s)) {
        return "\"error\" is not an object with class and desc strings";
    }
    return NULL;
}

const char *qmp_wire_check(json_object *msg, QmpMsgKind *kind)
{
    json_object *v;
    bool has_return, has_error;

    if (!json_object_is_type(msg, json_type_object)) {
        return "message is not a JSON object";
    }
    if (json_object_object_get_ex(msg, "QMP", &v)) {
        *kind = QMP_MSG_GREETING;
        return json_object_is_type(v, json_type_object)
               ? NULL : "\"QMP\" is not an object";
    }
    if (json_object_object_get_ex(msg, "event", NULL)) {
        *kind = QMP_MSG_EVENT;
        return check_event(msg);
    }
    has_return = json_object_object_get_ex(msg, "return", &v);
    has_error = json_object_object_get_ex(msg, "error", NULL);
    if (has_return && has_error) {
        return "reply with both \"return\" and \"error\"";
    }
    if (has_error) {
        *kind = QMP_MSG_ERROR;
        return check_error(msg);
    }
    if (!has_return) {
        return "message is neither an event nor a reply";
    }
    *kind = QMP_MSG_RETURN;
    return v ? NULL : "\"return\" is null";
}

bool qmp_wire_id(json_object *msg, int64_t *id)
{
    return get_int(msg, "id", id);
}

const char *qmp_wire_event(json_object *msg, json_object **data,
                           int64_t *timestamp_us)
{
    json_object *ts = NULL;
    const char *name = NULL;
    int64_t s = 0, us = 0;

    *data = NULL;
    get_string(msg, "event", &name);
    json_object_object_get_ex(msg, "timestamp", &ts);
    get_int(ts, "seconds", &s);
    get_int(ts, "microseconds", &us);
    json_object_object_get_ex(msg, "data", data);
    *timestamp_us = s * G_USEC_PER_SEC + us;
    return name;
}

json_object *qmp_wire_reply_value(const char *command, json_object *msg,
                                  QmpMsgKind kind, GError **err)
{
    json_object *v, *e;
    const char *cls = "", *desc = "";

    if (kind == QMP_MSG_RETURN) {
        json_object_object_get_ex(msg, "return", &v);
        return json_object_get(v);
    }
    if (kind != QMP_MSG_ERROR) {
        g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_PROTOCOL,
                    "%s: the answer is not a reply", command);
        return NULL;
    }
    json_object_object_get_ex(msg, "error", &e);
    get_string(e, "class", &cls);
    get_string(e, "desc", &desc);
    g_set_error(err, QMP_CLIENT_ERROR, QMP_CLIENT_ERROR_COMMAND,
                "%s: %s (%s)", command, desc, cls);
    return NULL;
}
