/*
 * hello_client.c - the tiny client program test/install/install_test.sh
 * builds against an INSTALLED libmoongate-client (its header and library
 * found by `pkg-config --cflags --libs moongate-client`), then runs
 * against an installed server running service/echo.lua:
 *
 *   hello_client "udp://127.0.0.1:PORT?key=HEX" MESSAGE
 *
 * connects, sends MESSAGE reliably, and exits 0 when the same bytes come
 * back (then closes the session and waits for its CLOSE, as a game does
 * on quitting); 1 on a close, an error or after 10 seconds. Only the public API of
 * <moongate/client.h>: it is what a game that embeds the library writes.
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <moongate/client.h>

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: hello_client URL MESSAGE\n");
		return 2;
	}
	const char *msg = argv[2];
	char err[256];
	mgclient_t *c = mgclient_connect(argv[1], "hello", 5, NULL, err,
	                                 sizeof err);
	if (!c) {
		fprintf(stderr, "hello_client: connect: %s\n", err);
		return 1;
	}
	uint64_t deadline = mgclient_now() + 10 * 1000000ull;
	int rc = 1;
	for (;;) {
		uint64_t now = mgclient_now();
		if (now >= deadline) {
			fprintf(stderr, "hello_client: no echo within 10 s\n");
			break;
		}
		mgclient_poll(c, now);
		struct mgclient_event ev;
		int done = 0;
		while (!done && mgclient_next_event(c, &ev)) {
			if (ev.type == MGCLIENT_OPEN) {
				printf("hello_client: open\n");
				int s = mgclient_send(c, msg, strlen(msg));
				if (s < 0) {
					fprintf(stderr, "hello_client: send: %s\n",
					        mgclient_strerror(s));
					done = 1;
				}
			} else if (ev.type == MGCLIENT_MESSAGE) {
				done = 1;
				if (ev.len == strlen(msg) && !memcmp(ev.data, msg, ev.len)) {
					printf("hello_client: echo %.*s\n", (int)ev.len,
					       (const char *)ev.data);
					rc = 0;
				} else {
					fprintf(stderr, "hello_client: wrong echo (%zu bytes)\n",
					        ev.len);
				}
			} else if (ev.type == MGCLIENT_CLOSE) {
				fprintf(stderr, "hello_client: closed: %d %s\n", ev.code,
				        ev.reason ? ev.reason : "");
				done = 1;
			}
		}
		if (done)
			break;
		/* wait for a datagram or for the library's next timer */
		uint64_t due = mgclient_check(c, mgclient_now());
		now = mgclient_now();
		if (due > deadline)
			due = deadline;
		int ms = due > now ? (int)((due - now + 999) / 1000) : 0;
		struct pollfd pf[2];
		int fds[2];
		int n = mgclient_fds(c, fds);
		for (int i = 0; i < n; i++)
			pf[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		poll(pf, (nfds_t)n, ms);
	}
	if (rc == 0) { /* a graceful close: the server forgets the session now */
		mgclient_close(c, 0, "bye");
		uint64_t until = mgclient_now() + 2 * 1000000ull;
		int closed = 0;
		while (!closed && mgclient_now() < until) {
			if (mgclient_poll(c, mgclient_now()) < 0)
				break;
			struct mgclient_event ev;
			while (mgclient_next_event(c, &ev))
				closed |= ev.type == MGCLIENT_CLOSE;
			int fds[2];
			struct pollfd pf[2];
			int n = mgclient_fds(c, fds);
			for (int i = 0; i < n; i++)
				pf[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
			if (!closed)
				poll(pf, (nfds_t)n, 10);
		}
		printf("hello_client: %s\n", closed ? "closed" : "close not acknowledged");
	}
	mgclient_release(c);
	return rc;
}
