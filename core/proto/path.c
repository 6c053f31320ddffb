/*
 * path.c - see path.h.
 */
#include "path.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* path.h */
size_t
path_addr_bytes(const struct gate_path *p, uint8_t out[19])
{
	const struct sockaddr *sa = (const struct sockaddr *)&p->addr;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		out[0] = 4;
		memcpy(out + 1, &in->sin_port, 2);
		memcpy(out + 3, &in->sin_addr, 4);
		return 7;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		out[0] = 6;
		memcpy(out + 1, &in6->sin6_port, 2);
		memcpy(out + 3, &in6->sin6_addr, 16);
		return 19;
	}
	out[0] = 0;
	return 1;
}

const char *
gate_path_addr(const struct gate_path *p, char *buf, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *sa = (const struct sockaddr *)&p->addr;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
		snprintf(buf, n, "%s:%d", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
		snprintf(buf, n, "[%s]:%d", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, n, "?");
	}
	return buf;
}

const char *
gate_path_transport(const struct gate_path *p)
{
	return p->raw ? "raw" : p->transport == GATE_TCP ? "tcp" : "udp";
}

