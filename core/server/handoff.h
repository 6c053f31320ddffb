/*
 * handoff.h - TCP connections passed between workers (docs/ARCHITECTURE.md,
 * "Workers"). The kernel lands a TCP connection on any worker; when its
 * first packet belongs to another worker's session, or a handshake's
 * worker hint names another worker, net gives the connection up
 * (net_hand_off) and handoff_send passes its descriptor (SCM_RIGHTS) and
 * the bytes read from it over the supervisor's SOCK_SEQPACKET channel of
 * that worker (workers.h, chan_wr); there handoff_receive reads the
 * channel and net adopts the connection (net_adopt_tcp), so its gate sees
 * the frame as if read there. UDP needs none of this: the kernel steers
 * it (workers.c's BPF program).
 */
#ifndef MOONGATE_HANDOFF_H
#define MOONGATE_HANDOFF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "net.h"
#include "workers.h"

/* The worker slot a packet asks for: a session packet's (its sid's low
 * byte), a v2 HELLO or INIT's worker hint (its caps), else -1. What the
 * steering program reads from a UDP datagram (core/server/workers.c). */
int handoff_slot(const uint8_t *pkt, size_t len);

/* net's handoff callback (net.h): pass connection fd, with its listener,
 * its peer and the bytes net read from it (a frame first), to the worker
 * its first packet asks for. fd is closed here whatever happens; a
 * connection that cannot be passed is logged, and its client connects
 * again. */
void handoff_send(const struct workers_fds *fds, int fd, int listener,
                  const struct sockaddr *addr, socklen_t addrlen,
                  const uint8_t *bytes, size_t len);

/* One message of a channel, without waiting: its bytes into buf (len at
 * most; *truncated when it was longer, or its descriptor did not fit),
 * its descriptor in *fd (-1: none). Returns the bytes, or -1 (nothing
 * waiting, or an error). Used by handoff_receive and by the supervisor,
 * which closes what is handed to a slot no worker serves. */
ssize_t handoff_recv(int chan, void *buf, size_t len, int *fd, int *truncated);

/* The channel chan_rd is readable: adopt into n the connections other
 * workers passed (at most 64 a call; a bad message is logged and
 * dropped). */
void handoff_receive(int chan_rd, net_t *n);

#endif
