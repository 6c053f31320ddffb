# bench/lib.sh - shared by the benchmark scripts (sourced, not run).
#
# stop_server: SIGTERM to $SRV_PID, wait up to 10 s, then SIGKILL.
# median KEY: the median of KEY=value over the RESULT lines on stdin.
# bench_setup, bench_start_server: below.

stop_server() {
	kill "$SRV_PID" 2>/dev/null || true
	timeout 10 tail --pid="$SRV_PID" -f /dev/null 2>/dev/null || kill -9 "$SRV_PID" 2>/dev/null || true
	wait "$SRV_PID" 2>/dev/null || true
	SRV_PID=
}

median() {
	grep -o " $1=[0-9.]*" | cut -d= -f2 | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'
}

# bench_setup NAME: a temp dir in $TMP, removed on exit with the server
# ($SRV_PID) killed; NAME prefixes the scripts' errors.
bench_setup() {
	BENCH_NAME=$1
	TMP=$(mktemp -d)
	SRV_PID=
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_cleanup() {
	if [ -n "$SRV_PID" ]; then
		kill "$SRV_PID" 2>/dev/null || true
		wait "$SRV_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}

# bench_start_server BINARY ARGS...: BINARY pinned to CPU 0 with ARGS
# (listeners, --set, the config file), up to 5 s for its ready line; sets
# SRV_PID, UDP_PORT, TCP_PORT (empty when not listening). Its stdout and
# stderr are in $TMP/srv.out and $TMP/srv.err.
bench_start_server() {
	local bin=$1; shift
	: >"$TMP/srv.out"
	taskset -c 0 "$bin" "$@" >"$TMP/srv.out" 2>"$TMP/srv.err" &
	SRV_PID=$!
	for _ in $(seq 50); do
		grep -q '^moongate: ready' "$TMP/srv.out" && break
		sleep 0.1
	done
	grep -q '^moongate: ready' "$TMP/srv.out" || {
		echo "$BENCH_NAME: server did not start" >&2
		cat "$TMP/srv.err" >&2
		exit 1
	}
	UDP_PORT=$(awk '/listening udp/ {print $5}' "$TMP/srv.out")
	TCP_PORT=$(awk '/listening tcp/ {print $5}' "$TMP/srv.out")
}
