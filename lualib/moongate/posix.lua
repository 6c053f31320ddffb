-- moongate.posix: the few libc calls the Lua test tools need (processes,
-- pipes, poll, sockets), declared once through LuaJIT's ffi and shared by
-- moongate.test and moongate.netem. Linux only (x86_64, aarch64).
--
--   local P = require "moongate.posix"
--   local fds = P.pollfd(1)                 -- struct pollfd[1]
--   fds[0].fd, fds[0].events = fd, P.POLLIN
--   if P.poll(fds, 1, 100) < 0 then error(P.errstr()) end
--
-- P.<name>(...)  the libc function of that name, called as in C (its
--   results are cdata where C returns intptr_t: tonumber them): poll,
--   fork, execv, pipe2, dup2, open, close, read, kill, waitpid, exit
--   (_exit), mkdtemp, getcwd, prctl, strerror, socket, connect, bind,
--   getsockname, send, recv, sendto, recvfrom
-- P.pollfd(n)         a new struct pollfd[n]
-- P.sockaddr_in([port [, addr]])  a new struct sockaddr_in, AF_INET,
--   port and addr (host order; default 0 and 127.0.0.1) in network order
-- P.ntohs(x), P.htons(x), P.htonl(x)
-- P.errstr([e])   strerror(e or errno), and the number
-- P.AF_INET, P.SOCK_STREAM, ... the Linux values of the constants used
--
-- Every symbol is declared under a name of our own (asm labels), so that
-- another module's ffi.cdef of poll, fork, struct pollfd... never clashes
-- with these; the guard makes a second load of this file (another
-- package.loaded, a fresh require) harmless, as ffi.cdef may declare a
-- type only once per process.

local bit = require "bit"
local ffi = require "ffi"

local C = ffi.C

if not pcall(ffi.typeof, "struct moongate_posix_pollfd") then
	ffi.cdef [[
	struct moongate_posix_pollfd { int fd; short events; short revents; };
	struct moongate_posix_sockaddr_in {
		uint16_t family; uint16_t port; uint32_t addr; uint8_t zero[8];
	};
	int moongate_posix_poll(struct moongate_posix_pollfd *fds, unsigned long n,
	                        int timeout) __asm__("poll");
	int moongate_posix_fork(void) __asm__("fork");
	int moongate_posix_execv(const char *path, char *const argv[]) __asm__("execv");
	int moongate_posix_pipe2(int fds[2], int flags) __asm__("pipe2");
	int moongate_posix_dup2(int from, int to) __asm__("dup2");
	int moongate_posix_open(const char *path, int flags, int mode) __asm__("open");
	int moongate_posix_close(int fd) __asm__("close");
	intptr_t moongate_posix_read(int fd, void *buf, size_t n) __asm__("read");
	int moongate_posix_kill(int pid, int sig) __asm__("kill");
	int moongate_posix_waitpid(int pid, int *status, int options) __asm__("waitpid");
	void moongate_posix_exit(int code) __asm__("_exit");
	char *moongate_posix_mkdtemp(char *template) __asm__("mkdtemp");
	char *moongate_posix_getcwd(char *buf, size_t n) __asm__("getcwd");
	int moongate_posix_prctl(int op, unsigned long a, unsigned long b,
	                         unsigned long c, unsigned long d) __asm__("prctl");
	char *moongate_posix_strerror(int err) __asm__("strerror");
	int moongate_posix_socket(int domain, int type, int protocol) __asm__("socket");
	int moongate_posix_connect(int fd, const struct moongate_posix_sockaddr_in *sa,
	                           uint32_t len) __asm__("connect");
	int moongate_posix_bind(int fd, const struct moongate_posix_sockaddr_in *sa,
	                        uint32_t len) __asm__("bind");
	int moongate_posix_getsockname(int fd, struct moongate_posix_sockaddr_in *sa,
	                               uint32_t *len) __asm__("getsockname");
	intptr_t moongate_posix_send(int fd, const void *buf, size_t n, int flags) __asm__("send");
	intptr_t moongate_posix_recv(int fd, void *buf, size_t n, int flags) __asm__("recv");
	intptr_t moongate_posix_sendto(int fd, const void *buf, size_t n, int flags,
	                               const struct moongate_posix_sockaddr_in *sa,
	                               uint32_t len) __asm__("sendto");
	intptr_t moongate_posix_recvfrom(int fd, void *buf, size_t n, int flags,
	                                 struct moongate_posix_sockaddr_in *sa,
	                                 uint32_t *len) __asm__("recvfrom");
	]]
end

local P = {
	-- Linux (x86_64, aarch64) values.
	O_RDONLY = 0, O_WRONLY = 1, O_CREAT = 64, O_TRUNC = 512, O_CLOEXEC = 524288,
	SIGHUP = 1, SIGKILL = 9, SIGTERM = 15, WNOHANG = 1,
	EINTR = 4, EAGAIN = 11,
	POLLIN = 1,
	PR_SET_PDEATHSIG = 1,
	AF_INET = 2, SOCK_STREAM = 1, SOCK_DGRAM = 2,
	SOCK_NONBLOCK = 2048, SOCK_CLOEXEC = 524288, MSG_NOSIGNAL = 16384,
	SOCKADDR_IN_LEN = 16,
	LOOPBACK = 0x7f000001,
}

for _, name in ipairs{ "poll", "fork", "execv", "pipe2", "dup2", "open",
	"close", "read", "kill", "waitpid", "exit", "mkdtemp", "getcwd", "prctl",
	"strerror", "socket", "connect", "bind", "getsockname", "send", "recv",
	"sendto", "recvfrom" } do
	P[name] = C["moongate_posix_" .. name]
end

local pollfd_array = ffi.typeof("struct moongate_posix_pollfd[?]")
local sockaddr_in = ffi.typeof("struct moongate_posix_sockaddr_in")

function P.pollfd(n)
	return pollfd_array(n)
end

-- 16 bits swapped on a little-endian machine: its own inverse.
function P.htons(x)
	return ffi.abi("le") and bit.band(bit.bor(bit.lshift(x, 8), bit.rshift(x, 8)), 0xffff) or x
end
P.ntohs = P.htons

function P.htonl(x)
	return ffi.abi("le") and bit.bswap(x) or x
end

function P.sockaddr_in(port, addr)
	local sa = sockaddr_in()
	sa.family = P.AF_INET
	sa.port = P.htons(port or 0)
	sa.addr = P.htonl(addr or P.LOOPBACK)
	return sa
end

-- The text of errno (or of e), and the number.
function P.errstr(e)
	e = e or ffi.errno()
	return ffi.string(C.moongate_posix_strerror(e)), e
end

return P
