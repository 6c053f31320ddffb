/*
 * url.h - the client's url: "udp://host:port", "tcp://host:port",
 * "auto://host:port" (both on one port) or a list "udp://h:p1,tcp://h:p2".
 * Hosts are IPv4, IPv6 in brackets, or a name resolved once (blocking).
 */
#ifndef MOONGATE_CLIENT_URL_H
#define MOONGATE_CLIENT_URL_H

#include <stddef.h>
#include <stdint.h>

#include "tport.h"

/* Which transports the url names. */
enum url_mode { URL_AUTO, URL_UDP_ONLY, URL_TCP_ONLY };

/* Fill the addresses (addr, addrlen, have_addr) of udp and tcp from url.
 * A query of "key=HEX" (the server's static key, 64 hex digits: fills key
 * and sets *has_key) and "worker=N" (a worker hint, 0..126: *worker, else
 * -1), joined by '&', may follow a '?'. Returns an enum url_mode, or -1
 * with err filled. */
int url_parse(const char *url, struct tport *udp, struct tport *tcp,
              uint8_t key[32], int *has_key, int *worker, char *err,
              size_t errlen);
/* 64 hex digits into key: 0, or -1 with err filled. */
int url_key(const char *hex, size_t len, uint8_t key[32], char *err,
            size_t errlen);

#endif
