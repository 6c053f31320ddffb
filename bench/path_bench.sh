#!/usr/bin/env bash
# path_bench.sh - the cost of one message on the datagram path, two builds
# side by side (docs/BENCHMARKS.md, "The datagram path (issue 13)"): server
# CPU per echo through the Lua `message` callback (service/echo.lua) at a
# fixed rate the bot holds easily, so that the figure is the server's and
# not the bot's. Runs of the two builds interleaved, medians.
#
#   BASE=/work/base/build bench/path_bench.sh        # base vs build/
#   RUNS=5 CLIENTS=200 RATE=100 SECONDS_RUN=10 BASE=... NEW=... bench/path_bench.sh
#
# The server is pinned to CPU 0, the bot to CPU 1. Every run is bounded by
# timeout(1). Prints a final line
#   RESULT bench=path base_us_per_echo=... new_us_per_echo=... ratio=... base_per_cpu_s=... new_per_cpu_s=...
# ratio = new / base (below 1: the new build spends less server CPU per echo).
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BASE=${BASE:?BASE=the build directory of the baseline}
NEW=${NEW:-build}
RUNS=${RUNS:-5}
SECONDS_RUN=${SECONDS_RUN:-10}
CLIENTS=${CLIENTS:-200}
RATE=${RATE:-100}
TRANSPORT=${TRANSPORT:-udp}

for d in "$BASE" "$NEW"; do
	for b in moongate moongate-bot; do
		[ -x "$d/$b" ] || { echo "path_bench: $d/$b missing" >&2; exit 1; }
	done
done

bench_setup path_bench

cat >"$TMP/config.lua" <<CONF
return {
	services = { "echo" },
	service_path = { "$PWD/service" },
	secrets = false,
	log = { level = "warn" },
}
CONF

# start_server BUILD: sets SRV_PID, PORT
start_server() {
	bench_start_server "$1/moongate" --listen udp://127.0.0.1:0 \
		--listen tcp://127.0.0.1:0 "$TMP/config.lua"
	if [ "$TRANSPORT" = tcp ]; then PORT=$TCP_PORT; else PORT=$UDP_PORT; fi
}

# the server's CPU time so far in clock ticks (utime + stime)
cpu_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SRV_PID/stat"
}

# us of server CPU per echo: the server's CPU ticks over the bot's whole
# run (connect, traffic, close: the same work for both builds) divided by
# the echoes received; the bot's server_cpu (two decimals) is too coarse
per_echo() {
	awk -v t="$1" -v hz="$(getconf CLK_TCK)" '{ r = 0
	       for (i = 1; i <= NF; i++) {
	         split($i, kv, "=")
	         if (kv[1] == "received") r = kv[2]
	       }
	       if (r > 0) printf "%s server_ticks=%d us_per_echo=%.3f\n", $0, t, t / hz / r * 1e6 }'
}

: >"$TMP/base"; : >"$TMP/new"
for _ in $(seq "$RUNS"); do
	for which in base new; do
		if [ "$which" = base ]; then dir=$BASE; else dir=$NEW; fi
		start_server "$dir"
		# the bot of the new build drives both servers: the load is the same
		t0=$(cpu_ticks)
		timeout -k 5 $((SECONDS_RUN + 60)) taskset -c 1 "$NEW/moongate-bot" \
			--server "$TRANSPORT://127.0.0.1:$PORT" --server-pid "$SRV_PID" \
			--clients "$CLIENTS" --rate "$RATE" --seconds "$SECONDS_RUN" \
			>"$TMP/bot.out" 2>"$TMP/bot.err"
		t1=$(cpu_ticks)
		grep '^RESULT' "$TMP/bot.out" | per_echo $((t1 - t0)) |
			sed "s/^RESULT/RESULT build=$which/" | tee -a "$TMP/$which"
		stop_server
	done
done
b=$(median us_per_echo <"$TMP/base")
n=$(median us_per_echo <"$TMP/new")
echo "MEDIAN base us_per_echo=$b server_cpu=$(median server_cpu <"$TMP/base") bot_cpu=$(median bot_cpu <"$TMP/base")"
echo "MEDIAN new us_per_echo=$n server_cpu=$(median server_cpu <"$TMP/new") bot_cpu=$(median bot_cpu <"$TMP/new")"
awk -v b="$b" -v n="$n" -v t="$TRANSPORT" -v c="$CLIENTS" -v r="$RATE" 'BEGIN {
	printf "RESULT bench=path transport=%s clients=%d rate=%d base_us_per_echo=%s new_us_per_echo=%s ratio=%.3f base_per_cpu_s=%.0f new_per_cpu_s=%.0f\n",
		t, c, r, b, n, (b > 0 ? n / b : 0), (b > 0 ? 1e6 / b : 0), (n > 0 ? 1e6 / n : 0)
}'
