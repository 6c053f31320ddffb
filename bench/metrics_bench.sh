#!/usr/bin/env bash
# metrics_bench.sh - what the operators' endpoint costs (issue 18;
# docs/BENCHMARKS.md, "Metrics"): the Lua echo with `metrics` off and on
# (on: every Lua callback timed), SESSIONS (2000) sessions of moongate-bot
# at 20 Hz for SECONDS_RUN (10) s, runs of the two interleaved; with
# metrics on, /metrics is scraped every SCRAPE_MS (500: 30 times more
# often than a usual 15 s scrape interval) during the run, each scrape's
# wall time measured. A scrape runs on the server's loop: its time is the
# most a packet waits behind it.
#
#   bench/metrics_bench.sh              # RUNS=3
#   SESSIONS=4000 RUNS=5 bench/metrics_bench.sh
#
# One RESULT line per run, then
#   RESULT bench=metrics_median sessions=N off_server_cpu=... on_server_cpu=... cpu_ratio=... off_p99_ms=... on_p99_ms=... scrape_ms_p50=... scrape_ms_max=... scrape_bytes=...
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
SESSIONS=${SESSIONS:-2000}
RUNS=${RUNS:-3}
SECONDS_RUN=${SECONDS_RUN:-10}
SCRAPE_MS=${SCRAPE_MS:-500}
HZ=$(getconf CLK_TCK)

for b in moongate moongate-bot; do
	[ -x "$BUILD/$b" ] || { echo "metrics_bench: $BUILD/$b missing" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "metrics_bench: curl is needed" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup metrics_bench

cat >"$TMP/config.lua" <<CONF
return {
	services = { "echo" },
	service_path = { "$PWD/service" },
	secrets = "$TMP/secret",
	log = { level = "warn" },
	net = { udp_rcvbuf = 4194304, udp_sndbuf = 4194304 },
}
CONF

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SRV_PID/stat"; }

out=$TMP/results
: >"$out"
: >"$TMP/scrapes"
for run in $(seq "$RUNS"); do
	for mode in off on; do
		args=()
		[ "$mode" = on ] && args=(--set metrics=127.0.0.1:0)
		bench_start_server "$BUILD/moongate" --listen udp://127.0.0.1:0 "${args[@]}" "$TMP/config.lua"
		key=$(awk '/^moongate: key/ {print $3}' "$TMP/srv.out")
		mport=$(awk '/^moongate: metrics/ {print $4}' "$TMP/srv.out")
		t0=$(ticks); s0=$(date +%s.%N)
		taskset -c 1 timeout $((SECONDS_RUN + 90)) "$BUILD/moongate-bot" \
			--server "udp://127.0.0.1:$UDP_PORT?key=$key" --clients "$SESSIONS" --rate 20 \
			--seconds "$SECONDS_RUN" --connect-rate 4000 --warmup 2 >"$TMP/bot.out" 2>&1 &
		bot=$!
		if [ "$mode" = on ]; then
			sleep 3 # (the sessions open; then scrape until the bot ends)
			while kill -0 "$bot" 2>/dev/null; do
				curl -s -o "$TMP/scrape" -w "%{time_total}\n" "http://127.0.0.1:$mport/metrics" >>"$TMP/scrapes" || true
				sleep "$(awk -v ms="$SCRAPE_MS" 'BEGIN { print ms / 1000 }')"
			done
		fi
		wait "$bot" || true
		t1=$(ticks); s1=$(date +%s.%N)
		line=$(grep '^RESULT' "$TMP/bot.out" || true)
		stop_server
		cpu=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$HZ" \
			'BEGIN { printf "%.3f", (b - a) / hz / (s1 - s0) }')
		echo "RESULT bench=metrics mode=$mode sessions=$SESSIONS run=$run server_cpu=$cpu ${line#RESULT }" | tee -a "$out"
	done
done
m() { grep " mode=$1 " "$out" | median "$2"; }
scr_p50=$(sort -n "$TMP/scrapes" | awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", 1000 * a[int((NR + 1) / 2)]; else print "nan" }')
scr_max=$(sort -n "$TMP/scrapes" | tail -1 | awk '{ printf "%.2f", 1000 * $1 }')
bytes=$(wc -c <"$TMP/scrape" 2>/dev/null || echo 0)
off=$(m off server_cpu); on=$(m on server_cpu)
echo "RESULT bench=metrics_median sessions=$SESSIONS runs=$RUNS off_server_cpu=$off on_server_cpu=$on" \
	"cpu_ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')" \
	"off_p99_ms=$(m off p99_ms) on_p99_ms=$(m on p99_ms) scrapes=$(wc -l <"$TMP/scrapes")" \
	"scrape_ms_p50=$scr_p50 scrape_ms_max=$scr_max scrape_bytes=$bytes"
