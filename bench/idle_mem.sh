#!/usr/bin/env bash
# idle_mem.sh - server memory per idle session, UDP and TCP (issue 15:
# "TCP idle session <= 4 KiB; UDP stays <= 3 KiB"; docs/BENCHMARKS.md,
# "Memory per idle session").
#
#   bench/idle_mem.sh                        # 2000 sessions, 3 runs each
#   N=5000 RUNS=5 bench/idle_mem.sh
#   BASE=/path/to/old/build bench/idle_mem.sh   # the same runs on another
#                                               # build, interleaved, and ratios
#
# Each run: a fresh server (build/moongate, no config file: the built-in C
# echo) pinned to CPU 0; moongate-bot on CPU 1 opens N sessions that stay
# idle (heartbeats only) for 3 s and reads the server's VmRSS before its
# first connect and with every session open. bytes per session =
# (rss - rss_before) x 1024 / N. Prints a line per run, then
#   RESULT bench=idle_mem sessions=N udp_bytes=... tcp_bytes=... [base_udp_bytes=... base_tcp_bytes=... udp_ratio=... tcp_ratio=...]
# (medians over the runs).
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
BASE=${BASE:-}
N=${N:-2000}
RUNS=${RUNS:-3}

bench_setup idle_mem
builds="$BUILD"
[ -n "$BASE" ] && builds="$BUILD $BASE"
for b in $builds; do
	for x in moongate moongate-bot; do
		[ -x "$b/$x" ] || { echo "idle_mem: $b/$x missing" >&2; exit 1; }
	done
done
if [ "$(ulimit -n)" -lt $((N + 100)) ]; then
	ulimit -n $((N + 100)) 2>/dev/null || {
		echo "idle_mem: needs $((N + 100)) descriptors (ulimit -n is $(ulimit -n))" >&2; exit 1; }
fi

: >"$TMP/results"
for run in $(seq "$RUNS"); do
	for b in $builds; do
		for t in udp tcp; do
			bench_start_server "$b/moongate" --listen "$t://127.0.0.1:0" \
				--set net.max_conns=$((N + 100)) --set net.max_conns_per_addr=0
			port=$UDP_PORT
			[ "$t" = tcp ] && port=$TCP_PORT
			key=$(awk '/^moongate: key/ {print $3}' "$TMP/srv.out")
			url="$t://127.0.0.1:$port"
			[ -n "$key" ] && url="$url?key=$key"
			line=$(timeout 120 taskset -c 1 "$b/moongate-bot" --server "$url" \
				--server-pid "$SRV_PID" --clients "$N" --rate 0 --seconds 3 \
				--connect-rate 4000 2>/dev/null | grep '^RESULT' | tail -1)
			stop_server
			before=$(echo " $line" | median server_rss_before_kb)
			after=$(echo " $line" | median server_rss_kb)
			conn=$(echo " $line" | median connected)
			bytes=$(awk -v a="$after" -v b="$before" -v n="$N" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
			tag=new
			[ "$b" != "$BUILD" ] && tag=base
			echo "RUN $run build=$b transport=$t connected=$conn rss_before_kb=$before rss_kb=$after bytes_per_session=$bytes"
			[ "$conn" = "$N" ] || { echo "idle_mem: only $conn of $N sessions connected" >&2; exit 1; }
			echo " ${tag}_${t}=$bytes" >>"$TMP/results"
		done
	done
done

udp=$(median new_udp <"$TMP/results")
tcp=$(median new_tcp <"$TMP/results")
out="RESULT bench=idle_mem sessions=$N udp_bytes=$udp tcp_bytes=$tcp"
if [ -n "$BASE" ]; then
	bu=$(median base_udp <"$TMP/results")
	bt=$(median base_tcp <"$TMP/results")
	out="$out base_udp_bytes=$bu base_tcp_bytes=$bt $(awk -v a="$udp" -v b="$bu" -v c="$tcp" -v d="$bt" \
		'BEGIN { printf "udp_ratio=%.3f tcp_ratio=%.3f", a / b, c / d }')"
fi
echo "$out"
