#!/usr/bin/env bash
# room_bench.sh - "100 rooms x 8 bots" (docs/BENCHMARKS.md, "Rooms: 100
# rooms x 8 bots (issue 6)"): the services handshake, login and room on
# one server core, 800 bots in rooms of 8 sending at 20 Hz, in state sync
# (mode relay) and frame sync (mode lockstep): server CPU, relay latency
# p50/p99, bytes per second per player.
#
#   bench/room_bench.sh               # both modes, 3 runs each, medians
#   QUICK=1 bench/room_bench.sh       # 1 run each, 5 s
#   MODES=lockstep RUNS=5 SECONDS_RUN=30 bench/room_bench.sh
#   ACK_DELAY=60 MODES=lockstep bench/room_bench.sh   # acks ride on frames
#       and inputs (server kcp.max_ack_delay, bots' ack_delay: opt-in)
#   EXTRA_SERVICE_PATH=dir MODES="mine:state" bench/room_bench.sh
#       (a mode of the game: module dir/mine.lua, the bot in state sync)
#
# Every run starts a fresh server (a player's seat is held after its
# session closes: a second run on the same server would find the bots
# still seated) from a temporary config.lua, pinned to CPU 0; the bot is
# pinned to CPU 1. Loopback only. Every wait is bounded, each run by
# timeout(1), and the whole script by TOTAL_S (290 s): a run that would
# not fit is skipped, and said so. Needs 2 CPUs.
#
# Output: each run's line from moongate-room-bot ("run 1/3: RESULT ..."),
# then per mode one RESULT line whose figures are the medians over the
# runs, each figure on its own (not the line of the median run), with
# lost_max, dup_max and joined_min beside them.
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RUNS=${RUNS:-1}; SECONDS_RUN=${SECONDS_RUN:-5}
else
	RUNS=${RUNS:-3}; SECONDS_RUN=${SECONDS_RUN:-20}
fi
MODES=${MODES:-"relay lockstep"}
CLIENTS=${CLIENTS:-800}
ROOM_SIZE=${ROOM_SIZE:-8}
RATE=${RATE:-20}
SIZE=${SIZE:-32}
TOTAL_S=${TOTAL_S:-290}
EXTRA_SERVICE_PATH=${EXTRA_SERVICE_PATH:-}

for b in moongate moongate-room-bot; do
	[ -x "$BUILD/$b" ] || { echo "room_bench: $BUILD/$b missing (make)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

bench_setup room_bench

# The server's configuration: the three services, the handshake's per-IP
# limits raised (800 sessions from 127.0.0.1, connecting at 1000/s), no
# secrets file, the log at warn (the development login logs every login
# at info). Modes other than relay and lockstep map to a module of their
# name (EXTRA_SERVICE_PATH).
lua_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }
{
	echo "-- written by bench/room_bench.sh"
	echo "return {"
	echo "	services = { \"handshake\", \"login\", \"room\" },"
	printf '	service_path = { '
	[ -n "$EXTRA_SERVICE_PATH" ] && printf '%s, ' "$(lua_str "$(cd "$EXTRA_SERVICE_PATH" && pwd)")"
	printf '%s },\n' "$(lua_str "$PWD/service")"
	echo "	secrets = false,"
	echo "	settings = {"
	echo "		handshake = { per_ip_max = 100000, rate = 100000, burst = 100000 },"
	printf '		room = { modes = { '
	for m in $MODES; do
		name=${m%%:*}
		case $name in relay|lockstep) ;; *) printf '%s = %s, ' "$name" "$(lua_str "$name")" ;; esac
	done
	echo "} },"
	echo "	},"
	[ -n "${ACK_DELAY:-}" ] && echo "	kcp = { max_ack_delay = $ACK_DELAY },"
	echo "	lua = { budget_ms = 50 },"
	printf '	admin = %s,\n' "$(lua_str "unix:$TMP/admin")"
	echo "	log = { level = \"warn\" },"
	echo "}"
} >"$TMP/config.lua"

# start_server: sets SRV_PID, UDP_PORT and SRV_KEY (the bots pin it, as
# players do: handshake v2, AES-256-GCM where the CPU has it)
start_server() {
	rm -f "$TMP/admin"
	bench_start_server "$BUILD/moongate" --listen udp://127.0.0.1:0 \
		"$TMP/config.lua"
	SRV_KEY=$(awk '/^moongate: key/ {print $3}' "$TMP/srv.out")
}

# the run's bound: connect (< 1 s at 1000/s) + join + run + drain + close,
# with margin; the bot bounds each phase itself as well
BOUND=$((SECONDS_RUN + 40))
STEP=$((BOUND + 15)) # plus the server's start and stop
med() { median "$1" <"$TMP/runs.$2"; }
maxof() { grep -o " $1=[0-9.]*" "$TMP/runs.$2" | cut -d= -f2 | sort -g | tail -1; }

echo "== $CLIENTS bots in rooms of $ROOM_SIZE, $RATE Hz, ${SECONDS_RUN} s, $RUNS run(s) per mode; server on CPU 0, bot on CPU 1"
for m in $MODES; do
	name=${m%%:*}
	sync=()
	[ "$name" != "$m" ] && sync=(--sync "${m#*:}")
	: >"$TMP/runs.$name"
	for run in $(seq "$RUNS"); do
		if [ $((SECONDS + STEP)) -gt "$TOTAL_S" ]; then
			echo "room_bench: skipping $name run $run: it would pass TOTAL_S=$TOTAL_S s"
			continue
		fi
		start_server
		rc=0
		timeout -k 5 "$BOUND" taskset -c 1 "$BUILD/moongate-room-bot" \
			--server "udp://127.0.0.1:$UDP_PORT?key=$SRV_KEY" --server-pid "$SRV_PID" \
			--server-admin "unix:$TMP/admin" ${ACK_DELAY:+--ack-delay "$ACK_DELAY"} \
			--mode "$name" ${sync[@]+"${sync[@]}"} --clients "$CLIENTS" --room-size "$ROOM_SIZE" \
			--rate "$RATE" --seconds "$SECONDS_RUN" --size "$SIZE" \
			--connect-rate 1000 >"$TMP/bot.out" 2>"$TMP/bot.err" || rc=$?
		stop_server
		line=$(grep '^RESULT' "$TMP/bot.out") ||
			line="RESULT none (bot exit $rc; last stderr line: $(tail -1 "$TMP/bot.err"))"
		# 1: the bot saw a failure (below); 124/137: timeout
		[ "$rc" = 0 ] || echo "room_bench: $name run $run: moongate-room-bot exited with $rc"
		echo "$line" >>"$TMP/runs.$name"
		echo "run $run/$RUNS: $line"
		# what went wrong, if anything: the bot's complaints, the server's errors
		grep -v '^room-bot: \(connect\|join\|run\|drain\|close\|end\) ' "$TMP/bot.err" |
			grep -v 'bundles, .* frames received' | head -5 || true
		grep -E ' (error|warn) ' "$TMP/srv.err" | grep -v 'development login' >"$TMP/srv.bad" || true
		if [ -s "$TMP/srv.bad" ]; then
			echo "room_bench: server log, $(wc -l <"$TMP/srv.bad") error/warn line(s):"
			head -5 "$TMP/srv.bad"
		fi
	done
	if grep -q '^RESULT bench=' "$TMP/runs.$name"; then
		n=$(grep -c '^RESULT bench=' "$TMP/runs.$name")
		echo "RESULT bench=rooms mode=$name rooms=$(med rooms "$name") bots=$CLIENTS rate=$RATE seconds=$SECONDS_RUN runs=$n server_cpu=$(med server_cpu "$name") p50_ms=$(med p50_ms "$name") p99_ms=$(med p99_ms "$name") max_ms=$(med max_ms "$name") in_bytes_per_s_per_player=$(med in_bytes_per_s_per_player "$name") out_bytes_per_s_per_player=$(med out_bytes_per_s_per_player "$name") delivered=$(med delivered "$name") lost=$(med lost "$name") dup=$(med dup "$name") bot_cpu=$(med bot_cpu "$name") lost_max=$(maxof lost "$name") dup_max=$(maxof dup "$name") joined_min=$(grep -o ' joined=[0-9]*' "$TMP/runs.$name" | cut -d= -f2 | sort -g | head -1)"
	else
		echo "RESULT bench=rooms mode=$name runs=0 (no run finished)"
	fi
done
echo "room_bench: done in ${SECONDS} s"
