#!/usr/bin/env bash
# workers_bench.sh - 20 Hz sessions with `workers = 2` against 1 (issue 17;
# docs/BENCHMARKS.md, "Workers"): the Lua echo (service/echo.lua), N
# sessions of moongate-bot at 20 Hz over UDP, runs of the two interleaved.
# Nothing is pinned: the server's workers and the bot share the machine's
# cores (on a 2-CPU machine the bot needs most of one of them), which is
# said with the figures. Server CPU is summed over the supervisor and its
# workers (/proc/PID/stat of each), over the bot's whole run.
#
#   bench/workers_bench.sh                       # COUNTS="2000 4000" RUNS=3
#   COUNTS="1000 3000" RUNS=5 SECONDS_RUN=10 bench/workers_bench.sh
#
# One RESULT line per run, then per count:
#   RESULT bench=workers_median sessions=N w1_p99_ms=... w2_p99_ms=... w1_server_cpu=... w2_server_cpu=... w1_lost=... w2_lost=... bot_cpu=...
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
COUNTS=${COUNTS:-"2000 4000"}
RUNS=${RUNS:-3}
SECONDS_RUN=${SECONDS_RUN:-10}
HZ=$(getconf CLK_TCK)

for b in moongate moongate-bot; do
	[ -x "$BUILD/$b" ] || { echo "workers_bench: $BUILD/$b missing" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup workers_bench

cat >"$TMP/config.lua" <<CONF
return {
	services = { "echo" },
	service_path = { "$PWD/service" },
	secrets = "$TMP/secret",
	log = { level = "warn" },
	net = { udp_rcvbuf = 4194304, udp_sndbuf = 4194304 },
}
CONF

# the CPU ticks of the server: the supervisor and every worker
ticks() {
	local sum=0 p
	for p in $SRV_PID $(pgrep -P "$SRV_PID" || true); do
		[ -r "/proc/$p/stat" ] || continue
		sum=$((sum + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
	done
	echo "$sum"
}

start() {
	: >"$TMP/srv.out"
	"$BUILD/moongate" --listen udp://127.0.0.1:0 --set workers="$1" \
		"$TMP/config.lua" >"$TMP/srv.out" 2>"$TMP/srv.err" &
	SRV_PID=$!
	for _ in $(seq 100); do
		grep -q '^moongate: ready' "$TMP/srv.out" && break
		sleep 0.1
	done
	grep -q '^moongate: ready' "$TMP/srv.out" || { cat "$TMP/srv.err" >&2; exit 1; }
	PORT=$(awk '/listening udp/ {print $5}' "$TMP/srv.out")
	KEY=$(awk '/^moongate: key/ {print $3}' "$TMP/srv.out")
}

out=$TMP/results
: >"$out"
for n in $COUNTS; do
	for run in $(seq "$RUNS"); do
		for w in 1 2; do
			start "$w"
			t0=$(ticks); s0=$(date +%s.%N)
			line=$(timeout $((SECONDS_RUN + 90)) "$BUILD/moongate-bot" \
				--server "udp://127.0.0.1:$PORT?key=$KEY" --clients "$n" --rate 20 \
				--seconds "$SECONDS_RUN" --connect-rate 4000 --warmup 2 | grep '^RESULT' || true)
			t1=$(ticks); s1=$(date +%s.%N)
			stop_server
			cpu=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$HZ" \
				'BEGIN { printf "%.2f", (b - a) / hz / (s1 - s0) }')
			echo "RESULT bench=workers workers=$w sessions=$n run=$run server_cpu=$cpu ${line#RESULT }" | tee -a "$out"
		done
	done
	m() { grep " workers=$1 sessions=$n " "$out" | median "$2"; }
	echo "RESULT bench=workers_median sessions=$n runs=$RUNS" \
		"w1_p99_ms=$(m 1 p99_ms) w2_p99_ms=$(m 2 p99_ms)" \
		"w1_server_cpu=$(m 1 server_cpu) w2_server_cpu=$(m 2 server_cpu)" \
		"w1_lost=$(m 1 lost) w2_lost=$(m 2 lost)" \
		"w1_bot_cpu=$(m 1 bot_cpu) w2_bot_cpu=$(m 2 bot_cpu)"
done
