/*
 * udp_echo.c - the physical limit: round trips per second of a bare UDP
 * echo over loopback, no protocol at all, to set beside the session
 * layer's figures.
 *
 * One binary, two processes. The child is the server, pinned to CPU 0: a
 * blocking recvmmsg(MSG_WAITFORONE) of up to --batch datagrams, then one
 * sendmmsg echoing them to their senders. The parent is the client, pinned
 * to CPU 1: a socket connected to the server keeps --inflight datagrams of
 * --size bytes in flight; every datagram that comes back is counted and
 * sent again, received and resent in batches (recvmmsg/sendmmsg). With
 * --batch 1 both sides use one recv and one send call per datagram.
 *
 * A datagram the kernel drops would shrink the window for good, so when
 * nothing arrives for 100 ms the client counts what is missing as lost
 * and refills the window.
 *
 * The server binds 127.0.0.1:0 and reports its port through a pipe; it
 * dies with the parent (PR_SET_PDEATHSIG) and by alarm() at the latest.
 * At the end it is killed and reaped (bounded).
 *
 *   udp_echo [--batch 32] [--size 64] [--inflight 64] [--seconds 5]
 *   RESULT bench=udp_echo batch=32 size=64 inflight=64 seconds=5
 *          rtt_per_s=... server_cpu=... lost=... server_batch=...
 *          client_batch=...
 *
 * server_cpu: the server's utime + stime from /proc/PID/stat over the
 * measured window, as a fraction of one core. server_batch and
 * client_batch: datagrams per receive call on each side (1 with --batch 1).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#define BATCH_MAX 256
#define SIZE_MAX_UDP 65507

static int batch = 32;
static int size = 64;
static int inflight = 64;
static double seconds = 5;

/* The server's counters, in a shared page so the client can report the
 * batch sizes the server actually saw. */
struct server_stats {
	volatile uint64_t datagrams, recv_calls;
};
static struct server_stats *srv;

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
pin(int cpu, const char *who)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) < 0)
		fprintf(stderr, "udp_echo: %s: cannot pin to CPU %d: %s\n", who,
		        cpu, strerror(errno));
}

/* utime + stime of pid in clock ticks, or -1. */
static long long
cpu_ticks(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name may hold spaces: fields count from the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	unsigned long long ut, st;
	/* after ')': state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	           &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

static void
server(int port_pipe)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(0);
	alarm((unsigned)seconds + 30); /* a hard bound, whatever the parent does */
	pin(0, "server");

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("udp_echo: server socket");
		_exit(1);
	}
	uint16_t port = ntohs(sa.sin_port);
	if (write(port_pipe, &port, sizeof port) != sizeof port)
		_exit(1);
	close(port_pipe);

	static struct mmsghdr msgs[BATCH_MAX];
	static struct iovec iov[BATCH_MAX];
	static struct sockaddr_in from[BATCH_MAX];
	uint8_t *buf = malloc((size_t)batch * SIZE_MAX_UDP);
	if (!buf)
		_exit(1);
	for (;;) {
		if (batch == 1) {
			sl = sizeof from[0];
			ssize_t n = recvfrom(fd, buf, SIZE_MAX_UDP, 0,
			                     (struct sockaddr *)&from[0], &sl);
			if (n < 0)
				continue;
			srv->datagrams++;
			srv->recv_calls++;
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from[0], sl);
			continue;
		}
		for (int i = 0; i < batch; i++) {
			iov[i].iov_base = buf + (size_t)i * SIZE_MAX_UDP;
			iov[i].iov_len = SIZE_MAX_UDP;
			msgs[i].msg_hdr = (struct msghdr){
				.msg_name = &from[i], .msg_namelen = sizeof from[i],
				.msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		int n = recvmmsg(fd, msgs, (unsigned)batch, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		srv->datagrams += (uint64_t)n;
		srv->recv_calls++;
		for (int i = 0; i < n; i++)
			iov[i].iov_len = msgs[i].msg_len;
		for (int off = 0; off < n;) {
			int m = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
			if (m <= 0)
				break; /* drop the rest: the client counts them lost */
			off += m;
		}
	}
}

/* The client's state: one buffer of BATCH_MAX datagrams, sent as is. */
static struct mmsghdr msgs[BATCH_MAX];
static struct iovec iov[BATCH_MAX];
static uint8_t *buf;
static uint64_t sent, received, lost;

/* Send k datagrams (all the same bytes: the echo does not care). A full
 * socket buffer drops the rest; the 100 ms refill makes up for them. */
static void
send_n(int fd, int k)
{
	while (k > 0) {
		int m;
		if (batch == 1) {
			m = send(fd, buf, (size_t)size, 0) < 0 ? -1 : 1;
		} else {
			int c = k < batch ? k : batch;
			for (int j = 0; j < c; j++)
				iov[j].iov_len = (size_t)size;
			m = sendmmsg(fd, msgs, (unsigned)c, 0);
		}
		if (m <= 0)
			return;
		sent += (uint64_t)m;
		k -= m;
	}
}

/* Kill and reap the server, bounded (2 s). */
static void
reap(pid_t pid)
{
	kill(pid, SIGKILL);
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	fprintf(stderr, "udp_echo: server %d not reaped\n", (int)pid);
}

static int
usage(void)
{
	fprintf(stderr, "usage: udp_echo [--batch N] [--size BYTES] "
	                "[--inflight N] [--seconds S]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (i + 1 >= argc)
			return usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--batch"))
			batch = atoi(v);
		else if (!strcmp(a, "--size"))
			size = atoi(v);
		else if (!strcmp(a, "--inflight"))
			inflight = atoi(v);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else
			return usage();
	}
	if (batch < 1 || batch > BATCH_MAX || size < 1 || size > SIZE_MAX_UDP ||
	    inflight < 1 || inflight > 1 << 20 || !(seconds > 0 && seconds < 3600))
		return usage();

	srv = mmap(NULL, sizeof *srv, PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (srv == MAP_FAILED) {
		perror("udp_echo: mmap");
		return 1;
	}
	int pfd[2];
	if (pipe(pfd) < 0) {
		perror("udp_echo: pipe");
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("udp_echo: fork");
		return 1;
	}
	if (pid == 0) {
		close(pfd[0]);
		server(pfd[1]);
		_exit(0);
	}
	close(pfd[1]);
	pin(1, "client");

	/* The port, or EOF if the server failed; bounded by poll. */
	uint16_t port = 0;
	struct pollfd pp = { .fd = pfd[0], .events = POLLIN };
	if (poll(&pp, 1, 5000) != 1 || read(pfd[0], &port, sizeof port) != sizeof port) {
		fprintf(stderr, "udp_echo: the server did not report its port\n");
		reap(pid);
		return 1;
	}
	close(pfd[0]);

	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("udp_echo: client socket");
		reap(pid);
		return 1;
	}

	buf = calloc((size_t)BATCH_MAX, (size_t)size);
	if (!buf) {
		reap(pid);
		return 1;
	}
	for (int i = 0; i < BATCH_MAX; i++) {
		iov[i].iov_base = buf + (size_t)i * size;
		msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
	}

	uint64_t rx_calls = 0;
	uint64_t d0 = srv->datagrams, c0 = srv->recv_calls;
	long long t0 = cpu_ticks(pid);
	double start = now_s(), end = start + seconds, last_rx = start;

	send_n(fd, inflight);
	double t = start;
	while (t < end) {
		int rx = 0;
		if (batch == 1) {
			for (int i = 0; i < 64; i++) {
				if (recv(fd, buf, (size_t)size, 0) < 0)
					break;
				rx_calls++;
				rx++;
				send_n(fd, 1);
			}
		} else {
			for (int i = 0; i < batch; i++)
				iov[i].iov_len = (size_t)size;
			int n = recvmmsg(fd, msgs, (unsigned)batch, MSG_DONTWAIT, NULL);
			if (n > 0) {
				rx_calls++;
				rx = n;
				send_n(fd, n);
			}
		}
		received += (uint64_t)rx;
		t = now_s();
		if (rx > 0) {
			last_rx = t;
			continue;
		}
		if (t - last_rx > 0.1) {
			/* nothing for 100 ms: what is out is lost; refill */
			lost = sent - received;
			send_n(fd, inflight);
			last_rx = t;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ms = (int)((end - t) * 1000) + 1;
		poll(&p, 1, ms < 100 ? ms : 100);
		t = now_s();
	}
	double elapsed = now_s() - start;
	long long t1 = cpu_ticks(pid);
	uint64_t sd = srv->datagrams - d0, sc = srv->recv_calls - c0;
	reap(pid);
	double server_cpu = t0 >= 0 && t1 >= t0
	    ? (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / elapsed : -1;

	printf("RESULT bench=udp_echo batch=%d size=%d inflight=%d seconds=%g "
	       "rtt_per_s=%.0f server_cpu=%.2f lost=%llu server_batch=%.1f "
	       "client_batch=%.1f\n",
	       batch, size, inflight, seconds, received / elapsed, server_cpu,
	       (unsigned long long)lost, sc ? (double)sd / sc : 0,
	       rx_calls ? (double)received / rx_calls : 0);
	return received > 0 ? 0 : 1;
}
