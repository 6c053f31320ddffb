/*
 * steer.h - the transport policy of the client (url "auto://" or a list):
 * fall back to TCP when UDP gets no answer in the handshake or goes quiet
 * once open, probe UDP while on TCP and move back when it answers, close
 * the TCP connection a little after; and, offline, fresh sockets on every
 * transport every reconnect_ms. client.c runs steer in every poll and
 * tells the policy what the session and the sockets reported.
 */
#ifndef MOONGATE_CLIENT_STEER_H
#define MOONGATE_CLIENT_STEER_H

#include <stdint.h>

#include "handle.h"

/* The path in use is now path: tell the session, and the caller (a PATH
 * event) when the transport changed. */
void steer_use(mgclient_t *c, uint32_t path);
/* Act on what is due at c->now. */
void steer(mgclient_t *c);
/* When steer has something to do next (for mgclient_check). */
uint64_t steer_due(const mgclient_t *c, uint64_t now);
/* The session opened, or resumed on path: the probe clock starts. */
void steer_opened(mgclient_t *c);
void steer_resumed(mgclient_t *c, uint32_t path);
/* The session went offline: knock at once. */
void steer_offline(mgclient_t *c);
/* The probe on path was answered. */
void steer_probed(mgclient_t *c, uint32_t path);
/* The transport t failed (t->fail_code set): close it, and carry on on
 * the other one, or let the session go offline or end. */
void steer_lost(mgclient_t *c, struct tport *t);

#endif
