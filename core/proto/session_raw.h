/*
 * session_raw.h - a raw KCP session on the server (a raw:// listener):
 * plain KCP datagrams, no moongate header, no keys, no heartbeat, no
 * datagrams. Everything else is session.h's: input, send, close, timers.
 */
#ifndef MOONGATE_SESSION_RAW_H
#define MOONGATE_SESSION_RAW_H

#include "session.h"

/* The shortest raw datagram: one KCP segment header (KCP_OVERHEAD). */
#define SESSION_RAW_MIN 24

/* conv is the client's; sid the gate's id for it (session_id); output gets
 * plain KCP datagrams. */
session_t *session_raw_create(const struct session_config *c,
                              const struct session_callbacks *cb, void *user,
                              uint32_t path, uint32_t conv, uint32_t sid,
                              uint64_t now);

#endif
