/*
 * handle.h - the client's handle (mgclient_t of moongate/client.h), shared
 * by client.c (the API, the session's callbacks, the event queue) and
 * steer.c (the choice of transport). Nothing outside core/client sees it.
 */
#ifndef MOONGATE_CLIENT_HANDLE_H
#define MOONGATE_CLIENT_HANDLE_H

#include <stddef.h>
#include <stdint.h>

#include <moongate/client.h>

#include "session.h"
#include "tport.h"
#include "wire.h"

/* The session's paths: one per transport. */
#define PATH_UDP 1u
#define PATH_TCP (2u | SESSION_PATH_PROVEN) /* TCP proved the address */

/* The client's own settings (the session's are in a session_config). */
struct client_config {
	int frame_max, event_queue_max, buffer_max;
	int fallback_ms, path_timeout_ms, probe_ms, reconnect_ms, tcp_linger_ms;
	int autoflush;        /* mgclient_send flushes (!options.manual_flush) */
};

/* One queued event with its payload copied behind it. */
struct qev {
	int type;
	uint32_t seq;
	int transport;
	size_t len;
	uint8_t data[];
};

struct mgclient {
	session_t *s;
	struct tport udp, tcp;
	int mode;             /* enum url_mode */
	uint32_t cur;         /* the path in use: PATH_UDP or PATH_TCP */
	int ended;            /* the session's CLOSE event came: it is handed
	                         out after every queued event */
	int closed_taken;     /* ... and was handed to the caller */
	int close_code, close_remote;
	char close_reason[WIRE_REASON_MAX + 1];
	int qfull;            /* "event queue full" close requested */
	int opened;           /* 1: OPEN to hand out; 2: handed out */
	int fail_code;        /* a session failure seen inside a callback; */
	char fail[64];        /* settle() aborts the session with it */
	uint64_t now;         /* of the last poll, for sends between polls */
	uint64_t started;     /* connect time */
	uint64_t next_probe;  /* auto, on TCP: the next UDP probe */
	uint64_t tcp_close_at;/* auto, back on UDP: close TCP then (0: no) */
	uint64_t next_knock;  /* offline: the next reconnect attempt */
	uint64_t since;       /* when cur was chosen */
	struct session_config scfg;
	struct client_config o;
	void (*log)(const char *line, void *user); /* warnings (NULL: stderr) */
	void *log_user;
	/* events: a ring of qev pointers, grown up to event_queue_max */
	struct qev **q;
	int qcap, qhead, qn;
	struct qev *cur_ev;   /* the event last returned, freed on the next call */
	/* moves (SESSION_CLOSE_MOVED from the server): followed in settle() */
	int moving;           /* 1: move holds one to follow */
	int moves;            /* moves followed so far (MOVES_MAX) */
	int closing;          /* the caller closed: no move is followed */
	char move[WIRE_REASON_MAX + 1];
	char url[300];        /* the url in use ("-" in a move keeps it) */
	/* reliable messages the game sent between MOVED and the new session's
	 * OPEN: held here (at most the watermark's bytes), sent first on open */
	int in_move;          /* a move's new session is not open yet */
	int open_msg_max;     /* msg_max of the last session that opened: it
	                         bounds them meanwhile */
	struct held *held, **held_tail;
	size_t held_bytes;
};

static inline int
transport_of(uint32_t path)
{
	return path == PATH_TCP ? MGCLIENT_TCP : MGCLIENT_UDP;
}

/* client.c: queue an event for next_event; past event_queue_max the
 * session closes. */
void client_queue(mgclient_t *c, int type, const uint8_t *data, size_t len,
                  uint32_t seq, int transport);

#endif
