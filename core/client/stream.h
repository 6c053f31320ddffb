/*
 * stream.h - packets over a TCP tport, in frames (core/proto/frame.h:
 * len u16 LE | packet). Writes go straight to the socket when nothing
 * waits before them, the rest into a write buffer bounded by the caller;
 * reads collect bytes until frames are complete and hand each packet on.
 * A frame above the reader's maximum (or empty) ends that connection.
 */
#ifndef MOONGATE_CLIENT_STREAM_H
#define MOONGATE_CLIENT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "tport.h"

/* One packet as one frame. 0, or -1 when the write buffer would pass max
 * bytes (or cannot grow): the caller closes with "backpressure". A socket
 * error is recorded on t (tport_fail). */
int stream_send(struct tport *t, const uint8_t *pkt, size_t len, size_t max);
/* Write what is buffered until the socket stops taking it. */
void stream_flush(struct tport *t);
/* 1 when bytes wait for the socket (or a connect is under way with
 * bytes queued). */
int stream_pending(const struct tport *t);
/* Read up to max_reads times, each complete frame's packet to input,
 * until the socket is empty, input says stop, or t failed (a frame above
 * frame_max, the peer closed, an error: recorded on t). */
void stream_read(struct tport *t, int max_reads, size_t frame_max,
                 tport_input_fn *input, void *user);

#endif
