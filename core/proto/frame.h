/*
 * frame.h - the TCP framing of session packets, I/O-free: both ends of a
 * TCP path (core/server/net_tcp.c, core/client/stream.c) cut their byte stream
 * with these two functions.
 *
 *   frame = len u16 little-endian | len bytes (one session packet)
 *
 * A frame longer than the reader's maximum, or an empty one, ends the
 * stream: the reader cannot find the next frame boundary it can trust.
 */
#ifndef MOONGATE_FRAME_H
#define MOONGATE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER 2
#define FRAME_MAX 65535          /* the largest len a header can say */

#define FRAME_EEMPTY (-1)        /* "empty frame" */
#define FRAME_ETOOBIG (-2)       /* "frame too large" */

/* Look at buf[0..len): the first frame's packet is buf[2..2+*plen). Returns
 * the frame's whole size (2 + *plen) when it is complete, 0 when more bytes
 * are needed (*plen is then the size announced, or 0 before the header is
 * in), or FRAME_EEMPTY / FRAME_ETOOBIG when the header is bad (max: the
 * largest packet the reader accepts). */
static inline long
frame_next(const uint8_t *buf, size_t len, size_t max, size_t *plen)
{
	*plen = 0;
	if (len < FRAME_HEADER)
		return 0;
	size_t n = (size_t)buf[0] | (size_t)buf[1] << 8;
	if (n == 0)
		return FRAME_EEMPTY;
	if (n > max)
		return FRAME_ETOOBIG;
	*plen = n;
	return len - FRAME_HEADER >= n ? (long)(FRAME_HEADER + n) : 0;
}

/* Write the header of a frame of plen bytes (1..FRAME_MAX) to dst. */
static inline void
frame_header(uint8_t dst[FRAME_HEADER], size_t plen)
{
	dst[0] = (uint8_t)plen;
	dst[1] = (uint8_t)(plen >> 8);
}

/* The close reason of a bad header: "empty frame" or "frame too large". */
static inline const char *
frame_error(long code)
{
	return code == FRAME_EEMPTY ? "empty frame" : "frame too large";
}

#endif
