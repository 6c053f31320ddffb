#!/usr/bin/env bash
# lua_bench.sh - the cost of the Lua layer (docs/BENCHMARKS.md, "Lua
# runtime (issue 4)"): saturated echo through a Lua message callback
# (service/echo.lua) against the same echo in C (builtin_echo=1), same
# server binary, same config, runs interleaved, medians.
#
#   bench/lua_bench.sh                 # 3 runs each, 5 s
#   RUNS=1 SECONDS_RUN=3 bench/lua_bench.sh
#
# The server is pinned to CPU 0, the bot to CPU 1. Every run is bounded by
# timeout(1); the server is killed on exit. Prints a final line
#   RESULT bench=lua_cost c_rtt_per_s=... lua_rtt_per_s=... ratio=... lua_cost_pct=...
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
RUNS=${RUNS:-3}
SECONDS_RUN=${SECONDS_RUN:-5}
CLIENTS=${CLIENTS:-100}
WINDOW=${WINDOW:-16}
TRANSPORT=${TRANSPORT:-udp}

for b in moongate moongate-bot; do
	[ -x "$BUILD/$b" ] || { echo "lua_bench: $BUILD/$b missing" >&2; exit 1; }
done

bench_setup lua_bench

cat >"$TMP/config.lua" <<CONF
return {
	services = { "echo" },
	service_path = { "$PWD/service" },
	secrets = false,
	log = { level = "warn" },
}
CONF

start_server() {
	bench_start_server "$BUILD/moongate" --listen udp://127.0.0.1:0 \
		--listen tcp://127.0.0.1:0 "$@" "$TMP/config.lua"
	if [ "$TRANSPORT" = tcp ]; then PORT=$TCP_PORT; else PORT=$UDP_PORT; fi
}



: >"$TMP/c"; : >"$TMP/lua"
for _ in $(seq "$RUNS"); do
	for mode in c lua; do
		if [ "$mode" = c ]; then start_server --set builtin_echo=1; else start_server; fi
		timeout -k 5 $((SECONDS_RUN + 40)) taskset -c 1 "$BUILD/moongate-bot" \
			--server "$TRANSPORT://127.0.0.1:$PORT" --server-pid "$SRV_PID" \
			--clients "$CLIENTS" --window "$WINDOW" --seconds "$SECONDS_RUN" 2>"$TMP/bot.err" |
			grep '^RESULT' | sed "s/^RESULT/RESULT mode=$mode/" | tee -a "$TMP/$mode"
		stop_server
	done
done
c=$(median rtt_per_s <"$TMP/c")
l=$(median rtt_per_s <"$TMP/lua")
echo "MEDIAN c rtt_per_s=$c server_cpu=$(median server_cpu <"$TMP/c")"
echo "MEDIAN lua rtt_per_s=$l server_cpu=$(median server_cpu <"$TMP/lua")"
awk -v c="$c" -v l="$l" -v t="$TRANSPORT" 'BEGIN {
	r = c > 0 ? l / c : 0
	printf "RESULT bench=lua_cost transport=%s c_rtt_per_s=%d lua_rtt_per_s=%d ratio=%.3f lua_cost_pct=%.1f target_pct=25\n", t, c, l, r, 100 * (1 - r) }'
