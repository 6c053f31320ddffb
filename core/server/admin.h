/*
 * admin.h - the admin console: a line-based control socket for operators,
 * a stream listener of net (net.h), and its address syntax (shared with
 * the client mode, `moongate admin`: core/server/admin_cli.c).
 *
 * Address: "unix:PATH" (a Unix socket, mode 0600) or "tcp://HOST:PORT"
 * with HOST a loopback address (127.x.y.z or [::1]; port 0: a free one).
 * Any other host is refused: the console reloads code and closes sessions,
 * so it never listens beyond this machine. At start a stale socket file is
 * removed, but never a file that is not a socket or one another process
 * still listens on; at release the file is removed if it is still ours.
 *
 * Protocol: one command per line (\n or \r\n, at most ADMIN_LINE_MAX bytes
 * without the line end). Each reply is its text lines, then one empty line.
 * An error reply's first line starts with "error: ". A reply never holds an
 * empty line (they are dropped), so the empty line always ends it; a
 * command with no text to say answers "ok", and an empty command line gets
 * the empty line alone. `quit` is the console's own: "bye", then it closes.
 * Every other line goes to the run callback, so this file knows nothing of
 * Lua. A command may answer later (ADMIN_PENDING, then admin_answer): the
 * client's next lines wait behind it, in order, and are run once its reply
 * is sent; a client that disconnects meanwhile drops the reply. Replies
 * always come in the order of the commands.
 *
 * Limits: max_clients at once (one more gets "error: too many admin
 * clients" and is closed), so at most that many commands wait at once;
 * a longer line gets "error: line too long" and the connection closes,
 * and so does more than a line's buffer of input sent behind a command
 * that waits; a client that lets ADMIN_OUT_MAX bytes of replies
 * pile up unread is closed (logged). Every wait on a closing client has a
 * deadline.
 *
 * net owns the sockets (accepting, writing, graceful close); this file is
 * the console's line protocol and limits, and knows nothing of libev.
 */
#ifndef MOONGATE_ADMIN_H
#define MOONGATE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

/* (the fuzz build of test/fuzz/fuzz_admin.c sets smaller ones, so that
 * short inputs reach every limit) */
#ifndef ADMIN_LINE_MAX
#define ADMIN_LINE_MAX 4096           /* bytes of one command line */
#endif
#ifndef ADMIN_REPLY_MAX
#define ADMIN_REPLY_MAX (72 * 1024)   /* the run callback's reply buffer */
#endif
#ifndef ADMIN_OUT_MAX
#define ADMIN_OUT_MAX (256 * 1024)    /* replies queued unread to one client */
#endif

struct net;
typedef struct admin admin_t;

struct admin_addr {
	int is_unix;
	char path[108];  /* unix: sun_path, NUL included */
	char host[64];   /* tcp: the numeric address, without brackets */
	int port;        /* tcp */
};

/* "unix:PATH" or "tcp://HOST:PORT" (HOST loopback; IPv6 in brackets) into
 * a. 0, or -1 with err ("only a loopback address or unix:PATH; got ..."). */
int admin_addr_parse(const char *text, struct admin_addr *a, char *err,
                     size_t errlen);

/* Run one command line (no line end, no leading or trailing blanks, never
 * empty). Write the reply text into out (NUL-terminated; lines separated
 * by \n) and return 0, or the error message (without "error: ") and -1;
 * or return ADMIN_PENDING and give the reply later with admin_answer(ticket)
 * (never from inside this call). */
#define ADMIN_PENDING 1
typedef int (*admin_run_fn)(const char *line, uint64_t ticket, char *out,
                            size_t outlen, void *user);

/* Listen on a with n's sockets. NULL with err when the address cannot be
 * had. Released before n. */
admin_t *admin_create(struct net *n, const struct admin_addr *a,
                      int max_clients, admin_run_fn run, void *user,
                      char *err, size_t errlen);
/* Close every client and the listener, remove the socket file, free. */
void admin_release(admin_t *a);

/* The reply of the command that answered ADMIN_PENDING with ticket: text,
 * an error when err. 0, or -1 when no client waits for it (it
 * disconnected: the reply is dropped). The client's next lines run now. */
int admin_answer(admin_t *a, uint64_t ticket, int err, const char *text);

/* The bound address as the startup line shows it: "tcp 127.0.0.1 PORT"
 * (the real port) or "unix PATH". */
const char *admin_where(const admin_t *a);

struct admin_stats {
	uint64_t clients;     /* connected now, refused ones not counted */
	uint64_t accepted;    /* connections accepted, refused ones included */
	uint64_t refused;     /* over max_clients */
	uint64_t commands;    /* lines run (quit and empty lines included) */
	uint64_t too_long;    /* closed: a line over ADMIN_LINE_MAX, or as
	                         much input behind a command that waits */
	uint64_t waiting;     /* commands whose reply comes later, now */
	uint64_t overflows;   /* closed: ADMIN_OUT_MAX bytes of replies unread */
};
void admin_stats(const admin_t *a, struct admin_stats *st);

/* The client: `moongate admin [--timeout MS] ADDR [COMMAND...]` with argv[0]
 * "admin" (core/server/admin_cli.c). Prints each reply without its terminator.
 * Returns the exit status: 0; 1 when a reply was an error; 2 when ADDR
 * does not answer (cannot connect, no complete reply within the timeout,
 * or bad usage), with the reason on stderr. */
int admin_cli(int argc, char **argv, const char *prog);

#endif
