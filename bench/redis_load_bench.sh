#!/usr/bin/env bash
# redis_load_bench.sh - what Redis sees per player (issue 17; docs/
# BENCHMARKS.md, "Workers"): a server with `workers` (2) and the login and
# room services on a redis-server (Unix socket), bench/redis_load.lua's
# PLAYERS (200) players logging in, quick-matching into lockstep rooms of
# 8 (players whose worker has no room with a free seat are moved to the
# room's worker), playing at 20 Hz for SECONDS_RUN (20) s, then leaving.
# Redis's command count between the phases: these are counts, not
# timings, so the machine's load does not change them.
#
#   bench/redis_load_bench.sh
#   PLAYERS=400 SECONDS_RUN=30 WORKERS=1 bench/redis_load_bench.sh
#
# Output: bench/redis_load.lua's RESULT line, with workers=N appended.
set -euo pipefail

cd "$(dirname "$0")/.."
. bench/lib.sh
BUILD=${BUILD:-build}
PLAYERS=${PLAYERS:-200}
SECONDS_RUN=${SECONDS_RUN:-20}
WORKERS=${WORKERS:-2}

[ -x "$BUILD/moongate" ] || { echo "redis_load_bench: $BUILD/moongate missing" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis_load_bench: no redis-server" >&2; exit 1; }
command -v luajit >/dev/null || { echo "redis_load_bench: no luajit" >&2; exit 1; }
export LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" LUA_CPATH="$PWD/$BUILD/lua/?.so;;"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bench_setup redis_load_bench
REDIS_PID=
cleanup_more() {
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
	bench_cleanup
}
trap cleanup_more EXIT

redis-server --port 0 --unixsocket "$TMP/redis.sock" --save "" \
	--appendonly no --dir "$TMP" --logfile "$TMP/redis.log" >/dev/null 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do
	redis-cli -s "$TMP/redis.sock" ping >/dev/null 2>&1 && break
	sleep 0.1
done

cat >"$TMP/config.lua" <<CONF
return {
	services = { "login", "room" },
	service_path = { "$PWD/service" },
	secrets = "$TMP/secret",
	log = { level = "warn" },
	workers = $WORKERS,
	redis = { url = "unix:$TMP/redis.sock" },
	gate = { max_half_open = 100000 },
	settings = { login = { players_max = 100000 } },
}
CONF
: >"$TMP/srv.out"
"$BUILD/moongate" --listen udp://127.0.0.1:0 --set net.max_conns_per_addr=0 \
	"$TMP/config.lua" >"$TMP/srv.out" 2>"$TMP/srv.err" &
SRV_PID=$!
for _ in $(seq 100); do
	grep -q '^moongate: ready' "$TMP/srv.out" && break
	sleep 0.1
done
grep -q '^moongate: ready' "$TMP/srv.out" || { echo "redis_load_bench: server did not start" >&2; cat "$TMP/srv.err" >&2; exit 1; }
port=$(awk '/listening udp/ {print $5; exit}' "$TMP/srv.out")
key=$(awk '/^moongate: key/ {print $3}' "$TMP/srv.out")
line=$(timeout $((SECONDS_RUN + 120)) luajit bench/redis_load.lua --url "udp://127.0.0.1:$port" \
	--key "$key" --redis "$TMP/redis.sock" --players "$PLAYERS" --seconds "$SECONDS_RUN" |
	grep '^RESULT') || { echo "redis_load_bench: the run failed" >&2; tail -20 "$TMP/srv.err" >&2; exit 1; }
echo "$line workers=$WORKERS"
