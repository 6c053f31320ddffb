/*
 * path.h - where a packet came from, or goes to: the one type net (which
 * fills it from a socket) and gate (which keys sessions by it) share. It
 * lives here, below both, so net needs nothing else of the protocol.
 */
#ifndef MOONGATE_PATH_H
#define MOONGATE_PATH_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

enum gate_transport { GATE_UDP = 1, GATE_TCP = 2 };

struct gate_path {
	uint8_t transport;            /* GATE_UDP or GATE_TCP */
	uint8_t listener;             /* index of the listener (net_listen) */
	uint8_t raw;                  /* the listener speaks raw KCP */
	uint32_t conn;                /* TCP: net's connection id; UDP: 0 */
	socklen_t addrlen;
	union {                       /* the peer's address: IPv4 or IPv6 (a */
		struct sockaddr sa;       /* sockaddr_storage would be 128 bytes, */
		struct sockaddr_in in;    /* 4 of them in every session) */
		struct sockaddr_in6 in6;
	} addr;
};

/* "127.0.0.1:50123" or "[::1]:50123" ("?" for another family), in buf. */
const char *gate_path_addr(const struct gate_path *p, char *buf, size_t n);
/* "udp", "tcp" or "raw". */
const char *gate_path_transport(const struct gate_path *p);
/* The address in a fixed encoding (the cookie and the source keys hash
 * it): 4 | port | 4 bytes (7), 6 | port | 16 bytes (19), or 0 (1) for
 * another family. Returns its length. */
size_t path_addr_bytes(const struct gate_path *p, uint8_t out[19]);

#endif
