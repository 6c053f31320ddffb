/*
 * kcpwire.h - the KCP segment format as the tests, benchmarks, fuzzer and
 * interop driver see it: little-endian fields and a parser of a datagram's
 * segments, written from docs/PROTOCOL.md and independent of core/proto/kcp.c so
 * that they check its output rather than trust it.
 */
#ifndef MOONGATE_TEST_KCPWIRE_H
#define MOONGATE_TEST_KCPWIRE_H

#include <stdint.h>

#define KW_OVERHEAD 24

static inline uint32_t
kw_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void
kw_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

struct kw_seg {
	uint32_t conv;
	uint8_t cmd, frg;
	uint16_t wnd;
	uint32_t ts, sn, una, len;
	const unsigned char *data; /* len payload bytes */
};

/* Parse the segments of a datagram into out (up to max of them); returns
 * how many there are, or -1 if it is not a run of whole segments. */
static inline int
kw_parse(const void *buf, int len, struct kw_seg *out, int max)
{
	const unsigned char *p = buf;
	int n = 0, off = 0;
	while (off < len) {
		struct kw_seg s;
		if (len - off < KW_OVERHEAD)
			return -1;
		s.conv = kw_get32(p + off);
		s.cmd = p[off + 4];
		s.frg = p[off + 5];
		s.wnd = (uint16_t)(p[off + 6] | p[off + 7] << 8);
		s.ts = kw_get32(p + off + 8);
		s.sn = kw_get32(p + off + 12);
		s.una = kw_get32(p + off + 16);
		s.len = kw_get32(p + off + 20);
		s.data = p + off + KW_OVERHEAD;
		if (s.len > (uint32_t)(len - off - KW_OVERHEAD))
			return -1;
		if (n < max)
			out[n] = s;
		n++;
		off += KW_OVERHEAD + (int)s.len;
	}
	return n;
}

#endif
