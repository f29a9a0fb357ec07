/*
 * qemu-oc host tools: QMP messages, whatever carries them
 *
 * One reading of what a QMP peer says, for both transports: the QMP
 * client's socket (qmp-client.c) and libvirt's monitor passthrough
 * (vm-link-libvirt.c).  A message is parsed strictly within the limits,
 * classified by its shape, and a reply turned into its value or an
 * error worded the same way whichever way it came.  Errors are in
 * QMP_CLIENT_ERROR: _PROTOCOL for what breaks QMP, _COMMAND for a QMP
 * error reply.
 *
 * Copyright (c) 2026 qemu-oc developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TOOLS_QMP_WIRE_H
#define TOOLS_QMP_WIRE_H

#include <glib.h>
#include <json-c/json.h>

/* What the peer sent, once its shape is checked */
typedef enum QmpMsgKind {
    QMP_MSG_GREETING,
    QMP_MSG_EVENT,
    QMP_MSG_RETURN,
    QMP_MSG_ERROR,
} QmpMsgKind;

/*
 * One message's @len bytes of text, parsed whole with @tok (made with
 * @max_depth): a new object, or NULL with @err
 */
json_object *qmp_wire_parse(json_tokener *tok, const char *text, size_t len,
                            int max_depth, GError **err);
/* @msg's kind; NULL if it has the shape of that kind, else what is wrong */
const char *qmp_wire_check(json_object *msg, QmpMsgKind *kind);
/* A reply's "id" (false if none) */
bool qmp_wire_id(json_object *msg, int64_t *id);
/* A checked event: its name, data (borrowed, or NULL) and time in µs */
const char *qmp_wire_event(json_object *msg, json_object **data,
                           int64_t *timestamp_us);
/* A checked reply to @command: its value (a new reference), or @err */
json_object *qmp_wire_reply_value(const char *command, json_object *msg,
                                  QmpMsgKind kind, GError **err);

#endif
